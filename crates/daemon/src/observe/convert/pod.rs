//! Pods: what the scheduler reserves for them, where they may go, and what a
//! drain must know about them.

use std::sync::Arc;

use k8s_openapi::api::core::v1 as k8s;

use super::selectors::{label_selector, node_selector_term};
use super::{resources, time};
use crate::usage::last_oom_kill;
use heatscaler_core::model::{
    Container, HostPort, LabelSelector, OwnerRef, Placement, Pod, PodAffinityTerm, PodPhase, PodTemplate, Protocol,
    QosClass, Resources, SelectorOperator, SelectorRequirement, Timestamp, Toleration, TolerationOperator,
    TopologySpread, WeightedPodAffinityTerm, WhenUnsatisfiable, WorkloadRef,
};

/// cluster-autoscaler's pod annotation: `"true"` lets a drain move a pod it
/// would otherwise keep, `"false"` keeps its node.
pub const SAFE_TO_EVICT: &str = "cluster-autoscaler.kubernetes.io/safe-to-evict";
/// cluster-autoscaler's pod annotation naming local volumes a drain may discard.
pub const SAFE_TO_EVICT_LOCAL_VOLUMES: &str = "cluster-autoscaler.kubernetes.io/safe-to-evict-local-volumes";
/// The kubelet's annotation on the API mirror of a static pod.
pub const MIRROR: &str = "kubernetes.io/config.mirror";
/// The pod annotations [`pod`] reads: the pod watch keeps these (and
/// `vpa::upstream`'s) and drops the others while decoding.
pub fn annotation_kept(key: &str) -> bool {
    key == SAFE_TO_EVICT || key == SAFE_TO_EVICT_LOCAL_VOLUMES || key == MIRROR
}

/// The compact pod. `workload` is left `None` for pods owned by a ReplicaSet:
/// resolving one to its Deployment needs the ReplicaSet, which the store has
/// (see [`workload`]). `placement`, `labels`, `owner` and the workload's
/// names are fresh; the store swaps them for the ones the pod's siblings share.
pub fn pod(p: &k8s::Pod) -> Pod {
    let meta = &p.metadata;
    let empty_spec = k8s::PodSpec::default();
    let spec = p.spec.as_ref().unwrap_or(&empty_spec);
    let status = p.status.as_ref();
    let annotations = meta.annotations.as_ref();
    let annotation = |k: &str| annotations.and_then(|a| a.get(k)).map(String::as_str);
    let owner = owner(meta.owner_references.as_deref().unwrap_or_default());
    let namespace = meta.namespace.as_deref().unwrap_or_default();
    let workload = owner.as_ref().and_then(|o| workload(o, namespace, None));
    let conditions = status.and_then(|s| s.conditions.as_deref()).unwrap_or_default();
    Pod {
        uid: meta.uid.as_deref().unwrap_or_default().into(),
        name: meta.name.as_deref().unwrap_or_default().into(),
        namespace: namespace.into(),
        labels: Arc::new(meta.labels.clone().unwrap_or_default()),
        owner: owner.map(Arc::new),
        workload,
        node_name: spec.node_name.clone().filter(|n| !n.is_empty()),
        phase: phase(status.and_then(|s| s.phase.as_deref())),
        requests: scheduling_requests(spec, status, resize_infeasible(status)),
        containers: containers(spec, status),
        init_qos: init_qos(spec),
        placement: Arc::new(placement(spec, meta.namespace.as_ref(), meta.labels.as_ref())),
        priority: spec.priority.unwrap_or(0),
        created: time(meta.creation_timestamp.as_ref()).unwrap_or(Timestamp::UNIX_EPOCH),
        unschedulable_since: unschedulable_since(conditions),
        nominated_node: status.and_then(|s| s.nominated_node_name.clone()).filter(|n| !n.is_empty()),
        deletion: time(meta.deletion_timestamp.as_ref()),
        safe_to_evict: match annotation(SAFE_TO_EVICT) {
            Some("true") => Some(true),
            Some("false") => Some(false),
            _ => None,
        },
        local_storage: has_local_storage(spec, annotation(SAFE_TO_EVICT_LOCAL_VOLUMES)),
        mirror: annotation(MIRROR).is_some(),
        // The conditions carry their transition time; `now` only stands in
        // for one a kubelet left out.
        resize: crate::vpa::resize_state(p, Timestamp::now()),
    }
}

/// The controller owner reference (`controller: true`), which is what a
/// drain and a workload are about; other owners do not manage the pod.
pub fn owner(refs: &[k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference]) -> Option<OwnerRef> {
    refs.iter().find(|r| r.controller == Some(true)).map(|r| OwnerRef {
        kind: r.kind.clone(),
        name: r.name.clone(),
        uid: r.uid.clone(),
    })
}

