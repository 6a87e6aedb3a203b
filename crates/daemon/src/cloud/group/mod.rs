//! Node groups: a Heat-managed group of minions, read and resized.
//!
//! One trait, [`NodeGroupBackend`], for the daemon and the CLI; two layouts
//! behind it. A change is first *planned* from a fresh [`GroupSnapshot`] (pure:
//! what would be sent, and which members Heat will delete), then *applied*,
//! which re-reads the stack and refuses to send anything while Heat is busy.
//! `--dry-run` is a plan that is printed instead of applied.

mod autoscaling_group;
mod mapping;
mod members;
mod resource_group;
pub mod victims;
mod wiring;

use std::future::Future;
use std::time::Duration;

pub use autoscaling_group::AutoscalingGroupBackend;
pub use mapping::{GROUP_LABEL, MemberJoin, NodeIdentity, join_members};
pub use members::{HeatMember, NodeKey, member_status};
pub use resource_group::ResourceGroupBackend;
pub use wiring::WiringError;

use super::CloudError;
use super::heat::{HeatClient, StackRef};
use crate::config::{BackendKind, NodeGroupConfig};
use heatscaler_core::model::{GroupState, Member, MemberStatus};

/// A group as last read from Heat.
#[derive(Clone, Debug)]
pub struct GroupSnapshot {
    pub group: String,
    pub stack: StackRef,
    pub stack_status: String,
    pub stack_status_reason: String,
    /// When Heat last started updating the stack: changes with every update.
    pub updated: Option<String>,
    /// The stack, the group resource, a scaling policy or a member is `*_IN_PROGRESS`.
    pub busy: bool,
    /// The size Heat is asked to keep.
    pub desired: u32,
    pub members: Vec<HeatMember>,
    /// The group's own nested stack (where members live); `None` before it exists.
    pub members_stack: Option<StackRef>,
    pub(crate) parameters: std::collections::BTreeMap<String, String>,
}

impl GroupSnapshot {
    /// When Heat began the update the stack itself is in: its `updated_time`
    /// while it is `*_IN_PROGRESS` (Heat sets it when an update starts).
    /// `None` when the stack is not in progress itself (only a member or a
    /// nested resource is), or Heat gives no time (a stack being created).
    pub fn update_began(&self) -> Option<heatscaler_core::model::Timestamp> {
        if !self.stack_status.ends_with("_IN_PROGRESS") {
            return None;
        }
        self.updated.as_deref().and_then(members::parse_heat_time)
    }

    /// Whether the stack has this parameter.
    pub fn has_parameter(&self, name: &str) -> bool {
        self.parameters.contains_key(name)
    }

    pub fn member(&self, name: &str) -> Option<&HeatMember> {
        self.members.iter().find(|m| m.name == name)
    }

    /// The planner's view, with members already joined to their nodes.
    pub fn to_group_state(&self, config: &NodeGroupConfig, members: Vec<Member>) -> GroupState {
        GroupState {
            name: config.name.clone(),
            desired: self.desired,
            min_size: config.min_size,
            max_size: config.max_size,
            members,
            stack_busy: self.busy,
            template: None,
            price_per_hour: config.price_per_hour.unwrap_or(0.0),
            priority: config.priority,
        }
    }
}

/// What a change sends to Heat.
#[derive(Clone, Debug, PartialEq)]
pub enum HeatChange {
    /// One stack update (PATCH) with these parameters changed.
    SetParameters(serde_json::Map<String, serde_json::Value>),
    /// Mark these members unhealthy, then one stack update with these parameters.
    MarkUnhealthyThenSetParameters { members: Vec<String>, parameters: serde_json::Map<String, serde_json::Value> },
    /// Signal a scaling policy this many times, waiting for each to settle.
    Signal { policy: String, times: u32 },
}

/// A planned change: from which size to which, and what Heat will delete.
#[derive(Clone, Debug, PartialEq)]
pub struct SizeChange {
    pub group: String,
    pub from: u32,
    pub to: u32,
    /// Members Heat will delete (named, or predicted from Heat's rule).
    pub victims: Vec<String>,
    pub change: HeatChange,
}

