//! The autoscaler's process as the simulation runs it: a decision pass after
//! changes its watches see (once the debounce has passed) and at least every
//! resync interval — or, for a peer on a fixed scan interval, every interval;
//! Heat polled every poll interval; restarts that lose what it kept in
//! memory. Each pass reads the world as the daemon's observers would and
//! acts on it through the simulated actuator.

use std::collections::BTreeMap;

use heatscaler_core::model::{Resources, Timestamp};
use heatscaler_core::planner::explain::{Explanation, PlacementExplanation};
use heatscaler_core::planner::placement::Observations;
use heatscaler_core::planner::time;

use super::actuator;
use super::{Autoscaler, PolicyKind};
use crate::report::TimelineEvent;
use crate::scenario::{DaemonModel, Scenario};
use crate::world::clock::Event;
use crate::world::{Owners, World};

/// Sees every decision pass: the world the autoscaler read (its snapshot
/// is `world.cluster.snap`) and the actions it decided, before they are
/// executed. The stability property checks its invariants here.
pub trait PassObserver {
    fn pass(&mut self, world: &World<'_>, actions: &[heatscaler_core::planner::Action]);
    /// heatscaler's explanation of the same pass (a peer's passes have
    /// none): why each node is kept or removed, what each pod's resize is.
    /// For `simulate --explain-at`; the invariants need only the actions.
    fn explained(
        &mut self,
        _world: &World<'_>,
        _explanation: &Explanation,
        _actions: &[heatscaler_core::planner::Action],
    ) {
    }
    /// The run is over.
    fn finished(&mut self, world: &World<'_>);
}

pub struct Daemon<'s> {
    autoscaler: Autoscaler,
    model: &'s DaemonModel,
    /// The instant of the next pass; a `Plan` event for another instant was
    /// superseded by an earlier pass.
    plan_due: Option<Timestamp>,
}

impl<'s> Daemon<'s> {
    pub fn new(kind: PolicyKind, sc: &'s Scenario) -> Self {
        Self { autoscaler: Autoscaler::new(kind, sc), model: &sc.daemon, plan_due: None }
    }

    /// Schedules the restarts, the first Heat poll and, for a loop on a
    /// fixed scan interval, the first pass.
    pub fn start(&mut self, world: &mut World<'_>) {
        for t in &self.model.restarts {
            world.after(t.get(), Event::Restart);
        }
        world.after(self.model.heat_poll_interval.get(), Event::HeatPoll);
        if self.autoscaler.scan_interval().is_some() {
            self.plan_due = Some(world.epoch());
            world.at(world.epoch(), Event::Plan);
        }
    }

    /// Whether a pass reads observed usage (gathered for it only then).
    pub fn reads_usage(&self) -> bool {
        self.autoscaler.reads_usage()
    }

    /// Whether the `Plan` event due now is the pass due.
    pub fn pass_due(&self, now: Timestamp) -> bool {
        self.plan_due == Some(now)
    }

    /// One decision pass, exactly as the daemon (or the peer's loop) makes
    /// it, its actions executed, and the next pass scheduled. Returns what
    /// the placement advisor made of it.
    pub fn pass(
        &mut self,
        world: &mut World<'_>,
        usage: Option<&BTreeMap<String, Resources>>,
        observations: Option<&Observations>,
        owners: &mut dyn Owners,
        observer: Option<&mut (dyn PassObserver + '_)>,
    ) -> Vec<PlacementExplanation> {
        world.cluster.map_members();
        let (actions, explanation) = self.autoscaler.decide(&world.cluster.snap, usage, observations, world.now());
        if let Some(o) = observer {
            o.pass(world, &actions);
            if let Some(e) = &explanation {
                o.explained(world, e, &actions);
            }
        }
        let placement = explanation.map(|e| e.placement).unwrap_or_default();
        world.journal.pass();
        for action in &actions {
            actuator::execute(world, action, owners);
        }
        let every = self.autoscaler.scan_interval().unwrap_or(self.model.resync_interval.get());
        let next = time::after_std(world.now(), every);
        self.plan_due = Some(next);
        world.at(next, Event::Plan);
        placement
    }

    /// Its watch saw a change: plan once the debounce has passed (a loop on
    /// a fixed scan interval ignores changes).
    pub fn saw_change(&mut self, world: &mut World<'_>) {
        if self.autoscaler.scan_interval().is_some() {
            return;
        }
        let want = time::after(world.now(), self.model.debounce);
        if self.plan_due.is_none_or(|due| want < due) {
            self.plan_due = Some(want);
            world.at(want, Event::Plan);
        }
    }

    /// Polls Heat: a change of any group wakes the loop.
    pub fn poll_heat(&mut self, world: &mut World<'_>) {
        let before = world.cluster.snap.groups.clone();
        for g in 0..world.heat.groups.len() {
            world.observe_group(g);
        }
        if world.cluster.snap.groups != before {
            world.wake_autoscaler();
        }
        world.after(self.model.heat_poll_interval.get(), Event::HeatPoll);
    }

    /// The process restarted: everything it kept in memory is gone.
    pub fn restart(&mut self, world: &mut World<'_>) {
        self.autoscaler.forget();
        world.record("heatscaler", TimelineEvent::DaemonRestarted);
        world.wake_autoscaler();
    }
}
