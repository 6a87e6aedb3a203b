use k8s_openapi::api::core::v1 as k8s;
use serde_json::json;

use super::*;
use crate::observe::slim;
use heatscaler_core::model::{
    NodeSelectorOperator, OwnerRef, PodPhase, Protocol, ResizeState, Resources, SelectorOperator, TaintEffect,
    TolerationOperator, WhenUnsatisfiable,
};

/// The pod as the watch decodes it ([`slim::Pod`]), after checking that it
/// converts exactly as the full API object does: every conversion test here
/// also checks that the slim decode keeps what the conversion reads.
fn k8s_pod(v: serde_json::Value) -> k8s::Pod {
    let full: k8s::Pod = serde_json::from_value(v.clone()).unwrap();
    let slim = serde_json::from_value::<slim::Pod>(v).unwrap().into_api();
    assert_eq!(converted(&slim), converted(&full), "the slim decode converts as the full object");
    slim
}

/// [`pod`] with the resize state read at a fixed time: it stands in `now` for
/// a condition without a transition time, which two calls never share.
fn converted(p: &k8s::Pod) -> heatscaler_core::model::Pod {
    heatscaler_core::model::Pod { resize: crate::vpa::resize_state(p, Timestamp::UNIX_EPOCH), ..pod(p) }
}

/// The node as the watch decodes it ([`slim::Node`]), checked as [`k8s_pod`].
fn k8s_node(v: serde_json::Value) -> k8s::Node {
    let full: k8s::Node = serde_json::from_value(v.clone()).unwrap();
    let slim = serde_json::from_value::<slim::Node>(v).unwrap().into_api();
    assert_eq!(node(&slim), node(&full), "the slim decode converts as the full object");
    slim
}

fn ts(s: &str) -> Timestamp {
    s.parse().unwrap()
}

const GI: i64 = 1 << 30;
const MI: i64 = 1 << 20;

#[test]
fn requests_count_init_containers_sidecars_and_overhead() {
    let p = pod(&k8s_pod(json!({
        "metadata": {"name": "p", "namespace": "ns", "uid": "u1"},
        "spec": {
            "containers": [
                {"name": "app", "resources": {"requests": {"cpu": "500m", "memory": "1Gi"}}},
                {"name": "log", "resources": {"requests": {"cpu": "100m"}}},
            ],
            "initContainers": [
                // Sidecar: runs for the pod's life, so it adds to the sum and
                // to what later init containers run next to.
                {"name": "mesh", "restartPolicy": "Always", "resources": {"requests": {"cpu": "200m", "memory": "64Mi"}}},
                // One-shot: 1 CPU while the sidecar runs: 1.2 CPU peak, more than 0.8 steady.
                {"name": "migrate", "resources": {"requests": {"cpu": "1", "memory": "256Mi"}}},
            ],
            "overhead": {"cpu": "50m", "memory": "10Mi"},
        },
    })));
    assert_eq!(p.requests.cpu_milli, 1200 + 50);
    assert_eq!(p.requests.memory, GI + 64 * MI + 10 * MI);
    assert_eq!(p.requests.pods, 1);
    // Containers keep their own spec requests.
    assert_eq!(p.containers.len(), 2);
    assert_eq!(p.containers[0].requests, Resources::new(500, GI));
}

#[test]
fn a_pending_resize_counts_the_larger_of_spec_and_applied() {
    let p = pod(&k8s_pod(json!({
        "metadata": {"name": "p", "namespace": "ns", "uid": "u1"},
        "spec": {"containers": [{"name": "app", "resources": {"requests": {"cpu": "250m", "memory": "512Mi"}}}]},
        "status": {
            "containerStatuses": [{
                "name": "app", "image": "x", "imageID": "", "ready": true, "restartCount": 1,
                "resources": {"requests": {"cpu": "1", "memory": "256Mi"}},
                "lastState": {"terminated": {"exitCode": 137, "reason": "OOMKilled", "finishedAt": "2026-01-01T10:00:00Z"}},
            }],
            "conditions": [
                {"type": "PodResizeInProgress", "status": "True", "lastTransitionTime": "2026-01-01T09:00:00Z"},
                {"type": "PodResizePending", "status": "True", "reason": "Deferred", "message": "Node didn't have enough resource", "lastTransitionTime": "2026-01-01T09:30:00Z"},
            ],
        },
    })));
    assert_eq!(p.requests.cpu_milli, 1000);
    assert_eq!(p.requests.memory, 512 * MI);
    let c = &p.containers[0];
    assert_eq!(c.allocated, Some(Resources::new(1000, 256 * MI)));
    assert_eq!((c.oom_kills, c.last_oom), (1, Some(ts("2026-01-01T10:00:00Z"))));
    assert_eq!(
        p.resize,
        ResizeState::Deferred { since: ts("2026-01-01T09:30:00Z"), message: "Node didn't have enough resource".into() }
    );
}

