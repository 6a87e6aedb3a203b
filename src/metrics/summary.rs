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
