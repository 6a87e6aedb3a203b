//! Planner tests. `World` builds snapshots tersely and executes plans the
//! simplest way an executor may (instantly), so multi-pass behaviour — the
//! removal state machine, back-offs, restarts — can be followed step by step.

mod action;
mod balance;
mod health;
mod provisioning;
mod removal;
mod replace;
mod resize;
mod scale_down;
mod scale_up;
mod topology;

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::model::test_support;
use crate::model::{
    GroupState, LabelSelector, Member, MemberStatus, Node, NodeShape, OwnerRef, Pdb, Placement, Pod, PodPhase,
    ResizeState, Resources, SignedDuration, Snapshot, Timestamp,
};

use super::action::{Action, RemoveMembers, ResizePod, ScaleUp, StartRemoval};
use super::protocol::{self, NODE_GROUP_LABEL};
use super::{Input, Memory, Plan, Policy, plan};

pub const GI: i64 = 1 << 30;
pub const MI: i64 = 1 << 20;

pub fn t0() -> Timestamp {
    "2024-01-01T12:00:00Z".parse().unwrap()
}

pub fn res(cpu_milli: i64, memory: i64) -> Resources {
    Resources { cpu_milli, memory, pods: 110, ..Resources::default() }
}

pub struct World {
    pub snap: Snapshot,
    pub policy: Policy,
    pub memory: Memory,
    pub now: Timestamp,
    placements: BTreeMap<String, Arc<Placement>>,
}

impl World {
    pub fn new() -> Self {
        Self {
            snap: Snapshot::default(),
            policy: Policy::default(),
            memory: Memory::default(),
            now: t0(),
            placements: BTreeMap::new(),
        }
    }

    pub fn ago(&self, secs: i64) -> Timestamp {
        self.now - SignedDuration::from_secs(secs)
    }

    pub fn advance(&mut self, secs: i64) {
        self.now += SignedDuration::from_secs(secs);
    }

    /// A group whose minions offer `cpu_milli` and `memory`; no members yet.
    pub fn group(&mut self, name: &str, min: u32, max: u32, cpu_milli: i64, memory: i64) -> &mut GroupState {
        let labels = BTreeMap::from([(NODE_GROUP_LABEL.to_string(), name.to_string())]);
        self.snap.groups.push(GroupState {
            name: name.into(),
            desired: 0,
            min_size: min,
            max_size: max,
            members: vec![],
            stack_busy: false,
            template: Some(NodeShape { allocatable: res(cpu_milli, memory), labels, taints: vec![] }),
            price_per_hour: cpu_milli as f64 / 1000.0,
            priority: 0,
        });
        self.snap.groups.last_mut().unwrap()
    }

    pub fn group_mut(&mut self, name: &str) -> &mut GroupState {
        self.snap.groups.iter_mut().find(|g| g.name == name).unwrap()
    }

    /// A Ready minion of `group` (member id = node name), created an hour ago.
    pub fn minion(&mut self, group: &str, node: &str) -> &mut Node {
        let created = self.ago(3600);
        let g = self.group_mut(group);
        let shape = g.template.clone().unwrap();
        g.desired += 1;
        g.members.push(Member {
            id: node.into(),
            node_name: Some(node.into()),
            status: MemberStatus::Complete,
            created: Some(created),
        });
        self.snap.nodes.push(Node {
            name: node.into(),
            labels: shape.labels.clone(),
            annotations: BTreeMap::new(),
            taints: shape.taints.clone(),
            allocatable: shape.allocatable.clone(),
            unschedulable: false,
            ready: true,
            provider_id: None,
            created,
        });
        self.snap.nodes.last_mut().unwrap()
    }

    pub fn plain_node(&mut self, name: &str, cpu_milli: i64, memory: i64) -> &mut Node {
        self.snap.nodes.push(Node {
            name: name.into(),
            labels: BTreeMap::new(),
            annotations: BTreeMap::new(),
            taints: vec![],
            allocatable: res(cpu_milli, memory),
            unschedulable: false,
            ready: true,
            provider_id: None,
            created: self.ago(7200),
        });
        self.snap.nodes.last_mut().unwrap()
    }

    pub fn node_mut(&mut self, name: &str) -> &mut Node {
        self.snap.nodes.iter_mut().find(|n| n.name == name).unwrap()
    }

