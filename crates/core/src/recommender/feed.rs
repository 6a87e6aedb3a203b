//! Joining collected usage and OOM kills to workloads: the kubelet knows pods,
//! the recommender knows workload containers, the snapshot maps one to the other.

use std::collections::HashMap;

use super::Recommender;
use super::samples::{ContainerUsage, OomEvent};
use crate::model::{Pod, VerticalScaling};

/// What happened to one batch of input; every sample lands in exactly one count.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FeedReport {
    pub cpu_samples: usize,
    pub memory_samples: usize,
    pub ooms: usize,
    /// Duplicates, out-of-order or invalid samples, too-old OOM kills.
    pub rejected: usize,
    /// The pod is not (or no longer) in the snapshot.
    pub unknown_pod: usize,
    /// The pod belongs to no workload (a bare pod): nothing to recommend for.
    pub no_workload: usize,
    /// Not a container of the pod spec (an init or ephemeral container).
    pub unknown_container: usize,
}

/// Feeds one scrape's container usage. CPU samples are weighted by the
/// request the kubelet has applied (`allocated`), else the spec's request:
/// what the container actually had while it used that CPU.
pub fn feed_usage(recommender: &mut Recommender, pods: &[Pod], usage: &[ContainerUsage]) -> FeedReport {
    let index: HashMap<(&str, &str), &Pod> =
        pods.iter().map(|p| ((p.namespace.as_str(), p.name.as_str()), p)).collect();
    let mut report = FeedReport::default();
    for u in usage {
        let Some(pod) = index.get(&(u.pod.namespace.as_str(), u.pod.name.as_str())) else {
            report.unknown_pod += 1;
            continue;
        };
        let Some(workload) = &pod.workload else {
            report.no_workload += 1;
            continue;
        };
        let Some(container) = pod.containers.iter().find(|c| c.name == u.container) else {
            report.unknown_container += 1;
            continue;
        };
        let request = container.allocated.as_ref().unwrap_or(&container.requests);
        if let Some(cores) = u.cpu_cores {
            match recommender.add_cpu_sample(workload, &u.pod, &u.container, u.at, cores, request.cpu_milli) {
                Ok(()) => report.cpu_samples += 1,
                Err(_) => report.rejected += 1,
            }
        }
        if let Some(bytes) = u.memory_working_set {
            match recommender.add_memory_sample(workload, &u.pod, &u.container, u.at, bytes) {
                Ok(()) => report.memory_samples += 1,
                Err(_) => report.rejected += 1,
            }
        }
    }
    report
}

/// Feeds OOM kills (from [`super::OomTracker`]).
pub fn feed_ooms(recommender: &mut Recommender, events: &[OomEvent]) -> FeedReport {
    let mut report = FeedReport::default();
    for e in events {
        match recommender.record_oom(&e.workload, &e.pod, &e.container, e.at, e.memory_request) {
            Ok(()) => report.ooms += 1,
            Err(_) => report.rejected += 1,
        }
    }
    report
}

/// Fills `vertical.recommendations` from the recommender. The pod minimum is
/// split over the containers of the workload's pods (any live pod; one when
/// none is running, as VPA does for a workload scaled to zero).
pub fn fill_recommendations(vertical: &mut VerticalScaling, recommender: &Recommender, pods: &[Pod]) {
    let containers = pods
        .iter()
        .find(|p| p.workload.as_ref() == Some(&vertical.workload) && !p.is_terminal())
        .map_or(1, |p| p.containers.len().max(1));
    vertical.recommendations = recommender.recommend(&vertical.workload, Some(&vertical.resource_policy), containers);
}
