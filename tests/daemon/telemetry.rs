//! `/metrics`, `/healthz` and `/readyz` over HTTP.

use std::sync::Arc;
use std::time::Duration;

use heatscaler_core::model::{Timestamp, WorkloadRef};
use heatscaler_daemon::telemetry::{
    AlertOutcome, DrainOutcome, EvictionPurpose, GroupSizes, Health, HealthOptions, HeatOperation, KubeResource,
    KubeVerb, Leadership, Metrics, OPENMETRICS_CONTENT_TYPE, RecommendationValues, ResizeOutcome, ResourceName,
    ScaleUpFailure, TelemetryServer,
};
use tokio::sync::oneshot;

struct Running {
    base: String,
    stop: Option<oneshot::Sender<()>>,
    served: tokio::task::JoinHandle<Result<(), heatscaler_daemon::telemetry::TelemetryError>>,
}

async fn start(metrics: Arc<Metrics>, health: Health) -> Running {
    let server = TelemetryServer::bind("127.0.0.1:0".parse().unwrap(), metrics, health).await.unwrap();
    let base = format!("http://{}", server.local_addr());
    let (stop, stopped) = oneshot::channel::<()>();
    let served = tokio::spawn(server.serve(async move {
        let _ = stopped.await;
    }));
    Running { base, stop: Some(stop), served }
}

async fn get(url: &str) -> (u16, String, String) {
    let r = reqwest::get(url).await.unwrap();
    let status = r.status().as_u16();
    let ct = r.headers()["content-type"].to_str().unwrap().to_string();
    (status, ct, r.text().await.unwrap())
}

fn workload() -> WorkloadRef {
    WorkloadRef { kind: "Deployment".into(), namespace: "shop".into(), name: "web".into() }
}

#[tokio::test]
async fn metrics_are_served_in_openmetrics_text() {
    let m = Arc::new(Metrics::new());
    m.set_group_size("workers", GroupSizes { desired: 5, ready: 3, provisioning: 2, failed: 0 });
    m.set_group_limits("workers", 1, 10);
    m.set_unschedulable_pods(7);
    m.record_scale_up("workers", 2);
    m.observe_scale_up_duration("workers", Duration::from_secs(140));
    m.record_failed_scale_up("workers", ScaleUpFailure::HeatUpdateFailed);
    m.record_scale_down("workers", 1);
    m.observe_scale_down_duration("workers", Duration::from_secs(400));
    m.observe_drain("workers", Duration::from_secs(95), DrainOutcome::Finished);
    m.record_eviction(EvictionPurpose::Drain);
    m.record_pdb_rejection(EvictionPurpose::Drain);
    m.record_resize(ResizeOutcome::Applied);
    let rec = RecommendationValues { target: 0.25, lower_bound: 0.1, upper_bound: 0.5 };
    m.set_recommendation(&workload(), "app", ResourceName::Cpu, rec, Some(1.0));
    m.observe_heat_call(HeatOperation::UpdateStack, Duration::from_millis(800), false);
    m.observe_kube_call(KubeVerb::Create, KubeResource::PodEviction, Duration::from_millis(12), true);
    let _ = m.time_heat(HeatOperation::GetStack, async { Ok::<_, ()>(()) }).await;
    m.record_successful_loop(Timestamp::from_second(1_717_236_000).unwrap(), Duration::from_millis(40));
    m.set_leader(true);
    m.register_alert_sink("slack-0");
    m.record_alert("slack-0", AlertOutcome::Dropped);

    let server = start(m.clone(), Health::new(HealthOptions::default())).await;
    let (status, ct, body) = get(&format!("{}/metrics", server.base)).await;
    assert_eq!(status, 200);
    assert_eq!(ct, OPENMETRICS_CONTENT_TYPE);
    for line in [
        "heatscaler_build_info{version=\"",
        "heatscaler_node_group_size{group=\"workers\",state=\"desired\"} 5",
        "heatscaler_node_group_size{group=\"workers\",state=\"ready\"} 3",
        "heatscaler_node_group_size{group=\"workers\",state=\"provisioning\"} 2",
        "heatscaler_node_group_size{group=\"workers\",state=\"failed\"} 0",
        "heatscaler_node_group_max_size{group=\"workers\"} 10",
        "heatscaler_unschedulable_pods 7",
        "heatscaler_scaled_up_nodes_total{group=\"workers\"} 2",
        "heatscaler_scale_up_duration_seconds_sum{group=\"workers\"} 140.0",
        "heatscaler_scale_up_duration_seconds_bucket{le=\"160.0\",group=\"workers\"} 1",
        "heatscaler_scale_up_duration_seconds_bucket{le=\"80.0\",group=\"workers\"} 0",
        "heatscaler_failed_scale_ups_total{group=\"workers\",reason=\"heat_update_failed\"} 1",
        "heatscaler_scaled_down_nodes_total{group=\"workers\"} 1",
        "heatscaler_scale_down_duration_seconds_count{group=\"workers\"} 1",
        "heatscaler_drain_duration_seconds_count{group=\"workers\",outcome=\"finished\"} 1",
        "heatscaler_evictions_total{purpose=\"drain\"} 1",
        "heatscaler_eviction_pdb_rejections_total{purpose=\"drain\"} 1",
        "heatscaler_pod_resizes_total{outcome=\"applied\"} 1",
        "heatscaler_recommendation{namespace=\"shop\",workload_kind=\"Deployment\",workload=\"web\",container=\"app\",resource=\"cpu\",bound=\"target\"} 0.25",
        "heatscaler_container_request{namespace=\"shop\",workload_kind=\"Deployment\",workload=\"web\",container=\"app\",resource=\"cpu\"} 1.0",
        "heatscaler_heat_request_duration_seconds_count{operation=\"update_stack\"} 1",
        "heatscaler_heat_request_errors_total{operation=\"update_stack\"} 1",
        "heatscaler_heat_request_duration_seconds_count{operation=\"get_stack\"} 1",
        "heatscaler_kubernetes_request_duration_seconds_count{verb=\"create\",resource=\"pods/eviction\"} 1",
        "heatscaler_last_successful_loop_timestamp_seconds 1717236000.0",
        "heatscaler_loop_duration_seconds_count 1",
        "heatscaler_leader 1",
        "heatscaler_alert_notifications_total{sink=\"slack-0\",outcome=\"dropped\"} 1",
        "heatscaler_alert_notifications_total{sink=\"slack-0\",outcome=\"sent\"} 0",
        "heatscaler_alert_queue_length{sink=\"slack-0\"} 0",
        "# TYPE heatscaler_scale_up_duration_seconds histogram",
        "# UNIT heatscaler_scale_up_duration_seconds seconds",
    ] {
        assert!(body.contains(line), "missing `{line}` in:\n{body}");
    }
    assert!(body.ends_with("# EOF\n"));
    assert!(!body.contains("kubernetes_request_errors_total{"), "a successful call is not an error");

    // A deleted workload's series go away; no stale recommendation lingers.
    m.forget_workload(&workload());
    let (_, _, body) = get(&format!("{}/metrics", server.base)).await;
    assert!(!body.contains("workload=\"web\""), "{body}");
    m.forget_group("workers");
    let (_, _, body) = get(&format!("{}/metrics", server.base)).await;
    assert!(!body.contains("heatscaler_node_group_size{"));
    assert!(body.contains("heatscaler_scaled_up_nodes_total{group=\"workers\"} 2"), "counters stay");
    stop(server).await;
}

