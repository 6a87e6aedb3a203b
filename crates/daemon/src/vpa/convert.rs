//! From VPA objects to what the planner and the recommender read: which
//! objects heatscaler handles, the workload each targets, its policy, and its
//! recommendation (filled in by `recommender::fill_recommendations`).

use heatscaler_core::model::{
    ChangeRequirement, ContainerRecommendation, ContainerResourcePolicy, ContainerScalingMode, ControlledValues,
    DEFAULT_CONTAINER_POLICY, EvictionRequirement, PodResourcePolicy, ResourceKind, Resources, UpdateMode,
    VerticalScaling, WorkloadRef, quantity,
};

use super::api::{self, ResourceList, VerticalPodAutoscaler};

/// Target kinds whose pods heatscaler resolves (`Pod::workload` is one of
/// these; a ReplicaSet owned by a Deployment resolves to the Deployment).
pub const SUPPORTED_TARGET_KINDS: [&str; 7] =
    ["Deployment", "StatefulSet", "ReplicaSet", "DaemonSet", "ReplicationController", "Job", "CronJob"];

/// Whether heatscaler, rather than another recommender, owns this object:
/// `spec.recommenders` names `recommender_name`, or names nothing and
/// `claim_unnamed` is set (`pod-resize.recommender-name`,
/// `pod-resize.claim-unnamed-vpas`). VPA's default recommender takes the
/// unnamed ones, so claiming them is only for clusters without it — both
/// would write the same status.
pub fn handled_by(vpa: &VerticalPodAutoscaler, recommender_name: &str, claim_unnamed: bool) -> bool {
    let selectors = &vpa.spec.recommenders;
    if selectors.is_empty() {
        return claim_unnamed;
    }
    selectors.iter().any(|s| s.name == recommender_name)
}

/// Why a VPA object cannot be acted on: the `ConfigUnsupported` message.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ConfigUnsupported(pub String);

/// A spec field set on the object that heatscaler does not honour, and what
/// applies instead: the `UnsupportedFields` condition's message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UnsupportedField {
    /// `spec.…` path as written (`spec.resourcePolicy.containerPolicies[0].oomBumpUpRatio`).
    pub path: String,
    pub instead: &'static str,
}

impl std::fmt::Display for UnsupportedField {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({})", self.path, self.instead)
    }
}

const NO_STARTUP_BOOST: &str = "no startup boost: pods start at their recommended requests";
const GLOBAL_OOM_BUMP: &str = "pod-resize.recommender.oom-bump-up-ratio and oom-min-bump-up apply";
const GLOBAL_AGGREGATION: &str =
    "pod-resize.recommender.memory-aggregation-interval and memory-aggregation-interval-count apply";
const ANY_OOM: &str = "a pod OOM-killed is updated whenever the target asks for more memory, however long it ran";

/// The spec fields of upstream's v1 schema set on `vpa` that heatscaler
/// does not honour (docs/pod-resizing.md has the table, field by field). A
/// field accepted silently would look honoured; it is reported instead.
pub fn unsupported_fields(vpa: &VerticalPodAutoscaler) -> Vec<UnsupportedField> {
    let mut out = Vec::new();
    let mut report = |path: String, instead| out.push(UnsupportedField { path, instead });
    if vpa.spec.update_policy.as_ref().is_some_and(|p| p.evict_after_oom_seconds.is_some()) {
        report("spec.updatePolicy.evictAfterOOMSeconds".into(), ANY_OOM);
    }
    if vpa.spec.startup_boost.is_some() {
        report("spec.startupBoost".into(), NO_STARTUP_BOOST);
    }
    let policies = vpa.spec.resource_policy.iter().flat_map(|p| &p.container_policies);
    for (i, p) in policies.enumerate() {
        let path = |field: &str| format!("spec.resourcePolicy.containerPolicies[{i}].{field}");
        if p.oom_bump_up_ratio.is_some() {
            report(path("oomBumpUpRatio"), GLOBAL_OOM_BUMP);
        }
        if p.oom_min_bump_up.is_some() {
            report(path("oomMinBumpUp"), GLOBAL_OOM_BUMP);
        }
        if p.memory_aggregation_interval_seconds.is_some() {
            report(path("memoryAggregationIntervalSeconds"), GLOBAL_AGGREGATION);
        }
        if p.memory_aggregation_interval_count.is_some() {
            report(path("memoryAggregationIntervalCount"), GLOBAL_AGGREGATION);
        }
        if p.startup_boost.is_some() {
            report(path("startupBoost"), NO_STARTUP_BOOST);
        }
    }
    out
}

