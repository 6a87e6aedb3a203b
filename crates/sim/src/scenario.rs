//! The scenario file: a cluster, its workloads over time, the provisioning
//! delays of the cloud, and the policy under test. YAML, kebab-case keys, like
//! the configuration file (documented in `docs/simulator.md`).

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration as StdDuration;

use serde::Deserialize;

use heatscaler_core::model::{Resources, UpdateMode};
use heatscaler_core::policy::{
    ClusterLimits, Duration, Fraction, NodeTemplate, Quantity, ScaleDownPolicy, ScaleUpPolicy, TaintConfig,
    loop_defaults, scaling_problems,
};

use super::shapes::{Amount, Delay, Point, Shape};
use super::signals::Signal;
use super::trace::alibaba_gentd26::{self, Series};
use super::trace::alibaba_openb::ListedGroup;
use super::trace::{Checked, GpuSharing, TraceArg, TraceError, TraceKind};

/// The scenario `heatscaler simulate` runs when given none.
pub const PHP_APACHE: &str = include_str!("../../../scenarios/php-apache.yaml");

/// The cluster `heatscaler simulate --trace` replays a trace on when given no
/// scenario.
pub const TRACE_CLUSTER: &str = include_str!("../../../scenarios/trace-cluster.yaml");

/// Issue 17's fight loop between the node and the pod level (a regression
/// scenario of the stability property).
pub const FIGHT_LOOP: &str = include_str!("../../../scenarios/fight-loop.yaml");

/// The scenario a pod-level trace (`alibaba-gentd26`) given alone fills in.
pub const POD_LEVEL_ONLY: &str = include_str!("../../../scenarios/pod-level-replay.yaml");

#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct Scenario {
    pub name: String,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub seed: u64,
    /// Simulated time to run.
    pub duration: Duration,
    /// Spacing of the sampled time series in the report.
    #[serde(default = "default_sample_interval")]
    pub sample_interval: Duration,
    #[serde(default)]
    pub daemon: DaemonModel,
    #[serde(default)]
    pub provisioning: ProvisioningModel,
    #[serde(default)]
    pub policy: PolicySection,
    /// Nodes outside any group (control plane, hand-managed nodes).
    #[serde(default)]
    pub nodes: Vec<StaticNode>,
    #[serde(default)]
    pub node_groups: Vec<GroupSpec>,
    #[serde(default)]
    pub daemonsets: Vec<DaemonSetSpec>,
    #[serde(default)]
    pub workloads: Vec<WorkloadSpec>,
    /// Single pods with an arrival and (optionally) a departure.
    #[serde(default)]
    pub pods: Vec<OneOffPod>,
    /// The VPA admission controller runs: a new pod of a workload with a VPA
    /// object gets the recommended requests (without it, a recreated pod
    /// comes back at its template's). The VPA-defaults peer always runs its own.
    #[serde(default)]
    pub vpa_admission_controller: bool,
    /// How often usage is sampled, the recommender fed and the VPA updater
    /// (of the VPA-defaults peer) run, for workloads with `vpa`.
    #[serde(default = "default_metrics_interval")]
    pub metrics_interval: Duration,
    /// Batch jobs arriving in bursts (a Poisson process).
    #[serde(default)]
    pub bursts: Vec<BurstSpec>,
    /// Pods replayed from trace files (format in `docs/simulator.md`).
    #[serde(default)]
    pub traces: Vec<TraceSpec>,
    /// Node groups made from a trace's node list (see `docs/traces.md`),
    /// added to `node-groups` when the scenario is loaded.
    #[serde(default)]
    pub node_groups_from: Vec<NodeListSpec>,
    /// How `alibaba-openb` pod lists' GPU-sharing pods and node lists' GPUs
    /// are counted (`shares`: thousandths of a GPU; `whole`: whole GPUs). One
    /// setting for both, so pods and minions always speak the same resource.
    #[serde(default)]
    pub gpu_sharing: GpuSharing,
    /// The directory relative trace paths are resolved against (the
    /// scenario file's; the working directory for embedded scenarios).
    #[serde(skip)]
    pub base_dir: PathBuf,
    /// The recommender of the VPA peer (the VPA objects' status in every
    /// peer's run); `None`: VPA v1.8.1's default flags
    /// (`RecommenderSettings::vpa`). Not a scenario key: only the
    /// recommender frontier (`simulate --frontier`, `frontier`) varies it, to
    /// trace VPA's own frontier on the same cluster.
    #[serde(skip)]
    pub vpa_peer_recommender: Option<heatscaler_core::policy::RecommenderSettings>,
    /// A microservice call graph (`call_graph`): its services become
    /// workloads, appended to `workloads` when the scenario is loaded.
    #[serde(default)]
    pub call_graph: Option<super::call_graph::CallGraphSpec>,
    /// Index in `workloads` of the call graph's first service.
    #[serde(skip)]
    pub call_graph_first_workload: usize,
}

/// Batch jobs arriving in bursts: bursts follow a Poisson process whose rate
/// may change over time; each brings `size` jobs (one pod each) that run for
/// `runtime` once scheduled, then complete. An evicted job pod is recreated
/// by its controller and starts over.
#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct BurstSpec {
    pub name: String,
    #[serde(default = "default_namespace")]
    pub namespace: String,
    pub pod: PodSpec,
    /// Mean bursts per hour, over time (any shape: constant, diurnal, ...).
    pub rate_per_hour: Shape,
    /// Jobs per burst, drawn uniformly from `min..=max` (default 1).
    #[serde(default)]
    pub size: Option<SizeRange>,
    /// How long a job runs once its pod is scheduled.
    pub runtime: Delay,
}

