//! End-to-end harness: the daemon binary as a child process against a
//! Kubernetes and the real Keystone + Heat of `tests/support/openstack.rs`
//! (as `crate::support`), with one test stack per node group, minions whose
//! kubelets register as Heat creates them ([`minions`]), and a webhook receiver.
//!
//! The Kubernetes is, per scenario, either
//! - **the real control plane** (default): `tests/kubernetes/up.sh` through
//!   `crate::kubernetes` (one per scenario, so scenarios run side by side), with
//!   emulated kubelets; the daemon runs as the shipped `heatscaler`
//!   ServiceAccount bound to `config/kubernetes/rbac.yaml` as shipped, and any
//!   403 it meets — in the API server's audit log or in its own log — fails the
//!   scenario when the [`World`] is dropped; or
//! - **kubesim** in this process, for what the real control plane cannot do on
//!   demand (thousands of nodes).
//!
//! The harness itself reads and writes Kubernetes through an admin client only.

#![allow(dead_code)]

pub mod cluster;
pub mod daemon;
pub mod faultproxy;
pub mod kubelets;
pub mod minions;
pub mod vpa_admission;
pub mod webhook;

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use heatscaler_core::planner::protocol;
use heatscaler_daemon::cloud::group::{Backend, GroupSnapshot, NodeGroupBackend};
use heatscaler_daemon::cloud::heat::{NewStack, StackRef};
use k8s_openapi::api::core::v1::{Node, Pod};
use kubesim::{KubeSim, KubeSimHandle};
use serde_json::json;

use crate::kubernetes::{AuditMark, Knobs, TestKubernetes};
use crate::support::{create_stack, openstack, repo_root, unique_name};
pub use daemon::DaemonProcess;
pub use kubelets::{Kubelets, Shape};
pub use minions::{Minions, node_name};
pub use webhook::Webhooks;

/// Scenarios running at once in one test binary (`HEATSCALER_E2E_PARALLEL`,
/// default 2): each has its own control plane, daemon and stacks, but they
/// share the machine and the binary's one Heat engine.
pub async fn slot() -> tokio::sync::SemaphorePermit<'static> {
    static SLOTS: std::sync::OnceLock<tokio::sync::Semaphore> = std::sync::OnceLock::new();
    let n = std::env::var("HEATSCALER_E2E_PARALLEL").ok().and_then(|v| v.parse().ok()).unwrap_or(2);
    SLOTS.get_or_init(|| tokio::sync::Semaphore::new(n)).acquire().await.unwrap()
}

pub const GROUP: &str = "workers";
pub const NS: &str = "default";

/// The Heat template of a group.
#[derive(Clone, Debug)]
pub enum Template {
    /// `heat-templates/test/resource-group.yaml`.
    ResourceGroup,
    /// `resource-group-flaky.yaml`: the member with this index fails to create.
    FlakyResourceGroup { failing_index: String },
    /// `resource-group-unwired.yaml`: `minions_to_remove` is declared but
    /// `removal_policies` do not use it (a template mistake).
    UnwiredRemoval,
}

/// One more node group besides `workers` (its own stack).
#[derive(Clone, Debug)]
pub struct GroupSpec {
    pub name: &'static str,
    pub initial: u32,
    pub min: u32,
    pub max: u32,
    pub shape: Shape,
    /// The `priority` of the group (for the priority expander).
    pub priority: i32,
}

/// Which Kubernetes a world runs on.
#[derive(Clone, Debug)]
pub enum Kube {
    /// The real control plane (`tests/kubernetes/up.sh` with these knobs) and
    /// emulated kubelets with this timing.
    Real { knobs: Knobs, kubelet: kubelet_emu::Timing },
    /// kubesim in this process.
    Kubesim(kubesim::Options),
}

impl Kube {
    pub fn real() -> Kube {
        Kube::Real { knobs: Knobs::default(), kubelet: kubelet_emu::Timing::fast() }
    }
}

