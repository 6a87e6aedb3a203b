//! Carries out the planner's actions against Kubernetes and Heat, under the
//! action contract (`planner::action`, docs/planner.md): each action re-reads
//! what it expects right before acting and does nothing when that changed;
//! each is idempotent; a failure is reported (log, alert, metrics) and left to
//! the next pass, never turned into a different action.
//!
//! [`Actuator::execute`] dispatches on the action: one arm per variant, each
//! in the module of its concern — [`group_resize`] (ScaleUp, RemoveMembers: Heat),
//! [`removal`] (StartRemoval, MarkDrained, RollBackRemoval, DeleteNode),
//! [`evict`] (EvictPods), [`resize`] (ResizePod, RecreatePod: the pod level,
//! through the `vpa` client).
//!
//! With `dry_run`, every action is logged and reported as an Event
//! ("dry run: would ...") and none is performed.

mod error;
mod evict;
mod group_resize;
mod kube;
mod removal;
mod resize;

use std::collections::BTreeMap;
use std::sync::Arc;

pub use self::kube::{Eviction, FIELD_MANAGER, KubeOps, merge_patch};
pub use error::ActuatorError;

use crate::alerts::{Dispatcher, ObjectRef, Reason, ScalingEvent};
use crate::cloud::group::Backend;
use crate::observe::HeatPoke;
use crate::telemetry::Metrics;
use heatscaler_core::model::Timestamp;
use heatscaler_core::planner::Action;

/// What executing one action came to.
#[derive(Debug)]
pub enum Outcome {
    /// Carried out; what was done.
    Done(String),
    /// Its expectations no longer held, so nothing was done; why.
    Skipped(String),
    /// Reported, not performed (`daemon.dry-run`).
    DryRun,
    Failed(ActuatorError),
}

impl Outcome {
    pub fn is_failure(&self) -> bool {
        matches!(self, Outcome::Failed(_))
    }
}

/// Everything an action may need. Rebuilt when the configuration is reloaded.
pub struct Actuator {
    kube: KubeOps,
    groups: BTreeMap<String, Arc<Backend>>,
    alerts: Dispatcher,
    metrics: Arc<Metrics>,
    heat: HeatPoke,
    dry_run: bool,
}

impl Actuator {
    pub fn new(
        client: ::kube::Client,
        groups: impl IntoIterator<Item = Arc<Backend>>,
        alerts: Dispatcher,
        metrics: Arc<Metrics>,
        heat: HeatPoke,
        dry_run: bool,
    ) -> Self {
        use crate::cloud::group::NodeGroupBackend;
        Self {
            kube: KubeOps::new(client, metrics.clone()),
            groups: groups.into_iter().map(|b| (b.config().name.clone(), b)).collect(),
            alerts,
            metrics,
            heat,
            dry_run,
        }
    }

    pub fn kube(&self) -> &KubeOps {
        &self.kube
    }

    pub fn dry_run(&self) -> bool {
        self.dry_run
    }

    fn backend(&self, group: &str) -> Result<&Backend, ActuatorError> {
        self.groups.get(group).map(|b| &**b).ok_or_else(|| ActuatorError::UnknownGroup(group.to_string()))
    }

    /// Executes one action (see the module documentation) and logs its outcome.
    pub async fn execute(&self, action: &Action, now: Timestamp) -> Outcome {
        if self.dry_run {
            self.report_dry_run(action);
            return Outcome::DryRun;
        }
        let result = match action {
            Action::ScaleUp(a) => self.scale_up(a).await,
            Action::RemoveMembers(a) => self.remove_members(a).await,
            Action::StartRemoval(a) => self.start_removal(a, now).await,
            Action::EvictPods(a) => self.evict_pods(a).await,
            Action::MarkDrained(a) => self.mark_drained(a, now).await,
            Action::RollBackRemoval(a) => self.roll_back(a, now).await,
            Action::DeleteNode(a) => self.delete_node(a, now).await,
            Action::ResizePod(a) => self.resize_pod(a, now).await,
            Action::RecreatePod(a) => self.recreate_pod(a).await,
        };
        let outcome = result.unwrap_or_else(Outcome::Failed);
        let kind = kind(action);
        let subject = action.subject();
        match &outcome {
            Outcome::Done(what) => tracing::info!(action = kind, %subject, "{what}"),
            Outcome::Skipped(why) => tracing::info!(action = kind, %subject, "skipped: {why}"),
            Outcome::Failed(e) => {
                tracing::warn!(action = kind, %subject, error = %e, "action failed; the next pass plans again")
            }
            Outcome::DryRun => {}
        }
        outcome
    }

