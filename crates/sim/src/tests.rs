//! Simulator behaviour beyond the walk-through: determinism, failed
//! provisioning under a quota, restarts mid-removal, drains through PDBs, and
//! a drained minion taken back.

use super::report::{Report, TimelineEvent};
use super::{PHP_APACHE, Scenario, run};

fn scenario(text: &str) -> Scenario {
    Scenario::parse(text, "test.yaml").unwrap_or_else(|e| panic!("{e}"))
}

fn events(report: &Report) -> Vec<&TimelineEvent> {
    report.runs[0].timeline.iter().map(|e| &e.event).collect()
}

const BASE: &str = r#"
name: test
seed: 3
duration: 60m
sample-interval: 10s
provisioning: {heat-update: 20s, boot: 60s, pod-termination: 2s}
node-groups:
  - name: g
    min-size: 1
    max-size: 6
    initial-size: 2
    shape: {allocatable: {cpu: "2", memory: 8Gi}}
daemonsets:
  - {name: proxy, requests: {cpu: 100m}}
"#;

#[test]
fn the_same_seed_gives_the_same_report() {
    let sc = scenario(PHP_APACHE);
    let a = serde_json::to_string(&run(&sc).unwrap()).unwrap();
    let b = serde_json::to_string(&run(&sc).unwrap()).unwrap();
    assert_eq!(a, b);
    let mut other = sc.clone();
    other.seed = 99;
    let c = run(&other).unwrap();
    assert_ne!(serde_json::to_string(&c).unwrap(), a, "boot times are drawn from the seed");
    assert_eq!((c.runs[0].node_level.scale_ups, c.runs[0].node_level.nodes_removed), (1, 1));
}

#[test]
fn a_quota_failure_is_repaired_and_backed_off_without_shrinking_the_group() {
    let sc = scenario(&format!(
        "{}\n{}",
        BASE.replace("initial-size: 2", "initial-size: 2\n    quota: 2"),
        r#"
workloads:
  - name: web
    pod: {containers: [{name: web, requests: {cpu: "1", memory: 1Gi}}]}
    replicas: {steps: [{at: 0s, value: 2}, {at: 1m, value: 4}]}
"#
    ));
    let report = run(&sc).unwrap();
    let r = &report.runs[0];
    let failures = events(&report).iter().filter(|e| matches!(e, TimelineEvent::CreateFailed { .. })).count();
    assert!(failures >= 2, "retried after the back-off: {:#?}", r.timeline);
    assert!(r.node_level.provisioning_failures >= 2);
    // Never below the two members that work, never a growth walk.
    for s in &r.series {
        assert!((2..=4).contains(&s.desired["g"]), "{s:?}");
        assert_eq!(s.ready["g"], 2);
    }
    // Back-off: the retries are minutes apart, not every pass.
    let ups: Vec<f64> =
        r.timeline.iter().filter(|e| matches!(e.event, TimelineEvent::ScaleUp { .. })).map(|e| e.at_secs).collect();
    assert!(ups.windows(2).all(|w| w[1] - w[0] >= 300.0), "{ups:?}");
    assert_eq!(r.node_level.never_scheduled, 2);
}

#[test]
fn restarts_mid_removal_continue_from_the_node_annotations() {
    let mut sc = scenario(PHP_APACHE);
    let baseline = run(&sc).unwrap();
    let removal_started = baseline.runs[0]
        .timeline
        .iter()
        .find(|e| matches!(e.event, TimelineEvent::RemovalStarted { .. }))
        .expect("walk-through removes a minion")
        .at_secs;
    // Restart right after the removal started, during the cooldown, and again
    // while Heat removes the member.
    for offset in [1, 30, 75] {
        sc.daemon.restarts.push(heatscaler_core::policy::Duration::from_secs(removal_started as u64 + offset));
    }
    let report = run(&sc).unwrap();
    let r = &report.runs[0];
    assert_eq!((r.node_level.scale_downs, r.node_level.nodes_removed, r.node_level.rollbacks), (1, 1, 0));
    assert_eq!(events(&report).iter().filter(|e| matches!(e, TimelineEvent::DaemonRestarted)).count(), 3);
    assert!(events(&report).iter().any(|e| matches!(e, TimelineEvent::NodeDeleted { .. })));
    assert_eq!(r.series.last().unwrap().ready["minions"], 2);
}

