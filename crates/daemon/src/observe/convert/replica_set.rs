//! ReplicaSets: the Deployment that controls one, and the pod template its
//! pods are recreated from.

use k8s_openapi::api::apps::v1 as apps;

use heatscaler_core::model::PodTemplate;

/// What the store keeps of a ReplicaSet.
#[derive(Clone, Debug, PartialEq)]
pub struct ReplicaSet {
    /// `(namespace, name)`.
    pub key: (String, String),
    pub uid: String,
    /// The controlling Deployment's name (`None`: no Deployment).
    pub deployment: Option<String>,
    /// Its pod template's sizes (`None`: a ReplicaSet without a template,
    /// which the API server refuses; kept total rather than assumed).
    pub template: Option<PodTemplate>,
}

pub fn replica_set(rs: &apps::ReplicaSet) -> ReplicaSet {
    let meta = &rs.metadata;
    ReplicaSet {
        key: (meta.namespace.clone().unwrap_or_default(), meta.name.clone().unwrap_or_default()),
        uid: meta.uid.clone().unwrap_or_default(),
        deployment: super::owner(meta.owner_references.as_deref().unwrap_or_default())
            .filter(|o| o.kind == "Deployment")
            .map(|o| o.name),
        template: rs.spec.as_ref().and_then(|s| s.template.as_ref()?.spec.as_ref()).map(super::template),
    }
}
