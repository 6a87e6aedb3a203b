//! The kubelet's order of events as an observer inside the process sees it.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use crate::harness::builders::PodTemplate;
use crate::harness::{KubeSim, nodes::NodeSpec};
use crate::options::Options;
use crate::resources::Kind;
use crate::sim::Sim;

/// Ready pods (namespace `default`) missing from their node's usage: what
/// stats/summary would leave out at this instant.
fn ready_without_usage(sim: &Sim) -> Vec<String> {
    let (pods, _) = sim.store.list(Kind::Pod, Some("default"));
    let now = crate::time::now();
    pods.iter()
        .filter(|p| p.is_ready())
        .filter(|p| !sim.usage.sample(p.node_name(), now).iter().any(|s| s.uid == p.uid()))
        .map(|p| p.key.name.clone())
        .collect()
}

/// A pod the API reports Running and Ready has its containers in its node's
/// usage (what stats/summary and cAdvisor serve) from that moment on, as on a
/// real kubelet, which reports a container running after it started it. A
/// thread checks without pause while pods start, so a window between the
/// status write and the usage accounting is caught; it was (stats.rs flaked
/// on it about one run in ten).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ready_pod_is_in_its_nodes_usage_from_the_start() {
    let handle = KubeSim::start(Options::fast()).await.unwrap();
    handle.add_node(NodeSpec::new("node-0").cpu("64").memory("64Gi")).unwrap();
    let sim = handle.sim().clone();
    let done = Arc::new(AtomicBool::new(false));
    let watcher = std::thread::spawn({
        let (sim, done) = (sim.clone(), done.clone());
        move || {
            let mut seen = Vec::new();
            while !done.load(Ordering::Relaxed) && seen.is_empty() {
                seen = ready_without_usage(&sim);
            }
            seen
        }
    });
    let pods = 100;
    for i in 0..pods {
        handle.create(&PodTemplate::new("app").requests("10m", "16Mi").pod("default", &format!("p-{i}"))).unwrap();
    }
    let all = handle.wait_for("all running", Duration::from_secs(20), |h| h.ready_pods(Some("default")) == pods).await;
    done.store(true, Ordering::Relaxed);
    let missing = watcher.join().unwrap();
    all.unwrap();
    assert!(missing.is_empty(), "Ready but missing from the node's usage: {missing:?}");
}
