//! What a pass tells operators beyond its actions: the planner's alerts
//! (failed provisioning, drift, pods no group can host), new minions, removed
//! minions (`MinionRemoved`, whoever deleted the Node), pods that
//! trigger no scale-up, nodes kept although they are scale-down candidates
//! (`ScaleDownBlocked`), and the group and pending-pod gauges.
//!
//! Alerts are latched: one is sent when its condition appears and again only
//! after it has cleared and come back, so a condition that lasts an hour is
//! one alert, not one per pass. (The dispatcher's dedup window is the second
//! line of defence, for conditions that flap.)

use std::collections::{BTreeSet, HashMap, HashSet};
use std::time::{Duration, Instant};

use crate::alerts::{Dispatcher, ObjectRef, Reason, ScalingEvent};
use crate::telemetry::{GroupSizes, Metrics, ScaleUpFailure};
use heatscaler_core::model::{MemberStatus, PodKey, WorkloadRef};
use heatscaler_core::planner::Memory;
use heatscaler_core::planner::explain::{Alert, Hold, NodeStatus, PlacementOutcome, PodOutcome, ProvisioningFailure};
use heatscaler_core::planner::protocol::RemovalRecord;

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
    /// `group/member` whose scale-up duration was recorded (once per member).
    timed: HashSet<String>,
    /// When a `ScaleDownBlocked` was last sent for each `node: why`.
    blocked_reported: HashMap<String, Instant>,
    /// Node name → removal record, for each node seen in phase `removing`
    /// whose removal is not finished (member and node both gone) yet.
    removing: HashMap<String, RemovalRecord>,
}

/// The same `ScaleDownBlocked` (node and reason) is sent again after this
/// long at the soonest, even if the condition cleared in between: a node's
/// status flaps as other nodes come and go (a budget shared by the pass, a
/// node on the way), and that is not news.
const BLOCKED_RESEND: Duration = Duration::from_secs(3600);

impl Reporter {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn report(&mut self, planned: &Planned, memory: &Memory, alerts: &Dispatcher, metrics: &Metrics) {
        let ex = &planned.plan.explanation;
        metrics.set_unschedulable_pods(planned.unschedulable_pods as u64);
        self.group_metrics(planned, metrics);
        self.minions_joined(planned, alerts, metrics, heatscaler_core::model::Timestamp::now());
        self.minions_removed(planned, alerts, metrics, heatscaler_core::model::Timestamp::now());

        let mut active = HashSet::new();
        for alert in &ex.alerts {
            // One halt is one alert, however its counts move while it lasts.
            let key = match alert {
                Alert::AutoscalingHalted(_) => "autoscaling-halted".to_string(),
                _ => serde_json::to_string(alert).unwrap_or_else(|_| alert.to_string()),
            };
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
        self.scale_down_blocked(planned, alerts, Instant::now());
        placement_advice(planned, alerts);
    }

    /// One `ScaleDownBlocked` per node and reason per [`BLOCKED_RESEND`]: a
    /// node kept for the same reason pass after pass is one Event.
    fn scale_down_blocked(&mut self, planned: &Planned, alerts: &Dispatcher, now: Instant) {
        self.blocked_reported.retain(|_, sent| now.saturating_duration_since(*sent) < BLOCKED_RESEND);
        for n in &planned.plan.explanation.nodes {
            let (Some(why), Some(group)) = (blocked_reason(&n.status), n.group.as_deref()) else { continue };
            let key = format!("{}: {why}", n.node);
            if let std::collections::hash_map::Entry::Vacant(slot) = self.blocked_reported.entry(key) {
                alerts.dispatch(ScalingEvent::scale_down_blocked(ObjectRef::node(&n.node), group, &why));
                slot.insert(now);
            }
        }
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
            if !self.groups_reported.contains(&g.name) {
                metrics.register_group(&g.name);
            }
            seen.insert(g.name.clone());
        }
        for gone in self.groups_reported.difference(&seen) {
            metrics.forget_group(gone);
        }
        self.groups_reported = seen;
    }

