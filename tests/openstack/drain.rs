//! Removals where the real control plane behaves unlike kubesim: a minion
//! that carries DaemonSet pods (the real DaemonSet controller keeps them on a
//! `NoSchedule`-tainted node) and a workload under a PodDisruptionBudget,
//! watched continuously during the drain; and a dead minion (kubelet stopped:
//! `Unknown`, the `unreachable:NoExecute` taint, its pods evicted by the node
//! lifecycle controller and stuck `Terminating` since no kubelet finishes them).

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::core::v1::Pod;
use kube::Api;
use kube::runtime::watcher;
use kubesim::builders::{Budget, PodTemplate, pdb};

use crate::e2e::{HEAT, KUBE, deployment, keeper, with_pod_annotation};
use crate::harness::cluster::ready_status;
use crate::harness::{self, GROUP, Kube, NS, Spec, World, members, node_name, node_of, untouched};
use crate::kubernetes::Knobs;
use heatscaler_core::planner::protocol;

const SAFE_TO_EVICT: &str = "cluster-autoscaler.kubernetes.io/safe-to-evict";

fn is_ready(p: &Pod) -> bool {
    p.metadata.deletion_timestamp.is_none()
        && p.status
            .as_ref()
            .and_then(|s| s.conditions.as_ref())
            .into_iter()
            .flatten()
            .any(|c| c.type_ == "Ready" && c.status == "True")
}

/// The fewest Ready pods of `app` seen at any instant since the watch began
/// (every watch event counted), and how many events were seen.
struct ReadyLow {
    low: Arc<Mutex<(usize, usize)>>,
    task: tokio::task::JoinHandle<()>,
}

impl ReadyLow {
    async fn watch(client: kube::Client, app: &str) -> ReadyLow {
        let pods: Api<Pod> = Api::namespaced(client, NS);
        let config = watcher::Config::default().labels(&format!("app={app}"));
        let low = Arc::new(Mutex::new((usize::MAX, 0)));
        let l = low.clone();
        let task = tokio::spawn(async move {
            let mut ready: BTreeMap<String, bool> = BTreeMap::new();
            let mut events = watcher::watcher(pods, config).boxed();
            let mut synced = false;
            while let Some(Ok(event)) = events.next().await {
                match event {
                    watcher::Event::Apply(p) | watcher::Event::InitApply(p) => {
                        ready.insert(p.metadata.uid.clone().unwrap_or_default(), is_ready(&p));
                    }
                    watcher::Event::Delete(p) => {
                        ready.remove(&p.metadata.uid.clone().unwrap_or_default());
                    }
                    watcher::Event::InitDone => synced = true,
                    watcher::Event::Init => {}
                }
                if synced {
                    let n = ready.values().filter(|r| **r).count();
                    let mut l = l.lock().unwrap();
                    l.0 = l.0.min(n);
                    l.1 += 1;
                }
            }
        });
        ReadyLow { low, task }
    }

    fn get(&self) -> (usize, usize) {
        *self.low.lock().unwrap()
    }
}

impl Drop for ReadyLow {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// workers-0 runs a DaemonSet pod and 2 of the 3 replicas of `guarded`,
/// under a budget of `minAvailable: 1` (two disruptions allowed, what the
/// drain needs: heatscaler, like cluster-autoscaler, does not start draining
/// a node whose pods the budgets cannot all let go); workers-1 keeps a pod
/// that may not be evicted. The Ready count of `guarded` never drops below 1
/// at any watch event, and the DaemonSet pod stays on workers-0 until the
/// minion itself goes — the drain does not wait for it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_minion_with_daemonset_pods_and_a_pdb_is_drained_within_the_budget() {
    let _slot = harness::slot().await;
    let w = World::new(Spec {
        initial: 2,
        min: 1,
        // Terminations take the pods' 30 s grace × 0.1: 3 s.
        kube: Kube::Real {
            knobs: Knobs::default(),
            kubelet: kubelet_emu::Timing { grace_period_scale: 0.1, ..kubelet_emu::Timing::fast() },
        },
        overrides: "scale-down: {max-graceful-termination: 30s}",
        ..Spec::default()
    })
    .await;
    let (m0, m1) = (node_name(GROUP, "0"), node_name(GROUP, "1"));
    let agent = PodTemplate::new("agent").label("app", "agent").requests("10m", "16Mi");
    w.create(&agent.daemon_set(NS, "agent")).await;
    w.wait("an agent on each minion", KUBE, async || w.running("agent").await.len() == 2).await;
    let agent_on_m0 = w.running("agent").await.into_iter().find(|p| node_of(p) == Some(m0.as_str())).unwrap();
    w.place_on(&m1, keeper()).await;
    let guarded = PodTemplate::new("app").label("app", "guarded").requests("100m", "64Mi").grace_period(30);
    w.place_on(&m1, guarded.deployment(NS, "guarded", 1)).await;
    w.set_cordon(&m1, true).await;
    w.set_replicas("guarded", 3).await;
    w.wait("2 guarded pods on workers-0", KUBE, async || w.running_on("guarded", &m0).await == 2).await;
    w.set_cordon(&m1, false).await;
    w.create(&pdb(NS, "guarded", &[("app", "guarded")], Budget::MinAvailable(1.into()))).await;
    w.wait("the budget allows two disruptions", KUBE, async || {
        let p = w.get::<k8s_openapi::api::policy::v1::PodDisruptionBudget>(NS, "guarded").await;
        p.and_then(|p| p.status).is_some_and(|s| s.disruptions_allowed == 2 && s.current_healthy == 3)
    })
    .await;
    let low = ReadyLow::watch(w.client.clone(), "guarded").await;

