//! The pod-level calls the daemon makes, through kube-rs. Each does one
//! thing once and reports what happened; retrying is the next planner pass's
//! job (the executor contract of `planner::action`), so none of them loops.
//!
//! - [`resize_pod`]: executes `ResizePod` through the pods `resize` subresource;
//! - [`recreate_pod`]: executes `RecreatePod` through the eviction API;
//! - [`sync_status`] / [`write_status`]: a VPA object's status subresource;
//! - [`VpaObjects`]: VPA watch events → the objects heatscaler handles → the
//!   planner's model.

use std::collections::BTreeMap;

use jiff::Timestamp;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, EvictParams, Patch, PatchParams};
use kube::runtime::watcher;
use serde_json::{Value, json};

use heatscaler_core::model::{ResizeState, VerticalScaling, WorkloadRef};
use heatscaler_core::planner::action::{ContainerResize, RecreatePod, ResizePod};

use super::api::VerticalPodAutoscaler;
use super::convert::{ConfigUnsupported, handled_by, to_model};
use super::status::{StatusUpdate, status_patch};

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("{what}: {source}")]
    Api {
        what: String,
        #[source]
        source: kube::Error,
    },
    #[error("{what}: pod has no container {container}")]
    NoContainer { what: String, container: String },
}

/// What became of a `ResizePod`.
#[derive(Clone, Debug, PartialEq)]
pub enum ResizeOutcome {
    /// Sent; the kubelet's answer so far (usually `None` until it looks).
    Requested { state: ResizeState },
    /// The spec already asks for these resources: nothing sent.
    AlreadyRequested,
    /// The pod is gone, or a different pod (uid) now has its name.
    Gone,
    /// The API server refused it as invalid (422), e.g. "Pod QOS Class may
    /// not change as a result of resizing": the same request would be
    /// refused again.
    Refused { message: String },
}

/// Executes a `ResizePod`: re-reads the pod, and unless it is gone, replaced
/// or already asks for these resources, sends one JSON patch to
/// `pods/<name>/resize` that first tests `metadata.uid` (and each container's
/// name at its index) and then sets each container's `resources` — the
/// current ones with CPU and memory requests (and the non-zero limits)
/// replaced, so other resources are kept.
pub async fn resize_pod(pods: &Api<Pod>, action: &ResizePod, now: Timestamp) -> Result<ResizeOutcome, ClientError> {
    let what = format!("resizing pod {}", action.pod);
    let api_error = |source| ClientError::Api { what: what.clone(), source };
    let Some(pod) = pods.get_opt(&action.pod.name).await.map_err(api_error)? else {
        return Ok(ResizeOutcome::Gone);
    };
    if pod.metadata.uid.as_deref() != Some(action.uid.as_str()) {
        return Ok(ResizeOutcome::Gone);
    }
    let containers = pod.spec.as_ref().map(|s| s.containers.as_slice()).unwrap_or_default();
    let mut ops = vec![json!({"op": "test", "path": "/metadata/uid", "value": action.uid})];
    let mut changes = false;
    for r in &action.containers {
        let Some(i) = containers.iter().position(|c| c.name == r.container) else {
            return Err(ClientError::NoContainer { what, container: r.container.to_string() });
        };
        let current = serde_json::to_value(&containers[i].resources).unwrap_or(Value::Null);
        let wanted = resized(&current, r);
        changes |= wanted != current;
        ops.push(json!({"op": "test", "path": format!("/spec/containers/{i}/name"), "value": r.container}));
        ops.push(json!({"op": "add", "path": format!("/spec/containers/{i}/resources"), "value": wanted}));
    }
    if !changes {
        return Ok(ResizeOutcome::AlreadyRequested);
    }
    let patch: json_patch::Patch = serde_json::from_value(Value::Array(ops)).expect("well-formed JSON patch");
    match pods.patch_subresource("resize", &action.pod.name, &PatchParams::default(), &Patch::Json::<()>(patch)).await {
        Ok(pod) => Ok(ResizeOutcome::Requested { state: super::pod::resize_state(&pod, now) }),
        Err(kube::Error::Api(e)) if e.code == 404 => Ok(ResizeOutcome::Gone),
        Err(kube::Error::Api(e)) if e.code == 422 => Ok(ResizeOutcome::Refused { message: e.message }),
        Err(source) => Err(api_error(source)),
    }
}

