//! The autoscaler under test: heatscaler's planner with the scenario's
//! policy, or a peer to compare it with ([`PolicyKind`]), run as its process
//! runs ([`Daemon`]: when passes happen, Heat polls, restarts) and acting
//! through the simulated actuator ([`actuator`]).

mod actuator;
mod daemon;
pub mod vpa_updater;

pub use daemon::{Daemon, PassObserver};

use std::collections::BTreeMap;
use std::time::Duration as StdDuration;

use heatscaler_core::model::{Resources, Snapshot, Timestamp};
use heatscaler_core::planner::explain::Explanation;
use heatscaler_core::planner::placement::Observations;
use heatscaler_core::planner::{self, Action, Input, Memory, Policy, ResizePolicy};
use heatscaler_core::policy::RecommenderSettings;

use crate::peers::ca_defaults::{self, CaDefaults, PeerConfig, PeerExpander};
use crate::scenario::Scenario;

/// Which autoscaler a run simulates.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum PolicyKind {
    /// heatscaler's planner with the scenario's `policy`, driven as the daemon
    /// does, **without** its admission webhook (`heatscaler-no-webhook`): new
    /// pods get their recommendation only where the scenario declares VPA's
    /// admission controller. What a daemon configured without the
    /// `admission-webhook` section does.
    HeatscalerNoWebhook,
    /// heatscaler's planner with pod resizing off (`pod-resize.enabled:
    /// false` whatever the scenario says): the node level alone, to measure
    /// what planning both levels together adds.
    HeatscalerNodeLevel,
    /// heatscaler as installed (`heatscaler`): [`PolicyKind::HeatscalerNoWebhook`] with
    /// its own admission webhook, which the package's configuration and the
    /// in-cluster manifests run: every new pod of a VPA object gets its
    /// recommendation at creation, whatever the scenario's
    /// `vpa-admission-controller` says (docs/decisions.md, "The simulator's
    /// `heatscaler` policy is the standard install, webhook included").
    Heatscaler,
    /// cluster-autoscaler's documented default behaviour, re-implemented
    /// (see `peers::ca_defaults` for what is and is not modelled).
    CaDefaults,
    /// The same with `--expander=least-waste`.
    CaLeastWaste,
    /// The same with `--expander=price`.
    CaPrice,
    /// The same with `--expander=priority,least-waste` (the documented chain).
    CaPriorityLeastWaste,
    /// A Karpenter-like policy on the same loop (`PeerConfig::KARPENTER_LIKE`).
    KarpenterLike,
}

impl PolicyKind {
    /// The default comparison: heatscaler and every peer.
    pub const ALL: [PolicyKind; 6] = [
        PolicyKind::Heatscaler,
        PolicyKind::CaDefaults,
        PolicyKind::CaLeastWaste,
        PolicyKind::CaPrice,
        PolicyKind::CaPriorityLeastWaste,
        PolicyKind::KarpenterLike,
    ];
    /// Every policy `--policy` accepts: the comparison and heatscaler's node
    /// level alone (docs/unified.md).
    pub const KNOWN: [PolicyKind; 8] = [
        PolicyKind::Heatscaler,
        PolicyKind::HeatscalerNodeLevel,
        PolicyKind::HeatscalerNoWebhook,
        PolicyKind::CaDefaults,
        PolicyKind::CaLeastWaste,
        PolicyKind::CaPrice,
        PolicyKind::CaPriorityLeastWaste,
        PolicyKind::KarpenterLike,
    ];

