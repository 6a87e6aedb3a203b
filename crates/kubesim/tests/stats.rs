//! Kubelet stats through the API server proxy, generated from usage models,
//! and OOM kills when a model exceeds the memory limit.

mod common;

use std::time::{Duration, Instant};

use common::{WAIT, nodes, start};
use k8s_openapi::api::core::v1::Pod;
use kube::Client;
use kubesim::{PodTemplate, UsageModel, UsageTarget};
use serde_json::Value;

async fn summary(client: &Client, node: &str) -> Value {
    let req = http::Request::get(format!("/api/v1/nodes/{node}/proxy/stats/summary")).body(Vec::new()).unwrap();
    serde_json::from_str(&client.request_text(req).await.unwrap()).unwrap()
}

fn container<'a>(summary: &'a Value, pod: &str) -> &'a Value {
    let pods = summary["pods"].as_array().unwrap();
    let p = pods.iter().find(|p| p["podRef"]["name"] == pod).expect("pod in summary");
    &p["containers"][0]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stats_summary_and_cadvisor_follow_the_usage_model() {
    let (sim, client) = start(nodes(1, "4", "8Gi")).await;
    // Set before the pod exists: selector models apply to pods created later.
    let model = UsageModel::steps([(Duration::ZERO, 250, 100 << 20), (Duration::from_millis(600), 750, 300 << 20)]);
    sim.set_usage(UsageTarget::selector(Some("default"), "app=busy"), model).unwrap();
    sim.create(&PodTemplate::new("app").label("app", "busy").requests("500m", "256Mi").pod("default", "busy")).unwrap();
    sim.create(&PodTemplate::new("app").label("app", "idle").pod("default", "idle")).unwrap();
    sim.wait_for("running", WAIT, |s| s.ready_pods(Some("default")) == 2).await.unwrap();
    let uid = sim.get::<Pod>(Some("default"), "busy").unwrap().metadata.uid.unwrap();

    let first = summary(&client, "node-0").await;
    assert_eq!(first["node"]["nodeName"], "node-0");
    let busy = container(&first, "busy");
    // Either still in the first step or already in the second, never anything else.
    let nanocores = busy["cpu"]["usageNanoCores"].as_u64().unwrap();
    assert!(nanocores == 250_000_000 || nanocores == 750_000_000, "{nanocores}");
    assert_eq!(container(&first, "idle")["cpu"]["usageNanoCores"], 0);
    let podref = &first["pods"].as_array().unwrap().iter().find(|p| p["podRef"]["name"] == "busy").unwrap()["podRef"];
    assert_eq!(podref["uid"], uid.as_str());

    // Past the step: 750m and 300 MiB; cumulative CPU grows at exactly that rate.
    sim.wait_for("second step", WAIT, |_| true).await.unwrap();
    let mut sample = summary(&client, "node-0").await;
    let started = Instant::now();
    while container(&sample, "busy")["memory"]["workingSetBytes"] != 300u64 << 20 {
        assert!(started.elapsed() < WAIT, "model never reached its second step");
        tokio::time::sleep(Duration::from_millis(50)).await;
        sample = summary(&client, "node-0").await;
    }
    let before_first = Instant::now();
    let a = summary(&client, "node-0").await;
    let after_first = Instant::now();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let before_second = Instant::now();
    let b = summary(&client, "node-0").await;
    let after_second = Instant::now();
    assert_eq!(container(&b, "busy")["cpu"]["usageNanoCores"], 750_000_000u64);
    let total = |s: &Value| container(s, "busy")["cpu"]["usageCoreNanoSeconds"].as_u64().unwrap() as f64;
    let delta = total(&b) - total(&a);
    let rate = 0.75e9; // core-nanoseconds per second
    let low = rate * (before_second - after_first).as_secs_f64();
    let high = rate * (after_second - before_first).as_secs_f64();
    assert!(delta >= low - 1.0 && delta <= high + 1.0, "{low} <= {delta} <= {high}");
    let node_cpu = |s: &Value| s["node"]["cpu"]["usageCoreNanoSeconds"].as_u64().unwrap();
    assert!(node_cpu(&b) >= total(&b) as u64);
    assert_eq!(b["node"]["memory"]["workingSetBytes"], 300u64 << 20);

    // Changing the model keeps the counter continuous.
    sim.set_usage(UsageTarget::pod("default", "busy"), UsageModel::constant(100, 50 << 20)).unwrap();
    let c = summary(&client, "node-0").await;
    assert_eq!(container(&c, "busy")["cpu"]["usageNanoCores"], 100_000_000u64);
    assert!(total(&c) >= total(&b));

    let req = http::Request::get("/api/v1/nodes/node-0/proxy/metrics/cadvisor").body(Vec::new()).unwrap();
    let text = client.request_text(req).await.unwrap();
    let line = text
        .lines()
        .find(|l| l.starts_with("container_memory_working_set_bytes{container=\"app\"") && l.contains("pod=\"busy\""))
        .expect("working set of busy/app");
    assert!(line.contains("namespace=\"default\""));
    let value: f64 = line.split_whitespace().nth(1).unwrap().parse().unwrap();
    assert_eq!(value, (50u64 << 20) as f64);
    assert!(text.lines().any(|l| l.starts_with("container_cpu_usage_seconds_total{container=\"app\"") && l.contains("pod=\"busy\"")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_container_above_its_memory_limit_is_oom_killed_and_restarted() {
    let (sim, client) = start(nodes(1, "4", "8Gi")).await;
    sim.create(&PodTemplate::new("app").requests("100m", "64Mi").memory_limit("128Mi").pod("default", "leaky"))
        .unwrap();
    sim.wait_for("running", WAIT, |s| s.ready_pods(Some("default")) == 1).await.unwrap();
    let uid = sim.get::<Pod>(Some("default"), "leaky").unwrap().metadata.uid.unwrap();
    // 64 MiB, then 256 MiB after 200 ms — above the 128 MiB limit.
    let model = UsageModel::steps([(Duration::ZERO, 10, 64 << 20), (Duration::from_millis(200), 10, 256 << 20)]);
    sim.set_usage(UsageTarget::pod("default", "leaky"), model).unwrap();
    let pod = sim
        .wait_for_object::<Pod>("default", "leaky", WAIT, |p| {
            p.status.as_ref().and_then(|s| s.container_statuses.as_ref()).is_some_and(|c| c[0].restart_count >= 1)
        })
        .await
        .unwrap();
    assert_eq!(pod.metadata.uid.as_deref(), Some(uid.as_str()));
    let status = &pod.status.unwrap().container_statuses.unwrap()[0];
    let terminated = status.last_state.as_ref().unwrap().terminated.as_ref().unwrap();
    assert_eq!(terminated.reason.as_deref(), Some("OOMKilled"));
    assert_eq!(terminated.exit_code, 137);
    // The restarted container starts its profile over; the summary reports it as running.
    let s = summary(&client, "node-0").await;
    let restarted = container(&s, "leaky");
    assert_eq!(restarted["name"], "app");
    assert!(restarted["memory"]["workingSetBytes"].as_u64().unwrap() <= 256 << 20);
}
