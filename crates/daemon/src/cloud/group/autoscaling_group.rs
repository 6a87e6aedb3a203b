//! `OS::Heat::AutoScalingGroup`: resized through a `desired_capacity`
//! parameter or `OS::Heat::ScalingPolicy` signals; on shrink Heat picks the
//! members to delete (see [`super::victims`]).
//!
//! Exact removal marks the chosen members unhealthy (`CHECK_FAILED`), which
//! puts them first in Heat's order, and then lowers the capacity parameter by
//! as many: Heat deletes exactly those, even the newest. Before touching Heat
//! the plan checks that Heat's rule picks exactly the requested members with
//! the marks applied, and refuses otherwise (another failed member would be
//! deleted in their place). A group resized only by signals cannot remove an
//! arbitrary member: a signal counts healthy members only, so marking one and
//! signalling deletes it *and* another.

use serde_json::json;

use super::{GroupError, GroupSnapshot, HeatChange, HeatMember, NodeGroupBackend, SizeChange, members, victims};
use super::{check_members, check_not_busy, check_range};
use crate::cloud::heat::{HeatClient, StackRef};
use crate::config::NodeGroupConfig;

const GROUP_TYPE: &str = "OS::Heat::AutoScalingGroup";
const MARK_REASON: &str = "drained by heatscaler; remove on the next resize";

#[derive(Debug)]
pub struct AutoscalingGroupBackend {
    heat: HeatClient,
    config: NodeGroupConfig,
    settle_timeout: std::time::Duration,
}

/// A scaling policy's `change_in_capacity` step, read from the stack's template.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PolicyStep(pub i64);

impl AutoscalingGroupBackend {
    pub fn new(heat: HeatClient, config: NodeGroupConfig) -> Self {
        AutoscalingGroupBackend { heat, config, settle_timeout: std::time::Duration::from_secs(30 * 60) }
    }

    /// How long one signal's resize may take (the configuration's `stack-update-timeout`).
    pub fn with_settle_timeout(mut self, timeout: std::time::Duration) -> Self {
        self.settle_timeout = timeout;
        self
    }

    fn refused(&self, reason: impl Into<String>) -> GroupError {
        GroupError::Refused { group: self.config.name.clone(), reason: reason.into() }
    }

    /// `size` less `by`, refused when Heat reports fewer than that: sizes come
    /// from Heat's answers, which a concurrent change can make smaller than the
    /// plan assumed (an unchecked `u32` subtraction panicked or wrapped).
    fn shrunk(&self, size: u32, by: usize, what: &str) -> Result<u32, GroupError> {
        shrunk(size, by)
            .ok_or_else(|| self.refused(format!("Heat reports {size} {what}, fewer than the {by} to remove")))
    }

    /// Reads a policy's step from the stack's template (`scaling_adjustment`,
    /// literal or `get_param`). Only `change_in_capacity` has a predictable effect.
    pub async fn policy_step(&self, stack: &StackRef, policy: &str) -> Result<PolicyStep, GroupError> {
        let template = self.heat.template(stack).await.map_err(GroupError::cloud(&self.config.name))?;
        let parameters = self.heat.show_stack(&stack.id, false).await.map_err(GroupError::cloud(&self.config.name))?;
        policy_step(&template, |p| parameters.parameter(p), policy).map_err(|e| self.refused(e))
    }

    /// Members after marking `marked` unhealthy, as Heat will order them.
    fn with_marks(members: &[HeatMember], marked: &[String]) -> Vec<HeatMember> {
        members
            .iter()
            .cloned()
            .map(|mut m| {
                if marked.contains(&m.name) {
                    m.heat_status = "CHECK_FAILED".into();
                }
                m
            })
            .collect()
    }
}

