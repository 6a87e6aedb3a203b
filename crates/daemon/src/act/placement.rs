//! The placement advisor's template changes (`SetPreferredAffinity`,
//! `RemovePreferredAffinity`), carried out as their action contract says
//! (`planner::action`, docs/decisions.md "A rolling change that respects
//! PDBs"): re-read the Deployment or StatefulSet; nothing while a rollout is
//! in progress; nothing unless every PodDisruptionBudget over its pods allows
//! at least the disruption the rollout's `maxUnavailable` takes; then one
//! JSON patch that tests the `resourceVersion` read, changes the term and
//! marks it as heatscaler's with the `heatscaler.io/placement-advice`
//! annotation, so withdrawal never removes an operator's own term.

use k8s_openapi::api::apps::v1::{Deployment, StatefulSet};
use k8s_openapi::api::core::v1::PodTemplateSpec;
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use kube::Api;
use kube::api::{ListParams, Patch, PatchParams};
use serde_json::{Value, json};

use super::error::ActuatorError;
use super::{Actuator, FIELD_MANAGER, Outcome};
use crate::alerts::{ObjectRef, Reason, ScalingEvent};
use crate::observe::convert::label_selector;
use heatscaler_core::model::{LabelSelector, PodAffinityTerm, SelectorOperator, WorkloadRef};
use heatscaler_core::planner::action::{RemovePreferredAffinity, SetPreferredAffinity};

/// Names the advice whose term heatscaler added to the template.
pub const ADVICE_ANNOTATION: &str = "heatscaler.io/placement-advice";

const PREFERRED: &str = "/spec/template/spec/affinity/podAffinity/preferredDuringSchedulingIgnoredDuringExecution";

/// What the executor needs of a Deployment or a StatefulSet.
struct Workload {
    meta: ObjectMeta,
    template: PodTemplateSpec,
    /// Why a rollout is under way, if one is.
    rolling: Option<String>,
    /// Pods the rollout may take down at once.
    max_unavailable: i32,
}

impl Actuator {
    pub(super) async fn set_preferred_affinity(&self, a: &SetPreferredAffinity) -> Result<Outcome, ActuatorError> {
        let Some(w) = self.read_workload(&a.workload).await? else {
            return Ok(Outcome::Skipped(format!("{} is gone or not a Deployment or StatefulSet", a.workload)));
        };
        let wanted = weighted_term(&a.term, a.weight);
        let terms = preferred_terms(&w.template);
        if terms.contains(&wanted) {
            return Ok(Outcome::Skipped(format!("the template of {} already carries the term", a.workload)));
        }
        if let Some(why) = self.hold_for_rollout(&a.workload, &w).await? {
            return Ok(Outcome::Skipped(why));
        }
        let mut ops = guard(&w.meta);
        ops.extend(ensure_path(&w.template));
        ops.push(json!({"op": "add", "path": format!("{PREFERRED}/-"), "value": wanted}));
        ops.push(annotation_op(&w.meta, Mark::Add(&a.subject)));
        self.patch_workload(&a.workload, ops).await?;
        self.alerts.dispatch(
            ScalingEvent::new(
                Reason::PodAffinityAdded,
                format!("preferred pod affinity (weight {}) towards {} added: {}", a.weight, a.server, a.reason),
            )
            .with_object(object(&a.workload))
            .with_field("server", a.server.to_string())
            .with_field("subject", &a.subject),
        );
        Ok(Outcome::Done(format!(
            "preferred pod affinity towards {} added to the template of {}",
            a.server, a.workload
        )))
    }

