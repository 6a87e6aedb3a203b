//! The node level's policy: when to grow a group and with which group, when a
//! minion may go and how fast, and the cluster-wide limits — the
//! configuration's `scale-up`, `scale-down` and `cluster-limits` sections,
//! which simulation scenarios embed as `policy:` too.

use serde::{Deserialize, Serialize};

use super::{Duration, Fraction, Problem, Quantity};

/// Cluster-wide limits across all groups (cluster-autoscaler's
/// `--max-nodes-total`, `--cores-total`, `--memory-total`), and how many
/// unready nodes halt autoscaling (`--max-total-unready-percentage`,
/// `--ok-total-unready-count`).
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct ClusterLimits {
    #[serde(default)]
    pub max_nodes_total: Option<u32>,
    #[serde(default)]
    pub max_cores_total: Option<u32>,
    #[serde(default)]
    pub max_memory_total: Option<Quantity>,
    /// With more than `ok-total-unready-count` nodes unready *and* more than
    /// this percentage of all nodes, the cluster is broken in a way new
    /// minions will not mend (a network or control-plane outage): no group
    /// grows and no removal starts until it recovers.
    #[serde(default = "default_max_total_unready_percentage")]
    pub max_total_unready_percentage: f64,
    /// So many unready nodes never halt autoscaling, whatever the percentage
    /// (in a 2-node cluster one dead node is 50%).
    #[serde(default = "default_ok_total_unready_count")]
    pub ok_total_unready_count: u32,
}

fn default_max_total_unready_percentage() -> f64 {
    45.0
}

fn default_ok_total_unready_count() -> u32 {
    3
}

impl Default for ClusterLimits {
    fn default() -> Self {
        Self {
            max_nodes_total: None,
            max_cores_total: None,
            max_memory_total: None,
            max_total_unready_percentage: default_max_total_unready_percentage(),
            ok_total_unready_count: default_ok_total_unready_count(),
        }
    }
}

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields, default)]
pub struct ScaleUpPolicy {
    pub enabled: bool,
    /// How to choose among groups that can all host the pending pods.
    pub expander: Expander,
    /// Pods younger than this are not yet acted on (lets the scheduler finish its pass).
    pub new_pod_scale_up_delay: Duration,
    /// A minion that is not a Ready node after this long is a failed provisioning.
    pub max_node_provision_time: Duration,
    /// Upper bound of minions added to one group in one decision.
    pub max_nodes_per_scale_up: u32,
    /// First back-off of a group after a failed provisioning; doubles up to `backoff-max`.
    pub backoff_initial: Duration,
    pub backoff_max: Duration,
    /// Split a scale-up across groups similar to the one chosen (same
    /// template resources within a tolerance, same labels but for zone,
    /// hostname and the like, same taints), keeping their sizes balanced:
    /// the same workers in several availability zones grow together
    /// (cluster-autoscaler's `--balance-similar-node-groups`).
    pub balance_similar_node_groups: bool,
    /// Further labels that differ between otherwise similar groups (a
    /// zone label of your own), as cluster-autoscaler's `--balancing-ignore-label`.
    pub balancing_ignore_labels: Vec<String>,
}