#[derive(Clone, Copy, Debug, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct SizeRange {
    pub min: u32,
    pub max: u32,
}

/// A node list whose common shapes become node groups (`trace::alibaba_openb`).
#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct NodeListSpec {
    /// Only `alibaba-openb` has a node list.
    pub kind: TraceKind,
    /// Relative to the scenario file.
    pub file: PathBuf,
    /// Shapes held by fewer nodes than this share of the list are left out.
    #[serde(default = "default_min_share")]
    pub min_share: f64,
    /// Prices per hour by group name (default: the shape's vCPUs).
    #[serde(default)]
    pub prices: BTreeMap<String, f64>,
}

/// Shapes of at least 1% of the node list's nodes become groups.
pub fn default_min_share() -> f64 {
    0.01
}

/// A trace file replayed row by row (see `trace`).
#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct TraceSpec {
    pub name: String,
    /// The file's format (`csv`: the project's own).
    #[serde(default)]
    pub kind: TraceKind,
    /// The file, relative to the scenario file.
    pub file: PathBuf,
    /// Count, report and leave out rows that do not parse instead of refusing the trace.
    #[serde(default)]
    pub skip_bad_rows: bool,
    #[serde(default = "default_namespace")]
    pub namespace: String,
    /// The trace time that becomes the simulation's start: pods started
    /// before it and not ended are running at the start.
    #[serde(default)]
    pub start: Duration,
    /// Owner kind of the replayed pods (evicted pods are recreated by it);
    /// `none` makes bare pods, which block scale-down.
    #[serde(default = "replica_set")]
    pub controller: String,
    /// Placement shared by the trace's pods.
    #[serde(default)]
    pub node_selector: BTreeMap<String, String>,
    #[serde(default)]
    pub tolerations: Vec<TolerationSpec>,
    #[serde(default)]
    pub priority: i32,
}

fn replica_set() -> String {
    "ReplicaSet".into()
}

impl TraceSpec {
    pub fn path(&self, base_dir: &Path) -> PathBuf {
        base_dir.join(&self.file)
    }

    /// The pod spec trace pods share (their requests come from the rows).
    pub fn pod_spec(&self) -> PodSpec {
        PodSpec {
            containers: Vec::new(),
            labels: BTreeMap::new(),
            node_selector: self.node_selector.clone(),
            tolerations: self.tolerations.clone(),
            spread_one_per_node: false,
            host_ports: Vec::new(),
            safe_to_evict: None,
            local_storage: false,
            priority: self.priority,
        }
    }

    pub fn controller(&self) -> Option<&str> {
        (self.controller != "none").then_some(self.controller.as_str())
    }
}

fn default_metrics_interval() -> Duration {
    Duration::from_secs(60)
}

fn default_sample_interval() -> Duration {
    Duration::from_secs(60)
}

/// How the daemon is driven: as `daemon.*` in the configuration, plus restarts.
#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields, default)]
pub struct DaemonModel {
    pub debounce: Duration,
    pub resync_interval: Duration,
    pub heat_poll_interval: Duration,
    /// Times at which the daemon restarts and loses the planner's memory
    /// (removals in progress must continue from the node annotations).
    pub restarts: Vec<Duration>,
}

impl Default for DaemonModel {
    fn default() -> Self {
        Self {
            debounce: loop_defaults::DEBOUNCE,
            resync_interval: loop_defaults::RESYNC_INTERVAL,
            heat_poll_interval: loop_defaults::HEAT_POLL_INTERVAL,
            restarts: Vec::new(),
        }
    }
}

#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields, default)]
pub struct ProvisioningModel {
    /// One Heat stack update (create or delete members).
    pub heat_update: Delay,
    /// From the server being ACTIVE to a Ready node.
    pub boot: Delay,
    /// From eviction (or deletion) to the pod being gone, before the grace cap.
    pub pod_termination: Delay,
    /// From a container starting (bound, or OOM-killed) to serving again.
    pub container_restart: Duration,
}

impl Default for ProvisioningModel {
    fn default() -> Self {
        Self {
            heat_update: Delay::Fixed(Duration::from_secs(30)),
            boot: Delay::Lognormal { median: Duration::from_secs(90), p99: Duration::from_secs(240) },
            pod_termination: Delay::Fixed(Duration::from_secs(5)),
            container_restart: Duration::from_secs(30),
        }
    }
}

/// The policy under test: the configuration file's own sections.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct PolicySection {
    #[serde(default)]
    pub scale_up: ScaleUpPolicy,
    #[serde(default)]
    pub scale_down: ScaleDownPolicy,
    #[serde(default)]
    pub cluster_limits: ClusterLimits,
    #[serde(default)]
    pub control_plane_labels: Option<Vec<String>>,
    /// As `pod-resize` in the configuration: heatscaler's recommender and
    /// updater for workloads with a `vpa` object.
    #[serde(default)]
    pub pod_resize: PodResizeSection,
    /// As `placement-advisor` in the configuration (off by default); it
    /// reads the observations of a `call-graph`.
    #[serde(default)]
    pub placement_advisor: heatscaler_core::policy::PlacementAdvisorPolicy,
}

