//! End-to-end harness: kubesim in this process (over HTTP for the daemon), the
//! real Keystone + Heat of `tests/support/openstack.rs` (as `crate::support`) with a test group
//! stack, minions that join as Heat creates them, a webhook receiver, and the
//! daemon as a child process with short timers.

#![allow(dead_code)]

pub mod daemon;
pub mod minions;
pub mod webhook;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use heatscaler_core::planner::protocol;
use heatscaler_daemon::cloud::group::{Backend, GroupSnapshot, NodeGroupBackend};
use heatscaler_daemon::cloud::heat::{NewStack, StackRef};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{Node, Pod};
use kubesim::{KubeSim, KubeSimHandle, NodeSpec, Options};

use crate::support::{create_stack, openstack, repo_root, unique_name};
pub use daemon::DaemonProcess;
pub use minions::{Minions, node_name};
pub use webhook::Webhooks;

/// One scenario at a time, whichever module it is in: every scenario drives a
/// daemon and Heat stack updates on the binary's one Heat engine.
pub static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

pub const GROUP: &str = "workers";
pub const NS: &str = "default";

/// The Heat template of the group.
#[derive(Clone, Debug)]
pub enum Template {
    /// `heat-templates/test/resource-group.yaml`.
    ResourceGroup,
    /// `resource-group-flaky.yaml`: the member with this index fails to create.
    FlakyResourceGroup { failing_index: String },
}

/// What a test world looks like.
#[derive(Clone, Debug)]
pub struct Spec {
    pub template: Template,
    pub initial: u32,
    pub min: u32,
    pub max: u32,
    /// Every minion's capacity.
    pub node_cpu: &'static str,
    pub node_memory: &'static str,
    pub kubesim: Options,
    /// Members whose node never registers (a VM that never joins).
    pub never_join: Vec<&'static str>,
    /// YAML merged under the top-level keys of the daemon's configuration
    /// (`scale-down: {unneeded-time: 5s}` ...), after the defaults below.
    pub overrides: &'static str,
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
            kubesim: Options::fast(),
            never_join: Vec::new(),
            overrides: "",
        }
    }
}

pub struct World {
    pub sim: Arc<KubeSimHandle>,
    pub dir: tempfile::TempDir,
    pub stack: StackRef,
    pub backend: Arc<Backend>,
    pub minions: Minions,
    pub hooks: Webhooks,
    pub config_path: PathBuf,
    pub telemetry: SocketAddr,
    pub config_text: String,
}

/// A loopback port free right now.
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