/// A container's `resources` with the resize applied.
pub(crate) fn resized(current: &Value, r: &ContainerResize) -> Value {
    let mut resources = if current.is_object() { current.clone() } else { json!({}) };
    let set = |section: &mut Value, name: &str, text: String| {
        if !section.is_object() {
            *section = json!({});
        }
        section[name] = Value::String(text);
    };
    let fmt_cpu = heatscaler_core::model::quantity::format_cpu_milli;
    let fmt_mem = heatscaler_core::model::quantity::format_bytes;
    set(&mut resources["requests"], "cpu", fmt_cpu(r.requests.cpu_milli));
    set(&mut resources["requests"], "memory", fmt_mem(r.requests.memory));
    if r.limits.cpu_milli > 0 {
        set(&mut resources["limits"], "cpu", fmt_cpu(r.limits.cpu_milli));
    }
    if r.limits.memory > 0 {
        set(&mut resources["limits"], "memory", fmt_mem(r.limits.memory));
    }
    normalise(resources)
}

/// Quantities as the API server writes them back, so an unchanged request
/// compares equal (`"1"` vs `"1000m"`).
fn normalise(mut resources: Value) -> Value {
    for section in ["requests", "limits"] {
        if let Some(map) = resources[section].as_object_mut() {
            for (name, q) in map.iter_mut() {
                let Some(text) = q.as_str() else { continue };
                let formatted = match name.as_str() {
                    "cpu" => heatscaler_core::model::quantity::parse_milli(text)
                        .map(heatscaler_core::model::quantity::format_cpu_milli),
                    "memory" => heatscaler_core::model::quantity::parse_units(text)
                        .map(heatscaler_core::model::quantity::format_bytes),
                    _ => continue,
                };
                if let Ok(f) = formatted {
                    *q = Value::String(f);
                }
            }
        }
    }
    resources
}

/// What became of a `RecreatePod`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum EvictOutcome {
    Evicted,
    /// `429`: a PodDisruptionBudget allows no disruption now.
    Refused,
    /// `404`, or a different pod (uid) now has its name.
    Gone,
}

/// Executes a `RecreatePod` through the eviction API, with
/// `preconditions.uid` so a same-named successor is never evicted.
pub async fn recreate_pod(pods: &Api<Pod>, action: &RecreatePod) -> Result<EvictOutcome, ClientError> {
    let mut params = EvictParams::default();
    params.delete_options.get_or_insert_with(Default::default).preconditions =
        Some(kube::api::Preconditions { uid: Some(action.uid.to_string()), resource_version: None });
    match pods.evict(&action.pod.name, &params).await {
        Ok(_) => Ok(EvictOutcome::Evicted),
        // A throttling 429 (priority-and-fairness) is an error, retried next pass.
        Err(kube::Error::Api(e)) if crate::act::is_budget_refusal(&e) => Ok(EvictOutcome::Refused),
        // 409: the uid precondition failed — another pod has the name now.
        Err(kube::Error::Api(e)) if e.code == 404 || e.code == 409 => Ok(EvictOutcome::Gone),
        Err(source) => Err(ClientError::Api { what: format!("evicting pod {}", action.pod), source }),
    }
}

/// Writes a status merge patch (from [`status_patch`]) to a VPA object's
/// `status` subresource.
pub async fn write_status(
    api: &Api<VerticalPodAutoscaler>,
    name: &str,
    patch: &Value,
) -> Result<VerticalPodAutoscaler, ClientError> {
    api.patch_status(name, &PatchParams::default(), &Patch::Merge(patch)).await.map_err(|source| ClientError::Api {
        what: format!("writing the status of VPA {}/{name}", api.namespace().unwrap_or_default()),
        source,
    })
}

/// Brings a VPA object's status to what `update` says; `false` when it
/// already did (no request made).
pub async fn sync_status(
    api: &Api<VerticalPodAutoscaler>,
    vpa: &VerticalPodAutoscaler,
    update: &StatusUpdate<'_>,
    now: Timestamp,
) -> Result<bool, ClientError> {
    let Some(patch) = status_patch(vpa.status.as_ref(), update, now) else { return Ok(false) };
    write_status(api, vpa.metadata.name.as_deref().unwrap_or_default(), &patch).await?;
    Ok(true)
}

