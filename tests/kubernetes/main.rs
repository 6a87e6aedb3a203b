//! Smoke tests of the real-Kubernetes test world: a 1.35 control plane built
//! from source (`tests/kubernetes/`) with emulated kubelets (`kubelet-emu`),
//! showing the behaviours kubesim does not model on heatscaler's critical
//! paths — DaemonSet pods kept on a NoSchedule-tainted node, pods of an
//! unreachable node left Terminating, extended resources and the real
//! scheduler, in-place resize answered as the kubelet does, kubelet stats
//! through the node proxy, and RBAC as shipped (a 403 for any verb outside it).
//!
//! Each test starts its own control plane (about 10 s); see docs/testing.md
//! for running one against a control plane started by hand.

mod admission;
#[path = "../support/e2e/daemon.rs"]
mod daemon;
#[path = "../support/kubernetes.rs"]
mod kubernetes;
mod mesh;
#[path = "../support/mesh.rs"]
mod test_mesh;

use std::path::Path;
use std::time::Duration;

use k8s_openapi::api::apps::v1::{DaemonSet, Deployment};
use k8s_openapi::api::core::v1::{ConfigMap, Node, Pod};
use kube::api::{Api, ListParams, Patch, PatchParams, PostParams};
use kubelet_emu::{NodeSpec, Timing, UsageModel, UsageTarget};
use kubernetes::{Knobs, TestKubernetes, wait_for};
use serde_json::json;

const NS: &str = "default";
const WAIT: Duration = Duration::from_secs(60);
/// heatscaler's removal taint (docs/planner.md).
const REMOVAL_TAINT: &str = "heatscaler.io/to-be-removed";

fn deployment(name: &str, replicas: i32, cpu: &str, extra: serde_json::Value) -> Deployment {
    let mut container = json!({"name": "app", "image": "registry.example/app:1",
                               "resources": {"requests": {"cpu": cpu, "memory": "64Mi"}}});
    if let Some(obj) = extra.as_object() {
        for (k, v) in obj {
            container[k] = v.clone();
        }
    }
    serde_json::from_value(json!({
        "metadata": {"name": name, "namespace": NS},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {"terminationGracePeriodSeconds": 30, "containers": [container]},
            },
        },
    }))
    .unwrap()
}

fn node_condition(node: &Node, kind: &str) -> Option<String> {
    node.status.as_ref()?.conditions.as_ref()?.iter().find(|c| c.type_ == kind).map(|c| c.status.clone())
}

fn pod_condition<'a>(pod: &'a Pod, kind: &str) -> Option<&'a k8s_openapi::api::core::v1::PodCondition> {
    pod.status.as_ref()?.conditions.as_ref()?.iter().find(|c| c.type_ == kind)
}

async fn pods_of(api: &Api<Pod>, app: &str) -> Vec<Pod> {
    api.list(&ListParams::default().labels(&format!("app={app}"))).await.unwrap().items
}

async fn wait_ready_deployment(api: &Api<Deployment>, name: &str, replicas: i32) {
    wait_for(&format!("deployment {name} ready"), WAIT, || async {
        let d = api.get(name).await.ok()?;
        (d.status?.ready_replicas? == replicas).then_some(())
    })
    .await
}