impl std::fmt::Display for SizeChange {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "group {}: {} -> {} member(s)", self.group, self.from, self.to)?;
        if !self.victims.is_empty() {
            write!(f, ", deleting {}", self.victims.join(", "))?;
        }
        match &self.change {
            HeatChange::SetParameters(p) => write!(f, "; stack update with {}", params_text(p)),
            HeatChange::MarkUnhealthyThenSetParameters { members, parameters } => {
                write!(f, "; mark {} unhealthy, then stack update with {}", members.join(", "), params_text(parameters))
            }
            HeatChange::Signal { policy, times } => write!(f, "; signal {policy} x{times}"),
        }
    }
}

fn params_text(p: &serde_json::Map<String, serde_json::Value>) -> String {
    p.iter().map(|(k, v)| format!("{k}={}", super::heat::parameter_text(v))).collect::<Vec<_>>().join(" ")
}

/// Why a group could not be read or changed.
#[derive(Debug, thiserror::Error)]
pub enum GroupError {
    #[error("group {group}: {source}")]
    Cloud {
        group: String,
        #[source]
        source: CloudError,
    },
    #[error("group {group}: stack {stack} is busy ({status}); nothing is sent to Heat while it works")]
    StackBusy { group: String, stack: String, status: String },
    #[error("group {group}: stack {stack} does not match the configuration: {problem}")]
    Layout { group: String, stack: String, problem: String },
    #[error("group {group}: no member named {member} (members: {known})")]
    UnknownMember { group: String, member: String, known: String },
    #[error("group {group}: {size} is outside min-size {min} .. max-size {max}")]
    OutOfRange { group: String, size: i64, min: u32, max: u32 },
    #[error("group {group}: {reason}")]
    Refused { group: String, reason: String },
    #[error(
        "group {group}: removal from stack {stack} is not wired: {source}. Nothing is removed from this group until \
         resource {resource} has `removal_policies: [{{resource_list: {{get_param: {parameter}}}}}]` in the stack's \
         template (or backend.removal-parameter names the parameter its removal_policies use)"
    )]
    NotWired {
        group: String,
        stack: String,
        resource: String,
        parameter: String,
        /// Boxed: Heat's error inside is large, and every `Result` of a group carries this type.
        #[source]
        source: Box<WiringError>,
    },
    #[error("group {group}: Heat would delete {predicted:?}, not the requested {requested:?}; nothing was removed")]
    VictimMismatch { group: String, requested: Vec<String>, predicted: Vec<String> },
}

impl GroupError {
    /// What kind of failure this is, for the `reason` label of metrics.
    pub fn reason(&self) -> &'static str {
        match self {
            GroupError::Cloud { source, .. } => match source {
                CloudError::AuthFailed { .. } | CloudError::Unauthorized { .. } => "keystone_rejected",
                CloudError::KeystoneUnreachable { .. } | CloudError::Keystone { .. } => "keystone_unavailable",
                CloudError::NoEndpoint { .. } | CloudError::Config(_) => "configuration",
                CloudError::NotFound { .. } => "stack_not_found",
                CloudError::Unreachable { .. } | CloudError::Timeout { .. } => "heat_unreachable",
                CloudError::Server { .. } | CloudError::Unexpected { .. } | CloudError::BadResponse { .. } => {
                    "heat_error"
                }
                CloudError::Conflict { .. } | CloudError::BadRequest { .. } => "heat_refused",
            },
            GroupError::Layout { .. } | GroupError::NotWired { .. } => "stack_layout",
            _ => "refused",
        }
    }

    pub(crate) fn cloud(group: &str) -> impl FnOnce(CloudError) -> GroupError + '_ {
        move |source| GroupError::Cloud { group: group.to_string(), source }
    }
}

/// A Heat-managed group of minions. Implemented per layout; [`Backend`] picks
/// the one a group's configuration names.
pub trait NodeGroupBackend: Send + Sync {
    fn config(&self) -> &NodeGroupConfig;
    fn heat(&self) -> &HeatClient;

    /// Reads the group from Heat.
    fn read(&self) -> impl Future<Output = Result<GroupSnapshot, GroupError>> + Send;