    pub fn pod_mut(&mut self, name: &str) -> &mut Pod {
        self.snap.pods.iter_mut().find(|p| p.name == name).unwrap()
    }

    /// A ReplicaSet pod; the workload is the name up to its last `-`, and
    /// pods of one workload share their placement (as observers build them).
    pub fn pod(&mut self, name: &str, node: Option<&str>, cpu_milli: i64, memory: i64) -> &mut Pod {
        let app = name.rsplit_once('-').map_or(name, |(a, _)| a).to_string();
        let placement = self.placements.entry(app.clone()).or_default().clone();
        let created = self.ago(3600);
        self.snap.pods.push(Pod {
            labels: Arc::new(BTreeMap::from([("app".to_string(), app.clone())])),
            owner: Some(
                OwnerRef { kind: "ReplicaSet".into(), name: format!("{app}-rs"), uid: format!("rs-{app}") }.into(),
            ),
            node_name: node.map(str::to_string),
            phase: if node.is_some() { PodPhase::Running } else { PodPhase::Pending },
            requests: Resources { cpu_milli, memory, pods: 1, ..Resources::default() },
            placement,
            created,
            ..test_support::pod(name)
        });
        self.snap.pods.last_mut().unwrap()
    }

    /// A pod the scheduler found unschedulable a minute ago.
    pub fn pending(&mut self, name: &str, cpu_milli: i64, memory: i64) -> &mut Pod {
        let since = self.ago(60);
        let pod = self.pod(name, None, cpu_milli, memory);
        pod.unschedulable_since = Some(since);
        pod
    }

    pub fn daemon_pod(&mut self, name: &str, node: &str, cpu_milli: i64, memory: i64) -> &mut Pod {
        let pod = self.pod(name, Some(node), cpu_milli, memory);
        pod.owner = Some(OwnerRef { kind: "DaemonSet".into(), name: "ds".into(), uid: "ds-uid".into() }.into());
        pod
    }

    pub fn pdb(&mut self, name: &str, app: &str, allowed: i32) {
        self.snap.pdbs.push(Pdb {
            namespace: "default".into(),
            name: name.into(),
            selector: LabelSelector {
                match_labels: BTreeMap::from([("app".to_string(), app.to_string())]),
                ..Default::default()
            },
            disruptions_allowed: allowed,
        });
    }

    pub fn set_placement(&mut self, app: &str, placement: Placement) {
        let arc = Arc::new(placement);
        self.placements.insert(app.into(), arc.clone());
        for pod in self.snap.pods.iter_mut().filter(|p| p.labels.get("app").map(String::as_str) == Some(app)) {
            pod.placement = arc.clone();
        }
    }

    pub fn plan(&self) -> Plan {
        plan(
            &Input { snapshot: &self.snap, usage: None, memory: &self.memory, now: self.now, observations: None },
            &self.policy,
        )
    }

    /// Plans and keeps the memory, as the daemon does between passes.
    pub fn step(&mut self) -> Plan {
        let plan = self.plan();
        self.memory = plan.memory.clone();
        plan
    }

