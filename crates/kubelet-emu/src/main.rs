//! `kubelet-emu`: emulated kubelets for a running control plane, steered
//! through a small admin API (see `kubelet_emu::admin`).
//!
//! ```sh
//! kubelet-emu --kubeconfig DIR/admin.kubeconfig \
//!   --tls-cert DIR/pki/kubelet-serving.crt --tls-key DIR/pki/kubelet-serving.key \
//!   --admin-listen 127.0.0.1:0 --node minion-0 --node minion-1
//! curl -X POST 127.0.0.1:PORT/nodes -d '{"name":"gpu-0","capacity":{"cpu":"8","memory":"32Gi","pods":"110","nvidia.com/gpu":"1"}}'
//! ```

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use clap::Parser;
use kubelet_emu::{Emulator, EmulatorOptions, NodeSpec, Timing};

#[derive(Parser)]
#[command(version, about = "Emulated kubelets for a real Kubernetes API server")]
struct Args {
    /// Kubeconfig of the identity the kubelets use (the admin's works).
    #[arg(long, env = "KUBECONFIG")]
    kubeconfig: PathBuf,
    /// Serving certificate and key of the kubelet endpoint (PEM).
    #[arg(long)]
    tls_cert: PathBuf,
    #[arg(long)]
    tls_key: PathBuf,
    /// Where the admin API listens; the chosen address is printed and written to --admin-address-file.
    #[arg(long, default_value = "127.0.0.1:0")]
    admin_listen: String,
    #[arg(long)]
    admin_address_file: Option<PathBuf>,
    /// Nodes to register at start (4 CPU, 16Gi each; more shapes through the admin API).
    #[arg(long = "node")]
    nodes: Vec<String>,
    /// Test timings: 1 s leases, quick starts, grace periods ×0.05 (see `Timing::fast`).
    #[arg(long)]
    fast: bool,
    /// Multiplies pods' termination grace periods (overrides --fast's).
    #[arg(long)]
    grace_period_scale: Option<f64>,
    /// Network node addresses come from, routed to the loopback interface.
    #[arg(long, env = "HEATSCALER_K8S_NODE_NET", default_value = "198.18.0.0/15")]
    node_network: String,
    /// Lease renewal interval in seconds (overrides --fast's; the lease lasts 4 intervals).
    #[arg(long)]
    lease_renew_seconds: Option<f64>,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt().with_env_filter(tracing_subscriber::EnvFilter::from_default_env()).init();
    let args = Args::parse();
    let kubeconfig = kube::config::Kubeconfig::read_from(&args.kubeconfig)
        .with_context(|| format!("reading {}", args.kubeconfig.display()))?;
    let config = kube::Config::from_custom_kubeconfig(kubeconfig, &Default::default()).await?;
    let client = kube::Client::try_from(config)?;
    let mut timing = if args.fast { Timing::fast() } else { Timing::default() };
    if let Some(scale) = args.grace_period_scale {
        timing.grace_period_scale = scale;
    }
    if let Some(secs) = args.lease_renew_seconds {
        timing.lease_renew_interval = Duration::from_secs_f64(secs);
        timing.lease_duration = Duration::from_secs_f64(secs * 4.0).max(Duration::from_secs(1));
    }
    let emulator = Arc::new(
        Emulator::start(
            EmulatorOptions::new(client, args.tls_cert, args.tls_key)
                .timing(timing)
                .node_network(kubelet_emu::parse_network(&args.node_network)?),
        )
        .await?,
    );
    for name in &args.nodes {
        let ip = emulator.add_node(NodeSpec::new(name)).await?;
        eprintln!("kubelet-emu: node {name} registered at {ip}:{}", emulator.port());
    }
    let listener = tokio::net::TcpListener::bind(&args.admin_listen).await.context("admin API listener")?;
    let address = listener.local_addr()?;
    if let Some(file) = &args.admin_address_file {
        std::fs::write(file, address.to_string()).with_context(|| format!("writing {}", file.display()))?;
    }
    println!("kubelet-emu: admin API on http://{address}, kubelet port {}", emulator.port());
    tokio::select! {
        () = kubelet_emu::admin::serve(emulator.clone(), listener) => {}
        _ = tokio::signal::ctrl_c() => {}
        () = terminate() => {}
    }
    Ok(())
}

async fn terminate() {
    match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        Ok(mut s) => {
            s.recv().await;
        }
        Err(_) => std::future::pending().await,
    }
}
