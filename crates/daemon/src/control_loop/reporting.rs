//! What a pass tells operators beyond its actions: the planner's alerts
//! (failed provisioning, drift, pods no group can host), new minions, pods that
//! trigger no scale-up, and the group and pending-pod gauges.
//!
//! Alerts are latched: one is sent when its condition appears and again only
//! after it has cleared and come back, so a condition that lasts an hour is
//! one alert, not one per pass. (The dispatcher's dedup window is the second
//! line of defence, for conditions that flap.)

use std::collections::{BTreeSet, HashMap, HashSet};

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
    /// Per group, the members whose node has been seen Ready. A group enters
    /// the map at the first pass that has it, which only records (minions there
    /// when heatscaler starts, or when a reload adds the group, did not join
    /// now), and stays in it while a pass lacks it: after a reload the new Heat
    /// poller has read no group yet, and its first reads are no news.
    joined: HashMap<String, HashSet<String>>,
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
        for g in &planned.groups {
            let ready_now: HashSet<String> = g
                .members
                .iter()
                .filter(|m| m.node_name.as_ref().is_some_and(|n| planned.ready_nodes.contains(n)))
                .map(|m| m.id.clone())
                .collect();
            if let Some(known) = self.joined.get(&g.name) {
                for m in g.members.iter().filter(|m| ready_now.contains(&m.id) && !known.contains(&m.id)) {
                    let node = m.node_name.as_deref().unwrap_or_default();
                    alerts.dispatch(ScalingEvent::minion_joined(ObjectRef::node(node), &g.name, &m.id));
                }
            }
            self.joined.insert(g.name.clone(), ready_now);
        }
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

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};
    use std::time::Duration;

    use futures::future::BoxFuture;

    use super::*;
    use crate::alerts::{EventSink, RetryPolicy, Severity, SinkError, SinkPolicy};
    use heatscaler_core::model::{GroupState, Member};
    use heatscaler_core::planner::Plan;

    #[derive(Default)]
    struct Captured(Mutex<Vec<ScalingEvent>>);

    impl EventSink for Captured {
        fn publish<'a>(&'a self, event: &'a ScalingEvent) -> BoxFuture<'a, Result<(), SinkError>> {
            self.0.lock().unwrap().push(event.clone());
            Box::pin(async { Ok(()) })
        }
    }

    fn planned(members: &[&str]) -> Planned {
        let group = GroupState {
            name: "workers".into(),
            desired: members.len() as u32,
            min_size: 0,
            max_size: 10,
            members: members
                .iter()
                .map(|m| Member {
                    id: m.to_string(),
                    node_name: Some(format!("n-{m}")),
                    status: MemberStatus::Complete,
                    created: None,
                })
                .collect(),
            stack_busy: false,
            template: None,
            price_per_hour: 0.0,
            priority: 0,
        };
        Planned {
            plan: Plan { actions: vec![], explanation: Default::default(), memory: Memory::default() },
            groups: if members.is_empty() { vec![] } else { vec![group] },
            unschedulable_pods: 0,
            ready_nodes: members.iter().map(|m| format!("n-{m}")).collect(),
            nodes: members.len(),
            pods: 0,
            status_writes: vec![],
        }
    }

    /// After a SIGHUP the new Heat poller has read no group yet: a pass
    /// without the group, then passes with it again. Nobody joined.
    #[tokio::test]
    async fn a_reload_does_not_announce_every_minion_again_a_new_one_is() {
        let captured = Arc::new(Captured::default());
        let policy = SinkPolicy {
            name: "capture".into(),
            min_severity: Severity::Info,
            include_details: true,
            queue_capacity: 100,
            dedup_window: Duration::ZERO,
            timeout: Duration::from_secs(1),
            retry: RetryPolicy { initial: Duration::from_millis(10), max: Duration::from_millis(10), max_attempts: 1 },
        };
        let metrics = Arc::new(Metrics::new());
        let sink: Arc<dyn EventSink> = captured.clone();
        let alerts = Dispatcher::with_sinks(vec![(sink, policy)], Duration::ZERO, metrics.clone());
        let mut reporter = Reporter::new();
        let memory = Memory::default();
        for pass in [planned(&["0", "1"]), planned(&[]), planned(&["0", "1"]), planned(&["0", "1", "2"])] {
            reporter.report(&pass, &memory, &alerts, &metrics);
        }
        alerts.shutdown(Duration::from_secs(1)).await;
        let joined: Vec<String> = captured
            .0
            .lock()
            .unwrap()
            .iter()
            .filter(|e| e.reason == Reason::MinionJoined)
            .map(|e| e.fields["member"].clone())
            .collect();
        assert_eq!(joined, ["2"], "only the minion that really joined");
    }
}
