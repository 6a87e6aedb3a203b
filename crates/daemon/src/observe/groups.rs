//! Heat reads joined with the nodes of the moment: the planner's
//! [`GroupState`]s. Done at every planning pass, since a node that registers
//! changes the join without any change in Heat.

use std::collections::{BTreeMap, HashSet};

use crate::cloud::group::{GroupSnapshot, NodeIdentity, join_members};
use crate::config::{NodeGroupConfig, NodeTemplate};
use heatscaler_core::model::{GroupState, Node, NodeShape};
use heatscaler_core::planner::protocol::{REMOVAL_TAINT, UNSCHEDULABLE_TAINT};

/// Labels that name one node; a new minion will not carry them.
const PER_NODE_LABELS: [&str; 1] = ["kubernetes.io/hostname"];
/// Taints the control plane puts on nodes because of their state, and the
/// ones autoscalers put on nodes being removed: not part of a new minion.
const STATE_TAINT_PREFIX: &str = "node.kubernetes.io/";
const CLUSTER_AUTOSCALER_TAINT: &str = "ToBeDeletedByClusterAutoscaler";

/// Remembers which node each member had, so a node that disappears (deleted
/// by hand) is recognised as its member's lost node — the planner removes
/// that member — rather than as a member that never got one. Losing this
/// (restart) is safe: such a member then counts as never registered and is
/// removed after the provision time instead.
#[derive(Debug, Default)]
pub struct GroupAssembler {
    known: BTreeMap<(String, String), String>,
}

impl GroupAssembler {
    pub fn new() -> Self {
        Self::default()
    }

    /// The planner's groups: every configured group Heat has been read for.
    pub fn assemble(
        &mut self,
        configs: &[NodeGroupConfig],
        reads: &BTreeMap<String, GroupSnapshot>,
        nodes: &[Node],
    ) -> Vec<GroupState> {
        let identities: Vec<NodeIdentity> = nodes.iter().map(NodeIdentity::from).collect();
        let present: HashSet<&str> = nodes.iter().map(|n| n.name.as_str()).collect();
        let mut listed = HashSet::new();
        let mut groups = Vec::with_capacity(configs.len());
        for config in configs {
            let Some(read) = reads.get(&config.name) else { continue };
            let join = join_members(&config.name, &read.members, &config.node_mapping, &identities);
            let mut members = join.members;
            for m in &mut members {
                let key = (config.name.clone(), m.id.clone());
                match &m.node_name {
                    Some(node) => {
                        self.known.insert(key.clone(), node.clone());
                    }
                    None => {
                        if let Some(node) = self.known.get(&key).filter(|n| !present.contains(n.as_str())) {
                            m.node_name = Some(node.clone());
                        }
                    }
                }
                listed.insert(key);
            }
            let mut state = read.to_group_state(config, members);
            state.template =
                shape_from_nodes(&state, nodes).or_else(|| config.node_template.as_ref().map(NodeTemplate::shape));
            groups.push(state);
        }
        self.known.retain(|k, _| listed.contains(k));
        groups
    }
}

/// What a new minion of the group will look like, from one of its Ready,
/// schedulable nodes (the first by name, so it is stable between passes).
fn shape_from_nodes(group: &GroupState, nodes: &[Node]) -> Option<NodeShape> {
    let names: HashSet<&str> = group.members.iter().filter_map(|m| m.node_name.as_deref()).collect();
    let node = nodes
        .iter()
        .filter(|n| names.contains(n.name.as_str()) && n.ready && !n.unschedulable)
        .filter(|n| !n.taints.iter().any(|t| t.key == REMOVAL_TAINT))
        .min_by(|a, b| a.name.cmp(&b.name))?;
    Some(NodeShape {
        allocatable: node.allocatable.clone(),
        labels: node.labels.iter().filter(|(k, _)| !PER_NODE_LABELS.contains(&k.as_str())).map(clone_pair).collect(),
        taints: node
            .taints
            .iter()
            .filter(|t| {
                !t.key.starts_with(STATE_TAINT_PREFIX)
                    && t.key != REMOVAL_TAINT
                    && t.key != UNSCHEDULABLE_TAINT
                    && t.key != CLUSTER_AUTOSCALER_TAINT
            })
            .cloned()
            .collect(),
    })
}

fn clone_pair((k, v): (&String, &String)) -> (String, String) {
    (k.clone(), v.clone())
}
