//! One `AdmissionReview`: the new pod → its workload (ownerReference →
//! ReplicaSet → Deployment, as the daemon's store resolves every pod) → the
//! handled VPA object targeting it → the [`mutation`].
//!
//! It reads the watches' state only (the store's ReplicaSets, the VPA
//! objects with the recommendation their status publishes), never the
//! leader's memory, so every replica answers the same and none needs the
//! lease. It never refuses a pod: whatever goes wrong — the watches not
//! synced yet, a ReplicaSet not seen yet, an object it cannot read — the pod
//! is admitted as created, without a patch, and the outcome counted.

use std::sync::{Arc, Mutex as StdMutex};

use k8s_openapi::api::core::v1 as k8s;
use kube::core::DynamicObject;
use kube::core::admission::{AdmissionRequest, AdmissionResponse, Operation};
use tokio::sync::Mutex;

use super::mutation::mutation;
use crate::observe::{ClusterStore, convert};
use crate::telemetry::AdmissionOutcome;
use crate::vpa::client::VpaObjects;

/// What the webhook reads, shared with the watches that fill it.
#[derive(Clone)]
pub struct Admitter {
    pub store: Arc<Mutex<ClusterStore>>,
    pub vpas: Arc<StdMutex<VpaObjects>>,
    /// `pod-resize.recommender-name` / `claim-unnamed-vpas`: the objects
    /// heatscaler handles are the ones it admits pods for (others belong to
    /// another recommender, and to its admission controller).
    pub recommender_name: String,
    pub claim_unnamed: bool,
    /// Reads a ReplicaSet the store has not seen yet (a rollout creates its
    /// ReplicaSet and at once its pods, before the watch delivers it):
    /// `None` in tests, which then count the pod `workload_unknown`.
    pub client: Option<kube::Client>,
    /// `daemon.dry-run`: the review is worked out and counted, but no pod is
    /// changed — a dry run changes nothing in the cluster, pods included.
    pub dry_run: bool,
}

/// How long a review may wait for a ReplicaSet read: well inside the
/// registration's 5 s `timeoutSeconds`.
const REPLICA_SET_READ_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(2);

/// The answer to one review, and how to count it.
#[derive(Debug)]
pub struct Answer {
    pub response: AdmissionResponse,
    pub outcome: AdmissionOutcome,
    /// `namespace/VPA` when a patch was sent (for the log line).
    pub vpa: Option<String>,
}

impl Admitter {
    /// Answers `request`: always `allowed`, with a patch when the pod's VPA
    /// object gives it a recommendation.
    pub async fn review(&self, request: &AdmissionRequest<DynamicObject>) -> Answer {
        let allowed = AdmissionResponse::from(request);
        let as_created = |outcome| Answer { response: AdmissionResponse::from(request), outcome, vpa: None };
        if request.operation != Operation::Create || request.kind.kind != "Pod" || request.sub_resource.is_some() {
            return as_created(AdmissionOutcome::Unchanged);
        }
        let Some(pod) = request.object.as_ref().and_then(pod_of) else {
            return as_created(AdmissionOutcome::Invalid);
        };
        // A pod being created may not carry its namespace yet; the request does.
        let namespace = request.namespace.clone().or_else(|| pod.metadata.namespace.clone()).unwrap_or_default();
        let Some(owner) = convert::owner(pod.metadata.owner_references.as_deref().unwrap_or_default()) else {
            return as_created(AdmissionOutcome::Unchanged);
        };
        let workload = if owner.kind == "ReplicaSet" {
            let seen = {
                let store = self.store.lock().await;
                store.replica_set_owner(&namespace, &owner.name).map(|d| d.map(str::to_string))
            };
            let deployment = match seen {
                Some(deployment) => deployment,
                None => match self.read_replica_set_owner(&namespace, &owner.name).await {
                    Some(deployment) => deployment,
                    None => return as_created(AdmissionOutcome::WorkloadUnknown),
                },
            };
            convert::workload(&owner, &namespace, Some(deployment.as_deref()))
        } else {
            convert::workload(&owner, &namespace, None)
        };
        let Some(workload) = workload else { return as_created(AdmissionOutcome::Unchanged) };
        let vpa = {
            let objects = self.vpas.lock().expect("VPA objects lock");
            if !objects.synced() {
                return as_created(AdmissionOutcome::NotSynced);
            }
            objects.handled_for(&self.recommender_name, self.claim_unnamed, &workload)
        };
        // An object heatscaler cannot act on (its `ConfigUnsupported`
        // condition says why) is not applied either.
        let Some(Ok(vpa)) = vpa else { return as_created(AdmissionOutcome::Unchanged) };
        let Some(change) = mutation(&pod, &vpa) else { return as_created(AdmissionOutcome::Unchanged) };
        if self.dry_run {
            return Answer {
                vpa: Some(format!("{}/{}", vpa.namespace, vpa.name)),
                ..as_created(AdmissionOutcome::DryRun)
            };
        }
        match allowed.with_patch(change.patch) {
            Ok(response) => Answer {
                response,
                outcome: AdmissionOutcome::Patched,
                vpa: Some(format!("{}/{}", vpa.namespace, vpa.name)),
            },
            Err(_) => as_created(AdmissionOutcome::Invalid),
        }
    }
}

impl Admitter {
    /// The Deployment controlling a ReplicaSet, read from the API server
    /// (its metadata only): `None` when it cannot be read in time.
    async fn read_replica_set_owner(&self, namespace: &str, name: &str) -> Option<Option<String>> {
        let client = self.client.clone()?;
        let api: kube::Api<k8s_openapi::api::apps::v1::ReplicaSet> = kube::Api::namespaced(client, namespace);
        let read = tokio::time::timeout(REPLICA_SET_READ_TIMEOUT, api.get_metadata_opt(name)).await;
        let meta = read.ok()?.ok()??;
        let owner = convert::owner(meta.metadata.owner_references.as_deref().unwrap_or_default());
        Some(owner.filter(|o| o.kind == "Deployment").map(|o| o.name))
    }
}

/// The pod in a review, typed (`None`: not a pod the API would store).
fn pod_of(object: &DynamicObject) -> Option<k8s::Pod> {
    serde_json::to_value(object).ok().and_then(|v| serde_json::from_value(v).ok())
}