    /// Executes a plan instantly: Heat requests complete at once (removed
    /// members become `Deleting` until [`World::heat_done`]), evicted pods
    /// start terminating until [`World::terminate`].
    pub fn apply(&mut self, plan: &Plan) {
        for action in &plan.actions {
            match action {
                Action::ScaleUp(a) => {
                    let g = self.group_mut(&a.group);
                    if g.desired == a.expected_desired {
                        g.desired = a.new_desired;
                    }
                }
                Action::RemoveMembers(a) => self.remove_members(a),
                Action::StartRemoval(a) => a.patch().apply(self.node_mut(&a.node)),
                Action::EvictPods(a) => {
                    let now = self.now;
                    for e in &a.pods {
                        if let Some(p) = self.snap.pods.iter_mut().find(|p| p.uid == e.uid) {
                            p.deletion = Some(now);
                        }
                    }
                }
                Action::MarkDrained(a) => a.patch().apply(self.node_mut(&a.node)),
                Action::RollBackRemoval(a) => a.patch().apply(self.node_mut(&a.node)),
                Action::DeleteNode(a) => {
                    self.snap.nodes.retain(|n| n.name != a.node);
                    self.snap.pods.retain(|p| p.node_name.as_deref() != Some(&a.node));
                }
                Action::ResizePod(a) => self.resize_pod(a),
                Action::RecreatePod(a) => {
                    let now = self.now;
                    if let Some(p) = self.snap.pods.iter_mut().find(|p| p.uid == a.uid) {
                        p.deletion = Some(now);
                    }
                }
                // The rollout done at once: every replica carries the new template.
                Action::SetPreferredAffinity(a) => {
                    for p in self.snap.pods.iter_mut().filter(|p| p.workload.as_ref() == Some(&a.workload)) {
                        let placement = std::sync::Arc::make_mut(&mut p.placement);
                        placement.preferred_pod_affinity.retain(|w| w.term != a.term);
                        placement
                            .preferred_pod_affinity
                            .push(crate::model::WeightedPodAffinityTerm { weight: a.weight, term: a.term.clone() });
                    }
                }
                Action::RemovePreferredAffinity(a) => {
                    for p in self.snap.pods.iter_mut().filter(|p| p.workload.as_ref() == Some(&a.workload)) {
                        std::sync::Arc::make_mut(&mut p.placement).preferred_pod_affinity.retain(|w| w.term != a.term);
                    }
                }
            }
        }
    }

    /// The kubelet applies a resize at once (no status conditions left behind).
    fn resize_pod(&mut self, a: &ResizePod) {
        let Some(pod) = self.snap.pods.iter_mut().find(|p| p.uid == a.uid) else { return };
        for r in &a.containers {
            let Some(c) = pod.containers.iter_mut().find(|c| c.name == r.container) else { continue };
            pod.requests.cpu_milli += r.requests.cpu_milli - c.requests.cpu_milli;
            pod.requests.memory += r.requests.memory - c.requests.memory;
            r.apply_to(c);
            c.allocated = Some(c.requests.clone());
        }
        pod.resize = ResizeState::None;
    }

    fn remove_members(&mut self, a: &RemoveMembers) {
        let desired = self.group_mut(&a.group).desired;
        if desired != a.expected_desired {
            return;
        }
        for m in &a.members {
            if let Some(node) = &m.node {
                let record = match protocol::read(self.node_mut(node)) {
                    protocol::RemovalState::Active(r) => r,
                    other => panic!("executor contract: {node} has no removal record: {other:?}"),
                };
                a.node_patch(&record).apply(self.node_mut(node));
            }
        }
        let g = self.group_mut(&a.group);
        g.desired = a.new_desired;
        for m in &a.members {
            if let Some(member) = g.members.iter_mut().find(|x| x.id == m.member) {
                member.status = MemberStatus::Deleting;
            }
        }
    }

    /// Heat finishes: `Deleting` members disappear; their nodes go NotReady.
    pub fn heat_done(&mut self) {
        let mut gone = Vec::new();
        for g in &mut self.snap.groups {
            for m in g.members.iter().filter(|m| m.status == MemberStatus::Deleting) {
                gone.extend(m.node_name.clone());
            }
            g.members.retain(|m| m.status != MemberStatus::Deleting);
        }
        for n in self.snap.nodes.iter_mut().filter(|n| gone.contains(&n.name)) {
            n.ready = false;
        }
    }

    /// Terminating pods finish.
    pub fn terminate(&mut self) {
        self.snap.pods.retain(|p| p.deletion.is_none());
    }
}

pub fn scale_ups(plan: &Plan) -> Vec<&ScaleUp> {
    plan.actions.iter().filter_map(|a| if let Action::ScaleUp(s) = a { Some(s) } else { None }).collect()
}

pub fn removals(plan: &Plan) -> Vec<&RemoveMembers> {
    plan.actions.iter().filter_map(|a| if let Action::RemoveMembers(s) = a { Some(s) } else { None }).collect()
}

pub fn starts(plan: &Plan) -> Vec<&StartRemoval> {
    plan.actions.iter().filter_map(|a| if let Action::StartRemoval(s) = a { Some(s) } else { None }).collect()
}

pub fn kinds(plan: &Plan) -> Vec<String> {
    plan.actions.iter().map(|a| format!("{}:{}", a.kind(), a.subject())).collect()
}
