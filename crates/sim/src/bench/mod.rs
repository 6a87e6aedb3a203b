//! `heatscaler bench`: measurements on the machine it runs on, as tables.
//!
//! Each measurement is a [`Benchmark`]; [`all`] lists them in order. A new one
//! (e.g. time from a pod turning unschedulable to the Heat request, through
//! HTTP, once the daemon exists) implements the trait and joins the list.
//! Measurements are never asserted against goals here: they are reported,
//! with the goal beside them, for people to judge (docs/benchmarks.md).

pub mod cluster;
mod memory;
mod planner;
mod simulation;

use std::fmt;
use std::time::Duration;

use serde::Serialize;

pub use memory::{CHILD_ENV, HoldReport, hold, serve_child};

/// What a run measures and how hard.
#[derive(Clone, Debug)]
pub struct Options {
    /// Cluster sizes in nodes (30 workload pods each).
    pub sizes: Vec<usize>,
    /// Shares of pods pending in the scale-up measurements.
    pub pending: Vec<f64>,
    /// Least repetitions per planner measurement (more for fast ones).
    pub repetitions: usize,
    /// Simulated time of the simulation-speed run.
    pub simulated: Duration,
    /// The program to start for per-size memory measurements: one whose
    /// `main` calls [`serve_child`] first (the `heatscaler` binary does).
    pub program: std::path::PathBuf,
}

/// One table of results.
#[derive(Clone, Debug, Serialize)]
pub struct Section {
    pub title: String,
    pub columns: Vec<String>,
    pub rows: Vec<Vec<String>>,
    pub notes: Vec<String>,
}

#[derive(Debug, thiserror::Error)]
#[error("{benchmark}: {problem}")]
pub struct BenchError {
    pub benchmark: String,
    pub problem: String,
}

pub trait Benchmark {
    /// Short name for `--only`.
    fn name(&self) -> &'static str;
    fn run(&self, options: &Options) -> Result<Section, BenchError>;
}

/// Every benchmark, in the order they are printed.
pub fn all() -> Vec<Box<dyn Benchmark>> {
    vec![
        Box::new(planner::PlannerTime),
        Box::new(memory::PeakRss),
        Box::new(simulation::SimulationSpeed),
        Box::new(HarnessMeasured),
    ]
}

/// Figures that need a Kubernetes API server and OpenStack: the binary does
/// not link `kubesim` (a dev-dependency), so the test harness measures them.
/// Named here, with their commands, so the table says where they come from.
struct HarnessMeasured;

impl Benchmark for HarnessMeasured {
    fn name(&self) -> &'static str {
        "harness"
    }
    fn run(&self, _: &Options) -> Result<Section, BenchError> {
        Ok(Section {
            title: "measured by the test harness (kubesim, real Keystone + Heat), figures in docs/benchmarks.md".into(),
            columns: vec!["measurement".into(), "command".into()],
            rows: vec![
                vec![
                    "daemon RSS watching 5,000 nodes / 150,000 pods".into(),
                    "cargo test --release --test scale daemon_scale -- --ignored --nocapture".into(),
                ],
                vec![
                    "pod unschedulable → Heat update through HTTP, 1,000 nodes".into(),
                    "cargo test --release --test openstack e2e::reaction_time_at_1000_nodes -- --ignored --nocapture"
                        .into(),
                ],
            ],
            notes: Vec::new(),
        })
    }
}

/// The machine the figures come from.
#[derive(Clone, Debug, Serialize)]
pub struct Machine {
    pub cpus: usize,
    pub cpu_model: String,
    pub memory_gib: f64,
    pub release_build: bool,
}

impl Machine {
    pub fn this() -> Self {
        let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
        let cpu_model = cpuinfo
            .lines()
            .find_map(|l| l.strip_prefix("model name").and_then(|r| r.split_once(':')).map(|(_, m)| m.trim()))
            .unwrap_or("unknown")
            .to_string();
        let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
        let kib: f64 = meminfo
            .lines()
            .find_map(|l| l.strip_prefix("MemTotal:"))
            .and_then(|r| r.split_whitespace().next())
            .and_then(|n| n.parse().ok())
            .unwrap_or(0.0);
        Self {
            cpus: std::thread::available_parallelism().map_or(1, |n| n.get()),
            cpu_model,
            memory_gib: kib / (1024.0 * 1024.0),
            release_build: !cfg!(debug_assertions),
        }
    }
}

impl fmt::Display for Machine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} CPUs ({}), {:.1} GiB RAM, {} build",
            self.cpus,
            self.cpu_model,
            self.memory_gib,
            if self.release_build { "release" } else { "debug (figures not representative)" }
        )
    }
}

impl fmt::Display for Section {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "{}", self.title)?;
        let widths: Vec<usize> = (0..self.columns.len())
            .map(|c| {
                self.rows
                    .iter()
                    .map(|r| r.get(c).map_or(0, |s| s.chars().count()))
                    .chain([self.columns[c].chars().count()])
                    .max()
                    .unwrap_or(0)
            })
            .collect();
        let line = |f: &mut fmt::Formatter<'_>, cells: &[String]| -> fmt::Result {
            write!(f, " ")?;
            for (c, w) in widths.iter().enumerate() {
                let cell = cells.get(c).map_or("", String::as_str);
                if c == 0 { write!(f, " {cell:<w$}")? } else { write!(f, "  {cell:>w$}")? }
            }
            writeln!(f)
        };
        line(f, &self.columns)?;
        for r in &self.rows {
            line(f, r)?;
        }
        for n in &self.notes {
            writeln!(f, "  {n}")?;
        }
        Ok(())
    }
}

/// Median and 95th percentile (nearest rank) of durations.
pub(crate) fn median_p95(mut samples: Vec<Duration>) -> (Duration, Duration) {
    samples.sort();
    let at = |p: f64| samples[((p * samples.len() as f64).ceil() as usize).clamp(1, samples.len()) - 1];
    (at(0.5), at(0.95))
}

pub(crate) fn ms(d: Duration) -> String {
    let ms = d.as_secs_f64() * 1000.0;
    if ms < 10.0 { format!("{ms:.2} ms") } else { format!("{ms:.0} ms") }
}

/// `12,345`.
pub(crate) fn thousands(n: usize) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}