    /// Plans growing the group to `to` members. Pure.
    fn plan_grow(&self, snapshot: &GroupSnapshot, to: u32) -> Result<SizeChange, GroupError>;

    /// Plans removing exactly `members`, in one stack update. Pure.
    fn plan_remove(&self, snapshot: &GroupSnapshot, members: &[String]) -> Result<SizeChange, GroupError>;

    /// Plans removing exactly `members` with the group ending at `to` members
    /// (`to` ≥ desired − k replaces some of them). Layouts that can only end
    /// at desired − k refuse any other `to`.
    fn plan_remove_to(&self, snapshot: &GroupSnapshot, members: &[String], to: u32) -> Result<SizeChange, GroupError> {
        let plan = self.plan_remove(snapshot, members)?;
        if plan.to == to {
            return Ok(plan);
        }
        Err(GroupError::Refused {
            group: self.config().name.clone(),
            reason: format!(
                "removing {} member(s) leaves {} here; ending at {to} (replacing members) is supported for \
                 resource-group only",
                members.len(),
                plan.to
            ),
        })
    }

    /// Checks, as Heat resolves the stack, that removing named members really
    /// removes those (and not others). Called before any node is marked for a
    /// removal; layouts whose removal needs no wiring have nothing to check.
    fn verify_removal(&self, _snapshot: &GroupSnapshot) -> impl Future<Output = Result<(), GroupError>> + Send {
        async { Ok(()) }
    }

    /// Carries a plan out. Re-reads the stack first and sends nothing while it is
    /// busy or when Heat's state no longer matches the plan.
    fn apply(&self, plan: &SizeChange) -> impl Future<Output = Result<(), GroupError>> + Send;

    /// Plans `to` members: growth, or (for shrinking) the members Heat would pick
    /// itself, which only layouts with a deterministic choice can offer.
    fn plan_scale(&self, snapshot: &GroupSnapshot, to: u32) -> Result<SizeChange, GroupError> {
        if to >= snapshot.desired {
            return self.plan_grow(snapshot, to);
        }
        let victims = self.predicted_victims(snapshot, snapshot.desired - to)?;
        self.plan_remove(snapshot, &victims)
    }

    /// Members Heat itself would delete when the group shrinks by `n`.
    fn predicted_victims(&self, snapshot: &GroupSnapshot, n: u32) -> Result<Vec<String>, GroupError>;

    fn grow_to(&self, to: u32) -> impl Future<Output = Result<SizeChange, GroupError>> + Send {
        async move {
            let snapshot = self.read().await?;
            let plan = self.plan_grow(&snapshot, to)?;
            self.apply(&plan).await?;
            Ok(plan)
        }
    }

    fn remove(&self, members: &[String]) -> impl Future<Output = Result<SizeChange, GroupError>> + Send {
        async move {
            let snapshot = self.read().await?;
            let plan = self.plan_remove(&snapshot, members)?;
            self.apply(&plan).await?;
            Ok(plan)
        }
    }

    /// Waits until Heat has finished with the stack, then reads the group.
    fn wait_settled(&self, timeout: Duration) -> impl Future<Output = Result<GroupSnapshot, GroupError>> + Send {
        async move {
            let deadline = std::time::Instant::now() + timeout;
            let mut interval = Duration::from_millis(250);
            loop {
                let snapshot = self.read().await?;
                if !snapshot.busy {
                    return Ok(snapshot);
                }
                if std::time::Instant::now() + interval > deadline {
                    return Err(GroupError::Cloud {
                        group: self.config().name.clone(),
                        source: CloudError::Timeout {
                            op: format!("wait for stack {} to settle", snapshot.stack),
                            timeout,
                        },
                    });
                }
                tokio::time::sleep(interval).await;
                interval = (interval * 3 / 2).min(Duration::from_secs(3));
            }
        }
    }
}

/// The backend a group's configuration names.
#[derive(Debug)]
pub enum Backend {
    ResourceGroup(ResourceGroupBackend),
    AutoscalingGroup(AutoscalingGroupBackend),
}