    pub(super) async fn remove_preferred_affinity(
        &self,
        a: &RemovePreferredAffinity,
    ) -> Result<Outcome, ActuatorError> {
        let Some(w) = self.read_workload(&a.workload).await? else {
            return Ok(Outcome::Skipped(format!("{} is gone or not a Deployment or StatefulSet", a.workload)));
        };
        let ours = advised(&w.meta).contains(&a.subject.as_str());
        let terms = preferred_terms(&w.template);
        let Some(index) = terms.iter().position(|t| same_term(t, &a.term)) else {
            return Ok(Outcome::Skipped(format!("the template of {} does not carry the term", a.workload)));
        };
        if !ours {
            return Ok(Outcome::Skipped(format!(
                "the term on {} is not heatscaler's ({ADVICE_ANNOTATION} does not name `{}`): left as it is",
                a.workload, a.subject
            )));
        }
        if let Some(why) = self.hold_for_rollout(&a.workload, &w).await? {
            return Ok(Outcome::Skipped(why));
        }
        let mut ops = guard(&w.meta);
        ops.push(json!({"op": "remove", "path": format!("{PREFERRED}/{index}")}));
        ops.push(annotation_op(&w.meta, Mark::Drop(&a.subject)));
        self.patch_workload(&a.workload, ops).await?;
        self.alerts.dispatch(
            ScalingEvent::new(
                Reason::PodAffinityRemoved,
                format!("preferred pod affinity towards {} removed: {}", a.server, a.reason),
            )
            .with_object(object(&a.workload))
            .with_field("server", a.server.to_string())
            .with_field("subject", &a.subject),
        );
        Ok(Outcome::Done(format!(
            "preferred pod affinity towards {} removed from the template of {}",
            a.server, a.workload
        )))
    }

    async fn read_workload(&self, w: &WorkloadRef) -> Result<Option<Workload>, ActuatorError> {
        let client = self.kube.client().clone();
        let what = || format!("read {w}");
        Ok(match w.kind.as_str() {
            "Deployment" => {
                let api: Api<Deployment> = Api::namespaced(client, &w.namespace);
                api.get_opt(&w.name).await.map_err(ActuatorError::kube(what()))?.and_then(deployment)
            }
            "StatefulSet" => {
                let api: Api<StatefulSet> = Api::namespaced(client, &w.namespace);
                api.get_opt(&w.name).await.map_err(ActuatorError::kube(what()))?.and_then(stateful_set)
            }
            _ => None,
        })
    }

    /// Why the template must not change now, if it must not.
    async fn hold_for_rollout(&self, name: &WorkloadRef, w: &Workload) -> Result<Option<String>, ActuatorError> {
        if let Some(why) = &w.rolling {
            return Ok(Some(format!("a rollout of {name} is in progress ({why}); asked again next pass")));
        }
        if w.max_unavailable == 0 {
            // Surge only: availability never drops, any PDB allows it.
            return Ok(None);
        }
        let labels = w.template.metadata.as_ref().and_then(|m| m.labels.clone()).unwrap_or_default();
        let api: Api<PodDisruptionBudget> = Api::namespaced(self.kube.client().clone(), &name.namespace);
        let pdbs =
            api.list(&ListParams::default()).await.map_err(ActuatorError::kube(format!("list PDBs of {name}")))?;
        for pdb in pdbs.items {
            let selects = pdb
                .spec
                .as_ref()
                .and_then(|s| s.selector.as_ref())
                .is_some_and(|s| !is_empty(s) && label_selector(s).matches(&labels));
            if !selects {
                continue;
            }
            let allowed = pdb.status.as_ref().map_or(0, |s| s.disruptions_allowed);
            if allowed < w.max_unavailable {
                return Ok(Some(format!(
                    "PodDisruptionBudget {} allows {allowed} disruption(s), the rollout of {name} takes up to {}",
                    pdb.metadata.name.unwrap_or_default(),
                    w.max_unavailable
                )));
            }
        }
        Ok(None)
    }

    async fn patch_workload(&self, w: &WorkloadRef, ops: Vec<Value>) -> Result<(), ActuatorError> {
        let patch: json_patch::Patch = serde_json::from_value(Value::Array(ops)).expect("well-formed JSON patch");
        let params = PatchParams { field_manager: Some(FIELD_MANAGER.to_string()), ..PatchParams::default() };
        let client = self.kube.client().clone();
        let what = format!("patch the template of {w}");
        match w.kind.as_str() {
            "Deployment" => {
                let api: Api<Deployment> = Api::namespaced(client, &w.namespace);
                api.patch(&w.name, &params, &Patch::Json::<()>(patch)).await.map_err(ActuatorError::kube(what))?;
            }
            _ => {
                let api: Api<StatefulSet> = Api::namespaced(client, &w.namespace);
                api.patch(&w.name, &params, &Patch::Json::<()>(patch)).await.map_err(ActuatorError::kube(what))?;
            }
        }
        Ok(())
    }
}

