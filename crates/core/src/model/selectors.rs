//! Label selectors and node selector terms with Kubernetes' matching rules.

use std::collections::BTreeMap;

/// A `metav1.LabelSelector`. An empty selector matches everything (as in a PDB).
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct LabelSelector {
    pub match_labels: BTreeMap<String, String>,
    pub match_expressions: Vec<SelectorRequirement>,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub struct SelectorRequirement {
    pub key: String,
    pub operator: SelectorOperator,
    pub values: Vec<String>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum SelectorOperator {
    In,
    NotIn,
    Exists,
    DoesNotExist,
}

impl LabelSelector {
    pub fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        self.match_labels.iter().all(|(k, v)| labels.get(k) == Some(v))
            && self.match_expressions.iter().all(|r| r.matches(labels))
    }
}

impl SelectorRequirement {
    pub fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        let value = labels.get(&self.key);
        match self.operator {
            SelectorOperator::In => value.is_some_and(|v| self.values.contains(v)),
            SelectorOperator::NotIn => value.is_none_or(|v| !self.values.contains(v)),
            SelectorOperator::Exists => value.is_some(),
            SelectorOperator::DoesNotExist => value.is_none(),
        }
    }
}

/// One term of required node affinity: all its requirements must hold.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct NodeSelectorTerm {
    pub match_expressions: Vec<NodeSelectorRequirement>,
    /// `matchFields`; Kubernetes supports only `metadata.name`.
    pub match_fields: Vec<NodeSelectorRequirement>,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct NodeSelectorRequirement {
    pub key: String,
    pub operator: NodeSelectorOperator,
    pub values: Vec<String>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum NodeSelectorOperator {
    In,
    NotIn,
    Exists,
    DoesNotExist,
    Gt,
    Lt,
}

impl NodeSelectorTerm {
    /// Whether a node with these labels and name satisfies the term. A term
    /// with no requirements matches nothing, as in Kubernetes.
    pub fn matches(&self, node_name: &str, labels: &BTreeMap<String, String>) -> bool {
        if self.match_expressions.is_empty() && self.match_fields.is_empty() {
            return false;
        }
        self.match_expressions.iter().all(|r| r.matches(labels.get(&r.key).map(String::as_str)))
            && self.match_fields.iter().all(|r| r.key == "metadata.name" && r.matches(Some(node_name)))
    }
}

impl NodeSelectorRequirement {
    fn matches(&self, value: Option<&str>) -> bool {
        let int = |s: &str| s.parse::<i64>().ok();
        match self.operator {
            NodeSelectorOperator::In => value.is_some_and(|v| self.values.iter().any(|x| x == v)),
            NodeSelectorOperator::NotIn => value.is_none_or(|v| self.values.iter().all(|x| x != v)),
            NodeSelectorOperator::Exists => value.is_some(),
            NodeSelectorOperator::DoesNotExist => value.is_none(),
            NodeSelectorOperator::Gt => {
                matches!((value.and_then(int), self.values.first().and_then(|s| int(s))), (Some(v), Some(x)) if v > x)
            }
            NodeSelectorOperator::Lt => {
                matches!((value.and_then(int), self.values.first().and_then(|s| int(s))), (Some(v), Some(x)) if v < x)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn label_selector_semantics() {
        let s = LabelSelector {
            match_labels: labels(&[("app", "web")]),
            match_expressions: vec![SelectorRequirement {
                key: "tier".into(),
                operator: SelectorOperator::NotIn,
                values: vec!["batch".into()],
            }],
        };
        assert!(s.matches(&labels(&[("app", "web")])));
        assert!(!s.matches(&labels(&[("app", "web"), ("tier", "batch")])));
        assert!(LabelSelector::default().matches(&labels(&[])));
    }

    #[test]
    fn node_selector_terms() {
        let term = NodeSelectorTerm {
            match_expressions: vec![
                NodeSelectorRequirement {
                    key: "gpu.model".into(),
                    operator: NodeSelectorOperator::In,
                    values: vec!["V100M16".into(), "V100M32".into()],
                },
                NodeSelectorRequirement {
                    key: "cores".into(),
                    operator: NodeSelectorOperator::Gt,
                    values: vec!["8".into()],
                },
            ],
            match_fields: vec![],
        };
        assert!(term.matches("n", &labels(&[("gpu.model", "V100M32"), ("cores", "16")])));
        assert!(!term.matches("n", &labels(&[("gpu.model", "T4"), ("cores", "16")])));
        assert!(!term.matches("n", &labels(&[("gpu.model", "V100M32"), ("cores", "4")])));
        assert!(!NodeSelectorTerm::default().matches("n", &labels(&[])));
    }
}