impl PolicySection {
    /// Overrides one key of the `scale-up` or `scale-down` section
    /// (`scale-down.unneeded-time`, `2m`), as `simulate --set` does: the
    /// section goes through serde again, so a value is checked exactly as in
    /// a scenario's `policy:` and an unknown key is refused by name. A value
    /// that is JSON (a number, `true`) is taken as such, anything else as a
    /// string (durations, the expander).
    pub fn set(&mut self, key: &str, value: &str) -> Result<(), String> {
        fn over<T: serde::Serialize + serde::de::DeserializeOwned>(
            section: &mut T,
            key: &str,
            field: &str,
            value: &str,
        ) -> Result<(), String> {
            let mut tree = serde_json::to_value(&*section).map_err(|e| format!("{key}: {e}"))?;
            let serde_json::Value::Object(map) = &mut tree else {
                return Err(format!("{key}: the section is not a map"));
            };
            if !map.contains_key(field) {
                let known: Vec<&str> = map.keys().map(String::as_str).collect();
                return Err(format!("{key}: no such key (known: {})", known.join(", ")));
            }
            let parsed = serde_json::from_str(value).unwrap_or_else(|_| serde_json::Value::String(value.to_string()));
            map.insert(field.to_string(), parsed);
            *section = serde_json::from_value(tree).map_err(|e| format!("{key}={value}: {e}"))?;
            Ok(())
        }
        match key.split_once('.') {
            Some(("scale-up", field)) => over(&mut self.scale_up, key, field, value),
            Some(("scale-down", field)) => over(&mut self.scale_down, key, field, value),
            _ => Err(format!("{key}: only scale-up.KEY and scale-down.KEY can be set")),
        }
    }
}

#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields, default)]
pub struct PodResizeSection {
    /// Off: heatscaler plans the node level only (VPA objects are ignored).
    pub enabled: bool,
    pub recommender: heatscaler_core::policy::RecommenderSettings,
    pub updater: heatscaler_core::policy::UpdaterSettings,
}

impl Default for PodResizeSection {
    fn default() -> Self {
        Self { enabled: true, recommender: Default::default(), updater: Default::default() }
    }
}

#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct StaticNode {
    pub name: String,
    pub allocatable: BTreeMap<String, Quantity>,
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    #[serde(default)]
    pub taints: Vec<TaintConfig>,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct GroupSpec {
    pub name: String,
    pub min_size: u32,
    pub max_size: u32,
    pub initial_size: u32,
    /// Size the group at the start from the demand then (the cheapest
    /// fractional mix of the lower bound, rounded up) instead of
    /// `initial-size`; set for groups made from a node list.
    #[serde(skip)]
    pub initial_auto: bool,
    pub shape: NodeTemplate,
    #[serde(default)]
    pub price_per_hour: Option<f64>,
    #[serde(default)]
    pub priority: i32,
    /// Members beyond this many (alive at once) fail to create, as with an
    /// exhausted OpenStack quota.
    #[serde(default)]
    pub quota: Option<u32>,
}

impl GroupSpec {
    /// A group of a node list's shape: up to as many minions as the list has
    /// nodes of that shape, from zero, sized at the start from the demand
    /// then (`initial_auto`). Its price is left to the default (the shape's
    /// vCPUs) unless `prices` sets it.
    fn from_node_list(listed: ListedGroup) -> Self {
        Self {
            name: listed.name,
            min_size: 0,
            max_size: listed.nodes,
            initial_size: 0,
            initial_auto: true,
            shape: listed.template,
            price_per_hour: None,
            priority: 0,
            quota: None,
        }
    }
}

#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct DaemonSetSpec {
    pub name: String,
    #[serde(default = "kube_system")]
    pub namespace: String,
    #[serde(default)]
    pub requests: BTreeMap<String, Quantity>,
    #[serde(default)]
    pub node_selector: BTreeMap<String, String>,
}

fn kube_system() -> String {
    "kube-system".into()
}

fn default_namespace() -> String {
    "default".into()
}

/// What every pod of a workload (or a one-off pod) looks like.
#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct PodSpec {
    pub containers: Vec<ContainerSpec>,
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    #[serde(default)]
    pub node_selector: BTreeMap<String, String>,
    #[serde(default)]
    pub tolerations: Vec<TolerationSpec>,
    /// Required anti-affinity with the workload's own pods on `kubernetes.io/hostname`.
    #[serde(default)]
    pub spread_one_per_node: bool,
    #[serde(default)]
    pub host_ports: Vec<u16>,
    #[serde(default)]
    pub safe_to_evict: Option<bool>,
    #[serde(default)]
    pub local_storage: bool,
    #[serde(default)]
    pub priority: i32,
}

impl PodSpec {
    /// A pod of one container and nothing else — no labels, selectors,
    /// tolerations or placement rules, priority 0: the pods of the scenarios
    /// built from a trace or a call graph rather than read from a file.
    pub fn one_container(container: ContainerSpec) -> Self {
        PodSpec {
            containers: vec![container],
            labels: BTreeMap::new(),
            node_selector: BTreeMap::new(),
            tolerations: Vec::new(),
            spread_one_per_node: false,
            host_ports: Vec::new(),
            safe_to_evict: None,
            local_storage: false,
            priority: 0,
        }
    }
}

