//! What a pass tells operators beyond its actions: the planner's alerts
//! (failed provisioning, drift, pods no group can host), new minions, pods that
//! trigger no scale-up, and the group and pending-pod gauges.
//!
//! Alerts are latched: one is sent when its condition appears and again only
//! after it has cleared and come back, so a condition that lasts an hour is
//! one alert, not one per pass. (The dispatcher's dedup window is the second
//! line of defence, for conditions that flap.)

use std::collections::{BTreeSet, HashSet};

use crate::alerts::{Dispatcher, ObjectRef, Reason, ScalingEvent};
use crate::telemetry::{GroupSizes, Metrics, ScaleUpFailure};
use heatscaler_core::model::{MemberStatus, PodKey};
use heatscaler_core::planner::Memory;
use heatscaler_core::planner::explain::{Alert, PodOutcome, ProvisioningFailure};

use super::planning::Planned;

/// New `NotTriggerScaleUp` pod Events per pass, at most.
const POD_EVENTS_PER_PASS: usize = 50;

#[derive(Debug, Default)]
pub struct Reporter {
    alerts_active: HashSet<String>,
    pods_reported: HashSet<PodKey>,
    /// `group/member` whose node has been seen Ready; `None` until the first
    /// pass, which only records (minions that were there at start-up did not join now).
    joined: Option<HashSet<String>>,
    groups_reported: BTreeSet<String>,
}

impl Reporter {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn report(&mut self, planned: &Planned, memory: &Memory, alerts: &Dispatcher, metrics: &Metrics) {
        let ex = &planned.plan.explanation;
        metrics.set_unschedulable_pods(planned.unschedulable_pods as u64);
        self.group_metrics(planned, metrics);
        self.minions_joined(planned, alerts);

        let mut active = HashSet::new();
        for alert in &ex.alerts {
            let key = serde_json::to_string(alert).unwrap_or_else(|_| alert.to_string());
            if !self.alerts_active.contains(&key) {
                for event in events(alert, memory, metrics) {
                    alerts.dispatch(event);
                }
            }
            active.insert(key);
        }
        self.alerts_active = active;

        let mut pending = HashSet::new();
        let mut budget = POD_EVENTS_PER_PASS;
        for p in &ex.pods {
            let PodOutcome::NoScaleUp { .. } = &p.outcome else { continue };
            if !self.pods_reported.contains(&p.pod) && budget > 0 {
                budget -= 1;
                let object = ObjectRef::pod(&p.pod.namespace, &p.pod.name);
                alerts.dispatch(ScalingEvent::not_trigger_scale_up(object, &p.outcome.to_string()));
            }
            pending.insert(p.pod.clone());
        }
        self.pods_reported = pending;
    }

    fn group_metrics(&mut self, planned: &Planned, metrics: &Metrics) {
        let mut seen = BTreeSet::new();
        for g in &planned.groups {
            let explained = planned.plan.explanation.group(&g.name);
            let failed = g.members.iter().filter(|m| m.status == MemberStatus::Failed).count();
            metrics.set_group_size(
                &g.name,
                GroupSizes {
                    desired: u64::from(g.desired),
                    ready: explained.map_or(0, |e| u64::from(e.ready)),
                    provisioning: explained.map_or(0, |e| u64::from(e.upcoming)),
                    failed: failed as u64,
                },
            );
            metrics.set_group_limits(&g.name, u64::from(g.min_size), u64::from(g.max_size));
            seen.insert(g.name.clone());
        }
        for gone in self.groups_reported.difference(&seen) {
            metrics.forget_group(gone);
        }
        self.groups_reported = seen;
    }

    fn minions_joined(&mut self, planned: &Planned, alerts: &Dispatcher) {
        let mut ready_now = HashSet::new();
        let mut new = Vec::new();
        for g in &planned.groups {
            for m in &g.members {
                let Some(node) = m.node_name.as_ref().filter(|n| planned.ready_nodes.contains(*n)) else { continue };
                let key = format!("{}/{}", g.name, m.id);
                if self.joined.as_ref().is_some_and(|j| !j.contains(&key)) {
                    new.push((g.name.as_str(), m.id.as_str(), node.as_str()));
                }
                ready_now.insert(key);
            }
        }
        for (group, member, node) in new {
            alerts.dispatch(ScalingEvent::minion_joined(ObjectRef::node(node), group, member));
        }
        self.joined = Some(ready_now);
    }
}

/// The Events and notifications of one planner alert. Rolled-back drains are
/// reported by the actuator when it performs the rollback.
fn events(alert: &Alert, memory: &Memory, metrics: &Metrics) -> Vec<ScalingEvent> {
    match alert {
        Alert::ProvisioningFailed { group, member, cause, backoff_until } => {
            let failure = match cause {
                ProvisioningFailure::CreateFailed => ScaleUpFailure::CreateFailed,
                ProvisioningFailure::NoNode { .. } => ScaleUpFailure::ProvisioningTimedOut,
            };
            metrics.record_failed_scale_up(group, failure);
            let failures = memory.backoff.get(group).map_or(1, |b| b.failures);
            vec![
                ScalingEvent::provisioning_failed(group, member, None, &format!("{cause}; the member is removed"))
                    .with_field("backoff_until", backoff_until),
                ScalingEvent::scale_up_backoff(group, *backoff_until, failures),
            ]
        }
        Alert::DrainRolledBack { .. } => Vec::new(),
        Alert::PodsUnhelpable { pods, example, why } => {
            let object = ObjectRef::pod(&example.namespace, &example.name);
            vec![
                ScalingEvent::not_trigger_scale_up(object, why)
                    .with_severity(crate::alerts::Severity::Warning)
                    .with_field("pods", pods),
            ]
        }
        Alert::MemberLostNode { group, member, node } => vec![
            ScalingEvent::unregistered_minion(
                group,
                member,
                &format!("its node {node} is gone (deleted by hand?); the member is removed from Heat"),
            )
            .with_object(ObjectRef::node(node)),
        ],
        Alert::NodeWithoutMember { node, group } => vec![
            ScalingEvent::new(
                Reason::UnregisteredMinion,
                format!("node {node} is labelled as a minion of node group {group} but Heat lists no member for it; left alone"),
            )
            .with_object(ObjectRef::node(node))
            .in_group(group),
        ],
        Alert::DesiredExceedsMembers { group, desired, members } => vec![
            ScalingEvent::new(
                Reason::UnregisteredMinion,
                format!("node group {group}: Heat is asked for {desired} minions but lists {members} members"),
            )
            .in_group(group)
            .with_field("desired", desired)
            .with_field("members", members),
        ],
        Alert::NodeUnready { node, group, member } => vec![ScalingEvent::provisioning_failed(
            group,
            member,
            Some(ObjectRef::node(node)),
            "its node is not Ready (registered longer than max-node-provision-time ago); not counted as capacity; \
             removed once unneeded and not Ready for scale-down.unready-time",
        )],
    }
}
