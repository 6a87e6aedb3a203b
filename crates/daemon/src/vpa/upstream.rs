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

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use heatscaler_core::model::Timestamp;
use heatscaler_core::planner::time::elapsed;

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

/// How long a component stays reported on an object after the last live pod
/// showing it went. While upstream acts, marked pods are always there: its
/// admission controller annotates every replacement as it is created, and
/// the pods its updater resized keep their mark. The margin covers a marked
/// pod deleted a little before its replacement is listed.
pub const CLEARED_AFTER: Duration = Duration::from_secs(600);

/// The upstream components seen acting on each handled object (by
/// `namespace/name`), with when each was last seen on a live pod. A component
/// no live pod has shown for [`CLEARED_AFTER`] is gone (uninstalled, or
/// pointed elsewhere): its condition clears, and a later sighting is a new
/// one, alerted again.
#[derive(Debug, Default)]
pub struct Sightings {
    by_object: HashMap<String, Vec<(UpstreamSighting, Timestamp)>>,
}

impl Sightings {
    /// Records the components seen on `object`'s live pods this pass;
    /// returns those not already reported (one alert each).
    pub fn observe(&mut self, object: &str, seen: Vec<UpstreamSighting>, now: Timestamp) -> Vec<UpstreamSighting> {
        let known = self.by_object.entry(object.to_string()).or_default();
        let mut new = Vec::new();
        for sighting in seen {
            match known.iter_mut().find(|(k, _)| k.component == sighting.component) {
                Some((k, last)) => {
                    *k = sighting;
                    *last = now;
                }
                None => {
                    new.push(sighting.clone());
                    known.push((sighting, now));
                }
            }
        }
        new
    }

    /// Forgets what no live pod has shown for [`CLEARED_AFTER`].
    pub fn expire(&mut self, now: Timestamp) {
        for known in self.by_object.values_mut() {
            known.retain(|(_, last)| elapsed(now, *last) < CLEARED_AFTER);
        }
        self.by_object.retain(|_, known| !known.is_empty());
    }

    /// The components reported on `object` now.
    pub fn of(&self, object: &str) -> Vec<UpstreamSighting> {
        self.by_object.get(object).map(|k| k.iter().map(|(s, _)| s.clone()).collect()).unwrap_or_default()
    }
}

impl std::fmt::Display for UpstreamSighting {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}/{}", self.component.describe(), self.namespace, self.pod)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seen(component: UpstreamComponent, pod: &str) -> UpstreamSighting {
        UpstreamSighting { component, namespace: "ns".into(), pod: pod.into() }
    }

    /// `UpstreamVpaActive` clears once upstream is gone: it used to be kept
    /// for the life of the process, so an object stayed flagged (and never
    /// alerted again) after VPA's admission controller was uninstalled.
    #[test]
    fn a_component_no_live_pod_shows_any_more_is_forgotten_and_alerted_again_when_back() {
        let t0 = Timestamp::from_second(1_800_000_000).unwrap();
        let at = |s: i64| t0 + jiff::SignedDuration::from_secs(s);
        let mut s = Sightings::default();
        let admission = UpstreamComponent::AdmissionController;
        assert_eq!(s.observe("ns/web", vec![seen(admission, "web-1")], t0), [seen(admission, "web-1")]);
        assert!(s.observe("ns/web", vec![seen(admission, "web-2")], at(60)).is_empty(), "alerted once");
        assert_eq!(s.of("ns/web"), [seen(admission, "web-2")], "names the pod seen last");
        // The marked pods are gone (replaced without the annotation): kept a while...
        s.expire(at(60 + 599));
        assert_eq!(s.of("ns/web").len(), 1);
        // ...then cleared: the condition goes.
        s.expire(at(60 + 600));
        assert!(s.of("ns/web").is_empty());
        // Back: a new sighting, alerted again.
        assert_eq!(s.observe("ns/web", vec![seen(admission, "web-3")], at(2000)).len(), 1);
    }
}