    let mut daemon = w.ready_daemon().await;
    // Until workers-0 is gone its DaemonSet pod stays, the same pod, not deleted.
    let mut agent_checks = 0;
    let mut drained_with_agent = false;
    let mut marked_while_removing = 0;
    w.wait("workers-0 deleted", HEAT, async || {
        let node = w.node(&m0).await;
        let agent = w.pods("agent").await.into_iter().find(|p| p.metadata.uid == agent_on_m0.metadata.uid);
        if let Some(node) = node {
            let phase = harness::removal_phase(&node);
            // Once the VM is deleted the kubelet no longer reports; the pod stays.
            let agent = agent.expect("the DaemonSet pod stays while its node exists");
            assert!(agent.metadata.deletion_timestamp.is_none(), "the DaemonSet pod was deleted before its node");
            agent_checks += 1;
            drained_with_agent |= matches!(phase.as_deref(), Some("drained" | "removing"));
            if phase.is_some() {
                // Out of load balancers while it drains, as cluster-autoscaler marks it.
                let marks = harness::departure_marks(&node).unwrap_or_default();
                let started = node.metadata.annotations.as_ref().unwrap()[protocol::STARTED].clone();
                let secs = started.parse::<heatscaler_core::model::Timestamp>().unwrap().as_second();
                let expected =
                    format!("{}={secs}:NoSchedule, {}=", protocol::CA_REMOVAL_TAINT, protocol::EXCLUDE_FROM_LB_LABEL);
                assert!(marks.starts_with(&expected), "{m0} in phase {phase:?} carries {marks:?}");
                marked_while_removing += 1;
            }
            false
        } else {
            true
        }
    })
    .await;
    assert!(drained_with_agent, "workers-0 reached drained with its DaemonSet pod on it");
    println!("the DaemonSet pod checked {agent_checks} times while workers-0 was drained and removed");
    assert!(marked_while_removing > 0, "workers-0 was seen in a removal phase");

    w.wait("3 guarded pods running on workers-1", KUBE, async || w.running_on("guarded", &m1).await == 3).await;
    let (lowest, events) = low.get();
    println!("guarded: fewest Ready pods at any of {events} watch events: {lowest}");
    assert!(events > 3, "the watch saw the drain");
    assert!(lowest >= 1, "the budget (minAvailable 1) was violated: {lowest} Ready");
    assert!(lowest < 3, "the watch saw the drain disrupt guarded pods");
    let s = w.wait_heat("member 1 only", HEAT, |s| members(s) == ["1"] && !s.busy).await;
    assert_eq!(s.desired, 1);
    untouched(&w.node(&m1).await.unwrap()).unwrap();
    println!("evictions refused by the budget: {}", w.hooks.with_reason("EvictionBlocked").len());
    let (status, _) = daemon.terminate(Duration::from_secs(15)).await;
    assert!(status.success());
}

