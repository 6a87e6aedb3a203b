use std::time::Duration;

use crate::Scenario;
use heatscaler_core::model::ContainerRecommendation;
use heatscaler_core::model::{Container, Node, ResizeState, Resources, WorkloadRef};
use heatscaler_core::planner::action::ContainerResize;
use heatscaler_core::planner::explain::CpuMemory;

use super::Side;
use super::cluster::{Cluster, Verdict};
use super::run::epoch;
use crate::peers::vpa_defaults as baseline;

const MI: i64 = 1 << 20;

fn node(name: &str) -> Node {
    Node {
        name: name.into(),
        labels: Default::default(),
        annotations: Default::default(),
        taints: vec![],
        allocatable: Resources { cpu_milli: 4000, memory: 8192 * MI, pods: 110, ..Default::default() },
        unschedulable: false,
        ready: true,
        provider_id: None,
        created: epoch(),
    }
}

fn container(cpu: i64, memory: i64) -> Container {
    Container {
        name: "app".into(),
        requests: Resources::new(cpu, memory),
        limits: Resources::new(0, 2 * memory),
        allocated: None,
        oom_kills: 0,
        last_oom: None,
    }
}

fn resize(cpu: i64, memory: i64, memory_limit: i64) -> Vec<ContainerResize> {
    vec![ContainerResize {
        container: "app".into(),
        from: CpuMemory::default(),
        requests: CpuMemory { cpu_milli: cpu, memory },
        limits: CpuMemory { cpu_milli: 0, memory: memory_limit },
    }]
}

fn workload() -> WorkloadRef {
    WorkloadRef { kind: "Deployment".into(), namespace: "default".into(), name: "web".into() }
}

#[test]
fn the_kubelet_defers_refuses_or_applies_resizes() {
    let now = epoch();
    let mut c = Cluster::new(vec![node("n1")], Resources::default(), workload());
    c.create(0, container(1000, 512 * MI), now, Duration::ZERO);
    c.create(1, container(2500, 512 * MI), now, Duration::ZERO);
    assert_eq!(c.pods[0].pod.node_name, c.pods[1].pod.node_name, "one node");

    assert_eq!(c.request_resize(0, &resize(2000, 512 * MI, 0), now, 0.0), Verdict::Deferred);
    assert!(matches!(c.pods[0].pod.resize, ResizeState::Deferred { .. }));
    assert_eq!(c.pods[0].pod.requests.cpu_milli, 2000, "the scheduler holds the larger of spec and applied");
    assert_eq!(c.pods[0].applied().cpu_milli, 1000);

    assert_eq!(c.request_resize(0, &resize(5000, 512 * MI, 0), now, 0.0), Verdict::Infeasible);
    // A memory limit below what the container uses now is not actuated.
    assert_eq!(c.request_resize(0, &resize(1000, 256 * MI, 300 * MI), now, 400.0 * MI as f64), Verdict::Error);
    assert_eq!(c.admit(0, now, 200.0 * MI as f64), Verdict::Applied, "retried once usage dropped");
    assert_eq!(c.pods[0].container().limits.memory, 300 * MI);

    // The neighbour shrinks; the deferred growth then fits.
    assert_eq!(c.request_resize(0, &resize(2000, 512 * MI, 0), now, 0.0), Verdict::Deferred);
    assert_eq!(c.request_resize(1, &resize(1500, 512 * MI, 0), now, 0.0), Verdict::Applied);
    assert_eq!(c.admit(0, now, 0.0), Verdict::Applied);
    assert_eq!(c.pods[0].pod.resize, ResizeState::None);
    assert_eq!((c.counts.deferred, c.counts.infeasible, c.counts.errors), (2, 1, 1));
}

fn vertical(target: i64, lower: i64, upper: i64) -> heatscaler_core::model::VerticalScaling {
    let r = |c| Resources::new(c, 512 * MI);
    heatscaler_core::model::VerticalScaling {
        namespace: "default".into(),
        name: "web".into(),
        workload: workload(),
        update_mode: heatscaler_core::model::UpdateMode::Recreate,
        min_replicas: None,
        resource_policy: Default::default(),
        eviction_requirements: vec![],
        replicas: None,
        recommendations: vec![ContainerRecommendation {
            container_name: "app".into(),
            target: r(target),
            lower_bound: r(lower),
            upper_bound: r(upper),
            uncapped_target: r(target),
            capped: vec![],
        }],
    }
}

