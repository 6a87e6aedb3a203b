//! The discrete-event engine: a simulated clock, a queue of timed events, and
//! the daemon's loop around the real planner — a pass after changes (once the
//! debounce has passed) and at least every resync interval. Nothing sleeps.

use std::cmp::{Ordering, Reverse};
use std::collections::BinaryHeap;
use std::time::Duration as StdDuration;

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use heatscaler_core::model::{LabelSelector, NodeShape, Pdb, Timestamp};
use heatscaler_core::planner::{self, Input};
use heatscaler_core::policy::NodeTemplate;

use super::autoscaler::{Autoscaler, PolicyKind};
use super::bound::BoundModel;
use super::cluster::{Cluster, Origin, PdbRule, PodTemplate};
use super::generators::{BurstProcess, Job, boot_stream};
use super::report::{Recorder, Report, Run, TimelineEvent};
use super::scenario::{Scenario, resources};
use super::simulated_heat::SimGroup;
use super::trace::{TraceError, TraceFeed};
use super::workloads::WorkloadState;

#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) enum Event {
    Plan,
    HeatPoll,
    HeatDone { group: usize, update: u64 },
    Boot { group: usize, member: String },
    PodGone { uid: String },
    Workload(usize),
    Arrive(usize),
    Depart(usize),
    Burst(usize),
    JobDone { job: usize, uid: String },
    TraceRows(usize),
    Sample,
    Restart,
}

#[derive(Debug, PartialEq, Eq)]
struct Scheduled {
    at: Timestamp,
    seq: u64,
    event: Event,
}

impl Ord for Scheduled {
    fn cmp(&self, other: &Self) -> Ordering {
        (self.at, self.seq).cmp(&(other.at, other.seq))
    }
}

impl PartialOrd for Scheduled {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

/// The start of every simulation (Kubernetes 1.3 was released in July 2016).
pub(super) fn epoch() -> Timestamp {
    "2016-07-01T00:00:00Z".parse().expect("valid timestamp")
}

pub struct Sim<'s> {
    pub(super) sc: &'s Scenario,
    pub(super) epoch: Timestamp,
    pub(super) now: Timestamp,
    end: Timestamp,
    queue: BinaryHeap<Reverse<Scheduled>>,
    seq: u64,
    pub(super) cluster: Cluster,
    pub(super) workloads: Vec<WorkloadState>,
    pub(super) oneoffs: Vec<PodTemplate>,
    daemonsets: Vec<PodTemplate>,
    pdb_rules: Vec<PdbRule>,
    pub(super) bursts: Vec<BurstProcess>,
    pub(super) jobs: Vec<Job>,
    pub(super) traces: Vec<TraceFeed>,
    /// A trace that could not be read to its end (it changed after validation).
    pub(super) trace_errors: Vec<TraceError>,
    autoscaler: Autoscaler,
    pub(super) rng: ChaCha8Rng,
    plan_due: Option<Timestamp>,
    /// Something changed that the scheduler must look at (pods or nodes).
    pub(super) dirty: bool,
    /// Something changed that calls for a decision soon: a pod found
    /// unschedulable, a node added, changed or gone, a pod gone from a
    /// cordoned node (a drain progressing), Heat's state, or the daemon's own
    /// action. Other changes (pods created, bound, deleted elsewhere) wait for
    /// the resync: no decision they feed is urgent (scale-down waits for
    /// unneeded-time anyway).
    pub(super) wake: bool,
    next_update: u64,
    pub(super) rec: Recorder,
}

/// Runs a scenario with heatscaler only.
pub fn run(sc: &Scenario) -> Result<Report, TraceError> {
    compare(sc, &[PolicyKind::Heatscaler])
}

/// Runs a scenario once per policy — same demand, same seed, same
/// provisioning model — in parallel, and reports them side by side.
pub fn compare(sc: &Scenario, policies: &[PolicyKind]) -> Result<Report, TraceError> {
    let runs: Vec<Result<Run, TraceError>> = std::thread::scope(|scope| {
        let handles: Vec<_> = policies.iter().map(|&kind| scope.spawn(move || run_policy(sc, kind))).collect();
        handles.into_iter().map(|h| h.join().unwrap_or_else(|panic| std::panic::resume_unwind(panic))).collect()
    });
    Ok(Report {
        scenario: sc.name.clone(),
        description: sc.description.clone(),
        seed: sc.seed,
        duration_secs: sc.duration.get().as_secs_f64(),
        runs: runs.into_iter().collect::<Result<_, _>>()?,
    })
}

