//! Whether the API server really calls heatscaler's webhook, judged from the
//! pods it creates. The registration's `failurePolicy: Ignore` (a webhook
//! must never block pod creation) makes a webhook that is not registered,
//! unreachable or failing silent: pods are admitted at their template's
//! size. The planner counts on recreated pods getting their recommendation
//! while the webhook is configured, so it must learn when that is false.
//!
//! The evidence is the mark the webhook leaves ([`super::ANNOTATION`]): a pod
//! the webhook would have changed — created for a VPA object in a mode other
//! than `Off` that had a recommendation naming one of its containers, and
//! created [`GRACE`] after both the first pass and that recommendation (the
//! status the webhook reads is written after the pass) — must carry it, or
//! upstream VPA's admission controller's (which gives the same sizes). The
//! newest such pod decides: unmarked, the planner stops counting on the
//! webhook and one alert says so; marked again later, it counts on it again.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use heatscaler_core::model::{Pod, Timestamp, VerticalScaling, WorkloadRef};
use heatscaler_core::recommender::admitted;

use crate::vpa::upstream::UpstreamMark;

/// Slack between a recommendation (or the daemon's first pass) and the first
/// pod that must show it: the status write, the watches' delay, the
/// creation timestamp's whole seconds.
pub const GRACE: Duration = Duration::from_secs(30);

/// What the newest pod that should carry the mark says.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// No such pod yet: counted on, as configured.
    Unproven,
    /// It carries the mark.
    Applied,
    /// It does not: the API server did not call the webhook for it.
    Missed { namespace: String, pod: String },
}

#[derive(Debug, Default)]
pub struct Witness {
    first_pass: Option<Timestamp>,
    /// When each workload's VPA object was first seen with a recommendation.
    recommended_since: HashMap<WorkloadRef, Timestamp>,
    verdict: Option<Verdict>,
}

impl Witness {
    /// Whether the planner may count on new pods getting their recommendation.
    pub fn counts_on_it(&self) -> bool {
        !matches!(self.verdict, Some(Verdict::Missed { .. }))
    }

    pub fn verdict(&self) -> Verdict {
        self.verdict.clone().unwrap_or(Verdict::Unproven)
    }

