//! The stability invariants, checked on every decision pass (and over the
//! whole run at its end). Each is defined precisely in docs/testing.md
//! ("The stability property"); in short:
//!
//! 1. **No capacity a planned move needs is removed**: a pass that starts
//!    removing node N does not also recreate a pod (or leave pending the
//!    replacement of one recreated in the last 15 minutes) that fits on N and
//!    on no other Ready, schedulable node that is staying.
//! 2. **Evictions are bounded**: no replica (a pod and the pods that
//!    replaced it) is evicted more than [`MAX_EVICTIONS_PER_HOUR`] times in
//!    any hour.
//! 3. **No action is undone within its cooldown**: no removal of a group's
//!    node within `delay-after-add` of that group's scale-up; no replica
//!    resized (in place or by recreation) one way and back the other way on
//!    one resource within `min-update-interval`, unless the second is for an
//!    OOM kill.
//! 4. **No scale-up a resize made unnecessary in the same pass**: the pending
//!    pods a scale-up is for do not all fit on the Ready nodes once the
//!    pass's shrinking resizes are applied.
//! 5. **No oscillation cycle**: no group scales up, starts removing one of
//!    its nodes, and scales up again within [`CYCLE_WINDOW`] while the demand
//!    did not change (no replica target changed, no recommendation target
//!    moved by more than 10%).

use std::collections::BTreeMap;
use std::time::Duration;

use heatscaler_core::model::{Pod, PodKey, Resources, Snapshot, Timestamp};
use heatscaler_core::planner::Action;
use heatscaler_core::planner::action::ContainerResize;
use heatscaler_core::planner::explain::UpdateReason;
use heatscaler_core::planner::time::elapsed;

use crate::autoscaler::PassObserver;
use crate::report::TimelineEvent;
use crate::world::World;

pub const MAX_EVICTIONS_PER_HOUR: usize = 3;
pub const CYCLE_WINDOW: Duration = Duration::from_secs(3600);
/// A pending replacement of a pod recreated this recently is a planned move.
const MOVE_WINDOW: Duration = Duration::from_secs(15 * 60);
/// A recommendation target moving by more than this share is a demand change.
const DEMAND_CHANGE: f64 = 0.1;

pub struct Checker {
    delay_after_add: Duration,
    min_update_interval: Duration,
    pub violations: Vec<String>,
    /// Scale-ups and removals started, per group: (when, is a scale-up).
    node_level: BTreeMap<String, Vec<(Timestamp, bool)>>,
    /// Resizes per replica lineage: (when, resource, grew, for an OOM kill).
    updates: BTreeMap<u64, Vec<(Timestamp, &'static str, bool, bool)>>,
    /// When replicas were last recreated, by lineage.
    recreated: BTreeMap<u64, Timestamp>,
    /// Recommendation targets last seen, per VPA and container.
    targets: BTreeMap<(String, String), Resources>,
    /// Instants the demand changed.
    demand_changes: Vec<Timestamp>,
    pub passes: u64,
}

impl Checker {
    pub fn new(delay_after_add: Duration, min_update_interval: Duration) -> Self {
        Self {
            delay_after_add,
            min_update_interval,
            violations: Vec::new(),
            node_level: BTreeMap::new(),
            updates: BTreeMap::new(),
            recreated: BTreeMap::new(),
            targets: BTreeMap::new(),
            demand_changes: Vec::new(),
            passes: 0,
        }
    }