/// Pure part of [`AutoscalingGroupBackend::policy_step`].
pub(crate) fn policy_step(
    template: &serde_json::Value,
    parameter: impl Fn(&str) -> Option<String>,
    policy: &str,
) -> Result<PolicyStep, String> {
    let props = template
        .pointer(&format!("/resources/{policy}/properties"))
        .ok_or_else(|| format!("the stack template has no scaling policy {policy}"))?;
    let resolve = |v: &serde_json::Value| -> Option<String> {
        match v {
            serde_json::Value::String(s) => Some(s.clone()),
            serde_json::Value::Number(n) => Some(n.to_string()),
            serde_json::Value::Object(o) => o.get("get_param").and_then(|p| p.as_str()).and_then(&parameter),
            _ => None,
        }
    };
    let kind = props.get("adjustment_type").and_then(resolve).unwrap_or_else(|| "change_in_capacity".into());
    if kind != "change_in_capacity" {
        return Err(format!(
            "scaling policy {policy} has adjustment_type {kind}; only change_in_capacity is predictable"
        ));
    }
    let step = props
        .get("scaling_adjustment")
        .and_then(resolve)
        .and_then(|s| s.trim().parse::<i64>().ok())
        .ok_or_else(|| format!("scaling policy {policy} has no readable scaling_adjustment"))?;
    Ok(PolicyStep(step))
}

impl NodeGroupBackend for AutoscalingGroupBackend {
    fn config(&self) -> &NodeGroupConfig {
        &self.config
    }
    fn heat(&self) -> &HeatClient {
        &self.heat
    }

    async fn read(&self) -> Result<GroupSnapshot, GroupError> {
        let param = self.config.backend.desired_capacity_parameter.clone();
        members::read(&self.heat, &self.config, GROUP_TYPE, move |params, members| match &param {
            Some(p) => {
                let value = params.get(p).ok_or_else(|| format!("it has no parameter {p}"))?;
                value.trim().parse().map_err(|_| format!("parameter {p} is {value:?}, not a member count"))
            }
            // Signal-driven: Heat's current size counts the members that have not failed.
            None => Ok(members.iter().filter(|m| !m.heat_failed()).count() as u32),
        })
        .await
    }

    fn plan_grow(&self, snapshot: &GroupSnapshot, to: u32) -> Result<SizeChange, GroupError> {
        check_not_busy(snapshot)?;
        check_range(&self.config, to as i64)?;
        if to < snapshot.desired {
            return Err(self.refused(format!("{to} is below the current size {}", snapshot.desired)));
        }
        let change = match (&self.config.backend.desired_capacity_parameter, &self.config.backend.scale_up_policy) {
            (Some(p), _) => HeatChange::SetParameters([(p.clone(), json!(to))].into_iter().collect()),
            (None, Some(policy)) => {
                if snapshot.members.iter().any(HeatMember::heat_failed) {
                    return Err(self.refused(
                        "the group has failed members: a scale-up signal would keep them and add fewer minions \
                         than asked (Heat sizes from the healthy members); remove the failed members first",
                    ));
                }
                HeatChange::Signal { policy: policy.clone(), times: to - snapshot.desired }
            }
            (None, None) => return Err(self.refused("no desired-capacity-parameter or scale-up-policy to grow with")),
        };
        Ok(SizeChange { group: self.config.name.clone(), from: snapshot.desired, to, victims: vec![], change })
    }

    fn plan_remove(&self, snapshot: &GroupSnapshot, remove: &[String]) -> Result<SizeChange, GroupError> {
        check_not_busy(snapshot)?;
        check_members(snapshot, remove)?;
        let total = snapshot.members.len() as u32;
        let to = self.shrunk(total, remove.len(), "members")?;
        check_range(&self.config, to as i64)?;
        let mut requested = remove.to_vec();
        requested.sort();
        let same = |mut predicted: Vec<String>| {
            predicted.sort();
            if predicted == requested {
                Ok(())
            } else {
                Err(GroupError::VictimMismatch {
                    group: self.config.name.clone(),
                    requested: requested.clone(),
                    predicted,
                })
            }
        };
        let unknown =
            || self.refused("Heat's choice of members cannot be predicted yet (a member has no creation time)");
        if let Some(p) = &self.config.backend.desired_capacity_parameter {
            let marked = Self::with_marks(&snapshot.members, remove);
            same(victims::for_capacity(&marked, to).ok_or_else(unknown)?)?;
            return Ok(SizeChange {
                group: self.config.name.clone(),
                from: snapshot.desired,
                to,
                victims: remove.to_vec(),
                change: HeatChange::MarkUnhealthyThenSetParameters {
                    members: remove.to_vec(),
                    parameters: [(p.clone(), json!(to))].into_iter().collect(),
                },
            });
        }
        // Signal-driven: only Heat's own choice can be removed, one step at a time.
        let Some(policy) = &self.config.backend.scale_down_policy else {
            return Err(self.refused("no desired-capacity-parameter or scale-down-policy to shrink with"));
        };
        let (_, predicted) =
            victims::for_signal(&snapshot.members, -(remove.len() as i64), 0, u32::MAX).ok_or_else(unknown)?;
        same(predicted).map_err(|e| match e {
            GroupError::VictimMismatch { group, requested, predicted } => GroupError::Refused {
                group,
                reason: format!(
                    "a scale-down signal would delete {predicted:?}, not {requested:?}; removing a chosen member \
                     needs backend.desired-capacity-parameter"
                ),
            },
            other => other,
        })?;
        Ok(SizeChange {
            group: self.config.name.clone(),
            from: snapshot.desired,
            to: self.shrunk(snapshot.desired, remove.len(), "desired capacity")?,
            victims: remove.to_vec(),
            change: HeatChange::Signal { policy: policy.clone(), times: remove.len() as u32 },
        })
    }