/// kube-scheduler (`resourcehelper.PodRequests`, `IsPodResizeInfeasible`)
/// counts a pod whose resize the kubelet called `Infeasible` at what the
/// kubelet applied, not at the spec: the refused growth takes no room.
#[test]
fn an_infeasible_resize_counts_only_what_is_applied() {
    let p = pod(&k8s_pod(json!({
        "metadata": {"name": "p", "namespace": "ns", "uid": "u1"},
        "spec": {"containers": [{"name": "app", "resources": {"requests": {"cpu": "3", "memory": "512Mi"}}}]},
        "status": {
            "containerStatuses": [{
                "name": "app", "image": "x", "imageID": "", "ready": true, "restartCount": 0,
                "resources": {"requests": {"cpu": "1", "memory": "256Mi"}},
            }],
            "conditions": [
                {"type": "PodResizePending", "status": "True", "reason": "Infeasible", "message": "Node didn't have enough capacity", "lastTransitionTime": "2026-01-01T09:30:00Z"},
            ],
        },
    })));
    assert_eq!((p.requests.cpu_milli, p.requests.memory), (1000, 256 * MI));
    assert_eq!(p.containers[0].requests, Resources::new(3000, 512 * MI), "the spec keeps what was asked");
    assert!(matches!(p.resize, ResizeState::Infeasible { .. }));
}

#[test]
fn resize_in_progress_and_deferred() {
    let with = |conditions: serde_json::Value| {
        pod(&k8s_pod(
            json!({"metadata": {"name": "p"}, "spec": {"containers": []}, "status": {"conditions": conditions}}),
        ))
        .resize
    };
    assert_eq!(
        with(json!([{"type": "PodResizeInProgress", "status": "True", "lastTransitionTime": "2026-01-01T09:00:00Z"}])),
        ResizeState::InProgress { since: ts("2026-01-01T09:00:00Z") }
    );
    assert!(matches!(
        with(
            json!([{"type": "PodResizePending", "status": "True", "reason": "Deferred", "lastTransitionTime": "2026-01-01T09:00:00Z"}])
        ),
        ResizeState::Deferred { .. }
    ));
    assert_eq!(with(json!([{"type": "PodResizeInProgress", "status": "False"}])), ResizeState::None);
}

