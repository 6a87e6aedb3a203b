//! Scale measurement: 1,000 nodes and 30,000 pods. Prints timings; asserts
//! nothing. Run with `cargo run --release -p kubesim --example scale`.

use std::time::{Duration, Instant};

use futures::StreamExt;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, ListParams, WatchEvent, WatchParams};
use kubesim::{KubeSim, NodeSpec, Options, PodTemplate};

const NODES: usize = 1_000;
const PODS: usize = 30_000;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let options = Options { time_scale: 0.01, ..Options::default() };
    let sim = KubeSim::start(options).await?;
    let client = sim.kube_client_without_retries()?;

    let t = Instant::now();
    for i in 0..NODES {
        sim.add_node(NodeSpec::new(&format!("minion-{i:04}")).cpu("4").memory("16Gi").pods(110))?;
    }
    println!("add {NODES} nodes: {:?}", t.elapsed());

    let t = Instant::now();
    for i in 0..PODS {
        let app = format!("app-{}", i % 300);
        sim.create(
            &PodTemplate::new("c").label("app", &app).requests("100m", "128Mi").pod("default", &format!("p-{i:05}")),
        )?;
    }
    println!("create {PODS} pods (in-process API): {:?}", t.elapsed());
    // Polled, not awaited on every change: counting 30,000 pods per change would compete with the simulation.
    while sim.ready_pods(Some("default")) < PODS {
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    println!("... all scheduled, bound and Running+Ready: {:?} after the first create", t.elapsed());

    let pods: Api<Pod> = Api::all(client.clone());
    for _ in 0..3 {
        let t = Instant::now();
        let list = pods.list(&ListParams::default()).await?;
        println!("list {} pods over HTTP (kube-rs, one page, decoded): {:?}", list.items.len(), t.elapsed());
    }
    let t = Instant::now();
    let req = http::Request::get("/api/v1/pods").body(Vec::new())?;
    let raw = client.request_text(req).await?;
    println!("list all pods over HTTP (raw body, {} MB): {:?}", raw.len() / 1_000_000, t.elapsed());
    let t = Instant::now();
    let mut token: Option<String> = None;
    let mut total = 0;
    loop {
        let mut lp = ListParams::default().limit(500);
        if let Some(c) = &token {
            lp = lp.continue_token(c);
        }
        let page = pods.list(&lp).await?;
        total += page.items.len();
        token = page.metadata.continue_.filter(|c| !c.is_empty());
        if token.is_none() {
            break;
        }
    }
    println!("list {total} pods in pages of 500: {:?}", t.elapsed());
    let t = Instant::now();
    let selected = pods.list(&ListParams::default().labels("app=app-7").fields("status.phase=Running")).await?;
    println!("list with label+field selector ({} pods): {:?}", selected.items.len(), t.elapsed());

    // Watch fan-out: 50 watchers, one change, time until all have it.
    let rv = pods.list(&ListParams::default().limit(1)).await?.metadata.resource_version.unwrap();
    let mut streams = Vec::new();
    for _ in 0..50 {
        streams.push(pods.watch(&WatchParams::default().labels("app=probe"), &rv).await?.boxed());
    }
    let t = Instant::now();
    sim.create(&PodTemplate::new("c").label("app", "probe").pod("default", "probe"))?;
    for s in &mut streams {
        loop {
            if let Some(Ok(WatchEvent::Added(_))) = s.next().await {
                break;
            }
        }
    }
    println!("one change delivered to 50 selector watches over HTTP: {:?}", t.elapsed());

    let t = Instant::now();
    let all_nodes: Api<k8s_openapi::api::core::v1::Node> = Api::all(client.clone());
    println!("list {} nodes: {:?}", all_nodes.list(&ListParams::default()).await?.items.len(), t.elapsed());
    let t = Instant::now();
    let req = http::Request::get("/api/v1/nodes/minion-0007/proxy/stats/summary").body(Vec::new())?;
    let summary = client.request_text(req).await?;
    println!("stats/summary of one node ({} bytes): {:?}", summary.len(), t.elapsed());
    Ok(())
}