#[test]
fn drains_evict_through_the_pdb_and_the_group_shrinks() {
    let sc = scenario(&format!(
        "{}\n{}",
        BASE.replace("initial-size: 2", "initial-size: 3"),
        r#"
policy:
  scale-down: {unneeded-time: 2m, delay-after-add: 0s, cooldown-before-removal: 30s}
workloads:
  - name: web
    pod: {containers: [{name: web, requests: {cpu: 500m, memory: 1Gi}}]}
    replicas: {steps: [{at: 0s, value: 9}, {at: 5m, value: 2}]}
    pdb: {max-unavailable: 1}
"#
    ));
    let report = run(&sc).unwrap();
    let r = &report.runs[0];
    assert!(r.node_level.evictions >= 1, "{report}");
    assert_eq!(r.node_level.nodes_removed, 2, "{report}");
    let last = r.series.last().unwrap();
    assert_eq!((last.ready["g"], last.pending_pods), (1, 0));
    // Every eviction kept the PDB: never two web pods missing at once.
    for s in &r.series {
        assert!(s.running_pods >= 2, "{s:?}");
    }
}

#[test]
fn a_drained_minion_is_taken_back_when_load_returns() {
    let sc = scenario(&format!(
        "{}\n{}",
        BASE,
        r#"
policy:
  scale-down: {unneeded-time: 1m, delay-after-add: 0s, cooldown-before-removal: 10m}
workloads:
  - name: web
    pod: {containers: [{name: web, requests: {cpu: 500m, memory: 1Gi}}]}
    replicas: {steps: [{at: 0s, value: 6}, {at: 25m, value: 2}, {at: 29m, value: 6}]}
"#
    ));
    // The load drops once the pods are older than the planner's min-pod-age
    // (20 min): younger ones are not evicted by choice.
    let report = run(&sc).unwrap();
    let r = &report.runs[0];
    assert!(
        events(&report)
            .iter()
            .any(|e| matches!(e, TimelineEvent::RolledBack { reason, .. } if reason.contains("needed again"))),
        "{report}"
    );
    assert_eq!(r.node_level.scale_ups, 0, "uncordoning beats booting: {report}");
}

/// A group that starts empty, sampled before the first pod exists: the bound
/// kept from the cluster's change log must equal a recount (the recorder
/// asserts it in debug builds) — it was `None` until the first pod change,
/// where a recount gives zero minions.
#[test]
fn an_empty_start_is_sampled_with_the_bound_of_no_demand() {
    let sc = scenario(
        r#"
name: empty-start
seed: 1
duration: 2h
sample-interval: 1m
node-groups:
  - name: batch
    min-size: 0
    max-size: 4
    initial-size: 0
    price-per-hour: 0.4
    shape:
      allocatable: {cpu: "8", memory: 32Gi, pods: "110"}
      labels: {heatscaler.io/node-group: batch}
bursts:
  - name: job
    pod: {containers: [{name: job, requests: {cpu: "1", memory: 3Gi}}]}
    rate-per-hour: 3
    size: {min: 5, max: 10}
    runtime: {uniform: {min: 10m, max: 20m}}
"#,
    );
    let report = run(&sc).unwrap();
    assert_eq!(report.runs[0].series.first().map(|s| s.at_secs), Some(0.0));
}

/// Issue 18, item 4: pods that arrive, never fit (the group is at its
/// `max-size`) and are deleted while still pending waited their whole life
/// for capacity and were never scheduled; the report must say so, for every
/// policy, rather than forget them when they go.
#[test]
fn pods_deleted_while_pending_count_in_the_waits_and_as_never_scheduled() {
    let sc = scenario(&format!(
        "{}\n{}",
        BASE.replace("max-size: 6", "max-size: 2"),
        r#"
workloads:
  - name: web
    pod: {containers: [{name: web, requests: {cpu: "1500m", memory: 1Gi}}]}
    replicas: 2
pods:
  - {name: late-1, pod: {containers: [{name: c, requests: {cpu: "1500m"}}]}, arrival: 5m, departure: 25m, controller: Job}
  - {name: late-2, pod: {containers: [{name: c, requests: {cpu: "1500m"}}]}, arrival: 5m, departure: 25m, controller: Job}
  - {name: late-3, pod: {containers: [{name: c, requests: {cpu: "1500m"}}]}, arrival: 5m, departure: 35m, controller: Job}
"#
    ));
    let report = super::compare(&sc, &super::PolicyKind::ALL).unwrap();
    assert!(report.runs.len() >= 2, "heatscaler and the peers");
    for r in &report.runs {
        let n = &r.node_level;
        assert_eq!(n.waited_pods, 3, "{}: {n:?}", r.policy);
        assert_eq!(n.never_scheduled, 3, "{}: {n:?}", r.policy);
        assert_eq!(n.never_scheduled_deleted, 3, "{}: {n:?}", r.policy);
        // Each waited from its arrival to its deletion (the scheduler marks
        // it within a pass of arriving).
        let p50 = n.wait_p50_secs.expect("waits");
        let p99 = n.wait_p99_secs.expect("waits");
        assert!((1195.0..=1200.0).contains(&p50), "{}: p50 {p50}", r.policy);
        assert!((1795.0..=1800.0).contains(&p99), "{}: p99 {p99}", r.policy);
        assert!(n.pending_pod_seconds >= 3.0 * 1195.0 + 600.0, "{}: {n:?}", r.policy);
    }
}