fn is_empty(s: &k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector) -> bool {
    s.match_labels.as_ref().is_none_or(|m| m.is_empty()) && s.match_expressions.as_ref().is_none_or(|e| e.is_empty())
}

fn object(w: &WorkloadRef) -> ObjectRef {
    ObjectRef {
        api_version: "apps/v1".to_string(),
        kind: w.kind.to_string(),
        namespace: Some(w.namespace.to_string()),
        name: w.name.to_string(),
        uid: None,
    }
}

fn deployment(d: Deployment) -> Option<Workload> {
    let spec = d.spec?;
    let replicas = spec.replicas.unwrap_or(1);
    let status = d.status.unwrap_or_default();
    let generation = d.metadata.generation.unwrap_or(0);
    let rolling = if status.observed_generation.unwrap_or(0) < generation {
        Some("the controller has not seen the last change".to_string())
    } else if status.updated_replicas.unwrap_or(0) < replicas {
        Some(format!("{} of {replicas} replicas updated", status.updated_replicas.unwrap_or(0)))
    } else if status.available_replicas.unwrap_or(0) < replicas {
        Some(format!("{} of {replicas} replicas available", status.available_replicas.unwrap_or(0)))
    } else {
        None
    };
    let strategy = spec.strategy.unwrap_or_default();
    let max_unavailable = if strategy.type_.as_deref() == Some("Recreate") {
        replicas
    } else {
        let ru = strategy.rolling_update.unwrap_or_default();
        let surge = resolve(ru.max_surge.as_ref(), replicas, true, "25%");
        let unavailable = resolve(ru.max_unavailable.as_ref(), replicas, false, "25%");
        // As the Deployment controller: both zero is read as one unavailable.
        if surge == 0 && unavailable == 0 { 1 } else { unavailable }
    };
    Some(Workload { meta: d.metadata, template: spec.template, rolling, max_unavailable })
}

fn stateful_set(s: StatefulSet) -> Option<Workload> {
    let spec = s.spec?;
    let replicas = spec.replicas.unwrap_or(1);
    let status = s.status.unwrap_or_default();
    let rolling = if status.observed_generation.unwrap_or(0) < s.metadata.generation.unwrap_or(0) {
        Some("the controller has not seen the last change".to_string())
    } else if status.current_revision.is_some() && status.current_revision != status.update_revision {
        Some("current and update revisions differ".to_string())
    } else if status.ready_replicas.unwrap_or(0) < replicas {
        Some(format!("{} of {replicas} replicas ready", status.ready_replicas.unwrap_or(0)))
    } else {
        None
    };
    let strategy = spec.update_strategy.unwrap_or_default();
    let max_unavailable = if strategy.type_.as_deref() == Some("OnDelete") {
        // Pods keep their template until deleted: the change disrupts nothing.
        0
    } else {
        let ru = strategy.rolling_update.unwrap_or_default();
        resolve(ru.max_unavailable.as_ref(), replicas, false, "1").max(1)
    };
    Some(Workload { meta: s.metadata, template: spec.template, rolling, max_unavailable })
}

/// An `IntOrString` against `replicas`: a percentage rounds up for a surge
/// and down for unavailability, as the Deployment controller does.
fn resolve(v: Option<&IntOrString>, replicas: i32, round_up: bool, default: &str) -> i32 {
    let v = v.cloned().unwrap_or_else(|| match default.strip_suffix('%') {
        Some(_) => IntOrString::String(default.to_string()),
        None => IntOrString::Int(default.parse().unwrap_or(1)),
    });
    match v {
        IntOrString::Int(n) => n.max(0),
        IntOrString::String(s) => {
            let pct: f64 = s.trim_end_matches('%').parse().unwrap_or(0.0);
            let exact = pct * f64::from(replicas) / 100.0;
            (if round_up { exact.ceil() } else { exact.floor() }) as i32
        }
    }
}

/// The template's preferred pod-affinity terms, as JSON.
fn preferred_terms(t: &PodTemplateSpec) -> Vec<Value> {
    t.spec
        .as_ref()
        .and_then(|s| s.affinity.as_ref())
        .and_then(|a| a.pod_affinity.as_ref())
        .and_then(|p| p.preferred_during_scheduling_ignored_during_execution.as_ref())
        .map(|terms| terms.iter().map(|t| serde_json::to_value(t).expect("serialisable")).collect())
        .unwrap_or_default()
}

