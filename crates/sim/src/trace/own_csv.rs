//! The project's own trace format (`csv`): per-pod starts, usage samples and
//! ends over time, one event per line, in time order.
//!
//! ```text
//! # comments and blank lines are skipped
//! time,pod,event,cpu,memory,nvidia.com/gpu
//! 0,web-1,start,500m,1Gi,0
//! 60,web-1,usage,230m,700Mi,
//! 3600,web-1,end,,,
//! ```
//!
//! - `time`: seconds since the trace began (decimal), never decreasing;
//! - `pod`: a name, unique among the pods alive at once;
//! - `event`: `start` (the resource columns are the pod's requests; empty is
//!   zero), `usage` (observed usage; empty cells keep the previous value) or
//!   `end` (resource cells ignored);
//! - resource columns: `cpu`, `memory`, `ephemeral-storage`, or an extended
//!   resource (a name with a `/`), in Kubernetes quantities (`500m`, `2Gi`)
//!   or plain numbers. No quoting: fields hold no commas.

use std::fs::File;
use std::io::{BufRead, BufReader, Lines};
use std::path::Path;
use std::time::Duration as StdDuration;

use heatscaler_core::model::Resources;
use heatscaler_core::policy::Quantity;

use super::{Row, RowKind, TraceError};

/// Which column holds what.
#[derive(Debug)]
struct Columns {
    count: usize,
    time: usize,
    pod: usize,
    event: usize,
    resources: Vec<(usize, String)>,
}

/// Reads a trace one row at a time.
pub struct TraceReader {
    file: String,
    lines: Lines<BufReader<File>>,
    line: usize,
    columns: Columns,
    last: StdDuration,
}

impl TraceReader {
    pub fn open(path: &Path) -> Result<Self, TraceError> {
        let file = path.display().to_string();
        let f = File::open(path).map_err(|e| TraceError {
            file: file.clone(),
            line: 0,
            column: 0,
            problem: format!("cannot read: {e}"),
        })?;
        let mut reader = Self {
            file,
            lines: BufReader::new(f).lines(),
            line: 0,
            columns: Columns::empty(),
            last: StdDuration::ZERO,
        };
        let Some(header) = reader.next_line()? else {
            return Err(reader.error(0, 1, "no header line (`time,pod,event,cpu,...`)".into()));
        };
        reader.columns = reader.header(&header)?;
        Ok(reader)
    }

    pub(super) fn error(&self, line: usize, column: usize, problem: String) -> TraceError {
        TraceError { file: self.file.clone(), line, column, problem }
    }

    /// The next line that is neither blank nor a comment.
    fn next_line(&mut self) -> Result<Option<String>, TraceError> {
        for text in self.lines.by_ref() {
            self.line += 1;
            let text = text.map_err(|e| TraceError {
                file: self.file.clone(),
                line: self.line,
                column: 1,
                // `lines()` consumes an invalid line with its error: one bad row.
                problem: if e.kind() == std::io::ErrorKind::InvalidData {
                    "the line is not UTF-8 text".into()
                } else {
                    format!("cannot read: {e}")
                },
            })?;
            let trimmed = text.trim();
            if trimmed.is_empty() || trimmed.starts_with('#') {
                continue;
            }
            return Ok(Some(text.trim_end_matches('\r').to_string()));
        }
        Ok(None)
    }

