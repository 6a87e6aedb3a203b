//! The report for a terminal: each run's timeline, then one table with a
//! column per policy, so heatscaler and the baselines read side by side.
//!
//! Sections of the table are built from a run's parts ([`node_rows`] for
//! [`NodeLevel`]); a new part of [`Run`] adds its own rows with [`Table`].

use std::fmt;

use super::report::{NodeLevel, PodWorkload, Report, Run, pooled, secs};

/// Timelines longer than this are summarised unless asked for.
pub const TIMELINE_LIMIT: usize = 200;

/// How much of the timelines to print.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Timelines {
    /// Print each run's timeline when it is at most [`TIMELINE_LIMIT`] events.
    Auto,
    All,
    None,
}

/// A [`Report`] rendered with a choice of timelines.
pub struct View<'r> {
    pub report: &'r Report,
    pub timelines: Timelines,
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        View { report: self, timelines: Timelines::Auto }.fmt(f)
    }
}

impl fmt::Display for View<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let r = self.report;
        write!(f, "scenario {} (seed {}, {} simulated)", r.scenario, r.seed, secs(r.duration_secs))?;
        if let Some(d) = &r.description {
            write!(f, "\n  {d}")?;
        }
        writeln!(f)?;
        if let Some(input) = r.runs.first().map(|run| &run.input).filter(|i| i.trace_rows_dropped > 0) {
            writeln!(
                f,
                "  trace rows dropped as bad (--skip-bad-rows): {} (and {} replayed)",
                input.trace_rows_dropped, input.trace_rows
            )?;
            // Loading refuses such a trace; a report built another way says it too.
            if input.trace_rows_dropped > input.trace_rows {
                return writeln!(f, "  most trace rows were dropped: no table is printed for what is left");
            }
        }
        for run in &r.runs {
            let n = run.timeline.len();
            let print = match self.timelines {
                Timelines::All => true,
                Timelines::Auto => n <= TIMELINE_LIMIT,
                Timelines::None => false,
            };
            if print {
                writeln!(f, "\n{} timeline", run.label)?;
                for e in &run.timeline {
                    writeln!(f, "  {:>8}  {:<12} {}", secs(e.at_secs), e.subject, e.event)?;
                }
            } else if self.timelines == Timelines::Auto {
                writeln!(f, "\n{} timeline: {n} events (--timeline prints them, --json gives all)", run.label)?;
            }
        }
        let mut table = Table::new(r.runs.iter().map(|run| run.policy.clone()).collect());
        node_rows(&mut table, &r.runs);
        pod_rows(&mut table, &r.runs);
        write!(f, "\n{table}")?;
        workload_rows(f, &r.runs)?;
        for run in r.runs.iter().filter(|run| run.label != run.policy) {
            writeln!(f, "{}: {}", run.policy, run.label)?;
        }
        if let Some(reference) = &r.reference {
            writeln!(f, "reference (the cheapest peer here): {reference}")?;
        }
        Ok(())
    }
}

/// The pod-level section, when the scenario has VPA objects.
fn pod_rows(table: &mut Table, runs: &[Run]) {
    if runs.iter().all(|r| r.pod_level.is_none()) {
        return;
    }
    table.section("pod level");
    type Count = fn(&super::report::PodLevelCounts) -> u32;
    let rows: [(&str, Count); 8] = [
        ("resizes requested", |c| c.resizes_requested),
        ("applied", |c| c.resizes_applied),
        ("deferred", |c| c.resizes_deferred),
        ("infeasible", |c| c.resizes_infeasible),
        ("refused (422)", |c| c.resizes_invalid),
        ("evicted to recreate", |c| c.recreations),
        ("refused by a PDB", |c| c.recreations_refused),
        ("OOM kills", |c| c.oom_kills),
    ];
    for (label, count) in rows {
        let cells = runs.iter().map(|r| r.pod_level.as_ref().map_or("-".into(), |c| count(c).to_string())).collect();
        table.row(label, cells);
    }
    if runs.iter().all(|r| r.pod_workloads.is_empty()) {
        return;
    }
    table.section("pod level, all VPA workloads pooled");
    let pooled: Vec<PodWorkload> = runs.iter().map(|r| pooled(&r.pod_workloads)).collect();
    type Cell = fn(&PodWorkload) -> String;
    let rows: [(&str, Cell); 8] = [
        ("pod-days", |p| format!("{:.1}", p.totals.pod_days)),
        ("memory over-provisioned", |p| percent(p.memory_over_provisioning)),
        ("cpu over-provisioned", |p| percent(p.cpu_over_provisioning)),
        ("OOM kills per pod-day", |p| format!("{:.3}", p.ooms_per_pod_day)),
        ("evictions per pod-day", |p| format!("{:.3}", p.evictions_per_pod_day)),
        ("updates per pod-day", |p| format!("{:.2}", p.updates_per_pod_day)),
        ("cpu above request (time)", |p| percent(p.cpu_under_provisioned_share)),
        ("not serving (time)", |p| format!("{:.3}%", p.unavailable_share * 100.0)),
    ];
    for (label, cell) in rows {
        table.row(label, pooled.iter().map(cell).collect());
    }
}