#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct ContainerSpec {
    pub name: String,
    #[serde(default)]
    pub requests: BTreeMap<String, Quantity>,
    #[serde(default)]
    pub limits: BTreeMap<String, Quantity>,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct TolerationSpec {
    /// Absent: tolerate every taint.
    #[serde(default)]
    pub key: Option<String>,
    #[serde(default)]
    pub value: Option<String>,
    #[serde(default)]
    pub effect: Option<heatscaler_core::model::TaintEffect>,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct WorkloadSpec {
    pub name: String,
    #[serde(default = "default_namespace")]
    pub namespace: String,
    pub pod: PodSpec,
    /// The replica count over time (what an HPA or an operator would set)...
    #[serde(default)]
    pub replicas: Option<Shape>,
    /// ...or an HPA driven by `usage.cpu`.
    #[serde(default)]
    pub hpa: Option<HpaSpec>,
    #[serde(default)]
    pub usage: Option<UsageSpec>,
    #[serde(default)]
    pub pdb: Option<PdbSpec>,
    /// A VPA object for the workload and its pods' usage, per replica (the
    /// pod level: see `docs/simulator.md`).
    #[serde(default)]
    pub vpa: Option<VpaSpec>,
}

impl WorkloadSpec {
    /// The workload its pods report (`Pod::workload`) and its VPA object's
    /// `targetRef` names.
    pub fn workload_ref(&self) -> heatscaler_core::model::WorkloadRef {
        heatscaler_core::model::WorkloadRef {
            kind: "Deployment".into(),
            namespace: self.namespace.clone().into(),
            name: self.name.clone().into(),
        }
    }
}

/// A workload's `VerticalPodAutoscaler` object and what each of its replicas
/// uses, which the usage component samples on the metrics tick and the
/// recommender reads.
///
/// ```yaml
/// vpa:
///   update-mode: InPlaceOrRecreate
///   cpu: {step: {before: 800m, after: 2600m, at: 30m}}   # per replica
///   memory: 400Mi
///   noise: 0
/// ```
#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct VpaSpec {
    #[serde(default = "default_mode", with = "update_mode")]
    pub update_mode: heatscaler_core::model::UpdateMode,
    /// `updatePolicy.minReplicas`.
    #[serde(default)]
    pub min_replicas: Option<u32>,
    /// `controlledResources` of every container (default: CPU and memory).
    #[serde(default)]
    pub controlled_resources: Option<Vec<String>>,
    /// Cores one replica uses (spread evenly over its containers).
    pub cpu: Signal,
    /// Bytes of working set one replica has.
    pub memory: Signal,
    /// Standard deviation of the multiplicative per-sample noise.
    #[serde(default = "default_vpa_noise")]
    pub noise: f64,
}

/// heatscaler's recommended mode: in place, recreated only where that cannot happen.
fn default_mode() -> heatscaler_core::model::UpdateMode {
    heatscaler_core::model::UpdateMode::InPlaceOrRecreate
}

/// `updatePolicy.updateMode` by VPA's names.
mod update_mode {
    use serde::{Deserialize, Deserializer, de};

    use heatscaler_core::model::UpdateMode;

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<UpdateMode, D::Error> {
        let text = String::deserialize(d)?;
        [UpdateMode::Off, UpdateMode::Initial, UpdateMode::Recreate, UpdateMode::InPlaceOrRecreate, UpdateMode::InPlace]
            .into_iter()
            .find(|m| m.as_str() == text)
            .ok_or_else(|| {
                de::Error::custom(format!("`{text}` is not Off, Initial, Recreate, InPlaceOrRecreate or InPlace"))
            })
    }
}

fn default_vpa_noise() -> f64 {
    0.1
}

/// Total usage of the workload over time, spread evenly over its running pods.
#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct UsageSpec {
    /// Cores (`1.5`, `1500m`).
    #[serde(default)]
    pub cpu: Option<Shape>,
    /// Bytes (`2Gi`).
    #[serde(default)]
    pub memory: Option<Shape>,
}

/// A `HorizontalPodAutoscaler` on CPU utilisation with the controller's
/// default behaviour (tolerance 10%, scale-up at most max(4 pods, 100%) per
/// period, scale-down after a stabilisation window).
#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct HpaSpec {
    pub min_replicas: u32,
    pub max_replicas: u32,
    pub target_cpu_utilization: Fraction,
    #[serde(default = "default_hpa_sync")]
    pub sync_period: Duration,
    #[serde(default = "default_hpa_stabilization")]
    pub scale_down_stabilization: Duration,
}

fn default_hpa_sync() -> Duration {
    Duration::from_secs(15)
}
fn default_hpa_stabilization() -> Duration {
    Duration::from_secs(300)
}

#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct PdbSpec {
    #[serde(default)]
    pub min_available: Option<u32>,
    #[serde(default)]
    pub max_unavailable: Option<u32>,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct OneOffPod {
    pub name: String,
    #[serde(default = "default_namespace")]
    pub namespace: String,
    pub pod: PodSpec,
    pub arrival: Duration,
    #[serde(default)]
    pub departure: Option<Duration>,
    /// Owner kind (`Job`, ...); none makes a bare pod, which blocks scale-down.
    #[serde(default)]
    pub controller: Option<String>,
}

/// One problem in a scenario, at a key path.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ScenarioProblem {
    pub path: String,
    pub problem: String,
}

/// Everything wrong with a scenario (at least one).
#[derive(Debug, thiserror::Error)]
pub struct ScenarioError {
    pub source_name: String,
    pub problems: Vec<ScenarioProblem>,
}

impl fmt::Display for ScenarioError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invalid scenario {}:", self.source_name)?;
        for p in &self.problems {
            if p.path.is_empty() {
                write!(f, "\n  - {}", p.problem)?;
            } else {
                write!(f, "\n  - {}: {}", p.path, p.problem)?;
            }
        }
        Ok(())
    }
}

