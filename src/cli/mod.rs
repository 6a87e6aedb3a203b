//! Subcommands. Each lives in its own file and returns `anyhow::Result`: this is
//! the top of the program, where errors get context and become exit codes.

#[cfg(feature = "simulator")]
mod bench;
mod check_config;
mod docs;
mod explain;
mod from_ca;
mod groups;
#[cfg(not(feature = "simulator"))]
mod no_simulator;
#[cfg(feature = "simulator")]
mod progress;
mod run;
#[cfg(feature = "simulator")]
mod simulate;

// Without the simulator, `simulate` and `bench` are still commands, and say
// how to get a build that has them.
#[cfg(not(feature = "simulator"))]
use no_simulator as bench;
#[cfg(not(feature = "simulator"))]
use no_simulator as simulate;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use heatscaler_daemon::config::LogFormat;

/// Autoscaler for Kubernetes clusters on OpenStack Heat.
///
/// Grows Heat-managed minion groups when pods cannot be scheduled, removes
/// exactly the minions it drained when they are no longer needed, and resizes
/// pod requests in place from observed usage — planned together.
#[derive(Debug, Parser)]
#[command(name = "heatscaler", version = env!("HEATSCALER_VERSION"), about, long_about, propagate_version = true)]
pub struct Cli {
    /// Configuration file.
    #[arg(
        long,
        short = 'c',
        global = true,
        env = "HEATSCALER_CONFIG",
        default_value = "/etc/heatscaler/heatscaler.yaml"
    )]
    pub config: PathBuf,

    /// Log filter, in `RUST_LOG` syntax (e.g. `info`, `heatscaler=debug`).
    #[arg(long, global = true, env = "HEATSCALER_LOG", default_value = "info")]
    pub log: String,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the autoscaler: watch the cluster, read Heat, plan and act until
    /// SIGTERM. SIGHUP reloads the configuration.
    Run(run::Args),

    /// Validate a configuration file and report every problem with its key path.
    ///
    /// Exits 0 when the file is valid, 1 when it is not. Secrets are resolved
    /// (files read, variables looked up) but never printed.
    CheckConfig(check_config::Args),

    /// Run a scenario through the simulator with the real planner and print
    /// the scaling timeline and a summary (node-hours, pending time, waits).
    ///
    /// Without a scenario file, runs the embedded php-apache walk-through.
    Simulate(Box<simulate::Args>),

    /// Plan once on the live cluster and Heat, and print why — what would be
    /// scaled up or down, which pods wait and for what — without acting.
    ///
    /// Uses the daemon's code: the watches' first list, a read of every node
    /// group's stack, one planning pass on the running leader's timers (from its
    /// status ConfigMap; fresh ones when there is none).
    /// Node level only: pod-level decisions need the running daemon's usage history.
    Explain(explain::Args),
    /// Show each node group as Heat holds it (members, their nodes, failures),
    /// or resize one: `groups scale GROUP --to N`, `groups remove GROUP MEMBER...`.
    Groups(groups::Args),

    /// Measure the planner (decision time at 100 to 10,000 nodes), memory
    /// (peak RSS per cluster size) and the simulator (simulated hours per
    /// second) on this machine, and print the tables. Build with --release.
    Bench(bench::Args),

    /// Print a shell completion script (bash, zsh, fish, elvish, powershell).
    Completions(docs::CompletionArgs),

    /// Print the man page heatscaler(8), or write every page with --dir.
    Man(docs::ManArgs),

    /// Configuration tools: `config from-ca FILE` turns a cluster-autoscaler
    /// Deployment's flags into a heatscaler configuration.
    Config(from_ca::Args),
}

pub fn run(cli: Cli) -> ExitCode {
    let result = match cli.command {
        Command::Run(args) => run::run(&cli.config, &cli.log, args),
        Command::CheckConfig(args) => check_config::run(&cli.config, args),
        Command::Simulate(args) => simulate::run(*args),
        Command::Explain(args) => explain::run(&cli.config, &cli.log, args),
        Command::Groups(args) => groups::run(&cli.config, &cli.log, args),
        Command::Bench(args) => bench::run(args),
        Command::Completions(args) => docs::completions(args),
        Command::Man(args) => docs::man(args),
        Command::Config(args) => from_ca::run(args),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("heatscaler: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// Logging to standard error (the journal, under systemd). `filter` is an
/// `EnvFilter` directive; an invalid one falls back to `fallback`.
fn init_logging(filter: &str, fallback: &str, format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_new(filter).unwrap_or_else(|_| fallback.into());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        // Colours for a person at a terminal only: not into the journal or a log file.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()));
    let _ = match format {
        LogFormat::Json => builder.json().try_init(),
        LogFormat::Text => builder.try_init(),
    };
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    /// Every argument of every command says what it is in `--help` (clap's
    /// own --help/--version aside).
    #[test]
    fn every_argument_has_a_help_text() {
        fn walk(cmd: &clap::Command, path: &str, missing: &mut Vec<String>) {
            let path = format!("{path} {}", cmd.get_name());
            for arg in cmd.get_arguments() {
                let builtin = ["help", "version"].contains(&arg.get_id().as_str());
                if !builtin && arg.get_help().is_none() && arg.get_long_help().is_none() {
                    missing.push(format!("{path}: {}", arg.get_id()));
                }
            }
            for sub in cmd.get_subcommands() {
                walk(sub, &path, missing);
            }
        }
        let mut missing = Vec::new();
        walk(&super::Cli::command(), "", &mut missing);
        assert!(missing.is_empty(), "arguments without help: {missing:#?}");
    }
}
