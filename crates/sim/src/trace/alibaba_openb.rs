//! Alibaba's cluster-trace-gpu-v2023 (`openb_*` files): a pod list and a
//! node list of a production Kubernetes GPU cluster.
//!
//! **Pod list** (`name,cpu_milli,memory_mib,num_gpu,gpu_milli,gpu_spec,qos,
//! pod_phase,creation_time,deletion_time,scheduled_time`), one row per pod.
//! Each pod becomes a `start` row at `creation_time` with requests
//! `cpu_milli` (millicores), `memory_mib` (MiB) and its GPUs ([`GpuSharing`]),
//! and an `end` row at `deletion_time` (empty: it runs to the end). Samples
//! of the trace are not all in `creation_time` order: starts pass through a
//! reorder buffer of [`REORDER_WINDOW`] pods (a row later than that is an
//! error saying so), ends wait in a heap until their time comes, so memory
//! follows the buffer and the pods alive at once, not the file.
//!
//! - `gpu_milli` (a share of one GPU for GPU-sharing pods, `num_gpu` 1): by
//!   default ([`GpuSharing::Shares`]) `nvidia.com/gpu` is counted in
//!   thousandths of a GPU: a minion with 8 GPUs offers 8000, a sharing pod
//!   asks for its `gpu_milli`, a whole-GPU pod for `num_gpu` × 1000 — the
//!   accounting of a GPU-sharing scheduler extension such as the trace's own
//!   cluster ran. Only the unit changes: the scheduling model, both
//!   autoscalers' GPU utilisation and the bound read GPUs as shares of a
//!   minion's. It is fluid within a minion (two half-free GPUs hold a pod
//!   wanting 0.8 of one): optimistic about fragmentation, which the trace's
//!   paper is about. [`GpuSharing::Whole`]: `num_gpu` whole GPUs, as the
//!   NVIDIA device plugin alone gives them (a sharing pod takes one GPU).
//! - `qos` (LS, BE, Burstable, Guaranteed): Alibaba's classes, not Kubernetes
//!   QoS; every pod has requests and counts as demand. Checked, not used.
//! - `pod_phase` (the phase when the trace was taken): every pod is replayed
//!   from creation to deletion whatever it became — a pod `Pending` at the
//!   snapshot asked for capacity while it existed, a `Failed` one held its
//!   requests until deleted. `scheduled_time` (when the real scheduler bound
//!   it) is checked, not used: the simulated scheduler decides.
//! - `gpu_spec` (`V100M16|V100M32`): a required node affinity on the
//!   [`GPU_MODEL_LABEL`] label, `In` the listed models.
//! - Pods requesting GPUs tolerate the GPU minions' taint
//!   ([`GPU_TAINT`]`:NoSchedule`), as Kubernetes' `ExtendedResourceToleration`
//!   admission plugin adds for pods requesting an extended resource.
//!
//! **Node list** (`sn,cpu_milli,memory_mib,gpu,model`): [`node_groups`]
//! makes one node group per common shape.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap, HashMap};
use std::fs::File;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration as StdDuration;

use heatscaler_core::model::{
    NodeSelectorOperator, NodeSelectorRequirement, NodeSelectorTerm, Placement, Resources, TaintEffect, Toleration,
    TolerationOperator,
};
use heatscaler_core::policy::{NodeTemplate, Quantity, TaintConfig};

use super::{Row, RowKind, TraceError};

/// The node label holding a GPU minion's model (the node list's `model`).
pub const GPU_MODEL_LABEL: &str = "heatscaler.io/gpu-model";
/// The taint GPU minions carry; pods requesting GPUs tolerate it.
pub const GPU_TAINT: &str = "nvidia.com/gpu";
pub const GPU_RESOURCE: &str = "nvidia.com/gpu";