#[test]
fn placement_tolerations_affinity_anti_affinity_and_host_ports() {
    let p = pod(&k8s_pod(json!({
        "metadata": {"name": "p", "namespace": "ns"},
        "spec": {
            "nodeSelector": {"disk": "ssd"},
            "tolerations": [
                {"operator": "Exists"},
                {"key": "gpu", "operator": "Equal", "value": "yes", "effect": "NoSchedule"},
                {"key": "dedicated", "effect": "NoExecute", "tolerationSeconds": 30},
            ],
            "affinity": {
                "nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
                    {"matchExpressions": [{"key": "zone", "operator": "In", "values": ["a", "b"]}]},
                    {"matchFields": [{"key": "metadata.name", "operator": "NotIn", "values": ["n1"]}]},
                ]}},
                "podAntiAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [
                    {"topologyKey": "kubernetes.io/hostname", "labelSelector": {"matchLabels": {"app": "db"},
                        "matchExpressions": [{"key": "tier", "operator": "Exists"}]}},
                    // Any topology key; a term without a selector matches nothing.
                    {"topologyKey": "topology.kubernetes.io/zone", "labelSelector": {"matchLabels": {"app": "db"}}},
                    {"topologyKey": "kubernetes.io/hostname"},
                ]},
            },
            "containers": [
                {"name": "a", "ports": [{"containerPort": 80, "hostPort": 8080}, {"containerPort": 53, "hostPort": 53, "protocol": "UDP"}]},
                {"name": "b", "ports": [{"containerPort": 9000}]},
            ],
        },
    })));
    let pl = &p.placement;
    assert_eq!(pl.node_selector.get("disk").map(String::as_str), Some("ssd"));
    assert_eq!(pl.tolerations.len(), 3);
    assert_eq!((pl.tolerations[0].key.as_deref(), pl.tolerations[0].operator), (None, TolerationOperator::Exists));
    assert_eq!(pl.tolerations[1].effect, Some(TaintEffect::NoSchedule));
    assert_eq!(pl.tolerations[2].operator, TolerationOperator::Equal);
    assert_eq!(pl.required_node_affinity.len(), 2);
    assert_eq!(pl.required_node_affinity[0].match_expressions[0].operator, NodeSelectorOperator::In);
    assert_eq!(pl.required_node_affinity[1].match_fields[0].key, "metadata.name");
    assert_eq!(pl.pod_anti_affinity.len(), 2);
    assert_eq!(pl.pod_anti_affinity[0].selector.match_expressions[0].operator, SelectorOperator::Exists);
    assert_eq!(pl.pod_anti_affinity[0].namespaces, ["ns"], "the pod's own namespace by default");
    assert_eq!(pl.pod_anti_affinity[1].topology_key, "topology.kubernetes.io/zone");
    let ports: Vec<_> = pl.host_ports.iter().map(|h| (h.port, h.protocol)).collect();
    assert_eq!(ports, [(53, Protocol::Udp), (8080, Protocol::Tcp)]);
}

/// Issue 21: `namespaces` and a `namespaceSelector` together cover their
/// union (the pod's own namespace only when both are absent).
#[test]
fn a_term_keeps_both_its_namespaces_and_its_namespace_selector() {
    let p = pod(&k8s_pod(json!({
        "metadata": {"name": "p", "namespace": "ns"},
        "spec": {
            "affinity": {"podAntiAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [
                {"topologyKey": "kubernetes.io/hostname", "namespaces": ["shared"],
                 "namespaceSelector": {"matchLabels": {"tier": "infra"}},
                 "labelSelector": {"matchLabels": {"app": "db"}}},
                {"topologyKey": "kubernetes.io/hostname", "namespaceSelector": {"matchLabels": {"tier": "infra"}},
                 "labelSelector": {"matchLabels": {"app": "db"}}},
            ]}},
            "containers": [{"name": "a"}],
        },
    })));
    let terms = &p.placement.pod_anti_affinity;
    let infra = BTreeMap::from([("tier".to_string(), "infra".to_string())]);
    assert_eq!(terms[0].namespaces, ["shared"]);
    assert_eq!(terms[0].namespace_selector.as_ref().map(|s| &s.match_labels), Some(&infra));
    assert!(terms[1].namespaces.is_empty(), "a selector alone does not add the pod's own namespace");
    let none = BTreeMap::new();
    assert!(terms[0].covers_namespace("shared", &none) && terms[0].covers_namespace("infra", &infra));
    assert!(!terms[0].covers_namespace("ns", &none) && !terms[1].covers_namespace("ns", &none));
    assert!(p.placement.namespace_labels.is_empty(), "the store fills them in from the Namespace watch");
}