/// A minion whose kubelet stops (the VM hangs): the node lifecycle controller
/// marks it `Unknown`, taints it `unreachable:NoExecute` and evicts its pods,
/// which stay `Terminating` — no kubelet finishes them. Their replacements do
/// not all fit the other minion: the group grows. After
/// `scale-down.unready-time` heatscaler removes the dead minion: drained (the
/// abandoned pods go with the node), removed from Heat exactly, its Node deleted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_minion_is_drained_and_removed() {
    let _slot = harness::slot().await;
    let w = World::new(Spec {
        initial: 2,
        min: 1,
        max: 3,
        kube: Kube::Real { knobs: Knobs::fast_node_lifecycle(), kubelet: kubelet_emu::Timing::fast() },
        // A node not Ready within the provision time counts as booting.
        overrides: "scale-down: {unready-time: 10s}\nscale-up: {max-node-provision-time: 15s}",
        ..Spec::default()
    })
    .await;
    let (m0, m1, m2) = (node_name(GROUP, "0"), node_name(GROUP, "1"), node_name(GROUP, "2"));
    // workers-1 keeps 1.5 CPU that may not move: web (2 × 400m) needs workers-0.
    let big_keeper = with_pod_annotation(deployment("keeper", 1, "1500m"), SAFE_TO_EVICT, "false");
    w.place_on(&m1, big_keeper).await;
    w.place_on(&m0, deployment("web", 2, "400m")).await;
    let web: Vec<String> = w.running("web").await.iter().map(|p| p.metadata.name.clone().unwrap()).collect();
    let mut daemon = w.ready_daemon().await;

    w.kubelets.stop_kubelet(&m0);
    w.wait("workers-0 Unknown", KUBE, async || {
        w.node(&m0).await.as_ref().and_then(ready_status).as_deref() == Some("Unknown")
    })
    .await;
    w.wait("web's pods Terminating on workers-0", KUBE, async || {
        let pods = w.pods("web").await;
        let stuck = pods.iter().filter(|p| web.contains(p.metadata.name.as_ref().unwrap()));
        stuck.clone().count() == 2 && stuck.clone().all(|p| p.metadata.deletion_timestamp.is_some())
    })
    .await;
    println!("workers-0 is dead; its pods are stuck Terminating");

    // Their replacements: one on workers-1, one on a new minion.
    let s = w.wait_heat("a minion added, the dead one removed", HEAT, |s| members(s) == ["1", "2"] && !s.busy).await;
    assert_eq!(s.desired, 2);
    w.wait("workers-0 deleted", KUBE, async || w.node(&m0).await.is_none()).await;
    w.wait("web running again", KUBE, async || w.running_on("web", &m1).await + w.running_on("web", &m2).await == 2)
        .await;
    assert_eq!(w.minions.log(|l| l.removed.clone()), ["0".to_string()].into(), "exactly the dead minion");
    for n in [&m1, &m2] {
        untouched(&w.node(n).await.unwrap()).unwrap();
    }
    let deleted_by = if w.minions.log(|l| l.deleted_by_ccm.contains(&m0)) { "the CCM" } else { "heatscaler" };
    println!("workers-0's Node deleted by {deleted_by}");
    let (status, _) = daemon.terminate(Duration::from_secs(15)).await;
    assert!(status.success());
}

/// The case: a drained minion in its cooldown, and a pod that fits
/// only there. On the real control plane the node controller has added
/// `node.kubernetes.io/unschedulable:NoSchedule` to the cordoned node; the
/// daemon must still take the node back (untaint and uncordon: everything
/// the removal changed) instead of booting a minion and removing this one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_drained_minion_is_taken_back_instead_of_booting_a_new_one() {
    let _slot = harness::slot().await;
    let w = World::new(Spec {
        initial: 2,
        min: 0,
        overrides: "scale-down: {cooldown-before-removal: 300s}",
        ..Spec::default()
    })
    .await;
    let (m0, m1) = (node_name(GROUP, "0"), node_name(GROUP, "1"));
    // workers-1 keeps a large pod that may not move: it is needed and 500m of it is free.
    let big_keeper = with_pod_annotation(deployment("keeper", 1, "1500m"), SAFE_TO_EVICT, "false");
    w.place_on(&m1, big_keeper).await;
    let mut daemon = w.ready_daemon().await;

    // workers-0 is empty: removed down to `drained`, then held by the cooldown.
    w.wait("workers-0 drained", KUBE, async || {
        w.node(&m0).await.as_ref().and_then(harness::removal_phase).as_deref() == Some("drained")
    })
    .await;
    let cordoned = w.node(&m0).await.unwrap();
    let taints: Vec<String> =
        cordoned.spec.as_ref().and_then(|s| s.taints.clone()).unwrap_or_default().into_iter().map(|t| t.key).collect();
    println!("taints of the drained node: {taints:?}");

    // A pod of 1 CPU fits only on workers-0 (or on a new minion).
    w.create(&deployment("late", 1, "1")).await;
    w.wait("the late pod running on workers-0", KUBE, async || w.running_on("late", &m0).await == 1).await;
    let node = w.node(&m0).await.unwrap();
    untouched(&node).unwrap();
    let left: Vec<_> = node.spec.as_ref().and_then(|s| s.taints.clone()).unwrap_or_default();
    assert!(left.iter().all(|t| t.key != "node.kubernetes.io/unschedulable"), "{left:?}");
    let (_, aborted) = w.hooks.wait_for("ScaleDownAborted", KUBE, |e| e["object"]["name"] == m0.as_str()).await;
    println!("{}", aborted["message"]);
    assert!(w.hooks.with_reason("ScaledUpGroup").is_empty(), "no minion was booted: {:?}", w.hooks.reasons());
    let s = w.heat().await;
    assert_eq!((members(&s), s.desired), (vec!["0".to_string(), "1".to_string()], 2));
    let (status, _) = daemon.terminate(Duration::from_secs(15)).await;
    assert!(status.success());
}