/// How many pods' starts may wait to be put in `creation_time` order. A pod
/// out of place by more than this is an error naming the row (sort the file
/// first). 100,000 pods are tens of MB; the trace's samples have at most a
/// few tens of thousands, so any of them is sorted whole.
pub const REORDER_WINDOW: usize = 100_000;

/// How GPU-sharing pods (`gpu_milli` < 1000) ask for GPUs.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum GpuSharing {
    /// `nvidia.com/gpu` in thousandths of a GPU, on pods and minions.
    #[default]
    Shares,
    /// Whole `nvidia.com/gpu`: a sharing pod takes one GPU.
    Whole,
}

impl GpuSharing {
    pub fn name(self) -> &'static str {
        match self {
            GpuSharing::Shares => "shares",
            GpuSharing::Whole => "whole",
        }
    }

    /// The `nvidia.com/gpu` a pod of the list asks for.
    fn request(self, num_gpu: i64, gpu_milli: i64) -> Option<i64> {
        match self {
            _ if num_gpu == 0 => None,
            GpuSharing::Whole => Some(num_gpu),
            GpuSharing::Shares if num_gpu == 1 && gpu_milli > 0 => Some(gpu_milli),
            GpuSharing::Shares => Some(num_gpu * 1000),
        }
    }

    /// The `nvidia.com/gpu` a minion with `gpus` GPUs offers.
    fn allocatable(self, gpus: i64) -> i64 {
        match self {
            GpuSharing::Whole => gpus,
            GpuSharing::Shares => gpus * 1000,
        }
    }
}

impl std::str::FromStr for GpuSharing {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "shares" => Ok(GpuSharing::Shares),
            "whole" => Ok(GpuSharing::Whole),
            other => Err(format!("`{other}`: expected `shares` or `whole`")),
        }
    }
}

const POD_COLUMNS: [&str; 10] = [
    "name",
    "cpu_milli",
    "memory_mib",
    "num_gpu",
    "gpu_milli",
    "gpu_spec",
    "qos",
    "pod_phase",
    "creation_time",
    "deletion_time",
];
const QOS: [&str; 4] = ["LS", "BE", "Burstable", "Guaranteed"];
const PHASES: [&str; 4] = ["Running", "Succeeded", "Failed", "Pending"];

/// A CSV file read one record at a time, with errors at `file:line:column`.
pub(super) struct Records {
    file: String,
    reader: csv::Reader<Box<dyn std::io::Read>>,
    record: csv::StringRecord,
    pub(super) line: usize,
    /// Column index of each name of the header.
    pub(super) columns: HashMap<String, usize>,
    count: usize,
}

impl Records {
    pub(super) fn open(path: &Path, required: &[&str]) -> Result<Self, TraceError> {
        let file = path.display().to_string();
        let f = File::open(path).map_err(|e| TraceError {
            file: file.clone(),
            line: 0,
            column: 0,
            problem: format!("cannot read: {e}"),
        })?;
        let input: Box<dyn std::io::Read> = if path.extension().is_some_and(|e| e == "gz") {
            Box::new(flate2::read::MultiGzDecoder::new(f))
        } else {
            Box::new(f)
        };
        let mut reader = csv::ReaderBuilder::new().has_headers(false).flexible(true).from_reader(input);
        let mut records = Self {
            file,
            reader: csv::Reader::from_reader(Box::new(std::io::empty())),
            record: csv::StringRecord::new(),
            line: 0,
            columns: HashMap::new(),
            count: 0,
        };
        let mut header = csv::StringRecord::new();
        let read = reader.read_record(&mut header).map_err(|e| records.csv_error(e))?;
        records.reader = reader;
        if !read {
            return Err(records.error(0, 1, format!("no header line (`{}`)", required.join(","))));
        }
        records.line = 1;
        for (i, name) in header.iter().enumerate() {
            if records.columns.insert(name.trim().to_string(), i).is_some() {
                return Err(records.error(
                    1,
                    column_of(&header, i),
                    format!("column `{name}` appears twice in the header"),
                ));
            }
        }
        records.count = header.len();
        let missing: Vec<String> =
            required.iter().filter(|c| !records.columns.contains_key(**c)).map(|c| format!("`{c}`")).collect();
        match missing.len() {
            0 => Ok(records),
            1 => Err(records.error(1, 1, format!("the header has no {} column", missing[0]))),
            _ => Err(records.error(1, 1, format!("the header has no {} columns", missing.join(", ")))),
        }
    }