/// What a test world looks like: the `workers` group, other groups, the daemon's configuration.
#[derive(Clone, Debug)]
pub struct Spec {
    pub template: Template,
    pub initial: u32,
    pub min: u32,
    pub max: u32,
    /// Every `workers` minion's capacity.
    pub node_cpu: &'static str,
    pub node_memory: &'static str,
    pub more_groups: Vec<GroupSpec>,
    pub kube: Kube,
    /// `workers` members whose node never registers (a VM that never joins).
    pub never_join: Vec<&'static str>,
    /// YAML merged under the top-level keys of the daemon's configuration
    /// (`scale-down: {unneeded-time: 5s}` ...), after the defaults below.
    pub overrides: &'static str,
    /// A configured group whose stack does not exist (a misconfiguration).
    pub broken_group: Option<&'static str>,
}

impl Default for Spec {
    fn default() -> Self {
        Spec {
            template: Template::ResourceGroup,
            initial: 2,
            min: 0,
            max: 6,
            node_cpu: "2",
            node_memory: "4Gi",
            more_groups: Vec::new(),
            kube: Kube::real(),
            never_join: Vec::new(),
            overrides: "",
            broken_group: None,
        }
    }
}

pub struct World {
    /// Dropped first: no minion boots or goes while the rest is torn down.
    pub minions: Minions,
    pub kubelets: Arc<Kubelets>,
    /// The cluster administrator's client (the harness's; never the daemon's).
    pub client: kube::Client,
    pub hooks: Webhooks,
    /// `workers`.
    pub stack: StackRef,
    pub backend: Arc<Backend>,
    /// Every group by name, `workers` included.
    pub backends: BTreeMap<String, Arc<Backend>>,
    pub config_path: PathBuf,
    pub telemetry: SocketAddr,
    pub config_text: String,
    audit: Option<AuditMark>,
    pub sim: Option<Arc<KubeSimHandle>>,
    /// The control plane; dropping it stops it (`down.sh`).
    pub k8s: Option<TestKubernetes>,
    pub dir: tempfile::TempDir,
    started: Instant,
}

/// A loopback port free right now.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

fn group_stack(name: &str, template: &Template, initial: u32) -> NewStack {
    let dir = repo_root().join("heat-templates/test");
    let read = |f: &str| std::fs::read_to_string(dir.join(f)).unwrap_or_else(|e| panic!("{f}: {e}"));
    let mut environment = heatscaler_core::yaml::parse_value(&read("no-nova.env.yaml")).unwrap();
    let (file, params, minion) = match template {
        Template::ResourceGroup => {
            environment["resource_registry"]["Heatscaler::Minion"] = "minion.yaml".into();
            ("resource-group.yaml", json!({"number_of_minions": initial}), "minion.yaml")
        }
        Template::UnwiredRemoval => {
            environment["resource_registry"]["Heatscaler::Minion"] = "minion.yaml".into();
            ("resource-group-unwired.yaml", json!({"number_of_minions": initial}), "minion.yaml")
        }
        Template::FlakyResourceGroup { failing_index } => {
            environment["resource_registry"]["Heatscaler::FlakyMinion"] = "flaky-minion.yaml".into();
            (
                "resource-group-flaky.yaml",
                json!({"number_of_minions": initial, "failing_index": failing_index}),
                "flaky-minion.yaml",
            )
        }
    };
    NewStack {
        name: name.to_string(),
        template: read(file),
        files: vec![(minion.into(), read(minion))],
        environment: Some(environment),
        parameters: params.as_object().cloned().unwrap_or_default(),
        timeout_mins: Some(10),
    }
}

/// A `node-groups` entry of the daemon's configuration.
fn group_config(name: &str, stack: &str, min: u32, max: u32, shape: &Shape, priority: i32) -> serde_json::Value {
    let mut labels = json!(shape.labels);
    labels[minions::GROUP_LABEL] = name.into();
    let taints: Vec<_> = shape.taints.iter().map(|(k, v, e)| json!({"key": k, "value": v, "effect": e})).collect();
    json!({
        "name": name,
        "stack": stack,
        "backend": {
            "kind": "resource-group",
            "resource": "kube_minions",
            "count-parameter": "number_of_minions",
            "removal-parameter": "minions_to_remove",
        },
        "min-size": min,
        "max-size": max,
        "node-mapping": {"by": "provider-id"},
        "node-template": {"allocatable": shape.allocatable(), "labels": labels, "taints": taints},
        "priority": priority,
    })
}

