//! The end-to-end scenarios that run on kubesim instead of the real control
//! plane, and why:
//! - [`reaction_time_at_1000_nodes`]: a thousand nodes and 30,000 pods, which an
//!   emulated cluster on a 2-core CI machine cannot hold;
//! - [`grow_then_shrink_on_kubesim`]: the main scenario (`e2e`) once more on
//!   kubesim, so its reaction and scale-down times stand beside the real
//!   control plane's in docs/testing.md.
//!
//! - [`minion_removed_when_the_ccm_deletes_the_node_first`]: the cloud
//!   controller manager deleting a removed minion's Node before heatscaler
//!   does, made certain by refusing heatscaler's own DELETE (an injected
//!   fault, which only kubesim can do).
//!
//! The first two are `#[ignore]`d (figures, run by hand). What else stays on kubesim —
//! injected faults, watch drops, 5,000-node memory runs — is in `tests/daemon/`
//! and `tests/scale/`, which need no OpenStack.

use std::time::{Duration, Instant};

use crate::e2e::{HEAT, KUBE, deployment, grow_then_shrink};
use crate::harness::{self, GROUP, Kube, NS, Spec, World, is_unschedulable, node_name};
use kubesim::FaultRule;
use kubesim::builders::PodTemplate;

/// ```text
/// cargo test --test openstack on_kubesim::grow_then_shrink_on_kubesim -- --ignored --nocapture
/// ```
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "figure beside the real control plane's; run by hand"]
async fn grow_then_shrink_on_kubesim() {
    let _slot = harness::slot().await;
    grow_then_shrink(Kube::Kubesim(kubesim::Options::fast())).await;
}

/// Reaction time with the daemon watching a 1,000-node cluster: 998 static
/// nodes (not in the group) full of 30 pods each, plus the group's 2 minions.
/// Ignored by default (a few minutes to fill kubesim); run by hand:
///
/// ```text
/// cargo test --release --test openstack on_kubesim::reaction_time_at_1000_nodes -- --ignored --nocapture
/// ```
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "scale figure; run by hand"]
async fn reaction_time_at_1000_nodes() {
    let _slot = harness::slot().await;
    let kubesim = kubesim::Options { record_events: false, ..kubesim::Options::fast() };
    let w = World::new(Spec { initial: 2, min: 0, max: 4, kube: Kube::Kubesim(kubesim), ..Spec::default() }).await;
    let sim = w.sim.clone().unwrap();
    let statics = 998;
    let fill = Instant::now();
    for i in 0..statics {
        let node = kubesim::NodeSpec::new(&format!("static-{i:04}")).cpu("8").memory("32Gi").label("pool", "static");
        sim.add_node(node).unwrap();
    }
    let filler =
        PodTemplate::new("app").label("app", "filler").requests("250m", "512Mi").node_selector("pool", "static");
    sim.create(&filler.deployment(NS, "filler", statics * 30)).unwrap();
    let want = statics as usize * 30;
    sim.wait_for("30 pods on every static node", Duration::from_secs(900), |s| s.ready_pods(Some(NS)) >= want)
        .await
        .unwrap();
    println!("filled 1,000 nodes / {want} pods in {:?}", fill.elapsed());

    let mut daemon = w.start_daemon(&[]);
    let sync = Instant::now();
    daemon.wait_ready(Duration::from_secs(300)).await;
    println!("daemon synced (first list of everything, Heat read) in {:?}", sync.elapsed());

    // 8 pods of 900m: 4 fit on the two 2-CPU minions, 4 wait (the static nodes are full).
    // Timed from their creation: listing 30,000 pods to see the condition
    // takes the harness longer than the daemon takes to react, so the
    // figure includes the scheduler marking the pods unschedulable.
    let t_created = Instant::now();
    sim.create(&deployment("burst", 8, "900m")).unwrap();
    let (t_alert, scaled) = w.hooks.wait_for("ScaledUpGroup", KUBE, |_| true).await;
    let reaction = t_alert.saturating_duration_since(t_created);
    let burst: Vec<k8s_openapi::api::core::v1::Pod> = sim
        .list::<k8s_openapi::api::core::v1::Pod>(Some(NS))
        .into_iter()
        .filter(|p| p.metadata.name.as_deref().unwrap_or_default().starts_with("burst"))
        .collect();
    assert!(burst.iter().any(is_unschedulable), "the burst waited for capacity");
    println!(
        "REACTION TIME at 1,000 nodes / {} pods: {reaction:?} from the pods' creation to the Heat update accepted ({})",
        want + 8,
        scaled["message"]
    );
    if let Some(rss) = std::fs::read_to_string(format!("/proc/{}/status", daemon.pid()))
        .ok()
        .and_then(|s| s.lines().find(|l| l.starts_with("VmHWM")).map(str::to_string))
    {
        println!("daemon peak RSS: {rss}");
    }
    daemon.terminate(Duration::from_secs(15)).await;
}

/// Issue 20's known bug: when the cloud controller manager deleted a removed
/// minion's Node before heatscaler did, no `MinionRemoved` was sent (the
/// removal itself was right). Here heatscaler's own DELETE of a Node is
/// refused (503), so the order is certain: Heat removes the member,
/// heatscaler tries to delete the Node and fails, then the "CCM" deletes it.
/// `MinionRemoved` must still come, once, naming the member.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn minion_removed_when_the_ccm_deletes_the_node_first() {
    let _slot = harness::slot().await;
    let w =
        World::new(Spec { initial: 2, min: 1, kube: Kube::Kubesim(kubesim::Options::fast()), ..Spec::default() }).await;
    let sim = w.sim.clone().unwrap();
    let refused = sim.add_fault(FaultRule::error(503, 1.0).on_path("/api/v1/nodes/").on_verbs(&["delete"]));
    let mut daemon = w.ready_daemon().await;

    // Both minions are empty and the minimum is 1: one of them is removed.
    w.wait_heat("one member left", HEAT, |s| s.members.len() == 1 && !s.busy).await;
    let removed: Vec<String> = w.minions.log(|l| l.removed.iter().cloned().collect());
    assert_eq!(removed.len(), 1, "{removed:?}");
    let node = node_name(GROUP, &removed[0]);
    w.wait("heatscaler tried to delete the Node", KUBE, async || !sim.faults().hits(refused).is_empty()).await;
    assert!(w.node(&node).await.is_some(), "heatscaler's delete was refused");
    assert!(w.hooks.with_reason("MinionRemoved").is_empty(), "{:?}", w.hooks.reasons());

    // The CCM: the VM is gone and the node NotReady, so it deletes the Node.
    sim.remove_node(&node).unwrap();
    let sent = w.hooks.wait_count("MinionRemoved", 1, KUBE).await;
    assert_eq!(sent.len(), 1, "{:?}", w.hooks.reasons());
    let event = &sent[0].1;
    assert_eq!(event["fields"]["member"], removed[0].as_str(), "{event}");
    assert_eq!(event["object"]["name"], node.as_str(), "{event}");
    // Said once, not again on later passes.
    daemon.wait_passes(3, KUBE).await;
    assert_eq!(w.hooks.with_reason("MinionRemoved").len(), 1, "{:?}", w.hooks.reasons());
    let (status, _) = daemon.terminate(std::time::Duration::from_secs(15)).await;
    assert!(status.success(), "exit status {status}");
}
