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
use k8s_openapi::api::core::v1::Pod;
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
            labels: BTreeMap::from([(ZONE.to_string(), zone.to_string())]),
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
    let store = observer.store();
    let deadline = std::time::Instant::now() + WAIT;
    loop {
        let s = store.lock().await;
        if s.snapshot().pods.iter().any(|p| p.name == "db-1" && p.is_unschedulable()) {
            break;
        }
        drop(s);
        assert!(std::time::Instant::now() < deadline, "db-1 not seen unschedulable");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let mut s = store.lock().await;
    // zone-a first: without the zone term it would win every tie (and db-1 fits m-a).
    s.set_groups(vec![group("zone-a", "a", "m-a"), group("zone-b", "b", "m-b")]);
    let now = Timestamp::now() + SignedDuration::from_mins(5);
    let plan = plan(
        &Input { snapshot: s.snapshot(), usage: None, memory: &Memory::default(), now, observations: None },
        &Policy::default(),
    );
    let grown: Vec<(&str, u32)> = plan
        .actions
        .iter()
        .filter_map(|a| if let Action::ScaleUp(u) = a { Some((u.group.as_str(), u.new_desired)) } else { None })
        .collect();
    assert_eq!(grown, [("zone-b", 2)], "{}", plan.explanation);
}