impl World {
    pub async fn new(spec: Spec) -> World {
        let started = Instant::now();
        let os = openstack();
        let heat = os.heat().await;
        let mut dir = tempfile::Builder::new().prefix("heatscaler-e2e-").tempdir().unwrap();
        if std::env::var_os("HEATSCALER_E2E_KEEP").is_some() {
            dir.disable_cleanup(true);
            println!("keeping {}", dir.path().display());
        }

        // Kubernetes first (about 10 s for a control plane), the stacks meanwhile.
        let workers_shape = Shape::new(spec.node_cpu, spec.node_memory);
        let stacks = {
            let heat = &heat;
            let spec = &spec;
            async move {
                let mut stacks = Vec::new();
                let name = unique_name("e2e");
                stacks.push((
                    GROUP.to_string(),
                    create_stack(heat, &group_stack(&name, &spec.template, spec.initial)).await,
                    name,
                ));
                for g in &spec.more_groups {
                    let name = unique_name(&format!("e2e-{}", g.name));
                    let stack = create_stack(heat, &group_stack(&name, &Template::ResourceGroup, g.initial)).await;
                    stacks.push((g.name.to_string(), stack, name));
                }
                stacks
            }
        };
        let kube = async {
            match &spec.kube {
                Kube::Real { knobs, kubelet } => {
                    let knobs = knobs.clone();
                    let k8s = tokio::task::spawn_blocking(move || TestKubernetes::start(knobs)).await.unwrap();
                    let emu = k8s.emulator(kubelet.clone()).await;
                    let client = k8s.admin().await;
                    let audit = k8s.audit_mark();
                    (Some(k8s), None, Kubelets::Emulated(Box::new(emu)), client, Some(audit))
                }
                Kube::Kubesim(options) => {
                    let sim = Arc::new(KubeSim::start(options.clone()).await.unwrap());
                    let client = sim.kube_client().unwrap();
                    (None, Some(sim.clone()), Kubelets::Kubesim(sim), client, None)
                }
            }
        };
        let (stacks, (k8s, sim, kubelets, client, audit)) = tokio::join!(stacks, kube);
        let kubeconfig = match (&k8s, &sim) {
            (Some(k8s), _) => k8s.heatscaler_kubeconfig(),
            (None, Some(sim)) => {
                let path = dir.path().join("kubeconfig");
                sim.write_kubeconfig(&path).unwrap();
                path
            }
            (None, None) => unreachable!(),
        };

        let hooks = Webhooks::start().await;
        let telemetry: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
        let mut groups = vec![group_config(GROUP, &stacks[0].2, spec.min, spec.max, &workers_shape, 0)];
        for (g, (_, _, stack)) in spec.more_groups.iter().zip(&stacks[1..]) {
            groups.push(group_config(g.name, stack, g.min, g.max, &g.shape, g.priority));
        }
        if let Some(name) = spec.broken_group {
            groups.push(group_config(name, &unique_name("no-such-stack"), 0, 3, &workers_shape, 0));
        }
        let config = json!({
            "kubernetes": {"access": "kubeconfig", "kubeconfig": kubeconfig},
            "openstack": {
                "cloud": "heatscaler",
                "clouds-yaml": os.clouds_yaml(),
                "request-timeout": "30s",
                "stack-update-timeout": "5m",
            },
            "node-groups": groups,
            "scale-up": {
                "new-pod-scale-up-delay": "0s",
                "max-node-provision-time": "60s",
                "backoff-initial": "3s",
                "backoff-max": "10s",
            },
            "scale-down": {
                "unneeded-time": "3s",
                "delay-after-add": "1s",
                "delay-after-delete": "1s",
                "delay-after-failure": "1s",
                "cooldown-before-removal": "2s",
                "max-eviction-time": "30s",
                "max-graceful-termination": "10s",
                // The scenarios' pods are seconds old when they are drained.
                "min-pod-age": "0s",
                "skip-nodes-with-system-pods": false,
            },
            "pod-resize": {"enabled": false},
            "alerts": {
                "kubernetes-events": true,
                "dedup-window": "1s",
                "retry-initial": "100ms",
                "retry-max": "1s",
                "sinks": [{"kind": "webhook", "name": "e2e", "url": hooks.url, "include-details": true}],
            },
            "telemetry": {"listen": telemetry.to_string()},
            // Where the lease goes is the daemon's default: the shipped Role
            // (config/kubernetes/rbac.yaml) must grant it.
            "leader-election": {"enabled": false},
            "daemon": {"debounce": "100ms", "resync-interval": "1s", "heat-poll-interval": "2s"},
        });
        let config_text = merge_yaml(&serde_json::to_string_pretty(&config).unwrap(), spec.overrides);
        let config_path = dir.path().join("heatscaler.yaml");
        std::fs::write(&config_path, &config_text).unwrap();
        let config = heatscaler_daemon::config::load(&config_path).unwrap_or_else(|e| panic!("{e}"));

        let mut backends = BTreeMap::new();
        let mut joining = Vec::new();
        let shapes = std::iter::once(workers_shape).chain(spec.more_groups.iter().map(|g| g.shape.clone()));
        for ((name, _, _), shape) in stacks.iter().zip(shapes) {
            let backend = Arc::new(Backend::new(heat.clone(), config.group(name).unwrap().clone()));
            backends.insert(name.clone(), backend.clone());
            joining.push(minions::Joining { backend, shape });
        }
        let never_join: BTreeSet<String> = spec.never_join.iter().map(|m| format!("{GROUP}/{m}")).collect();
        let kubelets = Arc::new(kubelets);
        let minions = Minions::start(kubelets.clone(), client.clone(), joining, never_join);
        let stack = stacks[0].1.clone();
        let backend = backends[GROUP].clone();
        let world = World {
            minions,
            kubelets,
            client,
            hooks,
            stack,
            backend,
            backends,
            config_path,
            telemetry,
            config_text,
            audit,
            sim,
            k8s,
            dir,
            started,
        };
        let n = (spec.initial as usize - spec.never_join.len())
            + spec.more_groups.iter().map(|g| g.initial as usize).sum::<usize>();
        world
            .wait("the initial minions' nodes Ready", Duration::from_secs(90), async || {
                world.nodes().await.iter().filter(|n| cluster::is_ready(n)).count() >= n
            })
            .await;
        if world.k8s.is_some() {
            world
                .wait("the default ServiceAccount", Duration::from_secs(60), async || {
                    world.get::<k8s_openapi::api::core::v1::ServiceAccount>(NS, "default").await.is_some()
                })
                .await;
        }
        println!("world ready in {:?}", started.elapsed());
        world
    }

