//! Trace replay: pods' arrivals, usage and departures read from files and fed
//! to the simulated cluster row by row, as simulated time reaches them.
//!
//! Every kind of file is read through one [`Rows`] stream of [`Row`]s
//! (start / usage / end of a named pod), which the replay (`replay`) turns
//! into pods of the simulated cluster — the same path scenarios' pods take,
//! whatever the file's format:
//!
//! - `csv` ([`own_csv`]): the project's own format (`docs/simulator.md`);
//! - `alibaba-openb` ([`alibaba_openb`]): the pod list of Alibaba's
//!   cluster-trace-gpu-v2023, one row per pod; its node list gives node groups;
//! - `alibaba-gentd26` ([`alibaba_gentd26`]): per-container memory utilisation
//!   series, replayed at the pod level (usage shapes, not pods).
//!
//! Files are streamed — one row in memory at a time, plus what the pods alive
//! at once need — so a trace of months costs memory for the pods alive at
//! once, not for the file. Every problem is reported as `file:line:column`.

pub mod alibaba_gentd26;
pub mod alibaba_openb;
mod own_csv;

use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration as StdDuration;

use serde::Deserialize;

use heatscaler_core::model::Placement;

pub use alibaba_openb::GpuSharing;
pub use own_csv::TraceReader;

/// At most this many problems are reported per file.
pub const MAX_PROBLEMS: usize = 10;

/// A problem at a place in a trace file (`column` is 1-based, in characters).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub struct TraceError {
    pub file: String,
    pub line: usize,
    pub column: usize,
    pub problem: String,
}

impl fmt::Display for TraceError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.line == 0 {
            write!(f, "{}: {}", self.file, self.problem)
        } else {
            write!(f, "{}:{}:{}: {}", self.file, self.line, self.column, self.problem)
        }
    }
}

impl TraceError {
    /// Problems that stop reading the file (it cannot be read, or has no usable header).
    fn fatal(&self) -> bool {
        self.line == 0
            || ["cannot read", "the header has no", "unknown column", "no header line"]
                .iter()
                .any(|p| self.problem.starts_with(p))
            || self.problem.ends_with("appears twice in the header")
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RowKind {
    Start,
    Usage,
    End,
}

/// One row: what happened to a pod at a time.
#[derive(Clone, Debug, PartialEq)]
pub struct Row {
    pub line: usize,
    pub at: StdDuration,
    pub pod: String,
    /// Where the pod's name is on its line (for errors about the pod's life).
    pub pod_column: usize,
    pub kind: RowKind,
    /// The resource cells that were not empty, by resource name.
    pub amounts: Vec<(String, i64)>,
    /// Placement of this pod on top of the trace's own (a GPU model
    /// affinity, the GPU taint's toleration); shared between rows alike.
    pub placement: Option<Arc<Placement>>,
}

/// The format of a trace file.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum TraceKind {
    /// The project's own CSV (`docs/simulator.md`).
    #[default]
    Csv,
    /// cluster-trace-gpu-v2023's pod list (`openb_pod_list_*.csv`).
    AlibabaOpenb,
    /// GenTD26 per-container memory utilisation (`pod_memory_util_anon*.csv[.gz]`).
    AlibabaGentd26,
}

impl TraceKind {
    pub const ALL: [TraceKind; 3] = [TraceKind::Csv, TraceKind::AlibabaOpenb, TraceKind::AlibabaGentd26];

    pub fn name(self) -> &'static str {
        match self {
            TraceKind::Csv => "csv",
            TraceKind::AlibabaOpenb => "alibaba-openb",
            TraceKind::AlibabaGentd26 => "alibaba-gentd26",
        }
    }

    /// Whether its rows are pods for the node level (else usage for the pod level).
    pub fn node_level(self) -> bool {
        self != TraceKind::AlibabaGentd26
    }
}

/// A `--trace` argument: `KIND:PATH`, or a path to a file in the own format.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TraceArg {
    pub kind: TraceKind,
    pub path: PathBuf,
}

