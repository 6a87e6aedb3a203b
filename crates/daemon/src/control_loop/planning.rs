//! One planning pass over what the observers hold: the seam shared by the run
//! loop and `heatscaler explain` (which fills a store and reads Heat once, then
//! calls [`Planning::plan`] and prints the explanation instead of acting).

use std::collections::{BTreeMap, HashSet};

use tokio::sync::Mutex;

use super::pod_level::PodLevel;
use crate::act::VpaWrite;
use crate::config::NodeGroupConfig;
use crate::observe::{ClusterStore, GroupAssembler, GroupRead};
use heatscaler_core::model::{GroupState, Resources, Snapshot, Timestamp};
use heatscaler_core::planner::action::Action;
use heatscaler_core::planner::placement::Observations;
use heatscaler_core::planner::protocol::{self, Phase, RemovalRecord};
use heatscaler_core::planner::{self, Input, Memory, Plan, Policy};

/// The planner's memory between passes, and the member↔node history the
/// group join keeps. Both may be lost at any time without harm.
#[derive(Debug, Default)]
pub struct Planning {
    assembler: GroupAssembler,
    memory: Memory,
}

/// What a pass reads beside the cluster and Heat: the pod level (usage,
/// VPA objects) and the mesh's traffic, each when there is one.
#[derive(Clone, Copy, Default)]
pub struct Beside<'a> {
    pub pod_level: Option<&'a PodLevel>,
    /// `None`: not configured, not read yet, or not fresh.
    pub observations: Option<&'a Observations>,
}

/// A pass's plan and the facts about its input the daemon reports.
#[derive(Debug)]
pub struct Planned {
    pub plan: Plan,
    pub groups: Vec<GroupState>,
    pub unschedulable_pods: usize,
    /// Names of the nodes that are Ready.
    pub ready_nodes: HashSet<String>,
    /// Names of every node in the snapshot.
    pub node_names: HashSet<String>,
    /// Node name → the removal record of each node in phase `removing`
    /// (its member handed to Heat), for `MinionRemoved` once member and node are gone.
    pub removing: BTreeMap<String, RemovalRecord>,
    pub nodes: usize,
    pub pods: usize,
    /// VPA statuses this pass computed; the leader writes them unless dry-running.
    pub status_writes: Vec<VpaWrite>,
    /// Alerts the pod level raised this pass (each once, not every pass).
    pub pod_level_alerts: Vec<crate::alerts::ScalingEvent>,
}

impl Planning {
    pub fn new() -> Self {
        Self::default()
    }

    /// Starts from a memory kept elsewhere (`heatscaler explain` takes the
    /// running leader's timers from the status ConfigMap).
    pub fn with_memory(memory: Memory) -> Self {
        Self { memory, ..Self::default() }
    }

    /// Forgets the memory (timers restart; removals in progress live on the nodes).
    pub fn forget(&mut self) {
        self.memory = Memory::default();
    }

    pub fn memory(&self) -> &Memory {
        &self.memory
    }

    /// Plans on the store as it is now, joined with the latest Heat reads
    /// and, for the placement advisor, the mesh's latest traffic (`None`: not
    /// read, or not fresh). The
    /// store stays locked while the planner runs (about 100 ms at 150,000
    /// pods), so no watch event lands in the middle of a pass. `None` while a
    /// watch is re-listing: its half-listed state is not planned on.
    pub async fn plan(
        &mut self,
        store: &Mutex<ClusterStore>,
        heat: &BTreeMap<String, GroupRead>,
        groups: &[NodeGroupConfig],
        policy: &Policy,
        beside: Beside<'_>,
        now: Timestamp,
    ) -> Option<Planned> {
        let Beside { pod_level, observations } = beside;
        let mut store = store.lock().await;
        if store.relisting() {
            return None;
        }
        let reads = heat.iter().map(|(k, v)| (k.clone(), v.snapshot.clone())).collect();
        let assembled = self.assembler.assemble(groups, &reads, &store.snapshot().nodes);
        store.set_groups(assembled);
        let (status_writes, pod_level_alerts, usage) = match pod_level {
            Some(pl) => {
                let pass = pl.prepare(store.snapshot(), store.upstream_vpa_marks(), store.admitted_by_webhook(), now);
                store.set_vertical(pass.vertical, pass.admission_applies);
                (pass.writes, pass.alerts, policy.scale_down.use_observed_usage.then(|| pl.node_usage()))
            }
            None => (Vec::new(), Vec::new(), None),
        };
        let snapshot = store.snapshot();
        let input = Input { snapshot, usage: usage.as_ref(), memory: &self.memory, now, observations };
        let plan = blocking(|| planner::plan(&input, policy));
        if plan.actions.iter().any(|a| matches!(a, Action::ScaleUp(_))) && tracing::enabled!(tracing::Level::DEBUG) {
            let explanation = serde_json::to_string(&plan.explanation).unwrap_or_default();
            tracing::debug!(pods = %sizes(snapshot), %explanation, "a scale-up is planned on these pods");
        }
        self.memory = plan.memory.clone();
        Some(Planned {
            groups: snapshot.groups.clone(),
            unschedulable_pods: snapshot.pods.iter().filter(|p| p.is_unschedulable()).count(),
            ready_nodes: snapshot.nodes.iter().filter(|n| n.ready).map(|n| n.name.clone()).collect(),
            node_names: snapshot.nodes.iter().map(|n| n.name.clone()).collect(),
            removing: snapshot
                .nodes
                .iter()
                .filter_map(|n| match protocol::read(n) {
                    protocol::RemovalState::Active(r) if r.phase == Phase::Removing => Some((n.name.clone(), r)),
                    _ => None,
                })
                .collect(),
            nodes: snapshot.nodes.len(),
            pods: snapshot.pods.len(),
            plan,
            status_writes,
            pod_level_alerts,
        })
    }
}