#[test]
fn pod_affinity_and_topology_spread_over_any_key_namespace_and_label_keys() {
    let p = pod(&k8s_pod(json!({
        "metadata": {"name": "p", "namespace": "ns", "labels": {"app": "p", "pod-template-hash": "abc", "tenant": "t1"}},
        "spec": {
            "affinity": {
                "podAffinity": {
                    "requiredDuringSchedulingIgnoredDuringExecution": [
                        {"topologyKey": "kubernetes.io/hostname", "labelSelector": {"matchLabels": {"app": "cache"}}},
                        {"topologyKey": "topology.kubernetes.io/zone", "namespaces": ["other"],
                         "labelSelector": {"matchLabels": {"app": "db"}}},
                        {"topologyKey": "kubernetes.io/hostname", "namespaceSelector": {},
                         "labelSelector": {"matchLabels": {"app": "x"}}, "matchLabelKeys": ["tenant", "absent"]},
                        // No selector: selects no pod.
                        {"topologyKey": "kubernetes.io/hostname"},
                    ],
                    "preferredDuringSchedulingIgnoredDuringExecution": [{"weight": 40, "podAffinityTerm":
                        {"topologyKey": "kubernetes.io/hostname", "labelSelector": {"matchLabels": {"app": "api"}}}}],
                },
                "podAntiAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": [{"weight": 10, "podAffinityTerm":
                    {"topologyKey": "topology.kubernetes.io/zone", "labelSelector": {"matchLabels": {"app": "p"}},
                     "mismatchLabelKeys": ["tenant"]}}]},
            },
            "topologySpreadConstraints": [
                {"maxSkew": 2, "minDomains": 3, "topologyKey": "kubernetes.io/hostname",
                 "whenUnsatisfiable": "DoNotSchedule", "labelSelector": {"matchLabels": {"app": "p"}}},
                {"maxSkew": 1, "topologyKey": "kubernetes.io/hostname",
                 "whenUnsatisfiable": "ScheduleAnyway", "labelSelector": {"matchLabels": {"app": "p"}}},
                {"maxSkew": 1, "topologyKey": "topology.kubernetes.io/zone", "matchLabelKeys": ["pod-template-hash"],
                 "whenUnsatisfiable": "DoNotSchedule", "labelSelector": {"matchLabels": {"app": "p"}}},
            ],
            "containers": [{"name": "a"}],
        },
    })));
    let pl = &p.placement;
    let apps: Vec<_> = pl.pod_affinity.iter().map(|t| t.selector.match_labels["app"].as_str()).collect();
    assert_eq!(apps, ["cache", "db", "x"]);
    assert_eq!(pl.pod_affinity[0].namespaces, ["ns"]);
    assert_eq!(
        (pl.pod_affinity[1].namespaces.as_slice(), pl.pod_affinity[1].topology_key.as_str()),
        (["other".to_string()].as_slice(), "topology.kubernetes.io/zone")
    );
    // An empty namespace selector: every namespace; matchLabelKeys: the pod's own value.
    assert!(pl.pod_affinity[2].namespaces.is_empty());
    assert_eq!(pl.pod_affinity[2].namespace_selector, Some(Default::default()));
    let tenant = &pl.pod_affinity[2].selector.match_expressions;
    assert_eq!(tenant.len(), 1, "keys the pod lacks are ignored");
    assert_eq!(
        (tenant[0].key.as_str(), tenant[0].operator, tenant[0].values.as_slice()),
        ("tenant", SelectorOperator::In, ["t1".to_string()].as_slice())
    );
    assert_eq!(pl.preferred_pod_affinity[0].weight, 40);
    let anti = &pl.preferred_pod_anti_affinity[0];
    assert_eq!((anti.weight, anti.term.selector.match_expressions[0].operator), (10, SelectorOperator::NotIn));
    let spread: Vec<_> =
        pl.spread.iter().map(|c| (c.topology_key.as_str(), c.max_skew, c.min_domains, c.when_unsatisfiable)).collect();
    assert_eq!(
        spread,
        [
            ("kubernetes.io/hostname", 2, 3, WhenUnsatisfiable::DoNotSchedule),
            ("kubernetes.io/hostname", 1, 1, WhenUnsatisfiable::ScheduleAnyway),
            ("topology.kubernetes.io/zone", 1, 1, WhenUnsatisfiable::DoNotSchedule),
        ]
    );
    assert_eq!(pl.spread[2].selector.match_expressions[0].key, "pod-template-hash");
}

