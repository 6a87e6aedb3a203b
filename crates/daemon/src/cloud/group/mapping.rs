//! Joining Heat members with Kubernetes nodes. Pure: the daemon and
//! `heatscaler groups` call it with whatever nodes they listed.

use std::collections::{BTreeMap, BTreeSet};

use super::{HeatMember, NodeKey};
use crate::config::NodeMapping;
use heatscaler_core::model::{Member, Node};

/// Node label the minion templates set to the group's name: nodes carrying it
/// belong to the group, so one of them without a member is worth reporting.
pub const GROUP_LABEL: &str = "heatscaler.io/node-group";

/// The parts of a node that identify it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct NodeIdentity {
    pub name: String,
    pub provider_id: Option<String>,
    pub labels: BTreeMap<String, String>,
}

impl From<&Node> for NodeIdentity {
    fn from(n: &Node) -> Self {
        NodeIdentity { name: n.name.clone(), provider_id: n.provider_id.clone(), labels: n.labels.clone() }
    }
}

impl NodeIdentity {
    /// The server UUID in a providerID: `openstack:///<uuid>`, also
    /// `openstack://<region>/<uuid>` as some cloud providers write it.
    fn server_id(&self) -> Option<&str> {
        let rest = self.provider_id.as_deref()?.strip_prefix("openstack://")?;
        rest.rsplit('/').next().filter(|s| !s.is_empty())
    }

    fn has(&self, key: &NodeKey) -> bool {
        match key {
            NodeKey::ServerId(id) => self.server_id() == Some(id.as_str()),
            NodeKey::NodeName(name) => &self.name == name,
            NodeKey::Label { key, value } => self.labels.get(key) == Some(value),
        }
    }
}

/// Members with their nodes, and what did not match.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct MemberJoin {
    pub members: Vec<Member>,
    /// Members whose node has not registered (yet), by member name.
    pub members_without_node: Vec<String>,
    /// Nodes labelled as this group's with no member behind them (deleted by
    /// hand in Heat, or from another stack).
    pub nodes_without_member: Vec<String>,
}

pub fn join_members(group: &str, members: &[HeatMember], mapping: &NodeMapping, nodes: &[NodeIdentity]) -> MemberJoin {
    let mut join = MemberJoin::default();
    let mut matched = BTreeSet::new();
    for m in members {
        let node = m.node_key(mapping).and_then(|key| {
            let mut hits = nodes.iter().filter(|n| n.has(&key));
            let first = hits.next();
            if first.is_some() && hits.next().is_some() {
                tracing::warn!(member = %m.name, ?key, "several nodes match one member; mapping none");
                return None;
            }
            first
        });
        if let Some(n) = node {
            matched.insert(n.name.clone());
        } else {
            join.members_without_node.push(m.name.clone());
        }
        join.members.push(Member {
            id: m.name.clone(),
            node_name: node.map(|n| n.name.clone()),
            status: m.status,
            created: m.created,
        });
    }
    join.nodes_without_member = nodes
        .iter()
        .filter(|n| n.labels.get(GROUP_LABEL).map(String::as_str) == Some(group) && !matched.contains(&n.name))
        .map(|n| n.name.clone())
        .collect();
    join
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::NodeMappingKind;
    use heatscaler_core::model::MemberStatus;

    fn member(name: &str, server: &str, node_name: Option<&str>) -> HeatMember {
        HeatMember {
            name: name.into(),
            status: MemberStatus::Complete,
            heat_status: "CREATE_COMPLETE".into(),
            status_reason: None,
            created: None,
            heat_created: None,
            physical_id: None,
            server_id: Some(server.into()),
            node_name: node_name.map(Into::into),
        }
    }

    fn node(name: &str, provider: Option<&str>, labels: &[(&str, &str)]) -> NodeIdentity {
        NodeIdentity {
            name: name.into(),
            provider_id: provider.map(Into::into),
            labels: labels.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
        }
    }

    #[test]
    fn provider_id_mapping_reports_both_kinds_of_orphans() {
        let members = [member("0", "uuid-a", None), member("1", "uuid-b", None)];
        let nodes = [
            node("a", Some("openstack:///uuid-a"), &[(GROUP_LABEL, "workers")]),
            node("stray", Some("openstack:///uuid-x"), &[(GROUP_LABEL, "workers")]),
            node("master", Some("openstack:///uuid-m"), &[]),
            node("regional", Some("openstack://RegionOne/uuid-c"), &[]),
        ];
        let mapping = NodeMapping { by: NodeMappingKind::ProviderId, label: None };
        let j = join_members("workers", &members, &mapping, &nodes);
        assert_eq!(j.members[0].node_name.as_deref(), Some("a"));
        assert_eq!(j.members[1].node_name, None);
        assert_eq!(j.members_without_node, ["1"]);
        assert_eq!(j.nodes_without_member, ["stray"]);
        let j = join_members("workers", &[member("2", "uuid-c", None)], &mapping, &nodes);
        assert_eq!(j.members[0].node_name.as_deref(), Some("regional"));
    }

    #[test]
    fn label_and_name_mapping() {
        let members = [member("7", "x", Some("minion-abc"))];
        let nodes = [node("minion-abc", None, &[("heatscaler.io/member", "7")])];
        let by_label = NodeMapping { by: NodeMappingKind::Label, label: Some("heatscaler.io/member".into()) };
        assert_eq!(join_members("g", &members, &by_label, &nodes).members[0].node_name.as_deref(), Some("minion-abc"));
        let by_name = NodeMapping { by: NodeMappingKind::NodeName, label: None };
        assert_eq!(join_members("g", &members, &by_name, &nodes).members[0].node_name.as_deref(), Some("minion-abc"));
    }
}
