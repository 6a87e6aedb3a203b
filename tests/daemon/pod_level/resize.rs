//! Recommendations written to VPA objects and applied to pods in place,
//! evicted, or turned into node-level needs.

use std::collections::BTreeSet;

use heatscaler_core::model::{GroupState, Member, MemberStatus, NodeShape, ResizeState, Resources, UpdateMode};
use heatscaler_core::planner::action::{Action, ContainerResize, ResizePod};
use heatscaler_core::planner::explain::{CpuMemory, PodOutcome, ResizeDecision};
use heatscaler_daemon::config::UpdaterSettings;
use heatscaler_daemon::vpa::client::{self, ResizeOutcome};
use k8s_openapi::api::core::v1::Pod;
use kube::api::Api;
use kubesim::{NodeSpec, PodTemplate, UsageModel, UsageTarget};

use super::{PodLevel, create_vpa, eager, mode, pods_of, start, vpa_status};

const MI: u64 = 1 << 20;

fn uids(pods: &[Pod]) -> BTreeSet<String> {
    pods.iter().map(|p| p.metadata.uid.clone().unwrap()).collect()
}

/// (spec cpu request, applied cpu request, restart count) of a pod's container.
fn cpu_of(pod: &Pod) -> (String, Option<String>, i32) {
    let spec = pod.spec.as_ref().unwrap().containers[0].resources.as_ref().unwrap();
    let status = &pod.status.as_ref().unwrap().container_statuses.as_ref().unwrap()[0];
    (
        spec.requests.as_ref().unwrap()["cpu"].0.clone(),
        status.resources.as_ref().and_then(|r| r.requests.as_ref()).map(|r| r["cpu"].0.clone()),
        status.restart_count,
    )
}

fn milli(q: &str) -> i64 {
    heatscaler_core::model::quantity::parse_milli(q).unwrap()
}

