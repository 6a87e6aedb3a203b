//! The recommender's frontier: memory over-provisioning against OOM kills
//! per pod-day as the recommender's knobs move — the target percentile, the
//! safety margin, and how much history a peak stands for (the memory
//! aggregation interval and the histograms' half-life) — and, for
//! heatscaler, how long its updater lets a pod stay off target inside the
//! bounds before resizing it (`update-off-target-after`), which decides how
//! soon a recommendation reaches the pod.
//!
//! Every point is a whole simulator run of the scenario (the same engine,
//! cluster, node level and updater as `heatscaler simulate`), changing only
//! the recommender: heatscaler's (`policy.pod-resize.recommender`, run
//! under the `heatscaler` policy, admission webhook included) or the VPA peer's (run under `ca-defaults`,
//! cluster-autoscaler's and VPA's documented defaults side by side, whose
//! recommender is otherwise VPA's default flags). A point is on its
//! recommender's frontier when no other point of the same recommender is at
//! least as good on both axes and better on one. Runs are deterministic, so
//! the table is too, whatever the number of threads.

use std::fmt::Write as _;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use heatscaler_core::policy::{Duration as PolicyDuration, Fraction, RecommenderSettings, UpdaterSettings};

use crate::autoscaler::PolicyKind;
use crate::engine::run_policy;
use crate::report::{PodWorkload, pooled};
use crate::scenario::Scenario;
use crate::trace::TraceError;

/// Whose recommender a point varies.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Recommender {
    /// heatscaler's, under the `heatscaler` policy: as installed, with its
    /// admission webhook ([`PolicyKind::Heatscaler`]), so a pod can
    /// have its recommendation wherever it fits. Without the webhook a
    /// growth its node cannot hold is never moved, and the pod stays below
    /// its recommendation: less over-provisioning that no knob of the
    /// recommender earned (docs/recommender.md, pod-shapes).
    Heatscaler,
    /// The VPA peer's (heatscaler's re-implementation of VPA's algorithm,
    /// equal to v1.8.1's on GenTD26, docs/peers.md), under `ca-defaults`.
    VpaPeer,
}

impl Recommender {
    pub fn name(self) -> &'static str {
        match self {
            Recommender::Heatscaler => "heatscaler",
            Recommender::VpaPeer => "vpa-peer",
        }
    }

    fn policy(self) -> PolicyKind {
        match self {
            Recommender::Heatscaler => PolicyKind::Heatscaler,
            Recommender::VpaPeer => PolicyKind::CaDefaults,
        }
    }
}

/// The knobs a frontier point sets; everything else stays the base settings'.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Knobs {
    /// `target-memory-percentile` (and the CPU one: the same knob in VPA's terms).
    pub percentile: f64,
    /// `safety-margin-fraction`.
    pub margin: f64,
    /// `memory-aggregation-interval`: a container's peak is kept per interval.
    pub interval: Duration,
    /// `memory-histogram-half-life`.
    pub half_life: Duration,
    /// heatscaler's `pod-resize.updater.update-off-target-after`; `None` for
    /// the VPA peer, whose updater waits VPA's fixed 12 h
    /// (`--in-recommendation-bounds-eviction-lifetime-threshold`).
    pub off_target_after: Option<Duration>,
}

impl Knobs {
    /// The knobs of `s` (and of heatscaler's updater `u`).
    pub fn of(s: &RecommenderSettings, u: Option<&UpdaterSettings>) -> Self {
        Self {
            percentile: s.target_memory_percentile.0,
            margin: s.safety_margin_fraction,
            interval: s.memory_aggregation_interval.get(),
            half_life: s.memory_histogram_half_life.get(),
            off_target_after: u.map(|u| u.update_off_target_after.get()),
        }
    }

