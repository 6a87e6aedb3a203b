//! Reading a group's members from Heat, and the key that ties each to its node.

use std::collections::BTreeMap;
use std::time::Duration;

use futures::StreamExt;

use super::{GroupError, GroupSnapshot};
use crate::cloud::heat::{HeatClient, Resource, Stack, State, parse_status};
use crate::config::{NodeGroupConfig, NodeMapping, NodeMappingKind};
use heatscaler_core::model::{MemberStatus, Timestamp};

/// Resource type of a minion's server, found inside nested-stack members.
const SERVER_TYPE: &str = "OS::Nova::Server";
/// Re-reads of a stack whose resource list lacked the group resource.
const MISSING_GROUP_RETRIES: u32 = 3;
/// Pause before the first such re-read; each next one waits this much longer.
const MISSING_GROUP_PAUSE: Duration = Duration::from_millis(200);
/// Output of a member's nested stack naming its node, for `node-mapping: by: node-name`.
pub const NODE_NAME_OUTPUT: &str = "node_name";

/// One member of a group as Heat reports it.
#[derive(Clone, Debug, PartialEq)]
pub struct HeatMember {
    /// Resource name in the group (`"3"` in a ResourceGroup, a short ID in an ASG).
    pub name: String,
    pub status: MemberStatus,
    /// Heat's own status, e.g. `CREATE_FAILED`.
    pub heat_status: String,
    pub status_reason: Option<String>,
    pub created: Option<Timestamp>,
    /// Heat's creation time as text (whole seconds): what Heat sorts victims by.
    pub heat_created: Option<String>,
    /// The member's physical ID (its nested stack, or the server itself).
    pub physical_id: Option<String>,
    /// UUID of the member's `OS::Nova::Server`.
    pub server_id: Option<String>,
    /// The member's `node_name` output, read only for `by: node-name`.
    pub node_name: Option<String>,
}

/// What a Kubernetes node must carry to be this member's node.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum NodeKey {
    /// The server UUID in `spec.providerID` (`openstack:///<uuid>`).
    ServerId(String),
    NodeName(String),
    Label {
        key: String,
        value: String,
    },
}

impl HeatMember {
    pub fn node_key(&self, mapping: &NodeMapping) -> Option<NodeKey> {
        match mapping.by {
            NodeMappingKind::ProviderId => self.server_id.clone().map(NodeKey::ServerId),
            NodeMappingKind::NodeName => self.node_name.clone().map(NodeKey::NodeName),
            NodeMappingKind::Label => mapping.label.clone().map(|key| NodeKey::Label { key, value: self.name.clone() }),
        }
    }

    /// Any `*_FAILED`: Heat's scaling groups delete these first.
    pub fn heat_failed(&self) -> bool {
        parse_status(&self.heat_status).1 == Some(State::Failed)
    }
}

/// Heat's status of a member, in the planner's terms.
pub fn member_status(heat_status: &str) -> MemberStatus {
    match parse_status(heat_status) {
        ("DELETE", _) => MemberStatus::Deleting,
        ("INIT", _) | (_, Some(State::InProgress)) => MemberStatus::InProgress,
        ("CREATE", Some(State::Failed)) => MemberStatus::Failed,
        ("CHECK", Some(State::Failed)) => MemberStatus::MarkedForRemoval,
        // UPDATE_FAILED and the like: the server exists and may be a node.
        _ => MemberStatus::Complete,
    }
}

/// Reads the stack, its group resource (which must be of `group_type`) and the
/// members with their servers.
pub(crate) async fn read(
    heat: &HeatClient,
    config: &NodeGroupConfig,
    group_type: &str,
    desired: impl FnOnce(&BTreeMap<String, String>, &[HeatMember]) -> Result<u32, String>,
) -> Result<GroupSnapshot, GroupError> {
    let group = config.name.as_str();
    let (stack, top) = stack_and_resources(heat, config).await?;
    let stack_ref = stack.reference();
    let layout = |problem: String| GroupError::Layout { group: group.into(), stack: stack.stack_name.clone(), problem };
    let group_resource = top
        .iter()
        .find(|r| r.resource_name == config.backend.resource)
        .ok_or_else(|| layout(format!("it has no resource named {}", config.backend.resource)))?;
    if group_resource.resource_type != group_type {
        return Err(layout(format!(
            "resource {} is a {}, not an {group_type}",
            group_resource.resource_name, group_resource.resource_type
        )));
    }
    let mut busy = stack.in_progress() || top.iter().any(Resource::in_progress);

    let members_stack = group_resource.nested_stack();
    let mut members = Vec::new();
    if let Some(nested) = &members_stack {
        let all = heat.list_resources(nested, 1).await.map_err(GroupError::cloud(group))?;
        let (own, children): (Vec<_>, Vec<_>) =
            all.into_iter().partition(|r| r.stack().is_some_and(|s| s.id == nested.id));
        for r in &own {
            members.push(member_from(r, &children));
        }
        busy |= own.iter().any(Resource::in_progress);
        if config.node_mapping.by == NodeMappingKind::NodeName {
            fill_node_names(heat, &own, &mut members).await;
        }
    }
    let parameters: BTreeMap<String, String> =
        stack.parameters.keys().filter_map(|k| stack.parameter(k).map(|v| (k.clone(), v))).collect();
    let desired = desired(&parameters, &members).map_err(layout)?;
    Ok(GroupSnapshot {
        group: group.to_string(),
        stack: stack_ref,
        stack_status: stack.stack_status.clone(),
        stack_status_reason: stack.stack_status_reason.clone().unwrap_or_default(),
        updated: stack.updated_time.clone(),
        busy,
        desired,
        members,
        members_stack,
        parameters,
    })
}