    fn report_dry_run(&self, action: &Action) {
        let what = describe(action);
        tracing::info!(action = kind(action), subject = %action.subject(), "dry run: would {what}");
        let (reason, object) = match action {
            Action::ScaleUp(_) => (Reason::ScaledUpGroup, None),
            Action::RemoveMembers(_) => (Reason::ScaledDownGroup, None),
            Action::StartRemoval(a) => (Reason::ScaleDownCordoned, Some(ObjectRef::node(&a.node))),
            Action::EvictPods(a) => (Reason::DrainStarted, Some(ObjectRef::node(&a.node))),
            Action::MarkDrained(a) => (Reason::DrainFinished, Some(ObjectRef::node(&a.node))),
            Action::RollBackRemoval(a) => (Reason::ScaleDownAborted, Some(ObjectRef::node(&a.node))),
            Action::DeleteNode(a) => (Reason::MinionRemoved, Some(ObjectRef::node(&a.node))),
            Action::ResizePod(a) => (Reason::PodResized, Some(ObjectRef::pod(&a.pod.namespace, &a.pod.name))),
            Action::RecreatePod(a) => {
                (Reason::PodEvictedForResize, Some(ObjectRef::pod(&a.pod.namespace, &a.pod.name)))
            }
        };
        let mut event = ScalingEvent::new(reason, format!("dry run: would {what}")).with_field("dry_run", true);
        if let Some(o) = object {
            event = event.with_object(o);
        }
        if let Some(g) = group(action) {
            event = event.in_group(g);
        }
        self.alerts.dispatch(event);
    }
}

/// The action's name as in `explain --json` (`scale-up`, `evict-pods`, ...).
pub fn kind(action: &Action) -> &'static str {
    match action {
        Action::ScaleUp(_) => "scale-up",
        Action::RemoveMembers(_) => "remove-members",
        Action::StartRemoval(_) => "start-removal",
        Action::EvictPods(_) => "evict-pods",
        Action::MarkDrained(_) => "mark-drained",
        Action::RollBackRemoval(_) => "roll-back-removal",
        Action::DeleteNode(_) => "delete-node",
        Action::ResizePod(_) => "resize-pod",
        Action::RecreatePod(_) => "recreate-pod",
    }
}

fn group(action: &Action) -> Option<&str> {
    match action {
        Action::ScaleUp(a) => Some(&a.group),
        Action::RemoveMembers(a) => Some(&a.group),
        Action::StartRemoval(a) => Some(&a.record.group),
        Action::MarkDrained(a) => Some(&a.record.group),
        Action::DeleteNode(a) => Some(&a.group),
        Action::EvictPods(_) | Action::RollBackRemoval(_) | Action::ResizePod(_) | Action::RecreatePod(_) => None,
    }
}

/// One line saying what the action does, for logs and dry-run Events.
pub fn describe(action: &Action) -> String {
    match action {
        Action::ScaleUp(a) => format!(
            "grow node group {} from {} to {} for {} pending pod(s)",
            a.group, a.expected_desired, a.new_desired, a.pod_count
        ),
        Action::RemoveMembers(a) => format!(
            "remove member(s) {} from node group {} ({} -> {})",
            a.members.iter().map(|m| m.member.as_str()).collect::<Vec<_>>().join(", "),
            a.group,
            a.expected_desired,
            a.new_desired
        ),
        Action::StartRemoval(a) => format!(
            "taint and cordon node {} to remove member {}/{} ({} removal)",
            a.node,
            a.record.group,
            a.record.member,
            a.record.kind.as_str()
        ),
        Action::EvictPods(a) => format!(
            "evict {} pod(s) from node {}: {}",
            a.pods.len(),
            a.node,
            a.pods.iter().map(|e| e.pod.to_string()).collect::<Vec<_>>().join(", ")
        ),
        Action::MarkDrained(a) => format!("mark node {} drained", a.node),
        Action::RollBackRemoval(a) => {
            format!("give node {} back{} ({})", a.node, if a.uncordon { " and uncordon it" } else { "" }, a.reason)
        }
        Action::DeleteNode(a) => format!("delete node {} (member {}/{} is gone from Heat)", a.node, a.group, a.member),
        Action::ResizePod(a) => format!("resize pod {} in place ({}): {}", a.pod, a.reason, containers(&a.containers)),
        Action::RecreatePod(a) => {
            format!("evict pod {} to be recreated ({}): {}", a.pod, a.reason, containers(&a.containers))
        }
    }
}

fn containers(resizes: &[heatscaler_core::planner::action::ContainerResize]) -> String {
    let each = resizes.iter().map(|c| format!("{} {} -> {}", c.container, c.from, c.requests));
    each.collect::<Vec<_>>().join(", ")
}