fn percent(share: f64) -> String {
    format!("{:.1}%", share * 100.0)
}

/// Beyond this many VPA workloads only the pooled rows are printed (`--json` has each).
pub const WORKLOADS_LISTED: usize = 12;

/// One line per VPA workload and policy, when there are few.
fn workload_rows(f: &mut fmt::Formatter<'_>, runs: &[Run]) -> fmt::Result {
    let n = runs.iter().map(|r| r.pod_workloads.len()).max().unwrap_or(0);
    if !(2..=WORKLOADS_LISTED).contains(&n) {
        return Ok(());
    }
    writeln!(
        f,
        "\n{:<12} {:<20} {:>9} {:>9} {:>10} {:>8} {:>8} {:>9} {:>8}",
        "workload", "policy", "cpu over", "mem over", "cpu under", "OOM/pd", "upd/pd", "evict/pd", "unavail"
    )?;
    for w in 0..n {
        for (i, run) in runs.iter().enumerate() {
            let Some(r) = run.pod_workloads.get(w) else { continue };
            let name = if i == 0 { r.workload.as_str() } else { "" };
            writeln!(
                f,
                "{:<12} {:<20} {:>8.0}% {:>8.0}% {:>9.1}% {:>8.2} {:>8.2} {:>9.2} {:>7.2}%",
                name,
                run.policy,
                r.cpu_over_provisioning * 100.0,
                r.memory_over_provisioning * 100.0,
                r.cpu_under_provisioned_share * 100.0,
                r.ooms_per_pod_day,
                r.updates_per_pod_day,
                r.evictions_per_pod_day,
                r.unavailable_share * 100.0,
            )?;
        }
    }
    writeln!(f, "over = (Σ request − Σ usage) / Σ usage while serving; cpu under = serving time above the request;")?;
    writeln!(
        f,
        "pd = per pod-day; upd = resizes applied + evictions to recreate; evict = every eviction (drains too);"
    )?;
    writeln!(f, "unavail = pod time not serving (pending, starting, restarting after an OOM kill).")
}

/// Rows with a label and one cell per run; `None` cells are section titles.
pub struct Table {
    columns: Vec<String>,
    rows: Vec<(String, Option<Vec<String>>)>,
}

impl Table {
    pub fn new(columns: Vec<String>) -> Self {
        Self { columns, rows: Vec::new() }
    }

    pub fn section(&mut self, title: &str) {
        self.rows.push((title.to_string(), None));
    }

    pub fn row(&mut self, label: &str, cells: Vec<String>) {
        self.rows.push((format!("  {label}"), Some(cells)));
    }
}

impl fmt::Display for Table {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let label_width = self.rows.iter().map(|(l, _)| l.chars().count()).max().unwrap_or(0).max(8);
        let widths: Vec<usize> = (0..self.columns.len())
            .map(|c| {
                let cells = self.rows.iter().filter_map(|(_, r)| r.as_ref().map(|r| r[c].chars().count()));
                cells.chain([self.columns[c].chars().count()]).max().unwrap_or(0)
            })
            .collect();
        write!(f, "{:label_width$}", "")?;
        for (c, w) in self.columns.iter().zip(&widths) {
            write!(f, "  {c:>w$}")?;
        }
        writeln!(f)?;
        for (label, cells) in &self.rows {
            match cells {
                None => writeln!(f, "{label}")?,
                Some(cells) => {
                    write!(f, "{label:label_width$}")?;
                    for (cell, w) in cells.iter().zip(&widths) {
                        write!(f, "  {cell:>w$}")?;
                    }
                    writeln!(f)?;
                }
            }
        }
        Ok(())
    }
}