    /// `base` with these knobs. The aggregation window (interval × count)
    /// keeps its length, so a shorter interval does not forget sooner.
    pub fn apply(&self, base: &RecommenderSettings) -> RecommenderSettings {
        let window = base.memory_aggregation_interval.get() * base.memory_aggregation_interval_count;
        let count = (window.as_secs_f64() / self.interval.as_secs_f64()).round().max(1.0) as u32;
        RecommenderSettings {
            target_cpu_percentile: Fraction(self.percentile),
            target_memory_percentile: Fraction(self.percentile),
            safety_margin_fraction: self.margin,
            memory_aggregation_interval: PolicyDuration(self.interval),
            memory_aggregation_interval_count: count,
            memory_histogram_half_life: PolicyDuration(self.half_life),
            ..base.clone()
        }
    }

    /// `p0.90 m0.15 1day/1day off 12h`: percentile, margin, interval /
    /// half-life, and heatscaler's off-target wait.
    pub fn label(&self) -> String {
        let off = self.off_target_after.map_or("-".to_string(), |d| PolicyDuration(d).to_string());
        format!(
            "p{:.2} m{:.2} {}/{} off {}",
            self.percentile,
            self.margin,
            PolicyDuration(self.interval),
            PolicyDuration(self.half_life),
            off
        )
    }
}

/// The knobs swept: every combination of the three lists.
#[derive(Clone, Debug)]
pub struct Grid {
    pub percentiles: Vec<f64>,
    pub margins: Vec<f64>,
    /// (memory aggregation interval, memory half-life) pairs.
    pub histories: Vec<(Duration, Duration)>,
    /// heatscaler's `update-off-target-after` values (not the VPA peer's).
    pub off_target_after: Vec<Duration>,
}

impl Grid {
    /// The grid docs/recommender.md reports: VPA's defaults (p0.90, 15 %,
    /// 24 h / 24 h, 12 h) and steps either side of each. (A first, wider
    /// sweep also had p0.50 and p0.99 and 4 h / 24 h and 1 h / 24 h
    /// histories: p0.50 multiplies OOM kills, p0.99 equals p0.95, and the
    /// other histories fall between these two; left out to halve the cost.)
    pub fn standard() -> Self {
        let h = |hours: u64| Duration::from_secs(hours * 3600);
        Self {
            percentiles: vec![0.8, 0.9, 0.95],
            margins: vec![0.0, 0.05, 0.1, 0.15, 0.25],
            histories: vec![(h(24), h(24)), (h(1), h(4))],
            off_target_after: vec![h(12), h(2), h(1), Duration::from_secs(30 * 60)],
        }
    }

    /// Every combination, for `r` (the VPA peer has no off-target knob).
    pub fn knobs(&self, r: Recommender) -> Vec<Knobs> {
        let offs: Vec<Option<Duration>> = match r {
            Recommender::Heatscaler => self.off_target_after.iter().copied().map(Some).collect(),
            Recommender::VpaPeer => vec![None],
        };
        let mut out = Vec::new();
        for &off_target_after in &offs {
            for &(interval, half_life) in &self.histories {
                for &percentile in &self.percentiles {
                    for &margin in &self.margins {
                        out.push(Knobs { percentile, margin, interval, half_life, off_target_after });
                    }
                }
            }
        }
        out
    }
}

/// One run of the sweep: a recommender with some knobs, and what the pod level measured.
#[derive(Clone, Debug)]
pub struct Point {
    pub recommender: Recommender,
    pub knobs: Knobs,
    /// Every VPA workload pooled (ratios of the summed totals).
    pub pooled: PodWorkload,
    /// The recommender's default (heatscaler: the scenario's settings; the
    /// VPA peer: VPA's flags).
    pub is_default: bool,
    /// No other point of the same recommender is as good on both axes and better on one.
    pub on_frontier: bool,
}

impl Point {
    pub fn over_provisioning(&self) -> f64 {
        self.pooled.memory_over_provisioning
    }

    pub fn ooms_per_pod_day(&self) -> f64 {
        self.pooled.ooms_per_pod_day
    }