    fn predicted_victims(&self, snapshot: &GroupSnapshot, n: u32) -> Result<Vec<String>, GroupError> {
        let unknown =
            || self.refused("Heat's choice of members cannot be predicted yet (a member has no creation time)");
        if self.config.backend.desired_capacity_parameter.is_some() {
            let total = snapshot.members.len() as u32;
            victims::for_capacity(&snapshot.members, total.saturating_sub(n)).ok_or_else(unknown)
        } else {
            Ok(victims::for_signal(&snapshot.members, -(n as i64), 0, u32::MAX).ok_or_else(unknown)?.1)
        }
    }

    async fn apply(&self, plan: &SizeChange) -> Result<(), GroupError> {
        let group = self.config.name.as_str();
        let now = self.read().await?;
        check_not_busy(&now)?;
        if now.desired != plan.from {
            return Err(self.refused(format!(
                "the group changed since the plan ({} members, planned from {})",
                now.desired, plan.from
            )));
        }
        tracing::info!(group, stack = %now.stack, %plan, "resizing group");
        match &plan.change {
            HeatChange::SetParameters(parameters) => {
                self.heat.update_parameters(&now.stack, parameters).await.map_err(GroupError::cloud(group))
            }
            HeatChange::MarkUnhealthyThenSetParameters { members, parameters } => {
                let members_stack =
                    now.members_stack.clone().ok_or_else(|| self.refused("the group has no members"))?;
                for member in members {
                    self.heat
                        .mark_unhealthy(&members_stack, member, MARK_REASON)
                        .await
                        .map_err(GroupError::cloud(group))?;
                }
                // Heat's order with the marks really applied: it must still pick exactly these.
                let marked = self.read().await?;
                let to = self.shrunk(marked.members.len() as u32, members.len(), "members")?;
                let predicted = victims::for_capacity(&marked.members, to).unwrap_or_default();
                let mut p = predicted.clone();
                p.sort();
                let mut r = members.clone();
                r.sort();
                if p != r {
                    return Err(GroupError::VictimMismatch { group: group.into(), requested: r, predicted });
                }
                self.heat.update_parameters(&marked.stack, parameters).await.map_err(GroupError::cloud(group))
            }
            HeatChange::Signal { policy, times } => {
                let step = self.policy_step(&now.stack, policy).await?.0;
                let timeout = self.settle_timeout;
                let mut done = 0;
                let mut size = now.desired as i64;
                let target = plan.to as i64;
                while done < *times && size != target {
                    if step == 0 || (target - size).signum() != step.signum() {
                        return Err(
                            self.refused(format!("scaling policy {policy} moves by {step}, away from {target}"))
                        );
                    }
                    self.wait_scaling_idle(&now.stack, policy).await?;
                    self.heat.signal(&now.stack, policy, None).await.map_err(GroupError::cloud(group))?;
                    // A signal is handled in the background: wait for it before the next one,
                    // or Heat would ignore it as "scaling in progress".
                    let after = self.wait_for_change(size as u32, timeout).await?;
                    size = after.desired as i64;
                    done += 1;
                }
                Ok(())
            }
        }
    }
}

