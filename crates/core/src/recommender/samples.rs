//! What the recommender is fed: container usage samples and OOM kills, in
//! the shape the daemon's kubelet scraping produces and the simulator's
//! kubelet produces too. [`OomTracker`] turns the OOM kill times observers
//! copy into each container (`model::Container::last_oom`) into events, each
//! kill reported once.

use std::collections::HashMap;

use jiff::{SignedDuration, Timestamp};

use crate::model::{Pod, PodKey, WorkloadRef};

/// One container's usage at one instant.
#[derive(Clone, Debug, PartialEq)]
pub struct ContainerUsage {
    pub pod: PodKey,
    pub container: String,
    /// When the kubelet measured it.
    pub at: Timestamp,
    /// Cores, averaged since the previous scrape (or over the kubelet's own
    /// window when there is no previous scrape); `None` when not yet known.
    pub cpu_cores: Option<f64>,
    /// Working set bytes: what the kernel would not reclaim, what the OOM
    /// killer and eviction look at.
    pub memory_working_set: Option<i64>,
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