async fn web(sim: &kubesim::KubeSimHandle, name: &str, replicas: i32) {
    let template = PodTemplate::new("app")
        .label("app", name)
        .requests("100m", "128Mi")
        .limits("200m", "512Mi")
        .resize_policy("cpu", "NotRequired")
        .resize_policy("memory", "NotRequired");
    sim.create(&template.deployment("default", name, replicas)).unwrap();
    sim.wait_for("replicas ready", super::WAIT, |s| s.ready_pods(Some("default")) >= replicas as usize).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn usage_stepping_up_raises_the_recommendation_and_resizes_pods_in_place() {
    let (sim, client) =
        start(vec![NodeSpec::new("node-0").cpu("4").memory("8Gi"), NodeSpec::new("node-1").cpu("4").memory("8Gi")])
            .await;
    web(&sim, "web", 2).await;
    let target = UsageTarget::selector(Some("default"), "app=web");
    sim.set_usage(target.clone(), UsageModel::constant(50, 100 * MI)).unwrap();
    create_vpa(&client, "web", mode(UpdateMode::InPlaceOrRecreate)).await;
    let before = uids(&pods_of(&client, "web").await);

    let mut daemon = PodLevel::new(client.clone(), eager());
    daemon
        .until("a first recommendation", async |c: &kube::Client, _: &_| {
            vpa_status(c, "web").await.is_some_and(|s| s.recommendation.is_some())
        })
        .await;
    sim.set_usage(target, UsageModel::constant(900, 150 * MI)).unwrap();
    daemon
        .until("pods resized to the raised recommendation", async |c: &kube::Client, _: &_| {
            let Some(status) = vpa_status(c, "web").await else { return false };
            let Some(rec) = status.recommendation else { return false };
            let wanted = milli(&rec.container_recommendations[0].target["cpu"].0);
            let pods = pods_of(c, "web").await;
            // Resized to the raised target, to within the updater's
            // `min-change-fraction` of it (of the request): a target that
            // rises on after a resize by less than that is not chased, and
            // without a safety margin it lands just above the usage, so the
            // pod's request can sit a little below 900m.
            let close = UpdaterSettings::default().min_change_fraction.0;
            wanted >= 900
                && pods.iter().all(|p| {
                    let (spec, applied, _) = cpu_of(p);
                    let spec = milli(&spec);
                    (wanted as f64 - spec as f64) < close * spec as f64 && applied.as_deref().map(milli) == Some(spec)
                })
        })
        .await;
    let pods = pods_of(&client, "web").await;
    assert_eq!(uids(&pods), before, "resized in place: same pods");
    assert!(pods.iter().all(|p| cpu_of(p).2 == 0), "no container restarted");
    let provided = vpa_status(&client, "web").await.unwrap().conditions;
    assert!(provided.iter().any(|c| c.type_ == "RecommendationProvided" && c.status == "True"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn off_mode_writes_recommendations_and_touches_no_pod() {
    let (sim, client) = start(vec![NodeSpec::new("node-0").cpu("4").memory("8Gi")]).await;
    web(&sim, "quiet", 2).await;
    sim.set_usage(UsageTarget::selector(Some("default"), "app=quiet"), UsageModel::constant(900, 150 * MI)).unwrap();
    create_vpa(&client, "quiet", mode(UpdateMode::Off)).await;
    let before: Vec<_> = pods_of(&client, "quiet").await.iter().map(|p| (p.metadata.uid.clone(), cpu_of(p))).collect();

    let mut daemon = PodLevel::new(client.clone(), eager());
    for _ in 0..3 {
        let plan = daemon.pass().await;
        assert!(!plan.actions.iter().any(|a| matches!(a, Action::ResizePod(_) | Action::RecreatePod(_))));
        super::next_second().await;
    }
    let plan = daemon
        .until("a recommendation above the requests", async |c: &kube::Client, _: &_| {
            vpa_status(c, "quiet")
                .await
                .and_then(|s| s.recommendation)
                .is_some_and(|r| milli(&r.container_recommendations[0].target["cpu"].0) > 100)
        })
        .await;
    let only = ResizeDecision::RecommendationOnly { mode: "Off" };
    assert_eq!(plan.explanation.resize_count("default/quiet", &only), 2, "{}", plan.explanation);
    let after: Vec<_> = pods_of(&client, "quiet").await.iter().map(|p| (p.metadata.uid.clone(), cpu_of(p))).collect();
    assert_eq!(before, after, "no pod touched");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_infeasible_resize_becomes_a_node_level_need_then_a_recreate() {
    let (sim, client) = start(vec![NodeSpec::new("node-0").cpu("2").memory("8Gi")]).await;
    let template = PodTemplate::new("app")
        .label("app", "big")
        .requests("500m", "256Mi")
        .memory_limit("1Gi")
        .resize_policy("cpu", "NotRequired")
        .resize_policy("memory", "NotRequired");
    sim.create(&template.deployment("default", "big", 2)).unwrap();
    sim.wait_for("replicas ready", super::WAIT, |s| s.ready_pods(Some("default")) >= 2).await.unwrap();
    sim.set_usage(UsageTarget::selector(Some("default"), "app=big"), UsageModel::constant(2600, 300 * MI)).unwrap();
    create_vpa(&client, "big", mode(UpdateMode::InPlaceOrRecreate)).await;

    // A resize beyond what node-0 can ever hold (sent as an earlier pass would have).
    let pods = pods_of(&client, "big").await;
    let victim = pods[0].clone();
    let key = heatscaler_core::model::PodKey {
        namespace: "default".into(),
        name: victim.metadata.name.clone().unwrap().into(),
    };
    let uid: heatscaler_core::model::Name = victim.metadata.uid.clone().unwrap().into();
    let api: Api<Pod> = Api::default_namespaced(client.clone());
    let resize = ResizePod {
        pod: key.clone(),
        uid: uid.clone(),
        node: "node-0".into(),
        vpa: "default/big".into(),
        containers: vec![ContainerResize {
            container: "app".into(),
            from: CpuMemory { cpu_milli: 500, memory: 256 * MI as i64 },
            requests: CpuMemory { cpu_milli: 3000, memory: 256 * MI as i64 },
            limits: CpuMemory::default(),
        }],
        reason: heatscaler_core::planner::explain::UpdateReason::DoesNotFitNode { node: "node-0".into() },
    };
    let sent = client::resize_pod(&api, &resize, heatscaler_core::model::Timestamp::now()).await.unwrap();
    assert!(matches!(sent, ResizeOutcome::Requested { .. }), "{sent:?}");
    assert_eq!(
        client::resize_pod(&api, &resize, heatscaler_core::model::Timestamp::now()).await.unwrap(),
        ResizeOutcome::AlreadyRequested
    );

    let mut daemon = PodLevel::new(client.clone(), eager());
    // The replacement gets the recommendation: recreating is worth it.
    daemon.admission_controller = true;
    daemon.groups = vec![group(&["node-0"])];
    let plan = daemon
        .until(
            "the infeasible resize read back and handed to scale-up",
            async |_: &kube::Client, plan: &heatscaler_core::planner::Plan| {
                matches!(plan.explanation.resize(&key), Some(ResizeDecision::NeedsCapacity { .. }))
            },
        )
        .await;
    let Some(ResizeDecision::NeedsCapacity { outcome, .. }) = plan.explanation.resize(&key) else { unreachable!() };
    assert_eq!(outcome, &PodOutcome::TriggersScaleUp { group: "workers".into() });
    assert!(plan.actions.iter().any(|a| matches!(a, Action::ScaleUp(s) if s.group == "workers")));
    let observed = super::observe::snapshot(&client, heatscaler_core::model::Timestamp::now()).await;
    let state = &observed.pods.iter().find(|p| p.uid == uid).unwrap().resize;
    assert!(matches!(state, ResizeState::Infeasible { .. }), "{state:?}");

    // The new minion is up: the pod is evicted to be recreated where it fits.
    sim.add_node(NodeSpec::new("node-1").cpu("8").memory("16Gi")).unwrap();
    daemon.groups = vec![group(&["node-0", "node-1"])];
    daemon
        .until("the pod evicted", async |c: &kube::Client, _: &_| {
            let pods: Api<Pod> = Api::default_namespaced(c.clone());
            pods.get_opt(&key.name).await.unwrap().is_none_or(|p| p.metadata.deletion_timestamp.is_some())
        })
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_oom_killed_container_gets_a_memory_bump_in_place() {
    let (sim, client) = start(vec![NodeSpec::new("node-0").cpu("4").memory("8Gi")]).await;
    let template = PodTemplate::new("app")
        .label("app", "leaky")
        .requests("100m", "300Mi")
        .limits("200m", "400Mi")
        .resize_policy("cpu", "NotRequired")
        .resize_policy("memory", "NotRequired");
    sim.create(&template.deployment("default", "leaky", 1)).unwrap();
    sim.wait_for("replica ready", super::WAIT, |s| s.ready_pods(Some("default")) >= 1).await.unwrap();
    create_vpa(&client, "leaky", mode(UpdateMode::InPlaceOrRecreate)).await;
    let uid = pods_of(&client, "leaky").await[0].metadata.uid.clone().unwrap();
    let target = UsageTarget::selector(Some("default"), "app=leaky");
    sim.set_usage(target.clone(), UsageModel::constant(50, 300 * MI)).unwrap();

    let mut daemon = PodLevel::new(client.clone(), heatscaler_daemon::config::UpdaterSettings::default());
    let settled = daemon
        .until("a first recommendation", async |c: &kube::Client, _: &_| {
            vpa_status(c, "leaky").await.is_some_and(|s| s.recommendation.is_some())
        })
        .await;
    assert!(!settled.actions.iter().any(|a| matches!(a, Action::ResizePod(_))), "within bounds before the leak");
    // The leak: above the 400Mi limit, killed at once and after every restart.
    sim.set_usage(target, UsageModel::constant(50, 500 * MI)).unwrap();
    let plan = daemon
        .until("a memory bump after the OOM kill", async |_: &kube::Client, plan: &heatscaler_core::planner::Plan| {
            plan.actions.iter().any(|a| matches!(a, Action::ResizePod(r) if matches!(r.reason, heatscaler_core::planner::explain::UpdateReason::OomKilled { .. })))
        })
        .await;
    let Some(Action::ResizePod(r)) = plan.actions.iter().find(|a| matches!(a, Action::ResizePod(_))) else {
        unreachable!()
    };
    let (request, limit) = (r.containers[0].requests.memory, r.containers[0].limits.memory);
    assert!(request > 300 * MI as i64, "bumped from 300Mi to {request}");
    assert_eq!(limit, request * 4 / 3, "the limit keeps its ratio to the request");
    let pod = &pods_of(&client, "leaky").await[0];
    assert_eq!(pod.metadata.uid.as_deref(), Some(uid.as_str()), "resized in place, not recreated");
    let limit =
        &pod.spec.as_ref().unwrap().containers[0].resources.as_ref().unwrap().limits.as_ref().unwrap()["memory"];
    assert!(
        heatscaler_core::model::quantity::parse_units(&limit.0).unwrap() > 500 * MI as i64,
        "limit {limit:?} above usage"
    );
}

/// The Heat group the nodes belong to, with room to grow.
fn group(nodes: &[&str]) -> GroupState {
    GroupState {
        name: "workers".into(),
        desired: nodes.len() as u32,
        min_size: 1,
        max_size: 5,
        members: nodes
            .iter()
            .map(|n| Member {
                id: n.to_string(),
                node_name: Some(n.to_string()),
                status: MemberStatus::Complete,
                created: None,
            })
            .collect(),
        stack_busy: false,
        template: Some(NodeShape {
            allocatable: Resources { cpu_milli: 8000, memory: 16 << 30, pods: 110, ..Resources::default() },
            ..NodeShape::default()
        }),
        price_per_hour: 1.0,
        priority: 0,
    }
}
