//! The kubelet's cAdvisor endpoint, `GET /api/v1/nodes/<node>/proxy/metrics/cadvisor`:
//! Prometheus text format. Two metrics matter:
//!
//! - `container_cpu_usage_seconds_total` (counter, core-seconds): usage is its
//!   rate between two scrapes, see [`super::counters`];
//! - `container_memory_working_set_bytes` (gauge).
//!
//! Series carry `namespace`, `pod`, `container` and the cgroup path `id`.
//! The pod-level cgroup (`container=""`) and the sandbox (`container="POD"`)
//! are not containers; the root cgroup (`id="/"`) is the whole node.
//! Kubelets before 1.16 named the labels `pod_name`/`container_name`; both are read.

use std::collections::HashMap;

use jiff::Timestamp;

use super::counters::SeriesKey;
use super::{ContainerReading, CpuReading, NodeReadings};

pub const CPU_METRIC: &str = "container_cpu_usage_seconds_total";
pub const MEMORY_METRIC: &str = "container_memory_working_set_bytes";

#[derive(Debug, thiserror::Error)]
pub enum CadvisorError {
    #[error("cAdvisor metrics are not UTF-8")]
    NotUtf8,
    #[error("cAdvisor metrics could not be read: {0}")]
    Parse(String),
}

#[derive(Default)]
struct Series {
    namespace: String,
    pod: String,
    container: String,
    cpu: Option<(Timestamp, f64)>,
    memory: Option<(Timestamp, f64)>,
}

impl Series {
    fn latest(&self) -> Option<Timestamp> {
        self.cpu.map(|(t, _)| t).max(self.memory.map(|(t, _)| t))
    }
}

/// Parses one scrape. Lines without a timestamp are taken as measured at `scraped_at`.
pub fn parse(body: &[u8], scraped_at: Timestamp) -> Result<NodeReadings, CadvisorError> {
    let text = std::str::from_utf8(body).map_err(|_| CadvisorError::NotUtf8)?;
    // Only our two metrics go to the parser: a cAdvisor page is mostly other
    // metrics (fs, network, tasks), and the filter keeps parsing cheap.
    let lines = text.lines().filter(|l| is_wanted(l)).map(|l| Ok::<_, std::io::Error>(l.to_string()));
    let scrape = prometheus_parse::Scrape::parse_at(lines, Default::default())
        .map_err(|e| CadvisorError::Parse(e.to_string()))?;

    let mut by_id: HashMap<String, Series> = HashMap::new();
    for sample in &scrape.samples {
        let value = match sample.value {
            prometheus_parse::Value::Counter(v)
            | prometheus_parse::Value::Gauge(v)
            | prometheus_parse::Value::Untyped(v) => v,
            _ => continue,
        };
        if !value.is_finite() || value < 0.0 {
            continue;
        }
        // The parser stamps lines without a timestamp with the epoch we passed.
        let at = match sample.timestamp.timestamp_millis() {
            0 => scraped_at,
            ms => Timestamp::from_millisecond(ms).unwrap_or(scraped_at),
        };
        let labels = &sample.labels;
        let label = |new: &str, old: &str| labels.get(new).or_else(|| labels.get(old)).unwrap_or("").to_string();
        let id = labels.get("id").unwrap_or("").to_string();
        let entry = by_id.entry(id).or_insert_with(|| Series {
            namespace: label("namespace", "namespace"),
            pod: label("pod", "pod_name"),
            container: label("container", "container_name"),
            ..Series::default()
        });
        let slot = if sample.metric == CPU_METRIC { &mut entry.cpu } else { &mut entry.memory };
        if slot.is_none_or(|(t, _)| at > t) {
            *slot = Some((at, value));
        }
    }

    let mut readings = NodeReadings::default();
    // A restarted container briefly has two cgroups: keep the freshest.
    let mut newest: HashMap<(String, String, String), (String, Series)> = HashMap::new();
    for (id, series) in by_id {
        if id == "/" {
            readings.node_cpu = series.cpu.map(|(at, v)| counter_reading(at, v));
            readings.node_memory = series.memory.map(|(at, v)| (at, v as i64));
            continue;
        }
        if series.container.is_empty() || series.container == "POD" || series.pod.is_empty() {
            continue;
        }
        let key = (series.namespace.clone(), series.pod.clone(), series.container.clone());
        match newest.get(&key) {
            Some((_, kept)) if kept.latest() >= series.latest() => {}
            _ => {
                newest.insert(key, (id, series));
            }
        }
    }
    for (_, (id, s)) in newest {
        readings.containers.push(ContainerReading {
            series: SeriesKey { namespace: s.namespace, pod: s.pod, container: s.container, instance: id },
            cpu: s.cpu.map(|(at, v)| counter_reading(at, v)),
            memory: s.memory.map(|(at, v)| (at, v as i64)),
        });
    }
    Ok(readings)
}

