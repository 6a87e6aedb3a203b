//! `heatscaler groups`: what Heat holds for each configured node group, and
//! manual scaling through the same backend code the daemon uses.

use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, bail};
use heatscaler_daemon::cloud::Cloud;
use heatscaler_daemon::cloud::group::{Backend, GroupSnapshot, NodeGroupBackend, NodeIdentity, join_members};
use heatscaler_daemon::cloud::heat::HeatClient;
use heatscaler_daemon::config::Config;

/// Arguments of `heatscaler groups`.
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, clap::Subcommand)]
enum Command {
    /// List each group: stack status, desired and current members, member ↔ node (default).
    List,
    /// Resize a group to N members. Shrinking removes the members Heat itself
    /// would delete, and is refused where that cannot be known in advance
    /// (ResourceGroups: use `remove`).
    Scale {
        group: String,
        #[arg(long)]
        to: u32,
        /// Print what would be sent to Heat, send nothing.
        #[arg(long)]
        dry_run: bool,
    },
    /// Remove exactly these members (Heat resource names), in one stack update.
    /// heatscaler does not drain here: drain the nodes first.
    Remove {
        group: String,
        #[arg(required = true)]
        members: Vec<String>,
        #[arg(long)]
        dry_run: bool,
    },
}

pub fn run(config_path: &Path, log: &str, args: Args) -> anyhow::Result<ExitCode> {
    super::init_logging(log, "info", heatscaler_daemon::config::LogFormat::Text);
    let config = heatscaler_daemon::config::load(config_path).map_err(|e| anyhow::anyhow!("{e}"))?;
    let runtime = tokio::runtime::Runtime::new().context("start the async runtime")?;
    runtime.block_on(async move {
        let openstack = config.openstack.as_ref().context("the configuration has no openstack section")?;
        let cloud = Cloud::connect(openstack).await?;
        let heat = HeatClient::new(cloud);
        let timeout = openstack.stack_update_timeout.get();
        match args.command.unwrap_or(Command::List) {
            Command::List => list(&config, heat).await,
            Command::Scale { group, to, dry_run } => {
                let backend = backend(&config, heat, &group)?.with_settle_timeout(timeout);
                let snapshot = backend.read().await?;
                let plan = backend.plan_scale(&snapshot, to)?;
                execute(&backend, plan, dry_run, timeout).await
            }
            Command::Remove { group, members, dry_run } => {
                let backend = backend(&config, heat, &group)?.with_settle_timeout(timeout);
                let snapshot = backend.read().await?;
                let plan = backend.plan_remove(&snapshot, &members)?;
                execute(&backend, plan, dry_run, timeout).await
            }
        }
    })
}

fn backend(config: &Config, heat: HeatClient, group: &str) -> anyhow::Result<Backend> {
    let Some(g) = config.group(group) else {
        let known: Vec<_> = config.node_groups.iter().map(|g| g.name.as_str()).collect();
        bail!("no node group named {group} in the configuration (groups: {})", known.join(", "));
    };
    Ok(Backend::new(heat, g.clone()))
}

async fn execute(
    backend: &Backend,
    plan: heatscaler_daemon::cloud::group::SizeChange,
    dry_run: bool,
    timeout: Duration,
) -> anyhow::Result<ExitCode> {
    if dry_run {
        println!("dry run: {plan}");
        return Ok(ExitCode::SUCCESS);
    }
    println!("{plan}");
    backend.apply(&plan).await?;
    println!("sent; waiting for Heat to finish ...");
    let done = backend.wait_settled(timeout).await?;
    println!("stack {} is {}; {} member(s)", done.stack, done.stack_status, done.members.len());
    if done.stack_status.ends_with("_FAILED") {
        println!("  reason: {}", done.stack_status_reason);
        return Ok(ExitCode::FAILURE);
    }
    Ok(ExitCode::SUCCESS)
}

async fn list(config: &Config, heat: HeatClient) -> anyhow::Result<ExitCode> {
    let nodes = match kubernetes_nodes(config).await {
        Ok(nodes) => Some(nodes),
        Err(e) => {
            println!("Kubernetes is not reachable ({e}); listing Heat only.\n");
            None
        }
    };
    let mut ok = true;
    for g in &config.node_groups {
        let backend = Backend::new(heat.clone(), g.clone());
        match backend.read().await {
            Ok(snapshot) => print_group(g, &snapshot, nodes.as_deref()),
            Err(e) => {
                ok = false;
                println!("{e}\n");
            }
        }
    }
    Ok(if ok { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}

fn print_group(g: &heatscaler_daemon::config::NodeGroupConfig, s: &GroupSnapshot, nodes: Option<&[NodeIdentity]>) {
    let busy = if s.busy { ", busy" } else { "" };
    println!(
        "group {}  stack {} ({}{busy})  desired {}, members {} (min {}, max {})",
        g.name,
        s.stack,
        s.stack_status,
        s.desired,
        s.members.len(),
        g.min_size,
        g.max_size
    );
    let join = nodes.map(|n| join_members(&g.name, &s.members, &g.node_mapping, n));
    println!("  {:<14} {:<18} {:<38} NODE", "MEMBER", "HEAT STATUS", "SERVER");
    let mut order: Vec<usize> = (0..s.members.len()).collect();
    order.sort_by(|&a, &b| {
        (s.members[a].heat_created.as_deref(), &s.members[a].name)
            .cmp(&(s.members[b].heat_created.as_deref(), &s.members[b].name))
    });
    for i in order {
        let m = &s.members[i];
        let node = match &join {
            Some(j) => j.members[i].node_name.clone().unwrap_or_else(|| "-".into()),
            None => "?".into(),
        };
        println!("  {:<14} {:<18} {:<38} {node}", m.name, m.heat_status, m.server_id.as_deref().unwrap_or("-"));
        if m.heat_failed() {
            println!("  {:<14} reason: {}", "", m.status_reason.as_deref().unwrap_or("(none given)"));
        }
    }
    if let Some(j) = &join {
        if !j.members_without_node.is_empty() {
            println!("  members without a node: {}", j.members_without_node.join(", "));
        }
        if !j.nodes_without_member.is_empty() {
            println!("  nodes without a member: {}", j.nodes_without_member.join(", "));
        }
    }
    println!();
}

async fn kubernetes_nodes(config: &Config) -> anyhow::Result<Vec<NodeIdentity>> {
    use k8s_openapi::api::core::v1::Node;
    // The daemon's own client: the same kubeconfig reading (bounded, errors
    // without the file's content) and the same credential handling.
    let client = heatscaler_daemon::control_loop::kube_client(&config.kubernetes).await?;
    let api: kube::Api<Node> = kube::Api::all(client);
    let list = tokio::time::timeout(Duration::from_secs(15), api.list(&Default::default()))
        .await
        .context("listing nodes timed out")??;
    Ok(list
        .items
        .into_iter()
        .map(|n| NodeIdentity {
            name: n.metadata.name.unwrap_or_default(),
            provider_id: n.spec.and_then(|s| s.provider_id),
            labels: n.metadata.labels.unwrap_or_default(),
        })
        .collect())
}