/// Nodes register (providerID, Ready, Lease), a Deployment becomes Ready,
/// a DaemonSet pod stays on a node carrying heatscaler's NoSchedule removal
/// taint, and a GPU pod waits for a node with `nvidia.com/gpu`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nodes_register_and_the_real_controllers_and_scheduler_run_workloads() {
    let k8s = TestKubernetes::start(Knobs::default());
    let client = k8s.admin().await;
    let emu = k8s.emulator(Timing::fast()).await;
    for i in 0..2 {
        emu.add_node(NodeSpec::new(&format!("minion-{i}")).provider_id(&format!("openstack:///uuid-{i}")))
            .await
            .unwrap();
    }
    let nodes: Api<Node> = Api::all(client.clone());
    wait_for("two Ready nodes", WAIT, || async {
        let list = nodes.list(&ListParams::default()).await.ok()?;
        (list.items.iter().filter(|n| node_condition(n, "Ready").as_deref() == Some("True")).count() == 2).then_some(())
    })
    .await;
    let m0 = nodes.get("minion-0").await.unwrap();
    assert_eq!(m0.spec.unwrap().provider_id.as_deref(), Some("openstack:///uuid-0"));
    let leases: Api<k8s_openapi::api::coordination::v1::Lease> = Api::namespaced(client.clone(), "kube-node-lease");
    assert!(leases.get("minion-0").await.is_ok(), "minion-0 has its heartbeat Lease");

    // A Deployment through the real deployment + replicaset controllers and scheduler.
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), NS);
    let pods: Api<Pod> = Api::namespaced(client.clone(), NS);
    wait_for("the default ServiceAccount", WAIT, || async {
        Api::<k8s_openapi::api::core::v1::ServiceAccount>::namespaced(client.clone(), NS).get("default").await.ok()
    })
    .await;
    deployments.create(&PostParams::default(), &deployment("web", 3, "100m", json!({}))).await.unwrap();
    wait_ready_deployment(&deployments, "web", 3).await;
    for pod in pods_of(&pods, "web").await {
        let status = pod.status.unwrap();
        assert_eq!(status.phase.as_deref(), Some("Running"));
        assert!(status.pod_ip.is_some() && status.host_ip.is_some());
    }

    // A DaemonSet pod stays on a node tainted NoSchedule (only NoExecute evicts).
    let daemonsets: Api<DaemonSet> = Api::namespaced(client.clone(), NS);
    let ds: DaemonSet = serde_json::from_value(json!({
        "metadata": {"name": "agent", "namespace": NS},
        "spec": {
            "selector": {"matchLabels": {"app": "agent"}},
            "template": {"metadata": {"labels": {"app": "agent"}},
                         "spec": {"containers": [{"name": "agent", "image": "registry.example/agent:1",
                                                  "resources": {"requests": {"cpu": "10m", "memory": "16Mi"}}}]}},
        },
    }))
    .unwrap();
    daemonsets.create(&PostParams::default(), &ds).await.unwrap();
    let on_m0 = || async {
        pods_of(&pods, "agent")
            .await
            .into_iter()
            .find(|p| p.spec.as_ref().unwrap().node_name.as_deref() == Some("minion-0"))
    };
    let agent = wait_for("the DaemonSet pod on minion-0 running", WAIT, || async {
        on_m0().await.filter(|p| p.status.as_ref().unwrap().phase.as_deref() == Some("Running"))
    })
    .await;
    let taint = json!({"spec": {"taints": [{"key": REMOVAL_TAINT, "value": "true", "effect": "NoSchedule"}]}});
    nodes.patch("minion-0", &PatchParams::default(), &Patch::Merge(&taint)).await.unwrap();
    tokio::time::sleep(Duration::from_secs(5)).await;
    let still = on_m0().await.expect("the DaemonSet pod is still on the tainted node");
    assert_eq!(still.metadata.uid, agent.metadata.uid, "the same pod, not a replacement");
    assert!(still.metadata.deletion_timestamp.is_none(), "not being deleted");

    // nvidia.com/gpu: Pending with no GPU node (the real scheduler's message), then scheduled.
    let gpu_pod: Pod = serde_json::from_value(json!({
        "metadata": {"name": "trainer", "namespace": NS},
        "spec": {"containers": [{"name": "t", "image": "registry.example/train:1",
                                 "resources": {"limits": {"nvidia.com/gpu": "1"}}}]},
    }))
    .unwrap();
    pods.create(&PostParams::default(), &gpu_pod).await.unwrap();
    let message = wait_for("the GPU pod unschedulable", WAIT, || async {
        let p = pods.get("trainer").await.ok()?;
        let c = pod_condition(&p, "PodScheduled")?;
        (c.status == "False").then(|| c.message.clone().unwrap_or_default())
    })
    .await;
    assert!(message.contains("Insufficient nvidia.com/gpu"), "{message}");
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(pods.get("trainer").await.unwrap().spec.unwrap().node_name, None, "still Pending");
    emu.add_node(NodeSpec::new("gpu-0").resource("nvidia.com/gpu", "1")).await.unwrap();
    let pod = wait_for("the GPU pod running on gpu-0", WAIT, || async {
        let p = pods.get("trainer").await.ok()?;
        (p.status.as_ref()?.phase.as_deref() == Some("Running")).then_some(p)
    })
    .await;
    assert_eq!(pod.spec.unwrap().node_name.as_deref(), Some("gpu-0"));
}

