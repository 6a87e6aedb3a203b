//! The shape of a new minion as an operator writes it
//! (`node-groups[].node-template`, a scenario group's `shape`), for
//! scale-from-zero and the simulator.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::Quantity;
use crate::model::{NodeShape, Resources, Taint, TaintEffect};

#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
/// A minion as configured: what it will offer before one exists to look at.
pub struct NodeTemplate {
    /// Allocatable resources of a new minion: `cpu`, `memory`, `pods`,
    /// `ephemeral-storage`, and extended resources such as `nvidia.com/gpu`.
    pub allocatable: BTreeMap<String, Quantity>,
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    #[serde(default)]
    pub taints: Vec<TaintConfig>,
}

#[derive(Clone, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
/// A taint as written in a template.
pub struct TaintConfig {
    pub key: String,
    #[serde(default)]
    pub value: Option<String>,
    pub effect: TaintEffect,
}

impl NodeTemplate {
    /// The planner's shape of a new minion. `pods` defaults to the kubelet's
    /// 110 when the template leaves it out, so a template that only names CPU
    /// and memory still admits pods.
    pub fn shape(&self) -> NodeShape {
        let mut allocatable = Resources::default();
        for (name, quantity) in &self.allocatable {
            let amount = if name == Resources::CPU { quantity.as_milli() } else { quantity.as_units() };
            allocatable.set(name, amount);
        }
        if allocatable.pods == 0 {
            allocatable.pods = 110;
        }
        let taints = self
            .taints
            .iter()
            .map(|t| Taint { key: t.key.clone(), value: t.value.clone(), effect: t.effect })
            .collect();
        NodeShape { allocatable, labels: self.labels.clone(), taints }
    }
}
