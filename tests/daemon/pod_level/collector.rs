//! Usage collection through the API server's node proxy, from kubesim's
//! kubelet endpoints: both sources, and a node that fails.

use std::collections::BTreeMap;

use heatscaler_core::model::Timestamp;
use heatscaler_daemon::config::{UsageCollection, UsageSource};
use heatscaler_daemon::usage::{ScrapeTarget, UsageCollector};
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, ListParams};
use kubesim::{FaultRule, NodeSpec, PodTemplate, UsageModel, UsageTarget};

use super::start;

const MI: u64 = 1 << 20;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn collects_summary_and_cadvisor_and_survives_a_failing_node() {
    let nodes: Vec<_> = (0..3).map(|i| NodeSpec::new(&format!("node-{i}")).cpu("4").memory("8Gi")).collect();
    let (sim, client) = start(nodes).await;
    for i in 0..6 {
        sim.create(
            &PodTemplate::new("app").label("app", "m").requests("100m", "64Mi").pod("default", &format!("m{i}")),
        )
        .unwrap();
    }
    sim.wait_for("pods running", super::WAIT, |s| s.ready_pods(Some("default")) == 6).await.unwrap();
    sim.set_usage(UsageTarget::selector(Some("default"), "app=m"), UsageModel::constant(250, 64 * MI)).unwrap();
    let pods: Api<Pod> = Api::default_namespaced(client.clone());
    let node_of: BTreeMap<String, String> = pods
        .list(&ListParams::default())
        .await
        .unwrap()
        .items
        .into_iter()
        .map(|p| (p.metadata.name.unwrap(), p.spec.unwrap().node_name.unwrap()))
        .collect();
    assert!(node_of.values().any(|n| n == "node-2"), "some pods on the failing node: {node_of:?}");
    let names: Vec<ScrapeTarget> = (0..3).map(|i| ScrapeTarget::proxied(format!("node-{i}"))).collect();
    let fault = sim.add_fault(FaultRule::error(500, 1.0).on_path("/api/v1/nodes/node-2/proxy"));

    for source in [UsageSource::Summary, UsageSource::Cadvisor] {
        let mut collector =
            UsageCollector::new(client.clone(), &UsageCollection { source, ..UsageCollection::default() });
        // Readings are stamped to the second (metav1.Time): scraping just
        // after whole seconds makes the rate exact to a few milliseconds.
        super::next_second().await;
        let first = collector.collect(&names, Timestamp::now()).await;
        super::next_second().await;
        let second = collector.collect(&names, Timestamp::now()).await;
        for scrape in [&first, &second] {
            assert_eq!(scrape.errors.iter().map(|e| e.node.as_str()).collect::<Vec<_>>(), ["node-2"], "{source:?}");
            assert_eq!(scrape.nodes.iter().map(|n| n.node.as_str()).collect::<Vec<_>>(), ["node-0", "node-1"]);
        }
        assert_eq!(collector.health()["node-2"].consecutive_failures, 2);
        assert_eq!(collector.failures_total(), 2);
        let expected: Vec<&String> = node_of.iter().filter(|(_, n)| *n != "node-2").map(|(p, _)| p).collect();
        let mut seen: Vec<&str> = second.containers.iter().map(|c| c.pod.name.as_str()).collect();
        seen.sort();
        assert_eq!(seen, expected, "{source:?}: every pod on a healthy node, none from node-2");
        for c in &second.containers {
            assert_eq!(c.memory_working_set, Some(64 * MI as i64), "{source:?} {c:?}");
            let cores = c.cpu_cores.expect("a rate once two readings exist");
            assert!((cores - 0.25).abs() < 0.01, "{source:?}: {cores} cores for a 250m model");
        }
        if source == UsageSource::Cadvisor {
            assert!(first.containers.iter().all(|c| c.cpu_cores.is_none()), "cAdvisor's first reading has no rate");
        }
    }

    sim.faults().remove(fault);
    let mut collector = UsageCollector::new(client.clone(), &UsageCollection::default());
    let healed = collector.collect(&names, Timestamp::now()).await;
    assert!(healed.errors.is_empty());
    assert_eq!(healed.containers.len(), 6);
}