impl Backend {
    pub fn new(heat: HeatClient, config: NodeGroupConfig) -> Backend {
        match config.backend.kind {
            BackendKind::ResourceGroup => Backend::ResourceGroup(ResourceGroupBackend::new(heat, config)),
            BackendKind::AutoscalingGroup => Backend::AutoscalingGroup(AutoscalingGroupBackend::new(heat, config)),
        }
    }

    /// How long a resize that heatscaler waits on may take (`openstack.stack-update-timeout`).
    pub fn with_settle_timeout(self, timeout: Duration) -> Backend {
        match self {
            Backend::AutoscalingGroup(b) => Backend::AutoscalingGroup(b.with_settle_timeout(timeout)),
            other => other,
        }
    }
}

macro_rules! delegate {
    ($self:ident, $b:ident => $e:expr) => {
        match $self {
            Backend::ResourceGroup($b) => $e,
            Backend::AutoscalingGroup($b) => $e,
        }
    };
}

impl NodeGroupBackend for Backend {
    fn config(&self) -> &NodeGroupConfig {
        delegate!(self, b => b.config())
    }
    fn heat(&self) -> &HeatClient {
        delegate!(self, b => b.heat())
    }
    async fn read(&self) -> Result<GroupSnapshot, GroupError> {
        delegate!(self, b => b.read().await)
    }
    fn plan_grow(&self, snapshot: &GroupSnapshot, to: u32) -> Result<SizeChange, GroupError> {
        delegate!(self, b => b.plan_grow(snapshot, to))
    }
    fn plan_remove(&self, snapshot: &GroupSnapshot, members: &[String]) -> Result<SizeChange, GroupError> {
        delegate!(self, b => b.plan_remove(snapshot, members))
    }
    fn plan_remove_to(&self, snapshot: &GroupSnapshot, members: &[String], to: u32) -> Result<SizeChange, GroupError> {
        delegate!(self, b => b.plan_remove_to(snapshot, members, to))
    }
    async fn apply(&self, plan: &SizeChange) -> Result<(), GroupError> {
        delegate!(self, b => b.apply(plan).await)
    }
    async fn verify_removal(&self, snapshot: &GroupSnapshot) -> Result<(), GroupError> {
        delegate!(self, b => b.verify_removal(snapshot).await)
    }
    fn predicted_victims(&self, snapshot: &GroupSnapshot, n: u32) -> Result<Vec<String>, GroupError> {
        delegate!(self, b => b.predicted_victims(snapshot, n))
    }
}

/// Shared checks before any plan.
pub(crate) fn check_not_busy(snapshot: &GroupSnapshot) -> Result<(), GroupError> {
    if snapshot.busy {
        return Err(GroupError::StackBusy {
            group: snapshot.group.clone(),
            stack: snapshot.stack.name.clone(),
            status: snapshot.stack_status.clone(),
        });
    }
    Ok(())
}

pub(crate) fn check_range(config: &NodeGroupConfig, size: i64) -> Result<(), GroupError> {
    if size < config.min_size as i64 || size > config.max_size as i64 {
        return Err(GroupError::OutOfRange {
            group: config.name.clone(),
            size,
            min: config.min_size,
            max: config.max_size,
        });
    }
    Ok(())
}

/// Every requested member exists, is named once, and is not already going away.
pub(crate) fn check_members(snapshot: &GroupSnapshot, requested: &[String]) -> Result<(), GroupError> {
    let mut seen = std::collections::BTreeSet::new();
    for name in requested {
        let Some(member) = snapshot.member(name) else {
            return Err(GroupError::UnknownMember {
                group: snapshot.group.clone(),
                member: name.clone(),
                known: snapshot.members.iter().map(|m| m.name.as_str()).collect::<Vec<_>>().join(", "),
            });
        };
        if member.status == MemberStatus::Deleting {
            return Err(GroupError::Refused {
                group: snapshot.group.clone(),
                reason: format!("member {name} is already being deleted"),
            });
        }
        if !seen.insert(name) {
            return Err(GroupError::Refused {
                group: snapshot.group.clone(),
                reason: format!("member {name} is named twice"),
            });
        }
    }
    if requested.is_empty() {
        return Err(GroupError::Refused {
            group: snapshot.group.clone(),
            reason: "no member to remove was named".into(),
        });
    }
    Ok(())
}
