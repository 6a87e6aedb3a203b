//! The discrete-event engine: the composition root. It builds the world
//! (`world`) and the components that act on it — the autoscaler under test
//! (`autoscaler`: heatscaler's planner or a peer, run as its daemon runs,
//! with the simulated actuator), the scheduler model (`scheduler`), the
//! controllers (`controllers`), the demand (`generators`, `replay`) and the
//! recorder (`recorder`) — then pops events off the world's clock and hands
//! each to the component it belongs to. It is the only module that knows all
//! of them; they know the world, not each other.

use std::collections::BTreeMap;

use heatscaler_core::model::{NodeShape, Resources};
use heatscaler_core::policy::NodeTemplate;

use crate::autoscaler::{Daemon, PassObserver, PolicyKind, vpa_updater};
use crate::bound::BoundModel;
use crate::controllers::Controllers;
use crate::explain_at::{ExplainAt, ExplainedPass};
use crate::generators::Bursts;
use crate::mesh::CallGraph;
use crate::pod_usage::PodUsage;
use crate::progress::{Progress, Silent, Ticker};
use crate::recorder::Recorder;
use crate::replay::Replay;
use crate::report::{Report, Run, TimelineEvent};
use crate::scenario::Scenario;
use crate::scheduler;
use crate::trace::TraceError;
use crate::vpa::Vpa;
use crate::world::clock::Event;
use crate::world::cluster::Origin;
use crate::world::{Owners, World};

/// Runs a scenario with heatscaler only.
pub fn run(sc: &Scenario) -> Result<Report, TraceError> {
    compare(sc, &[PolicyKind::HeatscalerNoWebhook])
}

/// Runs a scenario once per policy — same demand, same seed, same
/// provisioning model — in parallel, and reports them side by side.
pub fn compare(sc: &Scenario, policies: &[PolicyKind]) -> Result<Report, TraceError> {
    compare_with_progress(sc, policies, &Silent)
}

