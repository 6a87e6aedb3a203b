//! Traces upstream VPA's updater and admission controller leave on the pods
//! they act on, so heatscaler can tell when they act on objects it handles —
//! two updaters fighting over the same pods (docs/pod-resizing.md).
//!
//! Evidence, not presence: the admission controller annotates every pod
//! whose requests it set with `vpaUpdates: Pod resources updated by <vpa>:
//! ...`, and the updater marks the pods it resized in place with
//! `vpaInPlaceUpdated: "true"` (VPA 1.4 and later; pinned 1.8.1 checked).
//! Both arrive with the pod watch heatscaler already has, need no extra
//! permission, and name the object or workload acted on — where a
//! Deployment, Lease or webhook configuration would say only that a
//! component is installed somewhere, maybe for other objects.

use std::collections::BTreeMap;

/// The annotation VPA's admission controller writes on pods it changed.
pub const ADMISSION_ANNOTATION: &str = "vpaUpdates";
/// The annotation VPA's updater writes on pods it resized in place.
pub const IN_PLACE_ANNOTATION: &str = "vpaInPlaceUpdated";
const ADMISSION_PREFIX: &str = "Pod resources updated by ";

/// The pod annotations [`mark`] reads: the pod watch keeps these (and drops
/// the others while decoding).
pub fn annotation_kept(key: &str) -> bool {
    key == ADMISSION_ANNOTATION || key == IN_PLACE_ANNOTATION
}

/// What upstream VPA did to one pod, read from its annotations.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct UpstreamMark {
    /// The VPA object (in the pod's namespace) whose recommendation VPA's
    /// admission controller applied to the pod at creation.
    pub admitted_by: Option<String>,
    /// VPA's updater resized the pod in place.
    pub updated_in_place: bool,
}

/// The mark a pod with these annotations carries; `None` for a pod upstream
/// VPA never touched.
pub fn mark(annotations: Option<&BTreeMap<String, String>>) -> Option<UpstreamMark> {
    let annotations = annotations?;
    let admitted_by = annotations
        .get(ADMISSION_ANNOTATION)
        .and_then(|v| v.strip_prefix(ADMISSION_PREFIX))
        .and_then(|rest| rest.split(':').next())
        .map(str::trim)
        .filter(|name| !name.is_empty())
        .map(str::to_string);
    let updated_in_place = annotations.get(IN_PLACE_ANNOTATION).is_some_and(|v| v == "true");
    (admitted_by.is_some() || updated_in_place).then_some(UpstreamMark { admitted_by, updated_in_place })
}

/// Which upstream component acted on a handled object's pods.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum UpstreamComponent {
    AdmissionController,
    Updater,
}

impl UpstreamComponent {
    pub fn describe(self) -> &'static str {
        match self {
            UpstreamComponent::AdmissionController => "VPA's admission controller set the requests of pod",
            UpstreamComponent::Updater => "VPA's updater resized pod",
        }
    }
}

/// One component seen acting, with the pod that shows it.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct UpstreamSighting {
    pub component: UpstreamComponent,
    pub namespace: String,
    pub pod: String,
}

impl std::fmt::Display for UpstreamSighting {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}/{}", self.component.describe(), self.namespace, self.pod)
    }
}
