//! `autoscaling.k8s.io/v1` `VerticalPodAutoscalerCheckpoint`: the
//! recommender's histograms saved in the cluster, one object per container of
//! a VPA, so that a restarted daemon — or a new leader — starts from the
//! history instead of from nothing (with bounds wide for days).
//!
//! The object is VPA's own (same name `<vpa>-<container>`, same spec and
//! status, checkpoint version `v3`): heatscaler and VPA's recommender can each
//! read what the other wrote. Unlike VPA, heatscaler gives the checkpoint an
//! owner reference to its VPA object, so the cluster's garbage collector
//! deletes it with the VPA and no periodic sweep is needed.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use kube::api::{Api, Patch, PatchParams, PostParams};
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::api::{self, VerticalPodAutoscaler};
use super::client::ClientError;
use heatscaler_core::recommender::CheckpointStatus;

pub const KIND: &str = "VerticalPodAutoscalerCheckpoint";
pub const PLURAL: &str = "verticalpodautoscalercheckpoints";

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct VerticalPodAutoscalerCheckpoint {
    #[serde(default = "api::api_version")]
    pub api_version: String,
    #[serde(default = "kind")]
    pub kind: String,
    #[serde(default)]
    pub metadata: ObjectMeta,
    #[serde(default)]
    pub spec: CheckpointSpec,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<CheckpointStatus>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CheckpointSpec {
    #[serde(default)]
    pub vpa_object_name: String,
    #[serde(default)]
    pub container_name: String,
}

fn kind() -> String {
    KIND.into()
}

impl VerticalPodAutoscalerCheckpoint {
    /// The checkpoint of `container` under `vpa`, owned by `vpa`.
    pub fn new(vpa: &VerticalPodAutoscaler, container: &str, status: CheckpointStatus) -> Self {
        let vpa_name = vpa.metadata.name.clone().unwrap_or_default();
        let owner = vpa.metadata.uid.clone().map(|uid| OwnerReference {
            api_version: api::API_VERSION.into(),
            kind: api::KIND.into(),
            name: vpa_name.clone(),
            uid,
            ..OwnerReference::default()
        });
        Self {
            api_version: api::api_version(),
            kind: kind(),
            metadata: ObjectMeta {
                name: Some(object_name(&vpa_name, container)),
                namespace: vpa.metadata.namespace.clone(),
                owner_references: owner.map(|o| vec![o]),
                ..ObjectMeta::default()
            },
            spec: CheckpointSpec { vpa_object_name: vpa_name, container_name: container.to_string() },
            status: Some(status),
        }
    }
}

/// VPA's name for a container's checkpoint.
pub fn object_name(vpa: &str, container: &str) -> String {
    format!("{vpa}-{container}")
}

api::vpa_group_resource!(VerticalPodAutoscalerCheckpoint, KIND, PLURAL);

/// Writes a checkpoint as VPA's recommender does: the whole `status` replaced
/// by a JSON patch (a merge patch would keep buckets that have since emptied),
/// and the object created when there is none yet.
pub async fn save(
    api: &Api<VerticalPodAutoscalerCheckpoint>,
    checkpoint: &VerticalPodAutoscalerCheckpoint,
) -> Result<(), ClientError> {
    let name = checkpoint.metadata.name.as_deref().unwrap_or_default();
    let what = || format!("writing checkpoint {}/{name}", api.namespace().unwrap_or_default());
    let replace: json_patch::Patch = serde_json::from_value(json!([
        {"op": "add", "path": "/status", "value": checkpoint.status}
    ]))
    .expect("a JSON patch of one operation");
    match api.patch(name, &PatchParams::default(), &Patch::<()>::Json(replace)).await {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(e)) if e.code == 404 => match api.create(&PostParams::default(), checkpoint).await {
            Ok(_) => Ok(()),
            // Created meanwhile (by a previous leader still finishing): the next round patches it.
            Err(kube::Error::Api(e)) if e.code == 409 => Ok(()),
            Err(source) => Err(ClientError::Api { what: what(), source }),
        },
        Err(source) => Err(ClientError::Api { what: what(), source }),
    }
}