    fn header(&self, text: &str) -> Result<Columns, TraceError> {
        let mut c = Columns::empty();
        let (mut time, mut pod, mut event) = (None, None, None);
        let mut seen = std::collections::HashSet::new();
        for (i, (column, name)) in fields(text).enumerate() {
            let name = name.trim();
            if !seen.insert(name.to_string()) {
                return Err(self.error(self.line, column, format!("column `{name}` appears twice in the header")));
            }
            match name {
                "time" => time = Some(i),
                "pod" => pod = Some(i),
                "event" => event = Some(i),
                Resources::CPU | Resources::MEMORY | Resources::EPHEMERAL_STORAGE => {
                    c.resources.push((i, name.to_string()))
                }
                n if n.contains('/') => c.resources.push((i, n.to_string())),
                other => {
                    return Err(self.error(
                        self.line,
                        column,
                        format!(
                            "unknown column `{other}` (expected time, pod, event, cpu, memory, ephemeral-storage \
                             or an extended resource such as nvidia.com/gpu)"
                        ),
                    ));
                }
            }
            c.count = i + 1;
        }
        let missing = |what: &str| self.error(self.line, 1, format!("the header has no `{what}` column"));
        c.time = time.ok_or_else(|| missing("time"))?;
        c.pod = pod.ok_or_else(|| missing("pod"))?;
        c.event = event.ok_or_else(|| missing("event"))?;
        Ok(c)
    }

    /// The next row, checked on its own (the pod's life is checked by
    /// [`validate`]); `None` at the end of the file.
    pub fn next_row(&mut self) -> Result<Option<Row>, TraceError> {
        let Some(text) = self.next_line()? else { return Ok(None) };
        let cells: Vec<(usize, &str)> = fields(&text).collect();
        if cells.len() != self.columns.count {
            let column =
                if cells.len() > self.columns.count { cells[self.columns.count].0 } else { text.chars().count() + 1 };
            return Err(self.error(
                self.line,
                column,
                format!("{} fields, the header has {}", cells.len(), self.columns.count),
            ));
        }
        let (tc, tv) = cells[self.columns.time];
        let secs: f64 = tv
            .trim()
            .parse()
            .ok()
            .filter(|s: &f64| s.is_finite() && *s >= 0.0)
            .ok_or_else(|| self.error(self.line, tc, format!("time `{tv}` is not a number of seconds ≥ 0")))?;
        let at = StdDuration::from_secs_f64(secs);
        if at < self.last {
            return Err(self.error(
                self.line,
                tc,
                format!(
                    "time {secs} is before the previous row's {} (rows must be in time order)",
                    self.last.as_secs_f64()
                ),
            ));
        }
        self.last = at;
        let (pc, pod) = cells[self.columns.pod];
        let pod = pod.trim();
        if pod.is_empty() {
            return Err(self.error(self.line, pc, "empty pod name".into()));
        }
        let (ec, event) = cells[self.columns.event];
        let kind = match event.trim() {
            "start" => RowKind::Start,
            "usage" => RowKind::Usage,
            "end" => RowKind::End,
            other => {
                return Err(self.error(self.line, ec, format!("event `{other}` is not one of start, usage, end")));
            }
        };
        let mut amounts = Vec::new();
        if kind != RowKind::End {
            for (i, name) in &self.columns.resources {
                let (column, cell) = cells[*i];
                let cell = cell.trim();
                if cell.is_empty() {
                    continue;
                }
                let q = Quantity::parse(cell).map_err(|e| self.error(self.line, column, format!("{name}: {e}")))?;
                let amount = if name == Resources::CPU { q.as_milli() } else { q.as_units() };
                if amount < 0 {
                    return Err(self.error(self.line, column, format!("{name}: `{cell}` is negative")));
                }
                amounts.push((name.clone(), amount));
            }
        }
        Ok(Some(Row { line: self.line, at, pod: pod.to_string(), pod_column: pc, kind, amounts, placement: None }))
    }
}

impl Columns {
    fn empty() -> Self {
        Self { count: 0, time: 0, pod: 0, event: 0, resources: Vec::new() }
    }
}

/// Comma-separated fields with the 1-based column each starts at.
fn fields(text: &str) -> impl Iterator<Item = (usize, &str)> {
    let mut column = 1;
    text.split(',').map(move |f| {
        let at = column;
        column += f.chars().count() + 1;
        (at, f)
    })
}

#[cfg(test)]
mod tests {
    use super::super::{MAX_PROBLEMS, TraceKind, validate};
    use super::*;
    use std::path::Path;

