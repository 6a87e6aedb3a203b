//! The node steps of a removal: start (taint, cordon, record), drained,
//! rollback, and deleting the Node once Heat has let its member go. Each
//! re-reads the node and acts with one patch guarded by the resourceVersion it
//! read; a node that changed in between is read and checked again.

use k8s_openapi::api::core::v1 as k8s;

use super::error::ActuatorError;
use super::{Actuator, Outcome};
use crate::alerts::{ObjectRef, ScalingEvent};
use crate::cloud::group::{NodeGroupBackend, NodeIdentity, join_members};
use crate::observe::convert;
use crate::telemetry::DrainOutcome;
use heatscaler_core::model::{Pod, Timestamp};
use heatscaler_core::planner::abandoned;
use heatscaler_core::planner::action::{DeleteNode, MarkDrained, RollBackRemoval, StartRemoval};
use heatscaler_core::planner::explain::RollbackReason;
use heatscaler_core::planner::protocol::{self, Phase, RemovalKind, RemovalState};

/// Read-check-patch attempts when the node keeps changing under us.
const CONFLICT_ATTEMPTS: u32 = 3;

/// The node's removal state, read from the object as it is now.
pub(super) fn state(node: &k8s::Node) -> RemovalState {
    protocol::read(&convert::node(node))
}

pub(super) fn describe(state: &RemovalState) -> String {
    match state {
        RemovalState::None => "no removal record".into(),
        RemovalState::Active(r) => format!("phase {} of member {}/{}", r.phase, r.group, r.member),
        RemovalState::Inconsistent { problem, .. } => format!("inconsistent record: {problem}"),
    }
}

/// Pods a drain must move, among the freshly listed ones of `node` (the
/// planner's rule: terminating pods count, unless the node is not Ready —
/// no kubelet will finish them, they go with the node).
pub(super) fn workload_pods(node: &k8s::Node, pods: &[k8s::Pod]) -> Vec<Pod> {
    let ready = convert::node(node).ready;
    pods.iter().map(convert::pod).filter(|p| convert::is_workload_pod(p) && !abandoned(p, ready)).collect()
}

/// Pods that make an "empty" node not empty: the planner counts a node
/// whose workload pods are all terminating as empty (they are leaving; the
/// drained step still waits for them to be gone), so only running ones do.
/// Counting terminating ones here refused every such removal, pass after pass.
fn arrived(pods: &[Pod]) -> Vec<&Pod> {
    pods.iter().filter(|p| p.deletion.is_none()).collect()
}

fn elapsed(now: Timestamp, since: Timestamp) -> std::time::Duration {
    now.duration_since(since).try_into().unwrap_or_default()
}

/// Runs a read-check-patch step again when the patch met a newer node.
async fn on_conflict_retry<F, Fut>(mut step: F) -> Result<Outcome, ActuatorError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<Outcome, ActuatorError>>,
{
    let mut attempt = 1;
    loop {
        match step().await {
            Err(e) if e.is_conflict() && attempt < CONFLICT_ATTEMPTS => attempt += 1,
            other => return other,
        }
    }
}

impl Actuator {
    pub(super) async fn start_removal(&self, a: &StartRemoval, now: Timestamp) -> Result<Outcome, ActuatorError> {
        on_conflict_retry(|| self.start_removal_once(a, now)).await
    }

    async fn start_removal_once(&self, a: &StartRemoval, now: Timestamp) -> Result<Outcome, ActuatorError> {
        let Some(node) = self.kube.node(&a.node).await? else {
            return Ok(Outcome::Skipped("the node is gone".into()));
        };
        let current = convert::node(&node);
        let st = protocol::read(&current);
        if !st.is_none() {
            return Ok(Outcome::Skipped(format!("the node already has {}", describe(&st))));
        }
        if current.unschedulable != a.record.cordoned_before {
            return Ok(Outcome::Skipped("the node was cordoned or uncordoned since the plan".into()));
        }
        let (backend, group) = self.read_group(&a.record.group).await?;
        let Some(member) = group.member(&a.record.member) else {
            return Ok(Outcome::Skipped(format!("Heat no longer lists member {}", a.record.member)));
        };
        let mapping = &backend.config().node_mapping;
        let join =
            join_members(&a.record.group, std::slice::from_ref(member), mapping, &[NodeIdentity::from(&current)]);
        if join.members[0].node_name.as_deref() != Some(a.node.as_str()) {
            return Ok(Outcome::Skipped(format!("the node no longer maps to member {}", a.record.member)));
        }
        let pods = workload_pods(&node, &self.kube.pods_on(&a.node).await?);
        if a.record.kind == RemovalKind::Empty
            && let Some(pod) = arrived(&pods).first()
        {
            return Ok(Outcome::Skipped(format!("pod {} arrived on the empty node", pod.key())));
        }
        self.kube.patch_node(&node, &a.patch()).await?;
        let object = ObjectRef::node(&a.node);
        let unneeded_for = elapsed(now, a.unneeded_since);
        self.alerts.dispatch(ScalingEvent::scale_down_cordoned(object.clone(), &a.record.group, unneeded_for));
        if a.record.kind == RemovalKind::Drain {
            self.alerts.dispatch(ScalingEvent::drain_started(object, &a.record.group, pods.len()));
        }
        Ok(Outcome::Done(format!("tainted and cordoned node {} ({} removal)", a.node, a.record.kind.as_str())))
    }

