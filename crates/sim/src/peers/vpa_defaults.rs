//! The baseline: the Kubernetes VPA with its documented defaults,
//! re-implemented here so both policies see the same usage (this is not
//! VPA's code, and is labelled so in the report).
//!
//! - Recommender: VPA's algorithm with its defaults (`crates/core/src/recommender/`
//!   re-implements it; `RecommenderSettings::vpa()` are VPA's flags).
//! - Updater (`pkg/updater`, default flags), every `--updater-interval` (1m):
//!   a pod is updated when a container's request is outside
//!   `[lowerBound, upperBound]`, or — once the pod has lived
//!   `--in-recommendation-bounds-eviction-lifetime-threshold` (12h) — its
//!   resource diff is at least `--pod-update-threshold` (0.1), or a container
//!   was OOM-killed less than `--evict-after-oom-threshold` (10m) after it
//!   started and the target differs. Pods that grow go first, then larger
//!   diffs. It evicts (update mode `Recreate`), never below `--min-replicas`
//!   (2) configured replicas, and keeps more than `configured −
//!   ⌊configured × --eviction-tolerance (0.5)⌋` replicas running.
//! - Admission controller: a new pod gets the target as requests, limits
//!   scaled in proportion (`RequestsAndLimits`).

use std::time::Duration;

use heatscaler_core::model::ResourceKind;
use heatscaler_core::model::{Pod, Timestamp, VerticalScaling};
use heatscaler_core::planner::time::elapsed;

/// What VPA's updater reads of a pod: the object, and what the kubelet
/// reports of its one container (serving or not, how long it had run when
/// it was last OOM-killed). Whatever simulates the kubelet provides it.
pub trait UpdaterView {
    fn pod(&self) -> &Pod;
    fn up(&self, now: Timestamp) -> bool;
    fn last_oom_after(&self) -> Option<Duration>;
}

/// VPA updater flags, at their defaults.
pub const MIN_REPLICAS: u32 = 2;
pub const EVICTION_TOLERANCE: f64 = 0.5;
pub const LIFETIME_THRESHOLD: Duration = Duration::from_secs(12 * 3600);
pub const POD_UPDATE_THRESHOLD: f64 = 0.1;
pub const EVICT_AFTER_OOM: Duration = Duration::from_secs(10 * 60);