/// The term as the API writes it (`WeightedPodAffinityTerm`).
pub fn weighted_term(term: &PodAffinityTerm, weight: i32) -> Value {
    let mut t = json!({"labelSelector": selector(&term.selector), "topologyKey": term.topology_key});
    if !term.namespaces.is_empty() {
        t["namespaces"] = json!(term.namespaces);
    }
    if let Some(ns) = &term.namespace_selector {
        t["namespaceSelector"] = selector(ns);
    }
    json!({"weight": weight, "podAffinityTerm": t})
}

/// The same term whatever its weight (withdrawal finds it by what it selects).
fn same_term(existing: &Value, term: &PodAffinityTerm) -> bool {
    existing.get("podAffinityTerm") == weighted_term(term, 0).get("podAffinityTerm")
}

fn selector(s: &LabelSelector) -> Value {
    let mut v = json!({});
    if !s.match_labels.is_empty() {
        v["matchLabels"] = json!(s.match_labels);
    }
    if !s.match_expressions.is_empty() {
        v["matchExpressions"] = s
            .match_expressions
            .iter()
            .map(|r| {
                let operator = match r.operator {
                    SelectorOperator::In => "In",
                    SelectorOperator::NotIn => "NotIn",
                    SelectorOperator::Exists => "Exists",
                    SelectorOperator::DoesNotExist => "DoesNotExist",
                };
                let mut e = json!({"key": r.key, "operator": operator});
                if !r.values.is_empty() {
                    e["values"] = json!(r.values);
                }
                e
            })
            .collect();
    }
    v
}

/// Fails the patch if the object changed since it was read.
fn guard(meta: &ObjectMeta) -> Vec<Value> {
    vec![json!({"op": "test", "path": "/metadata/resourceVersion", "value": meta.resource_version})]
}

/// Creates the missing levels down to the preferred-terms list.
fn ensure_path(t: &PodTemplateSpec) -> Vec<Value> {
    let spec = t.spec.as_ref();
    let affinity = spec.and_then(|s| s.affinity.as_ref());
    let pod_affinity = affinity.and_then(|a| a.pod_affinity.as_ref());
    let preferred = pod_affinity.and_then(|p| p.preferred_during_scheduling_ignored_during_execution.as_ref());
    match (affinity, pod_affinity, preferred) {
        (None, _, _) => vec![json!({"op": "add", "path": "/spec/template/spec/affinity", "value": {"podAffinity": {
            "preferredDuringSchedulingIgnoredDuringExecution": []}}})],
        (Some(_), None, _) => vec![json!({"op": "add", "path": "/spec/template/spec/affinity/podAffinity",
            "value": {"preferredDuringSchedulingIgnoredDuringExecution": []}})],
        (Some(_), Some(_), None) => vec![json!({"op": "add", "path": PREFERRED, "value": []})],
        _ => Vec::new(),
    }
}

/// The advice whose terms heatscaler added, one subject a line: a client
/// advised towards two servers carries two terms, and each stays marked as
/// heatscaler's when the other is added or withdrawn.
fn advised(meta: &ObjectMeta) -> Vec<&str> {
    meta.annotations
        .as_ref()
        .and_then(|m| m.get(ADVICE_ANNOTATION))
        .map_or_else(Vec::new, |v| v.lines().filter(|l| !l.is_empty()).collect())
}

