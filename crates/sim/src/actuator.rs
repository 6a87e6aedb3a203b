//! The simulated actuator: executes the planner's actions under the same
//! contract as the real one (see `planner::action`) — it re-reads the live
//! state, acts only when the action's expectations still hold, and takes the
//! time Heat and the kubelet take.

use std::collections::BTreeMap;

use heatscaler_core::model::{MemberStatus, Pod};
use heatscaler_core::planner::Action;
use heatscaler_core::planner::action::{
    DeleteNode, EvictPods, MarkDrained, RemoveMembers, RollBackRemoval, ScaleUp, StartRemoval,
};
use heatscaler_core::planner::protocol::{self, Phase, RemovalState};

use super::engine::{Event, Sim};
use super::report::TimelineEvent;

impl Sim<'_> {
    pub(super) fn execute(&mut self, action: &Action) {
        let result = match action {
            Action::ScaleUp(a) => self.scale_up(a),
            Action::RemoveMembers(a) => self.remove_members(a),
            Action::StartRemoval(a) => self.start_removal(a),
            Action::EvictPods(a) => self.evict(a),
            Action::MarkDrained(a) => self.mark_drained(a),
            Action::RollBackRemoval(a) => self.roll_back(a),
            Action::DeleteNode(a) => self.delete_node(a),
            // Pod-level actions are simulated by `podlevel`; this model
            // has no VPA objects, so the planner never plans them here.
            Action::ResizePod(_) | Action::RecreatePod(_) => Err("no pod-level model in this simulation".into()),
        };
        if result.is_ok() {
            self.wake = true; // the daemon's watches see what its own action changed
        }
        if let Err(why) = result {
            let kind = action.kind().as_str().to_string();
            self.rec.event(self.now, action.subject(), TimelineEvent::Refused { action: kind, why });
        }
    }

    fn group(&self, name: &str) -> Result<usize, String> {
        self.cluster.group_index(name).ok_or_else(|| format!("no group {name}"))
    }

    fn scale_up(&mut self, a: &ScaleUp) -> Result<(), String> {
        let g = self.group(&a.group)?;
        let group = &self.cluster.heat[g];
        if group.update.is_some() {
            return Err("stack update in progress".into());
        }
        if group.desired != a.expected_desired {
            return Err(format!("desired is {}, the plan expected {}", group.desired, a.expected_desired));
        }
        let id = self.new_update_id();
        self.cluster.heat[g].start_update(id, self.now, a.new_desired, &[]);
        let took = self.sc.provisioning.heat_update.sample(&mut self.rng);
        self.after(took, Event::HeatDone { group: g, update: id });
        self.cluster.observe_group(g);
        self.dirty = true;
        self.rec.scale_up(self.now, a);
        Ok(())
    }

    fn remove_members(&mut self, a: &RemoveMembers) -> Result<(), String> {
        let g = self.group(&a.group)?;
        let group = &self.cluster.heat[g];
        if group.update.is_some() {
            return Err("stack update in progress".into());
        }
        if group.desired != a.expected_desired {
            return Err(format!("desired is {}, the plan expected {}", group.desired, a.expected_desired));
        }
        for m in &a.members {
            if !group.members.iter().any(|x| x.id == m.member && x.status != MemberStatus::Deleting) {
                return Err(format!("member {} is no longer listed", m.member));
            }
        }
        // Every drained node is checked before anything is changed.
        let mut patches = Vec::new();
        for node in a.members.iter().filter_map(|m| m.node.as_ref().map(|n| (n, &m.member))) {
            let (name, member) = node;
            let n = self.cluster.node(name).ok_or_else(|| format!("node {name} is gone"))?;
            let RemovalState::Active(record) = protocol::read(n) else {
                return Err(format!("node {name} carries no removal record"));
            };
            if record.phase < Phase::Drained || &record.member != member || record.group != a.group {
                return Err(format!("node {name} is not drained for member {member}"));
            }
            if let Some(p) = self.workload_pods(name).next() {
                return Err(format!("node {name} still runs {}/{}", p.namespace, p.name));
            }
            patches.push((name.clone(), a.node_patch(&record)));
        }
        for (name, patch) in patches {
            if let Some(n) = self.cluster.node_mut(&name) {
                patch.apply(n);
            }
        }
        let remove: Vec<String> = a.members.iter().map(|m| m.member.clone()).collect();
        let id = self.new_update_id();
        let from = self.cluster.heat[g].desired;
        self.cluster.heat[g].start_update(id, self.now, a.new_desired, &remove);
        let took = self.sc.provisioning.heat_update.sample(&mut self.rng);
        self.after(took, Event::HeatDone { group: g, update: id });
        self.cluster.observe_group(g);
        self.dirty = true;
        self.rec.remove_members(self.now, a, from);
        Ok(())
    }

    fn workload_pods<'a>(&'a self, node: &'a str) -> impl Iterator<Item = &'a Pod> + 'a {
        self.cluster
            .snap
            .pods
            .iter()
            .filter(move |p| p.node_name.as_deref() == Some(node) && !p.is_daemonset() && !p.mirror && !p.is_terminal())
    }

    fn start_removal(&mut self, a: &StartRemoval) -> Result<(), String> {
        let node = self.cluster.node(&a.node).ok_or("node is gone")?;
        if !matches!(protocol::read(node), RemovalState::None) {
            return Err("node already carries a removal taint or record".into());
        }
        let g = self.group(&a.record.group)?;
        if !self.cluster.heat[g].members.iter().any(|m| m.id == a.record.member && m.status == MemberStatus::Complete) {
            return Err(format!("member {} is not a complete member of {}", a.record.member, a.record.group));
        }
        if a.record.kind == protocol::RemovalKind::Empty && self.workload_pods(&a.node).any(|p| p.deletion.is_none()) {
            return Err("no longer empty".into());
        }
        let patch = a.patch();
        if let Some(n) = self.cluster.node_mut(&a.node) {
            patch.apply(n);
        }
        self.dirty = true;
        self.rec.event(
            self.now,
            &a.record.group,
            TimelineEvent::RemovalStarted {
                node: a.node.clone(),
                kind: a.record.kind.as_str().into(),
                utilization: a.utilization,
            },
        );
        Ok(())
    }

    fn phase_of(&self, node: &str) -> Result<Option<Phase>, String> {
        let n = self.cluster.node(node).ok_or("node is gone")?;
        Ok(protocol::read(n).record().map(|r| r.phase))
    }

    fn evict(&mut self, a: &EvictPods) -> Result<(), String> {
        if self.phase_of(&a.node)? != Some(Phase::Draining) {
            return Err("node is not draining".into());
        }
        // The API server's view of each PDB, debited as this call evicts.
        let mut allowed: BTreeMap<usize, i32> = BTreeMap::new();
        for e in &a.pods {
            let Some(pod) = self.cluster.pod(&e.uid) else { continue }; // 404: already gone
            if pod.node_name.as_deref() != Some(a.node.as_str()) || pod.deletion.is_some() {
                continue;
            }
            let covering: Vec<usize> = (0..self.cluster.snap.pdbs.len())
                .filter(|&i| {
                    let pdb = &self.cluster.snap.pdbs[i];
                    pdb.namespace == pod.namespace && pdb.selector.matches(&pod.labels)
                })
                .collect();
            let ok = covering
                .iter()
                .all(|&i| *allowed.entry(i).or_insert(self.cluster.snap.pdbs[i].disruptions_allowed) > 0);
            if !ok {
                self.rec.evictions_refused += 1; // 429: the next pass tries again
                continue;
            }
            for i in covering {
                *allowed.get_mut(&i).expect("entered above") -= 1;
            }
            let origin = self.cluster.origin.get(&e.uid).copied();
            self.delete_pod(&e.uid, Some(a.max_grace));
            self.rec.evictions += 1;
            if let Some(origin) = origin {
                self.replace(origin);
            }
        }
        for (i, left) in allowed {
            self.cluster.snap.pdbs[i].disruptions_allowed = left;
        }
        Ok(())
    }

    fn mark_drained(&mut self, a: &MarkDrained) -> Result<(), String> {
        if self.phase_of(&a.node)? != Some(Phase::Draining) {
            return Err("node is not draining".into());
        }
        if self.workload_pods(&a.node).next().is_some() {
            return Err("workload pods remain".into());
        }
        let patch = a.patch();
        if let Some(n) = self.cluster.node_mut(&a.node) {
            patch.apply(n);
        }
        self.dirty = true;
        self.rec.event(self.now, &a.record.group, TimelineEvent::Drained { node: a.node.clone() });
        Ok(())
    }

    fn roll_back(&mut self, a: &RollBackRemoval) -> Result<(), String> {
        if self.phase_of(&a.node)? == Some(Phase::Removing) {
            return Err("node is being removed by Heat".into());
        }
        let patch = a.patch();
        let group = self.cluster.node(&a.node).and_then(|n| n.labels.get(protocol::NODE_GROUP_LABEL).cloned());
        if let Some(n) = self.cluster.node_mut(&a.node) {
            patch.apply(n);
        }
        self.dirty = true;
        self.rec.rollbacks += 1;
        self.rec.event(
            self.now,
            group.as_deref().unwrap_or(&a.node),
            TimelineEvent::RolledBack { node: a.node.clone(), reason: a.reason.to_string() },
        );
        Ok(())
    }

    fn delete_node(&mut self, a: &DeleteNode) -> Result<(), String> {
        if self.phase_of(&a.node)? != Some(Phase::Removing) {
            return Err("node is not being removed".into());
        }
        let g = self.group(&a.group)?;
        if self.cluster.heat[g].members.iter().any(|m| m.id == a.member) {
            return Err(format!("Heat still lists member {}", a.member));
        }
        for pod in self.cluster.delete_node(&a.node) {
            self.rec.pod_gone(&pod.uid);
        }
        self.dirty = true;
        self.rec.event(self.now, &a.group, TimelineEvent::NodeDeleted { node: a.node.clone() });
        Ok(())
    }
}
