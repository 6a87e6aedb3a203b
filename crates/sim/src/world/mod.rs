//! The simulated world every component acts on: the clock and its queue of
//! events, the Kubernetes API's objects ([`cluster`]), Heat's groups with
//! their update and boot times ([`heat`]), and the [`journal`] of what
//! happened. Components own their own state (the autoscaler under test, the
//! controllers, the demand generators, the recorder; `engine` wires them)
//! and change the world only through the methods here and those of its
//! parts, which keep its indexes and change log true.

pub mod clock;
pub mod cluster;
pub mod heat;
pub mod journal;
pub mod kubelet;
pub mod pod_meter;

use std::time::Duration as StdDuration;

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use heatscaler_core::model::{MemberStatus, NodeShape, Timestamp};
use heatscaler_core::planner::time;

use crate::report::TimelineEvent;
use crate::scenario::{GroupSpec, ProvisioningModel, Scenario};
use crate::streams::boot_stream;

use clock::{Clock, Event};
use cluster::{Cluster, Origin, PodTemplate};
use heat::Heat;
use journal::Journal;

/// The components that own pods (their controllers), told at once when one
/// of their pods is evicted — as their watch would tell them — so they can
/// replace it. When matters: a replacement created mid-pass takes its place
/// in the cluster's pod list before the pass's later actions remove pods.
pub trait Owners {
    fn evicted(&mut self, world: &mut World<'_>, origin: Origin);

    /// A workload's template gains (`weight`) or loses (`None`) a preferred
    /// pod affinity term; `Ok(false)`: it already was so. Its controller
    /// rolls the change out.
    fn change_template(
        &mut self,
        _world: &mut World<'_>,
        workload: &heatscaler_core::model::WorkloadRef,
        _term: &heatscaler_core::model::PodAffinityTerm,
        _weight: Option<i32>,
    ) -> Result<bool, String> {
        Err(format!("no controller of {workload} changes templates"))
    }
}

/// What the eviction API answered.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Eviction {
    Evicted,
    /// 429: a PodDisruptionBudget allows no disruption now.
    Refused,
    /// 404: the pod is gone or already terminating.
    Gone,
}

pub struct World<'s> {
    clock: Clock,
    pub cluster: Cluster,
    pub heat: Heat,
    pub journal: Journal,
    provisioning: &'s ProvisioningModel,
    seed: u64,
    /// The world's own draws (stack update and pod termination times); they
    /// follow what the policy did, unlike the demand's.
    rng: ChaCha8Rng,
    /// Something changed that the scheduler must look at (pods or nodes).
    cluster_changed: bool,
    /// Every eviction (when, the replica's lineage), kept when asked for
    /// (the stability property bounds evictions per replica and hour).
    pub eviction_log: Option<Vec<(Timestamp, u64)>>,
    /// What the kubelets report of each bound pod's containers, by uid.
    kubelet: rustc_hash::FxHashMap<String, kubelet::ContainerRun>,
    /// A replica and its replacements share a lineage: by uid.
    lineage: rustc_hash::FxHashMap<String, u64>,
    next_lineage: u64,
    /// The lineage the next pod created continues (set while an evicted
    /// pod's owner replaces it).
    inherit: Option<u64>,
    /// Something changed that calls for a decision soon: a pod found
    /// unschedulable, a node added, changed or gone, a pod gone from a
    /// cordoned node (a drain progressing), Heat's state, or the daemon's own
    /// action. Other changes (pods created, bound, deleted elsewhere) wait for
    /// the resync: no decision they feed is urgent (scale-down waits for
    /// unneeded-time anyway).
    wake: bool,
}

impl<'s> World<'s> {
    /// An empty world at the epoch, running for the scenario's duration.
    pub fn new(sc: &'s Scenario) -> Self {
        let epoch = clock::epoch();
        Self {
            clock: Clock::new(epoch, time::after(epoch, sc.duration)),
            cluster: Cluster::default(),
            heat: Heat::default(),
            journal: Journal::new(epoch),
            provisioning: &sc.provisioning,
            seed: sc.seed,
            rng: ChaCha8Rng::seed_from_u64(sc.seed),
            cluster_changed: true,
            wake: true,
            eviction_log: None,
            kubelet: Default::default(),
            lineage: Default::default(),
            next_lineage: 0,
            inherit: None,
        }
    }

    pub fn now(&self) -> Timestamp {
        self.clock.now()
    }

    pub fn epoch(&self) -> Timestamp {
        self.clock.epoch()
    }

    pub fn end(&self) -> Timestamp {
        self.clock.end()
    }

    /// Simulated time since the start.
    pub fn elapsed(&self) -> StdDuration {
        self.clock.elapsed()
    }

    pub fn at(&mut self, at: Timestamp, event: Event) {
        self.clock.at(at, event);
    }

    pub fn after(&mut self, d: StdDuration, event: Event) {
        self.clock.after(d, event);
    }

    /// The next event and its instant, unless the run ends first.
    pub fn next_event(&mut self) -> Option<(Timestamp, Event)> {
        self.clock.next()
    }

