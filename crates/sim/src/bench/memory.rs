//! Peak resident memory of a process holding a cluster's state: the model
//! snapshot plus the planner's indexes (one pass is planned, so the indexes
//! are built). Each size runs in a fresh child process, so one measurement's
//! allocations never inflate the next; the peak is the kernel's `VmHWM` from
//! `/proc/self/status`.
//!
//! The child is the same program started again with [`CHILD_ENV`] set: its
//! `main` calls [`serve_child`] before reading its arguments. Nothing on the
//! command line leads there, and a separate helper program would have to be
//! built and installed next to the binary (`cargo run -- bench` builds only
//! the binary it runs).

use std::process::{Command, ExitCode};

use serde::{Deserialize, Serialize};

use heatscaler_core::planner::{Input, Memory, Policy, plan};

use super::cluster::{self, Shape};
use super::{BenchError, Benchmark, Options, Section, thousands};

pub struct PeakRss;

/// Set to a node count, it makes the process a memory benchmark's child for
/// that cluster size.
pub const CHILD_ENV: &str = "HEATSCALER_BENCH_MEMORY_CHILD";

/// In a child started by the memory benchmark: builds the cluster, plans a
/// pass, prints the [`HoldReport`] and returns the exit code; `None` in any
/// other process. Call it first thing in `main`.
pub fn serve_child() -> Option<ExitCode> {
    let nodes = std::env::var_os(CHILD_ENV)?;
    let Some(nodes) = nodes.to_str().and_then(|n| n.parse().ok()) else {
        eprintln!("{CHILD_ENV}={} is not a node count", nodes.to_string_lossy());
        return Some(ExitCode::FAILURE);
    };
    match serde_json::to_string(&hold(nodes)) {
        Ok(line) => {
            println!("{line}");
            Some(ExitCode::SUCCESS)
        }
        Err(e) => {
            eprintln!("memory benchmark child: {e}");
            Some(ExitCode::FAILURE)
        }
    }
}

/// What a child prints (one JSON line).
#[derive(Debug, Serialize, Deserialize)]
pub struct HoldReport {
    pub nodes: usize,
    pub pods: usize,
    /// Peak resident set, KiB.
    pub peak_kib: u64,
    /// Resident set after the pass, KiB.
    pub rss_kib: u64,
}

/// The child's work: build the cluster, plan a pass, report memory.
pub fn hold(nodes: usize) -> HoldReport {
    let snap = cluster::build(&Shape { nodes, pending: 0.01, light_nodes: false });
    let p = plan(
        &Input { snapshot: &snap, usage: None, memory: &Memory::default(), now: cluster::now(), observations: None },
        &Policy::default(),
    );
    std::hint::black_box(&p);
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|r| r.split_whitespace().next())
            .and_then(|n| n.parse().ok())
            .unwrap_or(0)
    };
    let report = HoldReport { nodes, pods: snap.pods.len(), peak_kib: field("VmHWM:"), rss_kib: field("VmRSS:") };
    drop(snap);
    report
}

impl Benchmark for PeakRss {
    fn name(&self) -> &'static str {
        "memory"
    }

    fn run(&self, options: &Options) -> Result<Section, BenchError> {
        let fail = |problem: String| BenchError { benchmark: "memory".into(), problem };
        let child = |nodes: usize| -> Result<HoldReport, BenchError> {
            let out = Command::new(&options.program)
                .env(CHILD_ENV, nodes.to_string())
                .output()
                .map_err(|e| fail(format!("cannot start {}: {e}", options.program.display())))?;
            if !out.status.success() {
                return Err(fail(format!("child for {nodes} nodes failed: {}", String::from_utf8_lossy(&out.stderr))));
            }
            serde_json::from_slice(&out.stdout).map_err(|e| fail(format!("child output: {e}")))
        };
        let empty = child(0)?;
        let mut rows = Vec::new();
        for &nodes in &options.sizes {
            let r = child(nodes)?;
            rows.push(vec![
                thousands(r.nodes),
                thousands(r.pods),
                format!("{:.0} MiB", r.peak_kib as f64 / 1024.0),
                format!("{:.0} MiB", r.peak_kib.saturating_sub(empty.peak_kib) as f64 / 1024.0),
                format!("{:.0} MiB", r.rss_kib as f64 / 1024.0),
            ]);
        }
        Ok(Section {
            title: "memory: peak RSS of a process holding the snapshot and planning one pass".into(),
            columns: ["nodes", "pods", "peak RSS", "above an empty process", "RSS after the pass"]
                .map(String::from)
                .to_vec(),
            rows,
            notes: vec![format!(
                "an empty process (same binary, no cluster) peaks at {:.0} MiB; the daemon's watch store is \
                 not included (see below)",
                empty.peak_kib as f64 / 1024.0
            )],
        })
    }
}
