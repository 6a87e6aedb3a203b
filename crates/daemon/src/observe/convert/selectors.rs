//! Label selectors and node selector terms.

use k8s_openapi::api::core::v1 as k8s;
use k8s_openapi::apimachinery::pkg::apis::meta::v1 as meta;

use heatscaler_core::model::{
    LabelSelector, NodeSelectorOperator, NodeSelectorRequirement, NodeSelectorTerm, SelectorOperator,
    SelectorRequirement,
};

/// A label selector. A requirement with an operator Kubernetes does not
/// define (the API server rejects those) is dropped.
pub fn label_selector(s: &meta::LabelSelector) -> LabelSelector {
    LabelSelector {
        match_labels: s.match_labels.clone().unwrap_or_default(),
        match_expressions: s
            .match_expressions
            .iter()
            .flatten()
            .filter_map(|r| {
                let operator = match r.operator.as_str() {
                    "In" => SelectorOperator::In,
                    "NotIn" => SelectorOperator::NotIn,
                    "Exists" => SelectorOperator::Exists,
                    "DoesNotExist" => SelectorOperator::DoesNotExist,
                    _ => return None,
                };
                Some(SelectorRequirement { key: r.key.clone(), operator, values: r.values.clone().unwrap_or_default() })
            })
            .collect(),
    }
}

pub fn node_selector_term(t: &k8s::NodeSelectorTerm) -> NodeSelectorTerm {
    let requirements = |list: Option<&Vec<k8s::NodeSelectorRequirement>>| {
        list.into_iter()
            .flatten()
            .filter_map(|r| {
                let operator = match r.operator.as_str() {
                    "In" => NodeSelectorOperator::In,
                    "NotIn" => NodeSelectorOperator::NotIn,
                    "Exists" => NodeSelectorOperator::Exists,
                    "DoesNotExist" => NodeSelectorOperator::DoesNotExist,
                    "Gt" => NodeSelectorOperator::Gt,
                    "Lt" => NodeSelectorOperator::Lt,
                    _ => return None,
                };
                Some(NodeSelectorRequirement {
                    key: r.key.clone(),
                    operator,
                    values: r.values.clone().unwrap_or_default(),
                })
            })
            .collect()
    };
    NodeSelectorTerm {
        match_expressions: requirements(t.match_expressions.as_ref()),
        match_fields: requirements(t.match_fields.as_ref()),
    }
}
