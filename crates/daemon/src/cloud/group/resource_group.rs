//! `OS::Heat::ResourceGroup` (Magnum's layout): a count parameter, and a
//! removal-policy parameter (`removal_policies: [{resource_list: <param>}]`)
//! naming the exact members to delete.
//!
//! Heat keeps a record of every name ever listed for removal and never reuses
//! those names; by default (`removal_policies_mode: append`) each update adds to
//! that record. In `update` mode the record is replaced by the parameter's value,
//! so a later update whose list omitted old names would bring those names back
//! and delete the members that now hold higher indices. The parameter therefore
//! always carries every name listed before plus the new ones: correct in both
//! modes, and harmless since Heat ignores names that are not members.

use serde_json::json;

use super::wiring::{Definition, WiringError, WiringKey};
use super::{GroupError, GroupSnapshot, HeatChange, NodeGroupBackend, SizeChange, members};
use super::{check_members, check_not_busy, check_range};
use crate::cloud::heat::HeatClient;
use crate::config::NodeGroupConfig;

const GROUP_TYPE: &str = "OS::Heat::ResourceGroup";

#[derive(Debug)]
pub struct ResourceGroupBackend {
    heat: HeatClient,
    config: NodeGroupConfig,
    /// Heat's last answer on the removal wiring, and the stack definition it was for.
    wired: std::sync::Mutex<Option<(WiringKey, Result<(), String>)>>,
}

impl ResourceGroupBackend {
    pub fn new(heat: HeatClient, config: NodeGroupConfig) -> Self {
        ResourceGroupBackend { heat, config, wired: std::sync::Mutex::new(None) }
    }

    fn count_parameter(&self) -> &str {
        self.config.backend.count_parameter.as_deref().unwrap_or("count")
    }

    fn not_wired(&self, snapshot: &GroupSnapshot, parameter: &str, source: WiringError) -> GroupError {
        GroupError::NotWired {
            group: self.config.name.clone(),
            stack: snapshot.stack.name.clone(),
            resource: self.config.backend.resource.clone(),
            parameter: parameter.to_string(),
            source: Box::new(source),
        }
    }

    fn removal_parameter(&self) -> Result<&str, GroupError> {
        self.config.backend.removal_parameter.as_deref().ok_or_else(|| GroupError::Refused {
            group: self.config.name.clone(),
            reason: "removing exact members needs backend.removal-parameter".into(),
        })
    }
}

impl NodeGroupBackend for ResourceGroupBackend {
    fn config(&self) -> &NodeGroupConfig {
        &self.config
    }
    fn heat(&self) -> &HeatClient {
        &self.heat
    }

    async fn read(&self) -> Result<GroupSnapshot, GroupError> {
        let count = self.count_parameter().to_string();
        members::read(&self.heat, &self.config, GROUP_TYPE, |params, _| {
            let value = params.get(&count).ok_or_else(|| format!("it has no parameter {count}"))?;
            value.trim().parse().map_err(|_| format!("parameter {count} is {value:?}, not a member count"))
        })
        .await
    }

    fn plan_grow(&self, snapshot: &GroupSnapshot, to: u32) -> Result<SizeChange, GroupError> {
        check_not_busy(snapshot)?;
        check_range(&self.config, to as i64)?;
        if to < snapshot.desired {
            return Err(GroupError::Refused {
                group: self.config.name.clone(),
                reason: format!(
                    "{to} is below the current size {}: a ResourceGroup shrinks by naming members (remove)",
                    snapshot.desired
                ),
            });
        }
        let mut parameters = serde_json::Map::new();
        parameters.insert(self.count_parameter().to_string(), json!(to));
        Ok(SizeChange {
            group: self.config.name.clone(),
            from: snapshot.desired,
            to,
            victims: vec![],
            change: HeatChange::SetParameters(parameters),
        })
    }

    fn plan_remove(&self, snapshot: &GroupSnapshot, remove: &[String]) -> Result<SizeChange, GroupError> {
        let to = snapshot.desired.saturating_sub(remove.len() as u32);
        if (snapshot.desired as usize) < remove.len() {
            check_range(&self.config, snapshot.desired as i64 - remove.len() as i64)?;
        }
        self.plan_remove_to(snapshot, remove, to)
    }

