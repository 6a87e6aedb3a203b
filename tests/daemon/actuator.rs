//! The actuator's Kubernetes steps against kubesim over HTTP: evictions that
//! honour budgets and uids, the phase checks that make each step idempotent,
//! and node patches that survive a concurrent writer. (The Heat steps run in
//! tests/openstack/e2e.rs against a real Heat.)

use std::sync::Arc;
use std::time::{Duration, Instant};

use heatscaler_core::model::{PodKey, Timestamp};
use heatscaler_core::planner::Action;
use heatscaler_core::planner::action::{EvictPods, Eviction, MarkDrained, RollBackRemoval};
use heatscaler_core::planner::explain::RollbackReason;
use heatscaler_core::planner::protocol::{self, NodePatch, Phase, RemovalKind, RemovalRecord};
use heatscaler_daemon::act::{Actuator, Outcome};
use heatscaler_daemon::alerts::capture::{Captured, capturing_dispatcher};
use heatscaler_daemon::alerts::{ObjectRef, Reason, ScalingEvent};
use heatscaler_daemon::observe::HeatPoke;
use heatscaler_daemon::telemetry::Metrics;
use k8s_openapi::api::core::v1::{Node, Pod};
use kubesim::builders::{Budget, PodTemplate, pdb};
use kubesim::{FaultRule, KubeSim, KubeSimHandle, NodeSpec, Options};

struct Fixture {
    sim: KubeSimHandle,
    actuator: Actuator,
    events: Arc<Captured>,
    metrics: Arc<Metrics>,
}

async fn fixture() -> Fixture {
    let sim = KubeSim::start(Options::fast()).await.unwrap();
    sim.add_node(NodeSpec::new("m-1").cpu("4").memory("8Gi")).unwrap();
    sim.add_node(NodeSpec::new("m-2").cpu("4").memory("8Gi")).unwrap();
    let metrics = Arc::new(Metrics::new());
    let (alerts, events) = capturing_dispatcher(metrics.clone());
    // As the daemon builds it: no kube-rs retries of its own.
    let client = sim.kube_client_without_retries().unwrap();
    let actuator = Actuator::new(client, Vec::new(), alerts, metrics.clone(), HeatPoke::default(), false);
    Fixture { sim, actuator, events, metrics }
}

fn record(phase: Phase, cordoned_before: bool) -> RemovalRecord {
    let t: Timestamp = "2026-01-01T00:00:00Z".parse().unwrap();
    RemovalRecord {
        phase,
        kind: RemovalKind::Drain,
        started: t,
        drained: (phase >= Phase::Drained).then_some(t),
        requested: (phase == Phase::Removing).then_some(t),
        group: "workers".into(),
        member: "1".into(),
        cordoned_before,
    }
}

impl Fixture {
    fn node(&self, name: &str) -> Node {
        self.sim.get::<Node>(None, name).unwrap()
    }

    /// Writes a removal record onto a node the way StartRemoval does, through the API.
    async fn put_record(&self, node: &str, r: &RemovalRecord) {
        let patch = NodePatch {
            set_annotations: r.to_annotations(),
            add_taint: Some(protocol::removal_taint(r.started)),
            unschedulable: Some(true),
            departure: Some(protocol::DepartureMarks::Set(r.started)),
            ..NodePatch::default()
        };
        self.actuator.kube().patch_node(&self.node(node), &patch).await.unwrap();
    }

    /// A Deployment of one pod pinned to `node` (by cordoning the other).
    async fn pod_on(&self, node: &str, name: &str) -> Pod {
        let other = if node == "m-1" { "m-2" } else { "m-1" };
        let cordon = |on: bool| {
            self.sim
                .update::<Node>(None, other, |n| n.spec.get_or_insert_with(Default::default).unschedulable = Some(on))
        };
        cordon(true).unwrap();
        let d = PodTemplate::new("c").label("app", name).requests("100m", "64Mi").grace_period(1);
        self.sim.create(&d.deployment("default", name, 1)).unwrap();
        let mut found = None;
        self.sim
            .wait_for(name, Duration::from_secs(10), |h| {
                found = h.list::<Pod>(Some("default")).into_iter().find(|p| {
                    p.metadata.name.as_deref().unwrap().starts_with(name)
                        && p.spec.as_ref().and_then(|s| s.node_name.as_deref()) == Some(node)
                        && p.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Running")
                });
                found.is_some()
            })
            .await
            .unwrap();
        cordon(false).unwrap();
        found.unwrap()
    }