    /// Short machine name (CLI, JSON, table columns).
    pub fn name(self) -> &'static str {
        match self {
            PolicyKind::Heatscaler => "heatscaler",
            PolicyKind::HeatscalerNodeLevel => "heatscaler-node-level",
            PolicyKind::HeatscalerNoWebhook => "heatscaler-no-webhook",
            PolicyKind::CaDefaults => "ca-defaults",
            PolicyKind::CaLeastWaste => "ca-least-waste",
            PolicyKind::CaPrice => "ca-price",
            PolicyKind::CaPriorityLeastWaste => "ca-priority-least-waste",
            PolicyKind::KarpenterLike => "karpenter-like",
        }
    }

    /// What the run is, said honestly wherever results are shown.
    pub fn label(self) -> &'static str {
        match self {
            PolicyKind::Heatscaler => "heatscaler",
            PolicyKind::HeatscalerNodeLevel => "heatscaler, node level only (pod resizing off)",
            PolicyKind::HeatscalerNoWebhook => {
                "heatscaler without its admission webhook (recreated pods at their template size)"
            }
            PolicyKind::CaDefaults => "cluster-autoscaler documented defaults, re-implemented",
            PolicyKind::CaLeastWaste => "cluster-autoscaler defaults with --expander=least-waste, re-implemented",
            PolicyKind::CaPrice => "cluster-autoscaler defaults with --expander=price, re-implemented",
            PolicyKind::CaPriorityLeastWaste => {
                "cluster-autoscaler defaults with --expander=priority,least-waste, re-implemented"
            }
            PolicyKind::KarpenterLike => {
                "Karpenter-like: cheapest fit, consolidation with replacement, 30 s, re-implemented"
            }
        }
    }

    /// The peer's configuration; `None` for heatscaler.
    pub fn peer(self) -> Option<PeerConfig> {
        match self {
            PolicyKind::HeatscalerNoWebhook | PolicyKind::HeatscalerNodeLevel | PolicyKind::Heatscaler => None,
            PolicyKind::CaDefaults => Some(PeerConfig::cluster_autoscaler(&[])),
            PolicyKind::CaLeastWaste => Some(PeerConfig::cluster_autoscaler(&[PeerExpander::LeastWaste])),
            PolicyKind::CaPrice => Some(PeerConfig::cluster_autoscaler(&[PeerExpander::Price])),
            PolicyKind::CaPriorityLeastWaste => {
                Some(PeerConfig::cluster_autoscaler(&[PeerExpander::Priority, PeerExpander::LeastWaste]))
            }
            PolicyKind::KarpenterLike => Some(PeerConfig::KARPENTER_LIKE),
        }
    }

    pub fn parse(name: &str) -> Option<Self> {
        Self::KNOWN.into_iter().find(|k| k.name() == name)
    }

    /// The label of a run whose scenario has VPA objects: the peer is then
    /// cluster-autoscaler's and VPA's defaults together.
    pub fn label_with_vpa(self) -> &'static str {
        match self {
            PolicyKind::HeatscalerNoWebhook | PolicyKind::HeatscalerNodeLevel | PolicyKind::Heatscaler => self.label(),
            PolicyKind::CaDefaults => {
                "cluster-autoscaler and VPA documented defaults, re-implemented, blind to each other"
            }
            // The other peers run VPA's defaults beside them too.
            _ => self.label(),
        }
    }

    /// The recommender that writes the VPA objects' status in this run.
    pub fn recommender(self, sc: &Scenario) -> RecommenderSettings {
        match self {
            PolicyKind::HeatscalerNoWebhook | PolicyKind::HeatscalerNodeLevel | PolicyKind::Heatscaler => {
                sc.policy.pod_resize.recommender.clone()
            }
            _ => sc.vpa_peer_recommender.clone().unwrap_or_else(RecommenderSettings::vpa),
        }
    }

    /// Whether new pods get the recommendation: heatscaler's runs when the
    /// scenario declares VPA's admission controller; the VPA peer always
    /// installs its own.
    pub fn admission(self, sc: &Scenario) -> bool {
        match self {
            PolicyKind::HeatscalerNoWebhook => sc.vpa_admission_controller,
            PolicyKind::Heatscaler => true,
            // Nothing resizes: an admission controller would be a pod-level actor.
            PolicyKind::HeatscalerNodeLevel => false,
            _ => true,
        }
    }

    /// Whether VPA's updater (the peer) evicts pods in this run: beside every
    /// peer; heatscaler plans the pod level itself, and its node level alone
    /// has no pod-level actor at all.
    pub fn runs_vpa_updater(self) -> bool {
        self.peer().is_some()
    }
}

/// A running autoscaler and what it remembers between passes.
#[allow(clippy::large_enum_variant)] // one per simulated run
pub enum Autoscaler {
    Heatscaler { policy: Policy, memory: Memory },
    CaDefaults(CaDefaults),
}

impl Autoscaler {
    pub fn new(kind: PolicyKind, sc: &Scenario) -> Self {
        match kind {
            PolicyKind::HeatscalerNoWebhook | PolicyKind::HeatscalerNodeLevel | PolicyKind::Heatscaler => {
                let mut policy = Policy {
                    scale_up: sc.policy.scale_up.clone(),
                    scale_down: sc.policy.scale_down.clone(),
                    limits: sc.policy.cluster_limits.clone(),
                    seed: sc.seed,
                    resize: ResizePolicy {
                        enabled: sc.policy.pod_resize.enabled && kind != PolicyKind::HeatscalerNodeLevel,
                        updater: sc.policy.pod_resize.updater.clone(),
                    },
                    placement: sc.policy.placement_advisor.clone(),
                    ..Policy::default()
                };
                if let Some(labels) = &sc.policy.control_plane_labels {
                    policy.control_plane_labels = labels.clone();
                }
                Autoscaler::Heatscaler { policy, memory: Memory::default() }
            }
            peer => Autoscaler::CaDefaults(CaDefaults::new(
                sc.policy.control_plane_labels.as_deref(),
                sc.policy.cluster_limits.max_nodes_total,
                sc.seed,
                peer.peer().expect("a peer"),
            )),
        }
    }

    /// One decision pass on what the autoscaler observes: its actions, and
    /// the planner's explanation of the pass (heatscaler's only; the peers
    /// explain nothing).
    pub fn decide(
        &mut self,
        snapshot: &Snapshot,
        usage: Option<&BTreeMap<String, Resources>>,
        observations: Option<&Observations>,
        now: Timestamp,
    ) -> (Vec<Action>, Option<Explanation>) {
        match self {
            Autoscaler::Heatscaler { policy, memory } => {
                let plan = planner::plan(&Input { snapshot, usage, memory, now, observations }, policy);
                *memory = plan.memory;
                (plan.actions, Some(plan.explanation))
            }
            Autoscaler::CaDefaults(ca) => (ca.decide(snapshot, now), None),
        }
    }

    /// `Some(interval)` for a loop on a fixed scan interval (cluster-autoscaler);
    /// `None` for heatscaler, which plans after changes and every resync.
    pub fn scan_interval(&self) -> Option<StdDuration> {
        match self {
            Autoscaler::Heatscaler { .. } => None,
            Autoscaler::CaDefaults(_) => Some(ca_defaults::SCAN_INTERVAL),
        }
    }

    /// Whether a pass reads observed usage.
    pub fn reads_usage(&self) -> bool {
        match self {
            Autoscaler::Heatscaler { policy, .. } => policy.scale_down.use_observed_usage,
            Autoscaler::CaDefaults(_) => false,
        }
    }

    /// The process restarted: everything kept in memory is gone.
    pub fn forget(&mut self) {
        match self {
            Autoscaler::Heatscaler { memory, .. } => *memory = Memory::default(),
            Autoscaler::CaDefaults(ca) => ca.restart(),
        }
    }
}
