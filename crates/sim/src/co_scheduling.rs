//! The placement advisor's measurement: one heatscaler run of a call-graph
//! scenario (`call_graph`) per advisor mode and seed, side by side
//! (`simulate --advisor-modes`; docs/co-scheduling.md).

use std::fmt::Write as _;

use heatscaler_core::policy::AdvisorMode;

use crate::autoscaler::PolicyKind;
use crate::scenario::Scenario;
use crate::trace::TraceError;

use crate::report::CallGraphStats;

/// One run's figures.
#[derive(Clone, Debug)]
pub struct SweepRow {
    pub mode: AdvisorMode,
    pub seed: u64,
    pub node_hours: f64,
    /// Evictions through the eviction API (drains, recreations).
    pub evictions: u32,
    pub graph: CallGraphStats,
}

pub fn mode_name(mode: AdvisorMode) -> &'static str {
    match mode {
        AdvisorMode::Off => "off",
        AdvisorMode::Recommend => "recommend",
        AdvisorMode::Apply => "apply",
    }
}

/// Runs `sc` once per mode and seed, `threads` at a time.
pub fn sweep(sc: &Scenario, modes: &[AdvisorMode], seeds: &[u64], threads: usize) -> Result<Vec<SweepRow>, TraceError> {
    let jobs: Vec<(AdvisorMode, u64)> = modes.iter().flat_map(|&m| seeds.iter().map(move |&s| (m, s))).collect();
    let mut rows = Vec::with_capacity(jobs.len());
    for chunk in jobs.chunks(threads.max(1)) {
        let done: Vec<Result<SweepRow, TraceError>> = std::thread::scope(|scope| {
            let handles: Vec<_> = chunk
                .iter()
                .map(|&(mode, seed)| {
                    scope.spawn(move || {
                        let mut sc = sc.clone();
                        sc.seed = seed;
                        sc.policy.placement_advisor.mode = mode;
                        let run = crate::engine::run_policy(&sc, PolicyKind::HeatscalerNoWebhook)?;
                        Ok(SweepRow {
                            mode,
                            seed,
                            node_hours: run.node_level.node_hours,
                            evictions: run.node_level.evictions,
                            graph: run.call_graph.unwrap_or_default(),
                        })
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap_or_else(|p| std::panic::resume_unwind(p))).collect()
        });
        for r in done {
            rows.push(r?);
        }
    }
    Ok(rows)
}

fn mean(rows: &[&SweepRow], f: impl Fn(&SweepRow) -> f64) -> f64 {
    rows.iter().map(|r| f(r)).sum::<f64>() / rows.len().max(1) as f64
}

/// Every run, then per mode the mean over seeds and its change against `off`.
pub fn table(rows: &[SweepRow]) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{:<10} {:>5} {:>8} {:>9} {:>9} {:>10} {:>9} {:>10} {:>9} {:>8} {:>6}/{:<5} {:>5}",
        "mode",
        "seed",
        "p99 ms",
        "late p99",
        "p50 ms",
        "cross M",
        "cross %",
        "late x %",
        "node-h",
        "evict",
        "adv",
        "wdr",
        "osc"
    );
    for r in rows {
        let g = &r.graph;
        let _ = writeln!(
            out,
            "{:<10} {:>5} {:>8.2} {:>9.2} {:>9.2} {:>10.1} {:>9.1} {:>10.1} {:>9.2} {:>8} {:>6}/{:<5} {:>5}   (rollout restarts {})",
            mode_name(r.mode),
            r.seed,
            g.p99_ms,
            g.late_p99_ms,
            g.p50_ms,
            g.cross_node_calls_m,
            g.cross_node_share * 100.0,
            g.late_cross_node_share * 100.0,
            r.node_hours,
            r.evictions,
            g.advised,
            g.withdrawn,
            g.oscillations,
            g.rollout_restarts,
        );
    }
    let modes: Vec<AdvisorMode> = {
        let mut m: Vec<AdvisorMode> = rows.iter().map(|r| r.mode).collect();
        m.dedup();
        m
    };
    let of = |m: AdvisorMode| rows.iter().filter(|r| r.mode == m).collect::<Vec<_>>();
    let off = of(AdvisorMode::Off);
    let _ = writeln!(out, "\nmean over seeds (change against off):");
    for m in modes {
        let rs = of(m);
        let cell = |f: &dyn Fn(&SweepRow) -> f64| {
            let v = mean(&rs, f);
            if off.is_empty() || m == AdvisorMode::Off {
                format!("{v:.2}")
            } else {
                let base = mean(&off, f);
                format!("{v:.2} ({:+.1} %)", if base != 0.0 { (v / base - 1.0) * 100.0 } else { 0.0 })
            }
        };
        let _ = writeln!(
            out,
            "  {:<10} p99 {} ms, late p99 {} ms, cross-node calls {} M (of them cross-zone {} M), late cross-node share {} %, node-hours {}, evictions {}, rollout restarts {}, oscillations {}",
            mode_name(m),
            cell(&|r| r.graph.p99_ms),
            cell(&|r| r.graph.late_p99_ms),
            cell(&|r| r.graph.cross_node_calls_m),
            cell(&|r| r.graph.cross_zone_calls_m),
            cell(&|r| r.graph.late_cross_node_share * 100.0),
            cell(&|r| r.node_hours),
            cell(&|r| f64::from(r.evictions)),
            cell(&|r| f64::from(r.graph.rollout_restarts)),
            cell(&|r| f64::from(r.graph.oscillations)),
        );
        let share = |f: &dyn Fn(&SweepRow) -> f64| format!("{:.1} %", mean(&rs, f) * 100.0);
        let _ = writeln!(
            out,
            "  {:<10}   the tail (requests at or above each window's p99, their critical paths): cross-node hops {}, same-node hops {}, sidecars {}, service time {}, CPU queueing {} (in databases {})",
            "",
            share(&|r| r.graph.tail.cross_node_hops),
            share(&|r| r.graph.tail.same_node_hops),
            share(&|r| r.graph.tail.proxies),
            share(&|r| r.graph.tail.service),
            share(&|r| r.graph.tail.queueing),
            share(&|r| r.graph.tail.in_databases),
        );
        let kinds: Vec<String> =
            rs.first().map(|r| r.graph.p99_by_kind_ms.keys().cloned().collect()).unwrap_or_default();
        for k in kinds {
            let _ = writeln!(
                out,
                "  {:<10}   p99 of {k}: {} ms",
                "",
                cell(&|r| r.graph.p99_by_kind_ms.get(&k).copied().unwrap_or(0.0))
            );
        }
    }
    out
}
