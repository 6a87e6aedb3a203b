//! Inter-pod affinity, anti-affinity and topology spread, over any topology
//! key, as kube-scheduler's `InterPodAffinity` and `PodTopologySpread`
//! plugins read them.

use std::collections::BTreeMap;

use super::{LabelSelector, Pod};

/// The label that makes every node its own topology domain.
pub const HOSTNAME: &str = "kubernetes.io/hostname";

/// One `podAffinityTerm`: pods matching `selector` in the namespaces it
/// covers, looked for in the incoming node's domain of `topology_key`.
#[derive(Clone, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct PodAffinityTerm {
    /// With `matchLabelKeys` already merged in (as the API server does on create).
    pub selector: LabelSelector,
    pub topology_key: String,
    /// `namespaces`; the pod's own namespace when neither this nor a
    /// namespace selector is given (the converter fills it in).
    pub namespaces: Vec<String>,
    /// `namespaceSelector`: an empty one covers every namespace.
    pub namespace_selector: Option<LabelSelector>,
}

impl PodAffinityTerm {
    /// A term over the pod's own namespace (the API default).
    pub fn in_namespace(selector: LabelSelector, topology_key: &str, namespace: &str) -> Self {
        Self {
            selector,
            topology_key: topology_key.to_string(),
            namespaces: vec![namespace.to_string()],
            namespace_selector: None,
        }
    }

    /// The term selects `pod`: its namespace is covered (listed, or its
    /// labels match the namespace selector) and its labels match.
    pub fn matches(&self, pod: &Pod) -> bool {
        self.covers_namespace(&pod.namespace, &pod.placement.namespace_labels) && self.selector.matches(&pod.labels)
    }

    pub fn covers_namespace(&self, namespace: &str, namespace_labels: &BTreeMap<String, String>) -> bool {
        self.namespaces.iter().any(|n| n == namespace)
            || self.namespace_selector.as_ref().is_some_and(|s| s.matches(namespace_labels))
    }

    /// Every node is its own domain: the term can be checked on one node alone.
    pub fn per_node(&self) -> bool {
        self.topology_key == HOSTNAME
    }
}

/// A `preferredDuringScheduling…` term and its weight (1–100).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct WeightedPodAffinityTerm {
    pub weight: i32,
    pub term: PodAffinityTerm,
}

/// What a spread constraint does when it cannot be met.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum WhenUnsatisfiable {
    /// A filter: nodes that would break `max_skew` are unfit.
    DoNotSchedule,
    /// A score: emptier domains are preferred.
    ScheduleAnyway,
}

/// A topology spread constraint: a domain (the nodes sharing a value of
/// `topology_key`) may hold at most `max_skew` more matching pods (the
/// incoming one included) than the emptiest eligible domain — counted as
/// empty while fewer than `min_domains` domains are eligible. Only pods of
/// the incoming pod's namespace count; eligible nodes are those that match
/// the pod's node selector and required node affinity (the default
/// `nodeAffinityPolicy: Honor`, `nodeTaintsPolicy: Ignore`) and carry the key.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct TopologySpread {
    /// With `matchLabelKeys` already merged in.
    pub selector: LabelSelector,
    pub topology_key: String,
    pub max_skew: u32,
    /// `minDomains`; 1 when unset.
    pub min_domains: u32,
    pub when_unsatisfiable: WhenUnsatisfiable,
}

impl TopologySpread {
    /// A `DoNotSchedule` constraint.
    pub fn required(selector: LabelSelector, topology_key: &str, max_skew: u32, min_domains: u32) -> Self {
        Self {
            selector,
            topology_key: topology_key.to_string(),
            max_skew,
            min_domains,
            when_unsatisfiable: WhenUnsatisfiable::DoNotSchedule,
        }
    }

    pub fn is_filter(&self) -> bool {
        self.when_unsatisfiable == WhenUnsatisfiable::DoNotSchedule
    }

    pub fn per_node(&self) -> bool {
        self.topology_key == HOSTNAME
    }

    /// Whether `other` counts towards this constraint of `pod`: same
    /// namespace, not terminating, labels matching.
    pub fn counts(&self, pod: &Pod, other: &Pod) -> bool {
        other.namespace == pod.namespace && other.deletion.is_none() && self.selector.matches(&other.labels)
    }
}