    /// `MinionJoined` for each member whose node became Ready since the last
    /// pass, and `heatscaler_scale_up_duration_seconds` for it — from Heat's
    /// creation of the member to that pass — once per member (a node that
    /// goes NotReady and comes back is no new scale-up).
    fn minions_joined(
        &mut self,
        planned: &Planned,
        alerts: &Dispatcher,
        metrics: &Metrics,
        now: heatscaler_core::model::Timestamp,
    ) {
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
                    if let Some(created) = m.created
                        && self.timed.insert(format!("{}/{}", g.name, m.id))
                    {
                        let took = now.duration_since(created);
                        metrics.observe_scale_up_duration(&g.name, took.try_into().unwrap_or_default());
                    }
                }
            }
            self.joined.insert(g.name.clone(), ready_now);
        }
        // Members Heat no longer lists are forgotten; a group this pass lacks
        // is kept, as in `joined` (a reload's first passes).
        let listed: HashSet<String> =
            planned.groups.iter().flat_map(|g| g.members.iter().map(move |m| format!("{}/{}", g.name, m.id))).collect();
        let present: HashSet<&str> = planned.groups.iter().map(|g| g.name.as_str()).collect();
        self.timed.retain(|k| listed.contains(k) || !present.contains(k.split_once('/').map_or("", |(g, _)| g)));
    }
}

impl Reporter {
    /// `MinionRemoved` and `heatscaler_scale_down_duration_seconds` for each
    /// removal that is over: a node seen in phase `removing` is gone, and Heat
    /// no longer lists its member. Said here rather than when heatscaler
    /// deletes the Node, because the OpenStack cloud controller manager
    /// deletes the Node of a deleted server too, often first: the removal is
    /// the same, and so is the alert (issue 20). A node gone while Heat still
    /// lists its member (deleting the server) waits for Heat; a group this
    /// pass lacks (a reload's first passes) waits too; a node still there
    /// without its record (edited by hand) is no removal to report.
    fn minions_removed(
        &mut self,
        planned: &Planned,
        alerts: &Dispatcher,
        metrics: &Metrics,
        now: heatscaler_core::model::Timestamp,
    ) {
        let tracked = std::mem::take(&mut self.removing);
        for (node, record) in tracked {
            if planned.removing.contains_key(&node) {
                continue;
            }
            if planned.node_names.contains(&node) {
                continue;
            }
            let over = planned
                .groups
                .iter()
                .find(|g| g.name == record.group)
                .is_some_and(|g| g.members.iter().all(|m| m.id != record.member));
            if over {
                alerts.dispatch(ScalingEvent::minion_removed(ObjectRef::node(&node), &record.group, &record.member));
                let took = now.duration_since(record.started);
                metrics.observe_scale_down_duration(&record.group, took.try_into().unwrap_or_default());
            } else {
                self.removing.insert(node, record);
            }
        }
        for (node, record) in &planned.removing {
            self.removing.insert(node.clone(), record.clone());
        }
    }

    /// A follower reports nothing, and the leader it follows may finish the
    /// removals seen here: they are not this replica's to report later.
    pub fn forget_removals(&mut self) {
        self.removing.clear();
    }
}

/// Why a scale-down candidate is kept, when that is something an operator may
/// want to change: a pod that cannot move, an exhausted budget, the group's
/// min size, scale-down switched off. Waiting for `unneeded-time`, cool-downs
/// and per-step limits pass by themselves and are not reported.
/// New and withdrawn placement advice, each once (the planner says `new`
/// only in the pass that gives it), as an Event on the workload it changes
/// and through the sinks: what was advised, applied or not, and why.
fn placement_advice(planned: &Planned, alerts: &Dispatcher) {
    for p in &planned.plan.explanation.placement {
        let reason = match &p.outcome {
            PlacementOutcome::Advised { new: true, .. } => Reason::PlacementAdvised,
            PlacementOutcome::Withdrawn { .. } => Reason::PlacementAdviceWithdrawn,
            _ => continue,
        };
        let mut event = ScalingEvent::new(reason, p.to_string()).with_field("subject", &p.subject);
        if let PlacementOutcome::Advised { applied, .. } | PlacementOutcome::Withdrawn { applied } = &p.outcome {
            event = event.with_field("applied", *applied);
        }
        if let Some(w) = advised_workload(&p.subject) {
            event = event.with_object(ObjectRef {
                api_version: "apps/v1".to_string(),
                kind: w.kind.to_string(),
                namespace: Some(w.namespace.to_string()),
                name: w.name.to_string(),
                uid: None,
            });
        }
        alerts.dispatch(event);
    }
}

/// The workload an advisor subject changes (`Proposal::subject`: `co-locate
/// <client> with <server>`, `increase <resource> of <workload>`, each
/// workload `<kind>/<namespace>/<name>`).
fn advised_workload(subject: &str) -> Option<WorkloadRef> {
    let text = match subject.strip_prefix("co-locate ") {
        Some(rest) => rest.split(" with ").next()?,
        None => subject.strip_prefix("increase ")?.split(" of ").nth(1)?,
    };
    let mut parts = text.splitn(3, '/');
    let (kind, namespace, name) = (parts.next()?, parts.next()?, parts.next()?);
    (!name.is_empty()).then(|| WorkloadRef { kind: kind.into(), namespace: namespace.into(), name: name.into() })
}