#[test]
fn scheduling_state_deletion_and_nomination() {
    let p = pod(&k8s_pod(json!({
        "metadata": {"name": "p", "namespace": "ns", "creationTimestamp": "2026-01-01T08:00:00Z",
                     "deletionTimestamp": "2026-01-01T08:05:00Z"},
        "spec": {"containers": [], "priority": 1000},
        "status": {"phase": "Pending", "nominatedNodeName": "n2", "conditions": [
            {"type": "PodScheduled", "status": "False", "reason": "Unschedulable", "lastTransitionTime": "2026-01-01T08:01:00Z"},
        ]},
    })));
    assert_eq!(p.phase, PodPhase::Pending);
    assert_eq!(p.unschedulable_since, Some(ts("2026-01-01T08:01:00Z")));
    assert_eq!(p.nominated_node.as_deref(), Some("n2"));
    assert_eq!(p.deletion, Some(ts("2026-01-01T08:05:00Z")));
    assert_eq!(p.created, ts("2026-01-01T08:00:00Z"));
    assert_eq!(p.priority, 1000);
    // Scheduling gates are not "unschedulable": no node could help.
    let gated = pod(&k8s_pod(json!({"metadata": {"name": "g"}, "spec": {"containers": []}, "status": {"conditions": [
        {"type": "PodScheduled", "status": "False", "reason": "SchedulingGated"}]}})));
    assert_eq!(gated.unschedulable_since, None);
}

#[test]
fn drain_relevant_facts() {
    let p = pod(&k8s_pod(json!({
        "metadata": {"name": "p", "namespace": "ns",
            "annotations": {"cluster-autoscaler.kubernetes.io/safe-to-evict": "false", "kubernetes.io/config.mirror": "abc"},
            "ownerReferences": [
                {"apiVersion": "v1", "kind": "ConfigMap", "name": "other", "uid": "x"},
                {"apiVersion": "apps/v1", "kind": "DaemonSet", "name": "agent", "uid": "ds1", "controller": true},
            ]},
        "spec": {"containers": [], "volumes": [{"name": "tmp", "emptyDir": {"medium": "Memory"}}]},
    })));
    assert_eq!(p.safe_to_evict, Some(false));
    assert!(p.mirror);
    assert!(p.is_daemonset());
    assert!(!p.local_storage);
    assert!(!is_workload_pod(&p));
    assert_eq!(p.workload.unwrap().to_string(), "DaemonSet/ns/agent");

    let local = |volumes: serde_json::Value, safe: Option<&str>| {
        let mut meta = json!({"name": "p"});
        if let Some(s) = safe {
            meta["annotations"] = json!({"cluster-autoscaler.kubernetes.io/safe-to-evict-local-volumes": s});
        }
        pod(&k8s_pod(json!({"metadata": meta, "spec": {"containers": [], "volumes": volumes}}))).local_storage
    };
    assert!(local(json!([{"name": "cache", "emptyDir": {}}]), None));
    assert!(local(json!([{"name": "logs", "hostPath": {"path": "/var/log"}}]), None));
    assert!(!local(json!([{"name": "cache", "emptyDir": {}}]), Some("cache")));
    assert!(local(
        json!([{"name": "cache", "emptyDir": {}}, {"name": "h", "hostPath": {"path": "/x"}}]),
        Some("cache")
    ));
    assert!(!local(json!([{"name": "cfg", "configMap": {"name": "c"}}]), None));
}

#[test]
fn workloads_resolve_through_replica_sets() {
    let rs = OwnerRef { kind: "ReplicaSet".into(), name: "web-5d9f".into(), uid: "u".into() };
    assert_eq!(workload(&rs, "ns", None), None, "unknown until the ReplicaSet is seen");
    assert_eq!(workload(&rs, "ns", Some(Some("web"))).unwrap().to_string(), "Deployment/ns/web");
    assert_eq!(workload(&rs, "ns", Some(None)).unwrap().to_string(), "ReplicaSet/ns/web-5d9f");
    let sts = OwnerRef { kind: "StatefulSet".into(), name: "db".into(), uid: "u".into() };
    assert_eq!(workload(&sts, "ns", None).unwrap().to_string(), "StatefulSet/ns/db");
}