/// The stack and its top-level resources: the group, and the scaling policies
/// whose signals resize it.
///
/// Heat once listed a test stack's resources without its group resource while
/// (or just as) an update of it ran; the next read had it. Heat's convergence
/// engine builds each listed resource from the template its database row names
/// and silently drops one whose template it cannot load, and it deletes the
/// previous template as an update completes; the exact interleaving was not
/// reproduced. So a missing group resource is read again a few times, briefly,
/// before it counts as a layout error (which costs a misconfigured stack about
/// a second per read).
async fn stack_and_resources(
    heat: &HeatClient,
    config: &NodeGroupConfig,
) -> Result<(Stack, Vec<Resource>), GroupError> {
    let group = config.name.as_str();
    let mut attempt = 0;
    loop {
        let stack = heat.show_stack(&config.stack, false).await.map_err(GroupError::cloud(group))?;
        let top = heat.list_resources(&stack.reference(), 0).await.map_err(GroupError::cloud(group))?;
        if attempt == MISSING_GROUP_RETRIES || top.iter().any(|r| r.resource_name == config.backend.resource) {
            return Ok((stack, top));
        }
        attempt += 1;
        tracing::debug!(%group, stack = %stack.stack_name, status = %stack.stack_status, attempt,
            "group resource not listed; reading the stack again");
        tokio::time::sleep(MISSING_GROUP_PAUSE * attempt).await;
    }
}

fn member_from(r: &Resource, children: &[Resource]) -> HeatMember {
    let servers: Vec<&Resource> = children
        .iter()
        .filter(|c| c.parent_resource.as_deref() == Some(&r.resource_name) && c.resource_type == SERVER_TYPE)
        .collect();
    let server_id = if r.resource_type == SERVER_TYPE {
        r.physical_id().map(str::to_string)
    } else {
        match servers.as_slice() {
            [one] => one.physical_id().map(str::to_string),
            [] => None,
            many => {
                tracing::warn!(member = %r.resource_name, servers = many.len(), "member has several servers; cannot tell which is the node");
                None
            }
        }
    };
    HeatMember {
        name: r.resource_name.clone(),
        status: member_status(&r.resource_status),
        heat_status: r.resource_status.clone(),
        status_reason: r.resource_status_reason.clone(),
        created: r.creation_time.as_deref().and_then(parse_heat_time),
        heat_created: r.creation_time.clone(),
        physical_id: r.physical_id().map(str::to_string),
        server_id,
        node_name: None,
    }
}

async fn fill_node_names(heat: &HeatClient, own: &[Resource], members: &mut [HeatMember]) {
    // A member Heat is deleting has no node to find, and its stack may be gone
    // by the time its output is asked for: not worth a lookup, nor a warning.
    let lookups: Vec<(usize, crate::cloud::heat::StackRef)> = own
        .iter()
        .enumerate()
        .filter(|(i, _)| members[*i].status != MemberStatus::Deleting)
        .filter_map(|(i, r)| r.nested_stack().map(|s| (i, s)))
        .collect();
    let names: Vec<(usize, Option<String>)> = futures::stream::iter(lookups)
        .map(|(i, s)| async move {
            let name = match heat.stack_output(&s, NODE_NAME_OUTPUT).await {
                Ok(o) => o.output_value.as_str().map(str::to_string),
                // Deleted between the listing and this read (a removal at work).
                Err(e) if e.is_not_found() => {
                    tracing::debug!(stack = %s, error = %e, "member stack gone before its {NODE_NAME_OUTPUT} output was read");
                    None
                }
                Err(e) => {
                    tracing::warn!(stack = %s, error = %e, "member has no readable {NODE_NAME_OUTPUT} output");
                    None
                }
            };
            (i, name)
        })
        .buffer_unordered(8)
        .collect()
        .await;
    for (i, name) in names {
        members[i].node_name = name;
    }
}

/// Heat writes UTC without an offset (`2024-05-01T10:00:00Z` or `...T10:00:00`).
pub(super) fn parse_heat_time(text: &str) -> Option<Timestamp> {
    let with_zone = if text.ends_with('Z') { text.to_string() } else { format!("{text}Z") };
    with_zone.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn heat_statuses_map_to_member_statuses() {
        assert_eq!(member_status("CREATE_COMPLETE"), MemberStatus::Complete);
        assert_eq!(member_status("CREATE_FAILED"), MemberStatus::Failed);
        assert_eq!(member_status("CHECK_FAILED"), MemberStatus::MarkedForRemoval);
        assert_eq!(member_status("CREATE_IN_PROGRESS"), MemberStatus::InProgress);
        assert_eq!(member_status("INIT_COMPLETE"), MemberStatus::InProgress);
        assert_eq!(member_status("DELETE_IN_PROGRESS"), MemberStatus::Deleting);
        assert_eq!(member_status("DELETE_FAILED"), MemberStatus::Deleting);
        assert_eq!(member_status("UPDATE_FAILED"), MemberStatus::Complete);
    }

    #[test]
    fn heat_times_parse_with_or_without_zone() {
        assert!(parse_heat_time("2026-11-23T12:53:22Z").is_some());
        assert_eq!(parse_heat_time("2026-11-23T12:53:22"), parse_heat_time("2026-11-23T12:53:22Z"));
    }
}
