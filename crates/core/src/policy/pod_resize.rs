//! The pod level's policy: the recommender's constants and the updater's
//! pacing (`pod-resize.recommender`, `pod-resize.updater`), which the
//! simulator's pod-level runs take as they are.

use serde::{Deserialize, Serialize};

use super::{Duration, Fraction, Quantity};

/// Constants of the decaying-histogram recommender (see docs/recommender.md
/// for what each does). [`RecommenderSettings::vpa`] are VPA v1.8.1's
/// recommender flags; `Default` is heatscaler's shipped default, chosen on
/// the recommender's frontier (docs/decisions.md).
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields, default)]
pub struct RecommenderSettings {
    pub cpu_histogram_half_life: Duration,
    pub memory_histogram_half_life: Duration,
    pub memory_aggregation_interval: Duration,
    pub memory_aggregation_interval_count: u32,
    pub target_cpu_percentile: Fraction,
    pub target_memory_percentile: Fraction,
    pub lower_bound_percentile: Fraction,
    pub upper_bound_percentile: Fraction,
    pub safety_margin_fraction: f64,
    pub pod_min_cpu: Quantity,
    pub pod_min_memory: Quantity,
    pub oom_bump_up_ratio: f64,
    pub oom_min_bump_up: Quantity,
    /// How often the leader saves the histograms to `VerticalPodAutoscalerCheckpoint`
    /// objects (and once more when it stops).
    pub checkpoint_interval: Duration,
}

impl Default for RecommenderSettings {
    /// VPA's recommender with three memory knobs and the margin moved: target
    /// memory percentile 0.95, no safety margin (VPA has one margin for both
    /// resources), memory peaks kept per hour over the same 8-day window
    /// (1 h × 192) and decayed with a 4 h half-life. VPA's defaults, even with
    /// heatscaler's 1 h off-target wait, met issue 17's item 5 only narrowly
    /// on GenTD26 and not at all on `scenarios/pod-shapes.yaml`. This is the
    /// memory part of the rule's pick on the two inputs not held out, and it
    /// also meets the goal on the held-out half (docs/recommender.md,
    /// docs/decisions.md). The CPU percentile stays VPA's 0.90: the frontier
    /// measures memory, no real trace here has CPU usage, and the pick's 0.95
    /// for CPU cost pod-shapes 10.7 % more node-hours and two oscillation
    /// cycles. Checkpoints keep VPA's JSON shape, but they hold hourly peaks
    /// with a 4 h half-life, not VPA's daily peaks (docs/recommender.md,
    /// "Checkpoints").
    fn default() -> Self {
        let vpa = Self::vpa();
        let window = vpa.memory_aggregation_interval.get() * vpa.memory_aggregation_interval_count;
        let interval = std::time::Duration::from_secs(3600);
        Self {
            memory_histogram_half_life: Duration(std::time::Duration::from_secs(4 * 3600)),
            memory_aggregation_interval: Duration(interval),
            memory_aggregation_interval_count: (window.as_secs() / interval.as_secs()) as u32,
            target_memory_percentile: Fraction(0.95),
            safety_margin_fraction: 0.0,
            ..vpa
        }
    }
}

impl RecommenderSettings {
    /// The VPA recommender's own defaults (v1.8.1's flags): what the
    /// simulator's VPA peer runs, and what `tools/vpa-replay` checks the
    /// recommender against.
    pub fn vpa() -> Self {
        Self {
            cpu_histogram_half_life: Duration::from_secs(24 * 3600),
            memory_histogram_half_life: Duration::from_secs(24 * 3600),
            memory_aggregation_interval: Duration::from_secs(24 * 3600),
            memory_aggregation_interval_count: 8,
            target_cpu_percentile: Fraction(0.9),
            target_memory_percentile: Fraction(0.9),
            lower_bound_percentile: Fraction(0.5),
            upper_bound_percentile: Fraction(0.95),
            safety_margin_fraction: 0.15,
            pod_min_cpu: Quantity::parse("25m").expect("valid literal"),
            pod_min_memory: Quantity::parse("250Mi").expect("valid literal"),
            oom_bump_up_ratio: 1.2,
            oom_min_bump_up: Quantity::parse("100Mi").expect("valid literal"),
            checkpoint_interval: Duration::from_secs(600),
        }
    }
}

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields, default)]
pub struct UpdaterSettings {
    /// Off: heatscaler writes recommendations and touches no pod. For
    /// clusters where VPA's updater runs: it acts on every VPA object,
    /// whichever recommender wrote the status.
    pub enabled: bool,
    /// Workloads with fewer replicas are not disrupted by evict-and-recreate.
    pub min_replicas: u32,
    /// Largest share of a workload's replicas being resized or recreated at once.
    pub max_disruption_fraction: Fraction,
    /// Least time between two updates of the same workload.
    pub min_update_interval: Duration,
    /// A request inside [lower, upper] bound is still updated when it has been this
    /// long and differs from the target by more than `min-change-fraction`.
    /// 1 h, not VPA's 12 h (`--in-recommendation-bounds-eviction-lifetime-threshold`):
    /// VPA waits because its update is an eviction; heatscaler's is an in-place
    /// resize (a recreate only where the kubelet cannot), and waiting 12 h kept
    /// new pods at their template's requests for most of a day
    /// (docs/decisions.md).
    pub update_off_target_after: Duration,
    pub min_change_fraction: Fraction,
    /// A resize `Deferred` this long is treated like `Infeasible`.
    pub deferred_timeout: Duration,
}

impl Default for UpdaterSettings {
    fn default() -> Self {
        Self {
            enabled: true,
            min_replicas: 2,
            max_disruption_fraction: Fraction(0.5),
            min_update_interval: Duration::from_secs(10 * 60),
            update_off_target_after: Duration::from_secs(3600),
            min_change_fraction: Fraction(0.1),
            deferred_timeout: Duration::from_secs(5 * 60),
        }
    }
}