#[test]
fn nodes_keep_only_what_the_planner_reads() {
    let n = k8s_node(json!({
        "metadata": {"name": "m-1", "creationTimestamp": "2026-01-01T00:00:00Z",
            "labels": {"heatscaler.io/node-group": "workers"},
            "annotations": {
                "heatscaler.io/removal-phase": "draining",
                "cluster-autoscaler.kubernetes.io/scale-down-disabled": "true",
                "kubeadm.alpha.kubernetes.io/cri-socket": "unix:///run/containerd/containerd.sock",
            }},
        "spec": {"providerID": "openstack:///abc", "unschedulable": true, "taints": [
            {"key": "heatscaler.io/to-be-removed", "value": "1700000000", "effect": "NoSchedule"},
            {"key": "dedicated", "effect": "NoExecute"},
        ]},
        "status": {"allocatable": {"cpu": "3920m", "memory": "15Gi", "pods": "110", "nvidia.com/gpu": "2"},
            "conditions": [{"type": "Ready", "status": "True"}]},
    }));
    let m = node(&n);
    assert_eq!(m.annotations.len(), 2);
    assert!(!m.annotations.contains_key("kubeadm.alpha.kubernetes.io/cri-socket"));
    assert_eq!(m.taints.len(), 2);
    assert_eq!(m.taints[1].value, None);
    assert_eq!(m.allocatable.cpu_milli, 3920);
    assert_eq!(m.allocatable.gpus(), 2);
    assert_eq!(m.allocatable.pods, 110);
    assert!(m.unschedulable && m.ready);
    assert_eq!(m.provider_id.as_deref(), Some("openstack:///abc"));

    let not_ready = k8s_node(json!({"metadata": {"name": "x"},
        "status": {"conditions": [{"type": "Ready", "status": "Unknown"}]}}));
    assert!(!node(&not_ready).ready);
}

#[test]
fn budgets_as_eviction_enforces_them() {
    // Each budget as the watch decodes it, checked against the full object.
    let budget = |v: serde_json::Value| {
        let full =
            pdb(&serde_json::from_value::<k8s_openapi::api::policy::v1::PodDisruptionBudget>(v.clone()).unwrap());
        let slim = pdb(&serde_json::from_value::<slim::PodDisruptionBudget>(v).unwrap().into_api());
        assert_eq!(slim, full);
        slim
    };
    let b = budget(json!({"metadata": {"name": "db", "namespace": "ns", "generation": 2},
        "spec": {"selector": {"matchLabels": {"app": "db"}}},
        "status": {"disruptionsAllowed": 1, "observedGeneration": 2, "currentHealthy": 3, "desiredHealthy": 2, "expectedPods": 3}}))
    .unwrap();
    assert_eq!((b.namespace.as_str(), b.name.as_str(), b.disruptions_allowed), ("ns", "db", 1));
    let unobserved = budget(json!({"metadata": {"name": "db", "namespace": "ns", "generation": 3},
        "spec": {"selector": {"matchLabels": {"app": "db"}}},
        "status": {"disruptionsAllowed": 1, "observedGeneration": 2, "currentHealthy": 3, "desiredHealthy": 2, "expectedPods": 3}}))
    .unwrap();
    assert_eq!(unobserved.disruptions_allowed, 0);
    assert!(budget(json!({"metadata": {"name": "all", "namespace": "ns"}, "spec": {"selector": {}}})).is_none());
    assert!(budget(json!({"metadata": {"name": "none", "namespace": "ns"}, "spec": {}})).is_none());
}

/// Objects as kube-apiserver 1.35 serves them, managed fields and all
/// (tests/fixtures/kube-apiserver/README.md says how they were made).
fn apiserver_object(name: &str) -> serde_json::Value {
    let path = format!("{}/../../tests/fixtures/kube-apiserver/{name}", env!("CARGO_MANIFEST_DIR"));
    serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap()
}

