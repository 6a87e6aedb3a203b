//! Simulation speed: simulated hours per wall-clock second replaying the
//! bundled 500-minion diurnal week with heatscaler's planner.

use std::time::Instant;

use crate::{PolicyKind, Scenario, run_policy};

use super::{BenchError, Benchmark, Options, Section};

/// `scenarios/diurnal-week-500.yaml`, embedded so a lone binary can run it.
pub const DIURNAL_WEEK_500: &str = include_str!("../../../../scenarios/diurnal-week-500.yaml");

pub struct SimulationSpeed;

impl Benchmark for SimulationSpeed {
    fn name(&self) -> &'static str {
        "simulation"
    }

    fn run(&self, options: &Options) -> Result<Section, BenchError> {
        let fail = |problem: String| BenchError { benchmark: "simulation".into(), problem };
        let mut sc = Scenario::parse(DIURNAL_WEEK_500, "diurnal-week-500.yaml").map_err(|e| fail(e.to_string()))?;
        sc.duration = heatscaler_core::policy::Duration(options.simulated.min(sc.duration.get()));
        let hours = sc.duration.get().as_secs_f64() / 3600.0;
        let mut rows = Vec::new();
        for kind in [PolicyKind::Heatscaler, PolicyKind::CaDefaults] {
            let started = Instant::now();
            let run = run_policy(&sc, kind).map_err(|e| fail(e.to_string()))?;
            let wall = started.elapsed().as_secs_f64();
            let peak = run.series.iter().map(|s| s.billed).max().unwrap_or(0);
            let pods = run.series.iter().map(|s| s.running_pods + s.pending_pods).max().unwrap_or(0);
            rows.push(vec![
                kind.name().into(),
                format!("{hours:.0} h"),
                format!("{wall:.1} s"),
                format!("{:.2}", hours / wall),
                format!("{:.1} min", wall / 60.0 * 168.0 / hours),
                format!("{peak} minions, {pods} pods"),
                run.node_level.planner_passes.to_string(),
            ]);
        }
        Ok(Section {
            title: "simulation speed: scenarios/diurnal-week-500.yaml".into(),
            columns: ["policy", "simulated", "wall", "simulated h / s", "wall per simulated week", "peak", "passes"]
                .map(String::from)
                .to_vec(),
            rows,
            notes: Vec::new(),
        })
    }
}