/// A change to the advice annotation.
#[derive(Clone, Copy)]
enum Mark<'a> {
    Add(&'a str),
    Drop(&'a str),
}

/// Names (`Add`) or stops naming (`Drop`) one subject in the advice
/// annotation, removing the annotation with its last subject.
fn annotation_op(meta: &ObjectMeta, mark: Mark<'_>) -> Value {
    let key = ADVICE_ANNOTATION.replace('~', "~0").replace('/', "~1");
    let mut subjects = advised(meta);
    match mark {
        Mark::Add(s) if !subjects.contains(&s) => subjects.push(s),
        Mark::Add(_) => {}
        Mark::Drop(s) => subjects.retain(|x| *x != s),
    }
    let value = subjects.join("\n");
    let has_key = meta.annotations.as_ref().is_some_and(|m| m.contains_key(ADVICE_ANNOTATION));
    match (subjects.is_empty(), meta.annotations.is_some(), has_key) {
        (false, true, _) => json!({"op": "add", "path": format!("/metadata/annotations/{key}"), "value": value}),
        (false, false, _) => json!({"op": "add", "path": "/metadata/annotations", "value": {ADVICE_ANNOTATION: value}}),
        (true, _, true) => json!({"op": "remove", "path": format!("/metadata/annotations/{key}")}),
        // Nothing to remove: a no-op test keeps the patch's shape.
        (true, _, false) => json!({"op": "test", "path": "/metadata/resourceVersion", "value": meta.resource_version}),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The annotation's value once `op` is applied to `meta`.
    fn annotated(meta: &ObjectMeta, op: &Value) -> Option<String> {
        let mut map = meta.annotations.clone().unwrap_or_default();
        match op["op"].as_str().unwrap() {
            "add" if op["path"] == "/metadata/annotations" => {
                map = serde_json::from_value(op["value"].clone()).unwrap();
            }
            "add" => {
                map.insert(ADVICE_ANNOTATION.into(), op["value"].as_str().unwrap().into());
            }
            "remove" => {
                map.remove(ADVICE_ANNOTATION);
            }
            _ => {}
        }
        map.get(ADVICE_ANNOTATION).cloned()
    }

    fn meta_with(value: Option<&str>) -> ObjectMeta {
        ObjectMeta {
            annotations: value.map(|v| [(ADVICE_ANNOTATION.to_string(), v.to_string())].into()),
            resource_version: Some("7".into()),
            ..Default::default()
        }
    }

    /// A client advised towards two servers carries two terms: both stay
    /// heatscaler's, and withdrawing one leaves the other's mark.
    #[test]
    fn a_second_piece_of_advice_keeps_the_first_terms_mark() {
        let a = "co-locate shop/Deployment/web with shop/Deployment/cart";
        let b = "co-locate shop/Deployment/web with shop/Deployment/auth";
        let after_b = annotated(&meta_with(Some(a)), &annotation_op(&meta_with(Some(a)), Mark::Add(b))).unwrap();
        assert_eq!(after_b.lines().collect::<Vec<_>>(), [a, b]);
        // Added again: named once.
        let both = meta_with(Some(&after_b));
        assert_eq!(annotated(&both, &annotation_op(&both, Mark::Add(a))).unwrap(), after_b);
        // Withdrawing the first leaves the second's mark; the last one removes the annotation.
        let after_drop = annotated(&both, &annotation_op(&both, Mark::Drop(a))).unwrap();
        assert_eq!(after_drop, b);
        let only_b = meta_with(Some(b));
        assert_eq!(annotated(&only_b, &annotation_op(&only_b, Mark::Drop(b))), None);
        // A fresh object with no annotations at all.
        let bare = ObjectMeta::default();
        assert_eq!(annotated(&bare, &annotation_op(&bare, Mark::Add(a))).as_deref(), Some(a));
    }

    #[test]
    fn max_unavailable_resolves_as_the_controllers_do() {
        let pct = |s: &str| IntOrString::String(s.into());
        assert_eq!(resolve(None, 4, false, "25%"), 1);
        assert_eq!(resolve(None, 3, false, "25%"), 0);
        assert_eq!(resolve(Some(&pct("50%")), 3, true, "25%"), 2);
        assert_eq!(resolve(Some(&IntOrString::Int(2)), 10, false, "25%"), 2);
        assert_eq!(resolve(None, 5, false, "1"), 1);
    }

    #[test]
    fn the_term_is_written_as_the_api_reads_it_and_found_again_by_what_it_selects() {
        let term = PodAffinityTerm::in_namespace(
            LabelSelector { match_labels: [("app".to_string(), "cart".to_string())].into(), ..Default::default() },
            "kubernetes.io/hostname",
            "shop",
        );
        let v = weighted_term(&term, 50);
        let typed: k8s_openapi::api::core::v1::WeightedPodAffinityTerm = serde_json::from_value(v.clone()).unwrap();
        assert_eq!(typed.weight, 50);
        assert_eq!(typed.pod_affinity_term.topology_key, "kubernetes.io/hostname");
        assert!(same_term(&serde_json::to_value(&typed).unwrap(), &term));
        assert!(!same_term(
            &weighted_term(&PodAffinityTerm { topology_key: "zone".into(), ..term.clone() }, 50),
            &term
        ));
    }
}