    pub fn is_real(&self) -> bool {
        self.k8s.is_some()
    }

    pub fn start_daemon(&self, extra: &[&str]) -> DaemonProcess {
        DaemonProcess::start(&self.config_path, &self.dir.path().join("daemon.log"), self.telemetry, extra)
    }

    pub async fn ready_daemon(&self) -> DaemonProcess {
        let mut d = self.start_daemon(&[]);
        d.wait_ready(Duration::from_secs(60)).await;
        d
    }

    /// The last lines of the daemon's log, for failure messages.
    pub fn daemon_log_tail(&self, lines: usize) -> String {
        let text = std::fs::read_to_string(self.dir.path().join("daemon.log")).unwrap_or_default();
        let all: Vec<&str> = text.lines().collect();
        all[all.len().saturating_sub(lines)..].join("\n")
    }

    /// What a failed wait prints: every alert received, the daemon's log above
    /// DEBUG (its decisions and actions, which the polling at DEBUG buries in a
    /// plain tail), and the last lines of all of it.
    pub fn failure_context(&self) -> String {
        let text = std::fs::read_to_string(self.dir.path().join("daemon.log")).unwrap_or_default();
        let notable: Vec<&str> = text.lines().filter(|l| !l.contains(" DEBUG ") && !l.contains(" TRACE ")).collect();
        format!(
            "--- alerts received ---\n{}\n--- daemon log above DEBUG (last 80 lines) ---\n{}\n\
             --- daemon log (last 25 lines) ---\n{}",
            self.hooks.transcript(),
            notable[notable.len().saturating_sub(80)..].join("\n"),
            self.daemon_log_tail(25)
        )
    }