/// Every live pod as the pass saw it, one `name@node cpu/memory` each (the
/// size the scheduler counts; `-` for an unbound pod), with the spec, what the
/// kubelet reports applied and the resize state where a resize is unfinished:
/// why a scale-up was planned is answered by this and the explanation (issue
/// 17: a scale-up a resize made unnecessary was found only with both).
fn sizes(snapshot: &Snapshot) -> String {
    let amount = |r: &Resources| format!("{}m/{}Mi", r.cpu_milli, r.memory >> 20);
    let mut out = Vec::new();
    for pod in snapshot.pods.iter().filter(|p| !p.is_terminal() && p.deletion.is_none()) {
        let mut line = format!("{}@{} {}", pod.name, pod.node_name.as_deref().unwrap_or("-"), amount(&pod.requests));
        let unfinished = pod.resize.is_pending()
            || pod.containers.iter().any(|c| {
                c.allocated
                    .as_ref()
                    .is_some_and(|a| (a.cpu_milli, a.memory) != (c.requests.cpu_milli, c.requests.memory))
            });
        if unfinished {
            let spec: Vec<String> = pod.containers.iter().map(|c| amount(&c.requests)).collect();
            let applied: Vec<String> =
                pod.containers.iter().map(|c| c.allocated.as_ref().map_or("?".to_string(), amount)).collect();
            line += &format!(" (spec {}, applied {}, {:?})", spec.join("+"), applied.join("+"), pod.resize);
        }
        out.push(line);
    }
    out.join("; ")
}

/// Runs CPU-bound work without stalling the other tasks of a multi-threaded
/// runtime; inline on a current-thread runtime (tests).
fn blocking<T>(f: impl FnOnce() -> T) -> T {
    match tokio::runtime::Handle::try_current().map(|h| h.runtime_flavor()) {
        Ok(tokio::runtime::RuntimeFlavor::MultiThread) => tokio::task::block_in_place(f),
        _ => f(),
    }
}

#[cfg(test)]
mod tests {
    use heatscaler_core::model::test_support::{container, pod};
    use heatscaler_core::model::{Pod, PodPhase, Resources, Snapshot};

    const MI: i64 = 1 << 20;

    /// A scale-up pass's record names each pod's counted size, and for a
    /// resize not finished the spec, what is applied and the resize state —
    /// the evidence a timing-dependent scale-up is judged by.
    #[test]
    fn sizes_show_unfinished_resizes_with_spec_and_applied() {
        let mut web = container("app", Resources::new(350, 256 * MI));
        web.allocated = Some(Resources::new(1000, 512 * MI));
        let resizing = Pod {
            node_name: Some("workers-1".into()),
            phase: PodPhase::Running,
            requests: Resources { pods: 1, ..Resources::new(1000, 512 * MI) },
            containers: vec![web],
            ..pod("web-0")
        };
        let pending = Pod { requests: Resources { pods: 1, ..Resources::new(1500, 512 * MI) }, ..pod("burst-0") };
        let snapshot = Snapshot { pods: vec![resizing, pending], ..Snapshot::default() };
        assert_eq!(
            super::sizes(&snapshot),
            "web-0@workers-1 1000m/512Mi (spec 350m/256Mi, applied 1000m/512Mi, None); burst-0@- 1500m/512Mi"
        );
    }
}
