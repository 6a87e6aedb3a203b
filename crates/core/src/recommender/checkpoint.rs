//! Saved history, so that a restarted daemon does not start from nothing.
//!
//! [`CheckpointStatus`] has the JSON shape of VPA's
//! `VerticalPodAutoscalerCheckpoint.status` (camelCase keys, `version: v3`,
//! bucket weights as a map of bucket index to integer weight). Our bucket
//! schemes equal VPA's, so the data can be written to such an object — or to
//! a local file as a list of [`ContainerCheckpoint`] — and read back by either.

use std::collections::BTreeMap;

use jiff::{SignedDuration, Timestamp};
use serde::{Deserialize, Serialize};

use super::aggregate::AggregateState;
use super::histogram::DecayingHistogram;
use crate::model::WorkloadRef;

/// VPA's `SupportedCheckpointVersion` for these bucket schemes.
pub const CHECKPOINT_VERSION: &str = "v3";

/// VPA's `HistogramCheckpoint`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HistogramCheckpoint {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reference_timestamp: Option<Timestamp>,
    /// Bucket index → weight, the heaviest bucket at 10000; empty buckets absent.
    #[serde(default)]
    pub bucket_weights: BTreeMap<u32, u32>,
    #[serde(default)]
    pub total_weight: f64,
}

/// VPA's `VerticalPodAutoscalerCheckpointStatus`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CheckpointStatus {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_update_time: Option<Timestamp>,
    pub version: String,
    #[serde(default)]
    pub cpu_histogram: HistogramCheckpoint,
    #[serde(default)]
    pub memory_histogram: HistogramCheckpoint,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_sample_start: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_sample_start: Option<Timestamp>,
    #[serde(default)]
    pub total_samples_count: u64,
}

/// Which workload container a checkpoint belongs to.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CheckpointKey {
    pub kind: String,
    pub namespace: String,
    pub name: String,
    pub container_name: String,
}

impl CheckpointKey {
    pub fn new(workload: &WorkloadRef, container: &str) -> Self {
        Self {
            kind: workload.kind.to_string(),
            namespace: workload.namespace.to_string(),
            name: workload.name.to_string(),
            container_name: container.to_string(),
        }
    }

    pub fn workload(&self) -> WorkloadRef {
        WorkloadRef {
            kind: self.kind.as_str().into(),
            namespace: self.namespace.as_str().into(),
            name: self.name.as_str().into(),
        }
    }
}

/// One saved aggregate: the unit a file store keeps a list of, and what one
/// `VerticalPodAutoscalerCheckpoint` object holds.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ContainerCheckpoint {
    #[serde(flatten)]
    pub key: CheckpointKey,
    pub status: CheckpointStatus,
}

#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum CheckpointError {
    #[error("checkpoint for {key}: version `{version}` is not supported (expected `{CHECKPOINT_VERSION}`)")]
    UnsupportedVersion { key: String, version: String },
    #[error("checkpoint for {key}: {histogram} histogram: {problem}")]
    Histogram { key: String, histogram: &'static str, problem: String },
}

/// `h` at a reference moved up to `now` (`DecayingHistogram::rebased`): the
/// weights a reader with another half-life can add its own samples to.
fn histogram_checkpoint(h: &DecayingHistogram, now: Timestamp) -> HistogramCheckpoint {
    let h = h.rebased(now);
    HistogramCheckpoint {
        reference_timestamp: h.reference(),
        bucket_weights: h.histogram().checkpoint_weights().into_iter().collect(),
        total_weight: h.histogram().total_weight(),
    }
}

impl AggregateState {
    pub fn to_checkpoint(&self, now: Timestamp) -> CheckpointStatus {
        CheckpointStatus {
            last_update_time: Some(now),
            version: CHECKPOINT_VERSION.to_string(),
            cpu_histogram: histogram_checkpoint(&self.cpu, now),
            memory_histogram: histogram_checkpoint(&self.memory_peaks, now),
            first_sample_start: self.first_sample,
            last_sample_start: self.last_sample,
            total_samples_count: self.total_samples,
        }
    }

    /// Rebuilds an aggregate; `created` is when it is restored.
    pub fn from_checkpoint(
        key: &str,
        status: &CheckpointStatus,
        cpu_half_life: SignedDuration,
        memory_half_life: SignedDuration,
        created: Timestamp,
    ) -> Result<Self, CheckpointError> {
        if status.version != CHECKPOINT_VERSION {
            return Err(CheckpointError::UnsupportedVersion { key: key.to_string(), version: status.version.clone() });
        }
        let mut state = AggregateState::new(cpu_half_life, memory_half_life, created);
        let load = |h: &mut DecayingHistogram, c: &HistogramCheckpoint, name: &'static str| {
            let weights: Vec<(u32, u32)> = c.bucket_weights.iter().map(|(&b, &w)| (b, w)).collect();
            h.load_checkpoint(&weights, c.total_weight, c.reference_timestamp)
                .map_err(|problem| CheckpointError::Histogram { key: key.to_string(), histogram: name, problem })
        };
        load(&mut state.cpu, &status.cpu_histogram, "cpu")?;
        load(&mut state.memory_peaks, &status.memory_histogram, "memory")?;
        state.first_sample = status.first_sample_start;
        state.last_sample = status.last_sample_start;
        state.total_samples = status.total_samples_count;
        Ok(state)
    }
}