#[test]
fn the_vpa_updater_baseline_follows_its_defaults() {
    let now = epoch();
    let mut c = Cluster::new(vec![node("n1"), node("n2"), node("n3")], Resources::default(), workload());
    for slot in 0..3 {
        c.create(slot, container(500, 512 * MI), now, Duration::ZERO);
    }
    // Outside the bounds: evicted, keeping 3 − ⌊3 × 0.5⌋ = 2 running.
    let evicted = baseline::evictions(&c.pods, &vertical(1000, 800, 1500), 3, now);
    assert_eq!(evicted.len(), 1);
    assert!(baseline::evictions(&c.pods, &vertical(1000, 800, 1500), 1, now).is_empty(), "below --min-replicas");
    // Within bounds, 40% off: only once the pod has lived 12h.
    assert!(baseline::evictions(&c.pods, &vertical(700, 400, 1500), 3, now).is_empty());
    let later = now + heatscaler_core::model::SignedDuration::from_hours(12);
    assert_eq!(baseline::evictions(&c.pods, &vertical(700, 400, 1500), 3, later).len(), 1);
    // Within bounds and within 10%: never.
    assert!(baseline::evictions(&c.pods, &vertical(520, 400, 1500), 3, later).is_empty());
    // A quick OOM (killed within 10 minutes of starting) is updated at once.
    c.oom_kill(2, now + heatscaler_core::model::SignedDuration::from_mins(5), Duration::ZERO);
    let soon = now + heatscaler_core::model::SignedDuration::from_mins(6);
    assert_eq!(baseline::evictions(&c.pods, &vertical(700, 400, 1500), 3, soon), vec![c.pods[2].pod.uid.clone()]);
    // The admission controller gives the replacement the target, limits in proportion.
    let admitted = baseline::admitted(&container(500, 512 * MI), &vertical(1000, 800, 1500));
    assert_eq!(admitted.requests, Resources::new(1000, 512 * MI));
    assert_eq!(admitted.limits.memory, 1024 * MI);
}

const SCENARIO: &str = r#"
name: t
duration: 1d
pod-level:
  nodes: {count: 3, allocatable: {cpu: "4", memory: 8Gi}}
  workloads:
    - name: step
      replicas: 3
      requests: {cpu: 500m, memory: 512Mi}
      limits: {memory: 1Gi}
      cpu: {step: {before: 200m, after: 1200m, at: 8h}}
      memory: 400Mi
"#;

#[test]
fn a_run_is_reproducible_and_the_policies_act_differently() {
    let sc = Scenario::parse(SCENARIO, "t.yaml").unwrap();
    let spec = sc.pod_level.as_ref().unwrap();
    let a = super::run(spec, sc.duration.get(), 7);
    let b = super::run(spec, sc.duration.get(), 7);
    assert_eq!(serde_json::to_value(&a).unwrap(), serde_json::to_value(&b).unwrap());
    let row = |side: Side| a.rows.iter().find(|r| r.policy == side.label()).unwrap();
    let (ours, vpa) = (row(Side::Heatscaler), row(Side::VpaDefaults));
    assert!(ours.updates_per_pod_day > 0.0 && ours.evictions_per_pod_day == 0.0, "{ours:?}");
    assert!(vpa.evictions_per_pod_day > 0.0, "{vpa:?}");
    assert!(vpa.unavailable_share > ours.unavailable_share, "evictions take pods down");
    assert!(a.to_string().contains("vpa-defaults*"));
}

#[test]
fn scenario_problems_name_the_pod_level_key() {
    let bad = SCENARIO.replace(
        "cpu: {step: {before: 200m, after: 1200m, at: 8h}}",
        "cpu: {square: {low: 1, high: 2, period: 1h, duty: 2}}",
    );
    let err = Scenario::parse(&bad, "t.yaml").unwrap_err().to_string();
    assert!(err.contains("pod-level.workloads[0].cpu.square.duty: 2 is not between 0 and 1"), "{err}");
    let bad = SCENARIO.replace("replicas: 3", "replicas: 3\n      surprise: 1");
    let err = Scenario::parse(&bad, "t.yaml").unwrap_err().to_string();
    assert!(err.contains("pod-level.workloads[0]") && err.contains("surprise"), "{err}");
}
