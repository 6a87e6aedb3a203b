//! Heat's JSON, reduced to the fields heatscaler reads.

use std::collections::BTreeMap;

use serde::Deserialize;

/// A stack's address in Heat's URLs: `stacks/<name>/<id>`. Heat redirects
/// lookups by name alone; addressing with both avoids the redirect, which
/// clients do not follow for PATCH.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StackRef {
    pub name: String,
    pub id: String,
}

impl std::fmt::Display for StackRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.name)
    }
}

impl StackRef {
    /// From a link href `.../stacks/<name>/<id>[/...]`.
    pub(crate) fn from_href(href: &str) -> Option<StackRef> {
        let rest = &href[href.find("/stacks/")? + "/stacks/".len()..];
        let mut parts = rest.split('/');
        let name = parts.next().filter(|s| !s.is_empty())?;
        let id = parts.next().filter(|s| !s.is_empty())?;
        Some(StackRef { name: name.to_string(), id: id.to_string() })
    }
}

/// `ACTION_STATE`, e.g. `UPDATE_IN_PROGRESS`, as Heat reports stacks and resources.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum State {
    InProgress,
    Complete,
    Failed,
}

/// Splits Heat's status into action (`CREATE`, `UPDATE`, `CHECK`, ...) and state.
pub fn parse_status(status: &str) -> (&str, Option<State>) {
    for (suffix, state) in
        [("_IN_PROGRESS", State::InProgress), ("_COMPLETE", State::Complete), ("_FAILED", State::Failed)]
    {
        if let Some(action) = status.strip_suffix(suffix) {
            return (action, Some(state));
        }
    }
    (status, None)
}

#[derive(Clone, Debug, Deserialize)]
pub struct Stack {
    pub id: String,
    pub stack_name: String,
    pub stack_status: String,
    #[serde(default)]
    pub stack_status_reason: Option<String>,
    /// Parameter values as Heat reports them: strings (`"4"`, `"1,3"`).
    #[serde(default)]
    pub parameters: BTreeMap<String, serde_json::Value>,
    #[serde(default)]
    pub outputs: Option<Vec<Output>>,
    #[serde(default)]
    pub creation_time: Option<String>,
    #[serde(default)]
    pub updated_time: Option<String>,
}

impl Stack {
    pub fn reference(&self) -> StackRef {
        StackRef { name: self.stack_name.clone(), id: self.id.clone() }
    }
    /// `*_IN_PROGRESS`: Heat is working on it; nothing may be asked of it now.
    pub fn in_progress(&self) -> bool {
        parse_status(&self.stack_status).1 == Some(State::InProgress)
    }
    pub fn parameter(&self, name: &str) -> Option<String> {
        self.parameters.get(name).map(|v| match v {
            serde_json::Value::String(s) => s.clone(),
            other => other.to_string(),
        })
    }
    pub fn output(&self, key: &str) -> Option<&serde_json::Value> {
        self.outputs.as_ref()?.iter().find(|o| o.output_key == key).map(|o| &o.output_value)
    }
}

#[derive(Clone, Debug, Deserialize)]
pub struct Output {
    pub output_key: String,
    #[serde(default)]
    pub output_value: serde_json::Value,
    #[serde(default)]
    pub output_error: Option<String>,
}

#[derive(Clone, Debug, Deserialize)]
pub struct Resource {
    pub resource_name: String,
    #[serde(default)]
    pub physical_resource_id: String,
    pub resource_type: String,
    pub resource_status: String,
    #[serde(default)]
    pub resource_status_reason: Option<String>,
    /// `YYYY-MM-DDTHH:MM:SSZ` (whole seconds), the form Heat also sorts by.
    #[serde(default)]
    pub creation_time: Option<String>,
    #[serde(default)]
    pub updated_time: Option<String>,
    /// With `nested_depth`: the resource in the parent stack this one belongs to.
    #[serde(default)]
    pub parent_resource: Option<String>,
    #[serde(default)]
    pub links: Vec<Link>,
}

#[derive(Clone, Debug, Deserialize)]
pub struct Link {
    pub href: String,
    pub rel: String,
}

impl Resource {
    fn link(&self, rel: &str) -> Option<StackRef> {
        self.links.iter().find(|l| l.rel == rel).and_then(|l| StackRef::from_href(&l.href))
    }
    /// The stack this resource lives in.
    pub fn stack(&self) -> Option<StackRef> {
        self.link("stack")
    }
    /// The nested stack of a group, template resource or nested-stack member.
    pub fn nested_stack(&self) -> Option<StackRef> {
        self.link("nested")
    }
    pub fn in_progress(&self) -> bool {
        parse_status(&self.resource_status).1 == Some(State::InProgress)
    }
    pub fn physical_id(&self) -> Option<&str> {
        Some(self.physical_resource_id.as_str()).filter(|s| !s.is_empty())
    }
}

#[derive(Deserialize)]
pub(crate) struct StackBody {
    pub stack: Stack,
}

#[derive(Deserialize)]
pub(crate) struct ResourceBody {
    pub resource: Resource,
}

#[derive(Deserialize)]
pub(crate) struct ResourcesBody {
    pub resources: Vec<Resource>,
}

#[derive(Deserialize)]
pub(crate) struct OutputBody {
    pub output: Output,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_splits_action_and_state() {
        assert_eq!(parse_status("UPDATE_IN_PROGRESS"), ("UPDATE", Some(State::InProgress)));
        assert_eq!(parse_status("CHECK_FAILED"), ("CHECK", Some(State::Failed)));
        assert_eq!(parse_status("INIT_COMPLETE"), ("INIT", Some(State::Complete)));
        assert_eq!(parse_status("WEIRD"), ("WEIRD", None));
    }

    #[test]
    fn stack_ref_from_link() {
        let r = StackRef::from_href("http://h:1/v1/p/stacks/rg1-kube_minions-x/1234/resources/0").unwrap();
        assert_eq!(r, StackRef { name: "rg1-kube_minions-x".into(), id: "1234".into() });
        assert_eq!(StackRef::from_href("http://h/v1/p/stacks/onlyname"), None);
    }
}
