//! Label selectors (query-string and `LabelSelector` forms), node selector
//! terms and field selectors, with the API server's matching rules.

use std::collections::BTreeSet;

use serde_json::Value;

use crate::error::ApiError;

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Op {
    Equals,
    NotEquals,
    In,
    NotIn,
    Exists,
    DoesNotExist,
    Gt,
    Lt,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Requirement {
    pub key: String,
    pub op: Op,
    pub values: BTreeSet<String>,
}

impl Requirement {
    fn matches(&self, get: &dyn Fn(&str) -> Option<String>) -> bool {
        self.matches_value(get(&self.key).as_deref())
    }

    /// Against the value of its key (`None`: the key is absent). Borrowed:
    /// controllers match stored objects' labels by the million.
    fn matches_value(&self, value: Option<&str>) -> bool {
        match self.op {
            Op::Equals | Op::In => value.is_some_and(|v| self.values.contains(v)),
            Op::NotEquals | Op::NotIn => value.is_none_or(|v| !self.values.contains(v)),
            Op::Exists => value.is_some(),
            Op::DoesNotExist => value.is_none(),
            Op::Gt | Op::Lt => {
                let (Some(v), Some(bound)) = (value, self.values.iter().next()) else { return false };
                let (Ok(v), Ok(bound)) = (v.parse::<i64>(), bound.parse::<i64>()) else { return false };
                if self.op == Op::Gt { v > bound } else { v < bound }
            }
        }
    }
}

/// A conjunction of requirements. The empty selector matches everything.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LabelSelector {
    pub requirements: Vec<Requirement>,
    /// A selector that can match nothing (a null `LabelSelector` where the API
    /// gives that meaning, or an empty `In` set).
    pub nothing: bool,
}

impl LabelSelector {
    pub fn everything() -> Self {
        LabelSelector::default()
    }

    pub fn nothing() -> Self {
        LabelSelector { requirements: vec![], nothing: true }
    }

    pub fn is_everything(&self) -> bool {
        !self.nothing && self.requirements.is_empty()
    }

    /// Parses the `labelSelector` query-string syntax.
    pub fn parse(text: &str) -> Result<LabelSelector, String> {
        let mut requirements = Vec::new();
        for part in split_top_level(text) {
            let part = part.trim();
            if part.is_empty() {
                continue;
            }
            requirements.push(parse_requirement(part)?);
        }
        Ok(LabelSelector { requirements, nothing: false })
    }

    /// From a `metav1.LabelSelector` JSON object; `null` gives `if_null`.
    pub fn from_json(selector: &Value, if_null: LabelSelector) -> Result<LabelSelector, String> {
        if selector.is_null() {
            return Ok(if_null);
        }
        let mut requirements = Vec::new();
        if let Some(labels) = selector["matchLabels"].as_object() {
            for (k, v) in labels {
                let v = v.as_str().ok_or_else(|| format!("matchLabels[{k}] must be a string"))?;
                requirements.push(Requirement { key: k.clone(), op: Op::Equals, values: [v.to_string()].into() });
            }
        }
        if let Some(exprs) = selector["matchExpressions"].as_array() {
            for e in exprs {
                let key = e["key"].as_str().ok_or("matchExpressions[].key is required")?.to_string();
                let values: BTreeSet<String> = e["values"]
                    .as_array()
                    .map(|a| a.iter().filter_map(|v| v.as_str().map(str::to_string)).collect())
                    .unwrap_or_default();
                let op = match e["operator"].as_str().unwrap_or("") {
                    "In" => Op::In,
                    "NotIn" => Op::NotIn,
                    "Exists" => Op::Exists,
                    "DoesNotExist" => Op::DoesNotExist,
                    other => return Err(format!("\"{other}\" is not a valid label selector operator")),
                };
                if matches!(op, Op::In | Op::NotIn) && values.is_empty() {
                    return Err(format!("for 'in', 'notin' operators, values set can't be empty (key {key})"));
                }
                requirements.push(Requirement { key, op, values });
            }
        }
        Ok(LabelSelector { requirements, nothing: false })
    }

    pub fn matches_labels(&self, labels: &Value) -> bool {
        if self.nothing {
            return false;
        }
        let get = |k: &str| labels.get(k).and_then(|v| v.as_str()).map(str::to_string);
        self.requirements.iter().all(|r| r.matches(&get))
    }

    /// Matches a stored object's labels (without decoding it).
    pub fn matches_obj(&self, obj: &crate::store::Obj) -> bool {
        if self.nothing {
            return false;
        }
        self.requirements.iter().all(|r| r.matches_value(obj.label(&r.key)))
    }
}