    /// Looks at the live pods once a pass; returns the new verdict when it
    /// changed to or from [`Verdict::Missed`]. `marked`: uids of the pods
    /// carrying heatscaler's mark; `upstream`: pods upstream VPA acted on.
    pub fn observe(
        &mut self,
        pods: &[Pod],
        vertical: &[VerticalScaling],
        marked: &HashSet<String>,
        upstream: &HashMap<String, UpstreamMark>,
        now: Timestamp,
    ) -> Option<Verdict> {
        let first_pass = *self.first_pass.get_or_insert(now);
        let by_workload: HashMap<&WorkloadRef, &VerticalScaling> = vertical
            .iter()
            .filter(|v| !v.recommendations.is_empty())
            .map(|v| {
                self.recommended_since.entry(v.workload.clone()).or_insert(now);
                (&v.workload, v)
            })
            .collect();
        self.recommended_since.retain(|w, _| by_workload.contains_key(w));
        let after = |t: Timestamp| t + GRACE;
        let newest = pods
            .iter()
            .filter(|p| !p.is_terminal() && p.created >= after(first_pass))
            .filter_map(|p| {
                let v = by_workload.get(p.workload.as_ref()?)?;
                let since = self.recommended_since.get(&v.workload)?;
                let would_change = p.containers.iter().any(|c| admitted(c, v).is_some());
                (p.created >= after(*since) && would_change).then_some(p)
            })
            .max_by(|a, b| a.created.cmp(&b.created).then_with(|| a.uid.cmp(&b.uid)))?;
        let shows_it = marked.contains(newest.uid.as_str())
            || upstream.get(newest.uid.as_str()).is_some_and(|m| m.admitted_by.is_some());
        let verdict = if shows_it {
            Verdict::Applied
        } else {
            Verdict::Missed { namespace: newest.namespace.to_string(), pod: newest.name.to_string() }
        };
        let was_missed = !self.counts_on_it();
        let missed = matches!(verdict, Verdict::Missed { .. });
        self.verdict = Some(verdict.clone());
        (was_missed != missed).then_some(verdict)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use heatscaler_core::model::test_support::{container, pod as model_pod};
    use heatscaler_core::model::{ContainerRecommendation, PodResourcePolicy, Resources, UpdateMode};

    fn at(s: i64) -> Timestamp {
        Timestamp::from_second(1_800_000_000 + s).unwrap()
    }

    fn web() -> WorkloadRef {
        WorkloadRef { kind: "Deployment".into(), namespace: "ns".into(), name: "web".into() }
    }

    fn vpa(mode: UpdateMode) -> VerticalScaling {
        VerticalScaling {
            namespace: "ns".into(),
            name: "web".into(),
            workload: web(),
            update_mode: mode,
            min_replicas: None,
            resource_policy: PodResourcePolicy::default(),
            eviction_requirements: Vec::new(),
            replicas: None,
            recommendations: vec![ContainerRecommendation {
                container_name: "c".into(),
                target: Resources::new(300, 0),
                lower_bound: Resources::new(300, 0),
                upper_bound: Resources::new(300, 0),
                uncapped_target: Resources::new(300, 0),
                capped: Vec::new(),
            }],
        }
    }

    fn pod(uid: &str, created: i64) -> Pod {
        let mut p = model_pod(uid);
        p.uid = uid.into();
        p.namespace = "ns".into();
        p.containers = vec![container("c", Resources::new(100, 0))];
        p.workload = Some(web());
        p.created = at(created);
        p
    }

    #[test]
    fn a_replacement_created_without_the_mark_stops_the_planner_counting_on_the_webhook_until_one_has_it() {
        let mut w = Witness::default();
        let none = HashMap::new();
        let vpas = [vpa(UpdateMode::InPlaceOrRecreate)];
        // Pods from before the daemon's first pass (and its grace) prove nothing.
        assert_eq!(w.observe(&[pod("old", -100)], &vpas, &HashSet::new(), &none, at(0)), None);
        assert!(w.counts_on_it());
        assert_eq!(w.verdict(), Verdict::Unproven);
        // A replacement created well after, unmarked: the webhook was not called.
        let pods = [pod("old", -100), pod("new", 60)];
        let changed = w.observe(&pods, &vpas, &HashSet::new(), &none, at(70));
        assert_eq!(changed, Some(Verdict::Missed { namespace: "ns".into(), pod: "new".into() }));
        assert!(!w.counts_on_it());
        assert_eq!(w.observe(&pods, &vpas, &HashSet::new(), &none, at(80)), None, "alerted once");
        // A later one with the mark: counted on again.
        let pods = [pod("new", 60), pod("newer", 90)];
        let marked = HashSet::from(["newer".to_string()]);
        assert_eq!(w.observe(&pods, &vpas, &marked, &none, at(100)), Some(Verdict::Applied));
        assert!(w.counts_on_it());
    }

    #[test]
    fn pods_the_webhook_would_leave_alone_prove_nothing() {
        let none = HashMap::new();
        let pods = [pod("new", 60)];
        for vpas in [vec![vpa(UpdateMode::Off)], vec![], {
            let mut v = vpa(UpdateMode::Recreate);
            v.recommendations.clear();
            vec![v]
        }] {
            let mut w = Witness::default();
            w.observe(&[], &vpas, &HashSet::new(), &none, at(0));
            assert_eq!(w.observe(&pods, &vpas, &HashSet::new(), &none, at(70)), None);
            assert!(w.counts_on_it());
        }
        // A recommendation that appeared just before the pod: the status may not have been read yet.
        let mut w = Witness::default();
        w.observe(&[], &[], &HashSet::new(), &none, at(0));
        let vpas = [vpa(UpdateMode::Recreate)];
        assert_eq!(w.observe(&pods, &vpas, &HashSet::new(), &none, at(50)), None);
        assert!(w.counts_on_it());
    }

    #[test]
    fn upstream_admission_controllers_mark_counts_as_applied() {
        let mut w = Witness::default();
        let vpas = [vpa(UpdateMode::Recreate)];
        w.observe(&[], &vpas, &HashSet::new(), &HashMap::new(), at(0));
        let upstream = HashMap::from([(
            "new".to_string(),
            UpstreamMark { admitted_by: Some("web".into()), updated_in_place: false },
        )]);
        assert_eq!(w.observe(&[pod("new", 60)], &vpas, &HashSet::new(), &upstream, at(70)), None);
        assert_eq!(w.verdict(), Verdict::Applied);
    }
}
