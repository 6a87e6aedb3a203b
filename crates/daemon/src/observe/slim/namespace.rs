//! A Namespace as the watch keeps it: its name and labels, what a pod
//! affinity term's `namespaceSelector` selects by. Not its finalizers or
//! phase, and no managed fields: a namespace that the scheduler model
//! reads only through its labels costs a name and a label map.

use k8s_openapi::api::core::v1 as k8s;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use serde::Deserialize;

use super::meta::{NoAnnotations, object_meta};

/// A Namespace with only its metadata (name, uid, resourceVersion, labels).
#[derive(Clone, Debug, Default, Deserialize)]
pub struct Namespace {
    #[serde(default, deserialize_with = "object_meta::<NoAnnotations, _>")]
    pub metadata: ObjectMeta,
}

super::builtin_resource!(Namespace, "", "v1", "Namespace", "namespaces", k8s_openapi::ClusterResourceScope);

impl Namespace {
    /// The API namespace with only the metadata set.
    pub fn into_api(self) -> k8s::Namespace {
        k8s::Namespace { metadata: self.metadata, ..Default::default() }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_namespace_decodes_to_its_name_and_labels_only() {
        let json = serde_json::json!({
            "apiVersion": "v1", "kind": "Namespace",
            "metadata": {
                "name": "infra", "uid": "0f1e", "resourceVersion": "42",
                "labels": {"kubernetes.io/metadata.name": "infra", "tier": "infra"},
                "annotations": {"kubectl.kubernetes.io/last-applied-configuration": "{\"big\": true}"},
                "managedFields": [{"manager": "kubectl", "operation": "Apply"}]
            },
            "spec": {"finalizers": ["kubernetes"]},
            "status": {"phase": "Active"}
        });
        let ns: Namespace = serde_json::from_value(json).unwrap();
        assert_eq!(ns.metadata.name.as_deref(), Some("infra"));
        assert_eq!(ns.metadata.resource_version.as_deref(), Some("42"));
        let labels = ns.metadata.labels.as_ref().unwrap();
        assert_eq!(labels.get("tier").map(String::as_str), Some("infra"));
        assert!(ns.metadata.managed_fields.is_none());
        assert!(ns.metadata.annotations.as_ref().is_none_or(|a| a.is_empty()));
        assert!(ns.into_api().spec.is_none());
    }
}