/// Splits on commas that are not inside parentheses.
fn split_top_level(text: &str) -> Vec<&str> {
    let mut parts = Vec::new();
    let (mut depth, mut start) = (0, 0);
    for (i, c) in text.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => depth -= 1,
            ',' if depth == 0 => {
                parts.push(&text[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    parts.push(&text[start..]);
    parts
}

fn valid_label_key(k: &str) -> bool {
    !k.is_empty() && k.chars().all(|c| c.is_ascii_alphanumeric() || "-_./".contains(c))
}

fn parse_requirement(part: &str) -> Result<Requirement, String> {
    let bad = || format!("unable to parse requirement: {part}");
    if let Some(key) = part.strip_prefix('!') {
        let key = key.trim();
        if !valid_label_key(key) {
            return Err(bad());
        }
        return Ok(Requirement { key: key.to_string(), op: Op::DoesNotExist, values: BTreeSet::new() });
    }
    for (token, op) in [("!=", Op::NotEquals), ("==", Op::Equals), ("=", Op::Equals), (">", Op::Gt), ("<", Op::Lt)] {
        if let Some((k, v)) = part.split_once(token) {
            let (k, v) = (k.trim(), v.trim());
            if !valid_label_key(k) || v.contains(['(', ')', ' ']) {
                return Err(bad());
            }
            return Ok(Requirement { key: k.to_string(), op, values: [v.to_string()].into() });
        }
    }
    let words: Vec<&str> = part.splitn(2, char::is_whitespace).collect();
    if words.len() == 2 {
        let key = words[0].trim();
        let rest = words[1].trim();
        let (op, set) = if let Some(s) = rest.strip_prefix("notin") {
            (Op::NotIn, s)
        } else if let Some(s) = rest.strip_prefix("in") {
            (Op::In, s)
        } else {
            return Err(bad());
        };
        let set = set.trim();
        let inner = set.strip_prefix('(').and_then(|s| s.strip_suffix(')')).ok_or_else(bad)?;
        let values: BTreeSet<String> =
            inner.split(',').map(|v| v.trim().to_string()).filter(|v| !v.is_empty()).collect();
        if !valid_label_key(key) {
            return Err(bad());
        }
        return Ok(Requirement { key: key.to_string(), op, values });
    }
    if valid_label_key(part) {
        return Ok(Requirement { key: part.to_string(), op: Op::Exists, values: BTreeSet::new() });
    }
    Err(bad())
}

/// Node affinity `nodeSelectorTerms`: ORed terms of ANDed expressions over the
/// node's labels (`matchExpressions`) and fields (`matchFields`: metadata.name).
pub fn node_selector_terms_match(terms: &Value, node: &Value) -> bool {
    let Some(terms) = terms.as_array() else { return false };
    terms.iter().any(|term| node_selector_term_matches(term, node))
}

fn node_selector_term_matches(term: &Value, node: &Value) -> bool {
    let exprs = term["matchExpressions"].as_array().map(Vec::as_slice).unwrap_or(&[]);
    let fields = term["matchFields"].as_array().map(Vec::as_slice).unwrap_or(&[]);
    if exprs.is_empty() && fields.is_empty() {
        return false;
    }
    let labels = &node["metadata"]["labels"];
    let label = |k: &str| labels.get(k).and_then(|v| v.as_str()).map(str::to_string);
    let field = |k: &str| match k {
        "metadata.name" => node["metadata"]["name"].as_str().map(str::to_string),
        _ => None,
    };
    exprs.iter().all(|e| node_expression(e).is_some_and(|r| r.matches(&label)))
        && fields.iter().all(|e| node_expression(e).is_some_and(|r| r.matches(&field)))
}

fn node_expression(e: &Value) -> Option<Requirement> {
    let key = e["key"].as_str()?.to_string();
    // `Exists` and `DoesNotExist` carry no values (the API server requires them absent).
    let values: BTreeSet<String> = e["values"]
        .as_array()
        .map(|a| a.iter().filter_map(|v| v.as_str().map(str::to_string)).collect())
        .unwrap_or_default();
    let op = match e["operator"].as_str()? {
        "In" => Op::In,
        "NotIn" => Op::NotIn,
        "Exists" => Op::Exists,
        "DoesNotExist" => Op::DoesNotExist,
        "Gt" => Op::Gt,
        "Lt" => Op::Lt,
        _ => return None,
    };
    Some(Requirement { key, op, values })
}

/// One `fieldSelector` term.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FieldRequirement {
    pub field: String,
    pub value: String,
    pub negate: bool,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FieldSelector {
    pub requirements: Vec<FieldRequirement>,
}

impl FieldSelector {
    pub fn parse(text: &str) -> Result<FieldSelector, ApiError> {
        let mut requirements = Vec::new();
        for part in split_unescaped(text, ',') {
            if part.trim().is_empty() {
                continue;
            }
            let (field, value, negate) = if let Some((f, v)) = split_once_unescaped(&part, "!=") {
                (f, v, true)
            } else if let Some((f, v)) = split_once_unescaped(&part, "==") {
                (f, v, false)
            } else if let Some((f, v)) = split_once_unescaped(&part, "=") {
                (f, v, false)
            } else {
                return Err(ApiError::bad_request(format!(
                    "invalid field selector: invalid selector: '{part}'; can't understand '{part}'"
                )));
            };
            requirements.push(FieldRequirement { field: field.trim().to_string(), value: unescape(&value), negate });
        }
        Ok(FieldSelector { requirements })
    }

    pub fn is_empty(&self) -> bool {
        self.requirements.is_empty()
    }

    /// Checks each field against the kind's supported set; the API answers 400
    /// for unsupported field labels.
    pub fn validate(&self, supported: &dyn Fn(&str) -> bool) -> Result<(), ApiError> {
        for r in &self.requirements {
            if !supported(&r.field) {
                return Err(ApiError::bad_request(format!("field label not supported: {}", r.field)));
            }
        }
        Ok(())
    }

    pub fn matches(&self, get: &dyn Fn(&str) -> String) -> bool {
        self.requirements.iter().all(|r| (get(&r.field) == r.value) != r.negate)
    }
}

fn split_unescaped(text: &str, sep: char) -> Vec<String> {
    let mut parts = vec![String::new()];
    let mut escaped = false;
    for c in text.chars() {
        if escaped {
            parts.last_mut().expect("non-empty").push('\\');
            parts.last_mut().expect("non-empty").push(c);
            escaped = false;
        } else if c == '\\' {
            escaped = true;
        } else if c == sep {
            parts.push(String::new());
        } else {
            parts.last_mut().expect("non-empty").push(c);
        }
    }
    parts
}

fn split_once_unescaped(text: &str, op: &str) -> Option<(String, String)> {
    let bytes = text.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'\\' {
            i += 2;
            continue;
        }
        if text[i..].starts_with(op) {
            return Some((text[..i].to_string(), text[i + op.len()..].to_string()));
        }
        i += 1;
    }
    None
}

fn unescape(text: &str) -> String {
    let mut out = String::new();
    let mut escaped = false;
    for c in text.chars() {
        if escaped {
            out.push(c);
            escaped = false;
        } else if c == '\\' {
            escaped = true;
        } else {
            out.push(c);
        }
    }
    out
}

/// The string value of a dotted field path, "" when absent, as field selectors compare.
pub fn field_value(obj: &Value, path: &str) -> String {
    let mut v = obj;
    for part in path.split('.') {
        v = &v[part];
    }
    match v {
        Value::String(s) => s.clone(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        _ => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn label_selector_syntax() {
        let labels = json!({"app": "web", "tier": "front", "n": "5"});
        let m = |s: &str| LabelSelector::parse(s).unwrap().matches_labels(&labels);
        assert!(m("app=web"));
        assert!(m("app==web,tier"));
        assert!(!m("app!=web"));
        assert!(m("app in (web, api),tier notin (back)"));
        assert!(!m("app notin (web)"));
        assert!(m("!missing"));
        assert!(!m("!app"));
        assert!(m("n>4"));
        assert!(!m("n<4"));
        assert!(m(""));
        assert!(LabelSelector::parse("a in b").is_err());
    }

    #[test]
    fn field_selector_syntax() {
        let pod = json!({"spec": {"nodeName": "n1"}, "status": {"phase": "Running"}});
        let s = FieldSelector::parse("spec.nodeName=n1,status.phase!=Failed,status.phase!=Succeeded").unwrap();
        assert!(s.matches(&|f| field_value(&pod, f)));
        let s = FieldSelector::parse("spec.nodeName==n2").unwrap();
        assert!(!s.matches(&|f| field_value(&pod, f)));
        let s = FieldSelector::parse("spec.nodeName=").unwrap();
        assert!(!s.matches(&|f| field_value(&pod, f)));
    }
}
