//! The Kubernetes calls the actuator makes: fresh reads of what an action
//! expects, one-patch node changes guarded by the resourceVersion read, node
//! deletion guarded by uid, and evictions guarded by pod uid. Reads and
//! guarded writes are retried with backoff on transient failures (a guarded
//! write cannot apply twice); every call is timed into the metrics.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use backon::{ExponentialBuilder, Retryable};
use k8s_openapi::api::core::v1::{Node, Pod};
use kube::api::{DeleteParams, EvictParams, ListParams, Patch, PatchParams, Preconditions};
use kube::{Api, Client};
use serde_json::{Map, Value, json};

use super::error::{ActuatorError, is_transient};
use crate::telemetry::{KubeResource, KubeVerb, Metrics};
use heatscaler_core::planner::protocol::{
    CA_REMOVAL_TAINT, DepartureMarks, EXCLUDE_FROM_LB_LABEL, NodePatch, ca_removal_taint,
};

/// Field manager of heatscaler's writes (server-side field ownership, audit logs).
pub const FIELD_MANAGER: &str = "heatscaler";

#[derive(Clone)]
pub struct KubeOps {
    client: Client,
    metrics: Arc<Metrics>,
    backoff: ExponentialBuilder,
}

/// What one eviction came to.
#[derive(Debug)]
pub enum Eviction {
    Evicted,
    /// 429: a PodDisruptionBudget allows no disruption now: its name when the
    /// API says it, and the API's words.
    Blocked {
        pdb: Option<String>,
        message: String,
    },
    /// 404: the pod is already gone.
    Gone,
    /// 409: a pod of that name with another uid (the old one is gone).
    Replaced,
}

impl KubeOps {
    pub fn new(client: Client, metrics: Arc<Metrics>) -> Self {
        let backoff = ExponentialBuilder::default()
            .with_min_delay(Duration::from_millis(100))
            .with_max_delay(Duration::from_secs(2))
            .with_max_times(4)
            .with_jitter();
        Self { client, metrics, backoff }
    }

    pub fn client(&self) -> &Client {
        &self.client
    }

    pub(super) async fn call<T, F, Fut>(&self, verb: KubeVerb, resource: KubeResource, f: F) -> Result<T, kube::Error>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, kube::Error>>,
    {
        let mut f = f;
        (|| self.metrics.time_kube(verb, resource, f()))
            .retry(self.backoff)
            .when(is_transient)
            .notify(|e, wait| tracing::debug!(error = %e, ?wait, "transient Kubernetes API error; retrying"))
            .await
    }

    /// The node as it is now; `None` if it does not exist.
    pub async fn node(&self, name: &str) -> Result<Option<Node>, ActuatorError> {
        let api = Api::<Node>::all(self.client.clone());
        self.call(KubeVerb::Get, KubeResource::Node, || api.get_opt(name))
            .await
            .map_err(ActuatorError::kube(format!("read node {name}")))
    }

    /// Every node now.
    pub async fn nodes(&self) -> Result<Vec<Node>, ActuatorError> {
        let api = Api::<Node>::all(self.client.clone());
        let params = ListParams::default();
        let list = self
            .call(KubeVerb::List, KubeResource::Node, || api.list(&params))
            .await
            .map_err(ActuatorError::kube("list the nodes"))?;
        Ok(list.items)
    }

    /// Pods bound to the node now (any phase).
    pub async fn pods_on(&self, node: &str) -> Result<Vec<Pod>, ActuatorError> {
        let api = Api::<Pod>::all(self.client.clone());
        let params = ListParams::default().fields(&format!("spec.nodeName={node}"));
        let list = self
            .call(KubeVerb::List, KubeResource::Pod, || api.list(&params))
            .await
            .map_err(ActuatorError::kube(format!("list the pods of node {node}")))?;
        Ok(list.items)
    }

    /// Applies `patch` to `node` (as read) in one request, refused by the API
    /// server (409) if the node changed since it was read.
    pub async fn patch_node(&self, node: &Node, patch: &NodePatch) -> Result<(), ActuatorError> {
        let name = node.metadata.name.as_deref().unwrap_or_default();
        let api = Api::<Node>::all(self.client.clone());
        let body = Patch::Merge(merge_patch(node, patch));
        let params = PatchParams { field_manager: Some(FIELD_MANAGER.into()), ..PatchParams::default() };
        self.call(KubeVerb::Patch, KubeResource::Node, || api.patch(name, &params, &body))
            .await
            .map(drop)
            .map_err(ActuatorError::kube(format!("patch node {name}")))
    }

