//! The two actions that talk to Heat: growing a group, and removing exactly
//! the members a pass names — one request per group either way.

use std::collections::BTreeMap;
use std::time::Instant;

use super::confirm::SentRemoval;
use super::error::ActuatorError;
use super::{Actuator, Outcome, removal};
use crate::alerts::{ObjectRef, ScalingEvent};
use crate::cloud::group::{GroupError, GroupSnapshot, NodeGroupBackend, NodeIdentity, join_members};
use crate::telemetry::{HeatOperation, ScaleUpFailure};
use heatscaler_core::model::MemberStatus;
use heatscaler_core::planner::action::{RemovalCause, RemoveMembers, ScaleUp};
use heatscaler_core::planner::protocol::{Phase, RemovalState};

/// How many pending pods get a `TriggeredScaleUp` Event per scale-up (the
/// group's `ScaledUpGroup` Event carries the exact count).
const POD_EVENTS_PER_SCALE_UP: usize = 20;

impl Actuator {
    pub(super) async fn read_group(
        &self,
        group: &str,
    ) -> Result<(&crate::cloud::group::Backend, GroupSnapshot), ActuatorError> {
        let backend = self.backend(group)?;
        let start = Instant::now();
        let read = backend.read().await;
        self.metrics.observe_heat_call(HeatOperation::GetStack, start.elapsed(), read.is_ok());
        Ok((backend, read?))
    }

    /// Compare-and-set on the desired size: a replayed or stale plan never grows twice.
    pub(super) async fn scale_up(&self, a: &ScaleUp) -> Result<Outcome, ActuatorError> {
        let (backend, snapshot) = self.read_group(&a.group).await?;
        if let Some(changed) = changed_since_planned(&snapshot, a.expected_desired) {
            return Ok(changed);
        }
        let plan = backend.plan_grow(&snapshot, a.new_desired)?;
        let start = Instant::now();
        let sent = backend.apply(&plan).await;
        self.metrics.observe_heat_call(HeatOperation::UpdateStack, start.elapsed(), sent.is_ok());
        self.heat.poke();
        match sent {
            Ok(()) => {
                let (from, to) = (plan.from, plan.to);
                self.alerts.dispatch(ScalingEvent::scaled_up_group(&a.group, from, to, a.pod_count));
                for pod in a.pods.iter().take(POD_EVENTS_PER_SCALE_UP) {
                    let object = ObjectRef::pod(&pod.namespace, &pod.name);
                    self.alerts.dispatch(ScalingEvent::triggered_scale_up(object, &a.group, from, to));
                }
                self.metrics.record_scale_up(&a.group, u64::from(to - from));
                Ok(Outcome::Done(format!("asked Heat to grow {} from {from} to {to}", a.group)))
            }
            Err(GroupError::StackBusy { status, .. }) => Ok(Outcome::Skipped(format!("stack became busy ({status})"))),
            Err(e) => {
                self.alerts.dispatch(ScalingEvent::scale_up_failed(&a.group, plan.from, plan.to, &e.to_string()));
                self.metrics.record_failed_scale_up(&a.group, ScaleUpFailure::HeatUpdateFailed);
                Err(e.into())
            }
        }
    }