    /// Polls `condition` until it holds; fails with `what` and the daemon's log tail.
    pub async fn wait(&self, what: &str, timeout: Duration, mut condition: impl AsyncFnMut() -> bool) {
        let deadline = Instant::now() + timeout;
        loop {
            if condition().await {
                return;
            }
            if Instant::now() > deadline {
                panic!("{what}: not within {timeout:?}\n{}", self.failure_context());
            }
            tokio::time::sleep(Duration::from_millis(150)).await;
        }
    }

    pub async fn heat(&self) -> GroupSnapshot {
        self.backend.read().await.unwrap()
    }

    pub async fn heat_of(&self, group: &str) -> GroupSnapshot {
        self.backends[group].read().await.unwrap()
    }

    /// Polls Heat until `condition` holds.
    pub async fn wait_heat(
        &self,
        what: &str,
        timeout: Duration,
        condition: impl Fn(&GroupSnapshot) -> bool,
    ) -> GroupSnapshot {
        self.wait_heat_of(GROUP, what, timeout, condition).await
    }

    pub async fn wait_heat_of(
        &self,
        group: &str,
        what: &str,
        timeout: Duration,
        condition: impl Fn(&GroupSnapshot) -> bool,
    ) -> GroupSnapshot {
        let deadline = Instant::now() + timeout;
        loop {
            let s = self.heat_of(group).await;
            if condition(&s) {
                return s;
            }
            assert!(
                Instant::now() < deadline,
                "Heat ({group}): {what} not within {timeout:?} (now {} desired, members {:?}, {})\n{}",
                s.desired,
                members(&s),
                s.stack_status,
                self.failure_context()
            );
            tokio::time::sleep(Duration::from_millis(150)).await;
        }
    }

    /// The end state of the removal scenarios (a `keeper` pod on workers-1,
    /// three `filler` pods drained off workers-0): member 0 alone removed from
    /// Heat, its Node deleted, every pod running on workers-1, no node left
    /// tainted, cordoned or annotated.
    pub async fn assert_only_workers_0_removed(&self) {
        let (heat, kube) = (Duration::from_secs(120), Duration::from_secs(60));
        let (m0, m1) = (node_name(GROUP, "0"), node_name(GROUP, "1"));
        let s = self.wait_heat("member 1 only", heat, |s| members(s) == ["1"] && !s.busy).await;
        assert_eq!(s.desired, 1);
        self.wait("workers-0 deleted", kube, async || self.node(&m0).await.is_none()).await;
        self.wait("every filler pod running on workers-1", kube, async || self.running_on("filler", &m1).await == 3)
            .await;
        self.wait("no filler pod left terminating", kube, async || self.pods("filler").await.len() == 3).await;
        assert_eq!(self.running_on("keeper", &m1).await, 1);
        for n in self.nodes().await {
            untouched(&n).unwrap();
        }
        assert_eq!(self.minions.log(|l| l.removed.clone()), ["0".to_string()].into(), "exactly the drained minion");
    }
}

impl Drop for World {
    /// heatscaler runs with the shipped RBAC: a 403 anywhere fails the
    /// scenario — in the API server's audit log of its ServiceAccount, or in
    /// any daemon log of this world.
    fn drop(&mut self) {
        let mut found: Vec<String> = self.audit.as_ref().map(AuditMark::forbidden_since).unwrap_or_default();
        for entry in std::fs::read_dir(self.dir.path()).into_iter().flatten().flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.starts_with("daemon") && name.ends_with(".log") {
                found.extend(daemon::forbidden_lines(&entry.path()).into_iter().map(|l| format!("{name}: {l}")));
            }
        }
        println!("scenario world lived {:?}", self.started.elapsed());
        if found.is_empty() {
            return;
        }
        let message = format!("heatscaler met 403 Forbidden with the shipped RBAC:\n{}", found.join("\n"));
        if std::thread::panicking() {
            // Already failing: say it too, it may be why.
            eprintln!("{message}");
        } else {
            panic!("{message}");
        }
    }
}

