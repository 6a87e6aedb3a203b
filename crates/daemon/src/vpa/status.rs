//! The status heatscaler writes to a VPA object it handles: the
//! recommendation and the conditions, the way the VPA recommender maintains
//! them (`model/vpa.go` `UpdateConditions`, `input/cluster_feeder.go`
//! `LoadVPAs`):
//!
//! - `RecommendationProvided`: `True` with a recommendation; `False` without
//!   (reason and message `NoPodsMatched` when no pod matches);
//! - `NoPodsMatched`: `True` while no pod of the target exists, else removed;
//! - `ConfigUnsupported`: `True` with the problem while the object cannot be
//!   acted on (no recommendation is then written), else removed;
//! - `ConfigDeprecated`: removed, as VPA does;
//! - `UnsupportedFields` (heatscaler's own): `True` naming the spec fields set
//!   that heatscaler does not honour and what applies instead, else removed;
//!   the object is still acted on;
//! - `UpstreamVpaActive` (heatscaler's own): `True` naming the upstream VPA
//!   component seen acting on the object's pods and a pod that shows it
//!   (`vpa::upstream`), else removed;
//! - `LowConfidence`, `FetchingHistory` and any other type: left as they are —
//!   VPA declares the first two but its recommender never sets them.
//!
//! A condition keeps its `lastTransitionTime` while its status stays the same.
//! `status.observedGeneration` and each condition heatscaler sets carry the
//! object's `metadata.generation` it was computed from (conditions of other
//! types keep theirs), so `kubectl get vpa -o yaml` shows whether the status
//! is about the spec it shows; a spec change alone is written back.
//! [`status_patch`] returns nothing when the object already says all this, so
//! an unchanged recommendation costs no write (VPA's `UpdateVpaStatusIfNeeded`).

use jiff::Timestamp;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use serde_json::{Value, json};

use heatscaler_core::model::ContainerRecommendation;

use super::api::condition::{
    CONFIG_DEPRECATED, CONFIG_UNSUPPORTED, NO_PODS_MATCHED, RECOMMENDATION_PROVIDED, UNSUPPORTED_FIELDS,
    UPSTREAM_VPA_ACTIVE,
};
use super::api::{Condition, RecommendedContainerResources, RecommendedPodResources, VerticalPodAutoscalerStatus};
use super::convert::{ConfigUnsupported, UnsupportedField, resource_list};
use super::upstream::UpstreamSighting;

/// What the status should say.
#[derive(Clone, Copy, Debug)]
pub struct StatusUpdate<'a> {
    /// From the recommender (empty: none yet).
    pub recommendations: &'a [ContainerRecommendation],
    /// Some live pod belongs to the target.
    pub pods_matched: bool,
    /// The object cannot be acted on, and why.
    pub unsupported: Option<&'a ConfigUnsupported>,
    /// The object's `metadata.generation` this update was computed from.
    pub generation: Option<i64>,
    /// Spec fields set that heatscaler does not honour.
    pub unsupported_fields: &'a [UnsupportedField],
    /// Upstream VPA components seen acting on the object's pods.
    pub upstream: &'a [UpstreamSighting],
}

const NO_PODS_MESSAGE: &str = "No pods match this VPA object";