    pub(super) fn error(&self, line: usize, column: usize, problem: String) -> TraceError {
        TraceError { file: self.file.clone(), line, column, problem }
    }

    fn csv_error(&self, e: csv::Error) -> TraceError {
        let line = e.position().map_or(self.line + 1, |p| p.line() as usize);
        // A row that is not UTF-8 is consumed with its error: one bad row, not an unreadable file.
        if let csv::ErrorKind::Utf8 { err, .. } = e.kind() {
            return self.error(line, err.field() + 1, "the row is not UTF-8 text".into());
        }
        self.error(line, 1, format!("cannot read: {e}"))
    }

    /// The next record; `Ok(false)` at the end. A record with the wrong number
    /// of fields is an error.
    pub(super) fn next(&mut self) -> Result<bool, TraceError> {
        match self.reader.read_record(&mut self.record) {
            Ok(false) => Ok(false),
            Ok(true) => {
                self.line = self.record.position().map_or(self.line + 1, |p| p.line() as usize);
                if self.record.len() != self.count {
                    let column = if self.record.len() > self.count {
                        column_of(&self.record, self.count)
                    } else {
                        column_of(&self.record, self.record.len())
                    };
                    return Err(self.error(
                        self.line,
                        column,
                        format!("{} fields, the header has {}", self.record.len(), self.count),
                    ));
                }
                Ok(true)
            }
            Err(e) => Err(self.csv_error(e)),
        }
    }

    /// A field of the current record by column name, with its column.
    pub(super) fn field(&self, name: &str) -> (&str, usize) {
        let i = self.columns[name];
        (self.record.get(i).unwrap_or("").trim(), column_of(&self.record, i))
    }

    /// A whole number of at least zero.
    fn number(&self, name: &str) -> Result<i64, TraceError> {
        let (text, column) = self.field(name);
        text.parse::<i64>()
            .ok()
            .filter(|v| *v >= 0)
            .ok_or_else(|| self.error(self.line, column, format!("{name}: `{text}` is not a whole number ≥ 0")))
    }

    /// [`Records::number`], or `None` when the field is empty.
    fn optional_number(&self, name: &str) -> Result<Option<i64>, TraceError> {
        if self.field(name).0.is_empty() { Ok(None) } else { self.number(name).map(Some) }
    }

    fn one_of(&self, name: &str, allowed: &[&str]) -> Result<(), TraceError> {
        let (text, column) = self.field(name);
        if allowed.contains(&text) {
            Ok(())
        } else {
            Err(self.error(self.line, column, format!("{name}: `{text}` is not one of {}", allowed.join(", "))))
        }
    }
}

/// The 1-based character column field `i` of an unquoted record starts at
/// (the end of the record when `i` is past its last field).
fn column_of(record: &csv::StringRecord, i: usize) -> usize {
    1 + record.iter().take(i).map(|f| f.chars().count() + 1).sum::<usize>()
}

/// A row waiting for its time, ordered by time, then by when it was read.
struct Queued {
    at: StdDuration,
    seq: u64,
    row: Row,
}

impl PartialEq for Queued {
    fn eq(&self, other: &Self) -> bool {
        (self.at, self.seq) == (other.at, other.seq)
    }
}
impl Eq for Queued {}
impl PartialOrd for Queued {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Queued {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        (self.at, self.seq).cmp(&(other.at, other.seq))
    }
}