    fn violation(&mut self, now: Timestamp, epoch: Timestamp, what: String) {
        let at = elapsed(now, epoch).as_secs();
        self.violations.push(format!("at {}h{:02}m{:02}s: {what}", at / 3600, at / 60 % 60, at % 60));
    }
}

/// CPU, memory and a pod slot.
fn fits(need: &Resources, free: &Resources) -> bool {
    need.cpu_milli <= free.cpu_milli && need.memory <= free.memory && need.pods.max(1) <= free.pods
}

/// What each Ready node has free, by name, not counting the pods in `except`.
fn free_capacity(snap: &Snapshot, except: &[&str]) -> BTreeMap<String, Resources> {
    let mut free: BTreeMap<String, Resources> = snap
        .nodes
        .iter()
        .filter(|n| n.ready)
        .map(|n| {
            let mut a = n.allocatable.clone();
            if a.pods == 0 {
                a.pods = 110;
            }
            (n.name.clone(), a)
        })
        .collect();
    for p in &snap.pods {
        if p.is_terminal() || except.contains(&p.uid.as_str()) {
            continue;
        }
        if let Some(f) = p.node_name.as_ref().and_then(|n| free.get_mut(n)) {
            f.cpu_milli -= p.requests.cpu_milli;
            f.memory -= p.requests.memory;
            f.pods -= 1;
        }
    }
    free
}

/// A pod's requests with a resize applied.
fn resized(pod: &Pod, changes: &[ContainerResize]) -> Resources {
    let mut r = Resources { pods: 1, ..Resources::default() };
    for c in &pod.containers {
        match changes.iter().find(|x| x.container == c.name) {
            Some(x) => {
                r.cpu_milli += x.requests.cpu_milli;
                r.memory += x.requests.memory;
            }
            None => {
                r.cpu_milli += c.requests.cpu_milli;
                r.memory += c.requests.memory;
            }
        }
    }
    r
}

impl PassObserver for Checker {
    fn pass(&mut self, world: &World<'_>, actions: &[Action]) {
        self.passes += 1;
        let snap = &world.cluster.snap;
        let (now, epoch) = (world.now(), world.epoch());
        self.demand(snap, now);
        let removing: Vec<(&str, &str)> = actions
            .iter()
            .filter_map(|a| match a {
                Action::StartRemoval(s) => Some((s.node.as_str(), s.record.group.as_str())),
                _ => None,
            })
            .collect();

        // 1. Capacity a planned move needs.
        if !removing.is_empty() {
            let mut movers: Vec<(String, String, Resources)> = Vec::new();
            for a in actions {
                if let Action::RecreatePod(r) = a
                    && let Some(p) = world.cluster.pod(&r.uid)
                {
                    movers.push((p.uid.to_string(), p.name.to_string(), resized(p, &r.containers)));
                }
            }
            for p in snap.pods.iter().filter(|p| p.node_name.is_none() && p.deletion.is_none()) {
                let recent = world
                    .lineage(&p.uid)
                    .and_then(|l| self.recreated.get(&l))
                    .is_some_and(|t| elapsed(now, *t) <= MOVE_WINDOW);
                if recent {
                    movers.push((p.uid.to_string(), p.name.to_string(), p.requests.clone()));
                }
            }
            for (uid, name, need) in &movers {
                let free = free_capacity(snap, &[uid.as_str()]);
                let staying = |n: &str| {
                    !removing.iter().any(|(r, _)| *r == n)
                        && snap.nodes.iter().any(|x| x.name == n && !x.unschedulable && x.ready)
                };
                let elsewhere = free.iter().any(|(n, f)| staying(n) && fits(need, f));
                for (node, _) in &removing {
                    if !elsewhere && free.get(*node).is_some_and(|f| fits(need, f)) {
                        let what = format!(
                            "removal of {node} started while {name} (moving, cpu {}m, memory {}) fits only there",
                            need.cpu_milli, need.memory
                        );
                        self.violation(now, epoch, what);
                    }
                }
            }
        }

        // 3a. Removal within delay-after-add of the group's scale-up.
        for (node, group) in &removing {
            let last_up = self.node_level.get(*group).and_then(|v| v.iter().rev().find(|e| e.1).map(|e| e.0));
            if let Some(up) = last_up
                && elapsed(now, up) < self.delay_after_add
            {
                let what = format!(
                    "removal of {node} in {group} {}s after its scale-up (delay-after-add {}s)",
                    elapsed(now, up).as_secs(),
                    self.delay_after_add.as_secs()
                );
                self.violation(now, epoch, what);
            }
            self.node_level.entry(group.to_string()).or_default().push((now, false));
        }

        // 4. A scale-up the pass's shrinks made unnecessary.
        let shrinks: Vec<(&str, Resources)> = actions
            .iter()
            .filter_map(|a| match a {
                Action::ResizePod(r) => {
                    let mut freed = Resources::default();
                    for c in &r.containers {
                        freed.cpu_milli += (c.from.cpu_milli - c.requests.cpu_milli).max(0);
                        freed.memory += (c.from.memory - c.requests.memory).max(0);
                    }
                    Some((r.node.as_str(), freed))
                }
                _ => None,
            })
            .collect();
        for a in actions {
            let Action::ScaleUp(up) = a else { continue };
            if !shrinks.is_empty() && up.pods.len() == up.pod_count {
                let pending: Vec<&Pod> = up
                    .pods
                    .iter()
                    .filter_map(|k| snap.pods.iter().find(|p| &p.key() == k && p.node_name.is_none()))
                    .collect();
                if pending.len() == up.pods.len() && !pending.is_empty() {
                    let mut free = free_capacity(snap, &[]);
                    free.retain(|n, _| snap.nodes.iter().any(|x| x.name == *n && !x.unschedulable));
                    for (node, freed) in &shrinks {
                        if let Some(f) = free.get_mut(*node) {
                            f.cpu_milli += freed.cpu_milli;
                            f.memory += freed.memory;
                        }
                    }
                    let mut order = pending.clone();
                    order.sort_by_key(|p| std::cmp::Reverse(p.requests.cpu_milli));
                    let all_fit = order.iter().all(|p| {
                        let slot = free.values_mut().find(|f| fits(&p.requests, f));
                        slot.map(|f| {
                            f.cpu_milli -= p.requests.cpu_milli;
                            f.memory -= p.requests.memory;
                            f.pods -= 1;
                        })
                        .is_some()
                    });
                    if all_fit {
                        let list: Vec<String> = up.pods.iter().map(PodKey::to_string).collect();
                        let what = format!(
                            "scale-up of {} for {} while the same pass's shrinks make room for them",
                            up.group,
                            list.join(", ")
                        );
                        self.violation(now, epoch, what);
                    }
                }
            }
            self.node_level.entry(up.group.clone()).or_default().push((now, true));
        }

        // 3b. A replica resized one way and back within min-update-interval.
        for a in actions {
            let (uid, containers, reason) = match a {
                Action::ResizePod(r) => (&r.uid, &r.containers, &r.reason),
                Action::RecreatePod(r) => (&r.uid, &r.containers, &r.reason),
                _ => continue,
            };
            let Some(lineage) = world.lineage(uid) else { continue };
            if matches!(a, Action::RecreatePod(_)) {
                self.recreated.insert(lineage, now);
            }
            let oom = matches!(reason, UpdateReason::OomKilled { .. });
            let mut changes = Vec::new();
            for c in containers {
                for (resource, from, to) in
                    [("cpu", c.from.cpu_milli, c.requests.cpu_milli), ("memory", c.from.memory, c.requests.memory)]
                {
                    if from != to {
                        changes.push((resource, to > from));
                    }
                }
            }
            let history = self.updates.entry(lineage).or_default();
            let mut undone = Vec::new();
            for &(resource, grew) in &changes {
                let previous = history.iter().rev().find(|e| e.1 == resource);
                if let Some(&(t, _, before, _)) = previous
                    && before != grew
                    && !oom
                    && elapsed(now, t) < self.min_update_interval
                {
                    undone.push(format!(
                        "{} {resource} {} {}s after it was {} (min-update-interval {}s)",
                        world.cluster.pod(uid).map_or(uid.as_str(), |p| p.name.as_str()),
                        if grew { "grown" } else { "shrunk" },
                        elapsed(now, t).as_secs(),
                        if before { "grown" } else { "shrunk" },
                        self.min_update_interval.as_secs()
                    ));
                }
            }
            history.extend(changes.iter().map(|&(r, g)| (now, r, g, oom)));
            for what in undone {
                self.violation(now, epoch, what);
            }
        }
    }