impl Scenario {
    pub fn load(path: &Path) -> Result<Self, ScenarioError> {
        let name = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|e| ScenarioError {
            source_name: name.clone(),
            problems: vec![ScenarioProblem { path: String::new(), problem: format!("cannot read file: {e}") }],
        })?;
        let base = path.parent().map(Path::to_path_buf).unwrap_or_default();
        Self::parse_in(&text, &name, &base)
    }

    /// Parses a scenario whose relative trace paths are relative to the
    /// working directory.
    pub fn parse(text: &str, source_name: &str) -> Result<Self, ScenarioError> {
        Self::parse_in(text, source_name, Path::new(""))
    }

    /// Parses a scenario whose relative trace paths are relative to `base_dir`.
    /// Trace files are read through once (streaming) to check every row.
    pub fn parse_in(text: &str, source_name: &str, base_dir: &Path) -> Result<Self, ScenarioError> {
        let scenario: Scenario = heatscaler_core::yaml::from_str_with_path(text).map_err(|e| ScenarioError {
            source_name: source_name.to_string(),
            problems: vec![ScenarioProblem {
                problem: match e.line {
                    Some(line) => format!("{} (line {line})", without_path_prefix(&e.message, &e.path)),
                    None => without_path_prefix(&e.message, &e.path).to_string(),
                },
                path: e.path,
            }],
        })?;
        let mut scenario = scenario;
        scenario.base_dir = base_dir.to_path_buf();
        if let Some(graph) = &scenario.call_graph {
            scenario.call_graph_first_workload = scenario.workloads.len();
            let services = call_graph_workloads(graph);
            scenario.workloads.extend(services);
        }
        let mut problems = Vec::new();
        for (i, list) in scenario.node_groups_from.clone().iter().enumerate() {
            if let Err(problem) = scenario.add_node_list(list, base_dir) {
                problems.push(ScenarioProblem { path: format!("node-groups-from[{i}]"), problem });
            }
        }
        problems.extend(scenario.problems());
        if problems.is_empty() {
            for (i, t) in scenario.traces.iter().enumerate() {
                let checked = super::trace::check(
                    t.kind,
                    &t.path(base_dir),
                    t.start.get(),
                    t.skip_bad_rows,
                    scenario.gpu_sharing,
                );
                for e in checked.problems {
                    problems.push(ScenarioProblem { path: format!("traces[{i}].file"), problem: e.to_string() });
                }
            }
        }
        if problems.is_empty() {
            Ok(scenario)
        } else {
            Err(ScenarioError { source_name: source_name.to_string(), problems })
        }
    }

    /// Adds the node groups of a node list (`node-groups-from`).
    pub fn add_node_list(&mut self, list: &NodeListSpec, base_dir: &Path) -> Result<(), String> {
        if list.kind != TraceKind::AlibabaOpenb {
            return Err(format!("kind: `{}` has no node list (only alibaba-openb has)", list.kind.name()));
        }
        if !(0.0..=1.0).contains(&list.min_share) {
            return Err(format!("min-share: {} is not between 0 and 1", list.min_share));
        }
        let (listed, _rare) =
            super::trace::alibaba_openb::node_groups(&base_dir.join(&list.file), list.min_share, self.gpu_sharing)
                .map_err(|e| e.to_string())?;
        let mut groups: Vec<GroupSpec> = listed.into_iter().map(GroupSpec::from_node_list).collect();
        for (name, price) in &list.prices {
            let Some(g) = groups.iter_mut().find(|g| &g.name == name) else {
                let known: Vec<&str> = groups.iter().map(|g| g.name.as_str()).collect();
                return Err(format!("prices: no group `{name}` (groups: {})", known.join(", ")));
            };
            g.price_per_hour = Some(*price);
        }
        self.node_groups.extend(groups);
        Ok(())
    }

    /// Adds workloads made by an importer (GenTD26's), checked as a
    /// scenario's own are; on a problem nothing is added.
    pub fn add_workloads(&mut self, workloads: Vec<WorkloadSpec>) -> Result<(), Vec<String>> {
        let before = self.workloads.len();
        self.workloads.extend(workloads);
        let problems = self.problems();
        if problems.is_empty() {
            return Ok(());
        }
        self.workloads.truncate(before);
        Err(problems.into_iter().map(|p| format!("{}: {}", p.path, p.problem)).collect())
    }

    /// Adds a trace file (relative to the working directory) replayed from
    /// trace time `from` with the defaults of a `traces` entry, after checking
    /// every row. Returns what the check found (its last row's time, rows
    /// skipped).
    pub fn add_trace(
        &mut self,
        arg: &TraceArg,
        from: std::time::Duration,
        skip_bad_rows: bool,
    ) -> Result<Checked, Vec<TraceError>> {
        let file = &arg.path;
        let name = file.file_stem().map_or("trace".into(), |s| s.to_string_lossy().into_owned());
        let absolute = std::env::current_dir().map(|d| d.join(file)).unwrap_or_else(|_| file.to_path_buf());
        let checked = super::trace::check(arg.kind, &absolute, from, skip_bad_rows, self.gpu_sharing);
        if !checked.problems.is_empty() {
            return Err(checked.problems);
        }
        let mut unique = name.clone();
        let mut n = 1;
        while self.traces.iter().any(|t| t.name == unique) {
            n += 1;
            unique = format!("{name}-{n}");
        }
        self.traces.push(TraceSpec {
            name: unique,
            kind: arg.kind,
            skip_bad_rows,
            file: absolute,
            namespace: default_namespace(),
            start: Duration(from),
            controller: replica_set(),
            node_selector: BTreeMap::new(),
            tolerations: Vec::new(),
            priority: 0,
        });
        Ok(checked)
    }

    /// What serde cannot check: ranges, references, exclusive options.
    fn problems(&self) -> Vec<ScenarioProblem> {
        let mut out = Vec::new();
        let mut err = |path: String, problem: String| out.push(ScenarioProblem { path, problem });
        if self.duration.get().is_zero() {
            err("duration".into(), "must be longer than zero".into());
        }
        if self.sample_interval.get().is_zero() {
            err("sample-interval".into(), "must be longer than zero".into());
        }
        if self.metrics_interval.get().is_zero() {
            err("metrics-interval".into(), "must be longer than zero".into());
        }
        if self.daemon.resync_interval.get().is_zero() {
            err("daemon.resync-interval".into(), "must be longer than zero".into());
        }
        if self.daemon.heat_poll_interval.get().is_zero() {
            err("daemon.heat-poll-interval".into(), "must be longer than zero".into());
        }
        for (key, delay) in [
            ("heat-update", &self.provisioning.heat_update),
            ("boot", &self.provisioning.boot),
            ("pod-termination", &self.provisioning.pod_termination),
        ] {
            if let Some(problem) = delay.problem() {
                err(format!("provisioning.{key}"), problem);
            }
        }
        for e in scaling_problems(&self.policy.scale_up, &self.policy.scale_down) {
            err(format!("policy.{}", e.path), e.problem);
        }
        for e in self.policy.placement_advisor.problems() {
            err(format!("policy.{}", e.path), e.problem);
        }
        if let Some(g) = &self.call_graph {
            for (key, v) in [
                ("replicas-scale", g.replicas_scale),
                ("sized-for-rps", g.sized_for_rps),
                ("sized-utilization", g.sized_utilization),
            ] {
                if !v.is_finite() || v <= 0.0 {
                    err(format!("call-graph.{key}"), format!("{v} must be a number above 0"));
                }
            }
            if g.window.get().is_zero() {
                err("call-graph.window".into(), "must be longer than zero".into());
            }
        }
        let mut names = BTreeSet::new();
        for (i, n) in self.nodes.iter().enumerate() {
            if !names.insert(n.name.clone()) {
                err(format!("nodes[{i}].name"), format!("`{}` is used twice", n.name));
            }
            needs_cpu_and_memory(&n.allocatable, &format!("nodes[{i}].allocatable"), &mut err);
        }
        let mut group_names = BTreeSet::new();
        for (i, g) in self.node_groups.iter().enumerate() {
            let p = format!("node-groups[{i}]");
            if !group_names.insert(g.name.clone()) {
                err(format!("{p}.name"), format!("`{}` is used twice", g.name));
            }
            if g.min_size > g.max_size {
                err(format!("{p}.min-size"), format!("{} is above max-size {}", g.min_size, g.max_size));
            }
            if !(g.min_size..=g.max_size).contains(&g.initial_size) {
                err(format!("{p}.initial-size"), format!("{} is outside min-size..max-size", g.initial_size));
            }
            needs_cpu_and_memory(&g.shape.allocatable, &format!("{p}.shape.allocatable"), &mut err);
        }
        let mut workload_names = BTreeSet::new();
        for (i, w) in self.workloads.iter().enumerate() {
            let p = format!("workloads[{i}]");
            if !workload_names.insert((w.namespace.clone(), w.name.clone())) {
                err(format!("{p}.name"), format!("`{}` is used twice", w.name));
            }
            pod_problems(&w.pod, &format!("{p}.pod"), &mut err);
            match (&w.replicas, &w.hpa) {
                (Some(_), Some(_)) => err(format!("{p}.hpa"), "give either `replicas` or `hpa`, not both".into()),
                (None, None) => err(format!("{p}.replicas"), "is required (or `hpa`)".into()),
                _ => {}
            }
            if let Some(r) = &w.replicas {
                for (suffix, problem) in r.problems() {
                    err(format!("{p}.replicas{suffix}"), problem);
                }
            }
            if let Some(h) = &w.hpa {
                if h.min_replicas > h.max_replicas {
                    err(
                        format!("{p}.hpa.min-replicas"),
                        format!("{} is above max-replicas {}", h.min_replicas, h.max_replicas),
                    );
                }
                if h.target_cpu_utilization.0 <= 0.0 {
                    err(format!("{p}.hpa.target-cpu-utilization"), "must be above zero".into());
                }
                if h.sync_period.get().is_zero() {
                    err(format!("{p}.hpa.sync-period"), "must be longer than zero".into());
                }
                if w.usage.as_ref().and_then(|u| u.cpu.as_ref()).is_none() {
                    err(format!("{p}.hpa"), "needs `usage.cpu` to act on".into());
                }
                if pod_requests(&w.pod).cpu_milli == 0 {
                    err(
                        format!("{p}.hpa"),
                        "needs containers with CPU requests (utilisation is relative to them)".into(),
                    );
                }
            }
            if let Some(u) = &w.usage {
                for (key, shape) in [("cpu", &u.cpu), ("memory", &u.memory)] {
                    for (suffix, problem) in shape.iter().flat_map(|s| s.problems()) {
                        err(format!("{p}.usage.{key}{suffix}"), problem);
                    }
                }
            }
            if let Some(v) = &w.vpa {
                if !(0.0..1.0).contains(&v.noise) {
                    err(format!("{p}.vpa.noise"), format!("{} is not in [0, 1)", v.noise));
                }
                if v.min_replicas.is_some_and(|n| n == 0 || i32::try_from(n).is_err()) {
                    err(format!("{p}.vpa.min-replicas"), "must be at least 1".into());
                }
                for (suffix, problem) in v.cpu.problems() {
                    err(format!("{p}.vpa.cpu{suffix}"), problem);
                }
                for (suffix, problem) in v.memory.problems() {
                    err(format!("{p}.vpa.memory{suffix}"), problem);
                }
            }
            if let Some(pdb) = &w.pdb
                && pdb.min_available.is_some() == pdb.max_unavailable.is_some()
            {
                err(format!("{p}.pdb"), "give exactly one of `min-available`, `max-unavailable`".into());
            }
        }
        for (i, o) in self.pods.iter().enumerate() {
            let p = format!("pods[{i}]");
            pod_problems(&o.pod, &format!("{p}.pod"), &mut err);
            if let Some(d) = o.departure
                && d <= o.arrival
            {
                err(format!("{p}.departure"), format!("{d} is not after arrival {}", o.arrival));
            }
        }
        let mut burst_names = BTreeSet::new();
        for (i, b) in self.bursts.iter().enumerate() {
            let p = format!("bursts[{i}]");
            if !burst_names.insert(b.name.clone()) {
                err(format!("{p}.name"), format!("`{}` is used twice", b.name));
            }
            pod_problems(&b.pod, &format!("{p}.pod"), &mut err);
            for (suffix, problem) in b.rate_per_hour.problems() {
                err(format!("{p}.rate-per-hour{suffix}"), problem);
            }
            if let Some(size) = b.size
                && (size.min == 0 || size.min > size.max)
            {
                err(format!("{p}.size"), format!("needs 1 ≤ min ≤ max, got {}..{}", size.min, size.max));
            }
            if let Some(problem) = b.runtime.problem() {
                err(format!("{p}.runtime"), problem);
            }
        }
        let mut trace_names = BTreeSet::new();
        for (i, t) in self.traces.iter().enumerate() {
            if !trace_names.insert(t.name.clone()) {
                err(format!("traces[{i}].name"), format!("`{}` is used twice", t.name));
            }
            if !t.kind.node_level() {
                err(
                    format!("traces[{i}].kind"),
                    format!("`{}` is pod-level usage, not pods: replay it with --trace", t.kind.name()),
                );
            }
        }
        for (i, t) in self.daemon.restarts.iter().enumerate() {
            if *t >= self.duration {
                err(format!("daemon.restarts[{i}]"), format!("{t} is not within the duration {}", self.duration));
            }
        }
        out
    }
}

