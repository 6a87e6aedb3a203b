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
///
/// It also keeps a member's node through a Heat read that does not say which
/// server the member has (its server resource missing from the listing, or
/// its `node_name` output unreadable): Heat's listings are not atomic with an
/// update completing, and such a member, taken as one without a node, would be
/// removed as a failed boot with its node still running — a node nobody drained.
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
                        let unidentified =
                            read.member(&m.id).is_some_and(|h| h.node_key(&config.node_mapping).is_none());
                        // Gone: its lost node. Still there while Heat does not name the
                        // member's server: the same node (see the type's documentation).
                        if let Some(node) =
                            self.known.get(&key).filter(|n| unidentified || !present.contains(n.as_str()))
                        {
                            if present.contains(node.as_str()) {
                                tracing::debug!(group = %config.name, member = %m.id, %node,
                                    "Heat's read names no server for the member; it keeps its node");
                            }
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cloud::group::HeatMember;
    use crate::cloud::heat::StackRef;
    use heatscaler_core::model::{MemberStatus, Resources, Timestamp};

    fn config() -> NodeGroupConfig {
        serde_json::from_value(serde_json::json!({
            "name": "workers", "stack": "k8s", "min-size": 1, "max-size": 5,
            "backend": {"kind": "resource-group", "resource": "kube_minions",
                        "count-parameter": "n", "removal-parameter": "rm"},
            "node-mapping": {"by": "provider-id"},
        }))
        .unwrap()
    }

    fn member(name: &str, server: Option<&str>) -> HeatMember {
        HeatMember {
            name: name.into(),
            status: MemberStatus::Complete,
            heat_status: "UPDATE_COMPLETE".into(),
            status_reason: None,
            created: Some(Timestamp::UNIX_EPOCH),
            heat_created: None,
            physical_id: Some(format!("stack-{name}")),
            server_id: server.map(str::to_string),
            node_name: None,
        }
    }

    fn read(members: Vec<HeatMember>) -> BTreeMap<String, GroupSnapshot> {
        let snapshot = GroupSnapshot {
            group: "workers".into(),
            stack: StackRef { name: "k8s".into(), id: "id".into() },
            stack_status: "UPDATE_COMPLETE".into(),
            stack_status_reason: String::new(),
            updated: None,
            busy: false,
            desired: members.len() as u32,
            members,
            members_stack: None,
            parameters: Default::default(),
        };
        [("workers".to_string(), snapshot)].into()
    }

    fn node(name: &str, server: &str) -> Node {
        Node {
            name: name.into(),
            labels: BTreeMap::new(),
            annotations: BTreeMap::new(),
            taints: Vec::new(),
            allocatable: Resources::new(2000, 4 << 30),
            unschedulable: false,
            ready: true,
            provider_id: Some(format!("openstack:///{server}")),
            created: Timestamp::UNIX_EPOCH,
        }
    }

    fn node_of(groups: &[GroupState], member: &str) -> Option<String> {
        groups[0].members.iter().find(|m| m.id == member).and_then(|m| m.node_name.clone())
    }

    /// CI saw a healthy minion replaced (the e2e drift scenario): one Heat read, as
    /// an update completed, listed member 0 without its server, so member 0 had no
    /// node for that pass and was removed as a failed boot with its node running.
    #[test]
    fn a_read_that_names_no_server_keeps_the_members_node() {
        let configs = [config()];
        let nodes = [node("workers-0", "s0"), node("workers-1", "s1")];
        let mut assembler = GroupAssembler::new();
        let first = assembler.assemble(&configs, &read(vec![member("0", Some("s0")), member("1", Some("s1"))]), &nodes);
        assert_eq!(node_of(&first, "0").as_deref(), Some("workers-0"));

        let glitch = assembler.assemble(&configs, &read(vec![member("0", None), member("1", Some("s1"))]), &nodes);
        assert_eq!(node_of(&glitch, "0").as_deref(), Some("workers-0"), "{glitch:?}");
        assert_eq!(node_of(&glitch, "1").as_deref(), Some("workers-1"));
    }

    /// What the memory was for stays as it was: a member whose node is deleted is
    /// its lost node, and a member whose server Heat names but no node carries has
    /// no node (it never joined, or its server was replaced).
    #[test]
    fn a_deleted_node_is_its_members_lost_node_and_a_named_server_without_a_node_has_none() {
        let configs = [config()];
        let both = [node("workers-0", "s0"), node("workers-1", "s1")];
        let mut assembler = GroupAssembler::new();
        assembler.assemble(&configs, &read(vec![member("0", Some("s0")), member("1", Some("s1"))]), &both);

        let only_0 = [node("workers-0", "s0")];
        let lost = assembler.assemble(&configs, &read(vec![member("0", Some("s0")), member("1", Some("s1"))]), &only_0);
        assert_eq!(node_of(&lost, "1").as_deref(), Some("workers-1"), "the lost node is named");

        let replaced =
            assembler.assemble(&configs, &read(vec![member("0", Some("s0-new")), member("1", Some("s1"))]), &both);
        assert_eq!(node_of(&replaced, "0"), None, "Heat names another server: the old node is not its node");
    }
}