/// `pods/resize` through heatscaler's own identity, answered as the 1.35
/// kubelet: a resize that fits is allocated then actuated; one larger than the
/// node is `Infeasible` with the kubelet's message.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_place_resize_is_answered_as_the_kubelet_answers_it() {
    let k8s = TestKubernetes::start(Knobs::default());
    let admin = k8s.admin().await;
    let emu = k8s.emulator(Timing::fast()).await;
    emu.add_node(NodeSpec::new("minion-0").cpu("4").memory("8Gi")).await.unwrap();
    wait_for("the default ServiceAccount", WAIT, || async {
        Api::<k8s_openapi::api::core::v1::ServiceAccount>::namespaced(admin.clone(), NS).get("default").await.ok()
    })
    .await;
    let deployments: Api<Deployment> = Api::namespaced(admin.clone(), NS);
    deployments.create(&PostParams::default(), &deployment("api", 1, "500m", json!({}))).await.unwrap();
    wait_ready_deployment(&deployments, "api", 1).await;
    let admin_pods: Api<Pod> = Api::namespaced(admin.clone(), NS);
    let name = pods_of(&admin_pods, "api").await[0].metadata.name.clone().unwrap();

    let pods: Api<Pod> = Api::namespaced(k8s.heatscaler().await, NS);
    let resize =
        |cpu: &str| json!({"spec": {"containers": [{"name": "app", "resources": {"requests": {"cpu": cpu}}}]}});
    pods.patch_subresource("resize", &name, &PatchParams::default(), &Patch::Strategic(resize("1")))
        .await
        .expect("heatscaler may resize pods");
    let pod = wait_for("the resize actuated", WAIT, || async {
        let p = admin_pods.get(&name).await.ok()?;
        let cs = &p.status.as_ref()?.container_statuses.as_ref()?[0];
        let actual = cs.resources.as_ref()?.requests.as_ref()?.get("cpu")?.0.clone();
        (actual == "1" && pod_condition(&p, "PodResizeInProgress").is_none()).then_some(p)
    })
    .await;
    let cs = &pod.status.as_ref().unwrap().container_statuses.as_ref().unwrap()[0];
    assert_eq!(cs.allocated_resources.as_ref().unwrap()["cpu"].0, "1");
    assert_eq!(pod.status.as_ref().unwrap().observed_generation, pod.metadata.generation);
    assert!(pod_condition(&pod, "PodResizePending").is_none());

    pods.patch_subresource("resize", &name, &PatchParams::default(), &Patch::Strategic(resize("5"))).await.unwrap();
    let pending = wait_for("the resize infeasible", WAIT, || async {
        let p = admin_pods.get(&name).await.ok()?;
        pod_condition(&p, "PodResizePending").cloned()
    })
    .await;
    assert_eq!(pending.reason.as_deref(), Some("Infeasible"));
    assert_eq!(
        pending.message.as_deref(),
        Some("Node didn't have enough capacity: cpu, requested: 5000, capacity: 4000")
    );
    let p = admin_pods.get(&name).await.unwrap();
    let cs = &p.status.unwrap().container_statuses.unwrap()[0];
    assert_eq!(cs.resources.as_ref().unwrap().requests.as_ref().unwrap()["cpu"].0, "1", "still running at 1 CPU");
}

/// One minion running two replicas of `web` that use 250m and 300 MiB each:
/// the usage the kubelet stats tests read back.
async fn two_busy_web_replicas_on_one_minion(admin: &kube::Client, emu: &kubelet_emu::Emulator) {
    emu.add_node(NodeSpec::new("minion-0")).await.unwrap();
    wait_for("the default ServiceAccount", WAIT, || async {
        Api::<k8s_openapi::api::core::v1::ServiceAccount>::namespaced(admin.clone(), NS).get("default").await.ok()
    })
    .await;
    let deployments: Api<Deployment> = Api::namespaced(admin.clone(), NS);
    deployments.create(&PostParams::default(), &deployment("web", 2, "100m", json!({}))).await.unwrap();
    emu.set_usage(UsageTarget::selector(Some(NS), "app=web"), UsageModel::constant(250, 300 << 20)).unwrap();
    wait_ready_deployment(&deployments, "web", 2).await;
}

