//! A node as the watch keeps it until converted: capacity, readiness,
//! taints, where its kubelet serves. No images list, node info or attached
//! volumes.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1 as k8s;
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use serde::Deserialize;

use super::meta::{NodeAnnotations, object_meta};

/// A node with only the fields [`crate::observe::convert::node`] reads.
#[derive(Clone, Debug, Default, Deserialize)]
pub struct Node {
    #[serde(default, deserialize_with = "object_meta::<NodeAnnotations, _>")]
    pub metadata: ObjectMeta,
    spec: Option<Spec>,
    status: Option<Status>,
}

super::builtin_resource!(Node, "", "v1", "Node", "nodes", k8s_openapi::ClusterResourceScope);

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Spec {
    taints: Option<Vec<k8s::Taint>>,
    unschedulable: Option<bool>,
    #[serde(rename = "providerID")]
    provider_id: Option<String>,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Status {
    allocatable: Option<BTreeMap<String, Quantity>>,
    conditions: Option<Vec<Condition>>,
    /// For the kubelet's address (`usage.kubelet: direct`).
    addresses: Option<Vec<k8s::NodeAddress>>,
    daemon_endpoints: Option<k8s::NodeDaemonEndpoints>,
}

/// A condition's type and status: no heartbeat, reason or message.
#[derive(Clone, Debug, Default, Deserialize)]
struct Condition {
    #[serde(default, rename = "type")]
    type_: String,
    #[serde(default)]
    status: String,
}

impl Node {
    /// The API node with these fields set and every other one empty: the
    /// input of [`crate::observe::convert::node`].
    pub fn into_api(self) -> k8s::Node {
        k8s::Node {
            metadata: self.metadata,
            spec: self.spec.map(|s| k8s::NodeSpec {
                taints: s.taints,
                unschedulable: s.unschedulable,
                provider_id: s.provider_id,
                ..k8s::NodeSpec::default()
            }),
            status: self.status.map(|s| k8s::NodeStatus {
                allocatable: s.allocatable,
                conditions: s.conditions.map(|c| {
                    c.into_iter()
                        .map(|c| k8s::NodeCondition {
                            type_: c.type_,
                            status: c.status,
                            ..k8s::NodeCondition::default()
                        })
                        .collect()
                }),
                addresses: s.addresses,
                daemon_endpoints: s.daemon_endpoints,
                ..k8s::NodeStatus::default()
            }),
        }
    }
}