/// The status this update leads to, from the object's current status.
pub fn next_status(
    current: Option<&VerticalPodAutoscalerStatus>,
    update: &StatusUpdate<'_>,
    now: Timestamp,
) -> VerticalPodAutoscalerStatus {
    let mut conditions: Vec<Condition> = current.map(|s| s.conditions.clone()).unwrap_or_default();
    let recommendations = if update.unsupported.is_some() { &[][..] } else { update.recommendations };
    let pods_matched = update.pods_matched && update.unsupported.is_none();
    let generation = update.generation;
    let set = |conditions: &mut Vec<Condition>, kind: &str, status: bool, reason: &str, message: &str, now| {
        set(conditions, kind, status, reason, message, generation, now)
    };

    match update.unsupported {
        Some(problem) => set(&mut conditions, CONFIG_UNSUPPORTED, true, "", &problem.0, now),
        None => remove(&mut conditions, CONFIG_UNSUPPORTED),
    }
    remove(&mut conditions, CONFIG_DEPRECATED);
    if update.unsupported_fields.is_empty() {
        remove(&mut conditions, UNSUPPORTED_FIELDS);
    } else {
        let fields: Vec<String> = update.unsupported_fields.iter().map(ToString::to_string).collect();
        let message = format!("heatscaler does not honour {}", fields.join("; "));
        set(&mut conditions, UNSUPPORTED_FIELDS, true, "NotHonoured", &message, now);
    }
    if update.upstream.is_empty() {
        remove(&mut conditions, UPSTREAM_VPA_ACTIVE);
    } else {
        let seen: Vec<String> = update.upstream.iter().map(ToString::to_string).collect();
        let message = format!(
            "{}: two updaters act on these pods; stop VPA's updater and admission controller for this object, or \
             hand it to VPA's recommender",
            seen.join("; ")
        );
        set(&mut conditions, UPSTREAM_VPA_ACTIVE, true, "SeenActing", &message, now);
    }
    let (reason, message) = if pods_matched {
        remove(&mut conditions, NO_PODS_MATCHED);
        ("", "")
    } else {
        set(&mut conditions, NO_PODS_MATCHED, true, NO_PODS_MATCHED, NO_PODS_MESSAGE, now);
        (NO_PODS_MATCHED, NO_PODS_MESSAGE)
    };
    if recommendations.is_empty() {
        set(&mut conditions, RECOMMENDATION_PROVIDED, false, reason, message, now);
    } else {
        set(&mut conditions, RECOMMENDATION_PROVIDED, true, "", "", now);
    }
    VerticalPodAutoscalerStatus {
        observed_generation: generation.or(current.and_then(|s| s.observed_generation)),
        recommendation: (!recommendations.is_empty()).then(|| RecommendedPodResources {
            container_recommendations: recommendations.iter().map(to_api).collect(),
        }),
        conditions,
    }
}

/// The JSON merge patch body for the `status` subresource, or `None` when the
/// current status already says what `update` says.
pub fn status_patch(
    current: Option<&VerticalPodAutoscalerStatus>,
    update: &StatusUpdate<'_>,
    now: Timestamp,
) -> Option<Value> {
    let next = next_status(current, update, now);
    if current == Some(&next) {
        return None;
    }
    // Merge patch replaces lists whole; `null` removes a stale recommendation.
    Some(json!({
        "status": {
            "observedGeneration": next.observed_generation,
            "recommendation": next.recommendation,
            "conditions": next.conditions,
        }
    }))
}

/// One `containerRecommendations[]` entry (VPA writes all four, uncapped
/// target included).
pub fn to_api(r: &ContainerRecommendation) -> RecommendedContainerResources {
    RecommendedContainerResources {
        container_name: r.container_name.clone(),
        target: resource_list(&r.target),
        lower_bound: Some(resource_list(&r.lower_bound)),
        upper_bound: Some(resource_list(&r.upper_bound)),
        uncapped_target: Some(resource_list(&r.uncapped_target)),
    }
}

fn set(
    conditions: &mut Vec<Condition>,
    kind: &str,
    status: bool,
    reason: &str,
    message: &str,
    generation: Option<i64>,
    now: Timestamp,
) {
    let status = if status { "True" } else { "False" };
    let nonempty = |s: &str| (!s.is_empty()).then(|| s.to_string());
    let existing = conditions.iter().position(|c| c.type_ == kind);
    let last_transition_time = match existing.map(|i| &conditions[i]) {
        Some(old) if old.status == status => old.last_transition_time.clone(),
        _ => Some(Time(now)),
    };
    let condition = Condition {
        type_: kind.to_string(),
        status: status.to_string(),
        last_transition_time,
        reason: nonempty(reason),
        message: nonempty(message),
        observed_generation: generation,
    };
    match existing {
        Some(i) => conditions[i] = condition,
        None => conditions.push(condition),
    }
}

fn remove(conditions: &mut Vec<Condition>, kind: &str) {
    conditions.retain(|c| c.type_ != kind);
}