/// `/stats/summary` read the way the daemon reads it (node proxy, heatscaler's
/// token, heatscaler's parser), and a 403 for verbs the shipped ClusterRole
/// does not grant.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stats_through_the_node_proxy_with_the_shipped_rbac_and_403_outside_it() {
    let k8s = TestKubernetes::start(Knobs::default());
    let admin = k8s.admin().await;
    let emu = k8s.emulator(Timing::fast()).await;
    two_busy_web_replicas_on_one_minion(&admin, &emu).await;

    let heatscaler = k8s.heatscaler().await;
    let path =
        heatscaler_daemon::usage::collector::proxy_path("minion-0", heatscaler_daemon::config::UsageSource::Summary)
            .unwrap();
    let summary = wait_for("two pods in the summary", WAIT, || async {
        let req = http::Request::get(&path).body(Vec::new()).unwrap();
        let body = heatscaler.request_text(req).await.ok()?;
        let summary = heatscaler_daemon::usage::summary::parse(body.as_bytes()).expect("a kubelet summary");
        (summary.pods.len() == 2).then_some(summary)
    })
    .await;
    assert_eq!(summary.node.node_name, "minion-0");
    for pod in &summary.pods {
        let c = &pod.containers[0];
        assert_eq!(c.memory.as_ref().unwrap().working_set_bytes, Some(300 << 20));
        assert_eq!(c.cpu.as_ref().unwrap().usage_nano_cores, Some(250_000_000));
    }
    let cadvisor = heatscaler
        .request_text(http::Request::get("/api/v1/nodes/minion-0/proxy/metrics/cadvisor").body(Vec::new()).unwrap())
        .await
        .unwrap();
    assert!(cadvisor.contains("container_memory_working_set_bytes{container=\"app\""), "{cadvisor}");

    // Outside the ClusterRole: creating pods or ConfigMaps, updating (not patching) nodes.
    let forbidden = |r: Result<_, kube::Error>| match r {
        Err(kube::Error::Api(e)) => e.code == 403,
        _ => false,
    };
    let pods: Api<Pod> = Api::namespaced(heatscaler.clone(), NS);
    let pod: Pod = serde_json::from_value(json!({"metadata": {"name": "x"},
        "spec": {"containers": [{"name": "x", "image": "x"}]}}))
    .unwrap();
    assert!(forbidden(pods.create(&PostParams::default(), &pod).await.map(|_| ())));
    let cms: Api<ConfigMap> = Api::namespaced(heatscaler.clone(), "heatscaler");
    assert!(forbidden(cms.create(&PostParams::default(), &ConfigMap::default()).await.map(|_| ())));
    let nodes: Api<Node> = Api::all(heatscaler.clone());
    let node = nodes.get("minion-0").await.expect("heatscaler may read nodes");
    assert!(forbidden(nodes.replace("minion-0", &PostParams::default(), &node).await.map(|_| ())));
    assert!(forbidden(pods.delete(&summary.pods[0].pod_ref.name, &Default::default()).await.map(|_| ())));
}

/// A kubelet that stops: the real node lifecycle controller marks the node
/// Unknown and taints it NoExecute; taint-based eviction deletes its pods,
/// which stay Terminating because no kubelet finishes them — until it returns.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stopped_kubelet_leaves_its_pods_terminating() {
    let k8s = TestKubernetes::start(Knobs::fast_node_lifecycle());
    let admin = k8s.admin().await;
    let emu = k8s.emulator(Timing::fast()).await;
    emu.add_node(NodeSpec::new("minion-0")).await.unwrap();
    // Cordoned so the pod starts on minion-0. A second node also matters for the
    // node lifecycle controller: when every node is unreachable it assumes the
    // control plane is cut off ("all Nodes are not-Ready. Entering master
    // disruption mode") and taints nothing NoExecute.
    emu.add_node(NodeSpec::new("minion-1").unschedulable()).await.unwrap();
    wait_for("the default ServiceAccount", WAIT, || async {
        Api::<k8s_openapi::api::core::v1::ServiceAccount>::namespaced(admin.clone(), NS).get("default").await.ok()
    })
    .await;
    let deployments: Api<Deployment> = Api::namespaced(admin.clone(), NS);
    deployments.create(&PostParams::default(), &deployment("web", 1, "100m", json!({}))).await.unwrap();
    wait_ready_deployment(&deployments, "web", 1).await;
    let pods: Api<Pod> = Api::namespaced(admin.clone(), NS);
    let pod = pods_of(&pods, "web").await.remove(0);
    let name = pod.metadata.name.clone().unwrap();

    emu.stop_kubelet("minion-0").unwrap();
    let nodes: Api<Node> = Api::all(admin.clone());
    let lifecycle = k8s.node_monitor_grace_period() + Duration::from_secs(k8s.toleration_seconds()) + WAIT;
    let node = wait_for("minion-0 Unknown and tainted NoExecute", lifecycle, || async {
        let n = nodes.get("minion-0").await.ok()?;
        let tainted = n
            .spec
            .as_ref()?
            .taints
            .as_ref()?
            .iter()
            .any(|t| t.key == "node.kubernetes.io/unreachable" && t.effect == "NoExecute");
        (node_condition(&n, "Ready").as_deref() == Some("Unknown") && tainted).then_some(n)
    })
    .await;
    assert!(
        node.spec
            .unwrap()
            .taints
            .unwrap()
            .iter()
            .any(|t| t.key == "node.kubernetes.io/unreachable" && t.effect == "NoSchedule")
    );
    wait_for("the pod Terminating", lifecycle, || async {
        pods.get(&name).await.ok()?.metadata.deletion_timestamp.map(|_| ())
    })
    .await;
    // The grace period (30 s, ×0.05 = 1.5 s for this kubelet) passes; nobody finishes the pod.
    tokio::time::sleep(Duration::from_secs(5)).await;
    let stuck = pods.get(&name).await.expect("the pod is still there");
    assert!(stuck.metadata.deletion_timestamp.is_some());
    assert_eq!(stuck.metadata.uid, pod.metadata.uid);
    // Its replacement runs on the other node once it is schedulable again.
    let uncordon = json!({"spec": {"unschedulable": false}});
    nodes.patch("minion-1", &PatchParams::default(), &Patch::Merge(&uncordon)).await.unwrap();
    wait_for("a replacement running on minion-1", WAIT, || async {
        pods_of(&pods, "web").await.into_iter().find(|p| {
            p.metadata.uid != pod.metadata.uid
                && p.spec.as_ref().unwrap().node_name.as_deref() == Some("minion-1")
                && p.status.as_ref().unwrap().phase.as_deref() == Some("Running")
        })
    })
    .await;

    // The kubelet returns: it finishes the deletion and the node is Ready again.
    emu.start_kubelet("minion-0").await.unwrap();
    wait_for("the terminating pod gone", WAIT, || async {
        match pods.get(&name).await {
            Err(kube::Error::Api(e)) if e.code == 404 => Some(()),
            _ => None,
        }
    })
    .await;
    wait_for("minion-0 Ready", WAIT, || async {
        (node_condition(&nodes.get("minion-0").await.ok()?, "Ready").as_deref() == Some("True")).then_some(())
    })
    .await;
}

