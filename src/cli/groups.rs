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

    /// How the listing is printed: `text` for people, `json` or `yaml` for tools.
    #[arg(short = 'o', long, value_enum, default_value_t = Format::Text, global = true)]
    output: Format,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
enum Format {
    Text,
    Json,
    Yaml,
}

#[derive(Debug, clap::Subcommand)]
enum Command {
    /// List each group: stack status, desired and current members, member ↔ node (default).
    List,
    /// Validate every group against Heat and Kubernetes: the stack, the group
    /// resource and its type, the parameters, the removal wiring (asked of Heat
    /// by preview) and the mapping of members to nodes. Exits non-zero on any problem.
    Check,
    /// Resize a group to N members. Shrinking removes the members Heat itself
    /// would delete, and is refused where that cannot be known in advance
    /// (ResourceGroups: use `remove`).
    Scale {
        /// The node group, by its name in the configuration (`node-groups[].name`).
        group: String,
        /// The number of members the group should have; within its min-size and max-size.
        #[arg(long, value_name = "N")]
        to: u32,
        /// Print what would be sent to Heat, send nothing.
        #[arg(long)]
        dry_run: bool,
    },
    /// Remove exactly these members (Heat resource names), in one stack update.
    /// heatscaler does not drain here: drain the nodes first.
    Remove {
        /// The node group, by its name in the configuration (`node-groups[].name`).
        group: String,
        /// Heat resource names of the members to remove (the MEMBER column of `groups`).
        #[arg(required = true)]
        members: Vec<String>,
        /// Print the stack update that would remove them, send nothing.
        #[arg(long)]
        dry_run: bool,
    },
}