/// [`compare`], telling `progress` how far each run has got (run `i` is
/// `policies[i]`).
pub fn compare_with_progress(
    sc: &Scenario,
    policies: &[PolicyKind],
    progress: &dyn Progress,
) -> Result<Report, TraceError> {
    let runs: Vec<Result<Run, TraceError>> = std::thread::scope(|scope| {
        let handles: Vec<_> = policies
            .iter()
            .enumerate()
            .map(|(i, &kind)| {
                scope.spawn(move || run_policy_with(sc, kind, Ticker::new(progress, i, sc.duration.get())))
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap_or_else(|panic| std::panic::resume_unwind(panic))).collect()
    });
    let runs: Vec<Run> = runs.into_iter().collect::<Result<_, _>>()?;
    Ok(Report {
        scenario: sc.name.clone(),
        description: sc.description.clone(),
        seed: sc.seed,
        duration_secs: sc.duration.get().as_secs_f64(),
        reference: Report::strongest_peer(&runs),
        runs,
    })
}

/// One policy's run of a scenario.
pub fn run_policy(sc: &Scenario, kind: PolicyKind) -> Result<Run, TraceError> {
    run_policy_with(sc, kind, Ticker::new(&Silent, 0, sc.duration.get()))
}

fn run_policy_with(sc: &Scenario, kind: PolicyKind, ticker: Ticker<'_>) -> Result<Run, TraceError> {
    run_inner(sc, kind, None, ticker)
}

/// One policy's run, with heatscaler's explanation of the first pass at or
/// after each of `at` (time since the start; none for a peer, which
/// explains nothing): `simulate --explain-at`.
pub fn run_explained(
    sc: &Scenario,
    kind: PolicyKind,
    at: &[std::time::Duration],
) -> Result<(Run, Vec<ExplainedPass>), TraceError> {
    let mut explain = ExplainAt::new(at);
    let run = run_inner(sc, kind, Some(&mut explain), Ticker::new(&Silent, 0, sc.duration.get()))?;
    Ok((run, explain.into_passes()))
}

/// One policy's run, `observer` shown every decision pass.
#[cfg(test)]
pub(crate) fn run_observed(
    sc: &Scenario,
    kind: PolicyKind,
    observer: &mut dyn PassObserver,
) -> Result<Run, TraceError> {
    run_inner(sc, kind, Some(observer), Ticker::new(&Silent, 0, sc.duration.get()))
}

fn run_inner(
    sc: &Scenario,
    kind: PolicyKind,
    observer: Option<&mut dyn PassObserver>,
    mut ticker: Ticker<'_>,
) -> Result<Run, TraceError> {
    let observed = observer.is_some();
    let mut engine = Engine::new(sc, kind, observer)?;
    if observed {
        engine.world.eviction_log = Some(Vec::new());
    }
    engine.run(&mut ticker);
    let pod_level = engine.vpa.is_some();
    let Engine { world, replay, recorder, observer, call_graph, .. } = engine;
    if let Some(e) = replay.into_error() {
        return Err(e);
    }
    if let Some(o) = observer {
        o.finished(&world);
    }
    let end = world.now();
    let label = if pod_level { kind.label_with_vpa() } else { kind.label() };
    let mut run = recorder.finish(world.journal, label, kind.name(), end);
    if !pod_level {
        run.pod_level = None;
    }
    run.call_graph = call_graph.map(|g| g.stats());
    Ok(run)
}

/// One run: the world and every component acting on it.
struct Engine<'s, 'o> {
    sc: &'s Scenario,
    kind: PolicyKind,
    observer: Option<&'o mut dyn PassObserver>,
    /// The pod level, for scenarios with VPA objects: usage and the VPA objects.
    usage: PodUsage,
    vpa: Option<Vpa>,
    world: World<'s>,
    daemon: Daemon<'s>,
    controllers: Controllers<'s>,
    bursts: Bursts<'s>,
    replay: Replay,
    recorder: Recorder,
    /// The microservice call graph, for scenarios with one.
    call_graph: Option<CallGraph>,
}

impl<'s, 'o> Engine<'s, 'o> {
    fn new(sc: &'s Scenario, kind: PolicyKind, observer: Option<&'o mut dyn PassObserver>) -> Result<Self, TraceError> {
        let replay = Replay::open(sc)?;
        let world = World::new(sc);
        let usage = PodUsage::new(sc);
        let vpa = usage.any().then(|| Vpa::new(sc, &kind.recommender(sc), kind.admission(sc)));
        let mut engine = Self {
            sc,
            kind,
            observer,
            usage,
            vpa,
            recorder: Recorder::new(world.epoch(), BoundModel::new(sc)),
            world,
            daemon: Daemon::new(kind, sc),
            controllers: Controllers::new(sc),
            bursts: Bursts::new(sc),
            replay,
            call_graph: sc
                .call_graph
                .as_ref()
                .map(|g| CallGraph::new(g, sc.call_graph_first_workload, sc.seed, sc.duration.get())),
        };
        engine.build();
        Ok(engine)
    }

    /// The world at the start. The order is part of the result: events due
    /// at one instant run in the order they were scheduled.
    fn build(&mut self) {
        let sc = self.sc;
        for n in &sc.nodes {
            let template =
                NodeTemplate { allocatable: n.allocatable.clone(), labels: n.labels.clone(), taints: n.taints.clone() };
            self.register_node(&n.name, &template.shape());
        }
        // Groups sized from the demand at the start see the trace rows due then first.
        let auto = sc.node_groups.iter().any(|g| g.initial_auto);
        if auto {
            self.replay.start_now(&mut self.world);
        }
        let sizes = self.initial_sizes();
        for (spec, size) in sc.node_groups.iter().zip(sizes) {
            let members = self.world.add_group(spec, size);
            let g = self.world.heat.groups.len() - 1;
            let shape = self.world.heat.groups[g].shape.clone();
            for id in members {
                self.register_node(&id, &shape);
            }
            self.world.observe_group(g);
            self.world.record(&spec.name, TimelineEvent::Initial { size });
        }
        if let Some(vpa) = &mut self.vpa {
            vpa.start(&mut self.world);
            self.usage.start(&mut self.world, sc);
            self.world.after(self.sc.metrics_interval.get(), Event::Metrics);
        }
        self.controllers.start(&mut self.world);
        self.bursts.start(&mut self.world);
        // (Already scheduled by `start_now` when the start's rows were read above.)
        if !auto {
            self.replay.start(&mut self.world);
        }
        self.daemon.start(&mut self.world);
        let epoch = self.world.epoch();
        self.world.at(epoch, Event::Sample);
        if let Some(g) = &self.call_graph {
            self.world.after(g.window(), Event::CallGraph);
        }
    }

    /// Members per group at the start: `initial-size`, or for groups sized
    /// from the demand, the lower bound's cheapest mix for the pods present
    /// now, rounded up — the same for every policy.
    fn initial_sizes(&mut self) -> Vec<u32> {
        let sc = self.sc;
        if !sc.node_groups.iter().any(|g| g.initial_auto) {
            return sc.node_groups.iter().map(|g| g.initial_size).collect();
        }
        let mix = self.recorder.initial_mix(&self.world.cluster.snap.pods);
        sc.node_groups
            .iter()
            .zip(mix)
            .map(|(g, x)| match g.initial_auto {
                true => ((x - 1e-6).ceil().max(0.0) as u32).clamp(g.min_size, g.max_size),
                false => g.initial_size,
            })
            .collect()
    }

    /// A Ready node registers, and the DaemonSets place their pods on it.
    fn register_node(&mut self, name: &str, shape: &NodeShape) {
        self.world.register_node(name, shape);
        self.controllers.node_registered(&mut self.world, name);
    }

    fn run(&mut self, ticker: &mut Ticker<'_>) {
        while let Some((at, event)) = self.world.next_event() {
            self.recorder.advance(at, &mut self.world);
            self.world.advance(at);
            ticker.at(self.world.elapsed());
            self.handle(event);
            if self.world.take_cluster_changed() {
                let bound = scheduler::schedule(&mut self.world);
                self.bursts.started(&mut self.world, &bound);
            }
            if self.world.take_wake() {
                self.daemon.saw_change(&mut self.world);
            }
        }
        let end = self.world.end();
        self.recorder.advance(end, &mut self.world);
        self.world.advance(end);
        ticker.finished();
    }

    fn handle(&mut self, event: Event) {
        let world = &mut self.world;
        match event {
            Event::Plan => {
                if self.daemon.pass_due(world.now()) {
                    self.pass();
                }
            }
            Event::HeatPoll => self.daemon.poll_heat(world),
            Event::Restart => self.daemon.restart(world),
            Event::HeatDone { group, update } => world.stack_update_done(group, update),
            Event::Boot { group, member } => {
                if world.server_booted(group, &member) {
                    self.controllers.node_registered(world, &member);
                }
            }
            Event::PodGone { uid } => world.pod_gone(&uid),
            Event::Workload(w) => self.controllers.workload_tick(world, w),
            Event::Arrive(i) => self.controllers.arrive(world, i),
            Event::Depart(i) => self.controllers.depart(world, i),
            Event::Burst(i) => self.bursts.burst(world, i),
            Event::JobDone { job, uid } => self.bursts.job_done(world, job, &uid),
            Event::TraceRows(t) => self.replay.rows_due(world, t),
            Event::Metrics => self.metrics_tick(),
            Event::CallGraph => self.call_graph_tick(),
            Event::Sample => {
                self.recorder.sample(world);
                world.after(self.sc.sample_interval.get(), Event::Sample);
            }
        }
    }

    /// A decision pass of the autoscaler, on the PDBs and usage it would
    /// read; the owners of the pods it evicts replace them.
    fn pass(&mut self) {
        self.controllers.refresh_pdbs(&mut self.world);
        let usage = self.daemon.reads_usage().then(|| self.observed_usage());
        let mut owners =
            PodOwners { controllers: &mut self.controllers, bursts: &mut self.bursts, replay: &mut self.replay };
        let observer = self.observer.as_deref_mut();
        let observations = self.call_graph.as_ref().and_then(CallGraph::observations);
        let placement = self.daemon.pass(&mut self.world, usage.as_ref(), observations, &mut owners, observer);
        if let Some(g) = &mut self.call_graph {
            g.saw_pass(&placement);
        }
    }

    /// A window of the call graph: the mesh's metrics over where the pods
    /// run now, and a step of each rollout of a changed template.
    fn call_graph_tick(&mut self) {
        let Some(g) = &mut self.call_graph else { return };
        g.tick(&self.world);
        g.rollout_restarts += self.controllers.roll(&mut self.world);
        let window = g.window();
        self.world.after(window, Event::CallGraph);
    }

    /// A metrics tick of the pod level: usage sampled (OOM kills), the
    /// recommender fed and the objects' status written, deferred resizes
    /// retried by their kubelets, and — for the peers — VPA's updater.
    fn metrics_tick(&mut self) {
        let Some(vpa) = &mut self.vpa else { return };
        let world = &mut self.world;
        let samples = self.usage.tick(world);
        vpa.observe(world, &samples);
        world.retry_resizes();
        if self.kind.runs_vpa_updater() {
            let mut owners =
                PodOwners { controllers: &mut self.controllers, bursts: &mut self.bursts, replay: &mut self.replay };
            vpa_updater::run(world, &mut owners);
        }
        world.after(self.sc.metrics_interval.get(), Event::Metrics);
    }

    /// Observed usage per node, as the metrics the daemon reads would show
    /// it: each workload's usage spread over its running pods, replayed pods'
    /// usage rows; other pods use what they request.
    fn observed_usage(&self) -> BTreeMap<String, Resources> {
        let world = &self.world;
        let workloads = self.controllers.usage(world);
        let mut usage: BTreeMap<String, Resources> =
            world.cluster.snap.nodes.iter().map(|n| (n.name.clone(), Resources::default())).collect();
        for pod in &world.cluster.snap.pods {
            let Some(node) = &pod.node_name else { continue };
            let used = match world.cluster.origin.get(pod.uid.as_str()).copied() {
                Some(Origin::Workload(_)) if self.usage.last(&pod.uid).is_some() => {
                    self.usage.last(&pod.uid).cloned().unwrap_or_default()
                }
                Some(Origin::Workload(w)) => workloads[w].per_pod(&pod.requests),
                Some(Origin::Trace(t, id)) => {
                    self.replay.usage(t, id).map_or(Resources::new(pod.requests.cpu_milli, pod.requests.memory), |u| {
                        Resources::new(u.cpu_milli, u.memory)
                    })
                }
                _ => Resources::new(pod.requests.cpu_milli, pod.requests.memory),
            };
            *usage.entry(node.clone()).or_default() += &used;
        }
        usage
    }
}

/// Every component that owns pods, for the actuator to tell of evictions.
struct PodOwners<'a, 's> {
    controllers: &'a mut Controllers<'s>,
    bursts: &'a mut Bursts<'s>,
    replay: &'a mut Replay,
}

impl Owners for PodOwners<'_, '_> {
    fn evicted(&mut self, world: &mut World<'_>, origin: Origin) {
        match origin {
            Origin::Workload(_) | Origin::OneOff(_) | Origin::DaemonSet(_) => self.controllers.replace(world, origin),
            Origin::Job(j) => self.bursts.respawn(world, j),
            Origin::Trace(t, id) => self.replay.respawn(world, t, id),
        }
    }

    fn change_template(
        &mut self,
        world: &mut World<'_>,
        workload: &heatscaler_core::model::WorkloadRef,
        term: &heatscaler_core::model::PodAffinityTerm,
        weight: Option<i32>,
    ) -> Result<bool, String> {
        self.controllers.change_template(world, workload, term, weight)
    }
}
