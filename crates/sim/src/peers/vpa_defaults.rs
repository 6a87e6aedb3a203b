//! The baseline: the Kubernetes VPA with its documented defaults,
//! re-implemented here so both policies see the same usage (this is not
//! VPA's code, and is labelled so in the report).
//!
//! - Recommender: VPA's algorithm with its defaults (`crates/core/src/recommender/`
//!   re-implements it; `RecommenderSettings::default()` are VPA's flags).
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
use heatscaler_core::model::{Container, Pod, Timestamp, VerticalScaling};
use heatscaler_core::planner::time::elapsed;
use heatscaler_core::recommender::apply_to_container;

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
        out.push(p.pod().uid.clone());
    }
    out
}

/// What VPA's admission controller gives a new pod.
pub fn admitted(template: &Container, vertical: &VerticalScaling) -> Container {
    let Some(rec) = vertical.recommendation(&template.name) else { return template.clone() };
    let applied = apply_to_container(template, &rec.target, vertical.resource_policy.for_container(&template.name));
    Container { requests: applied.requests, limits: applied.limits, ..template.clone() }
}
