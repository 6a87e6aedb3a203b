//! Is a ResourceGroup's removal parameter really what its `removal_policies`
//! use? A template that declares the parameter but never references it (or
//! references another) makes Heat ignore the names heatscaler sends and
//! delete the highest-numbered members instead: the wrong, undrained minions.
//!
//! Heat itself answers, not a reading of the template: the stack's own
//! template, files and environment are previewed (`POST /stacks/preview`,
//! nothing is created) with one member and the removal parameter set to
//! `["0"]`, then to `[]`. A wired group previews member `1` in the first case
//! (Heat skipped the listed name) and member `0` in the second; any other
//! answer means the parameter does not steer the removal. The answer holds
//! until the template, its files or its environment change, so it is kept
//! per [`WiringKey`] and asked again only then.

use std::collections::BTreeSet;

use serde_json::{Value, json};

use crate::cloud::CloudError;
use crate::cloud::heat::{HeatClient, NewStack, StackRef};

/// The name previews run under; Heat names a group's nested stack
/// `<stack>-<resource>` and a member's `<stack>-<resource>-<member>`.
const PROBE_STACK: &str = "heatscaler-wiring-probe";

/// What the answer depends on: the template, its files and its environment
/// without the two parameters heatscaler itself changes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WiringKey(String);

/// The stack's definition as Heat holds it.
pub(crate) struct Definition {
    template: Value,
    files: serde_json::Map<String, Value>,
    environment: Value,
}

/// Why a removal parameter does not steer a group's removals.
#[derive(Debug, thiserror::Error)]
pub enum WiringError {
    #[error(
        "Heat ignores parameter {parameter}: with it listing member 0, Heat would still keep {kept:?} (expected \
         [\"1\"]) and without it {unlisted:?} (expected [\"0\"]), so a removal would delete other members than the \
         drained ones"
    )]
    NotWired { parameter: String, kept: Vec<String>, unlisted: Vec<String> },
    #[error("Heat could not preview the stack to check the removal parameter: {0}")]
    Preview(#[source] CloudError),
    /// Heat's earlier answer for the same stack definition.
    #[error("{0}")]
    Known(String),
}

impl Definition {
    pub(crate) async fn read(heat: &HeatClient, stack: &StackRef) -> Result<Definition, CloudError> {
        Ok(Definition {
            template: heat.template(stack).await?,
            files: heat.files(stack).await?,
            environment: heat.environment(stack).await?,
        })
    }

    pub(crate) fn key(&self, count: &str, removal: &str) -> WiringKey {
        let mut environment = self.environment.clone();
        if let Some(p) = environment.get_mut("parameters").and_then(Value::as_object_mut) {
            p.remove(count);
            p.remove(removal);
        }
        // serde_json's maps are ordered by key: equal definitions give equal text.
        WiringKey(json!([self.template, self.files, environment]).to_string())
    }

    /// Asks Heat, by two previews, whether `removal` steers which members of
    /// `resource` exist.
    pub(crate) async fn check(
        &self,
        heat: &HeatClient,
        resource: &str,
        count: &str,
        removal: &str,
    ) -> Result<(), WiringError> {
        let kept = self.preview_members(heat, resource, count, removal, json!(["0"])).await?;
        let unlisted = self.preview_members(heat, resource, count, removal, json!([])).await?;
        if kept == ["1"] && unlisted == ["0"] {
            return Ok(());
        }
        Err(WiringError::NotWired { parameter: removal.to_string(), kept, unlisted })
    }

    async fn preview_members(
        &self,
        heat: &HeatClient,
        resource: &str,
        count: &str,
        removal: &str,
        listed: Value,
    ) -> Result<Vec<String>, WiringError> {
        let mut parameters = serde_json::Map::new();
        parameters.insert(count.to_string(), json!(1));
        parameters.insert(removal.to_string(), listed);
        let new = NewStack {
            name: PROBE_STACK.into(),
            template: self.template.to_string(),
            files: self.files.iter().map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string())).collect(),
            environment: Some(self.environment.clone()),
            parameters,
            timeout_mins: None,
        };
        let preview = heat.preview_stack(&new).await.map_err(WiringError::Preview)?;
        let resources = preview.pointer("/stack/resources").cloned().unwrap_or(Value::Null);
        Ok(members_in_preview(&resources, &format!("{PROBE_STACK}-{resource}")).into_iter().collect())
    }
}

/// The members of the group whose nested stack is named `prefix`, found
/// anywhere in a preview's (nested) resource lists.
pub(crate) fn members_in_preview(resources: &Value, prefix: &str) -> BTreeSet<String> {
    let mut found = BTreeSet::new();
    let mut stack = vec![resources];
    while let Some(v) = stack.pop() {
        match v {
            Value::Array(items) => stack.extend(items),
            Value::Object(r) => {
                let (Some(owner), Some(name)) =
                    (r.get("stack_name").and_then(Value::as_str), r.get("resource_name").and_then(Value::as_str))
                else {
                    continue;
                };
                if owner == prefix {
                    found.insert(name.to_string());
                } else if let Some(rest) = owner.strip_prefix(prefix).and_then(|r| r.strip_prefix('-')) {
                    found.insert(rest.split('-').next().unwrap_or(rest).to_string());
                }
            }
            _ => {}
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn members_are_found_flat_and_as_nested_stacks() {
        let p = "heatscaler-wiring-probe-kube_minions";
        let preview = json!([
            {"stack_name": "heatscaler-wiring-probe", "resource_name": "security_group"},
            [
                [{"stack_name": format!("{p}-1"), "resource_name": "server"},
                 {"stack_name": format!("{p}-1"), "resource_name": "suffix"},
                 [{"stack_name": format!("{p}-1-port"), "resource_name": "x"}]],
                {"stack_name": p, "resource_name": "3"}
            ],
            // Another group whose name starts like this one's is not confused with it.
            [{"stack_name": "heatscaler-wiring-probe-kube_minions_b-0", "resource_name": "server"}]
        ]);
        assert_eq!(members_in_preview(&preview, p), ["1".to_string(), "3".to_string()].into_iter().collect());
    }

    #[test]
    fn the_key_ignores_only_the_parameters_heatscaler_changes() {
        let d = |count: u32, other: &str| Definition {
            template: json!({"resources": {}}),
            files: serde_json::Map::new(),
            environment: json!({"parameters": {"n": count, "rm": "0,2", "image": other}}),
        };
        assert_eq!(d(2, "a").key("n", "rm"), d(5, "a").key("n", "rm"));
        assert_ne!(d(2, "a").key("n", "rm"), d(2, "b").key("n", "rm"));
    }
}
