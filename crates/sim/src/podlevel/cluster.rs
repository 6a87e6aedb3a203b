//! The simulated pool: identical nodes, one workload's pods, a kubelet that
//! admits in-place resizes the way Kubernetes 1.33+ does, restarts
//! OOM-killed containers, and a scheduler that spreads replicas.

use std::collections::BTreeMap;
use std::sync::Arc;

use heatscaler_core::model::{
    Container, Node, OwnerRef, Placement, Pod, PodKey, PodPhase, ResizeState, Resources, Timestamp, WorkloadRef,
};
use heatscaler_core::planner::action::ContainerResize;

use crate::peers::vpa_defaults::UpdaterView;

/// The container every simulated pod runs.
pub const CONTAINER: &str = "app";

#[derive(Clone, Debug)]
pub struct SimPod {
    pub pod: Pod,
    /// Which replica it is: usage follows the slot, whatever pod fills it.
    pub slot: usize,
    /// Not serving from..until: pending (until `Timestamp::MAX`), starting,
    /// or restarting after an OOM kill.
    pub down: Option<(Timestamp, Timestamp)>,
    /// When the container last started.
    pub started: Timestamp,
    /// How long it had run when it was last OOM-killed (VPA's quick-OOM rule).
    pub last_oom_after: Option<std::time::Duration>,
}

impl SimPod {
    pub fn up(&self, now: Timestamp) -> bool {
        self.pod.node_name.is_some() && self.down.is_none_or(|(_, until)| now >= until)
    }

    /// How long it was not serving within `[from, to)`.
    pub fn down_within(&self, from: Timestamp, to: Timestamp) -> std::time::Duration {
        let Some((since, until)) = self.down else { return std::time::Duration::ZERO };
        heatscaler_core::planner::time::elapsed(until.min(to), since.max(from))
    }

    pub fn container(&self) -> &Container {
        &self.pod.containers[0]
    }

    /// The resources the kubelet has applied.
    pub fn applied(&self) -> &Resources {
        let c = self.container();
        c.allocated.as_ref().unwrap_or(&c.requests)
    }
}

impl UpdaterView for SimPod {
    fn pod(&self) -> &Pod {
        &self.pod
    }

    fn up(&self, now: Timestamp) -> bool {
        SimPod::up(self, now)
    }

    fn last_oom_after(&self) -> Option<std::time::Duration> {
        self.last_oom_after
    }
}

/// What the kubelet answered to a resize request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    Applied,
    Deferred,
    Infeasible,
    /// A memory limit below the container's current usage: left in progress with an error.
    Error,
}

pub struct Cluster {
    pub nodes: Vec<Node>,
    /// Requested on every node by other tenants.
    reserved: Resources,
    pub pods: Vec<SimPod>,
    pub workload: WorkloadRef,
    placement: Arc<Placement>,
    next_uid: u64,
    pub counts: Counts,
}

/// Resizes the kubelet deferred, found infeasible, or failed to actuate.
#[derive(Clone, Copy, Debug, Default, serde::Serialize)]
pub struct Counts {
    pub deferred: u64,
    pub infeasible: u64,
    pub errors: u64,
}

impl Cluster {
    pub fn new(nodes: Vec<Node>, reserved: Resources, workload: WorkloadRef) -> Self {
        Self {
            nodes,
            reserved,
            pods: Vec::new(),
            workload,
            placement: Arc::new(Placement::default()),
            next_uid: 0,
            counts: Counts::default(),
        }
    }

