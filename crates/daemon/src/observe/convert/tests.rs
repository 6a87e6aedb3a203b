use serde_json::json;

use super::*;
use heatscaler_core::model::{
    NodeSelectorOperator, OwnerRef, PodPhase, Protocol, ResizeState, Resources, SelectorOperator, TaintEffect,
    TolerationOperator, WhenUnsatisfiable,
};

fn k8s_pod(v: serde_json::Value) -> k8s_openapi::api::core::v1::Pod {
    serde_json::from_value(v).unwrap()
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
                {"type": "PodResizePending", "status": "True", "reason": "Infeasible", "message": "Node didn't have enough capacity", "lastTransitionTime": "2026-01-01T09:30:00Z"},
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
        ResizeState::Infeasible {
            since: ts("2026-01-01T09:30:00Z"),
            message: "Node didn't have enough capacity".into()
        }
    );
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
    let n: k8s_openapi::api::core::v1::Node = serde_json::from_value(json!({
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
    }))
    .unwrap();
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

    let not_ready: k8s_openapi::api::core::v1::Node = serde_json::from_value(json!({"metadata": {"name": "x"},
        "status": {"conditions": [{"type": "Ready", "status": "Unknown"}]}}))
    .unwrap();
    assert!(!node(&not_ready).ready);
}

#[test]
fn budgets_as_eviction_enforces_them() {
    let budget = |v: serde_json::Value| {
        pdb(&serde_json::from_value::<k8s_openapi::api::policy::v1::PodDisruptionBudget>(v).unwrap())
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