#[test]
fn real_api_server_pods_decode_slim_into_the_same_model() {
    for name in ["pod-running.json", "pod-unschedulable.json", "pod-terminating.json"] {
        let json = apiserver_object(name);
        assert!(json["metadata"]["managedFields"].as_array().is_some_and(|m| !m.is_empty()), "{name}: a full object");
        let full: k8s::Pod = serde_json::from_value(json.clone()).unwrap();
        let slim: slim::Pod = serde_json::from_value(json).unwrap();
        // What the store reads besides the conversion: VPA's marks, the keys.
        assert_eq!(
            crate::vpa::upstream::mark(slim.metadata.annotations.as_ref()),
            crate::vpa::upstream::mark(full.metadata.annotations.as_ref()),
            "{name}"
        );
        assert_eq!(
            slim.metadata.resource_version, full.metadata.resource_version,
            "{name}: the watcher resumes from it"
        );
        assert_eq!(slim.metadata.managed_fields, None, "{name}");
        let slim = slim.into_api();
        assert_eq!(converted(&slim), converted(&full), "{name}");
        assert_eq!(pod(&slim).resize, pod(&full).resize, "{name}: every condition carries its time");
    }

    // The fixtures exercise what the conversion reads, so a field the slim
    // decode dropped shows above as a difference, not as two empty models.
    let running = converted(&k8s_pod(apiserver_object("pod-running.json")));
    assert_eq!(running.phase, PodPhase::Running);
    assert_eq!(running.priority, 2_000_000_000, "system-cluster-critical");
    assert_eq!(running.owner.as_ref().map(|o| o.kind.as_str()), Some("ReplicaSet"));
    assert_eq!(running.node_name.as_deref(), Some("minion-0"));
    // The one-shot init container (1 CPU) next to the sidecar (50m spec, 100m
    // applied) outweighs app (400m applied, above its 250m spec) + proxy 10m + the sidecar.
    assert_eq!(running.requests.cpu_milli, 1000 + 100);
    let app = &running.containers[0];
    assert_eq!((app.allocated.as_ref().map(|a| a.cpu_milli), app.limits.memory), (Some(400), GI));
    assert_eq!(app.last_oom, Some(ts("2026-12-06T14:23:05Z")));
    assert!(matches!(running.resize, ResizeState::Deferred { .. }));
    // Its init containers (requests, no limits) make it Burstable whatever
    // its app containers do.
    assert_eq!(running.init_qos, Some(heatscaler_core::model::QosClass::Burstable));
    assert_eq!(running.safe_to_evict, Some(true));
    assert!(running.local_storage, "the hostPath volume; the emptyDir is declared safe");
    let placement = &running.placement;
    assert_eq!(placement.tolerations.len(), 2);
    assert_eq!(placement.node_selector.get("kubernetes.io/os").map(String::as_str), Some("linux"));
    assert_eq!(placement.required_node_affinity.len(), 1);
    assert_eq!((placement.pod_anti_affinity.len(), placement.pod_affinity.len()), (1, 1));
    assert_eq!(placement.pod_affinity[0].namespaces, ["default"], "the pod's own namespace by default");
    // Both constraints: the hostname filter and the zone score.
    let spread: Vec<_> =
        placement.spread.iter().map(|s| (s.topology_key.as_str(), s.when_unsatisfiable, s.min_domains)).collect();
    assert_eq!(
        spread,
        [
            ("kubernetes.io/hostname", WhenUnsatisfiable::DoNotSchedule, 1),
            ("topology.kubernetes.io/zone", WhenUnsatisfiable::ScheduleAnyway, 1)
        ]
    );
    assert_eq!(placement.host_ports.len(), 2);
    let annotations: std::collections::BTreeMap<String, String> =
        serde_json::from_value(apiserver_object("pod-running.json")["metadata"]["annotations"].clone()).unwrap();
    let mark = crate::vpa::upstream::mark(Some(&annotations));
    assert_eq!(mark.and_then(|m| m.admitted_by).as_deref(), Some("web-vpa"));

    let pending = converted(&k8s_pod(apiserver_object("pod-unschedulable.json")));
    assert!(pending.unschedulable_since.is_some() && pending.node_name.is_none());

    let terminating = converted(&k8s_pod(apiserver_object("pod-terminating.json")));
    assert!(terminating.deletion.is_some());
    assert_eq!(terminating.safe_to_evict, Some(false));
    assert_eq!(terminating.requests.cpu_milli, 3000, "pod-level requests replace the container sum");
    assert_eq!(terminating.requests.get("example.com/gpu"), 1, "the containers' sum for what the pod level leaves out");
}

#[test]
fn a_real_api_server_node_decodes_slim_into_the_same_model() {
    let json = apiserver_object("node.json");
    assert!(json["metadata"]["managedFields"].as_array().is_some_and(|m| !m.is_empty()));
    let full: k8s::Node = serde_json::from_value(json.clone()).unwrap();
    let slim: slim::Node = serde_json::from_value(json).unwrap();
    assert_eq!(slim.metadata.resource_version, full.metadata.resource_version);
    // Only the annotations the conversion keeps are held at all.
    let held: Vec<&String> = slim.metadata.annotations.iter().flatten().map(|(k, _)| k).collect();
    assert_eq!(held, ["cluster-autoscaler.kubernetes.io/scale-down-disabled", "heatscaler.io/removal"]);
    let m = node(&slim.into_api());
    assert_eq!(m, node(&full));
    assert!(m.ready);
    assert_eq!((m.allocatable.cpu_milli, m.allocatable.pods), (7800, 110));
    assert_eq!(m.taints.len(), 1);
    assert_eq!(m.labels.len(), 5);
    assert_eq!(m.annotations.len(), 2);
    assert_eq!(m.provider_id.as_deref(), Some("openstack:///00000001-aaaa-bbbb-cccc-dddddddddddd"));
}