    async fn events(&self, reason: &str) -> Vec<ScalingEvent> {
        // Delivery is asynchronous; the capture sink is fast.
        tokio::time::sleep(Duration::from_millis(100)).await;
        self.events.0.lock().unwrap().iter().filter(|e| e.reason.as_str() == reason).cloned().collect()
    }
}

fn eviction(p: &Pod) -> Eviction {
    Eviction {
        pod: PodKey { namespace: "default".into(), name: p.metadata.name.clone().unwrap().into() },
        uid: p.metadata.uid.clone().unwrap().into(),
    }
}

fn now() -> Timestamp {
    Timestamp::now()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn evictions_honour_budgets_and_uids_and_a_refusal_comes_back_at_once() {
    let f = fixture().await;
    let guarded = f.pod_on("m-1", "guarded").await;
    let free = f.pod_on("m-1", "free").await;
    f.sim.create(&pdb("default", "guarded", &[("app", "guarded")], Budget::MinAvailable(1.into()))).unwrap();
    f.sim
        .wait_for("budget observed", Duration::from_secs(10), |h| {
            h.get::<k8s_openapi::api::policy::v1::PodDisruptionBudget>(Some("default"), "guarded")
                .and_then(|p| p.status)
                .is_some_and(|s| s.observed_generation.is_some() && s.expected_pods == 1)
        })
        .await
        .unwrap();
    f.put_record("m-1", &record(Phase::Draining, false)).await;

    let mut stale = eviction(&free);
    stale.uid = "a-pod-that-was-replaced".into();
    let gone = Eviction { pod: PodKey { namespace: "default".into(), name: "never-existed".into() }, uid: "x".into() };
    let action = Action::EvictPods(EvictPods {
        node: "m-1".into(),
        pods: vec![eviction(&guarded), stale, gone],
        max_grace: Duration::from_secs(5),
    });
    let start = Instant::now();
    let outcome = f.actuator.execute(&action, now()).await;
    assert!(
        start.elapsed() < Duration::from_secs(5),
        "a 429 is an answer, not something to retry: {:?}",
        start.elapsed()
    );
    let Outcome::Done(summary) = outcome else { panic!("{outcome:?}") };
    assert!(summary.contains("0 evicted, 1 refused by a PodDisruptionBudget"), "{summary}");
    assert!(summary.contains("2 already gone"), "{summary}");
    let blocked = f.events("EvictionBlocked").await;
    assert_eq!(blocked.len(), 1);
    assert_eq!(blocked[0].fields["pdb"], "guarded");
    assert!(
        f.metrics.encode().contains("heatscaler_eviction_pdb_rejections_total{purpose=\"drain\"} 1"),
        "{}",
        f.metrics.encode()
    );
    // The pod named with a stale uid was left alone.
    let still = f.sim.get::<Pod>(Some("default"), free.metadata.name.as_deref().unwrap()).unwrap();
    assert!(still.metadata.deletion_timestamp.is_none());

    // With the right uid it goes, with the grace period capped.
    let action = Action::EvictPods(EvictPods {
        node: "m-1".into(),
        pods: vec![eviction(&free)],
        max_grace: Duration::from_secs(5),
    });
    let Outcome::Done(summary) = f.actuator.execute(&action, now()).await else { panic!() };
    assert!(summary.contains("1 evicted"), "{summary}");
    assert_eq!(f.events("PodEvicted").await.len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_step_checks_the_phase_it_expects() {
    let f = fixture().await;
    let pod = f.pod_on("m-1", "web").await;
    let evict = Action::EvictPods(EvictPods {
        node: "m-1".into(),
        pods: vec![eviction(&pod)],
        max_grace: Duration::from_secs(5),
    });
    // No removal record: nothing is evicted.
    assert!(matches!(f.actuator.execute(&evict, now()).await, Outcome::Skipped(_)));
    assert!(
        f.sim
            .get::<Pod>(Some("default"), pod.metadata.name.as_deref().unwrap())
            .unwrap()
            .metadata
            .deletion_timestamp
            .is_none()
    );

    // Draining with a workload pod left: not drained yet.
    f.put_record("m-1", &record(Phase::Draining, false)).await;
    let mut drained = record(Phase::Drained, false);
    drained.drained = Some(now());
    let mark = Action::MarkDrained(MarkDrained { node: "m-1".into(), record: drained });
    let Outcome::Skipped(why) = f.actuator.execute(&mark, now()).await else { panic!() };
    assert!(why.contains("still on the node"), "{why}");

    // Once the pod has gone, the node is marked drained, once.
    f.sim
        .update::<k8s_openapi::api::apps::v1::Deployment>(Some("default"), "web", |d| {
            d.spec.as_mut().unwrap().replicas = Some(0)
        })
        .unwrap();
    f.sim.wait_for("web gone", Duration::from_secs(10), |h| h.list::<Pod>(Some("default")).is_empty()).await.unwrap();
    assert!(matches!(f.actuator.execute(&mark, now()).await, Outcome::Done(_)));
    assert_eq!(f.node("m-1").metadata.annotations.unwrap()[protocol::PHASE], "drained");
    assert!(matches!(f.actuator.execute(&mark, now()).await, Outcome::Skipped(_)), "idempotent");
    assert_eq!(f.events("DrainFinished").await.len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rollback_restores_the_node_but_never_touches_a_removing_one() {
    let f = fixture().await;
    // Someone else's taint stays through the rollback.
    f.sim
        .update::<Node>(None, "m-1", |n| {
            n.spec.get_or_insert_with(Default::default).taints = Some(vec![k8s_openapi::api::core::v1::Taint {
                key: "dedicated".into(),
                value: Some("db".into()),
                effect: "NoSchedule".into(),
                time_added: None,
            }]);
        })
        .unwrap();
    f.put_record("m-1", &record(Phase::Drained, false)).await;
    f.put_record("m-2", &record(Phase::Removing, false)).await;
    // A concurrent writer: the first node patch meets a newer node (409); the step reads again.
    f.sim.add_fault(FaultRule::error(409, 1.0).on_path("/api/v1/nodes/m-1").on_verbs(&["patch"]).times(1));
    let back = |node: &str| {
        Action::RollBackRemoval(RollBackRemoval {
            node: node.into(),
            uncordon: true,
            reason: RollbackReason::NeededAgain { pods: 2 },
        })
    };
    assert!(matches!(f.actuator.execute(&back("m-1"), now()).await, Outcome::Done(_)));
    let n = f.node("m-1");
    assert_eq!(n.spec.as_ref().unwrap().unschedulable, Some(false));
    let taints: Vec<String> = n.spec.unwrap().taints.unwrap_or_default().into_iter().map(|t| t.key).collect();
    assert!(!taints.contains(&protocol::REMOVAL_TAINT.to_string()), "{taints:?}");
    assert!(taints.contains(&"dedicated".to_string()), "{taints:?}");
    assert!(!taints.contains(&protocol::CA_REMOVAL_TAINT.to_string()), "{taints:?}");
    let labels = n.metadata.labels.clone().unwrap_or_default();
    assert!(!labels.contains_key(protocol::EXCLUDE_FROM_LB_LABEL), "{labels:?}");
    let annotations = n.metadata.annotations.unwrap_or_default();
    assert!(protocol::REMOVAL_ANNOTATIONS.iter().all(|k| !annotations.contains_key(*k)), "{annotations:?}");
    assert_eq!(f.events("ScaleDownAborted").await.len(), 1);

    let Outcome::Skipped(why) = f.actuator.execute(&back("m-2"), now()).await else { panic!() };
    assert!(why.contains("never rolled back"), "{why}");
    assert_eq!(f.node("m-2").metadata.annotations.unwrap()[protocol::PHASE], "removing");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dry_run_reports_and_changes_nothing() {
    let f = fixture().await;
    let pod = f.pod_on("m-1", "web").await;
    f.put_record("m-1", &record(Phase::Draining, false)).await;
    let client = f.sim.kube_client_without_retries().unwrap();
    let (alerts, events) = capturing_dispatcher(f.metrics.clone());
    let dry = Actuator::new(client, Vec::new(), alerts, f.metrics.clone(), HeatPoke::default(), true);
    let evict = Action::EvictPods(EvictPods {
        node: "m-1".into(),
        pods: vec![eviction(&pod)],
        max_grace: Duration::from_secs(5),
    });
    assert!(matches!(dry.execute(&evict, now()).await, Outcome::DryRun));
    let mark = Action::MarkDrained(MarkDrained { node: "m-1".into(), record: record(Phase::Drained, false) });
    assert!(matches!(dry.execute(&mark, now()).await, Outcome::DryRun));
    tokio::time::sleep(Duration::from_millis(100)).await;
    let seen = events.0.lock().unwrap().clone();
    assert_eq!(seen.len(), 2);
    assert!(seen[0].message.starts_with("dry run: would evict 1 pod(s) from node m-1"), "{}", seen[0].message);
    assert_eq!(seen[0].fields["dry_run"], "true");
    // The Event of the step it stands for, on the action's target, in its group (if it names one).
    assert_eq!(
        (seen[0].reason, &seen[0].object, &seen[0].group),
        (Reason::DrainStarted, &Some(ObjectRef::node("m-1")), &None)
    );
    assert_eq!(seen[1].message, "dry run: would mark node m-1 drained");
    assert_eq!(
        (seen[1].reason, &seen[1].object, seen[1].group.as_deref()),
        (Reason::DrainFinished, &Some(ObjectRef::node("m-1")), Some("workers"))
    );
    assert!(
        f.sim
            .get::<Pod>(Some("default"), pod.metadata.name.as_deref().unwrap())
            .unwrap()
            .metadata
            .deletion_timestamp
            .is_none()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_throttling_429_is_retried_and_not_taken_for_a_budget() {
    let f = fixture().await;
    let pod = f.pod_on("m-1", "throttled").await;
    f.put_record("m-1", &record(Phase::Draining, false)).await;
    // API priority-and-fairness: 429 TooManyRequests without a DisruptionBudget cause.
    let fault = f.sim.add_fault(
        FaultRule::throttle(1.0, 0).on_path("/api/v1/namespaces/default/pods/").on_verbs(&["create"]).times(2),
    );
    let action = Action::EvictPods(EvictPods {
        node: "m-1".into(),
        pods: vec![eviction(&pod)],
        max_grace: Duration::from_secs(5),
    });
    let Outcome::Done(summary) = f.actuator.execute(&action, now()).await else { panic!() };
    assert_eq!(f.sim.faults().hits(fault).len(), 2, "the throttled eviction was not retried");
    assert!(summary.contains("1 evicted"), "{summary}");
    assert!(f.events("EvictionBlocked").await.is_empty(), "throttling reported as a budget refusal");
    assert!(!f.metrics.encode().contains("heatscaler_eviction_pdb_rejections_total{purpose=\"drain\"} 1"));
}

/// Issue 17: a resize that would change the pod's QoS class is refused with
/// 422 "Pod QOS Class may not change". The planner predicts that case; should
/// one reach the API server anyway, it is reported once and not sent again
/// while the pod and the resize stay the same.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_resize_refused_as_invalid_is_reported_and_not_sent_again() {
    use heatscaler_core::planner::action::{ContainerResize, ResizePod};
    use heatscaler_core::planner::explain::{CpuMemory, UpdateReason};
    let f = fixture().await;
    let sim = &f.sim;
    let d = PodTemplate::new("c").label("app", "batch").grace_period(1);
    sim.create(&d.deployment("default", "batch", 1)).unwrap();
    sim.wait_for("batch running", Duration::from_secs(10), |s| s.ready_pods(Some("default")) >= 1).await.unwrap();
    let pod = sim.list::<Pod>(Some("default")).into_iter().next().unwrap();
    assert_eq!(pod.status.as_ref().and_then(|s| s.qos_class.as_deref()), Some("BestEffort"));
    let resize = |cpu_milli: i64| {
        Action::ResizePod(ResizePod {
            pod: PodKey { namespace: "default".into(), name: pod.metadata.name.clone().unwrap().into() },
            uid: pod.metadata.uid.clone().unwrap().into(),
            node: "m-1".into(),
            vpa: "default/batch".into(),
            containers: vec![ContainerResize {
                container: "c".into(),
                from: CpuMemory::default(),
                requests: CpuMemory { cpu_milli, memory: 128 << 20 },
                limits: CpuMemory::default(),
            }],
            reason: UpdateReason::BelowLowerBound { container: "c".into(), resource: "cpu" },
        })
    };
    let Outcome::Skipped(first) = f.actuator.execute(&resize(300), now()).await else { panic!() };
    assert!(first.contains("refused by the API server") && first.contains("QOS"), "{first}");
    let failed = f.events("PodResizeFailed").await;
    assert_eq!(failed.len(), 1);
    assert!(failed[0].message.contains("not sent again"), "{}", failed[0].message);
    assert!(f.metrics.encode().contains("heatscaler_pod_resizes_total{outcome=\"failed\"} 1"));

    let Outcome::Skipped(again) = f.actuator.execute(&resize(300), now()).await else { panic!() };
    assert!(again.contains("refused this resize") && again.contains("not sent again"), "{again}");
    assert_eq!(f.events("PodResizeFailed").await.len(), 1, "reported once");
    // Another resize of the pod is another request: sent (and refused) again.
    let Outcome::Skipped(other) = f.actuator.execute(&resize(400), now()).await else { panic!() };
    assert!(other.contains("refused by the API server"), "{other}");
}

/// Issue 17, point 6: VPA status and checkpoint writes go through the
/// actuator, which checks dry run in one place (it used to be each caller's).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn vpa_writes_go_through_the_actuator_and_dry_run_writes_none() {
    use heatscaler_daemon::act::VpaWrite;
    use heatscaler_daemon::vpa::{VerticalPodAutoscaler, api};
    use k8s_openapi::api::autoscaling::v1::CrossVersionObjectReference;
    use kube::api::PostParams;
    let f = fixture().await;
    let client = f.sim.kube_client_without_retries().unwrap();
    let spec = api::VerticalPodAutoscalerSpec {
        target_ref: Some(CrossVersionObjectReference {
            api_version: Some("apps/v1".into()),
            kind: "Deployment".into(),
            name: "web".into(),
        }),
        update_policy: None,
        resource_policy: None,
        recommenders: vec![api::RecommenderSelector { name: "heatscaler".into() }],
        startup_boost: None,
    };
    let vpas: kube::Api<VerticalPodAutoscaler> = kube::Api::namespaced(client.clone(), "default");
    vpas.create(&PostParams::default(), &VerticalPodAutoscaler::new("default", "web", spec)).await.unwrap();
    let write = VpaWrite::Status {
        namespace: "default".into(),
        name: "web".into(),
        patch: serde_json::json!({"status": {"recommendation": {"containerRecommendations": [
            {"containerName": "app", "target": {"cpu": "250m", "memory": "128Mi"}}
        ]}}}),
    };
    let recommended = || async { vpas.get("web").await.unwrap().status.and_then(|s| s.recommendation).is_some() };

    let (alerts, _) = capturing_dispatcher(f.metrics.clone());
    let dry = Actuator::new(client.clone(), Vec::new(), alerts, f.metrics.clone(), HeatPoke::default(), true);
    assert!(matches!(dry.write_vpa(&write).await, Outcome::DryRun));
    assert!(matches!(dry.write_vpa(&VpaWrite::Checkpoints(Vec::new())).await, Outcome::DryRun));
    assert!(!recommended().await, "a dry run writes no status");

    assert!(matches!(f.actuator.write_vpa(&write).await, Outcome::Done(_)));
    assert!(recommended().await);
}

mod co_location {
    use heatscaler_core::model::{LabelSelector, PodAffinityTerm, WorkloadRef};
    use heatscaler_core::planner::action::{RemovePreferredAffinity, SetPreferredAffinity};
    use heatscaler_daemon::act::ADVICE_ANNOTATION;
    use k8s_openapi::api::apps::v1::Deployment;
    use k8s_openapi::api::policy::v1::PodDisruptionBudget;
    use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

    use super::*;

    const NS: &str = "default";
    const SUBJECT: &str = "co-locate Deployment/default/web with Deployment/default/cart";

    fn workload(name: &str) -> WorkloadRef {
        WorkloadRef { kind: "Deployment".into(), namespace: NS.into(), name: name.into() }
    }

    fn term() -> PodAffinityTerm {
        let selector = LabelSelector { match_labels: [("app".into(), "cart".into())].into(), ..Default::default() };
        PodAffinityTerm::in_namespace(selector, "kubernetes.io/hostname", NS)
    }

    fn set() -> Action {
        Action::SetPreferredAffinity(SetPreferredAffinity {
            workload: workload("web"),
            server: workload("cart"),
            term: term(),
            weight: 50,
            subject: SUBJECT.into(),
            reason: "80 req/s, p99 2.4 ms same node vs 9.8 ms cross-node, expected gain 296 ms/s".into(),
        })
    }

    fn remove() -> Action {
        Action::RemovePreferredAffinity(RemovePreferredAffinity {
            workload: workload("web"),
            server: workload("cart"),
            term: term(),
            subject: SUBJECT.into(),
            reason: "traffic fell".into(),
        })
    }

    fn preferred(f: &Fixture) -> Vec<serde_json::Value> {
        let d: Deployment = f.sim.get(Some(NS), "web").unwrap();
        let spec = d.spec.unwrap().template.spec.unwrap();
        spec.affinity
            .and_then(|a| a.pod_affinity)
            .and_then(|p| p.preferred_during_scheduling_ignored_during_execution)
            .unwrap_or_default()
            .iter()
            .map(|t| serde_json::to_value(t).unwrap())
            .collect()
    }

    async fn rolled_out(f: &Fixture) {
        f.sim
            .wait_for("web rolled out", Duration::from_secs(30), |h| {
                h.get::<Deployment>(Some(NS), "web").is_some_and(|d| {
                    let s = d.status.unwrap_or_default();
                    s.observed_generation == d.metadata.generation
                        && s.updated_replicas == Some(4)
                        && s.available_replicas == Some(4)
                })
            })
            .await
            .unwrap();
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_term_is_added_within_the_pdb_once_and_withdrawn_only_when_it_is_heatscalers() {
        let f = fixture().await;
        let web = PodTemplate::new("app").label("app", "web").requests("100m", "64Mi");
        f.sim.create(&web.deployment(NS, "web", 4)).unwrap();
        let budget = pdb(NS, "web", &[("app", "web")], Budget::MaxUnavailable(serde_json::json!(0)));
        f.sim.create(&budget).unwrap();
        rolled_out(&f).await;

        // The default rollout takes 25 % of 4 = 1 pod down; the PDB allows none.
        match f.actuator.execute(&set(), now()).await {
            Outcome::Skipped(why) => assert!(why.contains("PodDisruptionBudget web allows 0"), "{why}"),
            other => panic!("{other:?}"),
        }
        assert!(preferred(&f).is_empty());

        f.sim
            .update::<PodDisruptionBudget>(Some(NS), "web", |p| {
                p.spec.as_mut().unwrap().max_unavailable = Some(IntOrString::Int(1));
            })
            .unwrap();
        f.sim
            .wait_for("the PDB allows one", Duration::from_secs(30), |h| {
                h.get::<PodDisruptionBudget>(Some(NS), "web")
                    .is_some_and(|p| p.status.is_some_and(|s| s.disruptions_allowed == 1))
            })
            .await
            .unwrap();
        assert!(matches!(f.actuator.execute(&set(), now()).await, Outcome::Done(_)));
        let terms = preferred(&f);
        assert_eq!(terms.len(), 1, "{terms:?}");
        assert_eq!(terms[0]["weight"], 50);
        assert_eq!(terms[0]["podAffinityTerm"]["labelSelector"]["matchLabels"]["app"], "cart");
        assert_eq!(terms[0]["podAffinityTerm"]["topologyKey"], "kubernetes.io/hostname");
        let d: Deployment = f.sim.get(Some(NS), "web").unwrap();
        assert_eq!(d.metadata.annotations.unwrap()[ADVICE_ANNOTATION], SUBJECT);
        let added = f.events(Reason::PodAffinityAdded.as_str()).await;
        assert_eq!(added.len(), 1);
        assert_eq!(added[0].object.as_ref().unwrap().name, "web");
        assert!(added[0].message.contains("9.8 ms cross-node"), "{}", added[0].message);

        // Asked again next pass: nothing to do.
        rolled_out(&f).await;
        assert!(matches!(f.actuator.execute(&set(), now()).await, Outcome::Skipped(_)));
        assert_eq!(preferred(&f).len(), 1);

        // An operator who took the annotation over owns the term: it stays.
        f.sim
            .update::<Deployment>(Some(NS), "web", |d| {
                d.metadata.annotations.as_mut().unwrap().insert(ADVICE_ANNOTATION.into(), "mine".into());
            })
            .unwrap();
        match f.actuator.execute(&remove(), now()).await {
            Outcome::Skipped(why) => assert!(why.contains("not heatscaler's"), "{why}"),
            other => panic!("{other:?}"),
        }
        f.sim
            .update::<Deployment>(Some(NS), "web", |d| {
                d.metadata.annotations.as_mut().unwrap().insert(ADVICE_ANNOTATION.into(), SUBJECT.into());
            })
            .unwrap();
        rolled_out(&f).await;
        assert!(matches!(f.actuator.execute(&remove(), now()).await, Outcome::Done(_)));
        assert!(preferred(&f).is_empty());
        let d: Deployment = f.sim.get(Some(NS), "web").unwrap();
        assert!(!d.metadata.annotations.unwrap_or_default().contains_key(ADVICE_ANNOTATION));
    }
}