/// The removal marks through the actuator, as heatscaler's own identity with
/// the shipped RBAC, on the real API server: starting a removal adds
/// cluster-autoscaler's `ToBeDeletedByClusterAutoscaler` taint (value: the
/// start in Unix seconds, `NoSchedule`) beside heatscaler's own taint, and the
/// exclude-from-external-load-balancers label; giving the node back takes
/// them all off again — but keeps an exclusion label an operator had set.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_removal_marks_the_node_as_cluster_autoscaler_does_and_a_rollback_unmarks_it() {
    use heatscaler_core::model::Timestamp;
    use heatscaler_core::planner::Action;
    use heatscaler_core::planner::action::{RollBackRemoval, StartRemoval};
    use heatscaler_core::planner::explain::RollbackReason;
    use heatscaler_core::planner::protocol::{self, Phase, RemovalKind, RemovalRecord};
    use heatscaler_daemon::act::{Actuator, ActuatorError, Outcome};
    use std::sync::Arc;

    let k8s = TestKubernetes::start(Knobs::default());
    let emu = k8s.emulator(Timing::fast()).await;
    emu.add_node(NodeSpec::new("minion-0")).await.unwrap();
    emu.add_node(NodeSpec::new("minion-1").label(protocol::EXCLUDE_FROM_LB_LABEL, "true")).await.unwrap();
    let heatscaler = k8s.heatscaler().await;
    let metrics = Arc::new(heatscaler_daemon::telemetry::Metrics::new());
    let alerts = heatscaler_daemon::alerts::Dispatcher::with_sinks(Vec::new(), Duration::ZERO, metrics.clone());
    let heat = heatscaler_daemon::observe::HeatPoke::default();
    let actuator = Actuator::new(heatscaler.clone(), Vec::new(), alerts, metrics, heat, false);
    let nodes: Api<Node> = Api::all(heatscaler.clone());
    wait_for("two nodes", WAIT, || async {
        (nodes.list(&ListParams::default()).await.ok()?.items.len() == 2).then_some(())
    })
    .await;
    let started: Timestamp = "2026-03-01T12:00:00Z".parse().unwrap();
    let taint_keys = |n: &Node| -> Vec<String> {
        n.spec.as_ref().and_then(|s| s.taints.clone()).unwrap_or_default().into_iter().map(|t| t.key).collect()
    };
    let label = |n: &Node| n.metadata.labels.as_ref().and_then(|l| l.get(protocol::EXCLUDE_FROM_LB_LABEL)).cloned();

    for (name, operator_label) in [("minion-0", None), ("minion-1", Some("true"))] {
        let record = RemovalRecord {
            phase: Phase::Draining,
            kind: RemovalKind::Drain,
            started,
            drained: None,
            requested: None,
            group: "workers".into(),
            member: "0".into(),
            cordoned_before: false,
        };
        let start = StartRemoval { node: name.into(), record, utilization: 0.1, unneeded_since: started };
        // StartRemoval's own executor checks Heat first (tests/openstack); its patch is what it writes,
        // read and patched as the executor does. The kubelet and the node lifecycle controller write a
        // node just registered, so the guarded patch can meet a newer node (409); the executor reads it
        // again and retries (`removal::on_conflict_retry`), and so does this.
        for attempt in 1.. {
            match actuator.kube().patch_node(&nodes.get(name).await.unwrap(), &start.patch()).await {
                Ok(()) => break,
                Err(ActuatorError::Kube { source: kube::Error::Api(s), .. }) if s.code == 409 && attempt < 10 => {}
                Err(e) => panic!("{name}: {e}"),
            }
        }
        let node = nodes.get(name).await.unwrap();
        let taints = node.spec.as_ref().unwrap().taints.clone().unwrap();
        let ca = taints.iter().find(|t| t.key == protocol::CA_REMOVAL_TAINT).expect("cluster-autoscaler's taint");
        assert_eq!(ca.value.as_deref(), Some(started.as_second().to_string().as_str()));
        assert_eq!(ca.effect, "NoSchedule");
        assert!(taints.iter().any(|t| t.key == protocol::REMOVAL_TAINT), "{taints:?}");
        assert_eq!(label(&node).as_deref(), Some(operator_label.unwrap_or(protocol::EXCLUDE_FROM_LB_VALUE)));
        assert_eq!(node.spec.as_ref().unwrap().unschedulable, Some(true));

        let back = Action::RollBackRemoval(RollBackRemoval {
            node: name.into(),
            uncordon: true,
            reason: RollbackReason::NeededAgain { pods: 1 },
        });
        let outcome = actuator.execute(&back, Timestamp::now()).await;
        assert!(matches!(outcome, Outcome::Done(_)), "{outcome:?}");
        let node = nodes.get(name).await.unwrap();
        let left: Vec<String> =
            taint_keys(&node).into_iter().filter(|k| !k.starts_with("node.kubernetes.io/")).collect();
        assert!(left.is_empty(), "{name}: taints left after the rollback: {left:?}");
        assert_eq!(label(&node).as_deref(), operator_label, "{name}");
        assert_ne!(node.spec.as_ref().unwrap().unschedulable, Some(true), "{name} uncordoned");
    }
}