    /// A new pod for `slot` with `container`'s resources, scheduled if it fits.
    pub fn create(&mut self, slot: usize, container: Container, now: Timestamp, restart: std::time::Duration) {
        self.next_uid += 1;
        let name = format!("{}-{}", self.workload.name, self.next_uid);
        let mut pod = Pod {
            uid: format!("uid-{name}"),
            namespace: self.workload.namespace.clone(),
            name,
            labels: BTreeMap::from([("app".to_string(), self.workload.name.clone())]).into(),
            owner: Some(OwnerRef {
                kind: "ReplicaSet".into(),
                name: format!("{}-rs", self.workload.name),
                uid: format!("rs-{}", self.workload.name),
            }),
            workload: Some(self.workload.clone()),
            node_name: None,
            phase: PodPhase::Pending,
            requests: Resources::default(),
            containers: vec![Container { allocated: Some(container.requests.clone()), ..container }],
            placement: self.placement.clone(),
            priority: 0,
            created: now,
            unschedulable_since: None,
            nominated_node: None,
            deletion: None,
            safe_to_evict: None,
            local_storage: false,
            mirror: false,
            resize: ResizeState::None,
        };
        refresh_requests(&mut pod);
        self.pods.push(SimPod { pod, slot, down: Some((now, Timestamp::MAX)), started: now, last_oom_after: None });
        self.schedule(now, restart);
    }

    /// Binds pending pods: a node with room, fewest replicas first (the
    /// workload spreads), then the most free CPU.
    pub fn schedule(&mut self, now: Timestamp, restart: std::time::Duration) {
        for p in 0..self.pods.len() {
            if self.pods[p].pod.node_name.is_some() {
                continue;
            }
            let need = self.pods[p].pod.requests.clone();
            let best = (0..self.nodes.len())
                .filter(|&n| {
                    let used = self.used(n, None);
                    used.cpu_milli + need.cpu_milli <= self.nodes[n].allocatable.cpu_milli
                        && used.memory + need.memory <= self.nodes[n].allocatable.memory
                })
                .min_by_key(|&n| {
                    (self.replicas_on(n), -(self.nodes[n].allocatable.cpu_milli - self.used(n, None).cpu_milli))
                });
            let sp = &mut self.pods[p];
            let pod = &mut sp.pod;
            match best {
                Some(n) => {
                    pod.node_name = Some(self.nodes[n].name.clone());
                    pod.phase = PodPhase::Running;
                    pod.unschedulable_since = None;
                    // Containers start once bound.
                    let since = sp.down.map_or(now, |(since, _)| since);
                    sp.started = after_std(now, restart);
                    sp.down = Some((since, sp.started));
                }
                None => {
                    pod.unschedulable_since.get_or_insert(now);
                }
            }
        }
    }

    fn node_of(&self, p: usize) -> Option<usize> {
        let name = self.pods[p].pod.node_name.as_deref()?;
        self.nodes.iter().position(|n| n.name == name)
    }

    fn replicas_on(&self, n: usize) -> usize {
        self.pods.iter().filter(|p| p.pod.node_name.as_deref() == Some(self.nodes[n].name.as_str())).count()
    }

    /// Requested on node `n` as the scheduler counts it, without pod `except`.
    fn used(&self, n: usize, except: Option<usize>) -> Resources {
        let mut used = self.reserved.clone();
        for (i, p) in self.pods.iter().enumerate() {
            if Some(i) != except && p.pod.node_name.as_deref() == Some(self.nodes[n].name.as_str()) {
                used += &p.pod.requests;
            }
        }
        used
    }

    pub fn index_of(&self, uid: &str) -> Option<usize> {
        self.pods.iter().position(|p| p.pod.uid == uid)
    }

    /// The `resize` subresource: the spec changes at once, the kubelet then
    /// admits it (or not).
    pub fn request_resize(&mut self, p: usize, containers: &[ContainerResize], now: Timestamp, usage: f64) -> Verdict {
        {
            let c = &mut self.pods[p].pod.containers[0];
            let Some(r) = containers.iter().find(|r| r.container == c.name) else { return Verdict::Applied };
            c.requests.cpu_milli = r.requests.cpu_milli;
            c.requests.memory = r.requests.memory;
            if r.limits.cpu_milli > 0 {
                c.limits.cpu_milli = r.limits.cpu_milli;
            }
            if r.limits.memory > 0 {
                c.limits.memory = r.limits.memory;
            }
        }
        self.pods[p].pod.resize = ResizeState::None;
        self.admit(p, now, usage)
    }