/// The object as the planner sees it, without a recommendation yet (see
/// [`recommend`]). `replicas` is the target controller's desired replica
/// count when the caller knows it.
pub fn to_model(vpa: &VerticalPodAutoscaler, replicas: Option<u32>) -> Result<VerticalScaling, ConfigUnsupported> {
    let namespace = vpa.metadata.namespace.clone().unwrap_or_default();
    let workload = target_workload(vpa, &namespace)?;
    let policy = vpa.spec.update_policy.clone().unwrap_or_default();
    let update_mode = match policy.update_mode {
        None | Some(api::UpdateMode::Recreate) | Some(api::UpdateMode::Auto) => UpdateMode::Recreate,
        Some(api::UpdateMode::Off) => UpdateMode::Off,
        Some(api::UpdateMode::Initial) => UpdateMode::Initial,
        Some(api::UpdateMode::InPlaceOrRecreate) => UpdateMode::InPlaceOrRecreate,
        Some(api::UpdateMode::InPlace) => UpdateMode::InPlace,
        Some(api::UpdateMode::Unknown) => {
            return Err(ConfigUnsupported(
                "spec.updatePolicy.updateMode: not one of Off, Initial, Recreate, InPlaceOrRecreate, InPlace, Auto"
                    .into(),
            ));
        }
    };
    let min_replicas = match policy.min_replicas {
        None => None,
        Some(n) if n > 0 => Some(n as u32),
        Some(n) => {
            return Err(ConfigUnsupported(format!("spec.updatePolicy.minReplicas: must be positive, not {n}")));
        }
    };
    let eviction_requirements = policy
        .eviction_requirements
        .iter()
        .enumerate()
        .map(|(i, r)| eviction_requirement(r, &format!("spec.updatePolicy.evictionRequirements[{i}]")))
        .collect::<Result<_, _>>()?;
    Ok(VerticalScaling {
        namespace,
        name: vpa.metadata.name.clone().unwrap_or_default(),
        workload,
        update_mode,
        min_replicas,
        resource_policy: resource_policy(vpa)?,
        eviction_requirements,
        replicas,
        recommendations: Vec::new(),
    })
}

fn target_workload(vpa: &VerticalPodAutoscaler, namespace: &str) -> Result<WorkloadRef, ConfigUnsupported> {
    let Some(target) = &vpa.spec.target_ref else {
        return Err(ConfigUnsupported("Cannot read targetRef. Reason: spec.targetRef is not set".into()));
    };
    if !SUPPORTED_TARGET_KINDS.contains(&target.kind.as_str()) {
        return Err(ConfigUnsupported(format!(
            "spec.targetRef.kind: heatscaler resolves pods of {}, not {}",
            SUPPORTED_TARGET_KINDS.join(", "),
            target.kind
        )));
    }
    if target.name.is_empty() {
        return Err(ConfigUnsupported("spec.targetRef.name: is empty".into()));
    }
    Ok(WorkloadRef {
        kind: target.kind.clone().into(),
        namespace: namespace.to_string().into(),
        name: target.name.clone().into(),
    })
}

fn resource_policy(vpa: &VerticalPodAutoscaler) -> Result<PodResourcePolicy, ConfigUnsupported> {
    let Some(policy) = &vpa.spec.resource_policy else { return Ok(PodResourcePolicy::default()) };
    let mut out = PodResourcePolicy::default();
    for (i, p) in policy.container_policies.iter().enumerate() {
        let path = format!("spec.resourcePolicy.containerPolicies[{i}]");
        let container_name = match p.container_name.as_deref() {
            Some(name) if !name.is_empty() => name.to_string(),
            _ => return Err(ConfigUnsupported(format!("{path}.containerName: is required (a name or `*`)"))),
        };
        if out.container_policies.iter().any(|q| q.container_name == container_name) {
            return Err(ConfigUnsupported(format!("{path}.containerName: `{container_name}` appears twice")));
        }
        let mode = match p.mode.as_deref() {
            None | Some("Auto") => ContainerScalingMode::Auto,
            Some("Off") => ContainerScalingMode::Off,
            Some(other) => return Err(ConfigUnsupported(format!("{path}.mode: `{other}` is not Auto or Off"))),
        };
        let controlled_values = match p.controlled_values.as_deref() {
            None | Some("RequestsAndLimits") => ControlledValues::RequestsAndLimits,
            Some("RequestsOnly") => ControlledValues::RequestsOnly,
            Some(other) => {
                return Err(ConfigUnsupported(format!(
                    "{path}.controlledValues: `{other}` is not RequestsAndLimits or RequestsOnly"
                )));
            }
        };
        let controlled_resources = p.controlled_resources.as_ref().map(|list| {
            // Other resource names are accepted by the API and ignored by VPA.
            ResourceKind::ALL.into_iter().filter(|k| list.iter().any(|n| n == k.name())).collect()
        });
        out.container_policies.push(ContainerResourcePolicy {
            container_name,
            mode,
            min_allowed: resources(p.min_allowed.as_ref(), &format!("{path}.minAllowed"))?,
            max_allowed: resources(p.max_allowed.as_ref(), &format!("{path}.maxAllowed"))?,
            controlled_resources,
            controlled_values,
        });
    }
    Ok(out)
}