fn blocked_reason(status: &NodeStatus) -> Option<String> {
    match status {
        NodeStatus::PodBlocks { .. } | NodeStatus::PdbBlocks { .. } => Some(status.to_string()),
        NodeStatus::Unneeded { held: Some(h @ (Hold::GroupAtMinSize { .. } | Hold::ScaleDownDisabled)), .. } => {
            Some(h.to_string())
        }
        _ => None,
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
        Alert::ResizeUnsupported { vpa, pods, example, why } => vec![ScalingEvent::pod_resize_unsupported(
            ObjectRef::pod(&example.namespace, &example.name),
            vpa,
            *pods,
            why,
        )],
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
        Alert::AutoscalingHalted(u) => vec![
            ScalingEvent::new(Reason::AutoscalingHalted, u.to_string())
                .with_field("unready", u.unready)
                .with_field("nodes", u.nodes),
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
    use std::sync::Arc;

    use heatscaler_core::model::{PodKey, Timestamp};
    use heatscaler_core::planner::Plan;
    use heatscaler_core::planner::explain::{BlockReason, Explanation, NodeExplanation};

    use super::*;
    use crate::alerts::capture::capturing_dispatcher;

    fn planned(nodes: Vec<(&str, NodeStatus)>) -> Planned {
        let nodes = nodes
            .into_iter()
            .map(|(n, status)| NodeExplanation { node: n.into(), group: Some("workers".into()), status })
            .collect();
        Planned {
            plan: Plan {
                actions: Vec::new(),
                explanation: Explanation { nodes, ..Explanation::default() },
                memory: Memory::default(),
            },
            groups: Vec::new(),
            unschedulable_pods: 0,
            ready_nodes: Default::default(),
            node_names: Default::default(),
            removing: Default::default(),
            nodes: 0,
            pods: 0,
            status_writes: Vec::new(),
            pod_level_alerts: Vec::new(),
        }
    }

    #[tokio::test]
    async fn scale_down_blocked_is_sent_once_per_node_and_reason_while_it_holds() {
        let metrics = Arc::new(Metrics::new());
        let (alerts, captured) = capturing_dispatcher(metrics.clone());
        let t: Timestamp = "2026-01-01T00:00:00Z".parse().unwrap();
        let at_min = NodeStatus::Unneeded { since: t, removable_at: t, held: Some(Hold::GroupAtMinSize { min: 2 }) };
        let keeper = NodeStatus::PodBlocks {
            pod: PodKey { namespace: "shop".into(), name: "db-0".into() },
            reason: BlockReason::NotSafeToEvict,
        };
        let waiting = NodeStatus::Unneeded { since: t, removable_at: t, held: Some(Hold::UnneededTime) };
        let mut reporter = Reporter::new();
        let pass = planned(vec![("w-0", at_min.clone()), ("w-1", keeper.clone()), ("w-2", waiting)]);
        let t0 = Instant::now();
        for _ in 0..3 {
            reporter.report(&pass, &Memory::default(), &alerts, &metrics);
        }
        // Flapping (cleared, then back) within the resend interval: no new Event.
        reporter.scale_down_blocked(&planned(vec![("w-1", keeper)]), &alerts, t0 + Duration::from_secs(60));
        reporter.scale_down_blocked(&pass, &alerts, t0 + Duration::from_secs(120));
        // Still holding an interval later: said again.
        reporter.scale_down_blocked(
            &planned(vec![("w-0", at_min)]),
            &alerts,
            t0 + BLOCKED_RESEND + Duration::from_secs(1),
        );
        alerts.shutdown(Duration::from_secs(1)).await;

        let sent: Vec<(String, String)> = captured
            .0
            .lock()
            .unwrap()
            .iter()
            .filter(|e| e.reason == Reason::ScaleDownBlocked)
            .map(|e| (e.object.as_ref().unwrap().name.clone(), e.message.clone()))
            .collect();
        assert_eq!(
            sent,
            [
                ("w-0".to_string(), "node is a scale-down candidate but cannot be removed: group at min size 2".into()),
                (
                    "w-1".to_string(),
                    "node is a scale-down candidate but cannot be removed: pod shop/db-0 cannot be moved: annotated \
                     safe-to-evict: false"
                        .into()
                ),
                ("w-0".to_string(), "node is a scale-down candidate but cannot be removed: group at min size 2".into()),
            ]
        );
    }

    #[tokio::test]
    async fn scale_up_duration_is_recorded_once_per_new_minion_and_group_counters_start_at_zero() {
        use heatscaler_core::model::{GroupState, Member, MemberStatus};
        let metrics = Arc::new(Metrics::new());
        let alerts = Dispatcher::with_sinks(Vec::new(), Duration::ZERO, metrics.clone());
        let now = Timestamp::now();
        let member = |id: &str, ready: bool| Member {
            id: id.into(),
            node_name: ready.then(|| format!("w-{id}")),
            status: MemberStatus::Complete,
            created: Some(now - jiff::SignedDuration::from_secs(90)),
        };
        let pass = |members: Vec<Member>| {
            let mut p = planned(Vec::new());
            p.ready_nodes = members.iter().filter_map(|m| m.node_name.clone()).collect();
            p.groups = vec![GroupState {
                name: "workers".into(),
                desired: members.len() as u32,
                min_size: 0,
                max_size: 10,
                members,
                stack_busy: false,
                template: None,
                price_per_hour: 0.0,
                priority: 0,
            }];
            p
        };
        let mut reporter = Reporter::new();
        // The first pass only records what is there (those minions did not join now).
        reporter.minions_joined(&pass(vec![member("0", true), member("1", false)]), &alerts, &metrics, now);
        reporter.minions_joined(&pass(vec![member("0", true), member("1", true)]), &alerts, &metrics, now);
        // NotReady and back: not a second scale-up.
        reporter.minions_joined(&pass(vec![member("0", true), member("1", false)]), &alerts, &metrics, now);
        reporter.minions_joined(&pass(vec![member("0", true), member("1", true)]), &alerts, &metrics, now);
        reporter.report(&pass(vec![member("0", true)]), &Memory::default(), &alerts, &metrics);
        let text = metrics.encode();
        let line = |name: &str| {
            text.lines().find(|l| l.starts_with(name)).unwrap_or_else(|| panic!("no {name} in\n{text}")).to_string()
        };
        assert_eq!(
            line("heatscaler_scale_up_duration_seconds_count{group=\"workers\"}"),
            "heatscaler_scale_up_duration_seconds_count{group=\"workers\"} 1"
        );
        assert!(line("heatscaler_scale_up_duration_seconds_sum{group=\"workers\"}").ends_with(" 90.0"), "{text}");
        // The group's counters exist at zero before any event.
        for series in [
            "heatscaler_scaled_up_nodes_total{group=\"workers\"}",
            "heatscaler_scaled_down_nodes_total{group=\"workers\"}",
            "heatscaler_failed_scale_ups_total{group=\"workers\",reason=\"create_failed\"}",
        ] {
            assert_eq!(line(series), format!("{series} 0"), "{text}");
        }
    }

    fn planned_members(members: &[&str]) -> Planned {
        use heatscaler_core::model::{GroupState, Member};
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
            node_names: members.iter().map(|m| format!("n-{m}")).collect(),
            removing: Default::default(),
            nodes: members.len(),
            pods: 0,
            status_writes: vec![],
            pod_level_alerts: Vec::new(),
        }
    }

    /// After a SIGHUP the new Heat poller has read no group yet: a pass
    /// without the group, then passes with it again. Nobody joined.
    #[tokio::test]
    async fn a_reload_does_not_announce_every_minion_again_a_new_one_is() {
        let metrics = Arc::new(Metrics::new());
        let (alerts, captured) = capturing_dispatcher(metrics.clone());
        let mut reporter = Reporter::new();
        let memory = Memory::default();
        for pass in [
            planned_members(&["0", "1"]),
            planned_members(&[]),
            planned_members(&["0", "1"]),
            planned_members(&["0", "1", "2"]),
        ] {
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

    /// Issue 20: the cloud controller manager deleted the Node before
    /// heatscaler could, and no `MinionRemoved` was sent. Whoever deletes
    /// the node, the removal is reported once member and node are gone.
    #[tokio::test]
    async fn minion_removed_once_member_and_node_are_gone_whoever_deleted_the_node() {
        use heatscaler_core::planner::protocol::{Phase, RemovalKind};
        let metrics = Arc::new(Metrics::new());
        let (alerts, captured) = capturing_dispatcher(metrics.clone());
        let t: Timestamp = "2026-01-01T00:00:00Z".parse().unwrap();
        let record = |member: &str| RemovalRecord {
            phase: Phase::Removing,
            kind: RemovalKind::Empty,
            started: t,
            drained: Some(t),
            requested: Some(t),
            group: "workers".into(),
            member: member.into(),
            cordoned_before: false,
        };
        // members listed by Heat, nodes present, nodes in phase removing
        let pass = |members: &[&str], nodes: &[&str], removing: &[&str]| {
            let mut p = planned_members(members);
            p.node_names = nodes.iter().map(|n| n.to_string()).collect();
            p.removing = removing.iter().map(|m| (format!("n-{m}"), record(m))).collect();
            p
        };
        let mut reporter = Reporter::new();
        let memory = Memory::default();
        for p in [
            pass(&["0", "1", "2"], &["n-0", "n-1", "n-2"], &["1", "2"]),
            // n-1's VM is being deleted and the CCM deleted its Node: Heat still lists it.
            pass(&["0", "1", "2"], &["n-0", "n-2"], &["2"]),
            // Heat has let member 1 go: removed. n-2's record was edited away by hand: not a removal.
            pass(&["0", "2"], &["n-0", "n-2"], &[]),
            pass(&["0", "2"], &["n-0", "n-2"], &[]),
        ] {
            reporter.report(&p, &memory, &alerts, &metrics);
        }
        alerts.shutdown(Duration::from_secs(1)).await;
        let removed: Vec<(String, String)> = captured
            .0
            .lock()
            .unwrap()
            .iter()
            .filter(|e| e.reason == Reason::MinionRemoved)
            .map(|e| (e.object.as_ref().unwrap().name.clone(), e.fields["member"].clone()))
            .collect();
        assert_eq!(removed, [("n-1".to_string(), "1".to_string())]);
        assert!(
            metrics.encode().contains("heatscaler_scale_down_duration_seconds_count{group=\"workers\"} 1"),
            "{}",
            metrics.encode()
        );
    }

    #[tokio::test]
    async fn new_and_withdrawn_placement_advice_is_an_event_on_the_workload_with_the_evidence() {
        use heatscaler_core::planner::explain::PlacementExplanation;
        use heatscaler_core::planner::placement::{PairEvidence, Proposal};
        let web = WorkloadRef { kind: "Deployment".into(), namespace: "shop".into(), name: "web".into() };
        let cart = WorkloadRef { kind: "Deployment".into(), namespace: "shop".into(), name: "cart".into() };
        let proposal = Proposal::CoLocate {
            client: web.clone(),
            server: cart.clone(),
            weight: 50,
            term: heatscaler_core::model::PodAffinityTerm::in_namespace(
                Default::default(),
                "kubernetes.io/hostname",
                "shop",
            ),
            evidence: PairEvidence {
                requests_per_second: 80.0,
                cross_node_share: 0.5,
                p99_same_node_ms: Some(2.4),
                p99_cross_node_ms: Some(9.8),
                saving_ms: 7.4,
                latency_cost: 296.0,
            },
            room: 1,
            expected_gain: 296.0,
            reverse_pull: 0.0,
            client_move: 0.0,
            partners: Vec::new(),
        };
        // The subject is the core's own; the workload is read back from it.
        assert_eq!(advised_workload(&proposal.subject()), Some(web.clone()));
        assert_eq!(advised_workload(&format!("increase cpu of {cart}")), Some(cart.clone()));
        assert_eq!(advised_workload("something else"), None);
        let at = Timestamp::now();
        let entry = |outcome| PlacementExplanation { subject: proposal.subject(), outcome };
        let mut p = planned(Vec::new());
        p.plan.explanation.placement = vec![
            entry(PlacementOutcome::Advised { detail: proposal.to_string(), new: true, applied: false, since: at }),
            // Standing advice was announced when it was new.
            entry(PlacementOutcome::Advised { detail: proposal.to_string(), new: false, applied: false, since: at }),
            entry(PlacementOutcome::Withdrawn { applied: true }),
        ];
        let metrics = Arc::new(Metrics::new());
        let (alerts, captured) = capturing_dispatcher(metrics.clone());
        Reporter::new().report(&p, &Memory::default(), &alerts, &metrics);
        alerts.shutdown(Duration::from_secs(1)).await;
        let events = captured.0.lock().unwrap().clone();
        let reasons: Vec<Reason> = events.iter().map(|e| e.reason).collect();
        assert_eq!(reasons, [Reason::PlacementAdvised, Reason::PlacementAdviceWithdrawn]);
        let advised = &events[0];
        assert_eq!(advised.object.as_ref().map(|o| o.name.as_str()), Some("web"));
        for needle in ["co-locate Deployment/shop/web with Deployment/shop/cart", "80 req/s", "2.4 ms", "9.8 ms", "296"]
        {
            assert!(advised.message.contains(needle), "{needle}: {}", advised.message);
        }
        assert!(advised.message.contains("recommendation only"), "{}", advised.message);
    }
}
