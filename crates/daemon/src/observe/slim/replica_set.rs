//! A ReplicaSet as the watch keeps it: its controlling Deployment (to resolve
//! its pods' workload) and the requests and limits of its pod template (the
//! size an evicted pod comes back at, issue 17). Not the template's images,
//! environment, probes, volumes or placement: a list of thousands of
//! ReplicaSets — ten old revisions per Deployment by default — decodes into a
//! few hundred bytes each.

use k8s_openapi::api::apps::v1 as apps;
use k8s_openapi::api::core::v1 as k8s;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use serde::Deserialize;

use super::meta::{NoAnnotations, object_meta};

/// A ReplicaSet with only the fields [`crate::observe::convert::replica_set`] reads.
#[derive(Clone, Debug, Default, Deserialize)]
pub struct ReplicaSet {
    #[serde(default, deserialize_with = "object_meta::<NoAnnotations, _>")]
    pub metadata: ObjectMeta,
    spec: Option<Spec>,
}

impl kube::Resource for ReplicaSet {
    type DynamicType = ();
    type Scope = k8s_openapi::NamespaceResourceScope;

    fn kind(_: &()) -> std::borrow::Cow<'_, str> {
        "ReplicaSet".into()
    }

    fn group(_: &()) -> std::borrow::Cow<'_, str> {
        "apps".into()
    }

    fn version(_: &()) -> std::borrow::Cow<'_, str> {
        "v1".into()
    }

    fn plural(_: &()) -> std::borrow::Cow<'_, str> {
        "replicasets".into()
    }

    fn meta(&self) -> &ObjectMeta {
        &self.metadata
    }

    fn meta_mut(&mut self) -> &mut ObjectMeta {
        &mut self.metadata
    }
}

#[derive(Clone, Debug, Default, Deserialize)]
struct Spec {
    template: Option<Template>,
}

#[derive(Clone, Debug, Default, Deserialize)]
struct Template {
    spec: Option<PodSpec>,
}

/// What decides a new pod's requests: its containers, init containers
/// (sidecars among them) and pod-level resources.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct PodSpec {
    #[serde(default)]
    containers: Vec<Container>,
    init_containers: Option<Vec<Container>>,
    resources: Option<k8s::ResourceRequirements>,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Container {
    #[serde(default)]
    name: String,
    resources: Option<k8s::ResourceRequirements>,
    /// `Always` on an init container: a sidecar.
    restart_policy: Option<String>,
}

impl ReplicaSet {
    /// The API ReplicaSet with these fields set and every other one empty.
    pub fn into_api(self) -> apps::ReplicaSet {
        let spec = self.spec.unwrap_or_default();
        let pod = spec.template.and_then(|t| t.spec).map(|s| k8s::PodSpec {
            containers: s.containers.into_iter().map(Container::into_api).collect(),
            init_containers: s.init_containers.map(|c| c.into_iter().map(Container::into_api).collect()),
            resources: s.resources,
            ..k8s::PodSpec::default()
        });
        apps::ReplicaSet {
            metadata: self.metadata,
            spec: Some(apps::ReplicaSetSpec {
                template: Some(k8s::PodTemplateSpec { metadata: None, spec: pod }),
                ..apps::ReplicaSetSpec::default()
            }),
            status: None,
        }
    }
}

impl Container {
    fn into_api(self) -> k8s::Container {
        k8s::Container {
            name: self.name,
            resources: self.resources,
            restart_policy: self.restart_policy,
            ..k8s::Container::default()
        }
    }
}