/// Reads the pod list as start/end rows in time order.
pub struct PodListReader {
    records: Records,
    /// Starts read ahead, at most `window` of them, earliest first.
    starts: BinaryHeap<Reverse<Queued>>,
    window: usize,
    /// Ends to come, earliest first.
    ends: BinaryHeap<Reverse<Queued>>,
    seq: u64,
    /// The time of the last row given out: a pod created before it came too
    /// late for the reorder buffer.
    emitted: StdDuration,
    /// Where that row came from (line, and whether it was an end).
    emitted_line: usize,
    /// Pods gone by this trace time are left out.
    from: StdDuration,
    gpu: GpuSharing,
    placements: HashMap<(bool, String), Arc<Placement>>,
    done: bool,
    /// Records read whole and good (pods gone before `from` included).
    pub good_records: u64,
}

impl PodListReader {
    pub fn open(path: &Path, from: StdDuration, gpu: GpuSharing) -> Result<Self, TraceError> {
        Self::with_window(path, from, gpu, REORDER_WINDOW)
    }

    /// [`PodListReader::open`] with a reorder buffer of `window` pods.
    pub fn with_window(path: &Path, from: StdDuration, gpu: GpuSharing, window: usize) -> Result<Self, TraceError> {
        let records = Records::open(path, &POD_COLUMNS).map_err(|mut e| {
            if e.problem.contains("`creation_time`") || e.problem.contains("`deletion_time`") {
                e.problem.push_str(
                    " (a pod list without lifetimes, like the trace's multi-GPU samples, is a snapshot: \
                     there is nothing to replay over time)",
                );
            }
            e
        })?;
        Ok(Self {
            records,
            starts: BinaryHeap::new(),
            window: window.max(1),
            ends: BinaryHeap::new(),
            seq: 0,
            emitted: StdDuration::ZERO,
            emitted_line: 0,
            from,
            gpu,
            placements: HashMap::new(),
            done: false,
            good_records: 0,
        })
    }

    /// The next row: the earliest of the buffered starts and the ends due
    /// before it (starts first at equal times: a pod deleted when created
    /// starts, then ends). The buffer is filled first, so a start comes out
    /// only once `window` later pods have been read, or the file is done.
    pub fn next_row(&mut self) -> Result<Option<Row>, TraceError> {
        while !self.done && self.starts.len() < self.window {
            if let Some(start) = self.read_pod()? {
                self.starts.push(Reverse(start));
            }
        }
        let start_at = self.starts.peek().map(|Reverse(q)| q.at);
        let end_at = self.ends.peek().map(|Reverse(q)| q.at);
        let next = match (start_at, end_at) {
            (Some(start), Some(end)) if end >= start => self.starts.pop(),
            (_, Some(_)) => self.ends.pop(),
            (Some(_), None) => self.starts.pop(),
            (None, None) => None,
        };
        Ok(next.map(|Reverse(q)| {
            self.emitted = q.at;
            self.emitted_line = q.row.line;
            q.row
        }))
    }