fn group_stack(name: &str, template: &Template, initial: u32) -> NewStack {
    let dir = repo_root().join("heat-templates/test");
    let read = |f: &str| std::fs::read_to_string(dir.join(f)).unwrap_or_else(|e| panic!("{f}: {e}"));
    let mut environment = heatscaler_core::yaml::parse_value(&read("no-nova.env.yaml")).unwrap();
    let (file, params, minion) = match template {
        Template::ResourceGroup => {
            environment["resource_registry"]["Heatscaler::Minion"] = "minion.yaml".into();
            ("resource-group.yaml", serde_json::json!({"number_of_minions": initial}), "minion.yaml")
        }
        Template::FlakyResourceGroup { failing_index } => {
            environment["resource_registry"]["Heatscaler::FlakyMinion"] = "flaky-minion.yaml".into();
            (
                "resource-group-flaky.yaml",
                serde_json::json!({"number_of_minions": initial, "failing_index": failing_index}),
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

impl World {
    pub async fn new(spec: Spec) -> World {
        let os = openstack();
        let heat = os.heat().await;
        let name = unique_name("e2e");
        let stack = create_stack(&heat, &group_stack(&name, &spec.template, spec.initial)).await;
        let sim = Arc::new(KubeSim::start(spec.kubesim.clone()).await.unwrap());
        let mut dir = tempfile::Builder::new().prefix("heatscaler-e2e-").tempdir().unwrap();
        if std::env::var_os("HEATSCALER_E2E_KEEP").is_some() {
            dir.disable_cleanup(true);
            println!("keeping {}", dir.path().display());
        }
        let kubeconfig = dir.path().join("kubeconfig");
        sim.write_kubeconfig(&kubeconfig).unwrap();
        let hooks = Webhooks::start().await;
        let telemetry: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
        let config_text = format!(
            r#"
kubernetes:
  access: kubeconfig
  kubeconfig: {kubeconfig}
openstack:
  cloud: heatscaler
  clouds-yaml: {clouds}
  request-timeout: 30s
  stack-update-timeout: 5m
node-groups:
  - name: {GROUP}
    stack: {name}
    backend:
      kind: resource-group
      resource: kube_minions
      count-parameter: number_of_minions
      removal-parameter: minions_to_remove
    min-size: {min}
    max-size: {max}
    node-mapping: {{ by: provider-id }}
scale-up:
  new-pod-scale-up-delay: 0s
  max-node-provision-time: 60s
  backoff-initial: 3s
  backoff-max: 10s
scale-down:
  unneeded-time: 3s
  delay-after-add: 1s
  delay-after-delete: 1s
  delay-after-failure: 1s
  cooldown-before-removal: 2s
  max-eviction-time: 30s
  max-graceful-termination: 10s
  skip-nodes-with-system-pods: false
pod-resize:
  enabled: false
alerts:
  kubernetes-events: true
  dedup-window: 1s
  retry-initial: 100ms
  retry-max: 1s
  sinks:
    - kind: webhook
      name: e2e
      url: {hook}
      include-details: true
telemetry:
  listen: {telemetry}
leader-election:
  enabled: false
daemon:
  debounce: 100ms
  resync-interval: 1s
  heat-poll-interval: 2s
"#,
            kubeconfig = kubeconfig.display(),
            clouds = os.clouds_yaml().display(),
            min = spec.min,
            max = spec.max,
            hook = hooks.url,
        );
        let config_text = merge_yaml(&config_text, spec.overrides);
        let config_path = dir.path().join("heatscaler.yaml");
        std::fs::write(&config_path, &config_text).unwrap();
        let config = heatscaler_daemon::config::load(&config_path).unwrap_or_else(|e| panic!("{e}"));
        let group = config.group(GROUP).unwrap().clone();
        let backend = Arc::new(Backend::new(heat, group));
        let shape = NodeSpec::new("template").cpu(spec.node_cpu).memory(spec.node_memory);
        let minions = Minions::start(sim.clone(), backend.clone(), shape, &spec.never_join);
        let world = World { sim, dir, stack, backend, minions, hooks, config_path, telemetry, config_text };
        let n = spec.initial as usize - spec.never_join.len();
        world.wait_kube("the initial minions' nodes", Duration::from_secs(60), |s| s.count::<Node>() >= n).await;
        world
    }

    pub fn start_daemon(&self, extra: &[&str]) -> DaemonProcess {
        DaemonProcess::start(&self.config_path, &self.dir.path().join("daemon.log"), self.telemetry, extra)
    }

    pub async fn ready_daemon(&self) -> DaemonProcess {
        let mut d = self.start_daemon(&[]);
        d.wait_ready(Duration::from_secs(60)).await;
        d
    }

    pub async fn wait_kube(&self, what: &str, timeout: Duration, condition: impl FnMut(&KubeSimHandle) -> bool) {
        self.sim.wait_for(what, timeout, condition).await.unwrap_or_else(|e| panic!("{e}"));
    }

    pub async fn heat(&self) -> GroupSnapshot {
        self.backend.read().await.unwrap()
    }

    /// Polls Heat until `condition` holds.
    pub async fn wait_heat(
        &self,
        what: &str,
        timeout: Duration,
        condition: impl Fn(&GroupSnapshot) -> bool,
    ) -> GroupSnapshot {
        let deadline = Instant::now() + timeout;
        loop {
            let s = self.heat().await;
            if condition(&s) {
                return s;
            }
            assert!(
                Instant::now() < deadline,
                "Heat: {what} not within {timeout:?} (now {} desired, members {:?}, {})",
                s.desired,
                members(&s),
                s.stack_status
            );
            tokio::time::sleep(Duration::from_millis(150)).await;
        }
    }

    pub fn node(&self, name: &str) -> Option<Node> {
        self.sim.get::<Node>(None, name)
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
        self.wait_kube("workers-0 deleted", kube, |h| h.get::<Node>(None, &m0).is_none()).await;
        self.wait_kube("every filler pod running", kube, |_| self.running_on("filler", &m1) == 3).await;
        assert_eq!(self.pods("filler").len(), 3, "no pod lost, none duplicated");
        assert_eq!(self.running_on("keeper", &m1), 1);
        for n in self.sim.list::<Node>(None) {
            untouched(&n).unwrap();
        }
        assert_eq!(self.minions.log(|l| l.removed.clone()), ["0".to_string()].into(), "exactly the drained minion");
    }

    /// Pods of `prefix` running on `node` (not terminating).
    pub fn running_on(&self, prefix: &str, node: &str) -> usize {
        self.running(prefix).iter().filter(|p| node_of(p) == Some(node)).count()
    }

    /// Puts a Deployment's pods on `node` by cordoning the other nodes while they schedule.
    pub async fn place_on(&self, node: &str, d: Deployment) {
        let name = d.metadata.name.clone().unwrap();
        let replicas = d.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1) as usize;
        let others: Vec<String> =
            self.sim.list::<Node>(None).into_iter().filter_map(|n| n.metadata.name).filter(|n| n != node).collect();
        for o in &others {
            self.set_cordon(o, true);
        }
        self.sim.create(&d).unwrap();
        self.wait_kube(&format!("{name} running on {node}"), Duration::from_secs(60), |_| {
            self.running(&name).iter().filter(|p| node_of(p) == Some(node)).count() == replicas
        })
        .await;
        for o in &others {
            self.set_cordon(o, false);
        }
    }

    pub fn set_cordon(&self, node: &str, cordoned: bool) {
        self.sim
            .update::<Node>(None, node, |n| n.spec.get_or_insert_with(Default::default).unschedulable = Some(cordoned))
            .unwrap();
    }

    pub fn pods(&self, prefix: &str) -> Vec<Pod> {
        self.sim
            .list::<Pod>(Some(NS))
            .into_iter()
            .filter(|p| p.metadata.name.as_deref().unwrap_or_default().starts_with(prefix))
            .collect()
    }

    pub fn running(&self, prefix: &str) -> Vec<Pod> {
        self.pods(prefix).into_iter().filter(is_running).collect()
    }

    pub fn set_replicas(&self, deployment: &str, replicas: i32) {
        self.sim
            .update::<Deployment>(Some(NS), deployment, |d| {
                d.spec.get_or_insert_with(Default::default).replicas = Some(replicas)
            })
            .unwrap();
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
    let annotations: BTreeMap<String, String> = node.metadata.annotations.clone().unwrap_or_default();
    if let Some(k) = annotations.keys().find(|k| protocol::REMOVAL_ANNOTATIONS.contains(&k.as_str())) {
        return Err(format!("node {name} still has annotation {k}"));
    }
    Ok(())
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
