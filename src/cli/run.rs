//! `heatscaler run`: the daemon. Errors here get their context and become the
//! exit code; inside the daemon they are typed.

use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use heatscaler_daemon::control_loop::RunOptions;
use heatscaler_daemon::telemetry::Notifier;

/// Arguments of `heatscaler run`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Plan and report (logs, Events) without changing anything; same as `daemon.dry-run: true`.
    #[arg(long)]
    dry_run: bool,

    /// From SIGTERM to exit: in-flight actions finish, alerts are flushed. Keep it
    /// below systemd's TimeoutStopSec and the pod's terminationGracePeriodSeconds.
    #[arg(long, default_value = "25s", value_parser = humantime::parse_duration)]
    stop_timeout: Duration,
}

pub fn run(config_path: &Path, log: &str, args: Args) -> anyhow::Result<ExitCode> {
    let config = heatscaler_daemon::config::load(config_path).map_err(|e| anyhow::anyhow!("{e}"))?;
    super::init_logging(log, "info", config.telemetry.log_format);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("heatscaler")
        .build()
        .context("start the async runtime")?;
    let options = RunOptions {
        config_path: config_path.to_path_buf(),
        config,
        dry_run: args.dry_run,
        stop_timeout: args.stop_timeout,
        notifier: Notifier::from_env(),
    };
    runtime.block_on(heatscaler_daemon::control_loop::run(options)).context("heatscaler run")?;
    // Watch tasks and HTTP connections still parked on the runtime are dropped, not awaited.
    runtime.shutdown_timeout(Duration::from_secs(1));
    Ok(ExitCode::SUCCESS)
}
