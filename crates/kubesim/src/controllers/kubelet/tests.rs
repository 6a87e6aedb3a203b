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

/// A pod whose status reaches a terminal phase while its containers start
/// stays terminal: a real kubelet never moves a pod out of Succeeded or
/// Failed ("Pod attempted illegal phase transition", forced back to the API
/// server's phase). The race: the kubelet's start fires between the write of
/// the terminal phase and the kubelet seeing it. A thread writes `Succeeded`
/// to each pod about when its start is due; before the fix a few of 300 pods
/// came back `Running` (and observers watching live pods saw them return).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pod_that_finished_while_starting_stays_finished() {
    use std::collections::HashMap;
    use std::time::Instant;

    use crate::kinds::Sub;
    use crate::podutil;
    use crate::store::ObjKey;

    let handle = KubeSim::start(Options::fast()).await.unwrap();
    handle.add_node(NodeSpec::new("node-0").cpu("64").memory("64Gi").pods(500)).unwrap();
    let sim = handle.sim().clone();
    let start_delay = sim.scale.scale(sim.options.pod_start_delay);
    let pods = 300;
    let finisher = std::thread::spawn({
        let sim = sim.clone();
        move || {
            // Each pod, first seen bound, is finished at a point spread across
            // its start delay and just past it, where the start can win.
            let mut bound_at: HashMap<String, (Instant, Duration)> = HashMap::new();
            let mut finished = Vec::new();
            let deadline = Instant::now() + Duration::from_secs(30);
            while finished.len() < pods && Instant::now() < deadline {
                let (items, _) = sim.store.list(Kind::Pod, Some("default"));
                for p in &items {
                    let name = p.key.name.clone();
                    if p.node_name().is_empty() || finished.contains(&name) {
                        continue;
                    }
                    let i = bound_at.len() as u32;
                    let (seen, offset) =
                        *bound_at.entry(name.clone()).or_insert((Instant::now(), start_delay * (80 + i % 40) / 100));
                    if seen.elapsed() < offset {
                        continue;
                    }
                    let key = ObjKey::new("default", &name);
                    let _ = sim.registry.update_with(Kind::Pod, &key, Sub::Status, false, |v| {
                        let mut v = v.clone();
                        v["status"]["phase"] = serde_json::json!("Succeeded");
                        Ok(v)
                    });
                    finished.push(name);
                }
            }
            finished
        }
    });
    for i in 0..pods {
        handle.create(&PodTemplate::new("app").requests("10m", "16Mi").pod("default", &format!("p-{i}"))).unwrap();
    }
    let finished = tokio::task::spawn_blocking(move || finisher.join().unwrap()).await.unwrap();
    assert_eq!(finished.len(), pods, "every pod was bound and finished");
    // Longer than any start still due.
    tokio::time::sleep(start_delay * 20).await;
    let (items, _) = sim.store.list(Kind::Pod, Some("default"));
    let back: Vec<String> =
        items.iter().filter(|p| !podutil::is_terminal(&p.value())).map(|p| p.key.name.clone()).collect();
    assert!(back.is_empty(), "finished, then written Running by the kubelet: {back:?}");
}
