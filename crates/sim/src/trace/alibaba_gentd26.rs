//! GenTD26 (`cluster-trace-v2026-GenAI/pod_memory_util_anon.csv`): memory
//! utilisation of the containers of a production Stable Diffusion serving
//! system, `value,timestamp_anon,container_ip`, sampled about every 57 s
//! for about 23 hours. Replayed at the pod level on autoscaled groups: each
//! container's series becomes the memory usage of one workload with a VPA
//! object (`workloads`), run by the engine like any scenario's — through the
//! real recommender and planner, or the peers (`scenario::gentd26_workloads`
//! makes them: the scenario module imports this one, not the other way).
//!
//! - **A fraction becomes bytes** × [`CONTAINER_MEMORY`]: the trace gives
//!   utilisation of "the container's memory" without the amount, so every
//!   container is taken to have that much, requested and as its limit (the
//!   starting point of both policies). Over-provisioning and under-provisioned
//!   time are ratios, so they do not depend on the amount as long as it stays
//!   far above the recommender's minimum (250 MiB).
//! - **Series → workloads**: one workload per container (one replica; the
//!   trace does not say which containers serve the same model), named by the
//!   first 12 hex digits of its id, with one replica from its first sample
//!   to a minute after its last on the trace's clock (the containers' series
//!   share it, so the node level sees the containers that ran at once). Its
//!   VPA object (`InPlaceOrRecreate`) sets `minReplicas: 1` (for both
//!   policies): VPA's updater otherwise never touches a one-replica workload
//!   (`--min-replicas 2`), and the comparison would be with doing nothing.
//! - **Memory only**: the trace has no CPU, so the VPA objects control memory
//!   only (`controlledResources: [memory]`) and CPU usage is flat at half the
//!   request; the CPU columns of the report mean nothing here.
//! - Usage between samples holds the last sample (step), as a scraper sees it.
//! - Series with fewer than [`MIN_SAMPLES`] samples (under an hour) are left
//!   out and counted; values within 0.001 of [0, 1] are clamped (the file
//!   holds values like -1.2e-5).
//! - `--containers even|odd` keeps the containers whose id's last hex digit
//!   is even or odd: two halves, to check that results generalise.
//!
//! The file is read one record at a time (gzip is read as it is); the
//! series are kept in memory (16 bytes a sample): the usage component reads
//! each workload's as simulated time passes.

use std::collections::HashMap;
use std::path::Path;
use std::time::Duration as StdDuration;

use super::{MAX_PROBLEMS, TraceError};

/// The memory of every container (request and limit at the start).
pub const CONTAINER_MEMORY: &str = "16Gi";
/// Series shorter than this are left out.
pub const MIN_SAMPLES: usize = 60;

/// Which containers to keep.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum Containers {
    #[default]
    All,
    /// Ids whose last hex digit is even.
    Even,
    /// Ids whose last hex digit is odd.
    Odd,
}

impl Containers {
    fn keeps(self, id: &str) -> bool {
        let digit = id.chars().last().and_then(|c| c.to_digit(16));
        match self {
            Containers::All => true,
            Containers::Even => digit.is_some_and(|d| d % 2 == 0),
            Containers::Odd => digit.is_some_and(|d| d % 2 == 1),
        }
    }
}

/// One container's memory utilisation over time.
#[derive(Clone, Debug, PartialEq)]
pub struct Series {
    pub container: String,
    /// Seconds from the file's earliest sample (of a kept series) to this
    /// container's first: the trace's clock, shared by its containers.
    pub start: f64,
    /// Seconds since the container's first sample, and the fraction then.
    pub samples: Vec<(f64, f64)>,
}

impl Series {
    pub fn span(&self) -> StdDuration {
        StdDuration::from_secs_f64(self.samples.last().map_or(0.0, |s| s.0))
    }
}