/// Errors raised inside tagged values (shapes, delays) carry the path of the
/// enclosing key in their text; the path is reported separately.
fn without_path_prefix<'m>(message: &'m str, path: &str) -> &'m str {
    match message.split_once(": ") {
        Some((prefix, rest)) if !prefix.is_empty() && path.starts_with(prefix) => rest,
        _ => message,
    }
}

fn needs_cpu_and_memory(allocatable: &BTreeMap<String, Quantity>, path: &str, err: &mut impl FnMut(String, String)) {
    for key in [Resources::CPU, Resources::MEMORY] {
        if !allocatable.contains_key(key) {
            err(path.to_string(), format!("needs `{key}`"));
        }
    }
}

fn pod_problems(pod: &PodSpec, path: &str, err: &mut impl FnMut(String, String)) {
    if pod.containers.is_empty() {
        err(format!("{path}.containers"), "needs at least one container".into());
    }
}

/// Reads a resource list: CPU in millicores, everything else in units.
pub fn resources(list: &BTreeMap<String, Quantity>) -> Resources {
    let mut r = Resources::default();
    for (name, q) in list {
        r.set(name, if name == Resources::CPU { q.as_milli() } else { q.as_units() });
    }
    r
}

/// One workload per service, labelled `app: <service>`, with a PDB
/// allowing one replica down.
pub fn call_graph_workloads(graph: &super::call_graph::CallGraphSpec) -> Vec<WorkloadSpec> {
    let topo = graph.topology();
    (0..topo.services.len())
        .map(|s| {
            let service = &topo.services[s];
            let cpu = Quantity::parse(&format!("{}m", graph.cpu_request_milli(&topo, s))).expect("a quantity");
            let memory = Quantity::parse(&format!("{}Mi", service.memory_mi)).expect("a quantity");
            WorkloadSpec {
                name: service.name.to_string(),
                namespace: graph.namespace.clone(),
                pod: PodSpec::one_container(ContainerSpec {
                    name: "main".into(),
                    requests: BTreeMap::from([("cpu".into(), cpu), ("memory".into(), memory)]),
                    limits: BTreeMap::new(),
                }),
                replicas: Some(Shape::Constant(f64::from(graph.replicas(service)))),
                hpa: None,
                usage: None,
                pdb: Some(PdbSpec { min_available: None, max_unavailable: Some(1) }),
                vpa: None,
            }
        })
        .collect()
}

