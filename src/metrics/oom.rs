//! OOM kills, from container status: a container whose last termination
//! (`lastState.terminated`, or `state.terminated` while it is still down) has
//! `reason: OOMKilled`. The cluster observer copies the kill time into
//! [`crate::model::Container::last_oom`]; [`OomTracker`] turns it into events,
//! each kill reported once.

use std::collections::HashMap;

use jiff::{SignedDuration, Timestamp};
use k8s_openapi::api::core::v1::{ContainerState, ContainerStatus};

use crate::model::{Pod, PodKey, WorkloadRef};

/// The `reason` the kubelet gives a container the kernel OOM killer ended.
pub const OOM_KILLED: &str = "OOMKilled";

/// When `status` says the container was last OOM-killed, if it was.
pub fn last_oom_kill(status: &ContainerStatus) -> Option<Timestamp> {
    let oom_at = |s: &Option<ContainerState>| {
        let t = s.as_ref()?.terminated.as_ref()?;
        if t.reason.as_deref() != Some(OOM_KILLED) {
            return None;
        }
        t.finished_at.as_ref().map(|f| f.0)
    };
    oom_at(&status.state).max(oom_at(&status.last_state))
}

/// An OOM kill of a workload container.
#[derive(Clone, Debug, PartialEq)]
pub struct OomEvent {
    pub workload: WorkloadRef,
    pub pod: PodKey,
    pub container: String,
    pub at: Timestamp,
    /// The memory request (bytes) the container had when it was killed.
    pub memory_request: i64,
}

/// Remembers the last kill reported per pod container, so a status seen on
/// every watch event yields one event per kill. Holds one entry per live
/// container that has been OOM-killed.
#[derive(Clone, Debug, Default)]
pub struct OomTracker {
    reported: HashMap<(PodKey, String), Timestamp>,
}

impl OomTracker {
    /// New kills in `pods`. Kills older than `max_age` before `now` are not
    /// reported (at startup every past kill is in status; VPA would drop them
    /// as older than the memory aggregation interval anyway). Pods not in
    /// `pods` are forgotten.
    pub fn observe(&mut self, pods: &[Pod], now: Timestamp, max_age: SignedDuration) -> Vec<OomEvent> {
        let mut events = Vec::new();
        let mut seen = HashMap::with_capacity(self.reported.len());
        for pod in pods {
            let Some(workload) = &pod.workload else { continue };
            for c in &pod.containers {
                let Some(at) = c.last_oom else { continue };
                let key = (pod.key(), c.name.clone());
                let already = self.reported.get(&key).is_some_and(|&last| last >= at);
                if !already && now.duration_since(at) <= max_age {
                    let request = c.allocated.as_ref().unwrap_or(&c.requests);
                    events.push(OomEvent {
                        workload: workload.clone(),
                        pod: key.0.clone(),
                        container: c.name.clone(),
                        at,
                        memory_request: request.memory,
                    });
                }
                seen.insert(key, at);
            }
        }
        self.reported = seen;
        events
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::ContainerStateTerminated;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

    fn terminated(reason: &str, at: &str) -> Option<ContainerState> {
        Some(ContainerState {
            terminated: Some(ContainerStateTerminated {
                reason: Some(reason.into()),
                exit_code: 137,
                finished_at: Some(Time(at.parse().unwrap())),
                ..Default::default()
            }),
            ..Default::default()
        })
    }

    #[test]
    fn reads_oom_from_last_or_current_state() {
        let mut s = ContainerStatus { name: "app".into(), ..Default::default() };
        assert_eq!(last_oom_kill(&s), None);
        s.last_state = terminated("OOMKilled", "2026-01-01T10:00:00Z");
        assert_eq!(last_oom_kill(&s).unwrap().to_string(), "2026-01-01T10:00:00Z");
        s.state = terminated("OOMKilled", "2026-01-01T11:00:00Z");
        assert_eq!(last_oom_kill(&s).unwrap().to_string(), "2026-01-01T11:00:00Z");
        s.state = terminated("Error", "2026-01-01T12:00:00Z");
        s.last_state = terminated("Completed", "2026-01-01T09:00:00Z");
        assert_eq!(last_oom_kill(&s), None);
    }
}
