//! Simulation speed: simulated hours per wall-clock second (and the CPU time
//! behind them) replaying the bundled 500-minion diurnal week and the burst of
//! thousands of pending pods, with heatscaler's planner and with the
//! cluster-autoscaler peer.

use std::time::Instant;

use crate::{PolicyKind, Scenario, run_policy};

use super::{BenchError, Benchmark, Options, Section};

/// `scenarios/diurnal-week-500.yaml`, embedded so a lone binary can run it.
pub const DIURNAL_WEEK_500: &str = include_str!("../../../../scenarios/diurnal-week-500.yaml");
/// `scenarios/burst-5000.yaml`: thousands of pods pending at once.
pub const BURST_5000: &str = include_str!("../../../../scenarios/burst-5000.yaml");

/// CPU time this thread has used (`/proc/thread-self/schedstat`, Linux): the
/// figure comparable between runs on a machine shared with other work, where
/// wall time is only an upper bound. `None` where the kernel does not say.
fn thread_cpu() -> Option<std::time::Duration> {
    let stat = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    let nanos: u64 = stat.split_whitespace().next()?.parse().ok()?;
    Some(std::time::Duration::from_nanos(nanos))
}

pub struct SimulationSpeed;

impl Benchmark for SimulationSpeed {
    fn name(&self) -> &'static str {
        "simulation"
    }

    fn run(&self, options: &Options) -> Result<Section, BenchError> {
        let fail = |problem: String| BenchError { benchmark: "simulation".into(), problem };
        let mut rows = Vec::new();
        for (file, text) in [("diurnal-week-500.yaml", DIURNAL_WEEK_500), ("burst-5000.yaml", BURST_5000)] {
            let mut sc = Scenario::parse(text, file).map_err(|e| fail(e.to_string()))?;
            sc.duration = heatscaler_core::policy::Duration(options.simulated.min(sc.duration.get()));
            let hours = sc.duration.get().as_secs_f64() / 3600.0;
            for kind in [PolicyKind::HeatscalerNoWebhook, PolicyKind::CaDefaults] {
                let cpu_before = thread_cpu();
                let started = Instant::now();
                let run = run_policy(&sc, kind).map_err(|e| fail(e.to_string()))?;
                let wall = started.elapsed().as_secs_f64();
                let cpu = match (cpu_before, thread_cpu()) {
                    (Some(a), Some(b)) => format!("{:.1} s", (b - a).as_secs_f64()),
                    _ => "-".into(),
                };
                let peak = run.series.iter().map(|s| s.billed).max().unwrap_or(0);
                let pods = run.series.iter().map(|s| s.running_pods + s.pending_pods).max().unwrap_or(0);
                let pending = run.series.iter().map(|s| s.pending_pods).max().unwrap_or(0);
                rows.push(vec![
                    file.trim_end_matches(".yaml").into(),
                    kind.name().into(),
                    format!("{hours:.0} h"),
                    format!("{wall:.1} s"),
                    cpu,
                    format!("{:.2}", hours / wall),
                    format!("{:.1} min", wall / 60.0 * 168.0 / hours),
                    format!("{peak} minions, {pods} pods, {pending} pending"),
                    run.node_level.planner_passes.to_string(),
                ]);
            }
        }
        Ok(Section {
            title: "simulation speed: scenarios/diurnal-week-500.yaml and scenarios/burst-5000.yaml".into(),
            columns: [
                "scenario",
                "policy",
                "simulated",
                "wall",
                "CPU",
                "simulated h / s",
                "wall per simulated week",
                "peak",
                "passes",
            ]
            .map(String::from)
            .to_vec(),
            rows,
            notes: vec![
                "CPU: this thread's CPU time (user + system); wall is an upper bound on a shared machine".into(),
            ],
        })
    }
}