    pub fn advance(&mut self, to: Timestamp) {
        self.clock.advance(to);
    }

    /// Pods or nodes changed: the scheduler must look.
    pub fn cluster_changed(&mut self) {
        self.cluster_changed = true;
    }

    /// Something changed that the autoscaler's watches see and act on soon.
    pub fn wake_autoscaler(&mut self) {
        self.wake = true;
    }

    pub fn take_cluster_changed(&mut self) -> bool {
        std::mem::take(&mut self.cluster_changed)
    }

    pub fn take_wake(&mut self) -> bool {
        std::mem::take(&mut self.wake)
    }

    /// Adds a timeline entry about `subject`, now.
    pub fn record(&mut self, subject: &str, event: TimelineEvent) {
        self.journal.event(self.clock.now(), subject, event);
    }

    /// A controller creates a pod (pending until the scheduler binds it).
    pub fn create_pod(&mut self, template: &PodTemplate, name: String, origin: Origin) -> String {
        // A workload's ReplicaSet recreates every pod from one template: the
        // API shows it (the daemon watches ReplicaSets), so the planner knows
        // the size an evicted pod comes back at (`Snapshot::templates`).
        if let (Origin::Workload(_), Some(owner)) = (origin, &template.owner) {
            self.cluster.snap.templates.entry(owner.uid.clone()).or_insert_with(|| template.model());
        }
        let uid = self.cluster.add_pod(template, name, self.clock.now(), origin);
        self.cluster_changed = true;
        let lineage = self.inherit.take().unwrap_or_else(|| {
            self.next_lineage += 1;
            self.next_lineage
        });
        self.lineage.insert(uid.clone(), lineage);
        self.admission(&uid);
        uid
    }

    /// VPA's admission controller, when it runs: a new pod of a workload
    /// with a VPA object (not `Off`) gets the recommended requests.
    fn admission(&mut self, uid: &str) {
        if !self.cluster.snap.admission_applies_recommendations {
            return;
        }
        let Some(workload) = self.cluster.pod(uid).and_then(|p| p.workload.clone()) else { return };
        let Some(vertical) = self
            .cluster
            .snap
            .vertical
            .iter()
            .find(|v| v.workload == workload && v.update_mode != heatscaler_core::model::UpdateMode::Off)
            .cloned()
        else {
            return;
        };
        if let Some(pod) = self.cluster.pod_mut(uid) {
            kubelet::admitted(&mut pod.containers, &vertical);
            kubelet::refresh_requests(pod);
        }
    }

    /// The eviction API: honours each PDB covering the pod against
    /// `allowed` (its `disruptionsAllowed`, debited as the caller's evictions
    /// go; the caller writes it back), starts the pod's termination (grace
    /// capped by `grace_cap`) and tells its owner, whose replacement
    /// continues the pod's lineage.
    pub fn evict(
        &mut self,
        uid: &str,
        grace_cap: Option<StdDuration>,
        allowed: &mut std::collections::BTreeMap<usize, i32>,
        owners: &mut dyn Owners,
    ) -> Eviction {
        let Some(pod) = self.cluster.pod(uid) else { return Eviction::Gone };
        if pod.deletion.is_some() {
            return Eviction::Gone;
        }
        let pdbs = &self.cluster.snap.pdbs;
        let covering: Vec<usize> = (0..pdbs.len())
            .filter(|&i| pdbs[i].namespace == pod.namespace && pdbs[i].selector.matches(&pod.labels))
            .collect();
        if !covering.iter().all(|&i| *allowed.entry(i).or_insert(pdbs[i].disruptions_allowed) > 0) {
            return Eviction::Refused;
        }
        for i in covering {
            *allowed.get_mut(&i).expect("entered above") -= 1;
        }
        let origin = self.cluster.origin.get(uid).copied();
        if let (Some(log), Some(lineage)) = (&mut self.eviction_log, self.lineage.get(uid)) {
            log.push((self.clock.now(), *lineage));
        }
        if let Some(Origin::Workload(w)) = origin {
            self.journal.pod_meter.evicted(w);
        }
        self.delete_pod(uid, grace_cap);
        if let Some(origin) = origin {
            self.tell_owner(uid, origin, owners);
        }
        Eviction::Evicted
    }

    /// The scenario workload (index) pod `uid` belongs to, if any.
    pub fn workload_of(&self, uid: &str) -> Option<usize> {
        match self.cluster.origin.get(uid) {
            Some(Origin::Workload(w)) => Some(*w),
            _ => None,
        }
    }

    /// Workload `w`'s pod was evicted to be recreated at a new size.
    pub fn recreated(&mut self, w: Option<usize>) {
        self.journal.pod_level.recreations += 1;
        if let Some(w) = w {
            self.journal.pod_meter.recreated(w);
        }
    }

    /// The replica `uid` is part of (it and the pods that replaced it).
    pub fn lineage(&self, uid: &str) -> Option<u64> {
        self.lineage.get(uid).copied()
    }