/// One policy's run of a scenario.
pub fn run_policy(sc: &Scenario, kind: PolicyKind) -> Result<Run, TraceError> {
    let mut sim = Sim::new(sc, kind)?;
    sim.run();
    if let Some(e) = sim.trace_errors.into_iter().next() {
        return Err(e);
    }
    Ok(sim.rec.finish(kind.label(), kind.name(), sim.now))
}

impl<'s> Sim<'s> {
    fn new(sc: &'s Scenario, kind: PolicyKind) -> Result<Self, TraceError> {
        let epoch = epoch();
        let mut traces = Vec::new();
        for t in &sc.traces {
            let base = PodTemplate::from_spec(&t.pod_spec(), &t.namespace, &t.name, t.controller());
            traces.push(TraceFeed::open(t.kind, &t.path(&sc.base_dir), t.start.get(), base, t.skip_bad_rows)?);
        }
        let mut sim = Self {
            sc,
            epoch,
            now: epoch,
            end: planner::time::after(epoch, sc.duration),
            queue: BinaryHeap::new(),
            seq: 0,
            cluster: Cluster::default(),
            workloads: Vec::new(),
            oneoffs: Vec::new(),
            daemonsets: Vec::new(),
            pdb_rules: Vec::new(),
            bursts: sc.bursts.iter().enumerate().map(|(i, b)| BurstProcess::new(b, i, sc.seed)).collect(),
            jobs: Vec::new(),
            traces,
            trace_errors: Vec::new(),
            autoscaler: Autoscaler::new(kind, sc),
            rng: ChaCha8Rng::seed_from_u64(sc.seed),
            plan_due: None,
            dirty: true,
            wake: true,
            next_update: 0,
            rec: Recorder::new(epoch, BoundModel::new(sc)),
        };
        sim.build();
        Ok(sim)
    }

    /// Simulated time since the start.
    pub(super) fn elapsed_since_start(&self) -> StdDuration {
        planner::time::elapsed(self.now, self.epoch)
    }

    fn build(&mut self) {
        let sc = self.sc;
        self.daemonsets = sc
            .daemonsets
            .iter()
            .map(|d| PodTemplate::daemonset(&d.name, &d.namespace, resources(&d.requests), d.node_selector.clone()))
            .collect();
        for n in &sc.nodes {
            let template =
                NodeTemplate { allocatable: n.allocatable.clone(), labels: n.labels.clone(), taints: n.taints.clone() };
            self.add_node(&n.name, &template.shape());
        }
        // Groups sized from the demand at the start see the trace rows due then first.
        let auto = sc.node_groups.iter().any(|g| g.initial_auto);
        if auto {
            for t in 0..self.traces.len() {
                self.trace_rows(t);
            }
        }
        let sizes = self.initial_sizes();
        for (spec, size) in sc.node_groups.iter().zip(sizes) {
            let mut group = SimGroup::new(spec, spec.shape.shape());
            let shape = group.shape.clone();
            let members: Vec<String> = (0..size).map(|_| group.add_running(self.epoch)).collect();
            self.cluster.heat.push(group);
            for id in members {
                self.add_node(&id, &shape);
            }
            let g = self.cluster.heat.len() - 1;
            self.cluster.observe_group(g);
            self.rec.event(self.now, &spec.name, TimelineEvent::Initial { size });
        }
        for (w, spec) in sc.workloads.iter().enumerate() {
            let state = WorkloadState::new(spec);
            if let Some(pdb) = &spec.pdb {
                self.cluster.add_pdb(Pdb {
                    namespace: spec.namespace.clone(),
                    name: spec.name.clone(),
                    selector: LabelSelector { match_labels: state.template.labels.clone(), ..LabelSelector::default() },
                    disruptions_allowed: 0,
                });
                self.pdb_rules.push(match (pdb.min_available, pdb.max_unavailable) {
                    (Some(n), _) => PdbRule::MinAvailable(n),
                    (None, n) => PdbRule::MaxUnavailable(n.unwrap_or(0)),
                });
            }
            self.workloads.push(state);
            self.at(self.epoch, Event::Workload(w));
        }
        for (i, o) in sc.pods.iter().enumerate() {
            self.oneoffs.push(PodTemplate::from_spec(&o.pod, &o.namespace, &o.name, o.controller.as_deref()));
            self.after(o.arrival.get(), Event::Arrive(i));
            if let Some(d) = o.departure {
                self.after(d.get(), Event::Depart(i));
            }
        }
        self.start_bursts();
        // (Already scheduled by `trace_rows` when the start's rows were read above.)
        for t in (0..self.traces.len()).filter(|_| !auto) {
            if let Some(at) = self.traces[t].next_at() {
                self.after(at, Event::TraceRows(t));
            }
        }
        for t in &sc.daemon.restarts {
            self.after(t.get(), Event::Restart);
        }
        self.after(sc.daemon.heat_poll_interval.get(), Event::HeatPoll);
        if self.autoscaler.scan_interval().is_some() {
            self.plan_due = Some(self.epoch);
            self.at(self.epoch, Event::Plan);
        }
        self.at(self.epoch, Event::Sample);
    }