    /// Reads the next record: `Some` start of a pod alive at or after `from`
    /// (its end queued), `None` for a pod gone before `from` or at the end.
    fn read_pod(&mut self) -> Result<Option<Queued>, TraceError> {
        {
            if !self.records.next()? {
                self.done = true;
                return Ok(None);
            }
            let r = &self.records;
            let (name, name_column) = r.field("name");
            if name.is_empty() {
                return Err(r.error(r.line, name_column, "empty pod name".into()));
            }
            let name = name.to_string();
            let cpu = r.number("cpu_milli")?;
            let memory = r.number("memory_mib")?;
            let gpus = r.number("num_gpu")?;
            let gpu_milli = r.number("gpu_milli")?;
            if gpu_milli > 1000 {
                let column = r.field("gpu_milli").1;
                return Err(r.error(r.line, column, format!("gpu_milli: {gpu_milli} is more than one GPU (1000)")));
            }
            let (spec, spec_column) = r.field("gpu_spec");
            let models: Vec<&str> = if spec.is_empty() { Vec::new() } else { spec.split('|').collect() };
            if let Some(bad) = models.iter().find(|m| m.is_empty() || !m.chars().all(|c| c.is_ascii_alphanumeric())) {
                return Err(r.error(
                    r.line,
                    spec_column,
                    format!("gpu_spec: `{bad}` in `{spec}` is not a GPU model (expected e.g. `V100M16|V100M32`)"),
                ));
            }
            r.one_of("qos", &QOS)?;
            r.one_of("pod_phase", &PHASES)?;
            let creation = StdDuration::from_secs(r.number("creation_time")? as u64);
            let creation_column = r.field("creation_time").1;
            let deletion = r.optional_number("deletion_time")?.map(|s| StdDuration::from_secs(s as u64));
            if let Some(d) = deletion.filter(|d| *d < creation) {
                let column = r.field("deletion_time").1;
                return Err(r.error(
                    r.line,
                    column,
                    format!("deletion_time {} is before creation_time {}", d.as_secs(), creation.as_secs()),
                ));
            }
            if r.columns.contains_key("scheduled_time") {
                r.optional_number("scheduled_time")?;
            }
            let line = r.line;
            if deletion.is_some_and(|d| d <= self.from) {
                self.good_records += 1;
                return Ok(None);
            }
            if creation < self.emitted {
                return Err(r.error(
                    r.line,
                    creation_column,
                    format!(
                        "creation_time {} comes after the replay reached {} (line {}): the file is out of \
                         creation order by more than the reorder buffer's {} pods; sort it by creation_time first",
                        creation.as_secs(),
                        self.emitted.as_secs(),
                        self.emitted_line,
                        self.window
                    ),
                ));
            }
            self.good_records += 1;
            let mut amounts = vec![(Resources::CPU.to_string(), cpu), (Resources::MEMORY.to_string(), memory << 20)];
            if let Some(amount) = self.gpu.request(gpus, gpu_milli) {
                amounts.push((GPU_RESOURCE.to_string(), amount));
            }
            let spec = spec.to_string();
            let placement = self.placement(gpus > 0, &spec);
            let start = Row {
                line,
                at: creation,
                pod: name.clone(),
                pod_column: name_column,
                kind: RowKind::Start,
                amounts,
                placement,
            };
            if let Some(at) = deletion {
                self.seq += 1;
                let row = Row {
                    line,
                    at,
                    pod: name,
                    pod_column: name_column,
                    kind: RowKind::End,
                    amounts: Vec::new(),
                    placement: None,
                };
                self.ends.push(Reverse(Queued { at, seq: self.seq, row }));
            }
            self.seq += 1;
            Ok(Some(Queued { at: creation, seq: self.seq, row: start }))
        }
    }

    fn placement(&mut self, gpus: bool, spec: &str) -> Option<Arc<Placement>> {
        if !gpus && spec.is_empty() {
            return None;
        }
        let p = self.placements.entry((gpus, spec.to_string())).or_insert_with(|| {
            let mut p = Placement::default();
            if gpus {
                p.tolerations.push(Toleration {
                    key: Some(GPU_TAINT.into()),
                    operator: TolerationOperator::Exists,
                    value: None,
                    effect: Some(TaintEffect::NoSchedule),
                });
            }
            if !spec.is_empty() {
                p.required_node_affinity.push(NodeSelectorTerm {
                    match_expressions: vec![NodeSelectorRequirement {
                        key: GPU_MODEL_LABEL.into(),
                        operator: NodeSelectorOperator::In,
                        values: spec.split('|').map(str::to_string).collect(),
                    }],
                    match_fields: Vec::new(),
                });
            }
            Arc::new(p)
        });
        Some(p.clone())
    }
}

/// One node shape of the node list and how many nodes have it.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct NodeShape {
    pub cpu_milli: i64,
    pub memory_mib: i64,
    pub gpus: i64,
    pub model: String,
}

