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
//! through the `vpa` client), [`placement`] (SetPreferredAffinity,
//! RemovePreferredAffinity: the placement advisor's template changes). [`status`] writes the status ConfigMap;
//! [`vpa_writes`] the pod level's VPA status and checkpoint writes.
//!
//! With `dry_run`, every action is logged and reported as an Event
//! ("dry run: would ...") and none is performed.

mod confirm;
mod error;
mod evict;
mod group_resize;
mod kube;
mod placement;
mod removal;
mod resize;
mod status;
mod stuck;
mod vpa_writes;

use std::collections::BTreeMap;
use std::sync::Arc;

pub(crate) use self::kube::is_budget_refusal;
pub use self::kube::{Eviction, FIELD_MANAGER, KubeOps, merge_patch};
pub use confirm::{MISMATCH_ANNOTATION, MISMATCH_GROUP_ANNOTATION, RemovalLedger};
pub use error::ActuatorError;
pub use placement::ADVICE_ANNOTATION;
pub use status::StatusWrite;
pub use vpa_writes::VpaWrite;

use crate::alerts::{Dispatcher, ObjectRef, Reason, ScalingEvent};
use crate::cloud::group::Backend;
use crate::observe::HeatPoke;
use crate::telemetry::Metrics;
use heatscaler_core::model::Timestamp;
use heatscaler_core::planner::Action;
use heatscaler_core::planner::action::Target;

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
    /// Removals awaiting confirmation and groups held after a mismatch (`confirm`).
    ledger: RemovalLedger,
    /// Stacks found stuck in progress, and the recoveries sent (`stuck`).
    stuck: stuck::StuckEpisodes,
    /// Resizes the API server refused as invalid (`resize`): not sent again.
    refused: resize::RefusedResizes,
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
            ledger: RemovalLedger::default(),
            stuck: Default::default(),
            refused: Default::default(),
        }
    }

    /// Shares the ledger of sent removals and held groups with the actuators
    /// built before and after this one (configuration reloads).
    pub fn with_ledger(mut self, ledger: RemovalLedger) -> Self {
        self.ledger = ledger;
        self
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
        if let Some(held) = self.held(action.group()) {
            tracing::info!(action = action.kind().as_str(), subject = %action.subject(), "skipped: {held:?}");
            return held;
        }
        let result = match action {
            Action::ScaleUp(a) => self.scale_up(a).await,
            Action::RemoveMembers(a) => self.remove_members(a).await,
            Action::StartRemoval(a) => self.start_removal(a, now).await,
            Action::EvictPods(a) => self.evict_pods(a).await,
            Action::MarkDrained(a) => self.mark_drained(a, now).await,
            Action::RollBackRemoval(a) => self.roll_back(a, now).await,
            Action::DeleteNode(a) => self.delete_node(a).await,
            Action::ResizePod(a) => self.resize_pod(a, now).await,
            Action::RecreatePod(a) => self.recreate_pod(a).await,
            Action::SetPreferredAffinity(a) => self.set_preferred_affinity(a).await,
            Action::RemovePreferredAffinity(a) => self.remove_preferred_affinity(a).await,
        };
        let outcome = result.unwrap_or_else(Outcome::Failed);
        let kind = action.kind().as_str();
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
        tracing::info!(action = action.kind().as_str(), subject = %action.subject(), "dry run: would {action}");
        let object = match action.target() {
            Target::Group(_) => None,
            Target::Node(node) => Some(ObjectRef::node(node)),
            Target::Pod(pod) => Some(ObjectRef::pod(&pod.namespace, &pod.name)),
            Target::Workload(w) => Some(ObjectRef {
                api_version: "apps/v1".to_string(),
                kind: w.kind.to_string(),
                namespace: Some(w.namespace.to_string()),
                name: w.name.to_string(),
                uid: None,
            }),
        };
        let reason = Reason::for_action(action.kind());
        let mut event = ScalingEvent::new(reason, format!("dry run: would {action}")).with_field("dry_run", true);
        if let Some(o) = object {
            event = event.with_object(o);
        }
        if let Some(g) = action.group() {
            event = event.in_group(g);
        }
        self.alerts.dispatch(event);
    }
}