/// The VPA objects a watch has delivered, by namespace and name. Feed it every
/// `watcher::Event`; a relist (`Init` … `InitDone`) replaces the set
/// atomically, so objects deleted while the watch was down disappear.
#[derive(Clone, Debug, Default)]
pub struct VpaObjects {
    objects: BTreeMap<(String, String), VerticalPodAutoscaler>,
    relisting: Option<BTreeMap<(String, String), VerticalPodAutoscaler>>,
    synced: bool,
}

/// One object heatscaler handles, and what it means to the planner (or why
/// it cannot be acted on: its `ConfigUnsupported` condition).
#[derive(Clone, Debug)]
pub struct Handled<'a> {
    pub object: &'a VerticalPodAutoscaler,
    pub model: Result<VerticalScaling, ConfigUnsupported>,
}

impl VpaObjects {
    pub fn apply(&mut self, event: watcher::Event<VerticalPodAutoscaler>) {
        let key = |v: &VerticalPodAutoscaler| {
            (v.metadata.namespace.clone().unwrap_or_default(), v.metadata.name.clone().unwrap_or_default())
        };
        match event {
            watcher::Event::Init => self.relisting = Some(BTreeMap::new()),
            watcher::Event::InitApply(v) => {
                self.relisting.get_or_insert_with(BTreeMap::new).insert(key(&v), v);
            }
            watcher::Event::InitDone => {
                if let Some(all) = self.relisting.take() {
                    self.objects = all;
                }
                self.synced = true;
            }
            watcher::Event::Apply(v) => {
                self.objects.insert(key(&v), v);
            }
            watcher::Event::Delete(v) => {
                self.objects.remove(&key(&v));
            }
        }
    }

    pub fn len(&self) -> usize {
        self.objects.len()
    }

    /// Whether a first list has completed (before it, absence means nothing).
    pub fn synced(&self) -> bool {
        self.synced
    }

    pub fn is_empty(&self) -> bool {
        self.objects.is_empty()
    }

    pub fn get(&self, namespace: &str, name: &str) -> Option<&VerticalPodAutoscaler> {
        self.objects.get(&(namespace.to_string(), name.to_string()))
    }

    /// The handled object whose `targetRef` is `workload`, as the planner
    /// sees it with the recommendation its status publishes (what the leader
    /// wrote: every replica reads the same). Only the workload's namespace is
    /// looked at, and only its objects converted: the admission webhook asks
    /// this for every pod created. Several objects for one workload: the
    /// first by name.
    pub fn handled_for(
        &self,
        recommender_name: &str,
        claim_unnamed: bool,
        workload: &WorkloadRef,
    ) -> Option<Result<VerticalScaling, ConfigUnsupported>> {
        let namespace = workload.namespace.to_string();
        self.objects
            .range((namespace.clone(), String::new())..)
            .take_while(|((ns, _), _)| *ns == namespace)
            .map(|(_, v)| v)
            .filter(|v| handled_by(v, recommender_name, claim_unnamed))
            .find(|v| v.spec.target_ref.as_ref().is_some_and(|t| t.kind == *workload.kind && t.name == *workload.name))
            .map(|object| {
                let mut model = to_model(object, None)?;
                model.recommendations = super::convert::published_recommendations(object)?;
                Ok(model)
            })
    }

    /// The objects heatscaler handles (`pod-resize.recommender-name`,
    /// `claim-unnamed-vpas`), each converted for the planner. `replicas`
    /// gives a workload's desired replica count when the caller knows it.
    pub fn handled(
        &self,
        recommender_name: &str,
        claim_unnamed: bool,
        replicas: impl Fn(&WorkloadRef) -> Option<u32>,
    ) -> Vec<Handled<'_>> {
        self.objects
            .values()
            .filter(|v| handled_by(v, recommender_name, claim_unnamed))
            .map(|object| {
                let model = to_model(object, None).map(|mut m| {
                    m.replicas = replicas(&m.workload);
                    m
                });
                Handled { object, model }
            })
            .collect()
    }
}