impl Default for ScaleUpPolicy {
    fn default() -> Self {
        Self {
            enabled: true,
            expander: Expander::LeastWaste,
            new_pod_scale_up_delay: Duration::from_secs(0),
            max_node_provision_time: Duration::from_secs(15 * 60),
            max_nodes_per_scale_up: 1000,
            backoff_initial: Duration::from_secs(5 * 60),
            backoff_max: Duration::from_secs(30 * 60),
            balance_similar_node_groups: false,
            balancing_ignore_labels: Vec::new(),
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Expander {
    /// The group that leaves the least unused CPU, memory and extended
    /// resources (GPUs) on the new minions.
    LeastWaste,
    /// The group with the highest `priority`; ties broken by least waste.
    Priority,
    /// A random group among those that fit (seeded; reproducible in the simulator).
    Random,
    /// The lowest `price-per-hour` of the new minions per pod they host; ties by least waste.
    Price,
}

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields, default)]
pub struct ScaleDownPolicy {
    pub enabled: bool,
    /// How long a node must stay unneeded before it is removed.
    pub unneeded_time: Duration,
    /// How long a minion whose node is not Ready (a dead VM, a stopped
    /// kubelet) must stay unneeded before it is removed; its utilization does
    /// not matter, its capacity is gone (cluster-autoscaler's
    /// `scale-down-unready-time`).
    pub unready_time: Duration,
    /// A node is unneeded when requested CPU and memory are both below this share of allocatable.
    pub utilization_threshold: Fraction,
    /// Also consider nodes at or above the threshold, after those below it: a
    /// node whose pods all fit on the other nodes is unneeded whatever its
    /// utilisation (consolidation). `false` is cluster-autoscaler's behaviour.
    pub consolidation: bool,
    /// Replace a minion whose pods fit on the other nodes plus one new minion
    /// of a cheaper group by that minion (Karpenter's replacement), when the
    /// saving repays running both for the observed boot latency plus
    /// `unneeded-time` within the time its youngest pod has already run.
    pub replace_with_cheaper: bool,
    /// Same, for nodes with GPUs, measured on the GPUs.
    pub gpu_utilization_threshold: Fraction,
    /// Also require observed usage (kubelet stats) below the threshold.
    pub use_observed_usage: bool,
    pub delay_after_add: Duration,
    pub delay_after_delete: Duration,
    pub delay_after_failure: Duration,
    /// How long a drained, empty minion is held before it is removed from Heat,
    /// so a burst that returns right away can still use it (uncordon, no boot).
    pub cooldown_before_removal: Duration,
    /// How long evictions blocked by PodDisruptionBudgets (`429`) are retried.
    pub max_eviction_time: Duration,
    /// Longest grace period given to an evicted pod; also how long the drain waits for pods to go.
    pub max_graceful_termination: Duration,
    /// A pod younger than this is not evicted by choice: no drain starts on
    /// its node, no resize recreates it (but after an OOM kill). Each such
    /// eviction then comes at least this long after the one that made the
    /// pod, so a replica is evicted at most `1h / min-pod-age` times an hour
    /// (3 at the default; docs/decisions.md). The descheduler's `minPodAge`.
    pub min_pod_age: Duration,
    /// Most minions removed in one step (one Heat update per group).
    pub max_nodes_per_step: u32,
    /// Most non-empty minions drained at the same time.
    pub max_drain_parallelism: u32,
    pub skip_nodes_with_local_storage: bool,
    pub skip_nodes_with_system_pods: bool,
    pub skip_nodes_with_custom_controller_pods: bool,
}

impl Default for ScaleDownPolicy {
    fn default() -> Self {
        Self {
            enabled: true,
            unneeded_time: Duration::from_secs(10 * 60),
            unready_time: Duration::from_secs(20 * 60),
            utilization_threshold: Fraction(0.5),
            consolidation: true,
            replace_with_cheaper: false,
            gpu_utilization_threshold: Fraction(0.5),
            use_observed_usage: false,
            delay_after_add: Duration::from_secs(10 * 60),
            delay_after_delete: Duration::from_secs(0),
            delay_after_failure: Duration::from_secs(3 * 60),
            cooldown_before_removal: Duration::from_secs(60),
            max_eviction_time: Duration::from_secs(2 * 60),
            max_graceful_termination: Duration::from_secs(10 * 60),
            min_pod_age: Duration::from_secs(20 * 60),
            max_nodes_per_step: 10,
            max_drain_parallelism: 1,
            skip_nodes_with_local_storage: true,
            skip_nodes_with_system_pods: true,
            skip_nodes_with_custom_controller_pods: true,
        }
    }
}

/// What serde cannot check in the scale-up and scale-down sections. Paths
/// are as in the configuration file (`scale-up.backoff-initial`); a document
/// that embeds the sections elsewhere prefixes them.
pub fn scaling_problems(scale_up: &ScaleUpPolicy, scale_down: &ScaleDownPolicy) -> Vec<Problem> {
    let mut out = Vec::new();
    if scale_up.max_node_provision_time.get().is_zero() {
        out.push(Problem::new("scale-up.max-node-provision-time", "must be longer than zero"));
    }
    if scale_up.max_nodes_per_scale_up == 0 {
        out.push(Problem::new("scale-up.max-nodes-per-scale-up", "must be at least 1"));
    }
    if scale_up.backoff_initial > scale_up.backoff_max {
        out.push(Problem::new(
            "scale-up.backoff-initial",
            format!("{} is longer than backoff-max {}", scale_up.backoff_initial, scale_up.backoff_max),
        ));
    }
    if scale_down.max_nodes_per_step == 0 {
        out.push(Problem::new("scale-down.max-nodes-per-step", "must be at least 1"));
    }
    if scale_down.max_drain_parallelism == 0 {
        out.push(Problem::new("scale-down.max-drain-parallelism", "must be at least 1"));
    }
    out
}
