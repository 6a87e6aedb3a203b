//! The pod level end to end on the real control plane: `heatscaler run` reads
//! usage through the API server's node proxy (the kubelets' Summary API),
//! writes VPA status and resizes pods in place through the `resize`
//! subresource — real admission and validation — as the shipped
//! ServiceAccount; the emulated kubelets answer as the 1.35 kubelet.

use std::time::Duration;

use heatscaler_daemon::vpa::VerticalPodAutoscaler;
use heatscaler_daemon::vpa::api;
use k8s_openapi::api::autoscaling::v1::CrossVersionObjectReference;
use k8s_openapi::api::core::v1::Pod;
use kube::Api;
use kube::api::PostParams;
use kubelet_emu::{UsageModel, UsageTarget};
use kubesim::builders::PodTemplate;

use crate::e2e::KUBE;
use crate::harness::{self, NS, Spec, World};

const MI: u64 = 1 << 20;

async fn create_vpa(w: &World, name: &str, mode: api::UpdateMode) {
    let spec = api::VerticalPodAutoscalerSpec {
        target_ref: Some(CrossVersionObjectReference {
            api_version: Some("apps/v1".into()),
            kind: "Deployment".into(),
            name: name.into(),
        }),
        update_policy: Some(api::PodUpdatePolicy { update_mode: Some(mode), ..Default::default() }),
        resource_policy: None,
        recommenders: vec![api::RecommenderSelector { name: "heatscaler".into() }],
        startup_boost: None,
    };
    let vpas: Api<VerticalPodAutoscaler> = Api::namespaced(w.client.clone(), NS);
    vpas.create(&PostParams::default(), &VerticalPodAutoscaler::new(NS, name, spec)).await.expect("VPA created");
}

fn milli(q: &str) -> i64 {
    heatscaler_core::model::quantity::parse_milli(q).unwrap()
}

/// (spec request, applied request per the kubelet, spec limit) of the first container's CPU, restarts.
fn cpu(pod: &Pod) -> (i64, Option<i64>, Option<i64>, i32) {
    let spec = pod.spec.as_ref().unwrap().containers[0].resources.as_ref().unwrap();
    let status = pod.status.as_ref().and_then(|s| s.container_statuses.as_ref()).map(|s| &s[0]);
    let applied = status
        .and_then(|s| s.resources.as_ref())
        .and_then(|r| r.requests.as_ref())
        .and_then(|r| r.get("cpu"))
        .map(|q| milli(&q.0));
    let limit = spec.limits.as_ref().and_then(|l| l.get("cpu")).map(|q| milli(&q.0));
    (milli(&spec.requests.as_ref().unwrap()["cpu"].0), applied, limit, status.map_or(0, |s| s.restart_count))
}

fn uids(pods: &[Pod]) -> Vec<String> {
    let mut u: Vec<String> = pods.iter().map(|p| p.metadata.uid.clone().unwrap()).collect();
    u.sort();
    u
}

fn qos(pod: &Pod) -> String {
    pod.status.as_ref().and_then(|s| s.qos_class.clone()).unwrap_or_default()
}

