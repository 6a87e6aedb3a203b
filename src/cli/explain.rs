//! `heatscaler explain`: one planning pass without acting. The same parts as
//! the daemon (the Kubernetes watches' store, a read of every group's Heat
//! stack, `control_loop::Planning::plan`), printed instead of carried out.
//!
//! The pod level too, when `pod-resize.enabled`: a one-shot process has no
//! usage history, so each handled VPA object's recommendation is the one its
//! status publishes (the running recommender's); the pass then says, per pod,
//! why it would be resized in place, recreated, moved, or left alone.
//!
//! The timers (unneeded-since, back-offs, last scale-up/down/failure) are the
//! running leader's, read from the status ConfigMap it publishes
//! (`control_loop::status`) when that was written within [`STATUS_FRESH`];
//! otherwise the pass starts them now, and says so.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use heatscaler_core::model::{SignedDuration, Timestamp, VerticalScaling};
use heatscaler_daemon::cloud::Cloud;
use heatscaler_daemon::cloud::group::{Backend, NodeGroupBackend};
use heatscaler_daemon::cloud::heat::HeatClient;
use heatscaler_daemon::config::Config;
use heatscaler_daemon::control_loop::{Planned, Planning};
use heatscaler_daemon::observe::{Changes, GroupRead, KubeObserver};
use heatscaler_daemon::telemetry::Metrics;
use heatscaler_daemon::vpa::{self, VerticalPodAutoscaler};

/// A status older than this is not taken for the daemon's timers (the leader
/// refreshes it every minute while it runs).
const STATUS_FRESH: Duration = Duration::from_secs(300);

/// Where the pass's timers came from.
#[derive(Debug)]
enum TimerSource {
    /// The running leader's, from its status ConfigMap.
    Daemon { leader: String, written: Timestamp },
    /// Started now; why the daemon's were not used.
    Fresh { why: String },
}

impl TimerSource {
    fn to_json(&self) -> serde_json::Value {
        match self {
            TimerSource::Daemon { leader, written } => {
                serde_json::json!({"source": "daemon", "leader": leader, "written": written.to_string()})
            }
            TimerSource::Fresh { why } => serde_json::json!({"source": "fresh", "why": why}),
        }
    }
}

impl std::fmt::Display for TimerSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TimerSource::Daemon { leader, written } => write!(
                f,
                "Timers (unneeded-time, cooldowns, backoff) are the running leader's ({leader}, status written at {written})."
            ),
            TimerSource::Fresh { why } => write!(
                f,
                "One pass with a fresh memory: timers (unneeded-time, cooldowns, backoff) start now ({why}); the running \
                 daemon's may be further along."
            ),
        }
    }
}

/// Arguments of `heatscaler explain`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Print the plan as JSON (explanation and actions) instead of text.
    #[arg(long)]
    json: bool,

    /// How long to wait for the first list of every watch and the Heat reads.
    #[arg(long, default_value = "60s", value_parser = humantime::parse_duration)]
    timeout: Duration,
}

pub fn run(config_path: &Path, log: &str, args: Args) -> anyhow::Result<ExitCode> {
    let config = heatscaler_daemon::config::load(config_path).map_err(|e| anyhow::anyhow!("{e}"))?;
    // Warnings only unless asked: stdout is the plan.
    let log = if log == "info" { "warn" } else { log };
    super::init_logging(log, "warn", heatscaler_daemon::config::LogFormat::Text);
    let runtime =
        tokio::runtime::Builder::new_multi_thread().enable_all().build().context("start the async runtime")?;
    let (planned, timers) =
        runtime.block_on(async { tokio::time::timeout(args.timeout, plan(&config)).await }).map_err(|_| {
            anyhow::anyhow!("no plan within {:?} (--timeout): the Kubernetes API or Heat is too slow", args.timeout)
        })??;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&as_json(&planned, &timers))?);
    } else {
        print_text(&planned, &config, &timers);
    }
    runtime.shutdown_timeout(Duration::from_secs(1));
    Ok(ExitCode::SUCCESS)
}

/// The mesh's traffic once, for the placement advisor's part of the
/// explanation (no usage is read here: pressure is the running daemon's).
/// A failed read is said on stderr and the plan explains it has none.
async fn read_mesh(
    config: &Config,
    store: &tokio::sync::Mutex<heatscaler_daemon::observe::ClusterStore>,
) -> Option<heatscaler_core::planner::placement::Observations> {
    if config.placement_advisor.mode == heatscaler_daemon::config::AdvisorMode::Off {
        return None;
    }
    let mesh = config.mesh_metrics.as_ref()?;
    let read = async {
        let observer = heatscaler_daemon::observe::mesh::MeshObserver::new(mesh)?;
        let series = observer.fetch().await?;
        Ok::<_, heatscaler_daemon::observe::mesh::QueryError>(observer.join(&series, store.lock().await.snapshot()))
    };
    match read.await {
        Ok(reading) => {
            Some(heatscaler_core::planner::placement::Observations { flows: reading.flows, pressure: Vec::new() })
        }
        Err(e) => {
            eprintln!("warning: the mesh's traffic could not be read from Prometheus: {e}");
            None
        }
    }
}