/// The node-level section: cost against the fluid lower bound, waiting, and
/// what each policy did to get there.
pub fn node_rows(t: &mut Table, runs: &[Run]) {
    let cells = |f: &dyn Fn(&NodeLevel) -> String| runs.iter().map(|r| f(&r.node_level)).collect::<Vec<_>>();
    t.section("node level");
    t.row("node-hours", cells(&|n| format!("{:.2}", n.node_hours)));
    if let Some(first) = runs.first() {
        for (i, g) in first.node_level.groups.iter().enumerate() {
            t.row(
                &format!("  {} (price {}/h)", g.group, trim(g.price_per_hour)),
                cells(&|n| n.groups.get(i).map_or("-".into(), |g| format!("{:.2}", g.node_hours))),
            );
        }
    }
    t.row("cost", cells(&|n| format!("{:.2}", n.cost)));
    if runs.iter().any(|r| r.node_level.lower_bound.node_hours.is_some()) {
        t.row(
            "fluid lower bound, node-hours",
            cells(&|n| n.lower_bound.node_hours.map_or("-".into(), |b| format!("{b:.2}"))),
        );
        t.row("node-hours / lower bound", cells(&|n| n.node_hours_ratio.map_or("-".into(), |r| format!("{r:.3}×"))));
    }
    t.row("fluid lower bound, cost", cells(&|n| format!("{:.2}", n.lower_bound.cost)));
    t.row("cost / lower bound", cells(&|n| n.cost_ratio.map_or("-".into(), |r| format!("{r:.3}×"))));
    t.row("pending pod-seconds", cells(&|n| format!("{:.0}", n.pending_pod_seconds)));
    t.row("pods that waited for capacity", cells(&|n| n.waited_pods.to_string()));
    t.row("wait p50", cells(&|n| n.wait_p50_secs.map_or("-".into(), secs)));
    t.row("wait p99", cells(&|n| n.wait_p99_secs.map_or("-".into(), secs)));
    t.row("never scheduled", cells(&|n| n.never_scheduled.to_string()));
    if runs.iter().any(|r| r.node_level.never_scheduled_deleted > 0) {
        t.row("  deleted while waiting", cells(&|n| n.never_scheduled_deleted.to_string()));
    }
    if runs.iter().any(|r| r.node_level.unhostable_pods > 0) {
        t.row("pods no group can host", cells(&|n| n.unhostable_pods.to_string()));
        if let Some(u) = runs.iter().find_map(|r| r.node_level.unhostable.first()) {
            t.section(&format!("    e.g. {}: {}", u.pod, u.reason));
        }
    }
    t.row("scale-ups (minions added)", cells(&|n| format!("{} (+{})", n.scale_ups, n.nodes_added)));
    t.row("scale-downs (minions removed)", cells(&|n| format!("{} (-{})", n.scale_downs, n.nodes_removed)));
    t.row("evictions (refused by PDBs)", cells(&|n| format!("{} ({})", n.evictions, n.evictions_refused)));
    t.row("provisioning failures", cells(&|n| n.provisioning_failures.to_string()));
    t.row("rollbacks", cells(&|n| n.rollbacks.to_string()));
    t.row("oscillation cycles (any demand)", cells(&|n| format!("{} ({})", n.oscillation_cycles, n.rescale_cycles)));
    t.row("decision passes", cells(&|n| n.planner_passes.to_string()));
    if runs.iter().any(|r| r.node_level.lower_bound.lp_solves > 0) {
        t.row(
            "lower bound: LPs solved (s)",
            cells(&|n| format!("{} ({:.1})", n.lower_bound.lp_solves, n.lower_bound.lp_seconds)),
        );
    }
}

fn trim(v: f64) -> String {
    let s = format!("{v:.4}");
    s.trim_end_matches('0').trim_end_matches('.').to_string()
}