/// Uids of the pods VPA's updater evicts in one loop.
pub fn evictions<P: UpdaterView>(
    pods: &[P],
    vertical: &VerticalScaling,
    configured: u32,
    now: Timestamp,
) -> Vec<String> {
    // The object's `minReplicas` overrides the flag, as in VPA's updater.
    if vertical.recommendations.is_empty() || configured < vertical.min_replicas.unwrap_or(MIN_REPLICAS) {
        return Vec::new();
    }
    let mut candidates: Vec<(bool, f64, &P)> = Vec::new();
    for p in pods.iter().filter(|p| p.up(now)) {
        let c = &p.pod().containers[0];
        let Some(rec) = vertical.recommendation(&c.name) else { continue };
        let mut outside = false;
        let mut scale_up = false;
        let mut diff = 0.0;
        for kind in ResourceKind::ALL {
            let target = kind.get(&rec.target);
            if target == 0 {
                continue;
            }
            let request = kind.get(&c.requests);
            scale_up |= target > request;
            let (lower, upper) = (kind.get(&rec.lower_bound), kind.get(&rec.upper_bound));
            outside |= request == 0 || (lower > 0 && request < lower) || (upper > 0 && request > upper);
            // Per resource over all containers; one container here.
            diff += (request - target).abs() as f64 / request.max(1) as f64;
        }
        let quick_oom = p.last_oom_after().is_some_and(|ran| ran < EVICT_AFTER_OOM);
        if !outside && !quick_oom && (elapsed(now, p.pod().created) < LIFETIME_THRESHOLD || diff < POD_UPDATE_THRESHOLD)
        {
            continue;
        }
        if quick_oom && diff == 0.0 {
            continue;
        }
        candidates.push((scale_up, diff, p));
    }
    candidates
        .sort_by(|a, b| b.0.cmp(&a.0).then(b.1.total_cmp(&a.1)).then_with(|| a.2.pod().name.cmp(&b.2.pod().name)));

    let running = pods.iter().filter(|p| p.up(now)).count() as i64;
    let configured = i64::from(configured);
    let tolerance = (configured as f64 * EVICTION_TOLERANCE) as i64;
    let mut out = Vec::new();
    for (evicted, (_, _, p)) in (0i64..).zip(candidates) {
        let disruptable =
            running - evicted > configured - tolerance || (configured == running && tolerance == 0 && evicted == 0);
        if !disruptable {
            break;
        }
        out.push(p.pod().uid.to_string());
    }
    out
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use heatscaler_core::model::test_support::{self, epoch};
    use heatscaler_core::model::{
        Container, ContainerRecommendation, Pod, PodPhase, Resources, SignedDuration, Timestamp, UpdateMode,
        VerticalScaling, WorkloadRef,
    };

    use super::{UpdaterView, evictions};

    const MI: i64 = 1 << 20;

    struct Viewed {
        pod: Pod,
        last_oom_after: Option<Duration>,
    }

    impl UpdaterView for Viewed {
        fn pod(&self) -> &Pod {
            &self.pod
        }
        fn up(&self, _now: Timestamp) -> bool {
            true
        }
        fn last_oom_after(&self) -> Option<Duration> {
            self.last_oom_after
        }
    }

    fn pod(i: usize) -> Viewed {
        let container = Container {
            name: "app".into(),
            requests: Resources::new(500, 512 * MI),
            limits: Resources::new(0, 1024 * MI),
            allocated: None,
            oom_kills: 0,
            last_oom: None,
        };
        let pod = Pod {
            uid: format!("uid-{i}").into(),
            node_name: Some(format!("n{i}")),
            phase: PodPhase::Running,
            requests: Resources::new(500, 512 * MI),
            containers: vec![container],
            ..test_support::pod(&format!("web-{i}"))
        };
        Viewed { pod, last_oom_after: None }
    }

    fn vertical(target: i64, lower: i64, upper: i64) -> VerticalScaling {
        let r = |c| Resources::new(c, 512 * MI);
        VerticalScaling {
            namespace: "default".into(),
            name: "web".into(),
            workload: WorkloadRef { kind: "Deployment".into(), namespace: "default".into(), name: "web".into() },
            update_mode: UpdateMode::Recreate,
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

    /// Moved from the removed `podlevel` benchmark: the updater's rules on three pods.
    #[test]
    fn the_vpa_updater_peer_follows_its_defaults() {
        let now = epoch();
        let mut pods: Vec<Viewed> = (0..3).map(pod).collect();
        // Outside the bounds: evicted, keeping 3 − ⌊3 × 0.5⌋ = 2 running.
        assert_eq!(evictions(&pods, &vertical(1000, 800, 1500), 3, now).len(), 1);
        assert!(evictions(&pods, &vertical(1000, 800, 1500), 1, now).is_empty(), "below --min-replicas");
        // Within bounds, 40% off: only once the pod has lived 12h.
        assert!(evictions(&pods, &vertical(700, 400, 1500), 3, now).is_empty());
        let later = now + SignedDuration::from_hours(12);
        assert_eq!(evictions(&pods, &vertical(700, 400, 1500), 3, later).len(), 1);
        // Within bounds and within 10%: never.
        assert!(evictions(&pods, &vertical(520, 400, 1500), 3, later).is_empty());
        // A quick OOM (killed within 10 minutes of starting) is updated at once.
        pods[2].last_oom_after = Some(Duration::from_secs(5 * 60));
        let soon = now + SignedDuration::from_mins(6);
        assert_eq!(evictions(&pods, &vertical(700, 400, 1500), 3, soon), vec!["uid-2".to_string()]);
    }
}