    /// At most `other`'s over-provisioning and OOM kills per pod-day, and less on one.
    pub fn dominates(&self, other: &Point) -> bool {
        let (a, b) = (
            (self.over_provisioning(), self.ooms_per_pod_day()),
            (other.over_provisioning(), other.ooms_per_pod_day()),
        );
        a.0 <= b.0 && a.1 <= b.1 && (a.0 < b.0 || a.1 < b.1)
    }
}

/// Runs the scenario once per recommender and knob setting (the grid, plus
/// each recommender's default), `threads` runs at a time. The points come
/// back in grid order, defaults first, frontiers marked.
pub fn sweep(
    sc: &Scenario,
    grid: &Grid,
    recommenders: &[Recommender],
    threads: usize,
) -> Result<Vec<Point>, TraceError> {
    let heatscaler_default = sc.policy.pod_resize.recommender.clone();
    let vpa_default = sc.vpa_peer_recommender.clone().unwrap_or_else(RecommenderSettings::vpa);
    let mut jobs: Vec<(Recommender, Knobs, bool)> = Vec::new();
    for &r in recommenders {
        let base = match r {
            Recommender::Heatscaler => &heatscaler_default,
            Recommender::VpaPeer => &vpa_default,
        };
        let updater = (r == Recommender::Heatscaler).then_some(&sc.policy.pod_resize.updater);
        let default = Knobs::of(base, updater);
        jobs.push((r, default, true));
        for k in grid.knobs(r) {
            if k != default {
                jobs.push((r, k, false));
            }
        }
    }
    let next = AtomicUsize::new(0);
    let results: Mutex<Vec<Option<Result<PodWorkload, TraceError>>>> =
        Mutex::new((0..jobs.len()).map(|_| None).collect());
    std::thread::scope(|scope| {
        for _ in 0..threads.max(1) {
            scope.spawn(|| {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(&(r, knobs, is_default)) = jobs.get(i) else { break };
                    let mut sc = sc.clone();
                    // A default runs the scenario's settings as they are: its
                    // knobs name it, but need not say all of it (the shipped
                    // CPU percentile is not the memory knob's).
                    match r {
                        _ if is_default => {}
                        Recommender::Heatscaler => {
                            sc.policy.pod_resize.recommender = knobs.apply(&heatscaler_default);
                            if let Some(off) = knobs.off_target_after {
                                sc.policy.pod_resize.updater.update_off_target_after = PolicyDuration(off);
                            }
                        }
                        Recommender::VpaPeer => sc.vpa_peer_recommender = Some(knobs.apply(&vpa_default)),
                    }
                    let out = run_policy(&sc, r.policy()).map(|run| pooled(&run.pod_workloads));
                    results.lock().unwrap_or_else(|p| p.into_inner())[i] = Some(out);
                }
            });
        }
    });
    let results = results.into_inner().unwrap_or_else(|p| p.into_inner());
    let mut points = Vec::with_capacity(jobs.len());
    for ((recommender, knobs, is_default), out) in jobs.into_iter().zip(results) {
        let pooled = out.expect("every job ran")?;
        points.push(Point { recommender, knobs, pooled, is_default, on_frontier: false });
    }
    mark_frontiers(&mut points);
    Ok(points)
}

/// Marks each recommender's non-dominated points.
pub fn mark_frontiers(points: &mut [Point]) {
    let on: Vec<bool> =
        points.iter().map(|p| !points.iter().any(|q| q.recommender == p.recommender && q.dominates(p))).collect();
    for (p, on) in points.iter_mut().zip(on) {
        p.on_frontier = on;
    }
}

