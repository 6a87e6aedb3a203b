//! The pod level's other writes: VPA objects' status and the recommender's
//! history in `VerticalPodAutoscalerCheckpoint`s. Not planner actions — the
//! planner neither reads nor decides them — but writes like any other, so they
//! go through the actuator: dry run is checked here, the control loop checks
//! leadership before each and awaits them with the pass's actions (a stop
//! waits for them within its grace, as for actions), instead of spawning
//! them unawaited.
//!
//! A failed write is logged and left to the next pass (the watch still shows
//! the old status; the next checkpoint round writes everything again); it is
//! not a failed action (the loop's success metric is about scaling).

use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use futures::StreamExt;
use kube::Api;

use super::{Actuator, Outcome};
use crate::telemetry::{KubeResource, KubeVerb};
use crate::vpa::VerticalPodAutoscaler;
use crate::vpa::checkpoint::{self, VerticalPodAutoscalerCheckpoint};
use crate::vpa::client as vpa_client;

/// Checkpoint writes in flight at once.
const CHECKPOINT_CONCURRENCY: usize = 8;

/// A write of the pod level.
#[derive(Debug)]
pub enum VpaWrite {
    /// A VPA object whose status this pass changed: a merge patch to its
    /// `status` subresource.
    Status { namespace: String, name: String, patch: serde_json::Value },
    /// The recommender's history, one checkpoint per workload container.
    Checkpoints(Vec<VerticalPodAutoscalerCheckpoint>),
}

impl std::fmt::Display for VpaWrite {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            VpaWrite::Status { namespace, name, .. } => write!(f, "write the status of VPA {namespace}/{name}"),
            VpaWrite::Checkpoints(c) => write!(f, "save {} recommender checkpoint(s)", c.len()),
        }
    }
}

impl Actuator {
    /// Performs one pod-level write; with dry run, none (not even status: a
    /// dry run must be safe to start next to a running daemon).
    pub async fn write_vpa(&self, write: &VpaWrite) -> Outcome {
        if self.dry_run {
            tracing::debug!("dry run: would {write}");
            return Outcome::DryRun;
        }
        match write {
            VpaWrite::Status { namespace, name, patch } => {
                let api: Api<VerticalPodAutoscaler> = Api::namespaced(self.kube.client().clone(), namespace);
                let started = std::time::Instant::now();
                let result = vpa_client::write_status(&api, name, patch).await;
                let ok = result.is_ok();
                let took = started.elapsed();
                self.metrics.observe_kube_call(KubeVerb::Patch, KubeResource::VerticalPodAutoscaler, took, ok);
                match result {
                    Ok(_) => Outcome::Done(write.to_string()),
                    Err(e) => {
                        tracing::warn!(error = %e, "VPA status not written; the next pass tries again");
                        Outcome::Failed(e.into())
                    }
                }
            }
            VpaWrite::Checkpoints(checkpoints) => self.save_checkpoints(checkpoints).await,
        }
    }

    /// Failures are counted and logged once per round; the next round
    /// writes everything again.
    async fn save_checkpoints(&self, checkpoints: &[VerticalPodAutoscalerCheckpoint]) -> Outcome {
        let total = checkpoints.len();
        let failed = AtomicUsize::new(0);
        let first_error = Mutex::new(None);
        futures::stream::iter(checkpoints)
            .for_each_concurrent(CHECKPOINT_CONCURRENCY, |c| {
                let (failed, first_error) = (&failed, &first_error);
                async move {
                    let api: Api<VerticalPodAutoscalerCheckpoint> = Api::namespaced(
                        self.kube.client().clone(),
                        c.metadata.namespace.as_deref().unwrap_or_default(),
                    );
                    let started = std::time::Instant::now();
                    let result = checkpoint::save(&api, c).await;
                    let resource = KubeResource::VerticalPodAutoscalerCheckpoint;
                    self.metrics.observe_kube_call(KubeVerb::Patch, resource, started.elapsed(), result.is_ok());
                    if let Err(e) = result {
                        failed.fetch_add(1, Ordering::Relaxed);
                        first_error.lock().expect("error slot").get_or_insert(e.to_string());
                    }
                }
            })
            .await;
        match first_error.into_inner().expect("error slot") {
            Some(error) => {
                let failed = failed.into_inner();
                tracing::warn!(
                    failed,
                    of = total,
                    %error,
                    "recommender checkpoints not written (is the checkpoint CRD installed? see config/crd/); the next \
                     round tries again"
                );
                Outcome::Skipped(format!("{failed} of {total} checkpoint(s) not written: {error}"))
            }
            None => {
                tracing::debug!(written = total, "recommender checkpoints written");
                Outcome::Done(format!("{total} recommender checkpoint(s) saved"))
            }
        }
    }
}