/// What reading the file found.
#[derive(Debug, Default)]
pub struct Read {
    /// Kept series, in order of the containers' first sample.
    pub series: Vec<Series>,
    /// Containers left out for having fewer than [`MIN_SAMPLES`] samples.
    pub too_short: usize,
    /// Containers of the other half (`--containers`).
    pub other_half: usize,
    pub skipped: u64,
    pub skipped_examples: Vec<TraceError>,
}

/// Reads every series of the file. Bad rows are errors (at most
/// [`MAX_PROBLEMS`] reported), or with `skip_bad_rows` counted and left out.
/// Largest `timestamp_anon` accepted, in seconds (about 317 years).
const MAX_TIMESTAMP: f64 = 1e10;

pub fn read(path: &Path, containers: Containers, skip_bad_rows: bool) -> Result<Read, Vec<TraceError>> {
    let mut records =
        super::alibaba_openb::Records::open(path, &["value", "timestamp_anon", "container_ip"]).map_err(|e| vec![e])?;
    let mut out = Read::default();
    let mut problems = Vec::new();
    // Absolute samples per container, in order of first appearance.
    let mut order: Vec<String> = Vec::new();
    let mut raw: HashMap<String, Vec<(f64, f64)>> = HashMap::new();
    loop {
        let row = records.next().and_then(|more| {
            if !more {
                return Ok(None);
            }
            let (id, id_column) = records.field("container_ip");
            if id.is_empty() {
                return Err(records.error(records.line, id_column, "empty container_ip".into()));
            }
            let value = fraction(&records)?;
            let (text, column) = records.field("timestamp_anon");
            // Bounded: a span must fit a `Duration` (a finite 1e30 panicked downstream).
            let at = text.parse::<f64>().ok().filter(|t| (0.0..=MAX_TIMESTAMP).contains(t)).ok_or_else(|| {
                records.error(
                    records.line,
                    column,
                    format!("timestamp_anon: `{text}` is not a number of seconds between 0 and {MAX_TIMESTAMP}"),
                )
            })?;
            Ok(Some((id.to_string(), at, value)))
        });
        match row {
            Ok(None) => break,
            Ok(Some((id, at, value))) => {
                let samples = raw.entry(id.clone()).or_insert_with(|| {
                    order.push(id);
                    Vec::new()
                });
                samples.push((at, value));
            }
            Err(e) if skip_bad_rows && !e.fatal() => {
                out.skipped += 1;
                if out.skipped_examples.len() < MAX_PROBLEMS {
                    out.skipped_examples.push(e);
                }
            }
            Err(e) => {
                let fatal = e.fatal();
                problems.push(e);
                if fatal || problems.len() >= MAX_PROBLEMS {
                    break;
                }
            }
        }
    }
    if !problems.is_empty() {
        return Err(problems);
    }
    for id in order {
        let mut samples = raw.remove(&id).unwrap_or_default();
        if !containers.keeps(&id) {
            out.other_half += 1;
            continue;
        }
        if samples.len() < MIN_SAMPLES {
            out.too_short += 1;
            continue;
        }
        samples.sort_by(|a, b| a.0.total_cmp(&b.0));
        let first = samples[0].0;
        let samples = samples.into_iter().map(|(t, v)| (t - first, v)).collect();
        out.series.push(Series { container: id, start: first, samples });
    }
    let earliest = out.series.iter().map(|s| s.start).fold(f64::INFINITY, f64::min);
    for s in &mut out.series {
        s.start -= earliest;
    }
    Ok(out)
}

fn fraction(records: &super::alibaba_openb::Records) -> Result<f64, TraceError> {
    let (text, column) = records.field("value");
    let v = text.parse::<f64>().ok().filter(|v| v.is_finite() && (-1e-3..=1.0 + 1e-3).contains(v));
    v.map(|v| v.clamp(0.0, 1.0)).ok_or_else(|| {
        records.error(records.line, column, format!("value: `{text}` is not a memory utilisation between 0 and 1"))
    })
}
