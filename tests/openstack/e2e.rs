//! End to end: `heatscaler run` as a child process against a real Kubernetes
//! control plane (its shipped ServiceAccount and RBAC) and a real Keystone +
//! Heat, with minions whose kubelets register as Heat creates them.
//!
//! Each scenario has its own control plane, so a few run side by side
//! (`harness::slot`); they share the binary's OpenStack.

use std::time::{Duration, Instant};

use crate::harness::{
    self, GROUP, Kube, NS, Shape, Spec, Template, World, is_unschedulable, members, node_name, node_of, untouched,
};
use k8s_openapi::api::apps::v1::Deployment;
use kubesim::builders::{Budget, PodTemplate, pdb};

pub const HEAT: Duration = Duration::from_secs(120);
pub const KUBE: Duration = Duration::from_secs(60);

/// A Deployment of `replicas` pods requesting `cpu` each.
pub fn deployment(name: &str, replicas: i32, cpu: &str) -> Deployment {
    PodTemplate::new("app").label("app", name).requests(cpu, "128Mi").grace_period(2).deployment(NS, name, replicas)
}

pub fn with_pod_annotation(mut d: Deployment, key: &str, value: &str) -> Deployment {
    let meta = d.spec.as_mut().unwrap().template.metadata.get_or_insert_with(Default::default);
    meta.annotations.get_or_insert_with(Default::default).insert(key.into(), value.into());
    d
}

/// A pod that may not be evicted (cluster-autoscaler's annotation): it keeps its node.
pub fn keeper() -> Deployment {
    with_pod_annotation(deployment("keeper", 1, "100m"), "cluster-autoscaler.kubernetes.io/safe-to-evict", "false")
}