pub fn run(config_path: &Path, log: &str, args: Args) -> anyhow::Result<ExitCode> {
    // kube-rs logs its own ERROR line when the API server is unreachable; the
    // listing says so in its words ("Kubernetes is not reachable ...").
    super::init_logging(
        &format!("{log},kube_client=off"),
        "info,kube_client=off",
        heatscaler_daemon::config::LogFormat::Text,
    );
    // Alerts are not sent from here: a sink whose secret is missing is a warning, not a stop.
    let (config, unused) =
        heatscaler_daemon::config::load_without(config_path, "alerts").map_err(|e| anyhow::anyhow!("{e}"))?;
    if let Some(problems) = unused {
        eprintln!("warning: the alerts section has problems (not used by `groups`; `run` refuses them):\n{problems}");
    }
    let runtime = tokio::runtime::Runtime::new().context("start the async runtime")?;
    runtime.block_on(async move {
        let openstack = config.openstack.as_ref().context("the configuration has no openstack section")?;
        let cloud = Cloud::connect(openstack).await?;
        let heat = HeatClient::new(cloud);
        let timeout = openstack.stack_update_timeout.get();
        match args.command.unwrap_or(Command::List) {
            Command::List => list(&config, heat, args.output).await,
            Command::Check => check(&config, heat).await,
            Command::Scale { group, to, dry_run } => {
                let backend = backend(&config, heat, &group)?.with_settle_timeout(timeout);
                let snapshot = backend.read().await?;
                let plan = backend.plan_scale(&snapshot, to)?;
                execute(&backend, &snapshot, plan, dry_run, timeout).await
            }
            Command::Remove { group, members, dry_run } => {
                let backend = backend(&config, heat, &group)?.with_settle_timeout(timeout);
                let snapshot = backend.read().await?;
                let plan = backend.plan_remove(&snapshot, &members)?;
                execute(&backend, &snapshot, plan, dry_run, timeout).await
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
    before: &heatscaler_daemon::cloud::group::GroupSnapshot,
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
    // Which members really left: exactly the named ones, or say what Heat did instead.
    let gone: Vec<&str> = before.members.iter().map(|m| m.name.as_str()).filter(|m| done.member(m).is_none()).collect();
    let unexpected: Vec<&&str> = gone.iter().filter(|m| !plan.victims.iter().any(|v| v == *m)).collect();
    let kept: Vec<&String> = plan.victims.iter().filter(|v| done.member(v).is_some()).collect();
    if !unexpected.is_empty() || (!kept.is_empty() && !done.stack_status.ends_with("_FAILED")) {
        println!(
            "MISMATCH: Heat removed {gone:?}, not exactly the requested {:?} (still there: {kept:?})",
            plan.victims
        );
        return Ok(ExitCode::FAILURE);
    }
    if !plan.victims.is_empty() && kept.is_empty() {
        println!("removed exactly {}", plan.victims.join(", "));
    }
    if done.stack_status.ends_with("_FAILED") {
        println!("  reason: {}", done.stack_status_reason);
        return Ok(ExitCode::FAILURE);
    }
    Ok(ExitCode::SUCCESS)
}

/// What `groups check` finds wrong with one group, in words; empty when nothing.
async fn problems(
    g: &heatscaler_daemon::config::NodeGroupConfig,
    heat: &HeatClient,
    nodes: Option<&[NodeIdentity]>,
) -> Vec<String> {
    let backend = Backend::new(heat.clone(), g.clone());
    // The stack, the resource, its type, the count parameter: everything `read` needs.
    let snapshot = match backend.read().await {
        Ok(s) => s,
        Err(e) => return vec![e.to_string()],
    };
    let mut found = Vec::new();
    let b = &g.backend;
    let declared = |p: &Option<String>, key: &str, found: &mut Vec<String>| {
        if let Some(p) = p
            && !snapshot.has_parameter(p)
        {
            found.push(format!("backend.{key} {p} is not a parameter of stack {}", snapshot.stack));
        }
    };
    declared(&b.removal_parameter, "removal-parameter", &mut found);
    declared(&b.desired_capacity_parameter, "desired-capacity-parameter", &mut found);
    if let Backend::AutoscalingGroup(asg) = &backend {
        for policy in [&b.scale_up_policy, &b.scale_down_policy].into_iter().flatten() {
            if let Err(e) = asg.policy_step(&snapshot.stack, policy).await {
                found.push(e.to_string());
            }
        }
    }
    if found.is_empty()
        && let Err(e) = backend.verify_removal(&snapshot).await
    {
        found.push(e.to_string());
    }
    match nodes {
        None => found.push("Kubernetes is not reachable: the mapping of members to nodes is unchecked".into()),
        Some(nodes) => {
            let join = join_members(&g.name, &snapshot.members, &g.node_mapping, nodes);
            if !join.members_without_node.is_empty() {
                found.push(format!(
                    "member(s) {} map to no node (node-mapping by {:?})",
                    join.members_without_node.join(", "),
                    g.node_mapping.by
                ));
            }
            if !join.nodes_without_member.is_empty() {
                found.push(format!(
                    "node(s) {} are labelled for this group but no member maps to them",
                    join.nodes_without_member.join(", ")
                ));
            }
        }
    }
    found
}

async fn check(config: &Config, heat: HeatClient) -> anyhow::Result<ExitCode> {
    let nodes = kubernetes_nodes(config).await.ok();
    let mut ok = true;
    for g in &config.node_groups {
        let found = problems(g, &heat, nodes.as_deref()).await;
        if found.is_empty() {
            println!("group {}: ok", g.name);
        } else {
            ok = false;
            for p in found {
                println!("group {}: PROBLEM: {p}", g.name);
            }
        }
    }
    Ok(if ok { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}

async fn list(config: &Config, heat: HeatClient, format: Format) -> anyhow::Result<ExitCode> {
    let nodes = match kubernetes_nodes(config).await {
        Ok(nodes) => Some(nodes),
        Err(e) if format == Format::Text => {
            println!("Kubernetes is not reachable ({e}); listing Heat only.\n");
            None
        }
        Err(e) => {
            // Standard output is the document; nodes are `null` in it.
            eprintln!("Kubernetes is not reachable ({e}); listing Heat only.");
            None
        }
    };
    let mut ok = true;
    let mut documents = Vec::new();
    for g in &config.node_groups {
        let backend = Backend::new(heat.clone(), g.clone());
        match backend.read().await {
            Ok(snapshot) if format == Format::Text => print_group(g, &snapshot, nodes.as_deref()),
            Ok(snapshot) => documents.push(group_document(g, &snapshot, nodes.as_deref())),
            Err(e) => {
                ok = false;
                match format {
                    Format::Text => println!("{e}\n"),
                    _ => documents.push(serde_json::json!({"group": g.name, "error": e.to_string()})),
                }
            }
        }
    }
    match format {
        Format::Text => {}
        Format::Json => println!("{}", serde_json::to_string_pretty(&documents)?),
        Format::Yaml => print!("{}", heatscaler_core::yaml::to_string(&documents)?),
    }
    Ok(if ok { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}

/// One group for `-o json|yaml`: what the text listing shows, with `node`
/// `null` when Kubernetes could not be read.
fn group_document(
    g: &heatscaler_daemon::config::NodeGroupConfig,
    s: &GroupSnapshot,
    nodes: Option<&[NodeIdentity]>,
) -> serde_json::Value {
    let join = nodes.map(|n| join_members(&g.name, &s.members, &g.node_mapping, n));
    let members: Vec<serde_json::Value> = s
        .members
        .iter()
        .enumerate()
        .map(|(i, m)| {
            serde_json::json!({
                "name": m.name,
                "heat-status": m.heat_status,
                "status-reason": m.status_reason,
                "server-id": m.server_id,
                "created": m.heat_created,
                "node": join.as_ref().and_then(|j| j.members[i].node_name.clone()),
            })
        })
        .collect();
    serde_json::json!({
        "group": g.name,
        "stack": s.stack.to_string(),
        "stack-status": s.stack_status,
        "busy": s.busy,
        "desired": s.desired,
        "min-size": g.min_size,
        "max-size": g.max_size,
        "members": members,
        "members-without-node": join.as_ref().map(|j| j.members_without_node.clone()),
        "nodes-without-member": join.as_ref().map(|j| j.nodes_without_member.clone()),
    })
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
