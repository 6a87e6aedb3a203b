//! Fuzzing of every trace importer (`heatscaler_core::fuzz`): the corpus is
//! `tests/fuzz-corpus/trace-*`; each mutation is written to a file and read
//! as `simulate --trace` would, with and without `--skip-bad-rows`.

use std::path::{Path, PathBuf};
use std::time::Duration as StdDuration;

use heatscaler_core::fuzz;

use super::alibaba_gentd26::{self, Containers};
use super::{GpuSharing, TraceKind, alibaba_openb, check};

fn corpus_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fuzz-corpus")
}

/// Runs `read` on each input written to a file named `name`.
fn target(target: &str, name: &str, read: impl Fn(&Path)) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(name);
    fuzz::run(target, &fuzz::corpus(&corpus_root(), target), |input| {
        std::fs::write(&path, input).unwrap();
        read(&path);
    });
}

#[test]
fn fuzz_own_csv() {
    target("trace-csv", "t.csv", |p| {
        check(TraceKind::Csv, p, StdDuration::ZERO, false, GpuSharing::default());
        check(TraceKind::Csv, p, StdDuration::ZERO, true, GpuSharing::default());
    });
}

#[test]
fn fuzz_openb_pod_list() {
    target("trace-openb-pods", "pods.csv", |p| {
        check(TraceKind::AlibabaOpenb, p, StdDuration::ZERO, false, GpuSharing::default());
        check(TraceKind::AlibabaOpenb, p, StdDuration::ZERO, true, GpuSharing::default());
    });
}

#[test]
fn fuzz_openb_node_list() {
    target("trace-openb-nodes", "nodes.csv", |p| {
        let _ = alibaba_openb::node_groups(p, 0.02, GpuSharing::default());
    });
}

#[test]
fn fuzz_gentd26() {
    target("trace-gentd26", "util.csv", |p| {
        if let Ok(read) = alibaba_gentd26::read(p, Containers::All, true) {
            crate::scenario::gentd26_workloads(&read.series);
        }
        let _ = alibaba_gentd26::read(p, Containers::Odd, false);
    });
}