    /// Deletes the node object read as `node` (same uid and resourceVersion).
    /// `Ok(false)`: it was already gone.
    pub async fn delete_node(&self, node: &Node) -> Result<bool, ActuatorError> {
        let name = node.metadata.name.as_deref().unwrap_or_default();
        let api = Api::<Node>::all(self.client.clone());
        let params = DeleteParams {
            preconditions: Some(Preconditions {
                uid: node.metadata.uid.clone(),
                resource_version: node.metadata.resource_version.clone(),
            }),
            ..DeleteParams::default()
        };
        match self.call(KubeVerb::Delete, KubeResource::Node, || api.delete(name, &params)).await {
            Ok(_) => Ok(true),
            Err(kube::Error::Api(s)) if s.code == 404 => Ok(false),
            Err(e) => Err(ActuatorError::kube(format!("delete node {name}"))(e)),
        }
    }

    /// Evicts one pod through the eviction API (which enforces its
    /// PodDisruptionBudgets), only if it is still the pod with `uid`.
    pub async fn evict(
        &self,
        namespace: &str,
        name: &str,
        uid: &str,
        grace: Duration,
    ) -> Result<Eviction, ActuatorError> {
        let api = Api::<Pod>::namespaced(self.client.clone(), namespace);
        let params = EvictParams {
            delete_options: Some(DeleteParams {
                grace_period_seconds: Some(u32::try_from(grace.as_secs()).unwrap_or(u32::MAX)),
                preconditions: Some(Preconditions { uid: Some(uid.to_string()), resource_version: None }),
                ..DeleteParams::default()
            }),
            ..EvictParams::default()
        };
        // A budget's 429 is an answer, never retried in place; API
        // priority-and-fairness also answers 429 (throttling), and that one is.
        let transient = |e: &kube::Error| is_transient(e) && !matches!(e, kube::Error::Api(s) if is_budget_refusal(s));
        let evict = || self.metrics.time_kube(KubeVerb::Create, KubeResource::PodEviction, api.evict(name, &params));
        let result = evict.retry(self.backoff).when(transient).await;
        match result {
            Ok(_) => Ok(Eviction::Evicted),
            Err(kube::Error::Api(s)) if is_budget_refusal(&s) => {
                let message = blocked_reason(&s);
                Ok(Eviction::Blocked { pdb: budget_name(&message), message })
            }
            Err(kube::Error::Api(s)) if s.code == 404 => Ok(Eviction::Gone),
            Err(kube::Error::Api(s)) if s.code == 409 => Ok(Eviction::Replaced),
            Err(e) => Err(ActuatorError::kube(format!("evict pod {namespace}/{name}"))(e)),
        }
    }
}

/// A 429 from a PodDisruptionBudget, told apart from API priority-and-fairness
/// throttling (also 429 `TooManyRequests`) by what the eviction API adds: a
/// `DisruptionBudget` cause, or its message about the pod's disruption budget.
pub(crate) fn is_budget_refusal(s: &kube::core::Status) -> bool {
    s.code == 429
        && (s.details.as_ref().is_some_and(|d| d.causes.iter().any(|c| c.reason == "DisruptionBudget"))
            || s.message.contains("disruption budget"))
}

/// The budget's own words when the API names it ("The disruption budget web
/// needs 2 healthy pods and has 2 currently"), else the general message.
fn blocked_reason(s: &kube::core::Status) -> String {
    s.details
        .as_ref()
        .and_then(|d| d.causes.iter().find(|c| c.reason == "DisruptionBudget"))
        .map(|c| c.message.clone())
        .filter(|m| !m.is_empty())
        .unwrap_or_else(|| s.message.clone())
}

/// The budget named in the API server's refusal ("The disruption budget NAME ...").
fn budget_name(message: &str) -> Option<String> {
    let rest = message.strip_prefix("The disruption budget ")?;
    rest.split_whitespace().next().map(str::to_string)
}

/// A JSON merge patch carrying `patch` and the resourceVersion read, so the
/// API server applies it only to the node as read. Taints are a list, which a
/// merge patch replaces whole: the new list is the read one with our change.
pub fn merge_patch(node: &Node, patch: &NodePatch) -> Value {
    let mut annotations = Map::new();
    for key in &patch.remove_annotations {
        annotations.insert(key.clone(), Value::Null);
    }
    for (k, v) in &patch.set_annotations {
        annotations.insert(k.clone(), Value::String(v.clone()));
    }
    let mut metadata = json!({ "resourceVersion": node.metadata.resource_version });
    if !annotations.is_empty() {
        metadata["annotations"] = Value::Object(annotations);
    }
    if let Some(marks) = patch.departure {
        let labels = node.metadata.labels.clone().unwrap_or_default();
        if let Some(change) = marks.label_change(&labels) {
            metadata["labels"] = json!({ EXCLUDE_FROM_LB_LABEL: change });
        }
    }
    let mut spec = Map::new();
    if patch.add_taint.is_some() || !patch.remove_taints.is_empty() || patch.departure.is_some() {
        let mut taints = node.spec.as_ref().and_then(|s| s.taints.clone()).unwrap_or_default();
        taints.retain(|t| !patch.remove_taints.contains(&t.key));
        if let Some(t) = &patch.add_taint {
            taints.retain(|x| x.key != t.key);
            taints.push(to_k8s_taint(t));
        }
        if let Some(marks) = patch.departure {
            taints.retain(|t| t.key != CA_REMOVAL_TAINT);
            if let DepartureMarks::Set(started) = marks {
                taints.push(to_k8s_taint(&ca_removal_taint(started)));
            }
        }
        spec.insert("taints".into(), serde_json::to_value(taints).expect("taints serialise"));
    }
    if let Some(u) = patch.unschedulable {
        spec.insert("unschedulable".into(), Value::Bool(u));
    }
    let mut body = json!({ "metadata": metadata });
    if !spec.is_empty() {
        body["spec"] = Value::Object(spec);
    }
    body
}