impl NodeShape {
    /// `g2-8gpu-96c-384g`, `cpu-32c-256g`.
    pub fn group_name(&self) -> String {
        let size = format!("{}c-{}g", self.cpu_milli / 1000, self.memory_mib / 1024);
        if self.gpus > 0 {
            format!("{}-{}gpu-{size}", self.model.to_lowercase(), self.gpus)
        } else {
            format!("cpu-{size}")
        }
    }
}

/// A shape of the node list and how many nodes have it.
pub type ShapeCount = (NodeShape, u32);

/// The node list's shapes with their node counts, most common first.
pub fn node_shapes(path: &Path) -> Result<Vec<ShapeCount>, TraceError> {
    let mut records = Records::open(path, &["cpu_milli", "memory_mib", "gpu", "model"])?;
    let mut counts: BTreeMap<NodeShape, u32> = BTreeMap::new();
    while records.next()? {
        let shape = NodeShape {
            cpu_milli: records.number("cpu_milli")?,
            memory_mib: records.number("memory_mib")?,
            gpus: records.number("gpu")?,
            model: records.field("model").0.to_string(),
        };
        if shape.gpus > 0 && shape.model.is_empty() {
            let column = records.field("model").1;
            return Err(records.error(records.line, column, "a node with GPUs has no GPU model".into()));
        }
        *counts.entry(shape).or_default() += 1;
    }
    let mut shapes: Vec<(NodeShape, u32)> = counts.into_iter().collect();
    shapes.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    Ok(shapes)
}

/// A node group the node list makes: its name, minion template, and how
/// many nodes of that shape the list has.
#[derive(Clone, Debug)]
pub struct ListedGroup {
    pub name: String,
    pub template: NodeTemplate,
    pub nodes: u32,
}

/// Node groups from the node list: one per shape held by at least
/// `min_share` of the nodes (the rarer shapes are left out and returned).
/// GPU groups carry the GPU model label and the [`GPU_TAINT`] taint.
/// GPUs are offered as `gpu` says (whole, or in thousandths), matching the
/// pod list's import.
pub fn node_groups(
    path: &Path,
    min_share: f64,
    gpu: GpuSharing,
) -> Result<(Vec<ListedGroup>, Vec<ShapeCount>), TraceError> {
    let shapes = node_shapes(path)?;
    let total: u32 = shapes.iter().map(|(_, n)| n).sum();
    let (common, rare): (Vec<_>, Vec<_>) =
        shapes.into_iter().partition(|(_, n)| f64::from(*n) >= min_share * f64::from(total));
    let groups = common
        .into_iter()
        .map(|(shape, count)| {
            let name = shape.group_name();
            let mut allocatable = BTreeMap::from([
                (Resources::CPU.to_string(), Quantity::parse(&format!("{}m", shape.cpu_milli)).expect("millicores")),
                (Resources::MEMORY.to_string(), Quantity::parse(&format!("{}Mi", shape.memory_mib)).expect("MiB")),
                (Resources::PODS.to_string(), Quantity::parse("110").expect("a number")),
            ]);
            let mut labels = BTreeMap::from([("heatscaler.io/node-group".to_string(), name.clone())]);
            let mut taints = Vec::new();
            if shape.gpus > 0 {
                let amount = gpu.allocatable(shape.gpus).to_string();
                allocatable.insert(GPU_RESOURCE.into(), Quantity::parse(&amount).expect("a number"));
                labels.insert(GPU_MODEL_LABEL.into(), shape.model.clone());
                taints.push(TaintConfig {
                    key: GPU_TAINT.into(),
                    value: Some("present".into()),
                    effect: TaintEffect::NoSchedule,
                });
            }
            ListedGroup { name, template: NodeTemplate { allocatable, labels, taints }, nodes: count }
        })
        .collect();
    Ok((groups, rare))
}