impl std::str::FromStr for TraceArg {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        if let Some((prefix, path)) = s.split_once(':') {
            if let Some(kind) = TraceKind::ALL.into_iter().find(|k| k.name() == prefix) {
                if path.is_empty() {
                    return Err(format!("`{s}`: no file after `{prefix}:`"));
                }
                return Ok(Self { kind, path: PathBuf::from(path) });
            }
            let looks_like_kind = !prefix.is_empty() && prefix.chars().all(|c| c.is_ascii_lowercase() || c == '-');
            if looks_like_kind && !Path::new(s).exists() {
                let known: Vec<&str> = TraceKind::ALL.iter().map(|k| k.name()).collect();
                return Err(format!("unknown trace kind `{prefix}` (known: {})", known.join(", ")));
            }
        }
        Ok(Self { kind: TraceKind::Csv, path: PathBuf::from(s) })
    }
}

/// The reader of one kind of node-level trace.
enum Reader {
    Csv(TraceReader),
    Openb(Box<alibaba_openb::PodListReader>),
}

/// A node-level trace's rows in time order, whatever its format. With
/// `skip_bad_rows`, rows that do not parse are counted and left out
/// instead of stopping the replay.
pub struct Rows {
    reader: Reader,
    skip_bad_rows: bool,
    /// Good rows of the own format given out (the pod list counts its own).
    csv_rows: u64,
    pub skipped: u64,
    /// The first [`MAX_PROBLEMS`] rows skipped, and why.
    pub skipped_examples: Vec<TraceError>,
}

impl Rows {
    /// `from`: the trace time the replay starts at; a reader may leave out
    /// pods it knows are gone by then.
    /// `gpu`: how the pod list's GPU-sharing pods ask for GPUs.
    pub fn open(
        kind: TraceKind,
        path: &Path,
        from: StdDuration,
        skip_bad_rows: bool,
        gpu: GpuSharing,
    ) -> Result<Self, TraceError> {
        let reader = match kind {
            TraceKind::Csv => Reader::Csv(TraceReader::open(path)?),
            TraceKind::AlibabaOpenb => Reader::Openb(Box::new(alibaba_openb::PodListReader::open(path, from, gpu)?)),
            TraceKind::AlibabaGentd26 => {
                return Err(TraceError {
                    file: path.display().to_string(),
                    line: 0,
                    column: 0,
                    problem: "alibaba-gentd26 holds usage series for the pod level, not pods: replay it with \
                              `heatscaler simulate --trace alibaba-gentd26:FILE`"
                        .into(),
                });
            }
        };
        Ok(Self { reader, skip_bad_rows, csv_rows: 0, skipped: 0, skipped_examples: Vec::new() })
    }

    /// Records of the file read and kept so far (a pod-list record is a
    /// pod, an own-format record a row).
    pub fn good_records(&self) -> u64 {
        match &self.reader {
            Reader::Csv(_) => self.csv_rows,
            Reader::Openb(r) => r.good_records,
        }
    }

    /// The next good row; `None` at the end of the file.
    pub fn next_row(&mut self) -> Result<Option<Row>, TraceError> {
        loop {
            let next = match &mut self.reader {
                Reader::Csv(r) => r.next_row(),
                Reader::Openb(r) => r.next_row(),
            };
            match next {
                Err(e) if self.skip_bad_rows && !e.fatal() => self.skip(e),
                Ok(Some(row)) => {
                    self.csv_rows += 1;
                    return Ok(Some(row));
                }
                other => return other,
            }
        }
    }

    fn skip(&mut self, e: TraceError) {
        self.skipped += 1;
        if self.skipped_examples.len() < MAX_PROBLEMS {
            self.skipped_examples.push(e);
        }
    }
}

/// What reading a whole trace found.
#[derive(Debug, Default)]
pub struct Checked {
    /// Time of the last row.
    pub last: StdDuration,
    pub rows: u64,
    /// At most [`MAX_PROBLEMS`]; empty when bad rows are skipped.
    pub problems: Vec<TraceError>,
    /// Bad rows left out (with `skip_bad_rows`), and the first few of them.
    pub skipped: u64,
    pub skipped_examples: Vec<TraceError>,
    /// Records read and kept (see [`Rows::good_records`]).
    pub kept: u64,
}

