//! The placement advisor's policy (`placement-advisor`): when traffic between
//! two workloads is worth co-locating them, when latency points to CPU or
//! memory pressure instead, and how fast advice may come and go.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::{Duration, Fraction, Problem};

/// What the advisor may do.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum AdvisorMode {
    /// Nothing is advised; the advisor's memory is dropped.
    #[default]
    Off,
    /// Advice is reported (explain, Events) and nothing is changed.
    Recommend,
    /// Advice is also applied (a rolling change of the workload's template,
    /// or new requests through the pod-level updater).
    Apply,
}

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields, default)]
pub struct PlacementAdvisorPolicy {
    pub mode: AdvisorMode,
    /// Workloads in these namespaces only (empty: every namespace).
    pub namespaces: Vec<String>,
    /// Workloads whose pods carry all these labels only (empty: all).
    pub pod_labels: BTreeMap<String, String>,
    /// Calls per second below which a pair is not looked at.
    pub min_requests_per_second: f64,
    /// A pair is worth co-locating when its cross-node calls cost at least
    /// this much tail latency, in milliseconds per second: requests/s × the
    /// share of calls crossing nodes × (cross-node p99 − same-node p99).
    pub min_latency_cost: f64,
    /// A pair is also worth co-locating, whatever `min-latency-cost`, when it
    /// is among the costliest pairs that together make up this share of the
    /// graph's potential cross-node cost (every observed pair's requests/s ×
    /// (cross-node p99 − same-node p99)), and some of its calls still cross.
    /// A threshold relative to the graph: what a pair adds to the end-to-end
    /// p99 is its share of the requests' latency, not its absolute ms/s, so a
    /// quiet application's main pairs count as much as a busy one's, and the
    /// set does not change as the load rises and falls (the shares do not).
    /// 0 (the default): only `min-latency-cost` — measured on the simulated
    /// call graphs, 0.8 churned more pods for a mixed result
    /// (docs/co-scheduling.md), so it is the operator's to turn on.
    pub cost_share: Fraction,
    /// The saving per call assumed when no same-node calls were observed.
    pub assumed_same_node_saving_ms: f64,
    /// Evidence must hold this long, continuously, before advice is given.
    pub raise_after: Duration,
    /// Standing co-location advice is withdrawn only when its pair's cost,
    /// were it separated again, stays below this share of `min-latency-cost`
    /// for `release-after` (hysteresis: it does not flap at the threshold).
    pub release_fraction: Fraction,
    pub release_after: Duration,
    /// At most this many new pieces of advice per `window` (cluster-wide).
    pub max_new_advice: u32,
    pub window: Duration,
    /// Least time between two pieces of advice about the same workload.
    pub workload_cooldown: Duration,
    /// Weight of the preferred pod affinity advised (1–100).
    pub affinity_weight: i32,
    /// Usage at or above this share of the request is pressure.
    pub pressure_threshold: Fraction,
    /// A resource increase aims the usage at this share of the new request…
    pub target_utilization: Fraction,
    /// …but never multiplies a request by more than this at once.
    pub max_increase: f64,
}

impl Default for PlacementAdvisorPolicy {
    fn default() -> Self {
        Self {
            mode: AdvisorMode::Off,
            namespaces: Vec::new(),
            pod_labels: BTreeMap::new(),
            min_requests_per_second: 10.0,
            min_latency_cost: 500.0,
            cost_share: Fraction(0.0),
            assumed_same_node_saving_ms: 1.0,
            raise_after: Duration::from_secs(10 * 60),
            release_fraction: Fraction(0.5),
            release_after: Duration::from_secs(30 * 60),
            max_new_advice: 2,
            window: Duration::from_secs(3600),
            workload_cooldown: Duration::from_secs(3600),
            affinity_weight: 50,
            pressure_threshold: Fraction(0.9),
            target_utilization: Fraction(0.7),
            max_increase: 2.0,
        }
    }
}

impl PlacementAdvisorPolicy {
    /// What is wrong with the section, at `placement-advisor.<key>`.
    pub fn problems(&self) -> Vec<Problem> {
        let mut out = Vec::new();
        let at = |key: &str| format!("placement-advisor.{key}");
        if !(1..=100).contains(&self.affinity_weight) {
            out.push(Problem::new(at("affinity-weight"), format!("{} is not within 1–100", self.affinity_weight)));
        }
        for (key, value) in [
            ("min-requests-per-second", self.min_requests_per_second),
            ("min-latency-cost", self.min_latency_cost),
            ("assumed-same-node-saving-ms", self.assumed_same_node_saving_ms),
        ] {
            if !value.is_finite() || value < 0.0 {
                out.push(Problem::new(at(key), format!("{value} must be a number ≥ 0")));
            }
        }
        if !self.max_increase.is_finite() || self.max_increase <= 1.0 {
            out.push(Problem::new(at("max-increase"), format!("{} must be above 1", self.max_increase)));
        }
        if self.target_utilization.0 <= 0.0 || self.target_utilization.0 > self.pressure_threshold.0 {
            out.push(Problem::new(
                at("target-utilization"),
                format!(
                    "{} must be above 0 and at most pressure-threshold {}",
                    self.target_utilization.0, self.pressure_threshold.0
                ),
            ));
        }
        if self.max_new_advice == 0 && self.mode != AdvisorMode::Off {
            out.push(Problem::new(at("max-new-advice"), "must be at least 1 unless mode is off"));
        }
        if self.window.get().is_zero() {
            out.push(Problem::new(at("window"), "must be longer than zero"));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_section_reads_kebab_case_and_names_bad_keys() {
        let p: PlacementAdvisorPolicy =
            crate::yaml::from_str("mode: recommend\nnamespaces: [shop]\nraise-after: 5m\nmax-increase: 1.5\n").unwrap();
        assert_eq!(p.mode, AdvisorMode::Recommend);
        assert_eq!(p.raise_after, Duration::from_secs(300));
        assert!(p.problems().is_empty());
        let bad = PlacementAdvisorPolicy { affinity_weight: 0, max_increase: 1.0, ..PlacementAdvisorPolicy::default() };
        let paths: Vec<String> = bad.problems().into_iter().map(|p| p.path).collect();
        assert_eq!(paths, ["placement-advisor.affinity-weight", "placement-advisor.max-increase"]);
        assert!(crate::yaml::from_str::<PlacementAdvisorPolicy>("mode: always\n").is_err());
        assert!(crate::yaml::from_str::<PlacementAdvisorPolicy>("min-cost: 3\n").is_err());
    }
}
