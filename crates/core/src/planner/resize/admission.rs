//! The size a pod comes back at when it is evicted: its controller's pod
//! template, rewritten by VPA's admission controller when one runs.

use crate::model::{Container, Pod, PodTemplate};
use crate::planner::Cx;
use crate::recommender::admitted;

/// The pod as its replacement will be created, when that differs from the
/// pod as it runs (`None`: it comes back as it is, or nothing is known).
///
/// Each container starts from its controller's pod template when the
/// snapshot has it (`Snapshot::templates`): a pod resized in place keeps its
/// new size only until it is recreated. With an admission controller
/// declared and the pod's VPA object in a mode that applies at creation
/// (every mode but `Off`), each recommended container then gets its target
/// within its resource policy, as VPA's admission controller does.
///
/// Scale-down simulates a drained pod at this size: judging it at its current
/// requests let a drain send pods that came back larger and fit nowhere, and a
/// minion was added back — with an admission controller (issue 17, seeds 13
/// and 38) and without one, a pod shrunk in place coming back at its
/// template's requests (the oscillation of docs/unified.md's odd half).
pub(crate) fn recreated(cx: &Cx<'_>, pod: &Pod) -> Option<Pod> {
    recreated_from(cx, pod, cx.ix.template_of(pod))
}

/// [`recreated`] with the pod's template already looked up
/// (`cx.ix.template_of(pod)`): a caller asking for many replicas of one
/// controller looks it up once, not once per pod.
pub(crate) fn recreated_from(cx: &Cx<'_>, pod: &Pod, template: Option<&PodTemplate>) -> Option<Pod> {
    let vertical = Some(cx.ix.snap.admission_applies_recommendations)
        .filter(|&admission| admission)
        .and_then(|_| cx.ix.vpa_of(pod.workload.as_ref()?))
        .map(|v| cx.ix.vpa(v))
        .filter(|v| !v.recommendations.is_empty());
    if template.is_none() && vertical.is_none() {
        return None;
    }
    // Each container's requests and limits at creation, decided before the
    // pod is copied: scale-down asks this of every pod on every candidate at
    // every pass, and most come back as they run (issue 18, item 5: the copy
    // of every pod was a tenth of a simulated pass).
    let mut created_sizes = Vec::with_capacity(pod.containers.len());
    let mut changed = false;
    for c in &pod.containers {
        // The container as the controller creates it (as it runs when the
        // template does not name it).
        let created = template.and_then(|t| t.containers.iter().find(|t| t.name == c.name));
        let template_requests = created.map_or(&c.requests, |t| &t.requests);
        let template_limits = created.map_or(&c.limits, |t| &t.limits);
        // What an admission controller does to the new pod: the same function
        // heatscaler's own webhook sets it with (`recommender::admitted`).
        // The container is copied only where a recommendation names it.
        let (requests, limits) = match vertical.filter(|v| v.recommendation(&c.name).is_some()) {
            Some(v) => {
                let base = Container {
                    requests: template_requests.clone(),
                    limits: template_limits.clone(),
                    allocated: None,
                    ..c.clone()
                };
                match admitted(&base, v) {
                    Some(applied) => (applied.requests, applied.limits),
                    None => (base.requests, base.limits),
                }
            }
            None => (template_requests.clone(), template_limits.clone()),
        };
        // A new pod has nothing allocated yet: the scheduler counts the spec.
        let held = c.counted(&pod.resize);
        changed |= requests.cpu_milli != held.cpu_milli
            || requests.memory != held.memory
            || limits.cpu_milli != c.limits.cpu_milli
            || limits.memory != c.limits.memory;
        created_sizes.push((requests, limits, held));
    }
    if !changed {
        return None;
    }
    let mut reborn = pod.clone();
    for (c, (requests, limits, held)) in reborn.containers.iter_mut().zip(created_sizes) {
        reborn.requests.cpu_milli += requests.cpu_milli - held.cpu_milli;
        reborn.requests.memory += requests.memory - held.memory;
        c.requests = requests;
        c.limits = limits;
        c.allocated = None;
    }
    Some(reborn)
}