fn to_k8s_taint(t: &heatscaler_core::model::Taint) -> k8s_openapi::api::core::v1::Taint {
    k8s_openapi::api::core::v1::Taint {
        key: t.key.clone(),
        value: t.value.clone(),
        effect: effect_name(t.effect).into(),
        time_added: None,
    }
}

fn effect_name(e: heatscaler_core::model::TaintEffect) -> &'static str {
    use heatscaler_core::model::TaintEffect;
    match e {
        TaintEffect::NoSchedule => "NoSchedule",
        TaintEffect::PreferNoSchedule => "PreferNoSchedule",
        TaintEffect::NoExecute => "NoExecute",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use heatscaler_core::model::{Taint, TaintEffect};

    #[test]
    fn the_patch_keeps_other_taints_and_carries_the_version_read() {
        let node: Node = serde_json::from_value(json!({
            "metadata": {"name": "m", "resourceVersion": "42", "annotations": {"a": "1"}},
            "spec": {"taints": [{"key": "dedicated", "value": "db", "effect": "NoSchedule"}]},
        }))
        .unwrap();
        let start = NodePatch {
            set_annotations: [("heatscaler.io/removal-phase".to_string(), "draining".to_string())].into(),
            add_taint: Some(Taint {
                key: "heatscaler.io/to-be-removed".into(),
                value: Some("1".into()),
                effect: TaintEffect::NoSchedule,
            }),
            unschedulable: Some(true),
            ..NodePatch::default()
        };
        assert_eq!(
            merge_patch(&node, &start),
            json!({
                "metadata": {"resourceVersion": "42", "annotations": {"heatscaler.io/removal-phase": "draining"}},
                "spec": {"unschedulable": true, "taints": [
                    {"key": "dedicated", "value": "db", "effect": "NoSchedule"},
                    {"key": "heatscaler.io/to-be-removed", "value": "1", "effect": "NoSchedule"},
                ]},
            })
        );
        let back = NodePatch {
            remove_annotations: vec!["heatscaler.io/removal-phase".into()],
            remove_taints: vec!["dedicated".into()],
            ..NodePatch::default()
        };
        assert_eq!(
            merge_patch(&node, &back),
            json!({
                "metadata": {"resourceVersion": "42", "annotations": {"heatscaler.io/removal-phase": null}},
                "spec": {"taints": []},
            })
        );
    }

    #[test]
    fn departure_marks_add_and_clear_cluster_autoscalers_taint_and_only_our_label() {
        let started: heatscaler_core::model::Timestamp = "2026-01-01T00:00:00Z".parse().unwrap();
        let set = NodePatch { departure: Some(DepartureMarks::Set(started)), ..NodePatch::default() };
        let clear = NodePatch { departure: Some(DepartureMarks::Clear), ..NodePatch::default() };
        let bare: Node = serde_json::from_value(json!({"metadata": {"name": "m", "resourceVersion": "7"}})).unwrap();
        assert_eq!(
            merge_patch(&bare, &set),
            json!({
                "metadata": {"resourceVersion": "7", "labels": {EXCLUDE_FROM_LB_LABEL: "heatscaler-removal"}},
                "spec": {"taints": [{"key": "ToBeDeletedByClusterAutoscaler", "value": "1767225600", "effect": "NoSchedule"}]},
            })
        );
        let marked: Node = serde_json::from_value(json!({
            "metadata": {"name": "m", "resourceVersion": "8", "labels": {EXCLUDE_FROM_LB_LABEL: "heatscaler-removal"}},
            "spec": {"taints": [{"key": "ToBeDeletedByClusterAutoscaler", "value": "1767225600", "effect": "NoSchedule"}]},
        }))
        .unwrap();
        assert_eq!(
            merge_patch(&marked, &clear),
            json!({"metadata": {"resourceVersion": "8", "labels": {EXCLUDE_FROM_LB_LABEL: null}}, "spec": {"taints": []}})
        );
        // An operator's label: neither overwritten nor removed.
        let operators: Node = serde_json::from_value(json!({
            "metadata": {"name": "m", "resourceVersion": "9", "labels": {EXCLUDE_FROM_LB_LABEL: "true"}},
        }))
        .unwrap();
        assert_eq!(merge_patch(&operators, &set)["metadata"].get("labels"), None);
        assert_eq!(merge_patch(&operators, &clear)["metadata"].get("labels"), None);
    }
}