    /// Members per group at the start: `initial-size`, or for groups sized
    /// from the demand, the lower bound's cheapest mix for the pods present
    /// now, rounded up — the same for every policy.
    fn initial_sizes(&mut self) -> Vec<u32> {
        let sc = self.sc;
        if !sc.node_groups.iter().any(|g| g.initial_auto) {
            return sc.node_groups.iter().map(|g| g.initial_size).collect();
        }
        let mix = self.rec.initial_mix(&self.cluster.snap.pods);
        sc.node_groups
            .iter()
            .zip(mix)
            .map(|(g, x)| match g.initial_auto {
                true => ((x - 1e-6).ceil().max(0.0) as u32).clamp(g.min_size, g.max_size),
                false => g.initial_size,
            })
            .collect()
    }

    /// Adds a Ready node and its DaemonSet pods.
    pub(super) fn add_node(&mut self, name: &str, shape: &NodeShape) {
        self.cluster.add_node(name, shape, self.now);
        let labels = self.cluster.node(name).map(|n| n.labels.clone()).unwrap_or_default();
        for (d, template) in self.daemonsets.clone().iter().enumerate() {
            if template.placement.node_selector.iter().all(|(k, v)| labels.get(k) == Some(v)) {
                let pod_name = format!("{}-{name}", self.sc.daemonsets[d].name);
                let uid = self.cluster.add_pod(template, pod_name, self.now, Origin::DaemonSet(d));
                if let Some(p) = self.cluster.pod_mut(&uid) {
                    p.node_name = Some(name.to_string());
                    p.phase = heatscaler_core::model::PodPhase::Running;
                }
            }
        }
        self.dirty = true;
        self.wake = true;
    }

    pub(super) fn at(&mut self, at: Timestamp, event: Event) {
        self.seq += 1;
        self.queue.push(Reverse(Scheduled { at, seq: self.seq, event }));
    }

    pub(super) fn after(&mut self, d: StdDuration, event: Event) {
        self.at(planner::time::after_std(self.now, d), event);
    }

    pub(super) fn new_update_id(&mut self) -> u64 {
        self.next_update += 1;
        self.next_update
    }

    /// The daemon's watch saw a change: plan once the debounce has passed
    /// (an autoscaler on a fixed scan interval ignores changes).
    fn request_plan(&mut self) {
        if self.autoscaler.scan_interval().is_some() {
            return;
        }
        let want = planner::time::after(self.now, self.sc.daemon.debounce);
        if self.plan_due.is_none_or(|due| want < due) {
            self.plan_due = Some(want);
            self.at(want, Event::Plan);
        }
    }

    fn run(&mut self) {
        while let Some(Reverse(next)) = self.queue.pop() {
            if next.at > self.end {
                break;
            }
            self.rec.advance(next.at, &mut self.cluster);
            self.now = next.at;
            self.handle(next.event);
            if self.dirty {
                self.dirty = false;
                self.schedule_pods();
            }
            if self.wake {
                self.wake = false;
                self.request_plan();
            }
        }
        self.rec.advance(self.end, &mut self.cluster);
        self.now = self.end;
    }

