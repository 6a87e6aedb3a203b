//! Planner decision time: one full pass over a synthetic cluster, for a
//! scale-up (pending pods that need new minions) and a scale-down (light
//! nodes unneeded long enough, no pending pods: candidates are simulated and
//! removals start). Median and 95th percentile over repetitions.

use std::time::{Duration, Instant};

use heatscaler_core::planner::{Action, Input, Memory, Policy, plan};

use super::cluster::{self, PODS_PER_NODE, Shape};
use super::{BenchError, Benchmark, Options, Section, median_p95, ms, thousands};

/// Repetitions stop growing past this much measured time per row.
const BUDGET: Duration = Duration::from_secs(3);
const MAX_REPETITIONS: usize = 200;

pub struct PlannerTime;

impl Benchmark for PlannerTime {
    fn name(&self) -> &'static str {
        "planner"
    }

    fn run(&self, options: &Options) -> Result<Section, BenchError> {
        let policy = Policy::default();
        let mut rows = Vec::new();
        for &nodes in &options.sizes {
            for &pending in &options.pending {
                let snap = cluster::build(&Shape { nodes, pending, light_nodes: false });
                let (median, p95, runs, actions) = time(options, &snap, &Memory::default(), &policy);
                let grow: u32 = actions
                    .iter()
                    .filter_map(|a| match a {
                        Action::ScaleUp(s) => Some(s.new_desired - s.expected_desired),
                        _ => None,
                    })
                    .sum();
                rows.push(vec![
                    thousands(nodes),
                    thousands(snap.pods.len()),
                    format!("scale-up, {:.0}% pending", pending * 100.0),
                    ms(median),
                    ms(p95),
                    runs.to_string(),
                    format!("+{grow} minions"),
                ]);
            }
            let snap = cluster::build(&Shape { nodes, pending: 0.0, light_nodes: true });
            let memory = cluster::memory_with_timers_expired(&snap);
            let (median, p95, runs, actions) = time(options, &snap, &memory, &policy);
            let starts = actions.iter().filter(|a| matches!(a, Action::StartRemoval(_))).count();
            rows.push(vec![
                thousands(nodes),
                thousands(snap.pods.len()),
                "scale-down".into(),
                ms(median),
                ms(p95),
                runs.to_string(),
                format!("{starts} removals started"),
            ]);
        }
        Ok(Section {
            title: "planner: one full pass (heatscaler's default policy)".into(),
            columns: ["nodes", "pods", "pass", "median", "p95", "runs", "decided"].map(String::from).to_vec(),
            rows,
            notes: vec![format!(
                "{PODS_PER_NODE} workload pods and 2 DaemonSet pods per node, one PDB per workload; pending pods \
                 come from 20 workloads of 8–12 cores (more than nodes have left); scale-down: one node in ten light, timers expired"
            )],
        })
    }
}

fn time(
    options: &Options,
    snap: &heatscaler_core::model::Snapshot,
    memory: &Memory,
    policy: &Policy,
) -> (Duration, Duration, usize, Vec<Action>) {
    let now = cluster::now();
    let input = Input { snapshot: snap, usage: None, memory, now, observations: None };
    let started = Instant::now();
    let first = plan(&input, policy);
    let once = started.elapsed().max(Duration::from_micros(1));
    let runs = options.repetitions.max((BUDGET.as_secs_f64() / once.as_secs_f64()) as usize).min(MAX_REPETITIONS);
    let mut samples = Vec::with_capacity(runs);
    for _ in 0..runs {
        let started = Instant::now();
        let p = plan(&input, policy);
        samples.push(started.elapsed());
        std::hint::black_box(p);
    }
    let (median, p95) = median_p95(samples);
    (median, p95, runs, first.actions)
}
