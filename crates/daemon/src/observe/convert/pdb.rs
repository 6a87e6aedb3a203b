//! PodDisruptionBudgets, as the eviction API enforces them.

use k8s_openapi::api::policy::v1::PodDisruptionBudget;

use super::selectors::label_selector;
use heatscaler_core::model::Pdb;

/// The budget as eviction sees it, or `None` for one eviction ignores. The
/// eviction API skips budgets whose selector is empty or null (whatever the
/// disruption controller counts for them), and refuses every eviction a budget
/// covers until the disruption controller has observed its latest spec — so an
/// unobserved budget allows no disruption here either.
pub fn pdb(p: &PodDisruptionBudget) -> Option<Pdb> {
    let spec = p.spec.as_ref()?;
    let selector = label_selector(spec.selector.as_ref()?);
    if selector.match_labels.is_empty() && selector.match_expressions.is_empty() {
        return None;
    }
    let status = p.status.as_ref();
    let observed = status.and_then(|s| s.observed_generation).unwrap_or(0);
    let current = p.metadata.generation.unwrap_or(0);
    let disruptions_allowed = match status {
        Some(s) if observed >= current => s.disruptions_allowed.max(0),
        _ => 0,
    };
    Some(Pdb {
        namespace: p.metadata.namespace.clone().unwrap_or_default(),
        name: p.metadata.name.clone().unwrap_or_default(),
        selector,
        disruptions_allowed,
    })
}