pub fn members(s: &GroupSnapshot) -> Vec<String> {
    let mut m: Vec<String> = s.members.iter().map(|m| m.name.clone()).collect();
    m.sort();
    m
}

pub fn is_running(p: &Pod) -> bool {
    p.metadata.deletion_timestamp.is_none() && p.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Running")
}

pub fn node_of(p: &Pod) -> Option<&str> {
    p.spec.as_ref().and_then(|s| s.node_name.as_deref())
}

pub fn is_unschedulable(p: &Pod) -> bool {
    p.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .into_iter()
        .flatten()
        .any(|c| c.type_ == "PodScheduled" && c.status == "False" && c.reason.as_deref() == Some("Unschedulable"))
}

/// Whatever heatscaler leaves on a node it is not removing must be gone:
/// the removal taint, any protocol annotation, and its cordon.
pub fn untouched(node: &Node) -> Result<(), String> {
    let name = node.metadata.name.as_deref().unwrap_or_default();
    let spec = node.spec.as_ref();
    if spec.and_then(|s| s.unschedulable) == Some(true) {
        return Err(format!("node {name} is cordoned"));
    }
    if spec.and_then(|s| s.taints.as_ref()).into_iter().flatten().any(|t| t.key == protocol::REMOVAL_TAINT) {
        return Err(format!("node {name} still has the removal taint"));
    }
    if let Some(marks) = departure_marks(node) {
        return Err(format!("node {name} still carries cluster-autoscaler's marks: {marks}"));
    }
    let annotations: BTreeMap<String, String> = node.metadata.annotations.clone().unwrap_or_default();
    if let Some(k) = annotations.keys().find(|k| protocol::REMOVAL_ANNOTATIONS.contains(&k.as_str())) {
        return Err(format!("node {name} still has annotation {k}"));
    }
    Ok(())
}

/// cluster-autoscaler's signs of a departing node that heatscaler put on it:
/// its taint (as `key=value:effect`) and the exclude-from-LB label with
/// heatscaler's value; `None` if it carries neither.
pub fn departure_marks(node: &Node) -> Option<String> {
    let taints = node.spec.as_ref().and_then(|s| s.taints.as_ref()).into_iter().flatten();
    let mut marks: Vec<String> = taints
        .filter(|t| t.key == protocol::CA_REMOVAL_TAINT)
        .map(|t| format!("{}={}:{}", t.key, t.value.as_deref().unwrap_or_default(), t.effect))
        .collect();
    let labels = node.metadata.labels.as_ref();
    if let Some(v) = labels.and_then(|l| l.get(protocol::EXCLUDE_FROM_LB_LABEL))
        && v == protocol::EXCLUDE_FROM_LB_VALUE
    {
        marks.push(format!("{}={v}", protocol::EXCLUDE_FROM_LB_LABEL));
    }
    (!marks.is_empty()).then(|| marks.join(", "))
}

pub fn removal_phase(node: &Node) -> Option<String> {
    node.metadata.annotations.as_ref()?.get(protocol::PHASE).cloned()
}

/// `base` with the top-level mappings of `extra` merged key by key (one level deep).
fn merge_yaml(base: &str, extra: &str) -> String {
    if extra.trim().is_empty() {
        return base.to_string();
    }
    let mut b = heatscaler_core::yaml::parse_value(base).unwrap();
    let e = heatscaler_core::yaml::parse_value(extra).unwrap();
    for (section, values) in e.as_object().unwrap() {
        match (b.get_mut(section).and_then(|v| v.as_object_mut()), values.as_object()) {
            (Some(target), Some(values)) => {
                for (k, v) in values {
                    target.insert(k.clone(), v.clone());
                }
            }
            _ => {
                b[section] = values.clone();
            }
        }
    }
    serde_json::to_string_pretty(&b).unwrap()
}