/// The workload of a pod with this controller. For a ReplicaSet owner,
/// `replica_set_owner` is what the store knows of that ReplicaSet: `None`
/// when it has not been seen (then the workload is unknown for now),
/// `Some(None)` for a ReplicaSet no Deployment controls, `Some(Some(d))` for
/// one that Deployment `d` controls.
pub fn workload(owner: &OwnerRef, namespace: &str, replica_set_owner: Option<Option<&str>>) -> Option<WorkloadRef> {
    let of = |kind: &str, name: &str| WorkloadRef { kind: kind.into(), namespace: namespace.into(), name: name.into() };
    match owner.kind.as_str() {
        "ReplicaSet" => match replica_set_owner? {
            Some(deployment) => Some(of("Deployment", deployment)),
            None => Some(of("ReplicaSet", &owner.name)),
        },
        kind => Some(of(kind, &owner.name)),
    }
}

/// A pod a drain must move: not terminal, not a DaemonSet or mirror pod
/// (terminating pods count: the drain waits for them). The planner's own
/// definition, applied by the actuator to freshly listed pods.
pub fn is_workload_pod(pod: &Pod) -> bool {
    !pod.is_terminal() && !pod.is_daemonset() && !pod.mirror
}

fn phase(phase: Option<&str>) -> PodPhase {
    match phase {
        Some("Pending") | None => PodPhase::Pending,
        Some("Running") => PodPhase::Running,
        Some("Succeeded") => PodPhase::Succeeded,
        Some("Failed") => PodPhase::Failed,
        Some(_) => PodPhase::Unknown,
    }
}

/// What the scheduler reserves, as kube-scheduler computes it
/// (`resourcehelper.PodRequests`): the sum of the app containers and of the
/// restartable init containers (sidecars), or the largest one-shot init
/// container plus the sidecars started before it, whichever is larger; pod
/// overhead on top; pod-level `spec.resources` replaces the container sum for
/// the resources it names. While a resize is pending the kubelet keeps the
/// old allocation, so each container counts the larger of its spec and what
/// status reports applied; once the kubelet calls the resize `Infeasible`
/// (`infeasible`), only what status reports applied — kube-scheduler drops the
/// spec of a growth the kubelet refused (`IsPodResizeInfeasible`).
fn scheduling_requests(spec: &k8s::PodSpec, status: Option<&k8s::PodStatus>, infeasible: bool) -> Resources {
    let applied = |name: &str, statuses: Option<&Vec<k8s::ContainerStatus>>| -> Option<Resources> {
        let s = statuses?.iter().find(|s| s.name == name)?;
        Some(resources(s.resources.as_ref()?.requests.as_ref()))
    };
    let container_requests = |c: &k8s::Container, statuses: Option<&Vec<k8s::ContainerStatus>>| {
        let desired = resources(c.resources.as_ref().and_then(|r| r.requests.as_ref()));
        match applied(&c.name, statuses) {
            Some(actual) if infeasible => actual,
            Some(actual) => desired.max(&actual),
            None => desired,
        }
    };
    let mut sum = Resources::default();
    for c in &spec.containers {
        sum += &container_requests(c, status.and_then(|s| s.container_statuses.as_ref()));
    }
    let mut sidecars = Resources::default();
    let mut init_peak = Resources::default();
    for c in spec.init_containers.iter().flatten() {
        let r = container_requests(c, status.and_then(|s| s.init_container_statuses.as_ref()));
        if c.restart_policy.as_deref() == Some("Always") {
            sum += &r;
            sidecars += &r;
            init_peak = init_peak.max(&sidecars);
        } else {
            let mut during = sidecars.clone();
            during += &r;
            init_peak = init_peak.max(&during);
        }
    }
    if let Some(pod_level) = spec.resources.as_ref().and_then(|r| r.requests.as_ref()) {
        let amounts = resources(Some(pod_level));
        for name in pod_level.keys() {
            sum.set(name, amounts.get(name));
        }
    }
    let mut total = sum.max(&init_peak);
    total += &resources(spec.overhead.as_ref());
    total.pods = 1;
    total
}

/// The kubelet's `PodResizePending` condition has reason `Infeasible`, read
/// as kube-scheduler's `IsPodResizeInfeasible` reads it (the first such
/// condition, its reason alone).
fn resize_infeasible(status: Option<&k8s::PodStatus>) -> bool {
    let conditions = status.and_then(|s| s.conditions.as_deref()).unwrap_or_default();
    conditions.iter().find(|c| c.type_ == crate::vpa::pod::POD_RESIZE_PENDING).and_then(|c| c.reason.as_deref())
        == Some(crate::vpa::pod::REASON_INFEASIBLE)
}