    /// Verify everything, then mark the drained nodes `removing`, then send
    /// the one Heat request. The Heat plan is computed (purely) before any
    /// node is marked, so a request Heat's layout cannot express never leaves
    /// a node in `removing`.
    pub(super) async fn remove_members(&self, a: &RemoveMembers) -> Result<Outcome, ActuatorError> {
        let (backend, snapshot) = self.read_group(&a.group).await?;
        if let Some(changed) = changed_since_planned(&snapshot, a.expected_desired) {
            return Ok(changed);
        }
        for m in &a.members {
            match snapshot.member(&m.member) {
                Some(h) if h.status != MemberStatus::Deleting => {}
                Some(_) => return Ok(Outcome::Skipped(format!("member {} is already being deleted", m.member))),
                None => return Ok(Outcome::Skipped(format!("member {} is no longer listed", m.member))),
            }
        }
        // Every drained node, checked before anything is changed.
        let mut nodes = Vec::new();
        for m in &a.members {
            let Some(name) = &m.node else { continue };
            let Some(node) = self.kube.node(name).await? else {
                return Ok(Outcome::Skipped(format!("node {name} is gone")));
            };
            let record = match removal::state(&node) {
                RemovalState::Active(r) if r.group == a.group && r.member == m.member && r.phase >= Phase::Drained => r,
                other => {
                    return Ok(Outcome::Skipped(format!(
                        "node {name} does not record a drained removal of member {}/{} ({})",
                        a.group,
                        m.member,
                        removal::describe(&other)
                    )));
                }
            };
            if let Some(pod) = removal::workload_pods(&node, &self.kube.pods_on(name).await?).first() {
                return Ok(Outcome::Skipped(format!("node {name} still runs pod {}", pod.key())));
            }
            nodes.push((node, record));
        }
        let names: Vec<String> = a.members.iter().map(|m| m.member.clone()).collect();
        let plan = backend.plan_remove_to(&snapshot, &names, a.new_desired)?;
        // Heat must remove exactly the named members: checked before any node is marked.
        if let Err(e) = backend.verify_removal(&snapshot).await {
            if matches!(e, GroupError::NotWired { .. }) {
                self.alerts.dispatch(ScalingEvent::removal_not_wired(&a.group, &e.to_string()));
            }
            return Err(e.into());
        }
        for (node, record) in &nodes {
            if record.phase != Phase::Removing {
                self.kube.patch_node(node, &a.node_patch(record)).await?;
            }
        }
        let before = self.members_with_nodes(backend, &snapshot).await;
        let start = Instant::now();
        let sent = backend.apply(&plan).await;
        self.metrics.observe_heat_call(HeatOperation::UpdateStack, start.elapsed(), sent.is_ok());
        self.heat.poke();
        if sent.is_ok() {
            let chosen = names.iter().cloned().collect();
            let updated_before = snapshot.updated.clone();
            self.ledger.record(&a.group, SentRemoval { before, chosen, updated_before, sent: Instant::now() });
        }
        let drained: Vec<(&str, &str)> = a
            .members
            .iter()
            .filter(|m| matches!(m.cause, RemovalCause::Drained { .. }))
            .filter_map(|m| m.node.as_deref().map(|n| (n, m.member.as_str())))
            .collect();
        match sent {
            Ok(()) => {
                if !drained.is_empty() {
                    let minions: Vec<&str> = drained.iter().map(|(n, _)| *n).collect();
                    self.alerts.dispatch(ScalingEvent::scaled_down_group(&a.group, plan.from, plan.to, &minions));
                    self.metrics.record_scale_down(&a.group, drained.len() as u64);
                }
                Ok(Outcome::Done(format!(
                    "asked Heat to remove member(s) {} of {} ({} -> {})",
                    names.join(", "),
                    a.group,
                    plan.from,
                    plan.to
                )))
            }
            Err(e) => {
                // The nodes stay `removing`; the planner asks again while Heat
                // still lists their members and the stack is idle.
                for (node, member) in &drained {
                    self.alerts.dispatch(ScalingEvent::minion_removal_failed(
                        ObjectRef::node(*node),
                        &a.group,
                        member,
                        &e.to_string(),
                    ));
                }
                Err(e.into())
            }
        }
    }
}

impl Actuator {
    /// Every member with the name of its node (when one is joined), to tell
    /// whose node a member that should not have gone was.
    async fn members_with_nodes(
        &self,
        backend: &crate::cloud::group::Backend,
        snapshot: &GroupSnapshot,
    ) -> BTreeMap<String, Option<String>> {
        let nodes = self.kube.nodes().await.unwrap_or_else(|e| {
            tracing::warn!(error = %e, "could not list the nodes; a mismatch would name members only");
            Vec::new()
        });
        let identities: Vec<NodeIdentity> = nodes
            .iter()
            .map(|n| NodeIdentity {
                name: n.metadata.name.clone().unwrap_or_default(),
                provider_id: n.spec.as_ref().and_then(|s| s.provider_id.clone()),
                labels: n.metadata.labels.clone().unwrap_or_default(),
            })
            .collect();
        let config = backend.config();
        join_members(&config.name, &snapshot.members, &config.node_mapping, &identities)
            .members
            .into_iter()
            .map(|m| (m.id, m.node_name))
            .collect()
    }
}

/// The plan's expectation of the group no longer holds: Heat is busy with
/// another update, or the desired size moved since the plan read it.
fn changed_since_planned(snapshot: &GroupSnapshot, expected_desired: u32) -> Option<Outcome> {
    if snapshot.busy {
        return Some(Outcome::Skipped(format!("stack {} is busy ({})", snapshot.stack, snapshot.stack_status)));
    }
    (snapshot.desired != expected_desired).then(|| {
        Outcome::Skipped(format!("desired size is {}, the plan expected {}", snapshot.desired, expected_desired))
    })
}