    /// The kubelet's admission of the desired resources: `Infeasible` when the
    /// pod could never fit the node, `Deferred` when it does not fit next to
    /// the other pods now, an error when a memory limit would drop below
    /// usage; else applied.
    pub fn admit(&mut self, p: usize, now: Timestamp, memory_usage: f64) -> Verdict {
        let Some(n) = self.node_of(p) else { return Verdict::Applied };
        let before = std::mem::discriminant(&self.pods[p].pod.resize);
        let spec = self.pods[p].pod.containers[0].requests.clone();
        let alloc = &self.nodes[n].allocatable;
        let since = |state: &ResizeState| match state {
            ResizeState::Deferred { since, .. } | ResizeState::Error { since, .. } => *since,
            _ => now,
        };
        let verdict = if spec.cpu_milli > alloc.cpu_milli || spec.memory > alloc.memory {
            let message = "Node didn't have enough capacity".to_string();
            self.pods[p].pod.resize = ResizeState::Infeasible { since: now, message };
            Verdict::Infeasible
        } else {
            let others = self.used(n, Some(p));
            if others.cpu_milli + spec.cpu_milli > alloc.cpu_milli || others.memory + spec.memory > alloc.memory {
                let since = since(&self.pods[p].pod.resize);
                let message = "Node didn't have enough resource".to_string();
                self.pods[p].pod.resize = ResizeState::Deferred { since, message };
                Verdict::Deferred
            } else if self.pods[p].pod.containers[0].limits.memory > 0
                && memory_usage > self.pods[p].pod.containers[0].limits.memory as f64
            {
                let since = since(&self.pods[p].pod.resize);
                let message = "memory limit below current usage".to_string();
                self.pods[p].pod.resize = ResizeState::Error { since, message };
                Verdict::Error
            } else {
                let c = &mut self.pods[p].pod.containers[0];
                c.allocated = Some(c.requests.clone());
                self.pods[p].pod.resize = ResizeState::None;
                Verdict::Applied
            }
        };
        // Count each time a resize enters a state, not the kubelet's retries.
        if std::mem::discriminant(&self.pods[p].pod.resize) != before {
            match verdict {
                Verdict::Deferred => self.counts.deferred += 1,
                Verdict::Infeasible => self.counts.infeasible += 1,
                Verdict::Error => self.counts.errors += 1,
                Verdict::Applied => {}
            }
        }
        refresh_requests(&mut self.pods[p].pod);
        verdict
    }

    /// Evicts pod `p`: it is gone at once, and its controller creates a
    /// replacement with `container`'s resources.
    pub fn recreate(&mut self, p: usize, container: Container, now: Timestamp, restart: std::time::Duration) {
        let old = self.pods.remove(p);
        self.create(old.slot, container, now, restart);
    }

    /// The container was OOM-killed: it restarts with the same resources.
    pub fn oom_kill(&mut self, p: usize, now: Timestamp, restart: std::time::Duration) {
        let sp = &mut self.pods[p];
        sp.last_oom_after = Some(heatscaler_core::planner::time::elapsed(now, sp.started));
        sp.started = after_std(now, restart);
        sp.down = Some((now, sp.started));
        let c = &mut sp.pod.containers[0];
        c.oom_kills += 1;
        c.last_oom = Some(now);
    }

    pub fn key(&self, p: usize) -> PodKey {
        self.pods[p].pod.key()
    }
}

/// What the scheduler reserves: the larger of desired and applied per
/// resource while a resize is pending, plus a pod slot.
fn refresh_requests(pod: &mut Pod) {
    let mut r = Resources { pods: 1, ..Resources::default() };
    for c in &pod.containers {
        let held = c.allocated.as_ref().map_or(c.requests.clone(), |a| a.max(&c.requests));
        r.cpu_milli += held.cpu_milli;
        r.memory += held.memory;
    }
    pod.requests = r;
}

fn after_std(t: Timestamp, d: std::time::Duration) -> Timestamp {
    heatscaler_core::planner::time::after_std(t, d)
}
