//! Why a scaling event happened: a closed set of stable, machine-readable
//! reasons. They are API — operators route Alertmanager alerts and filter
//! `kubectl get events --field-selector reason=...` on them — so a variant is
//! never renamed. Names follow cluster-autoscaler's Events where it has one
//! (`TriggeredScaleUp`, `NotTriggerScaleUp`, `ScaledUpGroup`), so runbooks carry over.

use heatscaler_core::planner::ActionKind;
use serde::Serialize;

use super::Severity;

/// Who a reason is for. Kubernetes Events and logs get everything; webhook
/// sinks get [`Audience::Operators`] reasons unless configured with
/// `include-details: true`, so a 500-pod scale-up is one Slack message, not 501.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Audience {
    /// A step or outcome an operator wants to hear about.
    Operators,
    /// Per-pod or intermediate progress, useful on the object itself.
    Details,
}

macro_rules! reasons {
    ($( $(#[$doc:meta])* $name:ident => $severity:ident, $audience:ident, $action:literal; )*) => {
        #[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
        pub enum Reason {
            $( $(#[$doc])* $name, )*
        }

        impl Reason {
            /// Every reason, in declaration order.
            pub const ALL: &'static [Reason] = &[$(Reason::$name),*];

            /// The stable name: the Kubernetes Event `reason` and Alertmanager `alertname`.
            pub const fn as_str(self) -> &'static str {
                match self { $(Reason::$name => stringify!($name),)* }
            }

            /// The severity events with this reason get unless the caller says otherwise.
            pub const fn default_severity(self) -> Severity {
                match self { $(Reason::$name => Severity::$severity,)* }
            }

            pub const fn audience(self) -> Audience {
                match self { $(Reason::$name => Audience::$audience,)* }
            }

            /// The Kubernetes Event `action`: what heatscaler was doing.
            pub const fn action(self) -> &'static str {
                match self { $(Reason::$name => $action,)* }
            }
        }
    };
}

reasons! {
    // ---------------------------------------------------------------- scale-up
    /// On a pending pod: it made heatscaler grow a node group.
    TriggeredScaleUp => Info, Details, "ScaleUp";
    /// On a pending pod: no node group can take it (does not fit any template,
    /// every fitting group is at max-size or in backoff, cluster limits).
    NotTriggerScaleUp => Info, Details, "ScaleUp";
    /// A node group was asked to grow (`from_size`, `to_size`).
    ScaledUpGroup => Info, Operators, "ScaleUp";
    /// A scale-up was cut short by max-size or cluster limits: pods stay pending.
    ScaleUpLimited => Warning, Operators, "ScaleUp";
    /// Heat refused the stack update or it ended `UPDATE_FAILED` (quota, template).
    ScaleUpFailed => Warning, Operators, "ScaleUp";
    /// A new minion ended `CREATE_FAILED` or did not become a Ready node in time.
    ProvisioningFailed => Warning, Operators, "Provision";
    /// After failures the group is not grown again until the backoff expires.
    ScaleUpBackoff => Warning, Operators, "ScaleUp";
    /// On a node: a new minion registered and became Ready.
    MinionJoined => Info, Details, "Provision";

    // -------------------------------------------------------------- scale-down
    /// On a node: unneeded but kept (pods that cannot move, a PDB with no
    /// budget, min-size, the `scale-down-disabled` annotation).
    ScaleDownBlocked => Info, Details, "ScaleDown";
    /// On a node: cordoned and tainted as the first step of its removal.
    ScaleDownCordoned => Info, Operators, "Cordon";
    /// On a node: evictions begin.
    DrainStarted => Info, Details, "Drain";
    /// On a pod: evicted to drain its node (`related` is the node).
    PodEvicted => Info, Details, "Evict";
    /// On a pod: its PodDisruptionBudget allows no disruption now; retried.
    EvictionBlocked => Warning, Details, "Evict";
    /// On a node: every pod that had to leave has left.
    DrainFinished => Info, Details, "Drain";
    /// On a node: the drain gave up (timeout, pods that cannot be evicted); the node is uncordoned.
    DrainFailed => Warning, Operators, "Drain";
    /// On a node: became needed again before removal; uncordoned and kept.
    ScaleDownAborted => Info, Operators, "Uncordon";
    /// On a node: its minion was removed from the Heat stack.
    MinionRemoved => Info, Details, "RemoveMinion";
    /// On a node: the Heat update that should remove its drained minion failed;
    /// the node stays cordoned and the removal is retried.
    MinionRemovalFailed => Warning, Operators, "RemoveMinion";
    /// A node group shrank (`from_size`, `to_size`, `minions`): one Heat update for all of them.
    ScaledDownGroup => Info, Operators, "ScaleDown";
    /// A node group's removal parameter does not steer which members Heat
    /// deletes (Heat's own preview of the stack says so): nothing is removed
    /// from the group until the template is fixed. The message names the fix.
    RemovalNotWired => Critical, Operators, "RemoveMinion";
    /// A removal update did not remove exactly the chosen members (another
    /// member left, or a chosen one stayed although the update completed).
    /// The group is held — nothing more is done to it — and the nodes involved
    /// carry `heatscaler.io/removal-mismatch`.
    RemovalMismatch => Critical, Operators, "RemoveMinion";

    // ------------------------------------------------------------- pod resize
    /// On a pod: new requests applied in place (`container`, `resource`, `from`, `to`).
    PodResized => Info, Details, "Resize";
    /// On a pod: the kubelet deferred the resize (node momentarily full).
    PodResizeDeferred => Info, Details, "Resize";
    /// On a pod: the kubelet will never apply the resize on this node.
    PodResizeInfeasible => Warning, Operators, "Resize";
    /// On a pod: the API refused the resize.
    PodResizeFailed => Warning, Operators, "Resize";
    /// On a pod: evicted so its controller recreates it with the new requests
    /// (only where the policy allows evict-and-recreate).
    PodEvictedForResize => Info, Details, "Evict";
    /// On a pod: its VPA object's update cannot happen as configured (it
    /// would change the pod's QoS class, which Kubernetes refuses in place,
    /// and recreating is not allowed): nothing is sent.
    PodResizeUnsupported => Warning, Operators, "Resize";
    /// On a VPA object heatscaler handles: upstream VPA's updater or
    /// admission controller was seen acting on its pods (`component`, `pod`)
    /// — two updaters on the same pods. Once per object and component.
    UpstreamVpaActive => Warning, Operators, "Resize";
    /// On a pod: created for a VPA object with a recommendation while
    /// `admission-webhook` is configured, yet without heatscaler's mark — the
    /// API server did not call the webhook (not registered, unreachable,
    /// failing: `failurePolicy: Ignore` hides it). The planner stops counting
    /// on recreated pods getting their recommendation until a newer pod
    /// carries the mark. Once each time it turns so.
    AdmissionWebhookNotCalled => Warning, Operators, "Resize";

    // ------------------------------------------------------ placement advisor
    /// On a workload: a preferred pod affinity towards a chatty server was
    /// added to its template (placement advisor, `apply` mode).
    PodAffinityAdded => Info, Operators, "CoLocate";
    /// On a workload: the advisor's preferred pod affinity was taken back.
    PodAffinityRemoved => Info, Operators, "CoLocate";
    /// On a workload: new placement advice (co-locate it with a server, or
    /// raise its requests), with the evidence — the pair, requests/s, the p99
    /// same-node and cross-node, the expected gain — and whether it is applied.
    PlacementAdvised => Info, Operators, "Advise";
    /// On a workload: standing advice taken back (its pair's traffic stayed
    /// low for `release-after`).
    PlacementAdviceWithdrawn => Info, Operators, "Advise";

    // ------------------------------------------------------------- consistency
    /// A Heat member without a Kubernetes node past provisioning time, or a
    /// group node whose Heat member is gone (e.g. deleted by hand).
    UnregisteredMinion => Warning, Operators, "Reconcile";

    /// More nodes are unready than `cluster-limits.ok-total-unready-count`
    /// and than `max-total-unready-percentage` of all nodes (`unready`,
    /// `nodes`): an outage new minions would not mend, so no group grows and
    /// no removal starts until nodes recover (cluster-autoscaler's "cluster
    /// is not ready for autoscaling"). Removals under way continue.
    AutoscalingHalted => Warning, Operators, "Halt";

    // ---------------------------------------------------------------- OpenStack
    /// Reading a node group from Heat (Keystone included) has failed for
    /// longer than `openstack.failure-alert-after` (`reason`, `error`,
    /// `failing_for`): nothing is scaled in that group until it reads again.
    OpenStackFailing => Critical, Operators, "ReadHeat";
    /// A group's stack has been `*_IN_PROGRESS` for longer than
    /// `openstack.stack-update-timeout` (heat-engine died mid-update): nothing
    /// is sent to the group meanwhile; heatscaler updates the stack with its
    /// own template and parameters to make Heat finish (`recovery` says how it went).
    StackStuck => Critical, Operators, "RecoverStack";

    // -------------------------------------------------------------- Kubernetes
    /// A watch of the Kubernetes API has failed (or not completed its first
    /// list) for longer than `kubernetes.failure-alert-after` (`watches`,
    /// `error`, `failing_for`): heatscaler plans on data that no longer
    /// follows the cluster, and can change nothing while the API server fails.
    KubernetesFailing => Critical, Operators, "WatchKubernetes";

    // ------------------------------------------------------------ service mesh
    /// Reading the mesh's traffic from Prometheus has failed for longer than
    /// `mesh-metrics.failure-alert-after` (`error`, `failing_for`): the
    /// placement advisor gives no new advice meanwhile (scaling is unaffected).
    MeshMetricsFailing => Warning, Operators, "ReadMesh";

    // ---------------------------------------------------------------- daemon
    /// A reload (SIGHUP) found the new configuration invalid; the daemon keeps
    /// running with the previous one.
    ConfigReloadFailed => Warning, Operators, "Reload";
    /// On the leader Lease: this replica became the leader (`identity`,
    /// `previous`), or stopped leading because it could not renew the lease in
    /// time (Warning). client-go's Event reason for the same facts.
    LeaderElection => Info, Operators, "LeaderElection";
}

impl std::fmt::Display for Reason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Reason {
    /// The reason of the Event that reports carrying out an action of this
    /// kind: what a dry run reports it with ("dry run: would ..."). The
    /// planner names the kind; which Event stands for it is this catalogue's.
    pub const fn for_action(kind: ActionKind) -> Reason {
        match kind {
            ActionKind::ScaleUp => Reason::ScaledUpGroup,
            ActionKind::RemoveMembers => Reason::ScaledDownGroup,
            ActionKind::StartRemoval => Reason::ScaleDownCordoned,
            ActionKind::EvictPods => Reason::DrainStarted,
            ActionKind::MarkDrained => Reason::DrainFinished,
            ActionKind::RollBackRemoval => Reason::ScaleDownAborted,
            ActionKind::DeleteNode => Reason::MinionRemoved,
            ActionKind::ResizePod => Reason::PodResized,
            ActionKind::RecreatePod => Reason::PodEvictedForResize,
            ActionKind::SetPreferredAffinity => Reason::PodAffinityAdded,
            ActionKind::RemovePreferredAffinity => Reason::PodAffinityRemoved,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reasons_are_valid_event_reasons_and_unique() {
        let mut seen = std::collections::HashSet::new();
        for r in Reason::ALL {
            let s = r.as_str();
            assert!(seen.insert(s), "{s} twice");
            // events.k8s.io/v1: reason and action at most 128 characters; PascalCase by convention;
            // also a valid Prometheus label value and Alertmanager alertname.
            assert!(s.len() <= 128 && s.chars().all(|c| c.is_ascii_alphanumeric()), "{s}");
            assert!(s.starts_with(|c: char| c.is_ascii_uppercase()), "{s}");
            assert!(r.action().len() <= 128 && r.action().chars().all(|c| c.is_ascii_alphanumeric()));
        }
        assert!(Reason::ALL.len() >= 20);
    }

    #[test]
    fn each_kind_of_action_is_reported_with_its_own_reason() {
        use heatscaler_core::planner::ActionKind;
        let reasons: std::collections::BTreeSet<Reason> =
            ActionKind::ALL.iter().map(|&k| Reason::for_action(k)).collect();
        assert_eq!(reasons.len(), ActionKind::ALL.len());
    }
}
