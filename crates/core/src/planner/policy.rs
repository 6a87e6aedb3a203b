//! What the planner is told to do: the operator's policy plus the few tuning
//! knobs cluster-autoscaler has as flags but heatscaler keeps internal. The
//! daemon builds it from its configuration (`Config::planner_policy`), the
//! simulator from a scenario.

use crate::policy::{ClusterLimits, PlacementAdvisorPolicy, ScaleDownPolicy, ScaleUpPolicy, UpdaterSettings};

#[derive(Clone, Debug)]
pub struct Policy {
    pub scale_up: ScaleUpPolicy,
    pub scale_down: ScaleDownPolicy,
    pub limits: ClusterLimits,
    /// Node labels marking the control plane (`kubernetes.control-plane-labels`).
    pub control_plane_labels: Vec<String>,
    /// Seed of the `random` expander. The planner mixes it with `now`, so the
    /// same inputs give the same choice while successive passes still vary.
    pub seed: u64,
    pub tuning: Tuning,
    /// The pod-level updater (`pod-resize`).
    pub resize: ResizePolicy,
    /// The placement advisor (`placement-advisor`); off by default.
    pub placement: PlacementAdvisorPolicy,
}

/// `pod-resize.enabled` and `pod-resize.updater`.
#[derive(Clone, Debug)]
pub struct ResizePolicy {
    /// Off (`pod-resize.enabled` or `pod-resize.updater.enabled` false): VPA
    /// objects are ignored by the planner, no pod is touched.
    pub enabled: bool,
    pub updater: UpdaterSettings,
}

impl Default for ResizePolicy {
    fn default() -> Self {
        Self { enabled: true, updater: UpdaterSettings::default() }
    }
}

/// Bounds on work per pass, so a 10,000-node cluster plans in well under a
/// second. Defaults are cluster-autoscaler's (`--scale-down-candidates-pool-*`).
#[derive(Clone, Debug)]
pub struct Tuning {
    /// At least this many scale-down candidates are simulated per pass...
    pub candidates_pool_min: usize,
    /// ...or this share of the group nodes, whichever is larger.
    pub candidates_pool_ratio: f64,
    /// Pods listed by name in a scale-up reason (the count is always exact).
    pub pods_named_per_reason: usize,
}

impl Default for Tuning {
    fn default() -> Self {
        Self { candidates_pool_min: 50, candidates_pool_ratio: 0.1, pods_named_per_reason: 5 }
    }
}

impl Default for Policy {
    fn default() -> Self {
        Self {
            scale_up: ScaleUpPolicy::default(),
            scale_down: ScaleDownPolicy::default(),
            limits: ClusterLimits::default(),
            // Same as `kubernetes.control-plane-labels`' default.
            control_plane_labels: vec![
                "node-role.kubernetes.io/control-plane".into(),
                "node-role.kubernetes.io/master".into(),
            ],
            seed: 0,
            tuning: Tuning::default(),
            resize: ResizePolicy::default(),
            placement: PlacementAdvisorPolicy::default(),
        }
    }
}
