//! CPU arrives as a cumulative counter (core-seconds since the container
//! started); usage is its rate between two scrapes. This keeps the previous
//! reading of every live series — one small entry per container, replaced on
//! each scrape of its node, so the map never grows beyond what runs now.

use std::collections::HashMap;

use jiff::Timestamp;

use super::{ContainerUsage, CpuReading, NodeReadings, NodeUsage};
use heatscaler_core::model::PodKey;

/// One CPU counter: a container instance on a node.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct SeriesKey {
    pub namespace: String,
    pub pod: String,
    pub container: String,
    /// What tells two incarnations apart: the pod UID (Summary API) or the
    /// cgroup path (cAdvisor `id`).
    pub instance: String,
}

#[derive(Clone, Copy, Debug, PartialEq)]
struct CounterPoint {
    at: Timestamp,
    core_seconds: f64,
    started: Option<Timestamp>,
}

impl CounterPoint {
    fn of(r: &CpuReading) -> Option<Self> {
        r.cumulative_core_seconds.map(|core_seconds| Self { at: r.at, core_seconds, started: r.started })
    }

    /// Cores used between `prev` and `self`, if they are two readings of the
    /// same counter: same start, later time, not lower (a lower value is a reset).
    fn rate_since(&self, prev: &CounterPoint) -> Option<f64> {
        if self.started != prev.started || self.at <= prev.at || self.core_seconds < prev.core_seconds {
            return None;
        }
        let seconds = self.at.duration_since(prev.at).as_secs_f64();
        Some((self.core_seconds - prev.core_seconds) / seconds)
    }
}

#[derive(Clone, Debug, Default)]
struct NodeCounters {
    node: Option<CounterPoint>,
    containers: HashMap<SeriesKey, CounterPoint>,
}

/// Previous CPU counters, per node.
#[derive(Clone, Debug, Default)]
pub struct CpuCounters {
    nodes: HashMap<String, NodeCounters>,
}

impl CpuCounters {
    /// Turns one node's readings into usage, remembering its counters for next time.
    ///
    /// A container's CPU is the counter's rate since the previous scrape; with
    /// no usable previous reading (first scrape, restart) it is the kubelet's
    /// own recent average when the source has one, else unknown.
    pub fn observe(&mut self, node: &str, readings: NodeReadings) -> (Vec<ContainerUsage>, NodeUsage) {
        let previous = self.nodes.remove(node).unwrap_or_default();
        let mut next = NodeCounters { node: None, containers: HashMap::with_capacity(readings.containers.len()) };

        let mut usage = Vec::with_capacity(readings.containers.len());
        for reading in readings.containers {
            let cpu = reading.cpu.and_then(|r| {
                let point = CounterPoint::of(&r);
                let rate =
                    point.and_then(|p| previous.containers.get(&reading.series).and_then(|prev| p.rate_since(prev)));
                if let Some(p) = point {
                    next.containers.insert(reading.series.clone(), p);
                }
                rate.or(r.recent_cores).map(|cores| (r.at, cores))
            });
            let at = match (cpu, reading.memory) {
                (Some((t, _)), _) | (None, Some((t, _))) => t,
                (None, None) => continue,
            };
            usage.push(ContainerUsage {
                pod: PodKey { namespace: reading.series.namespace.into(), name: reading.series.pod.into() },
                container: reading.series.container,
                at,
                cpu_cores: cpu.map(|(_, c)| c),
                memory_working_set: reading.memory.map(|(_, b)| b),
            });
        }

        let node_cpu = readings.node_cpu.and_then(|r| {
            let point = CounterPoint::of(&r);
            next.node = point;
            let rate = point.and_then(|p| previous.node.and_then(|prev| p.rate_since(&prev)));
            rate.or(r.recent_cores).map(|c| (r.at, c))
        });
        let at = node_cpu.map(|(t, _)| t).or(readings.node_memory.map(|(t, _)| t)).unwrap_or(Timestamp::UNIX_EPOCH);
        let node_usage = NodeUsage {
            node: node.to_string(),
            at,
            cpu_cores: node_cpu.map(|(_, c)| c),
            memory_working_set: readings.node_memory.map(|(_, b)| b),
        };
        self.nodes.insert(node.to_string(), next);
        (usage, node_usage)
    }

    /// Forgets nodes not in `live` (removed from the cluster).
    pub fn retain_nodes(&mut self, mut live: impl FnMut(&str) -> bool) {
        self.nodes.retain(|n, _| live(n));
    }

    /// Series remembered, all nodes together.
    pub fn series(&self) -> usize {
        self.nodes.values().map(|n| n.containers.len()).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::usage::ContainerReading;

    fn ts(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    fn reading(at: &str, counter: f64, recent: Option<f64>, started: &str) -> NodeReadings {
        NodeReadings {
            containers: vec![ContainerReading {
                series: SeriesKey {
                    namespace: "shop".into(),
                    pod: "web-1".into(),
                    container: "app".into(),
                    instance: "uid-1".into(),
                },
                cpu: Some(CpuReading {
                    at: ts(at),
                    cumulative_core_seconds: Some(counter),
                    recent_cores: recent,
                    started: Some(ts(started)),
                }),
                memory: Some((ts(at), 100 << 20)),
            }],
            node_cpu: None,
            node_memory: None,
        }
    }

    #[test]
    fn rate_between_scrapes_and_fallbacks() {
        let mut c = CpuCounters::default();
        let start = "2026-01-01T00:00:00Z";
        // First scrape: the kubelet's recent average, no rate yet.
        let (u, _) = c.observe("n1", reading("2026-01-01T01:00:00Z", 1000.0, Some(0.25), start));
        assert_eq!(u[0].cpu_cores, Some(0.25));
        // 60 s later, 30 core-seconds more: 0.5 cores, whatever the kubelet's window says.
        let (u, _) = c.observe("n1", reading("2026-01-01T01:01:00Z", 1030.0, Some(0.9), start));
        assert_eq!(u[0].cpu_cores, Some(0.5));
        // The container restarted: counter lower and a new start time; no rate, fallback.
        let (u, _) = c.observe("n1", reading("2026-01-01T01:02:00Z", 3.0, None, "2026-01-01T01:01:30Z"));
        assert_eq!(u[0].cpu_cores, None);
        assert_eq!(u[0].memory_working_set, Some(100 << 20));
        assert_eq!(c.series(), 1, "one entry per live series");
        c.retain_nodes(|n| n != "n1");
        assert_eq!(c.series(), 0);
    }
}