/// web (Burstable, 500m requested, 50m used) is resized down in place, then up
/// when its usage rises — the same pods, no restart, applied by the kubelet,
/// limits kept in proportion. A BestEffort workload under the same kind of VPA
/// would change QoS class by getting requests, which the API server refuses
/// (422 "Pod QOS Class may not change"): heatscaler predicts it (issue 17),
/// sends no such resize and, without an admission controller, evicts nothing;
/// it reports it as `PodResizeUnsupported` on a batch pod, and keeps resizing
/// the others.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_place_resize_up_and_down_through_real_admission_and_no_qos_changing_resize_sent() {
    let _slot = harness::slot().await;
    let w = World::new(Spec {
        initial: 1,
        min: 1,
        node_cpu: "4",
        node_memory: "8Gi",
        overrides: "pod-resize: {enabled: true, \
                    updater: {min-update-interval: 0s, update-off-target-after: 0s}, \
                    metrics: {source: summary, interval: 1s}}",
        ..Spec::default()
    })
    .await;
    let emu = w.kubelets.emulator();
    let web = PodTemplate::new("app")
        .label("app", "web")
        .requests("500m", "256Mi")
        .limits("1", "1Gi")
        .resize_policy("cpu", "NotRequired")
        .resize_policy("memory", "NotRequired");
    w.create(&web.deployment(NS, "web", 2)).await;
    let batch = PodTemplate::new("job").label("app", "batch");
    w.create(&batch.deployment(NS, "batch", 2)).await;
    w.wait("web and batch running", KUBE, async || {
        w.running("web").await.len() == 2 && w.running("batch").await.len() == 2
    })
    .await;
    let web_target = UsageTarget::selector(Some(NS), "app=web");
    emu.set_usage(web_target.clone(), UsageModel::constant(50, 100 * MI)).unwrap();
    emu.set_usage(UsageTarget::selector(Some(NS), "app=batch"), UsageModel::constant(300, 200 * MI)).unwrap();
    let web_pods = uids(&w.running("web").await);
    let batch_pods = uids(&w.running("batch").await);
    assert!(w.running("batch").await.iter().all(|p| qos(p) == "BestEffort"));
    create_vpa(&w, "web", api::UpdateMode::InPlaceOrRecreate).await;
    create_vpa(&w, "batch", api::UpdateMode::InPlaceOrRecreate).await;
    let mut daemon = w.ready_daemon().await;

    // Down: 500m requested, 50m used.
    w.wait("web resized down in place", Duration::from_secs(90), async || {
        let pods = w.running("web").await;
        pods.len() == 2
            && pods.iter().all(|p| {
                let (spec, applied, _, _) = cpu(p);
                spec < 500 && applied == Some(spec)
            })
    })
    .await;
    let pods = w.running("web").await;
    println!("web down: {:?}", pods.iter().map(cpu).collect::<Vec<_>>());
    assert_eq!(uids(&pods), web_pods, "resized in place: the same pods");
    for p in &pods {
        let (request, _, limit, restarts) = cpu(p);
        assert_eq!(restarts, 0, "no container restarted");
        assert_eq!(limit, Some(request * 2), "the limit keeps its ratio to the request");
        assert_eq!(qos(p), "Burstable");
    }

    // Up: usage rises to 1.5 CPU.
    emu.set_usage(web_target, UsageModel::constant(1500, 300 * MI)).unwrap();
    w.wait("web resized up in place", Duration::from_secs(90), async || {
        let pods = w.running("web").await;
        pods.len() == 2
            && pods.iter().all(|p| {
                let (spec, applied, _, _) = cpu(p);
                spec >= 1500 && applied == Some(spec)
            })
    })
    .await;
    let pods = w.running("web").await;
    println!("web up: {:?}", pods.iter().map(cpu).collect::<Vec<_>>());
    assert_eq!(uids(&pods), web_pods, "resized in place: the same pods");
    assert!(pods.iter().all(|p| cpu(p).3 == 0), "no container restarted");

    // batch: the QoS-changing resizes were predicted, never sent.
    let mut unsupported = String::new();
    w.wait("a PodResizeUnsupported Event", Duration::from_secs(60), async || {
        let events = w.list_all::<k8s_openapi::api::core::v1::Event>().await;
        let found = events.into_iter().find(|e| e.reason.as_deref() == Some("PodResizeUnsupported"));
        unsupported = found.and_then(|e| e.message).unwrap_or_default();
        !unsupported.is_empty()
    })
    .await;
    println!("batch (BestEffort): {unsupported}");
    assert!(unsupported.contains("QoS class from BestEffort to Burstable"), "{unsupported}");
    let refused = daemon.metric("heatscaler_pod_resizes_total{outcome=\"failed\"}").await.unwrap_or(0.0);
    let evicted = daemon.metric("heatscaler_pod_resizes_total{outcome=\"evicted\"}").await.unwrap_or(0.0);
    let batch_now = w.pods("batch").await;
    println!(
        "batch: {refused} resize(s) refused, {evicted} eviction(s) for resize; pods now {:?} (QoS {:?})",
        batch_now.iter().map(|p| p.metadata.name.clone().unwrap()).collect::<Vec<_>>(),
        batch_now.iter().map(qos).collect::<Vec<_>>()
    );
    assert_eq!(refused, 0.0, "no resize sent to be refused (it used to be one per pod per min-update-interval)");
    assert_eq!(evicted, 0.0, "no admission controller: nothing evicted to resize");
    assert!(batch_now.iter().all(|p| qos(p) == "BestEffort"), "the QoS class is unchanged");
    assert_eq!(uids(&batch_now), batch_pods, "the batch pods were left as they are");
    let (status, _) = daemon.terminate(Duration::from_secs(15)).await;
    assert!(status.success());
}