/// What the scheduler reserves for one pod of this spec.
pub fn pod_requests(pod: &PodSpec) -> Resources {
    let mut total = Resources::default();
    for c in &pod.containers {
        total += &resources(&c.requests);
    }
    total.pods = 1;
    total
}

/// One workload per GenTD26 series (see `trace::alibaba_gentd26`), on the trace's clock: no
/// replica before the container's first sample, one until a minute after its
/// last, none after — so the node level sees the containers the trace saw
/// at once.
pub fn gentd26_workloads(series: &[Series]) -> Vec<WorkloadSpec> {
    let q = |s: &str| Quantity::parse(s).expect("a valid quantity");
    let memory = q(alibaba_gentd26::CONTAINER_MEMORY);
    let bytes = memory.as_units() as f64;
    let at = |secs: f64| Duration(StdDuration::from_secs_f64(secs));
    series
        .iter()
        .map(|s| {
            let end = s.start + s.span().as_secs_f64() + 60.0;
            let mut steps = vec![Point { at: at(0.0), value: Amount(0.0) }];
            steps.push(Point { at: at(s.start), value: Amount(1.0) });
            steps.push(Point { at: at(end), value: Amount(0.0) });
            if s.start == 0.0 {
                steps.remove(0);
            }
            WorkloadSpec {
                name: s.container.chars().take(12).collect(),
                namespace: "default".into(),
                pod: PodSpec::one_container(ContainerSpec {
                    name: "app".into(),
                    requests: BTreeMap::from([("cpu".into(), q("1")), ("memory".into(), memory.clone())]),
                    limits: BTreeMap::from([("memory".into(), memory.clone())]),
                }),
                replicas: Some(Shape::Steps(steps)),
                hpa: None,
                usage: None,
                pdb: None,
                vpa: Some(VpaSpec {
                    update_mode: UpdateMode::InPlaceOrRecreate,
                    min_replicas: Some(1),
                    controlled_resources: Some(vec!["memory".into()]),
                    cpu: Signal::Constant(0.5),
                    memory: Signal::Series(Arc::new(s.samples.iter().map(|(t, v)| (s.start + t, v * bytes)).collect())),
                    noise: 0.0,
                }),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_embedded_scenario_is_valid() {
        let s = Scenario::parse(PHP_APACHE, "php-apache.yaml").unwrap();
        assert_eq!(s.name, "php-apache");
    }

    #[test]
    fn errors_name_the_key_path() {
        let base = "name: x\nduration: 10m\n";
        let cases = [
            (
                "node-groups: [{name: g, min-size: 3, max-size: 2, initial-size: 2, shape: {allocatable: {cpu: 2, memory: 1Gi}}}]",
                "node-groups[0].min-size",
            ),
            (
                "node-groups: [{name: g, min-size: 0, max-size: 2, initial-size: 1, shape: {allocatable: {cpu: two, memory: 1Gi}}}]",
                "node-groups[0].shape.allocatable.cpu",
            ),
            (
                "workloads: [{name: w, pod: {containers: [{name: c}]}, replicas: {steps: [{at: 1m, value: 1}, {at: 1m, value: 2}]}}]",
                "workloads[0].replicas.steps[1].at",
            ),
            (
                "workloads: [{name: w, pod: {containers: [{name: c}]}, replicas: {step: []}}]",
                "workloads[0].replicas.step",
            ),
            (
                "workloads: [{name: w, pod: {containers: [{name: c, requests: {cpu: 1}}]}, hpa: {min-replicas: 1, max-replicas: 3, target-cpu-utilization: 0.5}}]",
                "workloads[0].hpa",
            ),
            ("policy: {scale-down: {max-nodes-per-step: 0}}", "policy.scale-down.max-nodes-per-step"),
            ("policy: {scale-up: {expander: cheapest}}", "policy.scale-up.expander"),
            ("provisioning: {boot: {lognormal: {median: 2m, p99: 1m}}}", "provisioning.boot"),
            ("pods: [{name: p, pod: {containers: [{name: c}]}, arrival: 5m, departure: 1m}]", "pods[0].departure"),
        ];
        for (extra, path) in cases {
            let err = Scenario::parse(&format!("{base}{extra}\n"), "s.yaml").unwrap_err();
            assert!(err.problems.iter().any(|p| p.path == path), "{extra}: {err}");
            assert!(err.to_string().starts_with("invalid scenario s.yaml:"), "{err}");
            assert!(!err.problems[0].problem.starts_with("workloads"), "path repeated in the message: {err}");
        }
    }

    #[test]
    fn a_policy_key_is_set_checked_and_refused_by_name() {
        use heatscaler_core::policy::Expander;
        let mut p = PolicySection::default();
        p.set("scale-down.unneeded-time", "2m").unwrap();
        p.set("scale-down.max-drain-parallelism", "4").unwrap();
        p.set("scale-up.expander", "price").unwrap();
        p.set("scale-down.consolidation", "false").unwrap();
        assert_eq!(p.scale_down.unneeded_time.get(), std::time::Duration::from_secs(120));
        assert_eq!(p.scale_down.max_drain_parallelism, 4);
        assert_eq!(p.scale_up.expander, Expander::Price);
        assert!(!p.scale_down.consolidation);
        // Untouched keys keep their values.
        assert_eq!(p.scale_down.min_pod_age.get(), std::time::Duration::from_secs(20 * 60));

        let unknown = p.set("scale-down.unneeded", "2m").unwrap_err();
        assert!(
            unknown.starts_with("scale-down.unneeded: no such key") && unknown.contains("unneeded-time"),
            "{unknown}"
        );
        let bad = p.set("scale-down.utilization-threshold", "1.5").unwrap_err();
        assert!(bad.contains("not a fraction"), "{bad}");
        let section = p.set("cluster-limits.max-nodes-total", "3").unwrap_err();
        assert!(section.contains("only scale-up.KEY and scale-down.KEY"), "{section}");
        // A refused value leaves the section as it was.
        assert_eq!(p.scale_down.utilization_threshold.0, 0.5);
    }
}
