//! The size a pod comes back at when it is evicted: what VPA's admission
//! controller gives its replacement.

use crate::model::{Pod, UpdateMode};
use crate::planner::Cx;
use crate::recommender::apply_to_container;

/// The pod as its replacement will be created, when that differs from the
/// pod as it runs: with an admission controller declared and the pod's VPA
/// object in a mode that applies at creation (every mode but `Off`), each
/// recommended container at its target within its resource policy. `None`
/// otherwise: the replacement comes from the same template.
///
/// Scale-down simulates a drained pod at this size: judging it at its current
/// requests let a drain send pods that came back larger and fit nowhere, and
/// a minion was added back (issue 17, seeds 13 and 38).
pub(crate) fn recreated(cx: &Cx<'_>, pod: &Pod) -> Option<Pod> {
    if !cx.ix.snap.admission_applies_recommendations {
        return None;
    }
    let workload = pod.workload.as_ref()?;
    // The first VPA object of the workload, as the updater (`evaluate_all`) picks it.
    let (_, vertical) = cx.ix.vpas().find(|(_, v)| &v.workload == workload)?;
    if vertical.update_mode == UpdateMode::Off || vertical.recommendations.is_empty() {
        return None;
    }
    let mut reborn = pod.clone();
    let mut changed = false;
    for c in &mut reborn.containers {
        let Some(rec) = vertical.recommendation(&c.name) else { continue };
        let applied = apply_to_container(c, &rec.target, vertical.resource_policy.for_container(&c.name));
        // A new pod has nothing allocated yet: the scheduler counts the spec.
        let held = c.allocated.as_ref().map_or(c.requests.clone(), |a| a.max(&c.requests));
        reborn.requests.cpu_milli += applied.requests.cpu_milli - held.cpu_milli;
        reborn.requests.memory += applied.requests.memory - held.memory;
        changed |= applied.requests.cpu_milli != held.cpu_milli || applied.requests.memory != held.memory;
        c.requests = applied.requests;
        c.limits = applied.limits;
        c.allocated = None;
    }
    changed.then_some(reborn)
}