    fn validate_csv(path: &Path) -> Vec<TraceError> {
        validate(TraceKind::Csv, path, false)
    }

    fn write(text: &str) -> tempfile::NamedTempFile {
        let mut f = tempfile::NamedTempFile::new().unwrap();
        std::io::Write::write_all(&mut f, text.as_bytes()).unwrap();
        f
    }

    fn problems(text: &str) -> Vec<String> {
        let f = write(text);
        let name = f.path().display().to_string();
        validate_csv(f.path()).into_iter().map(|e| e.to_string().replace(&name, "t.csv")).collect()
    }

    #[test]
    fn rows_are_read_in_order_with_their_amounts() {
        let f = write(
            "# a trace\ntime,pod,event,cpu,memory,nvidia.com/gpu\n\n0,a,start,500m,1Gi,1\n1.5,a,usage,200m,,\n3,a,end,,,\n",
        );
        let mut r = TraceReader::open(f.path()).unwrap();
        let first = r.next_row().unwrap().unwrap();
        assert_eq!((first.line, first.kind, first.pod.as_str()), (4, RowKind::Start, "a"));
        assert_eq!(first.amounts, vec![("cpu".into(), 500), ("memory".into(), 1 << 30), ("nvidia.com/gpu".into(), 1)]);
        let usage = r.next_row().unwrap().unwrap();
        assert_eq!((usage.at, usage.amounts.clone()), (StdDuration::from_millis(1500), vec![("cpu".into(), 200)]));
        assert_eq!(r.next_row().unwrap().unwrap().kind, RowKind::End);
        assert_eq!(r.next_row().unwrap(), None);
        assert!(problems("time,pod,event,cpu\n0,a,start,1\n5,a,end,\n").is_empty());
    }

    #[test]
    fn errors_name_file_line_and_column() {
        let cases = [
            ("time,pod,event,colour\n", "t.csv:1:16: unknown column `colour`"),
            ("time,pod,cpu\n", "t.csv:1:1: the header has no `event` column"),
            ("time,pod,event,cpu\n0,a,start,1\n0,b,start,lots\n", "t.csv:3:11: cpu: "),
            ("time,pod,event,cpu\n5,a,start,1\n4,b,start,1\n", "t.csv:3:1: time 4 is before the previous row's 5"),
            ("time,pod,event,cpu\n0,a,begin,1\n", "t.csv:2:5: event `begin` is not one of start, usage, end"),
            ("time,pod,event,cpu\n0,a,start,1,2\n", "t.csv:2:13: 5 fields, the header has 4"),
            ("time,pod,event,cpu\n0,a,start\n", "t.csv:2:10: 3 fields, the header has 4"),
            ("time,pod,event,cpu\nsoon,a,start,1\n", "t.csv:2:1: time `soon` is not a number"),
            (
                "time,pod,event,cpu\n0,a,start,1\n1,a,start,1\n",
                "t.csv:3:3: pod `a` starts again while running (started on line 2)",
            ),
            ("time,pod,event,cpu\n0,a,end,\n", "t.csv:2:3: pod `a` has not started"),
            ("", "t.csv:0:1: no header line"),
        ];
        for (text, want) in cases {
            let got = problems(text);
            let want = want.replace("t.csv:0:1: ", "t.csv: ");
            assert!(got.first().is_some_and(|g| g.starts_with(&want)), "{text:?}: {got:?} (want {want})");
        }
        let missing = validate_csv(Path::new("/nonexistent/trace.csv"));
        assert!(missing[0].to_string().starts_with("/nonexistent/trace.csv: cannot read"), "{missing:?}");
    }

    #[test]
    fn at_most_ten_problems_are_reported() {
        let mut text = String::from("time,pod,event,cpu\n");
        for i in 0..30 {
            text.push_str(&format!("{i},p{i},end,\n"));
        }
        assert_eq!(problems(&text).len(), MAX_PROBLEMS);
    }
}