/// The systemd install's identity (`config/systemd/heatscaler-kubeconfig.sh`):
/// a kubeconfig for the `heatscaler` ServiceAccount, with the shipped
/// ClusterRole's reads and nothing more; run twice, it keeps working.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_systemd_kubeconfig_script_gives_the_least_privilege_identity() {
    let k8s = TestKubernetes::start(Knobs::default());
    let dir = tempfile::tempdir().unwrap();
    let output = dir.path().join("etc/heatscaler/kubeconfig");
    let run = || {
        let out = std::process::Command::new(kubernetes::repo_root().join("config/systemd/heatscaler-kubeconfig.sh"))
            .arg("--admin-kubeconfig")
            .arg(k8s.admin_kubeconfig())
            .arg("--output")
            .arg(&output)
            .env("KUBECTL", Path::new(k8s.var("HEATSCALER_K8S_BIN")).join("kubectl"))
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    };
    run();
    run();
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(std::fs::metadata(&output).unwrap().permissions().mode() & 0o777, 0o600);
    // The daemon reads it as it reads any kubeconfig (and check-config accepts it).
    heatscaler_daemon::config::kubeconfig::read(&output).unwrap();
    let client = k8s.client_for(&output).await;
    let nodes: Api<Node> = Api::all(client.clone());
    nodes.list(&ListParams::default()).await.expect("heatscaler may list nodes");
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), "heatscaler");
    match cms.create(&PostParams::default(), &ConfigMap::default()).await {
        Err(kube::Error::Api(e)) => assert_eq!(e.code, 403, "{e:?}"),
        other => panic!("creating a ConfigMap was not refused: {other:?}"),
    }
    let secrets: Api<k8s_openapi::api::core::v1::Secret> = Api::namespaced(client, "heatscaler");
    match secrets.list(&ListParams::default()).await {
        Err(kube::Error::Api(e)) => assert_eq!(e.code, 403, "reading Secrets (its own token's) is refused: {e:?}"),
        other => panic!("listing Secrets was not refused: {other:?}"),
    }
}