    fn finished(&mut self, world: &World<'_>) {
        let epoch = world.epoch();
        // 2. Evictions per replica and hour.
        let mut by_lineage: BTreeMap<u64, Vec<Timestamp>> = BTreeMap::new();
        for (t, l) in world.eviction_log.iter().flatten() {
            by_lineage.entry(*l).or_default().push(*t);
        }
        for (lineage, times) in by_lineage {
            for (i, &t) in times.iter().enumerate() {
                let within = times[i..].iter().take_while(|&&u| elapsed(u, t) < Duration::from_secs(3600)).count();
                if within > MAX_EVICTIONS_PER_HOUR {
                    let what = format!("replica {lineage} evicted {within} times within the hour from here");
                    self.violation(t, epoch, what);
                    break;
                }
            }
        }
        // 5. Oscillation cycles, with replica changes as demand changes.
        for e in world.journal.timeline() {
            if matches!(e.event, TimelineEvent::Replicas { .. }) {
                self.demand_changes
                    .push(heatscaler_core::planner::time::after_std(epoch, Duration::from_secs_f64(e.at_secs)));
            }
        }
        self.demand_changes.sort();
        let node_level = std::mem::take(&mut self.node_level);
        for (group, events) in &node_level {
            for (i, &(t1, up1)) in events.iter().enumerate() {
                if !up1 {
                    continue;
                }
                let Some(j) = events[i + 1..].iter().position(|e| !e.1).map(|k| i + 1 + k) else { continue };
                let Some(t3) = events[j + 1..].iter().find(|e| e.1).map(|e| e.0) else { continue };
                let steady = !self.demand_changes.iter().any(|&d| d >= t1 && d <= t3);
                if steady && elapsed(t3, t1) <= CYCLE_WINDOW {
                    let what = format!(
                        "oscillation cycle in {group}: scale-up, removal started at +{}s, scale-up again at +{}s, demand unchanged",
                        elapsed(events[j].0, t1).as_secs(),
                        elapsed(t3, t1).as_secs()
                    );
                    self.violation(t1, epoch, what);
                }
            }
        }
        self.node_level = node_level;
    }
}

impl Checker {
    /// Notes a demand change when a recommendation target moved.
    fn demand(&mut self, snap: &Snapshot, now: Timestamp) {
        let mut changed = false;
        for v in &snap.vertical {
            for r in &v.recommendations {
                let key = (v.name.clone(), r.container_name.clone());
                let moved = |a: i64, b: i64| (a - b).abs() as f64 > DEMAND_CHANGE * (b.max(1) as f64);
                match self.targets.get(&key) {
                    Some(old) if !moved(r.target.cpu_milli, old.cpu_milli) && !moved(r.target.memory, old.memory) => {}
                    _ => {
                        changed = true;
                        self.targets.insert(key, r.target.clone());
                    }
                }
            }
        }
        if changed {
            self.demand_changes.push(now);
        }
    }

    /// How many oscillation cycles were found.
    pub fn cycles(&self) -> usize {
        self.violations.iter().filter(|v| v.contains("oscillation cycle")).count()
    }
}
