//! `kubesim`: a Kubernetes API test server to point kubectl (or anything) at.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use clap::Parser;
use kubesim::{KubeSim, NodeSpec, Options};

/// A Kubernetes API test server with a built-in scheduler, kubelet model and controllers.
#[derive(Parser, Debug)]
#[command(name = "kubesim", version)]
struct Args {
    /// Address to listen on (port 0 picks a free one).
    #[arg(long, default_value = "127.0.0.1:6443")]
    listen: SocketAddr,
    /// Write a kubeconfig for this server here.
    #[arg(long)]
    kubeconfig_out: Option<PathBuf>,
    /// Nodes to create at start, named <node-prefix>0..N-1.
    #[arg(long, default_value_t = 0)]
    seed_nodes: u32,
    #[arg(long, default_value = "minion-")]
    node_prefix: String,
    /// CPU capacity of seeded nodes.
    #[arg(long, default_value = "4")]
    node_cpu: String,
    /// Memory capacity of seeded nodes.
    #[arg(long, default_value = "16Gi")]
    node_memory: String,
    /// Pod capacity of seeded nodes.
    #[arg(long, default_value_t = 110)]
    node_pods: u32,
    /// Multiplier for every delay kubesim imposes (grace periods, start delays).
    #[arg(long, default_value_t = 1.0)]
    time_scale: f64,
    /// Milliseconds from binding to Running (before scaling).
    #[arg(long, default_value_t = 500)]
    pod_start_delay_ms: u64,
    /// Watch changes retained per resource type (older resourceVersions get 410 Gone).
    #[arg(long, default_value_t = 20_000)]
    watch_history: usize,
    /// Do not record Events from the built-in components.
    #[arg(long)]
    no_events: bool,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()))
        .init();
    let args = Args::parse();
    let options = Options {
        listen: args.listen,
        time_scale: args.time_scale,
        pod_start_delay: Duration::from_millis(args.pod_start_delay_ms),
        watch_history: args.watch_history,
        record_events: !args.no_events,
        ..Options::default()
    };
    let sim = KubeSim::start(options).await.context("starting kubesim")?;
    for i in 0..args.seed_nodes {
        let spec = NodeSpec::new(&format!("{}{i}", args.node_prefix))
            .cpu(&args.node_cpu)
            .memory(&args.node_memory)
            .pods(args.node_pods);
        sim.add_node(spec).with_context(|| format!("seeding node {i}"))?;
    }
    if let Some(path) = &args.kubeconfig_out {
        sim.write_kubeconfig(path).context("writing the kubeconfig")?;
        eprintln!("kubesim: kubeconfig written to {}", path.display());
    }
    eprintln!("kubesim: serving {} (admin API under /kubesim/)", sim.url());
    tokio::signal::ctrl_c().await.context("waiting for Ctrl-C")?;
    Ok(())
}