    /// Tells `owners` that the pod of `origin` with `uid` was evicted; the
    /// replacement they create continues its lineage.
    pub fn tell_owner(&mut self, uid: &str, origin: Origin, owners: &mut dyn Owners) {
        self.inherit = self.lineage(uid);
        owners.evicted(self, origin);
        self.inherit = None;
    }

    /// Starts a pod's termination; it is gone after the modelled termination
    /// time (capped by `grace_cap`, as an eviction's grace period is).
    pub fn delete_pod(&mut self, uid: &str, grace_cap: Option<StdDuration>) {
        let Some(unbound) = self.cluster.start_deletion(uid, self.clock.now()) else { return };
        let mut grace =
            if unbound { StdDuration::ZERO } else { self.provisioning.pod_termination.sample(&mut self.rng) };
        if let Some(cap) = grace_cap {
            grace = grace.min(cap);
        }
        self.clock.after(grace, Event::PodGone { uid: uid.to_string() });
        self.cluster_changed = true;
    }

    /// A terminating pod is gone (its kubelet confirmed it).
    pub fn pod_gone(&mut self, uid: &str) {
        let Some(pod) = self.cluster.remove_pod(uid) else { return };
        self.journal.pod_gone(uid, self.clock.now());
        self.kubelet.remove(uid);
        self.lineage.remove(uid);
        self.cluster_changed = true;
        if pod.node_name.as_deref().and_then(|n| self.cluster.node(n)).is_some_and(|n| n.unschedulable) {
            self.wake = true;
        }
    }

    /// A node registers, Ready. (Its DaemonSet pods are the controllers'.)
    pub fn register_node(&mut self, name: &str, shape: &NodeShape) {
        self.cluster.add_node(name, shape, self.clock.now());
        self.cluster_changed = true;
        self.wake = true;
    }

    /// Deletes a Node object; the pods bound to it are gone with their kubelet.
    pub fn delete_node(&mut self, name: &str) {
        let now = self.clock.now();
        for pod in self.cluster.delete_node(name) {
            self.journal.pod_gone(&pod.uid, now);
            self.kubelet.remove(pod.uid.as_str());
            self.lineage.remove(pod.uid.as_str());
        }
        self.cluster_changed = true;
    }

    /// Adds a Heat group with `size` members already running (their nodes
    /// are registered by the caller); returns the members.
    pub fn add_group(&mut self, spec: &GroupSpec, size: u32) -> Vec<String> {
        self.heat.add_group(spec, size, self.clock.now())
    }

    /// Shows the planner Heat's view of group `g`, as a poll would.
    pub fn observe_group(&mut self, g: usize) {
        let view = self.heat.groups[g].observed();
        self.cluster.show_group(view);
    }

    /// Starts a stack update of group `g` to `desired` members, deleting
    /// exactly `remove`; it finishes after the modelled update time.
    pub fn update_stack(&mut self, g: usize, desired: u32, remove: &[String]) {
        let id = self.heat.new_update_id();
        self.heat.groups[g].start_update(id, self.clock.now(), desired, remove);
        let took = self.provisioning.heat_update.sample(&mut self.rng);
        self.clock.after(took, Event::HeatDone { group: g, update: id });
        self.observe_group(g);
        self.cluster_changed = true;
    }

    /// Stack update `update` of group `g` finished: new servers start
    /// booting, failed members are reported, deleted servers stop reporting.
    pub fn stack_update_done(&mut self, g: usize, update: u64) {
        let Some(result) = self.heat.groups[g].finish_update(update) else { return };
        let name = self.heat.groups[g].name.clone();
        for member in result.created {
            let index = self.heat.groups[g].index_of(&member).unwrap_or(0);
            let boot = self.provisioning.boot.sample(&mut boot_stream(self.seed, g, index));
            self.clock.after(boot, Event::Boot { group: g, member });
        }
        for member in &result.failed {
            self.record(&name, TimelineEvent::CreateFailed { member: member.clone() });
        }
        for member in &result.deleted {
            // The server is gone: its node stops reporting.
            if let Some(node) = self.cluster.node_mut(member) {
                node.ready = false;
                self.cluster_changed = true;
                self.wake = true;
            }
        }
        if !result.deleted.is_empty() {
            self.record(&name, TimelineEvent::MembersDeleted { members: result.deleted });
        }
    }

    /// A member's server booted: its node registers, unless the member was
    /// removed meanwhile. Returns whether it did.
    pub fn server_booted(&mut self, g: usize, member: &str) -> bool {
        let group = &self.heat.groups[g];
        if !group.members.iter().any(|m| m.id == member && m.status == MemberStatus::Complete) {
            return false;
        }
        let (name, shape) = (group.name.clone(), group.shape.clone());
        self.register_node(member, &shape);
        let members = &self.heat.groups[g].members;
        let ready =
            self.cluster.snap.nodes.iter().filter(|n| n.ready && members.iter().any(|m| m.id == n.name)).count();
        self.record(&name, TimelineEvent::MinionReady { node: member.to_string(), ready: ready as u32 });
        true
    }
}
