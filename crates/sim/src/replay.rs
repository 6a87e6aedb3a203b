//! Trace replay: the rows of trace files (`trace`) fed to the world as
//! simulated time reaches them — pods created when they start, their usage
//! kept for the metrics the autoscaler reads, deleted when they end, and
//! recreated by their controller (if the trace names one) when evicted.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration as StdDuration;

use heatscaler_core::model::{Container, Placement, Resources};

use crate::scenario::Scenario;
use crate::trace::{GpuSharing, Row, RowKind, Rows, TraceError, TraceKind};
use crate::world::World;
use crate::world::clock::Event;
use crate::world::cluster::{Origin, PodTemplate};

/// Every trace of a scenario being replayed into one run.
pub struct Replay {
    feeds: Vec<TraceFeed>,
    /// A trace that could not be read to its end (it changed after validation).
    errors: Vec<TraceError>,
}

impl Replay {
    /// Opens the scenario's traces (checked when the scenario was loaded).
    pub fn open(sc: &Scenario) -> Result<Self, TraceError> {
        let mut feeds = Vec::new();
        for t in &sc.traces {
            let base = PodTemplate::from_spec(&t.pod_spec(), &t.namespace, &t.name, t.controller());
            let path = t.path(&sc.base_dir);
            feeds.push(TraceFeed::open(t.kind, &path, t.start.get(), base, t.skip_bad_rows, sc.gpu_sharing)?);
        }
        Ok(Self { feeds, errors: Vec::new() })
    }

    /// Applies the rows due at the start of every trace (for groups sized
    /// from the demand then); each waits for its next row.
    pub fn start_now(&mut self, world: &mut World<'_>) {
        for t in 0..self.feeds.len() {
            self.rows_due(world, t);
        }
    }

    /// Schedules each trace's first rows.
    pub fn start(&mut self, world: &mut World<'_>) {
        for feed in &mut self.feeds {
            feed.tell_dropped(world);
        }
        for (t, feed) in self.feeds.iter().enumerate() {
            if let Some(at) = feed.next_at() {
                world.after(at, Event::TraceRows(t));
            }
        }
    }

    /// The first trace that could not be read to its end.
    pub fn into_error(self) -> Option<TraceError> {
        self.errors.into_iter().next()
    }

    /// Applies every row of trace `t` due by now, then waits for the next.
    pub fn rows_due(&mut self, world: &mut World<'_>, t: usize) {
        let now = world.elapsed();
        while self.feeds[t].next_at().is_some_and(|at| at <= now) {
            let feed = &mut self.feeds[t];
            let row = feed.next.take().expect("checked above");
            feed.next = match feed.rows.next_row() {
                Ok(next) => next,
                Err(e) => {
                    // The file changed since it was validated: stop here, say so.
                    self.errors.push(e);
                    None
                }
            };
            world.journal.trace_row();
            self.feeds[t].tell_dropped(world);
            self.feeds[t].apply(world, t, row);
        }
        if let Some(at) = self.feeds[t].next_at() {
            world.after(at - now, Event::TraceRows(t));
        }
    }

    /// A replayed pod was evicted: its controller recreates it until the
    /// trace ends it.
    pub fn respawn(&mut self, world: &mut World<'_>, t: usize, id: usize) {
        let feed = &mut self.feeds[t];
        if feed.base.owner.is_none() {
            return;
        }
        let Some(p) = feed.pods.get_mut(&id) else { return };
        p.incarnations += 1;
        let name = format!("{}-{}", p.name, p.incarnations);
        world.create_pod(&p.template, name, Origin::Trace(t, id));
    }

    /// Observed usage of pod `id` of trace `t`, once a `usage` row gave one.
    pub fn usage(&self, t: usize, id: usize) -> Option<&Resources> {
        self.feeds[t].usage(id)
    }
}

/// One trace being replayed.
struct TraceFeed {
    rows: Rows,
    next: Option<Row>,
    start: StdDuration,
    base: PodTemplate,
    live: HashMap<String, usize>,
    pods: HashMap<usize, TracePod>,
    next_id: usize,
    /// Row placements merged with the trace's own, by the row's `Arc`.
    placements: HashMap<*const Placement, Arc<Placement>>,
    /// Bad rows the reader skipped that the journal has been told of.
    dropped_told: u64,
}

struct TracePod {
    name: String,
    template: PodTemplate,
    usage: Resources,
    incarnations: u32,
}

