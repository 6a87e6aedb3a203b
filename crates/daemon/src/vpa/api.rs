//! `autoscaling.k8s.io/v1` `VerticalPodAutoscaler`, the fields VPA v1 defines
//! and heatscaler reads or writes, so users keep their manifests.
//!
//! `kube::Resource` is implemented by hand rather than with kube's
//! `CustomResource` derive: the derive needs `schemars` and would generate a
//! CRD schema from these types, while the CRD heatscaler ships
//! (`config/crd/verticalpodautoscaler.yaml`) must be VPA's own schema, so a
//! VPA installed later (or before) finds exactly the object it expects.
//!
//! Every field of VPA v1.8.1's v1 schema is here. Those heatscaler does not
//! honour (`startupBoost`, per-container `oomBumpUpRatio`, ...) are read only
//! to be named in the object's `UnsupportedFields` condition
//! ([`super::convert::unsupported_fields`]); they are kept as the JSON the
//! user wrote, never interpreted. heatscaler only ever patches `status`.

use std::collections::BTreeMap;

use k8s_openapi::api::autoscaling::v1::CrossVersionObjectReference;
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};
use serde::{Deserialize, Serialize};

pub const GROUP: &str = "autoscaling.k8s.io";
pub const VERSION: &str = "v1";
pub const API_VERSION: &str = "autoscaling.k8s.io/v1";
pub const KIND: &str = "VerticalPodAutoscaler";
pub const PLURAL: &str = "verticalpodautoscalers";

/// A resource list as the API writes it (`{"cpu": "250m", "memory": "1Gi"}`).
pub type ResourceList = BTreeMap<String, Quantity>;

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct VerticalPodAutoscaler {
    #[serde(default = "api_version")]
    pub api_version: String,
    #[serde(default = "kind")]
    pub kind: String,
    #[serde(default)]
    pub metadata: ObjectMeta,
    #[serde(default)]
    pub spec: VerticalPodAutoscalerSpec,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<VerticalPodAutoscalerStatus>,
}

pub(super) fn api_version() -> String {
    API_VERSION.into()
}

fn kind() -> String {
    KIND.into()
}

impl VerticalPodAutoscaler {
    /// A new object (for `Api::create`), with `apiVersion` and `kind` set.
    pub fn new(namespace: &str, name: &str, spec: VerticalPodAutoscalerSpec) -> Self {
        Self {
            api_version: api_version(),
            kind: kind(),
            metadata: ObjectMeta {
                namespace: Some(namespace.into()),
                name: Some(name.into()),
                ..ObjectMeta::default()
            },
            spec,
            status: None,
        }
    }

    /// `namespace/name`, for messages.
    pub fn key(&self) -> String {
        format!("{}/{}", self.metadata.namespace.as_deref().unwrap_or(""), self.metadata.name.as_deref().unwrap_or(""))
    }
}

/// `kube::Resource` for a namespaced type of VPA's API group (`autoscaling.k8s.io/v1`)
/// with a `metadata` field, given its kind and plural.
macro_rules! vpa_group_resource {
    ($ty:ty, $kind:expr, $plural:expr) => {
        impl kube::Resource for $ty {
            type DynamicType = ();
            type Scope = k8s_openapi::NamespaceResourceScope;

            fn kind(_: &()) -> std::borrow::Cow<'_, str> {
                std::borrow::Cow::Borrowed($kind)
            }
            fn group(_: &()) -> std::borrow::Cow<'_, str> {
                std::borrow::Cow::Borrowed($crate::vpa::api::GROUP)
            }
            fn version(_: &()) -> std::borrow::Cow<'_, str> {
                std::borrow::Cow::Borrowed($crate::vpa::api::VERSION)
            }
            fn api_version(_: &()) -> std::borrow::Cow<'_, str> {
                std::borrow::Cow::Borrowed($crate::vpa::api::API_VERSION)
            }
            fn plural(_: &()) -> std::borrow::Cow<'_, str> {
                std::borrow::Cow::Borrowed($plural)
            }
            fn meta(&self) -> &k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta {
                &self.metadata
            }
            fn meta_mut(&mut self) -> &mut k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta {
                &mut self.metadata
            }
        }
    };
}
pub(crate) use vpa_group_resource;