/// The QoS class of the init containers alone (`None`: there are none),
/// which Kubernetes counts in the pod's class.
fn init_qos(spec: &k8s::PodSpec) -> Option<QosClass> {
    let init: Vec<(Resources, Resources)> = spec
        .init_containers
        .iter()
        .flatten()
        .map(|c| {
            let r = c.resources.as_ref();
            (resources(r.and_then(|r| r.requests.as_ref())), resources(r.and_then(|r| r.limits.as_ref())))
        })
        .collect();
    (!init.is_empty()).then(|| QosClass::of(init.iter().map(|(r, l)| (r, l))))
}

/// What a controller creates each of its pods with, from its pod template's
/// spec: the containers as [`pod`] reads them, and what the scheduler
/// reserves for a pod made from it (nothing applied yet, no overhead: the
/// RuntimeClass adds that at creation).
pub fn template(spec: &k8s::PodSpec) -> PodTemplate {
    PodTemplate { requests: scheduling_requests(spec, None, false), containers: containers(spec, None) }
}

fn containers(spec: &k8s::PodSpec, status: Option<&k8s::PodStatus>) -> Vec<Container> {
    let statuses = status.and_then(|s| s.container_statuses.as_deref()).unwrap_or_default();
    spec.containers
        .iter()
        .map(|c| {
            let st = statuses.iter().find(|s| s.name == c.name);
            let last_oom = st.and_then(last_oom_kill);
            Container {
                name: c.name.clone(),
                requests: resources(c.resources.as_ref().and_then(|r| r.requests.as_ref())),
                limits: resources(c.resources.as_ref().and_then(|r| r.limits.as_ref())),
                allocated: st.and_then(crate::vpa::allocated_requests),
                // Status keeps only the last termination: one kill is what can be known.
                oom_kills: u32::from(last_oom.is_some()),
                last_oom,
            }
        })
        .collect()
}

type Labels = std::collections::BTreeMap<String, String>;

fn placement(spec: &k8s::PodSpec, namespace: Option<&String>, labels: Option<&Labels>) -> Placement {
    let empty = Labels::new();
    let labels = labels.unwrap_or(&empty);
    let namespace = namespace.map_or("", String::as_str);
    let affinity = spec.affinity.as_ref();
    let required_node_affinity = affinity
        .and_then(|a| a.node_affinity.as_ref())
        .and_then(|n| n.required_during_scheduling_ignored_during_execution.as_ref())
        .map(|s| s.node_selector_terms.iter().map(node_selector_term).collect())
        .unwrap_or_default();
    let pod_affinity = affinity.and_then(|a| a.pod_affinity.as_ref());
    let pod_anti_affinity = affinity.and_then(|a| a.pod_anti_affinity.as_ref());
    let required = |terms: Option<&Vec<k8s::PodAffinityTerm>>| -> Vec<PodAffinityTerm> {
        terms.into_iter().flatten().filter_map(|t| affinity_term(t, namespace, labels)).collect()
    };
    let preferred = |terms: Option<&Vec<k8s::WeightedPodAffinityTerm>>| -> Vec<WeightedPodAffinityTerm> {
        let weighted = |w: &k8s::WeightedPodAffinityTerm| {
            let term = affinity_term(&w.pod_affinity_term, namespace, labels)?;
            Some(WeightedPodAffinityTerm { weight: w.weight, term })
        };
        terms.into_iter().flatten().filter_map(weighted).collect()
    };
    let spread = spec
        .topology_spread_constraints
        .iter()
        .flatten()
        .filter_map(|c| {
            let when_unsatisfiable = match c.when_unsatisfiable.as_str() {
                "DoNotSchedule" => WhenUnsatisfiable::DoNotSchedule,
                "ScheduleAnyway" => WhenUnsatisfiable::ScheduleAnyway,
                _ => return None,
            };
            // No selector: the constraint counts no pod (kube-scheduler's reading).
            let mut selector = label_selector(c.label_selector.as_ref()?);
            merge_label_keys(&mut selector, c.match_label_keys.as_deref(), SelectorOperator::In, labels);
            Some(TopologySpread {
                selector,
                topology_key: c.topology_key.clone(),
                max_skew: u32::try_from(c.max_skew).ok()?.max(1),
                min_domains: c.min_domains.and_then(|d| u32::try_from(d).ok()).unwrap_or(1),
                when_unsatisfiable,
            })
        })
        .collect();
    let mut host_ports: Vec<HostPort> = spec
        .containers
        .iter()
        .flat_map(|c| c.ports.iter().flatten())
        .filter_map(|p| {
            let port = u16::try_from(p.host_port?).ok().filter(|p| *p > 0)?;
            let protocol = match p.protocol.as_deref() {
                Some("UDP") => Protocol::Udp,
                Some("SCTP") => Protocol::Sctp,
                _ => Protocol::Tcp,
            };
            Some(HostPort { port, protocol })
        })
        .collect();
    host_ports.sort_by_key(|h| (h.port, h.protocol as u8));
    host_ports.dedup();
    Placement {
        node_selector: spec.node_selector.clone().unwrap_or_default(),
        required_node_affinity,
        tolerations: spec.tolerations.iter().flatten().map(toleration).collect(),
        pod_affinity: required(
            pod_affinity.and_then(|a| a.required_during_scheduling_ignored_during_execution.as_ref()),
        ),
        pod_anti_affinity: required(
            pod_anti_affinity.and_then(|a| a.required_during_scheduling_ignored_during_execution.as_ref()),
        ),
        preferred_pod_affinity: preferred(
            pod_affinity.and_then(|a| a.preferred_during_scheduling_ignored_during_execution.as_ref()),
        ),
        preferred_pod_anti_affinity: preferred(
            pod_anti_affinity.and_then(|a| a.preferred_during_scheduling_ignored_during_execution.as_ref()),
        ),
        spread,
        host_ports,
        // The namespace's labels are not the pod's: the store fills them in
        // from the Namespace watch (observe::store).
        namespace_labels: Labels::new(),
    }
}