impl TraceFeed {
    fn open(
        kind: TraceKind,
        path: &Path,
        start: StdDuration,
        base: PodTemplate,
        skip_bad_rows: bool,
        gpu: GpuSharing,
    ) -> Result<Self, TraceError> {
        let mut rows = Rows::open(kind, path, start, skip_bad_rows, gpu)?;
        let next = rows.next_row()?;
        Ok(Self {
            rows,
            next,
            start,
            base,
            live: HashMap::new(),
            pods: HashMap::new(),
            next_id: 0,
            placements: HashMap::new(),
            dropped_told: 0,
        })
    }

    /// Tells the journal of the bad rows the reader skipped since last told
    /// (`--skip-bad-rows`): the report states how many it dropped.
    fn tell_dropped(&mut self, world: &mut World<'_>) {
        world.journal.trace_rows_dropped(self.rows.skipped - self.dropped_told);
        self.dropped_told = self.rows.skipped;
    }

    /// Simulated time of the next row, if any.
    fn next_at(&self) -> Option<StdDuration> {
        self.next.as_ref().map(|r| r.at.saturating_sub(self.start))
    }

    /// Observed usage of a replayed pod, once a `usage` row gave one.
    fn usage(&self, id: usize) -> Option<&Resources> {
        self.pods.get(&id).map(|p| &p.usage).filter(|u| **u != Resources::default())
    }

    /// The trace's placement with a row's on top.
    fn placement(&mut self, extra: &Arc<Placement>) -> Arc<Placement> {
        let base = &self.base.placement;
        self.placements
            .entry(Arc::as_ptr(extra))
            .or_insert_with(|| {
                let mut p = (**base).clone();
                p.node_selector.extend(extra.node_selector.clone());
                p.tolerations.extend(extra.tolerations.iter().cloned());
                p.required_node_affinity = match (base.required_node_affinity.is_empty(), &extra.required_node_affinity)
                {
                    (_, terms) if terms.is_empty() => p.required_node_affinity,
                    (true, terms) => terms.clone(),
                    // Both must hold: every pair of terms, their requirements together.
                    (false, terms) => base
                        .required_node_affinity
                        .iter()
                        .flat_map(|a| {
                            terms.iter().map(move |b| {
                                let mut t = a.clone();
                                t.match_expressions.extend(b.match_expressions.iter().cloned());
                                t.match_fields.extend(b.match_fields.iter().cloned());
                                t
                            })
                        })
                        .collect(),
                };
                Arc::new(p)
            })
            .clone()
    }

    /// One row of this feed (trace `t`) applied to the world.
    fn apply(&mut self, world: &mut World<'_>, t: usize, row: Row) {
        match row.kind {
            // A second start of a live pod was skipped as a bad row by the check.
            RowKind::Start if self.live.contains_key(&row.pod) => world.journal.trace_rows_dropped(1),
            RowKind::Start => {
                let id = self.next_id;
                self.next_id += 1;
                let mut requests = Resources::default();
                for (name, v) in &row.amounts {
                    requests.set(name, *v);
                }
                let mut template = self.base.clone();
                if let Some(extra) = &row.placement {
                    template.placement = self.placement(extra);
                }
                template.containers = vec![Container {
                    name: "main".into(),
                    requests: requests.clone(),
                    limits: Resources::default(),
                    allocated: None,
                    oom_kills: 0,
                    last_oom: None,
                }];
                requests.pods = 1;
                template.requests = requests;
                self.live.insert(row.pod.clone(), id);
                self.pods.insert(
                    id,
                    TracePod {
                        name: row.pod.clone(),
                        template: template.clone(),
                        usage: Resources::default(),
                        incarnations: 1,
                    },
                );
                world.create_pod(&template, row.pod, Origin::Trace(t, id));
            }
            // Usage or an end of a pod that never started: skipped by the check too.
            RowKind::Usage | RowKind::End if !self.live.contains_key(&row.pod) => world.journal.trace_rows_dropped(1),
            RowKind::Usage => {
                if let Some(p) = self.live.get(&row.pod).and_then(|id| self.pods.get_mut(id)) {
                    for (name, v) in &row.amounts {
                        p.usage.set(name, *v);
                    }
                }
            }
            RowKind::End => {
                let Some(id) = self.live.remove(&row.pod) else { return };
                self.pods.remove(&id);
                let uids: Vec<String> = world
                    .cluster
                    .pods_of(Origin::Trace(t, id))
                    .filter(|p| p.deletion.is_none())
                    .map(|p| p.uid.to_string())
                    .collect();
                for uid in uids {
                    world.delete_pod(&uid, None);
                }
            }
        }
    }
}