/// The table: every point (or only frontier points and defaults), each
/// recommender's sorted by over-provisioning; then whether heatscaler's
/// default dominates the VPA peer's.
pub fn table(points: &[Point], all: bool) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{:<11} {:<34} {:>9} {:>9} {:>9} {:>9} {:>9}  mark",
        "recommender", "knobs", "mem over", "OOM/pd", "evict/pd", "upd/pd", "pod-days"
    );
    let mut order: Vec<&Point> = points.iter().filter(|p| all || p.on_frontier || p.is_default).collect();
    order.sort_by(|a, b| {
        (a.recommender, a.over_provisioning(), a.ooms_per_pod_day())
            .partial_cmp(&(b.recommender, b.over_provisioning(), b.ooms_per_pod_day()))
            .unwrap_or(std::cmp::Ordering::Equal)
    });
    for p in order {
        let mark = match (p.is_default, p.on_frontier) {
            (true, true) => "default, frontier",
            (true, false) => "default",
            (false, true) => "frontier",
            (false, false) => "",
        };
        let _ = writeln!(
            out,
            "{:<11} {:<34} {:>8.1}% {:>9.3} {:>9.3} {:>9.2} {:>9.1}  {}",
            p.recommender.name(),
            p.knobs.label(),
            p.over_provisioning() * 100.0,
            p.ooms_per_pod_day(),
            p.pooled.evictions_per_pod_day,
            p.pooled.updates_per_pod_day,
            p.pooled.totals.pod_days,
            mark
        );
    }
    let default = |r: Recommender| points.iter().find(|p| p.recommender == r && p.is_default);
    if let (Some(h), Some(v)) = (default(Recommender::Heatscaler), default(Recommender::VpaPeer)) {
        let less = 1.0 - h.over_provisioning() / v.over_provisioning();
        let _ = writeln!(
            out,
            "heatscaler's default against the VPA peer's: {:.1}% less memory over-provisioning ({:.1}% against {:.1}%), \
             {:.3} against {:.3} OOM kills per pod-day; {}",
            less * 100.0,
            h.over_provisioning() * 100.0,
            v.over_provisioning() * 100.0,
            h.ooms_per_pod_day(),
            v.ooms_per_pod_day(),
            if h.dominates(v) { "dominates" } else { "does not dominate" }
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn point(r: Recommender, over: f64, ooms: f64) -> Point {
        let knobs = Knobs::of(&RecommenderSettings::vpa(), None);
        let pooled = PodWorkload { memory_over_provisioning: over, ooms_per_pod_day: ooms, ..Default::default() };
        Point { recommender: r, knobs, pooled, is_default: false, on_frontier: false }
    }

    #[test]
    fn the_frontier_is_each_recommenders_undominated_points() {
        let mut points = vec![
            point(Recommender::Heatscaler, 0.5, 1.0),
            point(Recommender::Heatscaler, 0.4, 2.0),
            point(Recommender::Heatscaler, 0.5, 2.0), // worse than both above
            point(Recommender::Heatscaler, 0.4, 2.0), // equal to the second: neither dominates
            point(Recommender::VpaPeer, 0.6, 3.0),    // dominated only by another recommender's points
        ];
        mark_frontiers(&mut points);
        let on: Vec<bool> = points.iter().map(|p| p.on_frontier).collect();
        assert_eq!(on, [true, true, false, true, true]);
        assert!(points[0].dominates(&points[4]) && !points[4].dominates(&points[0]));
        assert!(!points[1].dominates(&points[3]), "equal points do not dominate each other");
    }

    #[test]
    fn knobs_change_only_what_they_name_and_keep_the_aggregation_window() {
        let base = RecommenderSettings::vpa();
        let k = Knobs {
            percentile: 0.8,
            margin: 0.05,
            interval: Duration::from_secs(3600),
            half_life: Duration::from_secs(4 * 3600),
            off_target_after: None,
        };
        let s = k.apply(&base);
        assert_eq!(
            (s.target_memory_percentile.0, s.target_cpu_percentile.0, s.safety_margin_fraction),
            (0.8, 0.8, 0.05)
        );
        assert_eq!(s.memory_aggregation_interval.get(), Duration::from_secs(3600));
        assert_eq!(s.memory_aggregation_interval_count, 8 * 24, "8 days of 1 h intervals");
        assert_eq!(s.memory_histogram_half_life.get(), Duration::from_secs(4 * 3600));
        assert_eq!(s.cpu_histogram_half_life.get(), base.cpu_histogram_half_life.get());
        assert_eq!(Knobs::of(&s, None), k);
        assert_eq!(k.label(), "p0.80 m0.05 1h/4h off -");
    }

    /// The shipped default is the sweep's point `p0.95 m0.00 1h/4h off 1h` on
    /// VPA's flags with one exception, the CPU percentile, which stays VPA's:
    /// the frontier measures memory, and on GenTD26 (no CPU usage) the sweep's
    /// line for the point is what an install runs.
    #[test]
    fn the_shipped_default_is_the_sweeps_chosen_point_on_vpas_flags() {
        let shipped = RecommenderSettings::default();
        let knobs = Knobs::of(&shipped, Some(&UpdaterSettings::default()));
        assert_eq!(knobs.label(), "p0.95 m0.00 1h/4h off 1h");
        let vpa = RecommenderSettings::vpa();
        let point = RecommenderSettings { target_cpu_percentile: vpa.target_cpu_percentile, ..knobs.apply(&vpa) };
        assert_eq!(format!("{point:?}"), format!("{shipped:?}"));
        assert_eq!(shipped.target_cpu_percentile.0, 0.9);
    }

    /// heatscaler's points are heatscaler as installed, admission webhook
    /// included: `simulate --policy heatscaler`'s run, not the variant
    /// without the webhook, whose pods can stay below a recommendation that
    /// does not fit their node (a growth it cannot move), which reads as less
    /// over-provisioning without the recommender having done anything.
    #[test]
    fn heatscalers_default_point_is_the_installed_heatscaler_run() {
        let mut sc = Scenario::parse(include_str!("../../../scenarios/pod-shapes.yaml"), "pod-shapes.yaml")
            .expect("the bundled scenario parses");
        sc.duration = PolicyDuration(Duration::from_secs(3600));
        let only_defaults =
            Grid { percentiles: Vec::new(), margins: Vec::new(), histories: Vec::new(), off_target_after: Vec::new() };
        let points = sweep(&sc, &only_defaults, &[Recommender::Heatscaler], 1).unwrap();
        assert_eq!(points.len(), 1, "the default point alone");
        let figures = |w: &PodWorkload| {
            (w.memory_over_provisioning, w.ooms_per_pod_day, w.updates_per_pod_day, w.evictions_per_pod_day)
        };
        let run = |kind: PolicyKind| pooled(&run_policy(&sc, kind).unwrap().pod_workloads);
        let (installed, without) = (run(PolicyKind::Heatscaler), run(PolicyKind::HeatscalerNoWebhook));
        assert_ne!(figures(&installed), figures(&without), "the scenario tells the two apart");
        assert_eq!(figures(&points[0].pooled), figures(&installed));
    }

    #[test]
    fn a_sweep_is_deterministic_and_marks_both_defaults() {
        let sc = Scenario::parse(include_str!("../../../scenarios/pod-shapes.yaml"), "pod-shapes.yaml")
            .expect("the bundled scenario parses");
        let mut sc = sc;
        sc.duration = PolicyDuration(Duration::from_secs(3600));
        let grid = Grid {
            percentiles: vec![0.9],
            margins: vec![0.0, 0.15],
            histories: vec![(Duration::from_secs(24 * 3600), Duration::from_secs(24 * 3600))],
            off_target_after: vec![Duration::from_secs(3600)],
        };
        let both = [Recommender::Heatscaler, Recommender::VpaPeer];
        let one = sweep(&sc, &grid, &both, 1).unwrap();
        let two = sweep(&sc, &grid, &both, 2).unwrap();
        assert_eq!(table(&one, true), table(&two, true), "the thread count changes nothing");
        assert_eq!(one.iter().filter(|p| p.is_default).count(), 2);
        assert!(one.iter().all(|p| p.pooled.totals.pod_days > 0.0), "every run measured the VPA workloads");
        assert!(table(&one, false).contains("heatscaler's default against the VPA peer's"));
    }
}