    fn handle(&mut self, event: Event) {
        match event {
            Event::Plan => {
                if self.plan_due != Some(self.now) {
                    return; // superseded by an earlier pass
                }
                self.pass();
                let every = self.autoscaler.scan_interval().unwrap_or(self.sc.daemon.resync_interval.get());
                let next = planner::time::after_std(self.now, every);
                self.plan_due = Some(next);
                self.at(next, Event::Plan);
            }
            Event::HeatPoll => {
                let before = self.cluster.snap.groups.clone();
                for g in 0..self.cluster.heat.len() {
                    self.cluster.observe_group(g);
                }
                if self.cluster.snap.groups != before {
                    self.wake = true;
                }
                self.after(self.sc.daemon.heat_poll_interval.get(), Event::HeatPoll);
            }
            Event::HeatDone { group, update } => self.heat_done(group, update),
            Event::Boot { group, member } => self.boot(group, &member),
            Event::PodGone { uid } => {
                if let Some(pod) = self.cluster.remove_pod(&uid) {
                    self.rec.pod_gone(&uid);
                    self.dirty = true;
                    if pod.node_name.as_deref().and_then(|n| self.cluster.node(n)).is_some_and(|n| n.unschedulable) {
                        self.wake = true;
                    }
                }
            }
            Event::Workload(w) => self.workload_tick(w),
            Event::Arrive(i) => self.arrive(i),
            Event::Depart(i) => self.depart(i),
            Event::Burst(i) => self.burst(i),
            Event::JobDone { job, uid } => self.job_done(job, &uid),
            Event::TraceRows(t) => self.trace_rows(t),
            Event::Sample => {
                self.rec.sample(self.now, &mut self.cluster);
                self.after(self.sc.sample_interval.get(), Event::Sample);
            }
            Event::Restart => {
                self.autoscaler.forget();
                self.rec.event(self.now, "heatscaler", TimelineEvent::DaemonRestarted);
                self.wake = true;
            }
        }
    }

    /// One decision pass, exactly as the daemon (or the baseline's loop) makes it.
    fn pass(&mut self) {
        self.cluster.map_members();
        let expected: std::collections::BTreeMap<String, u32> =
            self.workloads.iter().map(|w| (w.name.clone(), w.target)).collect();
        self.cluster.refresh_pdbs(&|name| expected.get(name).copied(), &self.pdb_rules);
        let usage = self.autoscaler.reads_usage().then(|| self.node_usage());
        let actions = match &mut self.autoscaler {
            Autoscaler::Heatscaler { policy, memory } => {
                let plan = planner::plan(
                    &Input { snapshot: &self.cluster.snap, usage: usage.as_ref(), memory, now: self.now },
                    policy,
                );
                *memory = plan.memory;
                plan.actions
            }
            Autoscaler::CaDefaults(ca) => ca.decide(&self.cluster.snap, self.now),
        };
        self.rec.passes += 1;
        for action in &actions {
            self.execute(action);
        }
    }

    fn heat_done(&mut self, g: usize, update: u64) {
        let Some(result) = self.cluster.heat[g].finish_update(update) else { return };
        let name = self.cluster.heat[g].name.clone();
        for member in result.created {
            let index = self.cluster.heat[g].index_of(&member).unwrap_or(0);
            let boot = self.sc.provisioning.boot.sample(&mut boot_stream(self.sc.seed, g, index));
            self.after(boot, Event::Boot { group: g, member });
        }
        for member in &result.failed {
            self.rec.event(self.now, &name, TimelineEvent::CreateFailed { member: member.clone() });
        }
        for member in &result.deleted {
            // The server is gone: its node stops reporting.
            if let Some(node) = self.cluster.node_mut(member) {
                node.ready = false;
                self.dirty = true;
                self.wake = true;
            }
        }
        if !result.deleted.is_empty() {
            self.rec.event(self.now, &name, TimelineEvent::MembersDeleted { members: result.deleted });
        }
    }

    fn boot(&mut self, g: usize, member: &str) {
        let group = &self.cluster.heat[g];
        if !group.members.iter().any(|m| m.id == member && m.status == heatscaler_core::model::MemberStatus::Complete) {
            return; // removed while booting
        }
        let (name, shape) = (group.name.clone(), group.shape.clone());
        self.add_node(member, &shape);
        let ready = self
            .cluster
            .snap
            .nodes
            .iter()
            .filter(|n| n.ready && self.cluster.heat[g].members.iter().any(|m| m.id == n.name))
            .count();
        self.rec.event(self.now, &name, TimelineEvent::MinionReady { node: member.to_string(), ready: ready as u32 });
    }
}