    pub(super) async fn mark_drained(&self, a: &MarkDrained, now: Timestamp) -> Result<Outcome, ActuatorError> {
        on_conflict_retry(|| self.mark_drained_once(a, now)).await
    }

    async fn mark_drained_once(&self, a: &MarkDrained, now: Timestamp) -> Result<Outcome, ActuatorError> {
        let Some(node) = self.kube.node(&a.node).await? else {
            return Ok(Outcome::Skipped("the node is gone".into()));
        };
        let record = match state(&node) {
            RemovalState::Active(r) if r.phase == Phase::Draining && r.member == a.record.member => r,
            other => return Ok(Outcome::Skipped(format!("expected phase draining, found {}", describe(&other)))),
        };
        if let Some(pod) = workload_pods(&node, &self.kube.pods_on(&a.node).await?).first() {
            return Ok(Outcome::Skipped(format!("pod {} is still on the node", pod.key())));
        }
        self.kube.patch_node(&node, &a.patch()).await?;
        let took = elapsed(now, record.started);
        self.alerts.dispatch(ScalingEvent::drain_finished(ObjectRef::node(&a.node), &record.group, took));
        self.metrics.observe_drain(&record.group, took, DrainOutcome::Finished);
        Ok(Outcome::Done(format!("node {} is drained", a.node)))
    }

    pub(super) async fn roll_back(&self, a: &RollBackRemoval, now: Timestamp) -> Result<Outcome, ActuatorError> {
        on_conflict_retry(|| self.roll_back_once(a, now)).await
    }

    async fn roll_back_once(&self, a: &RollBackRemoval, now: Timestamp) -> Result<Outcome, ActuatorError> {
        let Some(node) = self.kube.node(&a.node).await? else {
            return Ok(Outcome::Skipped("the node is gone".into()));
        };
        let st = state(&node);
        let group = match &st {
            RemovalState::None => return Ok(Outcome::Skipped("nothing to roll back".into())),
            RemovalState::Active(r) if r.phase == Phase::Removing => {
                return Ok(Outcome::Skipped("phase removing is never rolled back".into()));
            }
            RemovalState::Active(r) => Some(r),
            RemovalState::Inconsistent { .. } => None,
        };
        self.kube.patch_node(&node, &a.patch()).await?;
        let group_name = group.map(|r| r.group.as_str()).unwrap_or_default();
        let object = ObjectRef::node(&a.node);
        let why = a.reason.to_string();
        let (event, outcome) = match a.reason {
            RollbackReason::NeededAgain { .. } => {
                (ScalingEvent::scale_down_aborted(object, group_name, &why), DrainOutcome::Aborted)
            }
            _ => (ScalingEvent::drain_failed(object, group_name, &why), DrainOutcome::Failed),
        };
        self.alerts.dispatch(event);
        if let Some(r) = group {
            self.metrics.observe_drain(&r.group, elapsed(now, r.started), outcome);
        }
        Ok(Outcome::Done(format!("gave node {} back ({why})", a.node)))
    }

    pub(super) async fn delete_node(&self, a: &DeleteNode) -> Result<Outcome, ActuatorError> {
        let Some(node) = self.kube.node(&a.node).await? else {
            return Ok(Outcome::Skipped("the node is already gone".into()));
        };
        match state(&node) {
            RemovalState::Active(r) if r.phase == Phase::Removing && r.group == a.group && r.member == a.member => {}
            other => {
                return Ok(Outcome::Skipped(format!(
                    "expected phase removing of member {}/{}, found {}",
                    a.group,
                    a.member,
                    describe(&other)
                )));
            }
        }
        let (_, group) = self.read_group(&a.group).await?;
        if group.member(&a.member).is_some() {
            return Ok(Outcome::Skipped(format!("Heat still lists member {}", a.member)));
        }
        if !self.kube.delete_node(&node).await? {
            return Ok(Outcome::Skipped("the node is already gone".into()));
        }
        // `MinionRemoved` and the scale-down duration are the reporter's, at
        // the next pass (control_loop::reporting): said once member and node
        // are gone, whoever deleted the node — the cloud controller manager
        // often does first.
        Ok(Outcome::Done(format!("deleted node {} (member {} is gone from Heat)", a.node, a.member)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod(name: &str, terminating: bool) -> Pod {
        let mut p = k8s::Pod::default();
        p.metadata.name = Some(name.into());
        p.metadata.namespace = Some("default".into());
        if terminating {
            p.metadata.deletion_timestamp =
                Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time("2026-01-01T00:00:00Z".parse().unwrap()));
        }
        convert::pod(&p)
    }

    #[test]
    fn a_terminating_pod_has_not_arrived_on_an_empty_node() {
        let pods = [pod("leaving", true), pod("new", false)];
        let names: Vec<&str> = arrived(&pods).iter().map(|p| p.name.as_str()).collect();
        assert_eq!(names, ["new"]);
        assert!(arrived(&pods[..1]).is_empty());
    }
}