fn counter_reading(at: Timestamp, core_seconds: f64) -> CpuReading {
    // The cgroup path changes when a container restarts, and so does the
    // series key: no start time is needed to detect a new counter.
    CpuReading { at, cumulative_core_seconds: Some(core_seconds), recent_cores: None, started: None }
}

fn is_wanted(line: &str) -> bool {
    let line = line.trim_start();
    let metric = line.strip_prefix("# TYPE ").unwrap_or(line);
    [CPU_METRIC, MEMORY_METRIC]
        .iter()
        .any(|m| metric.strip_prefix(m).is_some_and(|rest| rest.starts_with(['{', ' ', '\t'])))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::usage::counters::CpuCounters;

    /// A kubelet `/metrics/cadvisor` page (containerd, systemd cgroup driver).
    const FIXTURE: &str = include_str!("../../../../tests/fixtures/kubelet/cadvisor.txt");

    fn scraped_at() -> Timestamp {
        "2026-01-05T10:00:10Z".parse().unwrap()
    }

    #[test]
    fn parses_containers_and_the_node() {
        let readings = parse(FIXTURE.as_bytes(), scraped_at()).unwrap();
        let mut names: Vec<_> =
            readings.containers.iter().map(|c| (c.series.pod.as_str(), c.series.container.as_str())).collect();
        names.sort();
        // Pod cgroups, the pause sandbox and system slices are not containers.
        assert_eq!(
            names,
            [("coredns-5d78c9869d-kvl6b", "coredns"), ("web-7d4b9c6f5-x2kqp", "app"), ("web-7d4b9c6f5-x2kqp", "envoy")]
        );
        let app = readings.containers.iter().find(|c| c.series.container == "app").unwrap();
        let cpu = app.cpu.unwrap();
        assert_eq!(cpu.cumulative_core_seconds, Some(2913.402751));
        assert_eq!(cpu.at.to_string(), "2026-01-05T10:00:02Z");
        assert_eq!(app.memory.unwrap().1, 268_435_456);
        // The restarted coredns: the new cgroup, not the stale one.
        let coredns = readings.containers.iter().find(|c| c.series.container == "coredns").unwrap();
        assert!(coredns.series.instance.ends_with("7e57ab1e.scope"), "{}", coredns.series.instance);
        assert_eq!(coredns.memory.unwrap().1, 14_680_064);
        assert_eq!(readings.node_cpu.unwrap().cumulative_core_seconds, Some(79334.861129));
        assert_eq!(readings.node_memory.unwrap().1, 2_846_736_384);
    }

    #[test]
    fn cpu_usage_is_the_counter_rate() {
        let mut counters = CpuCounters::default();
        let (usage, _) = counters.observe("minion-0", parse(FIXTURE.as_bytes(), scraped_at()).unwrap());
        assert!(usage.iter().all(|u| u.cpu_cores.is_none()), "a counter alone has no rate");
        assert!(usage.iter().all(|u| u.memory_working_set.is_some()));

        let next = FIXTURE.replace(
            r#"pod="web-7d4b9c6f5-x2kqp"} 2913.402751 1767607202000"#,
            r#"pod="web-7d4b9c6f5-x2kqp"} 2958.402751 1767607292000"#,
        );
        assert_ne!(next, FIXTURE);
        let (usage, _) = counters.observe("minion-0", parse(next.as_bytes(), scraped_at()).unwrap());
        let app = usage.iter().find(|u| u.container == "app").unwrap();
        assert_eq!(app.cpu_cores, Some(0.5), "45 core-seconds in 90 s");
    }

    #[test]
    fn lines_without_timestamp_and_old_label_names() {
        let text = "# TYPE container_memory_working_set_bytes gauge\n\
            container_memory_working_set_bytes{container_name=\"app\",id=\"/kubepods/pod1/abc\",namespace=\"shop\",pod_name=\"web-1\"} 1.048576e+07\n";
        let readings = parse(text.as_bytes(), scraped_at()).unwrap();
        assert_eq!(readings.containers.len(), 1);
        let c = &readings.containers[0];
        assert_eq!((c.series.pod.as_str(), c.series.container.as_str()), ("web-1", "app"));
        assert_eq!(c.memory, Some((scraped_at(), 10_485_760)));
        assert!(matches!(parse(&[0xff, 0xfe], scraped_at()), Err(CadvisorError::NotUtf8)));
    }
}