/// The VPA CRD as shipped (applied by up.sh) on a real API server: a manifest
/// using every field of upstream's v1 schema keeps them all (nothing pruned),
/// upstream's validation rules hold, and the status heatscaler writes with its
/// own identity — observedGeneration, the UnsupportedFields condition with its
/// observedGeneration — is stored as written.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_shipped_vpa_crd_keeps_every_upstream_field_and_the_status_heatscaler_writes() {
    use heatscaler_daemon::vpa::{StatusUpdate, VerticalPodAutoscaler, client, unsupported_fields};
    let k8s = TestKubernetes::start(Knobs::default());
    let admin = k8s.admin().await;
    let spec = json!({
        "targetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"},
        "recommenders": [{"name": "heatscaler"}],
        "startupBoost": {"cpu": {"type": "Factor", "factor": 2, "durationSeconds": 30}},
        "updatePolicy": {"updateMode": "InPlaceOrRecreate", "minReplicas": 2, "evictAfterOOMSeconds": 60,
                         "evictionRequirements": [{"resources": ["cpu"], "changeRequirement": "TargetHigherThanRequests"}]},
        "resourcePolicy": {"containerPolicies": [{
            "containerName": "app", "mode": "Auto", "minAllowed": {"cpu": "50m"}, "maxAllowed": {"memory": "4Gi"},
            "controlledResources": ["cpu", "memory"], "controlledValues": "RequestsAndLimits",
            "oomBumpUpRatio": "1.5", "oomMinBumpUp": "100Mi",
            "memoryAggregationIntervalSeconds": 3600, "memoryAggregationIntervalCount": 24,
            "startupBoost": {"cpu": {"type": "Quantity", "quantity": "2"}},
        }]},
    });
    let object: VerticalPodAutoscaler = serde_json::from_value(json!({
        "apiVersion": "autoscaling.k8s.io/v1", "kind": "VerticalPodAutoscaler",
        "metadata": {"name": "all-fields", "namespace": NS}, "spec": spec,
    }))
    .unwrap();
    let vpas: Api<VerticalPodAutoscaler> = Api::namespaced(admin.clone(), NS);
    let created = vpas.create(&PostParams::default(), &object).await.expect("accepted by the shipped CRD");
    assert_eq!(serde_json::to_value(&created.spec).unwrap(), spec, "the API server pruned or changed a field");

    // Upstream's CEL rule: factor exactly when type is Factor.
    let mut bad = object.clone();
    bad.metadata.name = Some("bad-boost".into());
    bad.spec.startup_boost = Some(json!({"cpu": {"type": "Factor"}}));
    let refused = vpas.create(&PostParams::default(), &bad).await.expect_err("invalid startupBoost refused");
    assert!(refused.to_string().contains("factor"), "{refused}");

    // The status, written as the daemon writes it, with heatscaler's identity.
    let ours: Api<VerticalPodAutoscaler> = Api::namespaced(k8s.heatscaler().await, NS);
    let fields = unsupported_fields(&created);
    assert_eq!(fields.len(), 7, "{fields:?}");
    let update = StatusUpdate {
        recommendations: &[],
        pods_matched: false,
        unsupported: None,
        generation: created.metadata.generation,
        unsupported_fields: &fields,
        upstream: &[],
    };
    let now = "2026-01-01T00:00:00Z".parse().unwrap();
    assert!(client::sync_status(&ours, &created, &update, now).await.expect("status written"));
    let status = vpas.get("all-fields").await.unwrap().status.expect("a status");
    assert_eq!(status.observed_generation, Some(1));
    let condition = status.conditions.iter().find(|c| c.type_ == "UnsupportedFields").expect("kept by the server");
    assert_eq!(condition.observed_generation, Some(1));
    assert!(condition.message.as_deref().unwrap().contains("spec.updatePolicy.evictAfterOOMSeconds"), "{condition:?}");
}

