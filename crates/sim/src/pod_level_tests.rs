//! The pod level in the one engine: the kubelet's resize admission and OOM
//! kills, recreations through the eviction path with and without an
//! admission controller, and the VPA-defaults peer beside cluster-autoscaler's.

use heatscaler_core::model::{NodeShape, Resources};
use heatscaler_core::planner::Action;
use heatscaler_core::planner::action::ContainerResize;
use heatscaler_core::planner::explain::CpuMemory;

use crate::autoscaler::{PassObserver, PolicyKind};
use crate::engine::{run_observed, run_policy};
use crate::report::TimelineEvent;
use crate::scenario::{ContainerSpec, PodSpec, Scenario};
use crate::world::World;
use crate::world::cluster::{Origin, PodTemplate};
use crate::world::kubelet::{Admission, ResizeAnswer};

fn scenario(text: &str) -> Scenario {
    Scenario::parse(text, "test.yaml").unwrap_or_else(|e| panic!("{e}"))
}

const EMPTY: &str = "name: t\nduration: 1h\n";

fn template(requests: &[(&str, &str)], limits: &[(&str, &str)]) -> PodTemplate {
    let list = |l: &[(&str, &str)]| {
        l.iter().map(|(k, v)| (k.to_string(), heatscaler_core::policy::Quantity::parse(v).unwrap())).collect()
    };
    let spec =
        PodSpec::one_container(ContainerSpec { name: "app".into(), requests: list(requests), limits: list(limits) });
    PodTemplate::from_spec(&spec, "default", "app", Some("ReplicaSet"))
}

fn resize(cpu_milli: i64, memory: i64) -> Vec<ContainerResize> {
    vec![ContainerResize {
        container: "app".into(),
        from: CpuMemory { cpu_milli: 0, memory: 0 },
        requests: CpuMemory { cpu_milli, memory },
        limits: CpuMemory { cpu_milli: 0, memory: 0 },
    }]
}

/// One 4-core node running pods of `templates`, bound by the scheduler.
fn world_with<'s>(sc: &'s Scenario, templates: &[PodTemplate]) -> (World<'s>, Vec<String>) {
    let mut world = World::new(sc);
    let shape = NodeShape {
        allocatable: Resources { cpu_milli: 4000, memory: 16 << 30, pods: 110, ..Resources::default() },
        labels: Default::default(),
        taints: Vec::new(),
    };
    world.register_node("n1", &shape);
    let uids =
        templates.iter().enumerate().map(|(i, t)| world.create_pod(t, format!("p{i}"), Origin::Workload(i))).collect();
    crate::scheduler::schedule(&mut world);
    (world, uids)
}