async fn stop(mut server: Running) {
    server.stop.take().unwrap().send(()).unwrap();
    tokio::time::timeout(Duration::from_secs(5), server.served).await.expect("graceful stop").unwrap().unwrap();
}

#[tokio::test]
async fn readyz_waits_for_both_syncs_and_ignores_leadership() {
    let health = Health::new(HealthOptions { heartbeat_timeout: Duration::from_secs(60), heat_required: true });
    let server = start(Arc::new(Metrics::new()), health.clone()).await;
    let readyz = format!("{}/readyz", server.base);

    let (status, ct, body) = get(&readyz).await;
    assert_eq!((status, ct.as_str()), (503, "text/plain; charset=utf-8"));
    assert_eq!(body, "not ready: waiting for first Kubernetes sync, first Heat sync (leader election disabled)\n");
    health.mark_kubernetes_synced();
    assert_eq!(get(&readyz).await.2, "not ready: waiting for first Heat sync (leader election disabled)\n");
    health.mark_heat_synced();
    health.set_leadership(Leadership::Standby);
    let (status, _, body) = get(&readyz).await;
    assert_eq!((status, body.as_str()), (200, "ready (standby)\n"));

    let (status, _, body) = get(&format!("{}/healthz", server.base)).await;
    assert_eq!(status, 200);
    assert!(body.starts_with("ok: main loop heartbeat"), "{body}");
    stop(server).await;
}

#[tokio::test]
async fn healthz_fails_when_the_loop_stops_beating() {
    let timeout = Duration::from_millis(100);
    let health = Health::new(HealthOptions { heartbeat_timeout: timeout, heat_required: false });
    health.mark_kubernetes_synced();
    let server = start(Arc::new(Metrics::new()), health.clone()).await;
    let healthz = format!("{}/healthz", server.base);
    health.heartbeat();
    assert_eq!(get(&healthz).await.0, 200);

    // Staleness is a matter of time passing without a heartbeat: wait it out.
    while health.liveness().alive {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let (status, _, body) = get(&healthz).await;
    assert_eq!(status, 503);
    assert!(body.starts_with("unhealthy: main loop heartbeat"), "{body}");
    let (status, _, body) = get(&format!("{}/readyz", server.base)).await;
    assert_eq!(status, 503);
    assert!(body.contains("the loop is stuck"), "{body}");

    health.heartbeat();
    assert_eq!(get(&healthz).await.0, 200);
    stop(server).await;
}

#[tokio::test]
async fn a_taken_port_is_reported_with_its_config_key() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap();
    let err = TelemetryServer::bind(addr, Arc::new(Metrics::new()), Health::new(HealthOptions::default()))
        .await
        .unwrap_err()
        .to_string();
    assert!(err.starts_with(&format!("cannot listen on {addr} (telemetry.listen):")), "{err}");
}