    /// The named members go and the count becomes `to`: with `to` above
    /// `desired - k`, Heat creates that many new members in the same update
    /// (new names; removed names are never reused) — how a failed member is
    /// replaced when the group is at its minimum size.
    fn plan_remove_to(&self, snapshot: &GroupSnapshot, remove: &[String], to: u32) -> Result<SizeChange, GroupError> {
        check_not_busy(snapshot)?;
        check_members(snapshot, remove)?;
        if to > snapshot.desired {
            return Err(GroupError::Refused {
                group: self.config.name.clone(),
                reason: format!("removing members cannot grow the group ({} -> {to})", snapshot.desired),
            });
        }
        let to = to as i64;
        check_range(&self.config, to)?;
        let removal = self.removal_parameter()?;
        let mut names: Vec<String> = snapshot
            .parameters
            .get(removal)
            .map(|v| v.split(',').map(str::trim).filter(|s| !s.is_empty()).map(str::to_string).collect())
            .unwrap_or_default();
        for name in remove {
            if !names.contains(name) {
                names.push(name.clone());
            }
        }
        let mut parameters = serde_json::Map::new();
        parameters.insert(self.count_parameter().to_string(), json!(to));
        parameters.insert(removal.to_string(), json!(names));
        Ok(SizeChange {
            group: self.config.name.clone(),
            from: snapshot.desired,
            to: to as u32,
            victims: remove.to_vec(),
            change: HeatChange::SetParameters(parameters),
        })
    }

    /// Asked of Heat before the first removal and again whenever the stack's
    /// template, files or environment changed (see `wiring`); Heat's answer,
    /// either way, holds until then.
    async fn verify_removal(&self, snapshot: &GroupSnapshot) -> Result<(), GroupError> {
        let removal = self.removal_parameter()?;
        let group = self.config.name.as_str();
        let definition = Definition::read(&self.heat, &snapshot.stack).await.map_err(GroupError::cloud(group))?;
        let key = definition.key(self.count_parameter(), removal);
        let known = self.wired.lock().expect("wiring lock").as_ref().filter(|(k, _)| k == &key).map(|(_, v)| v.clone());
        let answer = match known {
            Some(answer) => answer,
            None => {
                let resource = &self.config.backend.resource;
                let answer = definition.check(&self.heat, resource, self.count_parameter(), removal).await;
                if matches!(answer, Err(WiringError::Preview(_))) {
                    // Heat could not answer now: ask again next time.
                    return Err(self.not_wired(snapshot, removal, answer.unwrap_err()));
                }
                let answer = answer.map_err(|e| e.to_string());
                match &answer {
                    Ok(()) => {
                        tracing::info!(group, stack = %snapshot.stack, parameter = removal, "Heat confirms the removal wiring")
                    }
                    Err(e) => {
                        tracing::error!(group, stack = %snapshot.stack, parameter = removal, error = %e, "the removal parameter is not wired")
                    }
                }
                *self.wired.lock().expect("wiring lock") = Some((key, answer.clone()));
                answer
            }
        };
        answer.map_err(|problem| self.not_wired(snapshot, removal, WiringError::Known(problem)))
    }

    fn predicted_victims(&self, _snapshot: &GroupSnapshot, _n: u32) -> Result<Vec<String>, GroupError> {
        Err(GroupError::Refused {
            group: self.config.name.clone(),
            reason: "a ResourceGroup deletes the highest-numbered members when its count drops; heatscaler \
                     always names the members to remove instead"
                .into(),
        })
    }

    async fn apply(&self, plan: &SizeChange) -> Result<(), GroupError> {
        let HeatChange::SetParameters(parameters) = &plan.change else {
            return Err(GroupError::Refused {
                group: self.config.name.clone(),
                reason: format!("cannot apply {:?} to a ResourceGroup", plan.change),
            });
        };
        let now = self.read().await?;
        check_not_busy(&now)?;
        if now.desired != plan.from {
            return Err(GroupError::Refused {
                group: self.config.name.clone(),
                reason: format!(
                    "the group changed since the plan ({} members, planned from {})",
                    now.desired, plan.from
                ),
            });
        }
        if !plan.victims.is_empty() {
            self.verify_removal(&now).await?;
        }
        tracing::info!(group = %self.config.name, stack = %now.stack, %plan, "updating stack");
        self.heat.update_parameters(&now.stack, parameters).await.map_err(GroupError::cloud(&self.config.name))
    }
}
