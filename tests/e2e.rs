//! End to end: `heatscaler run` as a child process against kubesim (over HTTP)
//! and a real Keystone + Heat, with minions that register as Heat creates them.
//!
//! The scenarios share one OpenStack (started once per test binary) and run
//! one at a time: each drives Heat stack updates, which is what takes time.

#[path = "support/openstack.rs"]
mod openstack;

#[path = "support/e2e/mod.rs"]
mod harness;

use std::time::{Duration, Instant};

use harness::{GROUP, NS, Spec, World, is_unschedulable, members, node_name, node_of, untouched};
use k8s_openapi::api::core::v1::Node;
use kubesim::builders::{Budget, PodTemplate, pdb};

/// One scenario at a time: they all load the same Heat engine.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

const HEAT: Duration = Duration::from_secs(120);
const KUBE: Duration = Duration::from_secs(60);

/// A Deployment of `replicas` pods requesting `cpu` each.
fn deployment(name: &str, replicas: i32, cpu: &str) -> k8s_openapi::api::apps::v1::Deployment {
    PodTemplate::new("app").label("app", name).requests(cpu, "128Mi").grace_period(2).deployment(NS, name, replicas)
}

fn with_pod_annotation(
    mut d: k8s_openapi::api::apps::v1::Deployment,
    key: &str,
    value: &str,
) -> k8s_openapi::api::apps::v1::Deployment {
    let meta = d.spec.as_mut().unwrap().template.metadata.get_or_insert_with(Default::default);
    meta.annotations.get_or_insert_with(Default::default).insert(key.into(), value.into());
    d
}

/// Puts a one-replica Deployment's pod on `node` by cordoning the other nodes while it schedules.
async fn place_on(w: &World, node: &str, d: k8s_openapi::api::apps::v1::Deployment) {
    let name = d.metadata.name.clone().unwrap();
    let others: Vec<String> = w
        .sim
        .list::<Node>(None)
        .into_iter()
        .filter_map(|n| n.metadata.name)
        .filter(|n| n != node)
        .collect();
    for o in &others {
        w.set_cordon(o, true);
    }
    w.sim.create(&d).unwrap();
    w.wait_kube(&format!("{name} running on {node}"), KUBE, |_| {
        w.running(&name).iter().any(|p| node_of(p) == Some(node))
    })
    .await;
    for o in &others {
        w.set_cordon(o, false);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pending_pods_grow_the_group_once_and_only_drained_minions_are_removed() {
    let _serial = SERIAL.lock().await;
    let started = Instant::now();
    let w = World::new(Spec { initial: 2, min: 0, ..Spec::default() }).await;
    let (m0, m1) = (node_name(GROUP, "0"), node_name(GROUP, "1"));

    // A pod whose budget allows no disruption on workers-0, a pod that must not
    // be evicted on workers-1: both minions must survive the scale-down.
    place_on(&w, &m0, deployment("guarded", 1, "100m")).await;
    w.sim.create(&pdb(NS, "guarded", &[("app", "guarded")], Budget::MinAvailable(1.into()))).unwrap();
    let keeper = with_pod_annotation(deployment("keeper", 1, "100m"), "cluster-autoscaler.kubernetes.io/safe-to-evict", "false");
    place_on(&w, &m1, keeper).await;

    let mut daemon = w.ready_daemon().await;

    // 8 pods of 900m on 2-CPU minions: 2 fit on each existing minion, 4 wait
    // → the minimum is 2 new minions, in one stack update.
    w.sim.create(&deployment("burst", 8, "900m")).unwrap();
    let t_unschedulable = {
        w.wait_kube("a burst pod unschedulable", KUBE, |_| w.pods("burst").iter().any(is_unschedulable)).await;
        Instant::now()
    };
    let (t_alert, scaled) = w.hooks.wait_for("ScaledUpGroup", KUBE, |_| true).await;
    let reaction = t_alert.saturating_duration_since(t_unschedulable);
    println!("REACTION TIME: pod unschedulable -> Heat update accepted (alert received): {reaction:?}");
    assert_eq!(scaled["fields"]["from_size"], "2", "{scaled}");
    assert_eq!(scaled["fields"]["to_size"], "4", "{scaled}");
    w.wait_heat("4 members", HEAT, |s| s.desired == 4 && s.members.len() == 4 && !s.busy).await;
    w.wait_kube("all burst pods running", KUBE, |_| w.running("burst").len() == 8).await;
    assert_eq!(w.hooks.with_reason("ScaledUpGroup").len(), 1, "one stack update grows the group");
    assert_eq!(w.hooks.wait_count("TriggeredScaleUp", 4, KUBE).await.len(), 4, "an Event per pod that waited");

    // Load goes away: the two new minions are drained, cooled down and
    // removed exactly; the protected ones stay.
    let (m2, m3) = (node_name(GROUP, "2"), node_name(GROUP, "3"));
    w.set_replicas("burst", 0);
    let t_idle = Instant::now();
    w.wait_kube("the burst pods gone", KUBE, |_| w.pods("burst").is_empty()).await;
    let s = w.wait_heat("members 0 and 1 only", HEAT, |s| members(s) == ["0", "1"] && !s.busy).await;
    assert_eq!(s.desired, 2);
    w.wait_kube("the removed minions' nodes deleted", KUBE, |h| {
        h.get::<Node>(None, &m2).is_none() && h.get::<Node>(None, &m3).is_none()
    })
    .await;
    println!("scale-down: load gone -> members removed and nodes deleted in {:?}", t_idle.elapsed());
    for n in [&m0, &m1] {
        untouched(&w.node(n).unwrap()).unwrap();
    }
    assert_eq!(w.running("guarded").len(), 1);
    assert_eq!(w.running("keeper").len(), 1);
    assert_eq!(w.minions.log(|l| l.removed.clone()), ["2".to_string(), "3".to_string()].into());
    let removed = w.hooks.wait_count("MinionRemoved", 2, KUBE).await;
    assert_eq!(removed.len(), 2, "{:?}", w.hooks.reasons());
    let updates = w.hooks.with_reason("ScaledDownGroup").len();
    println!("scale-down Heat updates: {updates}");
    assert!((1..=2).contains(&updates));

    // SIGHUP with a broken file: rejected, alerted, the daemon keeps going.
    std::fs::write(&w.config_path, "node-groups: [{name: broken}]\n").unwrap();
    daemon.signal("HUP");
    let (_, rejected) = w.hooks.wait_for("ConfigReloadFailed", KUBE, |_| true).await;
    assert!(rejected["message"].as_str().unwrap().contains("node-groups"), "{rejected}");
    std::fs::write(&w.config_path, &w.config_text).unwrap();
    daemon.wait_passes(2, KUBE).await;
    assert!(daemon.is_running());

    // SIGTERM: clean exit within the stop timeout.
    let (status, took) = daemon.terminate(Duration::from_secs(15)).await;
    assert!(status.success(), "exit status {status}");
    println!("SIGTERM -> exit: {took:?}");
    println!("scenario wall time: {:?}", started.elapsed());
}
