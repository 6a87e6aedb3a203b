//! The kubelet Summary API, `GET /api/v1/nodes/<node>/proxy/stats/summary`:
//! JSON of `k8s.io/kubelet/pkg/apis/stats/v1alpha1.Summary`. Only the fields
//! the recommender needs are declared; the rest (network, fs, volumes, swap,
//! PSI, system containers) is ignored, so newer kubelets parse too.

use jiff::Timestamp;
use serde::Deserialize;

use super::counters::SeriesKey;
use super::{ContainerReading, CpuReading, NodeReadings};

#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Summary {
    pub node: NodeStats,
    #[serde(default)]
    pub pods: Vec<PodStats>,
}

#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct NodeStats {
    pub node_name: String,
    pub cpu: Option<CpuStats>,
    pub memory: Option<MemoryStats>,
}

#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct PodStats {
    pub pod_ref: PodReference,
    #[serde(default)]
    pub containers: Vec<ContainerStats>,
}

#[derive(Clone, Debug, Deserialize, PartialEq)]
pub struct PodReference {
    pub name: String,
    pub namespace: String,
    #[serde(default)]
    pub uid: String,
}

#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ContainerStats {
    pub name: String,
    pub start_time: Option<Timestamp>,
    pub cpu: Option<CpuStats>,
    pub memory: Option<MemoryStats>,
}

/// `usageNanoCores` is the kubelet's average over its last housekeeping
/// window; `usageCoreNanoSeconds` is cumulative. Either may be absent.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct CpuStats {
    pub time: Option<Timestamp>,
    pub usage_nano_cores: Option<u64>,
    pub usage_core_nano_seconds: Option<u64>,
}

#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct MemoryStats {
    pub time: Option<Timestamp>,
    pub usage_bytes: Option<u64>,
    pub working_set_bytes: Option<u64>,
    pub rss_bytes: Option<u64>,
}