vpa_group_resource!(VerticalPodAutoscaler, KIND, PLURAL);

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct VerticalPodAutoscalerSpec {
    /// The controller whose pods are managed (Deployment, StatefulSet, ...).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_ref: Option<CrossVersionObjectReference>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub update_policy: Option<PodUpdatePolicy>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource_policy: Option<PodResourcePolicy>,
    /// Empty: the default recommender; else the recommender(s) responsible.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub recommenders: Vec<RecommenderSelector>,
    /// Extra CPU while pods start (not honoured: reported).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub startup_boost: Option<serde_json::Value>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct RecommenderSelector {
    pub name: String,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PodUpdatePolicy {
    /// Default `Recreate`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub update_mode: Option<UpdateMode>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_replicas: Option<i32>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub eviction_requirements: Vec<EvictionRequirement>,
    /// Evict pods OOM-killed this soon after starting (not honoured: reported).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub evict_after_oom_seconds: Option<i32>,
}

/// `updatePolicy.updateMode`. An unknown value (a newer VPA's mode) reads as
/// `Unknown` instead of failing the whole object, so the VPA gets a
/// `ConfigUnsupported` condition rather than breaking the watch.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum UpdateMode {
    Off,
    Initial,
    Recreate,
    InPlaceOrRecreate,
    InPlace,
    /// Deprecated by VPA; means `Recreate`.
    Auto,
    #[serde(other)]
    Unknown,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EvictionRequirement {
    pub resources: Vec<String>,
    /// `TargetHigherThanRequests` or `TargetLowerThanRequests`.
    pub change_requirement: String,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PodResourcePolicy {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub container_policies: Vec<ContainerResourcePolicy>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ContainerResourcePolicy {
    /// A container name, or `*` for every container without its own entry.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub container_name: Option<String>,
    /// `Auto` (default) or `Off`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_allowed: Option<ResourceList>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_allowed: Option<ResourceList>,
    /// Default `[cpu, memory]`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub controlled_resources: Option<Vec<String>>,
    /// `RequestsAndLimits` (default) or `RequestsOnly`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub controlled_values: Option<String>,
    // Per-container overrides of recommender settings and the startup boost
    // (not honoured: reported), kept as written (quantities may be integers).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub oom_bump_up_ratio: Option<serde_json::Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub oom_min_bump_up: Option<serde_json::Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory_aggregation_interval_seconds: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory_aggregation_interval_count: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub startup_boost: Option<serde_json::Value>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct VerticalPodAutoscalerStatus {
    /// The `metadata.generation` (spec version) this status was written for,
    /// so a reader knows whether it reflects the spec it sees.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recommendation: Option<RecommendedPodResources>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RecommendedPodResources {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub container_recommendations: Vec<RecommendedContainerResources>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RecommendedContainerResources {
    pub container_name: String,
    pub target: ResourceList,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lower_bound: Option<ResourceList>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub upper_bound: Option<ResourceList>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uncapped_target: Option<ResourceList>,
}

/// One `status.conditions[]` entry.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Condition {
    #[serde(rename = "type")]
    pub type_: String,
    /// `True`, `False` or `Unknown`.
    pub status: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_transition_time: Option<Time>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// The `metadata.generation` this condition was set for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
}

/// Condition types the VPA recommender maintains.
pub mod condition {
    pub const RECOMMENDATION_PROVIDED: &str = "RecommendationProvided";
    pub const LOW_CONFIDENCE: &str = "LowConfidence";
    pub const NO_PODS_MATCHED: &str = "NoPodsMatched";
    pub const FETCHING_HISTORY: &str = "FetchingHistory";
    pub const CONFIG_UNSUPPORTED: &str = "ConfigUnsupported";
    pub const CONFIG_DEPRECATED: &str = "ConfigDeprecated";
    /// heatscaler's own: spec fields it does not honour, named in the message
    /// (the object is still acted on, unlike `ConfigUnsupported`).
    pub const UNSUPPORTED_FIELDS: &str = "UnsupportedFields";
    /// heatscaler's own: upstream VPA's updater or admission controller was
    /// seen acting on this object's pods, which heatscaler also updates.
    pub const UPSTREAM_VPA_ACTIVE: &str = "UpstreamVpaActive";
}