/// Reads a whole trace once, streaming, and returns its problems (at most
/// [`MAX_PROBLEMS`]): bad rows, and pods that start twice, or show usage or
/// end without having started.
pub fn validate(kind: TraceKind, path: &Path, skip_bad_rows: bool) -> Vec<TraceError> {
    check(kind, path, StdDuration::ZERO, skip_bad_rows, GpuSharing::default()).problems
}

/// [`validate`], with the trace's length and row count. With
/// `skip_bad_rows`, every problem is a skipped row instead — unless most
/// of the file's records were: then the trace is refused (a problem), as a
/// report on the few rows left would describe another trace.
pub fn check(kind: TraceKind, path: &Path, from: StdDuration, skip_bad_rows: bool, gpu: GpuSharing) -> Checked {
    let mut rows = match Rows::open(kind, path, from, skip_bad_rows, gpu) {
        Ok(r) => r,
        Err(e) => return Checked { problems: vec![e], ..Checked::default() },
    };
    let file = path.display().to_string();
    let mut checked = Checked::default();
    let mut live: HashMap<String, usize> = HashMap::new();
    // Records that read well but contradict a pod's life (skipped as bad).
    let mut life_skipped = 0;
    let problem = |checked: &mut Checked, rows: &mut Rows, e: TraceError| {
        if skip_bad_rows && !e.fatal() {
            rows.skip(e);
        } else {
            checked.problems.push(e);
        }
    };
    while checked.problems.len() < MAX_PROBLEMS {
        let row = match rows.next_row() {
            Ok(Some(row)) => row,
            Ok(None) => break,
            Err(e) => {
                let fatal = e.fatal();
                problem(&mut checked, &mut rows, e);
                if fatal {
                    break;
                }
                continue;
            }
        };
        let at = |problem: String| TraceError { file: file.clone(), line: row.line, column: row.pod_column, problem };
        checked.rows += 1;
        checked.last = row.at;
        match row.kind {
            RowKind::Start => {
                if let Some(line) = live.get(&row.pod) {
                    let e = at(format!("pod `{}` starts again while running (started on line {line})", row.pod));
                    life_skipped += 1;
                    problem(&mut checked, &mut rows, e);
                } else {
                    live.insert(row.pod.clone(), row.line);
                }
            }
            RowKind::Usage | RowKind::End if !live.contains_key(&row.pod) => {
                let e = at(format!("pod `{}` has not started", row.pod));
                life_skipped += 1;
                problem(&mut checked, &mut rows, e);
            }
            RowKind::End => {
                live.remove(&row.pod);
            }
            RowKind::Usage => {}
        }
    }
    checked.kept = rows.good_records().saturating_sub(life_skipped);
    checked.skipped = rows.skipped;
    checked.skipped_examples = rows.skipped_examples;
    if checked.problems.is_empty() && checked.skipped > checked.kept {
        checked.problems.push(TraceError {
            file,
            line: 0,
            column: 0,
            problem: format!(
                "{} of its {} records could not be used (--skip-bad-rows): most of the file was dropped, so no \
                 report is made from the rest; the first: {}",
                checked.skipped,
                checked.skipped + checked.kept,
                checked.skipped_examples.first().map_or(String::new(), |e| e.to_string())
            ),
        });
    }
    checked
}

#[cfg(test)]
mod fuzz;
#[cfg(test)]
mod tests;

#[cfg(test)]
mod arg_tests {
    use super::*;

    #[test]
    fn trace_arguments_name_their_kind() {
        let arg: TraceArg = "alibaba-openb:traces/pods.csv".parse().unwrap();
        assert_eq!((arg.kind, arg.path), (TraceKind::AlibabaOpenb, PathBuf::from("traces/pods.csv")));
        let arg: TraceArg = "prod.csv".parse().unwrap();
        assert_eq!(arg.kind, TraceKind::Csv);
        assert_eq!("csv:a:b.csv".parse::<TraceArg>().unwrap().path, PathBuf::from("a:b.csv"));
        let err = "alibaba:x.csv".parse::<TraceArg>().unwrap_err();
        assert!(err.starts_with("unknown trace kind `alibaba` (known: csv, alibaba-openb, alibaba-gentd26)"), "{err}");
        assert!("alibaba-openb:".parse::<TraceArg>().is_err());
    }
}