/// Pending pods grow the group once; the new minions are removed exactly
/// when their load goes; protected minions stay; a broken reload is refused;
/// SIGTERM stops cleanly. Run on the real control plane ([`e2e`]) and on
/// kubesim (`on_kubesim`), for the reaction and scale-down times side by side.
pub async fn grow_then_shrink(kube: Kube) {
    let started = Instant::now();
    let w = World::new(Spec { initial: 2, min: 0, kube, ..Spec::default() }).await;
    let (m0, m1) = (node_name(GROUP, "0"), node_name(GROUP, "1"));

    // A pod whose budget allows no disruption on workers-0, a pod that must not
    // be evicted on workers-1: both minions must survive the scale-down.
    w.place_on(&m0, deployment("guarded", 1, "100m")).await;
    w.create(&pdb(NS, "guarded", &[("app", "guarded")], Budget::MinAvailable(1.into()))).await;
    w.place_on(&m1, keeper()).await;

    let mut daemon = w.ready_daemon().await;

    // 8 pods of 900m on 2-CPU minions: 2 fit on each existing minion, 4 wait
    // → the minimum is 2 new minions, in one stack update.
    let t_created = Instant::now();
    w.create(&deployment("burst", 8, "900m")).await;
    w.wait("a burst pod unschedulable", KUBE, async || w.pods("burst").await.iter().any(is_unschedulable)).await;
    let t_unschedulable = Instant::now();
    let (t_alert, scaled) = w.hooks.wait_for("ScaledUpGroup", KUBE, |_| true).await;
    let times_up = (t_alert.saturating_duration_since(t_created), t_alert.saturating_duration_since(t_unschedulable));
    println!(
        "REACTION TIME: burst created -> Heat update accepted (alert received): {:?}; first pod seen unschedulable -> \
         the same: {:?}",
        times_up.0, times_up.1
    );
    assert_eq!(scaled["fields"]["from_size"], "2", "{scaled}");
    assert_eq!(scaled["fields"]["to_size"], "4", "{scaled}");
    w.wait_heat("4 members", HEAT, |s| s.desired == 4 && s.members.len() == 4 && !s.busy).await;
    w.wait("all burst pods running", KUBE, async || w.running("burst").await.len() == 8).await;
    assert_eq!(w.hooks.with_reason("ScaledUpGroup").len(), 1, "one stack update grows the group");
    assert_eq!(w.hooks.wait_count("TriggeredScaleUp", 4, KUBE).await.len(), 4, "an Event per pod that waited");

    // Load goes away: the two new minions are removed exactly; the protected ones stay.
    let (m2, m3) = (node_name(GROUP, "2"), node_name(GROUP, "3"));
    w.set_replicas("burst", 0).await;
    let t_idle = Instant::now();
    w.wait("the burst pods gone", KUBE, async || w.pods("burst").await.is_empty()).await;
    let s = w.wait_heat("members 0 and 1 only", HEAT, |s| members(s) == ["0", "1"] && !s.busy).await;
    assert_eq!(s.desired, 2);
    w.wait("the removed minions' nodes deleted", KUBE, async || {
        w.node(&m2).await.is_none() && w.node(&m3).await.is_none()
    })
    .await;
    let scale_down = t_idle.elapsed();
    println!("SCALE-DOWN TIME: load gone -> members removed and nodes deleted in {scale_down:?}");
    for n in [&m0, &m1] {
        untouched(&w.node(n).await.unwrap()).unwrap();
    }
    assert_eq!(w.running("guarded").await.len(), 1);
    assert_eq!(w.running("keeper").await.len(), 1);
    // Why each protected minion stays is said (ScaleDownBlocked), naming what holds it, once —
    // not every pass, nor each time the burst's coming and going flips its status.
    for (node, why) in [(&m0, "PodDisruptionBudget default/guarded"), (&m1, "safe-to-evict: false")] {
        let blocked = w.hooks.with_reason("ScaleDownBlocked");
        let about: Vec<&serde_json::Value> =
            blocked.iter().map(|(_, e)| e).filter(|e| e["object"]["name"] == node.as_str()).collect();
        assert_eq!(about.len(), 1, "ScaleDownBlocked for {node}: {about:?}");
        assert!(about[0]["message"].as_str().unwrap().contains(why), "{}", about[0]);
    }
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pending_pods_grow_the_group_once_and_only_drained_minions_are_removed() {
    let _slot = harness::slot().await;
    grow_then_shrink(Kube::real()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_member_is_removed_precisely_alerted_and_the_group_not_shrunk_further() {
    let _slot = harness::slot().await;
    let started = Instant::now();
    let w = World::new(Spec {
        template: Template::FlakyResourceGroup { failing_index: "2".into() },
        initial: 1,
        min: 1,
        ..Spec::default()
    })
    .await;
    let mut daemon = w.ready_daemon().await;

    // 2 of 6 pods fit on workers-0; the other 4 need members 1 and 2, and 2 fails to create.
    w.create(&deployment("burst", 6, "900m")).await;
    let (_, failed) = w.hooks.wait_for("ProvisioningFailed", HEAT, |e| e["fields"]["member"] == "2").await;
    println!("alerted: {}", failed["message"]);
    w.minions.watch_min_desired(3);
    w.hooks.wait_for("ScaleUpBackoff", KUBE, |_| true).await;

    // Member 2 goes (exactly it), then after the back-off a new member takes its place.
    let s = w.wait_heat("members 0, 1 and 3", HEAT, |s| members(s) == ["0", "1", "3"] && !s.busy).await;
    assert_eq!(s.desired, 3);
    w.wait("all burst pods running", KUBE, async || w.running("burst").await.len() == 6).await;
    assert_eq!(w.hooks.with_reason("ProvisioningFailed").len(), 1, "one alert per failed member");
    assert_eq!(w.minions.log(|l| l.removed.clone()), ["2".to_string()].into(), "only the failed member was removed");
    let lowest = w.minions.log(|l| l.min_desired_seen).unwrap();
    assert_eq!(lowest, 2, "the group never went below the members that stayed");
    let ups = w.hooks.with_reason("ScaledUpGroup");
    assert_eq!(ups.len(), 2, "the first growth, and the replacement after the back-off");
    assert_eq!(
        (ups[1].1["fields"]["from_size"].as_str(), ups[1].1["fields"]["to_size"].as_str()),
        (Some("2"), Some("3"))
    );

    let (status, _) = daemon.terminate(Duration::from_secs(15)).await;
    assert!(status.success());
    println!("scenario wall time: {:?}", started.elapsed());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drift_lost_nodes_strays_and_members_without_nodes_are_handled_exactly() {
    let _slot = harness::slot().await;
    let started = Instant::now();
    let w = World::new(Spec {
        initial: 3,
        min: 1,
        never_join: vec!["2"],
        overrides: "scale-up: {max-node-provision-time: 8s}",
        ..Spec::default()
    })
    .await;
    // A node labelled as the group's that Heat knows nothing about.
    let mut stray = Shape::new("2", "4Gi");
    stray.labels.insert(harness::minions::GROUP_LABEL.into(), GROUP.into());
    w.kubelets.boot("stray", None, &stray).await.unwrap();
    let mut daemon = w.ready_daemon().await;
    daemon.wait_passes(2, KUBE).await;

    // Someone deletes a minion's Node by hand (its VM and kubelet still run).
    let (m0, m1) = (node_name(GROUP, "0"), node_name(GROUP, "1"));
    w.delete_node(&m1).await;

    let (_, lost) = w.hooks.wait_for("UnregisteredMinion", HEAT, |e| e["fields"]["member"] == "1").await;
    assert_eq!(lost["object"]["name"], m1.as_str(), "{lost}");
    let (_, stray_alert) = w.hooks.wait_for("UnregisteredMinion", KUBE, |e| e["object"]["name"] == "stray").await;
    println!("alerted: {}\nalerted: {}", lost["message"], stray_alert["message"]);
    w.hooks.wait_for("ProvisioningFailed", HEAT, |e| e["fields"]["member"] == "2").await;

    let s = w.wait_heat("member 0 only", HEAT, |s| members(s) == ["0"] && !s.busy).await;
    assert_eq!(s.desired, 1);
    daemon.wait_passes(3, KUBE).await;
    // The stray node is reported, never touched; the healthy minion keeps working.
    untouched(&w.node("stray").await.expect("the stray node is left alone")).unwrap();
    untouched(&w.node(&m0).await.unwrap()).unwrap();
    assert_eq!(w.minions.log(|l| l.removed.clone()), ["1".to_string(), "2".to_string()].into());
    let failures = w.hooks.with_reason("ProvisioningFailed");
    assert!(
        failures.iter().all(|(_, e)| e["fields"]["member"] == "2"),
        "a lost node is not a failed boot: {failures:?}"
    );

    let (status, _) = daemon.terminate(Duration::from_secs(15)).await;
    assert!(status.success());
    println!("scenario wall time: {:?}", started.elapsed());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dry_run_reports_intended_actions_and_performs_none() {
    let _slot = harness::slot().await;
    let w = World::new(Spec { initial: 1, min: 0, ..Spec::default() }).await;
    let mut daemon = w.start_daemon(&["--dry-run"]);
    daemon.wait_ready(KUBE).await;
    let m0 = node_name(GROUP, "0");

    w.create(&deployment("burst", 4, "900m")).await;
    let (_, up) = w.hooks.wait_for("ScaledUpGroup", KUBE, |e| e["fields"]["dry_run"] == "true").await;
    assert!(up["message"].as_str().unwrap().starts_with("dry run: would grow node group workers from 1 to 2"), "{up}");
    daemon.wait_passes(3, KUBE).await;
    let s = w.heat().await;
    assert_eq!((s.desired, s.busy), (1, false), "nothing was sent to Heat");

    w.set_replicas("burst", 0).await;
    let (_, cordon) = w.hooks.wait_for("ScaleDownCordoned", KUBE, |e| e["fields"]["dry_run"] == "true").await;
    assert_eq!(cordon["object"]["name"], m0.as_str());
    daemon.wait_passes(3, KUBE).await;
    untouched(&w.node(&m0).await.unwrap()).unwrap();
    assert_eq!(w.heat().await.desired, 1);
    let (status, _) = daemon.terminate(Duration::from_secs(15)).await;
    assert!(status.success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crash_at_every_removal_step_leaves_the_cluster_consistent() {
    let _slot = harness::slot().await;
    let started = Instant::now();
    let w = World::new(Spec {
        initial: 2,
        min: 1,
        // Evicted pods take their grace period (100 s) × the emulated kubelets'
        // grace scale (0.05) to terminate: a drain lasts ~5 s, long enough to
        // kill the daemon in the middle of it, while everything else runs fast.
        overrides: "scale-down: {unneeded-time: 2s, cooldown-before-removal: 4s, max-graceful-termination: 100s}",
        ..Spec::default()
    })
    .await;
    let (m0, m1) = (node_name(GROUP, "0"), node_name(GROUP, "1"));
    // workers-1 keeps a pod that may not be evicted, so workers-0 is the one
    // drained; its 3 pods fit on workers-1, within their budget.
    w.place_on(&m1, keeper()).await;
    let filler = PodTemplate::new("app").label("app", "filler").requests("100m", "128Mi").grace_period(100);
    w.place_on(&m0, filler.deployment(NS, "filler", 3)).await;
    w.create(&pdb(NS, "filler", &[("app", "filler")], Budget::MaxUnavailable(3.into()))).await;
    let phase = async || w.node(&m0).await.as_ref().and_then(harness::removal_phase);
    let terminating = async || {
        let pods = w.pods("filler").await;
        pods.iter().filter(|p| node_of(p) == Some(&m0) && p.metadata.deletion_timestamp.is_some()).count()
    };

    // 1. Right after the taint and cordon.
    let mut daemon = w.ready_daemon().await;
    w.wait("workers-0 tainted", KUBE, async || phase().await.is_some()).await;
    daemon.kill9();
    let at_kill = (phase().await, w.running_on("filler", &m0).await);
    println!("killed after the taint: phase {:?}, {} filler pod(s) still on workers-0", at_kill.0, at_kill.1);
    assert_eq!(at_kill.0.as_deref(), Some("draining"));

    // 2. In the middle of the drain: pods evicted, still terminating.
    let mut daemon = w.ready_daemon().await;
    w.wait("workers-0 mid-drain", KUBE, async || {
        terminating().await > 0 && phase().await.as_deref() == Some("draining")
    })
    .await;
    daemon.kill9();
    println!("killed mid-drain: {} filler pod(s) terminating on workers-0", terminating().await);

    // 3. During the cooldown.
    let mut daemon = w.ready_daemon().await;
    w.wait("workers-0 drained", KUBE, async || phase().await.as_deref() == Some("drained")).await;
    assert_eq!(w.running_on("filler", &m0).await, 0, "drained means no workload pod left");
    daemon.kill9();
    println!("killed during the cooldown");

    // 4. After the Heat update was sent.
    let mut daemon = w.ready_daemon().await;
    w.wait("workers-0 removing", KUBE, async || phase().await.as_deref() == Some("removing")).await;
    w.wait_heat("the removal under way", HEAT, |s| s.busy || s.member("0").is_none()).await;
    daemon.kill9();
    println!("killed after the Heat update was sent");

    // The end state, reached by a fresh daemon.
    let mut daemon = w.ready_daemon().await;
    w.assert_only_workers_0_removed().await;
    let (status, _) = daemon.terminate(Duration::from_secs(15)).await;
    assert!(status.success());
    println!("scenario wall time: {:?}", started.elapsed());
}

/// A group whose removal parameter Heat ignores (the template
/// mistake): the daemon drains an unneeded minion, then refuses to send the
/// removal, alerts with the fix, and Heat still has every member.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unwired_group_is_never_shrunk_and_the_refusal_names_the_fix() {
    let _slot = harness::slot().await;
    let w = World::new(Spec { template: Template::UnwiredRemoval, initial: 2, min: 0, ..Spec::default() }).await;
    let mut daemon = w.ready_daemon().await;

    // Both minions are empty, hence unneeded: a removal is planned and refused.
    let (_, refused) = w.hooks.wait_for("RemovalNotWired", HEAT, |_| true).await;
    let message = refused["message"].as_str().unwrap();
    for needed in ["workers", "minions_to_remove", "kube_minions", "removal_policies"] {
        assert!(message.contains(needed), "the alert names {needed}: {message}");
    }
    assert_eq!(refused["severity"], "critical", "{refused}");
    // Refused again at the next passes (Heat's answer is kept until the template changes).
    w.hooks.wait_count("RemovalNotWired", 3, KUBE).await;
    let s = w.heat().await;
    assert_eq!((members(&s), s.desired), (vec!["0".to_string(), "1".to_string()], 2), "nothing reached Heat");
    assert!(w.hooks.with_reason("ScaledDownGroup").is_empty(), "{:?}", w.hooks.reasons());
    // Refused before any node was marked `removing`: the nodes are still there.
    for m in ["0", "1"] {
        let node = w.node(&node_name(GROUP, m)).await.expect("the node is kept");
        let phase =
            node.metadata.annotations.unwrap_or_default().get(heatscaler_core::planner::protocol::PHASE).cloned();
        assert_ne!(phase.as_deref(), Some("removing"), "workers-{m}");
    }
    let (status, _) = daemon.terminate(Duration::from_secs(15)).await;
    assert!(status.success());
}

/// One group names a stack that does not exist. The daemon becomes ready
/// anyway once that has lasted `openstack.failure-alert-after`, alerts it
/// (critical, through the sink), shows it in `/readyz` and in a metric with
/// the reason, and manages the correct group as usual.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_misconfigured_group_degrades_only_itself_and_is_alerted() {
    let _slot = harness::slot().await;
    let w = World::new(Spec {
        initial: 1,
        broken_group: Some("broken"),
        overrides: "openstack: {failure-alert-after: 3s}",
        ..Spec::default()
    })
    .await;
    let mut daemon = w.ready_daemon().await;

    let (_, alert) = w.hooks.wait_for("OpenStackFailing", KUBE, |e| e["group"] == "broken").await;
    assert_eq!(alert["severity"], "critical", "{alert}");
    assert_eq!(alert["fields"]["reason"], "stack_not_found", "{alert}");
    let (status, body) = daemon.get("/readyz").await.unwrap();
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("degraded: node group broken") && body.contains("stack_not_found"), "{body}");
    let failing = daemon.metric("heatscaler_openstack_failing{group=\"broken\",reason=\"stack_not_found\"}").await;
    assert_eq!(failing, Some(1.0));
    assert!(w.hooks.with_reason("OpenStackFailing").iter().all(|(_, e)| e["group"] == "broken"));

    // The correct group is managed: pending pods grow it.
    w.create(&deployment("burst", 3, "900m")).await;
    let (_, scaled) = w.hooks.wait_for("ScaledUpGroup", HEAT, |e| e["group"] == GROUP).await;
    println!("{}", scaled["message"]);
    w.wait_heat("workers grown", HEAT, |s| s.desired > 1 && !s.busy).await;
    let (status, _) = daemon.terminate(Duration::from_secs(15)).await;
    assert!(status.success());
}