/// A body that is not a Summary.
#[derive(Debug, thiserror::Error)]
#[error("not a kubelet stats summary: {0}")]
pub struct SummaryError(#[from] serde_json::Error);

pub fn parse(body: &[u8]) -> Result<Summary, SummaryError> {
    Ok(serde_json::from_slice(body)?)
}

fn cpu_reading(cpu: &CpuStats, started: Option<Timestamp>) -> Option<CpuReading> {
    let at = cpu.time?;
    if cpu.usage_core_nano_seconds.is_none() && cpu.usage_nano_cores.is_none() {
        return None;
    }
    Some(CpuReading {
        at,
        cumulative_core_seconds: cpu.usage_core_nano_seconds.map(|n| n as f64 / 1e9),
        recent_cores: cpu.usage_nano_cores.map(|n| n as f64 / 1e9),
        started,
    })
}

fn memory_reading(memory: &MemoryStats) -> Option<(Timestamp, i64)> {
    Some((memory.time?, i64::try_from(memory.working_set_bytes?).ok()?))
}

impl Summary {
    /// The readings the collector turns into usage.
    pub fn readings(&self) -> NodeReadings {
        let mut containers = Vec::new();
        for pod in &self.pods {
            for c in &pod.containers {
                let reading = ContainerReading {
                    series: SeriesKey {
                        namespace: pod.pod_ref.namespace.clone(),
                        pod: pod.pod_ref.name.clone(),
                        container: c.name.clone(),
                        instance: pod.pod_ref.uid.clone(),
                    },
                    cpu: c.cpu.as_ref().and_then(|cpu| cpu_reading(cpu, c.start_time)),
                    memory: c.memory.as_ref().and_then(memory_reading),
                };
                if reading.cpu.is_some() || reading.memory.is_some() {
                    containers.push(reading);
                }
            }
        }
        NodeReadings {
            containers,
            node_cpu: self.node.cpu.as_ref().and_then(|cpu| cpu_reading(cpu, None)),
            node_memory: self.node.memory.as_ref().and_then(memory_reading),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::usage::counters::CpuCounters;

    /// A kubelet 1.3x `/stats/summary` body (shape of stats/v1alpha1, see the fixture's README).
    const FIXTURE: &str = include_str!("../../../../tests/fixtures/kubelet/summary.json");

    #[test]
    fn parses_a_kubelet_summary() {
        let summary = parse(FIXTURE.as_bytes()).unwrap();
        assert_eq!(summary.node.node_name, "minion-0");
        assert_eq!(summary.pods.len(), 3);
        let readings = summary.readings();
        let names: Vec<_> =
            readings.containers.iter().map(|c| (c.series.pod.as_str(), c.series.container.as_str())).collect();
        assert_eq!(
            names,
            [("web-7d4b9c6f5-x2kqp", "app"), ("web-7d4b9c6f5-x2kqp", "envoy"), ("coredns-5d78c9869d-kvl6b", "coredns")]
        );
        let app = &readings.containers[0];
        assert_eq!(app.series.instance, "5f1c8e2a-7a1b-4c3d-9e8f-0a1b2c3d4e5f");
        let cpu = app.cpu.unwrap();
        assert_eq!(cpu.at.to_string(), "2026-01-05T10:00:02Z");
        assert_eq!(cpu.recent_cores, Some(0.243116807));
        assert_eq!(cpu.cumulative_core_seconds, Some(2913.402751));
        assert_eq!(app.memory, Some(("2026-01-05T10:00:02Z".parse().unwrap(), 268_435_456)));
        assert_eq!(readings.node_memory.unwrap().1, 2_846_736_384);
        assert_eq!(readings.node_cpu.unwrap().recent_cores, Some(0.912417301));
    }

    #[test]
    fn cpu_is_the_counter_rate_between_scrapes() {
        let mut counters = CpuCounters::default();
        let first = parse(FIXTURE.as_bytes()).unwrap().readings();
        let (usage, node) = counters.observe("minion-0", first);
        assert_eq!(usage.len(), 3);
        // First scrape: the kubelet's own average where it has one; coredns
        // just restarted and has no usageNanoCores yet, so CPU is unknown.
        assert_eq!(usage[0].cpu_cores, Some(0.243116807));
        assert_eq!(usage[2].cpu_cores, None);
        assert_eq!(usage[2].memory_working_set, Some(14_680_064));
        assert_eq!(node.cpu_cores, Some(0.912417301));

        // One minute later: app used 30 more core-seconds, coredns 6.
        let mut next: serde_json::Value = serde_json::from_str(FIXTURE).unwrap();
        let bump = |c: &mut serde_json::Value, seconds: u64, time: &str| {
            let cpu = &mut c["cpu"];
            cpu["time"] = time.into();
            let total = cpu["usageCoreNanoSeconds"].as_u64().unwrap() + seconds * 1_000_000_000;
            cpu["usageCoreNanoSeconds"] = total.into();
            c["memory"]["time"] = time.into();
        };
        bump(&mut next["pods"][0]["containers"][0], 30, "2026-01-05T10:01:02Z");
        bump(&mut next["pods"][1]["containers"][0], 6, "2026-01-05T10:01:00Z");
        bump(&mut next["node"], 120, "2026-01-05T10:01:04Z");
        let second = parse(next.to_string().as_bytes()).unwrap().readings();
        let (usage, node) = counters.observe("minion-0", second);
        assert_eq!(usage[0].cpu_cores, Some(0.5));
        assert_eq!(usage[0].at.to_string(), "2026-01-05T10:01:02Z");
        assert_eq!(usage[2].cpu_cores, Some(0.1));
        // envoy's reading did not move in time: no rate, its own average again.
        assert_eq!(usage[1].cpu_cores, Some(0.012450961));
        assert_eq!(node.cpu_cores, Some(2.0));
    }

    #[test]
    fn rejects_what_is_not_a_summary() {
        let err = parse(b"<html>502 Bad Gateway</html>").unwrap_err();
        assert!(err.to_string().starts_with("not a kubelet stats summary"), "{err}");
        assert!(parse(br#"{"pods": []}"#).is_err(), "node is required");
    }
}