/// Reads Heat and the cluster, then plans once on the leader's timers (or a fresh memory).
async fn plan(config: &Config) -> anyhow::Result<(Planned, TimerSource)> {
    // Heat first: a wrong credential or an unreachable stack fails fast, before the watches list.
    let reads = read_heat(config).await?;
    let client = heatscaler_daemon::control_loop::kube_client(&config.kubernetes).await?;
    let (mut planning, source) = daemon_timers(&client, Timestamp::now()).await;
    let kube = KubeObserver::start(client.clone(), Arc::new(Metrics::new()), Changes::new());
    kube.health().wait_synced().await;
    if config.pod_resize.enabled {
        let vertical = published_vertical(&client, config).await?;
        let admission = config.pod_resize.admission_controller || config.admission_webhook.is_some();
        kube.store().lock().await.set_vertical(vertical, admission);
    }
    let policy = config.planner_policy();
    let observations = read_mesh(config, kube.store()).await;
    loop {
        if let Some(planned) = planning
            .plan(
                kube.store(),
                &reads,
                &config.node_groups,
                &policy,
                heatscaler_daemon::control_loop::Beside { pod_level: None, observations: observations.as_ref() },
                Timestamp::now(),
            )
            .await
        {
            return Ok((planned, source));
        }
        // A watch is re-listing (its resourceVersion expired): plan on the complete list.
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// The VPA objects heatscaler handles, with the recommendations their status
/// publishes. None when the cluster has no VPA CRD (nothing to handle).
async fn published_vertical(client: &kube::Client, config: &Config) -> anyhow::Result<Vec<VerticalScaling>> {
    let api: kube::Api<VerticalPodAutoscaler> = kube::Api::all(client.clone());
    let list = match api.list(&Default::default()).await {
        Ok(list) => list.items,
        Err(kube::Error::Api(e)) if e.code == 404 => return Ok(Vec::new()),
        Err(e) => return Err(e).context("list VerticalPodAutoscaler objects"),
    };
    let settings = &config.pod_resize;
    let mut out = Vec::new();
    for vpa in list.iter().filter(|v| vpa::handled_by(v, &settings.recommender_name, settings.claim_unnamed_vpas)) {
        // One that cannot be acted on says so in its own status (ConfigUnsupported).
        let Ok(mut model) = vpa::to_model(vpa, None) else { continue };
        model.recommendations = vpa::published_recommendations(vpa).unwrap_or_default();
        out.push(model);
    }
    Ok(out)
}

/// The leader's timers from its status ConfigMap, when it is there and fresh.
async fn daemon_timers(client: &kube::Client, now: Timestamp) -> (Planning, TimerSource) {
    use heatscaler_daemon::control_loop::status::{self, STATUS_CONFIGMAP, STATUS_NAMESPACE};
    let fresh = |why: String| (Planning::new(), TimerSource::Fresh { why });
    match status::read(client).await {
        Ok(Some(s)) => {
            let age = now.duration_since(s.time);
            if age > SignedDuration::try_from(STATUS_FRESH).unwrap_or(SignedDuration::MAX) {
                fresh(format!("the status ConfigMap was last written at {} by {}: no leader runs", s.time, s.leader))
            } else {
                let source = TimerSource::Daemon { leader: s.leader, written: s.time };
                (Planning::with_memory(s.timers.into_memory()), source)
            }
        }
        Ok(None) => fresh(format!("no status in ConfigMap {STATUS_NAMESPACE}/{STATUS_CONFIGMAP}")),
        Err(e) => fresh(format!("cannot read ConfigMap {STATUS_NAMESPACE}/{STATUS_CONFIGMAP}: {e}")),
    }
}

async fn read_heat(config: &Config) -> anyhow::Result<BTreeMap<String, GroupRead>> {
    if config.node_groups.is_empty() {
        return Ok(BTreeMap::new());
    }
    let names = || config.node_groups.iter().map(|g| g.name.as_str()).collect::<Vec<_>>().join(", ");
    let Some(openstack) = &config.openstack else {
        bail!("node group(s) {} are configured but there is no openstack section", names());
    };
    let cloud = Cloud::connect(openstack)
        .await
        .with_context(|| format!("node group(s) {}: cannot authenticate with OpenStack", names()))?;
    let heat = HeatClient::new(cloud);
    let mut reads = BTreeMap::new();
    for group in &config.node_groups {
        let backend = Backend::new(heat.clone(), group.clone());
        let snapshot = backend
            .read()
            .await
            .with_context(|| format!("node group {}: cannot read Heat stack {}", group.name, group.stack))?;
        reads.insert(group.name.clone(), GroupRead { snapshot, at: Instant::now() });
    }
    Ok(reads)
}

fn print_text(planned: &Planned, config: &Config, timers: &TimerSource) {
    println!(
        "{} node(s), {} pod(s) ({} unschedulable), {} node group(s)",
        planned.nodes,
        planned.pods,
        planned.unschedulable_pods,
        config.node_groups.len()
    );
    println!("{timers}\n");
    print!("{}", planned.plan.explanation);
    if planned.plan.actions.is_empty() {
        println!("\nNo action this pass.");
    } else {
        println!("\nActions this pass would take (none was taken):");
        for action in &planned.plan.actions {
            println!("  - {action}");
        }
    }
}

fn as_json(planned: &Planned, timers: &TimerSource) -> serde_json::Value {
    let actions: Vec<serde_json::Value> =
        planned.plan.actions.iter().map(|a| serde_json::json!({"description": a.to_string(), "action": a})).collect();
    serde_json::json!({
        "nodes": planned.nodes,
        "pods": planned.pods,
        "unschedulable_pods": planned.unschedulable_pods,
        "actions": actions,
        "explanation": planned.plan.explanation,
        "timers": timers.to_json(),
    })
}
