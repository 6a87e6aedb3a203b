//! A PodDisruptionBudget as the watch keeps it until converted: its selector
//! and what the disruption controller last allowed. No conditions, no
//! `disruptedPods` map (one entry per pod being evicted), no counts the
//! eviction API does not read.

use k8s_openapi::api::policy::v1 as k8s;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};
use serde::Deserialize;

use super::meta::{NoAnnotations, object_meta};

/// A budget with only the fields [`crate::observe::convert::pdb`] reads.
#[derive(Clone, Debug, Default, Deserialize)]
pub struct PodDisruptionBudget {
    #[serde(default, deserialize_with = "object_meta::<NoAnnotations, _>")]
    pub metadata: ObjectMeta,
    spec: Option<Spec>,
    status: Option<Status>,
}

super::builtin_resource!(
    PodDisruptionBudget,
    "policy",
    "v1",
    "PodDisruptionBudget",
    "poddisruptionbudgets",
    k8s_openapi::NamespaceResourceScope
);

#[derive(Clone, Debug, Default, Deserialize)]
struct Spec {
    selector: Option<LabelSelector>,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Status {
    #[serde(default)]
    disruptions_allowed: i32,
    observed_generation: Option<i64>,
}

impl PodDisruptionBudget {
    /// The API budget with these fields set and every other one empty: the
    /// input of [`crate::observe::convert::pdb`].
    pub fn into_api(self) -> k8s::PodDisruptionBudget {
        k8s::PodDisruptionBudget {
            metadata: self.metadata,
            spec: self.spec.map(|s| k8s::PodDisruptionBudgetSpec { selector: s.selector, ..Default::default() }),
            status: self.status.map(|s| k8s::PodDisruptionBudgetStatus {
                disruptions_allowed: s.disruptions_allowed,
                observed_generation: s.observed_generation,
                ..Default::default()
            }),
        }
    }
}