/// Issue 17 (and issue 22's slim ReplicaSet): the ReplicaSet watch decodes
/// only the owner and the pod template's resources, into the same model as
/// the full object — the Deployment, and the size its pods are recreated at.
#[test]
fn a_real_api_server_replica_set_decodes_slim_into_the_same_model() {
    let json = apiserver_object("replicaset.json");
    assert!(json["metadata"]["managedFields"].as_array().is_some_and(|m| !m.is_empty()));
    let full: k8s_openapi::api::apps::v1::ReplicaSet = serde_json::from_value(json.clone()).unwrap();
    let slim: slim::ReplicaSet = serde_json::from_value(json).unwrap();
    assert_eq!(slim.metadata.resource_version, full.metadata.resource_version, "the watcher resumes from it");
    assert_eq!(
        (slim.metadata.managed_fields.as_ref(), slim.metadata.annotations.as_ref().map(|a| a.len())),
        (None, Some(0))
    );
    let m = replica_set(&slim.into_api());
    assert_eq!(m, replica_set(&full));
    assert_eq!(m.key, ("default".to_string(), "web-8594c76f47".to_string()));
    assert_eq!(m.uid, "6caf6e2a-eb0c-4548-9edf-59cd18dad466");
    assert_eq!(m.deployment.as_deref(), Some("web"));
    let template = m.template.expect("a pod template");
    let names: Vec<&str> = template.containers.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(names, ["app", "proxy"], "app containers; init containers count in the requests only");
    let app = &template.containers[0];
    assert_eq!(
        (app.requests.cpu_milli, app.requests.memory, app.limits.cpu_milli, app.limits.memory),
        (250, 256 * MI, 500, GI)
    );
    assert_eq!(app.allocated, None);
    // The one-shot init container (1 CPU, 512Mi), which runs before the
    // sidecar starts, outweighs app + proxy + the sidecar (310m, 352Mi).
    assert_eq!((template.requests.cpu_milli, template.requests.memory, template.requests.pods), (1000, 512 * MI, 1));
}

#[test]
fn real_api_server_budgets_decode_slim_into_the_same_model() {
    for (name, allowed) in [("pdb.json", 1), ("pdb-evicting.json", 0)] {
        let json = apiserver_object(name);
        assert!(json["metadata"]["managedFields"].as_array().is_some_and(|m| !m.is_empty()), "{name}: a full object");
        let full: k8s_openapi::api::policy::v1::PodDisruptionBudget = serde_json::from_value(json.clone()).unwrap();
        let slim: slim::PodDisruptionBudget = serde_json::from_value(json).unwrap();
        assert_eq!(
            slim.metadata.resource_version, full.metadata.resource_version,
            "{name}: the watcher resumes from it"
        );
        assert_eq!(slim.metadata.generation, full.metadata.generation, "{name}: against observedGeneration");
        // No annotation is read: last-applied-configuration is skipped unallocated.
        assert!(slim.metadata.annotations.iter().flatten().next().is_none(), "{name}");
        assert_eq!(slim.metadata.managed_fields, None, "{name}");
        let model = pdb(&slim.into_api());
        assert_eq!(model, pdb(&full), "{name}");
        // The fixtures exercise what the conversion reads: an observed
        // budget, both selector forms, and the allowance the controller wrote.
        let model = model.unwrap();
        assert_eq!((model.namespace.as_str(), model.name.as_str()), ("default", "db"), "{name}");
        assert_eq!(model.disruptions_allowed, allowed, "{name}");
        assert_eq!(model.selector.match_labels.len(), 1, "{name}");
        assert_eq!(model.selector.match_expressions.len(), 1, "{name}");
    }
}