#[test]
fn the_kubelet_applies_defers_or_finds_infeasible_and_the_api_refuses_a_qos_change() {
    let sc = scenario(EMPTY);
    let burstable = template(&[("cpu", "1"), ("memory", "1Gi")], &[]);
    let (mut world, uids) = world_with(&sc, &[burstable.clone(), burstable]);
    let gi = 1 << 30;
    // 1 + 2.5 cores of 4: applied.
    assert_eq!(world.resize_pod(&uids[0], &resize(2500, gi)), ResizeAnswer::Requested(Admission::Applied));
    assert_eq!(world.cluster.pod(&uids[0]).unwrap().requests.cpu_milli, 2500);
    assert_eq!(world.resize_pod(&uids[0], &resize(2500, gi)), ResizeAnswer::AlreadyRequested);
    // 2.5 + 2 cores: deferred; the scheduler holds the larger of desired and applied.
    assert_eq!(world.resize_pod(&uids[1], &resize(2000, gi)), ResizeAnswer::Requested(Admission::Deferred));
    let p = world.cluster.pod(&uids[1]).unwrap();
    assert!(p.resize.is_pending() && p.requests.cpu_milli == 2000, "{p:?}");
    assert_eq!(p.containers[0].allocated.as_ref().map_or(1000, |a| a.cpu_milli), 1000, "not applied yet");
    // The other pod shrinks: the kubelet's retry applies it.
    assert_eq!(world.resize_pod(&uids[0], &resize(1500, gi)), ResizeAnswer::Requested(Admission::Applied));
    world.retry_resizes();
    let p = world.cluster.pod(&uids[1]).unwrap();
    assert!(!p.resize.is_pending(), "{p:?}");
    assert_eq!(p.containers[0].allocated.as_ref().unwrap().cpu_milli, 2000);
    // More than the node: infeasible.
    assert_eq!(world.resize_pod(&uids[1], &resize(5000, gi)), ResizeAnswer::Requested(Admission::Infeasible));
    // kube-scheduler counts an Infeasible resize at what was applied, not the spec.
    let p = world.cluster.pod(&uids[1]).unwrap();
    assert_eq!((p.containers[0].requests.cpu_milli, p.requests.cpu_milli), (5000, 2000), "{p:?}");
    let counts = &world.journal.pod_level;
    assert_eq!((counts.resizes_applied, counts.resizes_deferred, counts.resizes_infeasible), (3, 1, 1));

    // BestEffort → Burstable, and Guaranteed → Burstable: 422, nothing changed.
    let best_effort = template(&[], &[]);
    let guaranteed = template(&[("cpu", "1"), ("memory", "1Gi")], &[("cpu", "1"), ("memory", "1Gi")]);
    let (mut world, uids) = world_with(&sc, &[best_effort, guaranteed]);
    for uid in &uids {
        let before = world.cluster.pod(uid).unwrap().containers.clone();
        let answer = world.resize_pod(uid, &resize(500, gi / 2));
        assert!(matches!(&answer, ResizeAnswer::Invalid(m) if m.contains("QOS Class may not change")), "{answer:?}");
        assert_eq!(world.cluster.pod(uid).unwrap().containers, before);
    }
    assert_eq!(world.journal.pod_level.resizes_invalid, 2);
    // Guaranteed stays Guaranteed when limits follow the requests.
    let mut both = resize(1500, gi);
    both[0].limits = CpuMemory { cpu_milli: 1500, memory: gi };
    assert_eq!(world.resize_pod(&uids[1], &both), ResizeAnswer::Requested(Admission::Applied));
}

/// Issue 17 item 5: `bursty` in `scenarios/pod-shapes.yaml` was OOM-killed
/// 132 times a pod-day because its first resize — a shrink — was deferred
/// for ever: the kubelet counted a neighbour's deferred growth as if it had
/// admitted it, so the node looked over-full, and the pod's later OOM-driven
/// growth was never sent behind the stale deferred shrink. A kubelet admits
/// a resize against what it gave the other pods, so a shrink always fits.
#[test]
fn a_shrink_is_admitted_beside_a_neighbours_deferred_growth() {
    let sc = scenario(EMPTY);
    let burstable = template(&[("cpu", "1"), ("memory", "1Gi")], &[]);
    let (mut world, uids) = world_with(&sc, &[burstable.clone(), burstable]);
    let gi = 1 << 30;
    // 1 + 3.8 cores of 4: deferred; the kubelet still runs it at 1 core.
    assert_eq!(world.resize_pod(&uids[0], &resize(3800, gi)), ResizeAnswer::Requested(Admission::Deferred));
    let p = world.cluster.pod(&uids[0]).unwrap();
    assert_eq!(p.containers[0].allocated.as_ref().map(|a| a.cpu_milli), Some(1000), "{p:?}");
    assert_eq!(p.requests.cpu_milli, 3800, "the scheduler holds the larger of desired and allocated");
    // The neighbour shrinks: it fits beside what the kubelet gave pod 0.
    assert_eq!(world.resize_pod(&uids[1], &resize(500, gi)), ResizeAnswer::Requested(Admission::Applied));
    // And pod 0's growth still does not fit beside it (0.5 + 3.8 > 4).
    world.retry_resizes();
    assert!(world.cluster.pod(&uids[0]).unwrap().resize.is_pending());
    // At 3.5 cores it does: the pod's new spec replaces the deferred one.
    assert_eq!(world.resize_pod(&uids[0], &resize(3500, gi)), ResizeAnswer::Requested(Admission::Applied));
    let p = world.cluster.pod(&uids[0]).unwrap();
    assert_eq!((p.requests.cpu_milli, p.containers[0].allocated.as_ref().map(|a| a.cpu_milli)), (3500, Some(3500)));
}