/// A serving certificate for every address of `network` (a /24), signed by the
/// control plane's CA, so a client that verifies kubelets (as `usage.kubelet:
/// direct` does) accepts the emulated ones.
fn kubelet_serving_cert(k8s: &TestKubernetes, dir: &Path, network: std::net::Ipv4Addr) -> (String, String) {
    let pki = Path::new(k8s.var("HEATSCALER_K8S_KUBELET_CERT")).parent().unwrap().to_path_buf();
    let [a, b, c, _] = network.octets();
    let sans: Vec<String> = (1..=254).map(|d| format!("IP:{a}.{b}.{c}.{d}")).collect();
    std::fs::write(dir.join("ext.cnf"), format!("subjectAltName={}\nextendedKeyUsage=serverAuth\n", sans.join(",")))
        .unwrap();
    let run = |args: &[&str]| {
        let out = std::process::Command::new("openssl").args(args).current_dir(dir).output().expect("openssl");
        assert!(out.status.success(), "openssl {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    };
    run(&["req", "-new", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=kubelet", "-keyout", "k.key", "-out", "k.csr"]);
    let (ca, ca_key) = (pki.join("ca.crt"), pki.join("ca.key"));
    run(&[
        "x509",
        "-req",
        "-in",
        "k.csr",
        "-CA",
        ca.to_str().unwrap(),
        "-CAkey",
        ca_key.to_str().unwrap(),
        "-CAcreateserial",
        "-days",
        "1",
        "-extfile",
        "ext.cnf",
        "-out",
        "k.crt",
    ]);
    (dir.join("k.crt").display().to_string(), dir.join("k.key").display().to_string())
}

/// `usage.kubelet: direct` with `config/kubernetes/kubelet-direct/rbac.yaml`
/// applied over the shipped RBAC: the daemon's collector reads usage from the
/// kubelet (serving certificate verified against the cluster CA, its own
/// token, `nodes/stats`), the node proxy answers 403 (no `nodes/proxy`), and
/// the kubelet answers 401 without a token and 403 to a token without the grant.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn direct_kubelet_usage_with_only_nodes_stats() {
    use heatscaler_daemon::config::{KubeletAccess, UsageCollection};
    use heatscaler_daemon::usage::collector::{ScrapeTarget, UsageCollector};
    let k8s = TestKubernetes::start(Knobs::default());
    let admin = k8s.admin().await;
    let tmp = tempfile::tempdir().unwrap();
    let network = std::net::Ipv4Addr::new(198, 19, 254, 0);
    let (cert, key) = kubelet_serving_cert(&k8s, tmp.path(), network);
    let options = kubelet_emu::EmulatorOptions::new(admin.clone(), cert, key)
        .timing(Timing::fast())
        .node_network((network, 24))
        .webhook_auth(true);
    let emu = kubelet_emu::Emulator::start(options).await.expect("start the emulator");
    two_busy_web_replicas_on_one_minion(&admin, &emu).await;

    let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
    let direct_rbac = repo.join("config/kubernetes/kubelet-direct/rbac.yaml");
    k8s.kubectl(&["apply", "-f", direct_rbac.to_str().unwrap()]);
    let token = k8s.kubectl(&["create", "token", "heatscaler", "-n", "heatscaler"]);
    let token_file = tmp.path().join("token");
    std::fs::write(&token_file, token.trim()).unwrap();
    let ca = Path::new(k8s.var("HEATSCALER_K8S_KUBELET_CERT")).parent().unwrap().join("ca.crt");

    let heatscaler = k8s.heatscaler().await;
    let config = UsageCollection {
        kubelet: KubeletAccess::Direct,
        kubelet_ca_file: Some(ca.clone()),
        kubelet_token_file: token_file.clone(),
        ..UsageCollection::default()
    };
    let mut collector = UsageCollector::new(heatscaler.clone(), &config);
    // The kubelet's address as the daemon's node watch reads it.
    let node: Node = Api::all(admin.clone()).get("minion-0").await.unwrap();
    let address = heatscaler_daemon::observe::convert::kubelet_address(&node);
    let nodes = vec![ScrapeTarget { node: "minion-0".to_string(), kubelet: address.clone() }];
    let deadline = std::time::Instant::now() + WAIT;
    let scrape = loop {
        let scrape = collector.collect(&nodes, jiff::Timestamp::now()).await;
        if scrape.errors.is_empty() && scrape.containers.len() == 2 {
            break scrape;
        }
        assert!(std::time::Instant::now() < deadline, "usage of two pods read directly: {:?}", scrape.errors);
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    assert_eq!(scrape.nodes.len(), 1);
    for c in &scrape.containers {
        assert_eq!(c.memory_working_set, Some(300 << 20), "{c:?}");
    }

    // The same account through the node proxy: 403 from the API server.
    let proxy =
        heatscaler_daemon::usage::collector::proxy_path("minion-0", heatscaler_daemon::config::UsageSource::Summary)
            .unwrap();
    let denied = wait_for("the node proxy denied once the direct ClusterRole applies", WAIT, || async {
        match heatscaler.request_text(http::Request::get(&proxy).body(Vec::new()).unwrap()).await {
            Err(kube::Error::Api(e)) if e.code == 403 => Some(e),
            _ => None,
        }
    })
    .await;
    assert!(denied.message.contains("nodes/proxy"), "{}", denied.message);

    // The kubelet itself: no token → 401; a token without the grant → 403.
    let url = format!("{}/stats/summary", address.unwrap());
    let pem = std::fs::read(&ca).unwrap();
    let http = reqwest::Client::builder()
        .tls_built_in_root_certs(false)
        .add_root_certificate(reqwest::Certificate::from_pem(&pem).unwrap())
        .build()
        .unwrap();
    assert_eq!(http.get(&url).send().await.unwrap().status(), 401);
    k8s.kubectl(&["create", "serviceaccount", "nobody", "-n", NS]);
    let nobody = k8s.kubectl(&["create", "token", "nobody", "-n", NS]);
    let answer = http.get(&url).bearer_auth(nobody.trim()).send().await.unwrap();
    assert_eq!(answer.status(), 403);
    let text = answer.text().await.unwrap();
    assert!(text.contains("subresource=stats"), "{text}");
    assert_eq!(http.get(&url).bearer_auth(token.trim()).send().await.unwrap().status(), 200);
    // cAdvisor is nodes/metrics, which the direct ClusterRole does not grant.
    let metrics = url.replace("stats/summary", "metrics/cadvisor");
    assert_eq!(http.get(&metrics).bearer_auth(token.trim()).send().await.unwrap().status(), 403);
}