fn eviction_requirement(r: &api::EvictionRequirement, path: &str) -> Result<EvictionRequirement, ConfigUnsupported> {
    let change = match r.change_requirement.as_str() {
        "TargetHigherThanRequests" => ChangeRequirement::TargetHigherThanRequests,
        "TargetLowerThanRequests" => ChangeRequirement::TargetLowerThanRequests,
        other => {
            return Err(ConfigUnsupported(format!(
                "{path}.changeRequirement: `{other}` is not TargetHigherThanRequests or TargetLowerThanRequests"
            )));
        }
    };
    let resources: Vec<ResourceKind> =
        ResourceKind::ALL.into_iter().filter(|k| r.resources.iter().any(|n| n == k.name())).collect();
    if resources.is_empty() {
        return Err(ConfigUnsupported(format!("{path}.resources: names neither cpu nor memory")));
    }
    Ok(EvictionRequirement { resources, change })
}

/// The recommendation a VPA object's status publishes — the running
/// recommender's — for a reader with no usage history of its own
/// (`heatscaler explain`). A bound left out is the target.
pub fn published_recommendations(
    vpa: &VerticalPodAutoscaler,
) -> Result<Vec<ContainerRecommendation>, ConfigUnsupported> {
    let Some(published) = vpa.status.as_ref().and_then(|s| s.recommendation.as_ref()) else { return Ok(Vec::new()) };
    published
        .container_recommendations
        .iter()
        .enumerate()
        .map(|(i, c)| {
            let path = format!("status.recommendation.containerRecommendations[{i}]");
            let target = resources(Some(&c.target), &format!("{path}.target"))?;
            let or_target = |list: Option<&ResourceList>, key: &str| -> Result<Resources, ConfigUnsupported> {
                Ok(match list {
                    Some(l) => resources(Some(l), &format!("{path}.{key}"))?,
                    None => target.clone(),
                })
            };
            Ok(ContainerRecommendation {
                container_name: c.container_name.clone(),
                lower_bound: or_target(c.lower_bound.as_ref(), "lowerBound")?,
                upper_bound: or_target(c.upper_bound.as_ref(), "upperBound")?,
                uncapped_target: or_target(c.uncapped_target.as_ref(), "uncappedTarget")?,
                target,
                capped: Vec::new(),
            })
        })
        .collect()
}

/// CPU and memory of a resource list (VPA recommends nothing else).
fn resources(list: Option<&ResourceList>, path: &str) -> Result<Resources, ConfigUnsupported> {
    let mut r = Resources::default();
    for (name, q) in list.into_iter().flatten() {
        let amount = match name.as_str() {
            Resources::CPU => quantity::parse_milli(&q.0),
            Resources::MEMORY => quantity::parse_units(&q.0),
            _ => continue,
        };
        let amount = amount.map_err(|e| ConfigUnsupported(format!("{path}.{name}: {e}")))?;
        r.set(name, amount);
    }
    Ok(r)
}

/// Writes CPU and memory as a resource list (the other fields are not VPA's).
pub(crate) fn resource_list(r: &Resources) -> ResourceList {
    Resources::new(r.cpu_milli, r.memory)
        .to_quantities()
        .into_iter()
        .map(|(k, v)| (k, k8s_openapi::apimachinery::pkg::api::resource::Quantity(v)))
        .collect()
}

/// The `*` container policy name, re-exported for callers building objects.
pub const ALL_CONTAINERS: &str = DEFAULT_CONTAINER_POLICY;