/// Web outgrows its minion (Recreate): heatscaler recreates it. Returns
/// web's pods' CPU requests at the end and the run.
struct EndState(Vec<i64>);

impl PassObserver for EndState {
    fn pass(&mut self, _: &World<'_>, _: &[Action]) {}

    fn finished(&mut self, world: &World<'_>) {
        self.0 = world
            .cluster
            .snap
            .pods
            .iter()
            .filter(|p| p.name.starts_with("web-") && p.deletion.is_none())
            .map(|p| p.requests.cpu_milli)
            .collect();
    }
}

const OUTGROWN: &str = r#"
name: outgrown
seed: 1
duration: 2h
provisioning: {heat-update: 30s, boot: 60s, pod-termination: 2s}
vpa-admission-controller: ADMISSION
node-groups:
  - {name: g, min-size: 1, max-size: 4, initial-size: 2, shape: {allocatable: {cpu: "4", memory: 16Gi}}}
workloads:
  - name: other
    pod: {containers: [{name: other, requests: {cpu: 1500m, memory: 2Gi}}]}
    replicas: 2
  - name: web
    pod: {containers: [{name: web, requests: {cpu: "1", memory: 1Gi}, limits: {memory: 2Gi}}]}
    replicas: 2
    vpa: {update-mode: Recreate, cpu: 1800m, memory: 900Mi, noise: 0}
"#;

/// Replaces an evicted pod from its template, as a ReplicaSet does.
struct Replaces(PodTemplate);

impl crate::world::Owners for Replaces {
    fn evicted(&mut self, world: &mut World<'_>, origin: Origin) {
        world.create_pod(&self.0, "replacement".into(), origin);
    }
}

#[test]
fn an_evicted_pod_comes_back_at_its_template_unless_an_admission_controller_runs() {
    let sc = scenario(EMPTY);
    let mut web = template(&[("cpu", "1"), ("memory", "1Gi")], &[("memory", "2Gi")]);
    let workload = heatscaler_core::model::WorkloadRef {
        kind: "Deployment".into(),
        namespace: "default".into(),
        name: "web".into(),
    };
    web.workload = Some(workload.clone());
    let target = Resources { cpu_milli: 3000, memory: 1 << 30, ..Resources::default() };
    let vertical = heatscaler_core::model::VerticalScaling {
        namespace: "default".into(),
        name: "web".into(),
        workload,
        update_mode: heatscaler_core::model::UpdateMode::InPlaceOrRecreate,
        min_replicas: None,
        resource_policy: Default::default(),
        eviction_requirements: Vec::new(),
        replicas: None,
        recommendations: vec![heatscaler_core::model::ContainerRecommendation {
            container_name: "app".into(),
            target: target.clone(),
            lower_bound: target.clone(),
            upper_bound: target.clone(),
            uncapped_target: target,
            capped: Vec::new(),
        }],
    };
    for admission in [false, true] {
        let (mut world, uids) = world_with(&sc, std::slice::from_ref(&web));
        world.cluster.snap.vertical = vec![vertical.clone()];
        world.cluster.snap.admission_applies_recommendations = admission;
        let lineage = world.lineage(&uids[0]);
        let mut owner = Replaces(web.clone());
        let answer = world.evict(&uids[0], None, &mut Default::default(), &mut owner);
        assert_eq!(answer, crate::world::Eviction::Evicted);
        let new = world.cluster.snap.pods.iter().find(|p| p.name == "replacement").unwrap();
        assert_eq!(world.lineage(&new.uid), lineage, "the replacement continues the replica");
        let want = if admission { 3000 } else { 1000 };
        assert_eq!(new.requests.cpu_milli, want, "admission {admission}: {new:?}");
        if admission {
            assert_eq!(new.containers[0].limits.memory, 2 << 30, "the limit keeps its ratio to the request");
        }
    }
}

#[test]
fn heatscaler_recreates_an_outgrown_pod_through_the_eviction_path() {
    let sc = scenario(&OUTGROWN.replace("ADMISSION", "true"));
    let mut end = EndState(Vec::new());
    let run = run_observed(&sc, PolicyKind::HeatscalerNoWebhook, &mut end).unwrap();
    let pod = run.pod_level.clone().unwrap();
    assert!(pod.recreations >= 1, "{pod:?}\n{:#?}", run.timeline);
    assert!(run.timeline.iter().any(|e| matches!(e.event, TimelineEvent::PodRecreated { .. })));
    assert!(end.0.len() == 2 && end.0.iter().all(|&c| c > 1800), "every web pod has the recommendation: {:?}", end.0);
}

/// `heatscaler` (as installed) is heatscaler with its own admission webhook:
/// on a scenario that declares no admission controller it runs exactly as
/// `heatscaler-no-webhook` on the same scenario with
/// `vpa-admission-controller: true` (the webhook is the same function), and
/// unlike `heatscaler-no-webhook` there it moves the outgrown pod.
#[test]
fn heatscalers_webhook_policy_is_heatscaler_with_an_admission_controller() {
    let without = scenario(&OUTGROWN.replace("ADMISSION", "false"));
    let with = scenario(&OUTGROWN.replace("ADMISSION", "true"));
    let webhook = run_policy(&without, PolicyKind::Heatscaler).unwrap();
    let declared = run_policy(&with, PolicyKind::HeatscalerNoWebhook).unwrap();
    let plain = run_policy(&without, PolicyKind::HeatscalerNoWebhook).unwrap();
    let figures = |r: &crate::report::Run| {
        let mut v = serde_json::to_value(r).unwrap();
        for key in ["label", "policy"] {
            v.as_object_mut().unwrap().remove(key);
        }
        v
    };
    assert_eq!(figures(&webhook), figures(&declared));
    assert_eq!(webhook.policy, "heatscaler");
    assert_eq!(plain.policy, "heatscaler-no-webhook");
    assert!(webhook.pod_level.as_ref().unwrap().recreations >= 1);
    assert_eq!(plain.pod_level.as_ref().unwrap().recreations, 0, "no admission controller: never moved");
    // Not a peer: the reference stays the cheapest peer.
    assert_eq!(crate::report::Report::strongest_peer(&[webhook, declared.clone()]), None);
}

#[test]
fn containers_over_their_memory_limit_are_oom_killed_and_restart() {
    let sc = scenario(
        r#"
name: oom
duration: 30m
node-groups:
  - {name: g, min-size: 1, max-size: 2, initial-size: 1, shape: {allocatable: {cpu: "4", memory: 16Gi}}}
policy: {pod-resize: {enabled: false}}
workloads:
  - name: web
    pod: {containers: [{name: web, requests: {cpu: 500m, memory: 1Gi}, limits: {memory: 1Gi}}]}
    replicas: 1
    vpa: {update-mode: Off, cpu: 200m, memory: 1500Mi, noise: 0}
"#,
    );
    let run = run_policy(&sc, PolicyKind::HeatscalerNoWebhook).unwrap();
    let pod = run.pod_level.unwrap();
    // Killed at each tick it serves: started, then serving 30 s after each restart.
    assert!(pod.oom_kills >= 10, "{pod:?}");
    assert_eq!((pod.resizes_requested, pod.recreations), (0, 0), "pod-resize off, update mode Off");
}

#[test]
fn the_vpa_defaults_peer_evicts_beside_cluster_autoscaler_and_its_admission_controller_applies() {
    let sc = scenario(&OUTGROWN.replace("ADMISSION", "false"));
    let mut end = EndState(Vec::new());
    let run = run_observed(&sc, PolicyKind::CaDefaults, &mut end).unwrap();
    assert!(run.label.contains("VPA"), "{}", run.label);
    let pod = run.pod_level.unwrap();
    assert!(pod.recreations >= 2 && pod.resizes_requested == 0, "VPA's updater evicts, never resizes: {pod:?}");
    assert!(end.0.iter().all(|&c| c > 1800), "VPA's admission controller runs with it: {:?}", end.0);
    assert!(run.node_level.scale_ups >= 1, "cluster-autoscaler grows for the grown pods: {:?}", run.node_level);
}

#[test]
fn a_pod_level_scenario_is_reproduced_by_its_seed_and_node_level_reports_have_no_pod_level() {
    let sc = scenario(&OUTGROWN.replace("ADMISSION", "false"));
    let a = serde_json::to_string(&run_policy(&sc, PolicyKind::HeatscalerNoWebhook).unwrap()).unwrap();
    assert_eq!(a, serde_json::to_string(&run_policy(&sc, PolicyKind::HeatscalerNoWebhook).unwrap()).unwrap());
    assert!(a.contains("\"pod_level\""));
    let plain = run_policy(&scenario(crate::PHP_APACHE), PolicyKind::HeatscalerNoWebhook).unwrap();
    assert!(plain.pod_level.is_none());
}

/// Two workloads with pod resizing off: `hog` uses more memory than its
/// limit (every tick it serves, it is killed), `idle` a quarter of its
/// requests. The report's pod-level rows come from what the pods did.
const METERED: &str = r#"
name: metered
duration: 30m
metrics-interval: 1m
provisioning: {heat-update: 30s, boot: 60s, pod-termination: 2s, container-restart: 30s}
node-groups:
  - {name: g, min-size: 1, max-size: 2, initial-size: 1, shape: {allocatable: {cpu: "4", memory: 16Gi}}}
workloads:
  - name: hog
    pod: {containers: [{name: app, requests: {cpu: 500m, memory: 1Gi}, limits: {memory: 1Gi}}]}
    replicas: 1
    vpa: {update-mode: InPlaceOrRecreate, cpu: 200m, memory: 1500Mi, noise: 0}
  - name: idle
    pod: {containers: [{name: app, requests: {cpu: 500m, memory: 1Gi}, limits: {memory: 2Gi}}]}
    replicas: 2
    vpa: {update-mode: InPlaceOrRecreate, cpu: 100m, memory: 256Mi, noise: 0}
  - name: plain
    pod: {containers: [{name: app, requests: {cpu: 500m, memory: 1Gi}}]}
    replicas: 1
"#;

#[test]
fn the_report_measures_each_vpa_workloads_pods_from_what_they_did() {
    let sc = scenario(METERED);
    // The node level alone: the VPA objects get recommendations, nothing acts on them.
    let run = run_policy(&sc, PolicyKind::HeatscalerNodeLevel).unwrap();
    let counts = run.pod_level.clone().unwrap();
    assert_eq!((counts.resizes_requested, counts.recreations), (0, 0), "{counts:?}");
    let names: Vec<&str> = run.pod_workloads.iter().map(|r| r.workload.as_str()).collect();
    assert_eq!(names, ["hog", "idle"], "only workloads with a VPA object are measured");
    let (hog, idle) = (&run.pod_workloads[0], &run.pod_workloads[1]);

    // A container over its limit is an OOM kill, counted for its workload:
    // serving from 30 s after the start, killed at each tick after, back 30 s later.
    assert_eq!(hog.totals.ooms, u64::from(counts.oom_kills), "{hog:?}");
    assert_eq!(hog.totals.ooms, 30, "killed at every tick from 1m to the end at 30m: {hog:?}");
    assert_eq!(hog.totals.measured, 0.0, "never measured: killed instead");
    assert!((hog.unavailable_share - 0.5).abs() < 0.02, "down half of every minute: {hog:?}");
    assert!((hog.totals.pod_days - 30.0 * 60.0 / 86_400.0).abs() < 1e-9, "alive all 30 minutes: {hog:?}");

    // A quarter of the memory it requests: 300 % over-provisioned, never killed.
    assert_eq!(idle.totals.ooms, 0);
    assert!((idle.memory_over_provisioning - 3.0).abs() < 1e-9, "{idle:?}");
    assert!((idle.cpu_over_provisioning - 4.0).abs() < 1e-9, "{idle:?}");
    assert!((idle.totals.pod_days - 2.0 * hog.totals.pod_days).abs() < 1e-9, "two replicas: {idle:?}");
    assert_eq!(idle.cpu_under_provisioned_share, 0.0);

    // Pooled: the sums' ratios, not an average of ratios.
    let all = crate::report::pooled(&run.pod_workloads);
    assert_eq!(all.totals.ooms, 30);
    assert!((all.memory_over_provisioning - 3.0).abs() < 1e-9, "the hog has no samples: {all:?}");
}

/// Item 3 of issue 17: the bundled unified scenario (scenarios/pod-shapes.yaml:
/// seven VPA workloads on an autoscaled group) through the one engine, both
/// policies; the pod-level figures are the engine's measurements.
#[test]
fn the_bundled_unified_scenario_reports_pod_level_figures_from_the_engine() {
    let mut sc = scenario(include_str!("../../../scenarios/pod-shapes.yaml"));
    sc.duration = heatscaler_core::policy::Duration::from_secs(86_400);
    let report = crate::compare(&sc, &[PolicyKind::HeatscalerNoWebhook, PolicyKind::CaDefaults]).unwrap();
    let replicas = [3.0, 3.0, 3.0, 3.0, 3.0, 6.0, 3.0];
    for run in &report.runs {
        let counts = run.pod_level.clone().unwrap();
        let rows = &run.pod_workloads;
        let names: Vec<&str> = rows.iter().map(|r| r.workload.as_str()).collect();
        assert_eq!(names, ["step", "sine", "square", "bursty", "diurnal", "crowded", "oversized"], "{}", run.policy);
        for (r, n) in rows.iter().zip(replicas) {
            assert!((r.totals.pod_days - n).abs() < 0.05 * n, "{}: {n} replicas for a day: {r:?}", run.policy);
        }
        let ooms: u64 = rows.iter().map(|r| r.totals.ooms).sum();
        assert_eq!(ooms, u64::from(counts.oom_kills), "{}: every kill is a VPA workload's", run.policy);
        let updates: u64 = rows.iter().map(|r| r.totals.updates).sum();
        assert_eq!(updates, u64::from(counts.resizes_applied + counts.recreations), "{}", run.policy);
        let row = |name: &str| rows.iter().find(|r| r.workload == name).unwrap();
        // 400Mi of a 4Gi limit is never killed; 1200Mi bursts over 1Gi are,
        // before anything raised the limit (VPA's updater waits for the bounds).
        assert_eq!(row("oversized").totals.ooms, 0, "{}", run.policy);
        assert!(row("bursty").totals.ooms > 0, "{}: {:?}", run.policy, row("bursty"));
        // Started at 2Gi for 400Mi (412 % over): both sides shrink it.
        assert!(row("oversized").memory_over_provisioning < 4.0, "{}: {:?}", run.policy, row("oversized"));
    }
    let (ours, peer) = (&report.runs[0], &report.runs[1]);
    let evictions = |r: &crate::report::Run| r.pod_workloads.iter().map(|w| w.totals.evictions).sum::<u64>();
    assert!(evictions(peer) >= u64::from(peer.pod_level.as_ref().unwrap().recreations), "VPA's updater evicts");
    assert!(ours.pod_level.as_ref().unwrap().resizes_applied > 0, "heatscaler resizes in place");
}
