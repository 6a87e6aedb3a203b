//! Pod affinity over zones, read from a Kubernetes API (kubesim over HTTP)
//! by the daemon's observers and planned on: the Heat side is the groups as
//! the control loop hands them to the store (`set_groups`); no Heat is needed
//! to show which group the plan grows.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use heatscaler_core::model::{GroupState, Member, MemberStatus, NodeShape, Resources, SignedDuration, Timestamp};
use heatscaler_core::planner::action::Action;
use heatscaler_core::planner::{Input, Memory, Policy, plan};
use heatscaler_daemon::observe::{Changes, KubeObserver};
use heatscaler_daemon::telemetry::Metrics;
use k8s_openapi::api::core::v1::{Namespace, Pod};
use kubesim::builders::PodTemplate;
use kubesim::{KubeSim, NodeSpec, Options};

const WAIT: Duration = Duration::from_secs(20);
const ZONE: &str = "topology.kubernetes.io/zone";

fn zone_anti_affine_db(name: &str) -> Pod {
    serde_json::from_value(serde_json::json!({
        "metadata": {"name": name, "namespace": "default", "labels": {"app": "db"}},
        "spec": {
            "containers": [{"name": "db", "image": "registry.k8s.io/pause:3.10",
                            "resources": {"requests": {"cpu": "1", "memory": "1Gi"}}}],
            "affinity": {"podAntiAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [
                {"labelSelector": {"matchLabels": {"app": "db"}}, "topologyKey": ZONE},
            ]}},
        },
    }))
    .unwrap()
}

fn group(name: &str, zone: &str, node: &str) -> GroupState {
    group_labelled(name, node, BTreeMap::from([(ZONE.to_string(), zone.to_string())]))
}

