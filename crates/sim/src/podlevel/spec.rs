//! The `pod-level:` section of a scenario: a node pool, workloads with usage
//! shapes, and heatscaler's pod-resize settings (the baseline always uses
//! VPA's defaults).
//!
//! ```yaml
//! pod-level:
//!   metrics-interval: 1m          # usage samples, recommender and updater passes
//!   restart: 30s                  # an evicted or OOM-killed container is back after this
//!   nodes: {count: 3, allocatable: {cpu: "4", memory: 8Gi}, reserved: {cpu: "2", memory: 4Gi}}
//!   heatscaler:                   # as pod-resize in the configuration
//!     update-mode: InPlaceOrRecreate
//!     recommender: {}             # defaults: VPA's
//!     updater: {}
//!   workloads:
//!     - name: step
//!       replicas: 3
//!       requests: {cpu: 500m, memory: 512Mi}
//!       limits: {memory: 1Gi}
//!       cpu: {step: {before: 200m, after: 1200m, at: 2d}}
//!       memory: 400Mi
//!       noise: 0.1
//! ```

use std::collections::BTreeMap;

use serde::Deserialize;

use heatscaler_core::model::UpdateMode;
use heatscaler_core::policy::{Duration, Quantity, RecommenderSettings, UpdaterSettings};

use crate::signals::Signal;

#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct PodLevelSpec {
    #[serde(default = "default_interval")]
    pub metrics_interval: Duration,
    #[serde(default = "default_restart")]
    pub restart: Duration,
    pub nodes: NodePool,
    #[serde(default)]
    pub heatscaler: HeatscalerSide,
    pub workloads: Vec<PodWorkload>,
}

fn default_interval() -> Duration {
    Duration::from_secs(60)
}

fn default_restart() -> Duration {
    Duration::from_secs(30)
}

/// Identical nodes; `reserved` is what other tenants request on each.
#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct NodePool {
    pub count: u32,
    pub allocatable: BTreeMap<String, Quantity>,
    #[serde(default)]
    pub reserved: BTreeMap<String, Quantity>,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct HeatscalerSide {
    #[serde(default = "default_mode", with = "mode")]
    pub update_mode: UpdateMode,
    #[serde(default)]
    pub recommender: RecommenderSettings,
    #[serde(default)]
    pub updater: UpdaterSettings,
}

impl Default for HeatscalerSide {
    fn default() -> Self {
        Self {
            update_mode: default_mode(),
            recommender: RecommenderSettings::default(),
            updater: UpdaterSettings::default(),
        }
    }
}

pub(crate) fn default_mode() -> UpdateMode {
    UpdateMode::InPlaceOrRecreate
}

pub(crate) mod mode {
    use serde::{Deserialize, Deserializer, de};

    use heatscaler_core::model::UpdateMode;

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<UpdateMode, D::Error> {
        let text = String::deserialize(d)?;
        [UpdateMode::Off, UpdateMode::Initial, UpdateMode::Recreate, UpdateMode::InPlaceOrRecreate, UpdateMode::InPlace]
            .into_iter()
            .find(|m| m.as_str() == text)
            .ok_or_else(|| {
                de::Error::custom(format!("`{text}` is not Off, Initial, Recreate, InPlaceOrRecreate or InPlace"))
            })
    }
}

/// A Deployment-like workload whose every replica follows the usage shapes.
#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct PodWorkload {
    pub name: String,
    pub replicas: u32,
    /// The pod template's requests and limits (one container, `app`).
    pub requests: BTreeMap<String, Quantity>,
    #[serde(default)]
    pub limits: BTreeMap<String, Quantity>,
    /// Cores.
    pub cpu: Signal,
    /// Bytes (working set).
    pub memory: Signal,
    /// Standard deviation of the multiplicative per-sample noise.
    #[serde(default = "default_noise")]
    pub noise: f64,
    /// Simulate this workload for this long (at most the scenario's duration).
    #[serde(default)]
    pub duration: Option<Duration>,
    /// The VPA object's `updatePolicy.minReplicas` (both policies).
    #[serde(default)]
    pub min_replicas: Option<u32>,
    /// The VPA object's `controlledResources` for every container (default: CPU and memory).
    #[serde(default)]
    pub controlled_resources: Option<Vec<String>>,
}

fn default_noise() -> f64 {
    0.1
}

impl PodLevelSpec {
    /// Problems as `(key path suffix, problem)`.
    pub fn problems(&self) -> Vec<(String, String)> {
        let mut out = Vec::new();
        if self.metrics_interval.get().is_zero() {
            out.push((".metrics-interval".into(), "must be longer than zero".into()));
        }
        if self.nodes.count == 0 {
            out.push((".nodes.count".into(), "must be at least 1".into()));
        }
        for key in ["cpu", "memory"] {
            if self.nodes.allocatable.get(key).is_none_or(|q| q.as_milli() <= 0) {
                out.push((".nodes.allocatable".into(), format!("needs a positive `{key}`")));
            }
        }
        if self.workloads.is_empty() {
            out.push((".workloads".into(), "needs at least one workload".into()));
        }
        let mut names = std::collections::BTreeSet::new();
        for (i, w) in self.workloads.iter().enumerate() {
            let p = format!(".workloads[{i}]");
            if !names.insert(&w.name) {
                out.push((format!("{p}.name"), format!("`{}` is used twice", w.name)));
            }
            if w.replicas == 0 {
                out.push((format!("{p}.replicas"), "must be at least 1".into()));
            }
            if w.min_replicas.is_some_and(|n| n == 0 || i32::try_from(n).is_err()) {
                // VPA's `minReplicas` is a positive int32.
                out.push((format!("{p}.min-replicas"), "must be at least 1".into()));
            }
            for key in ["cpu", "memory"] {
                if w.requests.get(key).is_none_or(|q| q.as_milli() <= 0) {
                    out.push((format!("{p}.requests"), format!("needs a positive `{key}`")));
                }
            }
            if !(0.0..1.0).contains(&w.noise) {
                out.push((format!("{p}.noise"), format!("{} is not in [0, 1)", w.noise)));
            }
            for (suffix, problem) in w.cpu.problems() {
                out.push((format!("{p}.cpu{suffix}"), problem));
            }
            for (suffix, problem) in w.memory.problems() {
                out.push((format!("{p}.memory{suffix}"), problem));
            }
        }
        out
    }
}

/// Which updater drives the pods.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Side {
    Heatscaler,
    /// VPA's defaults, re-implemented (`peers::vpa_defaults`).
    VpaDefaults,
}

impl Side {
    pub fn label(self) -> &'static str {
        match self {
            Side::Heatscaler => "heatscaler",
            Side::VpaDefaults => "vpa-defaults*",
        }
    }
}