impl AutoscalingGroupBackend {
    /// Waits until neither the policy nor the group is flagged
    /// `scaling_in_progress` in its metadata. Heat clears the flag after the
    /// resize's stack update completes; a signal in that window is dropped
    /// ("due to scaling activity"), so "the stack is idle" is not enough.
    async fn wait_scaling_idle(&self, stack: &StackRef, policy: &str) -> Result<(), GroupError> {
        let group = &self.config.name;
        let start = std::time::Instant::now();
        loop {
            let mut busy = Vec::new();
            for resource in [policy, self.config.backend.resource.as_str()] {
                let metadata = self.heat.resource_metadata(stack, resource).await.map_err(GroupError::cloud(group))?;
                if metadata.get("scaling_in_progress").and_then(serde_json::Value::as_bool) == Some(true) {
                    busy.push(resource.to_string());
                }
            }
            if busy.is_empty() {
                return Ok(());
            }
            if start.elapsed() > SIGNAL_GRACE {
                return Err(self.refused(format!(
                    "Heat still marks {} as scaling after {SIGNAL_GRACE:?}; not signalling",
                    busy.join(" and ")
                )));
            }
            tokio::time::sleep(std::time::Duration::from_millis(250)).await;
        }
    }

    /// Waits until a signal has resized the group away from `from`, and Heat is idle.
    ///
    /// Heat acts on a signal in the background and silently ignores one that
    /// arrives during the policy's cooldown: a group still unchanged and idle
    /// after [`SIGNAL_GRACE`] is reported as such rather than waited on for the
    /// whole settle timeout.
    async fn wait_for_change(&self, from: u32, timeout: std::time::Duration) -> Result<GroupSnapshot, GroupError> {
        let start = std::time::Instant::now();
        let mut interval = std::time::Duration::from_millis(250);
        loop {
            let now = self.read().await?;
            if !now.busy && now.desired != from {
                return Ok(now);
            }
            if !now.busy && start.elapsed() > SIGNAL_GRACE {
                return Err(self.refused(format!(
                    "Heat did not act on the signal within {SIGNAL_GRACE:?} (the policy's cooldown?); the group still has {from} members"
                )));
            }
            if start.elapsed() + interval > timeout {
                return Err(GroupError::Cloud {
                    group: self.config.name.clone(),
                    source: crate::cloud::CloudError::Timeout {
                        op: format!("wait for a signal to resize group {}", self.config.name),
                        timeout,
                    },
                });
            }
            tokio::time::sleep(interval).await;
            interval = (interval * 3 / 2).min(std::time::Duration::from_secs(3));
        }
    }
}

/// How long an idle, unchanged group means Heat ignored a signal.
const SIGNAL_GRACE: std::time::Duration = std::time::Duration::from_secs(60);

fn shrunk(size: u32, by: usize) -> Option<u32> {
    u32::try_from(by).ok().and_then(|by| size.checked_sub(by))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_from_heat_are_subtracted_with_a_check() {
        assert_eq!(shrunk(3, 2), Some(1));
        assert_eq!(shrunk(1, 2), None);
        assert_eq!(shrunk(u32::MAX, usize::MAX), None);
    }

    #[test]
    fn policy_step_reads_literal_and_parameter() {
        let t = json!({"resources": {
            "down": {"type": "OS::Heat::ScalingPolicy", "properties": {"adjustment_type": "change_in_capacity", "scaling_adjustment": -1}},
            "up": {"type": "OS::Heat::ScalingPolicy", "properties": {"scaling_adjustment": {"get_param": "step"}}},
            "pct": {"type": "OS::Heat::ScalingPolicy", "properties": {"adjustment_type": "percent_change_in_capacity", "scaling_adjustment": 10}}
        }});
        let params = |p: &str| (p == "step").then(|| "2".to_string());
        assert_eq!(policy_step(&t, params, "down"), Ok(PolicyStep(-1)));
        assert_eq!(policy_step(&t, params, "up"), Ok(PolicyStep(2)));
        assert!(policy_step(&t, params, "pct").unwrap_err().contains("percent_change_in_capacity"));
        assert!(policy_step(&t, params, "nope").unwrap_err().contains("no scaling policy nope"));
    }
}