/// A pod affinity term as kube-scheduler reads it: no label selector selects
/// no pod (`None`); namespaces default to the pod's own; an empty namespace
/// selector covers every namespace; `matchLabelKeys`/`mismatchLabelKeys`
/// become `In`/`NotIn` the pod's own values (what the API server merges in).
fn affinity_term(t: &k8s::PodAffinityTerm, namespace: &str, labels: &Labels) -> Option<PodAffinityTerm> {
    let mut selector = label_selector(t.label_selector.as_ref()?);
    merge_label_keys(&mut selector, t.match_label_keys.as_deref(), SelectorOperator::In, labels);
    merge_label_keys(&mut selector, t.mismatch_label_keys.as_deref(), SelectorOperator::NotIn, labels);
    let mut namespaces = t.namespaces.clone().unwrap_or_default();
    let namespace_selector = t.namespace_selector.as_ref().map(label_selector);
    if namespaces.is_empty() && namespace_selector.is_none() {
        namespaces.push(namespace.to_string());
    }
    Some(PodAffinityTerm { selector, topology_key: t.topology_key.clone(), namespaces, namespace_selector })
}

/// Keys missing from the pod's labels are ignored, as the API documents.
fn merge_label_keys(
    selector: &mut LabelSelector,
    keys: Option<&[String]>,
    operator: SelectorOperator,
    labels: &Labels,
) {
    for key in keys.unwrap_or_default() {
        if let Some(value) = labels.get(key) {
            selector.match_expressions.push(SelectorRequirement {
                key: key.clone(),
                operator,
                values: vec![value.clone()],
            });
        }
    }
}

fn toleration(t: &k8s::Toleration) -> Toleration {
    use heatscaler_core::model::TaintEffect;
    Toleration {
        key: t.key.clone().filter(|k| !k.is_empty()),
        operator: if t.operator.as_deref() == Some("Exists") {
            TolerationOperator::Exists
        } else {
            TolerationOperator::Equal
        },
        value: t.value.clone().filter(|v| !v.is_empty()),
        effect: match t.effect.as_deref() {
            Some("NoSchedule") => Some(TaintEffect::NoSchedule),
            Some("PreferNoSchedule") => Some(TaintEffect::PreferNoSchedule),
            Some("NoExecute") => Some(TaintEffect::NoExecute),
            _ => None,
        },
    }
}

/// Since when the scheduler has found no node for the pod: the
/// `PodScheduled=False, reason=Unschedulable` condition's transition time.
fn unschedulable_since(conditions: &[k8s::PodCondition]) -> Option<Timestamp> {
    let c = conditions.iter().find(|c| c.type_ == "PodScheduled")?;
    if c.status == "False" && c.reason.as_deref() == Some("Unschedulable") {
        Some(time(c.last_transition_time.as_ref()).unwrap_or(Timestamp::UNIX_EPOCH))
    } else {
        None
    }
}

/// Local storage as cluster-autoscaler counts it: `hostPath`, and `emptyDir`
/// not backed by memory, unless named in `safe-to-evict-local-volumes`.
fn has_local_storage(spec: &k8s::PodSpec, safe_volumes: Option<&str>) -> bool {
    let safe: Vec<&str> = safe_volumes.unwrap_or("").split(',').map(str::trim).filter(|s| !s.is_empty()).collect();
    spec.volumes.iter().flatten().any(|v| {
        let local =
            v.host_path.is_some() || v.empty_dir.as_ref().is_some_and(|e| e.medium.as_deref() != Some("Memory"));
        local && !safe.contains(&v.name.as_str())
    })
}