fn group_labelled(name: &str, node: &str, labels: BTreeMap<String, String>) -> GroupState {
    GroupState {
        name: name.into(),
        desired: 1,
        min_size: 0,
        max_size: 5,
        members: vec![Member {
            id: node.into(),
            node_name: Some(node.into()),
            status: MemberStatus::Complete,
            created: None,
        }],
        stack_busy: false,
        template: Some(NodeShape {
            allocatable: Resources { cpu_milli: 4000, memory: 8 << 30, pods: 110, ..Resources::default() },
            labels,
            taints: Vec::new(),
        }),
        price_per_hour: 1.0,
        priority: 0,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_zone_anti_affine_pending_pod_grows_the_group_in_the_other_zone() {
    let sim = KubeSim::start(Options::fast()).await.unwrap();
    sim.add_node(NodeSpec::new("m-a").cpu("4").memory("8Gi").label(ZONE, "a")).unwrap();
    sim.add_node(NodeSpec::new("m-b").cpu("4").memory("8Gi").label(ZONE, "b")).unwrap();
    sim.create(&zone_anti_affine_db("db-0")).unwrap();
    sim.wait_for("db-0 running", WAIT, |h| h.ready_pods(Some("default")) == 1).await.unwrap();
    // Zone b is full; zone a has room, but db-0 runs there.
    let filler = PodTemplate::new("c").label("app", "filler").requests("3500m", "256Mi");
    sim.create(&filler.pod("default", "filler")).unwrap();
    sim.wait_for("filler running", WAIT, |h| h.ready_pods(Some("default")) == 2).await.unwrap();
    sim.create(&zone_anti_affine_db("db-1")).unwrap();
    sim.wait_for("db-1 unschedulable", WAIT, |h| {
        h.get::<Pod>(Some("default"), "db-1").is_some_and(|p| {
            p.status
                .and_then(|s| s.conditions)
                .into_iter()
                .flatten()
                .any(|c| c.reason.as_deref() == Some("Unschedulable"))
        })
    })
    .await
    .unwrap();

    let observer =
        KubeObserver::start(sim.kube_client_without_retries().unwrap(), Arc::new(Metrics::new()), Changes::new());
    tokio::time::timeout(WAIT, observer.health().wait_synced()).await.expect("first sync");
    seen_unschedulable(&observer, "db-1").await;
    // zone-a first: without the zone term it would win every tie (and db-1 fits m-a).
    let grown = grown(&observer, vec![group("zone-a", "a", "m-a"), group("zone-b", "b", "m-b")]).await;
    assert_eq!(grown, [("zone-b".to_string(), 2)]);
}

/// Waits until the observer sees `pod` unschedulable.
async fn seen_unschedulable(observer: &KubeObserver, pod: &str) {
    let deadline = std::time::Instant::now() + WAIT;
    loop {
        let s = observer.store().lock().await;
        if s.snapshot().pods.iter().any(|p| p.name == pod && p.is_unschedulable()) {
            return;
        }
        drop(s);
        assert!(std::time::Instant::now() < deadline, "{pod} not seen unschedulable");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The groups the plan grows, with `groups` as the Heat side.
async fn grown(observer: &KubeObserver, groups: Vec<GroupState>) -> Vec<(String, u32)> {
    let mut s = observer.store().lock().await;
    s.set_groups(groups);
    let now = Timestamp::now() + SignedDuration::from_mins(5);
    let plan = plan(
        &Input { snapshot: s.snapshot(), usage: None, memory: &Memory::default(), now, observations: None },
        &Policy::default(),
    );
    let grown = plan
        .actions
        .iter()
        .filter_map(|a| if let Action::ScaleUp(u) = a { Some((u.group.clone(), u.new_desired)) } else { None })
        .collect();
    // Shown when an assertion on the result fails (the harness captures it).
    eprintln!("{}", plan.explanation);
    grown
}

/// Issue 21: an anti-affinity term with a `namespaceSelector` keeps the pod
/// out of the zone of a matching pod in a namespace the selector selects by
/// its labels — which the daemon reads from the Namespace watch. Without
/// them the term selected no namespace and zone a won the tie.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_anti_affinity_namespace_selector_reads_the_namespaces_labels() {
    let sim = KubeSim::start(Options::fast()).await.unwrap();
    sim.add_node(NodeSpec::new("m-a").cpu("4").memory("8Gi").label(ZONE, "a")).unwrap();
    sim.add_node(NodeSpec::new("m-b").cpu("4").memory("8Gi").label(ZONE, "b")).unwrap();
    for (ns, labels) in [("infra", serde_json::json!({"tier": "db"})), ("apps", serde_json::json!({}))] {
        let ns: Namespace =
            serde_json::from_value(serde_json::json!({"metadata": {"name": ns, "labels": labels}})).unwrap();
        sim.create(&ns).unwrap();
    }
    let pod = |name: &str, namespace: &str, spec: serde_json::Value| -> Pod {
        let mut spec = spec;
        spec["containers"] = serde_json::json!([{"name": "db", "image": "registry.k8s.io/pause:3.10",
            "resources": {"requests": {"cpu": "1", "memory": "1Gi"}}}]);
        serde_json::from_value(serde_json::json!({
            "metadata": {"name": name, "namespace": namespace, "labels": {"app": "db"}}, "spec": spec,
        }))
        .unwrap()
    };
    // db-0 runs in zone a, in the namespace labelled tier=db.
    sim.create(&pod("db-0", "infra", serde_json::json!({"nodeSelector": {ZONE: "a"}}))).unwrap();
    sim.wait_for("db-0 running", WAIT, |h| h.ready_pods(Some("infra")) == 1).await.unwrap();
    // db-1 needs a new minion (pool=new) away from every db of a tier=db namespace.
    let db1 = pod(
        "db-1",
        "apps",
        serde_json::json!({
            "nodeSelector": {"pool": "new"},
            "affinity": {"podAntiAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [
                {"labelSelector": {"matchLabels": {"app": "db"}}, "topologyKey": ZONE,
                 "namespaceSelector": {"matchLabels": {"tier": "db"}}},
            ]}},
        }),
    );
    sim.create(&db1).unwrap();

    let observer =
        KubeObserver::start(sim.kube_client_without_retries().unwrap(), Arc::new(Metrics::new()), Changes::new());
    tokio::time::timeout(WAIT, observer.health().wait_synced()).await.expect("first sync");
    seen_unschedulable(&observer, "db-1").await;
    let pool = |zone: &str| BTreeMap::from([(ZONE.to_string(), zone.to_string()), ("pool".into(), "new".into())]);
    // zone-a first: it wins the tie unless the term covers namespace infra.
    let groups = vec![group_labelled("zone-a", "m-a", pool("a")), group_labelled("zone-b", "m-b", pool("b"))];
    assert_eq!(grown(&observer, groups).await, [("zone-b".to_string(), 2)]);
}
