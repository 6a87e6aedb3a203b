//! Each workload's usage over its requests, from the kubelet scrapes the
//! daemon already makes, for the placement advisor: latency from a saturated
//! server does not fall by moving its callers (docs/decisions.md).
//!
//! A scrape gives, per workload, Σ usage / Σ requests over its running
//! containers (CPU and memory apart; containers without a request of that
//! resource left out). [`PressureWindow`] keeps those ratios for the mesh's
//! window and reports their 90th percentile: a high percentile, not the
//! peak, so one scrape landing on a GC pause does not make a workload "under
//! pressure", yet a load that holds for a tenth of the window does.

use std::collections::{BTreeMap, HashMap, VecDeque};

use heatscaler_core::model::{Pod, Timestamp, WorkloadRef};
use heatscaler_core::planner::placement::Pressure;
use heatscaler_core::recommender::ContainerUsage;

const PERCENTILE: f64 = 0.9;

#[derive(Debug, Default)]
pub struct PressureWindow {
    by_workload: BTreeMap<WorkloadRef, VecDeque<Reading>>,
}

#[derive(Clone, Copy, Debug)]
struct Reading {
    at: Timestamp,
    cpu: Option<f64>,
    memory: Option<f64>,
}

#[derive(Default)]
struct Sums {
    cpu_used: f64,
    cpu_requested: f64,
    memory_used: f64,
    memory_requested: f64,
}

impl PressureWindow {
    /// Folds one scrape in and forgets readings older than `window`.
    pub fn feed(&mut self, pods: &[Pod], usage: &[ContainerUsage], now: Timestamp, window: std::time::Duration) {
        let by_pod: HashMap<(&str, &str), &Pod> =
            pods.iter().map(|p| ((p.namespace.as_str(), p.name.as_str()), p)).collect();
        let mut sums: BTreeMap<&WorkloadRef, Sums> = BTreeMap::new();
        for u in usage {
            let Some(pod) = by_pod.get(&(u.pod.namespace.as_str(), u.pod.name.as_str())) else { continue };
            let (Some(workload), Some(container)) =
                (&pod.workload, pod.containers.iter().find(|c| c.name == u.container))
            else {
                continue;
            };
            let s = sums.entry(workload).or_default();
            if let Some(cores) = u.cpu_cores
                && container.requests.cpu_milli > 0
            {
                s.cpu_used += cores * 1000.0;
                s.cpu_requested += container.requests.cpu_milli as f64;
            }
            if let Some(bytes) = u.memory_working_set
                && container.requests.memory > 0
            {
                s.memory_used += bytes as f64;
                s.memory_requested += container.requests.memory as f64;
            }
        }
        for (workload, s) in sums {
            let ratio = |used: f64, requested: f64| (requested > 0.0).then(|| used / requested);
            let reading = Reading {
                at: now,
                cpu: ratio(s.cpu_used, s.cpu_requested),
                memory: ratio(s.memory_used, s.memory_requested),
            };
            self.by_workload.entry(workload.clone()).or_default().push_back(reading);
        }
        let window = jiff::SignedDuration::try_from(window).unwrap_or(jiff::SignedDuration::MAX);
        let oldest = now.checked_sub(window).unwrap_or(now);
        self.by_workload.retain(|_, readings| {
            while readings.front().is_some_and(|r| r.at < oldest) {
                readings.pop_front();
            }
            !readings.is_empty()
        });
    }

    /// Every workload read within the window, at its 90th percentile.
    pub fn pressure(&self) -> Vec<Pressure> {
        self.by_workload
            .iter()
            .map(|(workload, readings)| Pressure {
                workload: workload.clone(),
                cpu: percentile(readings.iter().filter_map(|r| r.cpu)),
                memory: percentile(readings.iter().filter_map(|r| r.memory)),
            })
            .collect()
    }
}

/// Nearest-rank percentile; `None` without values.
fn percentile(values: impl Iterator<Item = f64>) -> Option<f64> {
    let mut v: Vec<f64> = values.filter(|x| x.is_finite()).collect();
    if v.is_empty() {
        return None;
    }
    v.sort_by(f64::total_cmp);
    let rank = ((PERCENTILE * v.len() as f64).ceil() as usize).clamp(1, v.len());
    Some(v[rank - 1])
}

#[cfg(test)]
mod tests {
    use heatscaler_core::model::test_support;
    use heatscaler_core::model::{Container, PodKey, Resources};

    use super::*;

    fn pod(name: &str, workload: &str) -> Pod {
        Pod {
            name: name.into(),
            namespace: "shop".into(),
            workload: Some(WorkloadRef { kind: "Deployment".into(), namespace: "shop".into(), name: workload.into() }),
            containers: vec![Container {
                name: "app".into(),
                requests: Resources::new(500, 1 << 30),
                limits: Resources::default(),
                allocated: None,
                oom_kills: 0,
                last_oom: None,
            }],
            ..test_support::pod(name)
        }
    }

    fn used(pod: &str, cores: f64, at: Timestamp) -> ContainerUsage {
        ContainerUsage {
            pod: PodKey { namespace: "shop".into(), name: pod.into() },
            container: "app".into(),
            at,
            cpu_cores: Some(cores),
            memory_working_set: Some(256 << 20),
        }
    }

    #[test]
    fn a_workloads_replicas_are_summed_and_the_window_keeps_a_high_percentile() {
        let pods = [pod("cart-1", "cart"), pod("cart-2", "cart")];
        let t0 = Timestamp::from_second(1_000_000).unwrap();
        let window = std::time::Duration::from_secs(300);
        let mut w = PressureWindow::default();
        // Nine quiet scrapes (20 % of 1 core requested), then one at 95 %.
        for i in 0..9 {
            let at = t0 + jiff::SignedDuration::from_secs(i * 10);
            w.feed(&pods, &[used("cart-1", 0.1, at), used("cart-2", 0.1, at)], at, window);
        }
        let busy = t0 + jiff::SignedDuration::from_secs(90);
        w.feed(&pods, &[used("cart-1", 0.5, busy), used("cart-2", 0.45, busy)], busy, window);
        let p = &w.pressure()[0];
        assert_eq!(p.workload.name, "cart");
        // p90 of ten readings is the ninth: a single busy scrape is not pressure.
        assert!((p.cpu.unwrap() - 0.2).abs() < 1e-9, "{p:?}");
        assert!((p.memory.unwrap() - 0.25).abs() < 1e-9, "{p:?}");
        // Busy for the next scrapes too: now it is.
        for i in 10..12 {
            let at = t0 + jiff::SignedDuration::from_secs(i * 10);
            w.feed(&pods, &[used("cart-1", 0.5, at), used("cart-2", 0.45, at)], at, window);
        }
        assert!((w.pressure()[0].cpu.unwrap() - 0.95).abs() < 1e-9);
        // Readings leave with the window.
        let later = t0 + jiff::SignedDuration::from_secs(1000);
        w.feed(&pods, &[], later, window);
        assert!(w.pressure().is_empty());
    }
}
