//! Evictions of a draining node's pods, through the eviction API (which is
//! where PodDisruptionBudgets are enforced), a few at a time.

use std::collections::HashMap;
use std::time::Duration;

use futures::StreamExt;

use super::error::ActuatorError;
use super::kube::Eviction;
use super::{Actuator, Outcome, removal};
use crate::alerts::{ObjectRef, ScalingEvent};
use crate::telemetry::EvictionPurpose;
use heatscaler_core::planner::action::EvictPods;
use heatscaler_core::planner::protocol::{Phase, RemovalState};

/// Evictions in flight at once per node.
const CONCURRENCY: usize = 8;
/// A pod's own grace period when it sets none (the API server's default).
const DEFAULT_GRACE: u64 = 30;

#[derive(Default)]
struct Tally {
    evicted: usize,
    blocked: usize,
    gone: usize,
    terminating: usize,
    errors: Vec<String>,
}

impl Actuator {
    pub(super) async fn evict_pods(&self, a: &EvictPods) -> Result<Outcome, ActuatorError> {
        let Some(node) = self.kube.node(&a.node).await? else {
            return Ok(Outcome::Skipped("the node is gone".into()));
        };
        match removal::state(&node) {
            RemovalState::Active(r) if r.phase == Phase::Draining => {}
            other => {
                return Ok(Outcome::Skipped(format!("expected phase draining, found {}", removal::describe(&other))));
            }
        }
        // One list gives every pod's current uid, grace period and whether it is already going.
        let listed = self.kube.pods_on(&a.node).await?;
        let current: HashMap<(&str, &str), &k8s_openapi::api::core::v1::Pod> = listed
            .iter()
            .map(|p| {
                let m = &p.metadata;
                ((m.namespace.as_deref().unwrap_or_default(), m.name.as_deref().unwrap_or_default()), p)
            })
            .collect();
        let node_ref = ObjectRef::node(&a.node);
        let mut tally = Tally::default();
        let mut jobs = Vec::new();
        for e in &a.pods {
            let Some(pod) = current.get(&(e.pod.namespace.as_str(), e.pod.name.as_str())) else {
                tally.gone += 1;
                continue;
            };
            if pod.metadata.uid.as_deref() != Some(e.uid.as_str()) {
                tally.gone += 1;
                continue;
            }
            if pod.metadata.deletion_timestamp.is_some() {
                tally.terminating += 1;
                continue;
            }
            let own = pod.spec.as_ref().and_then(|s| s.termination_grace_period_seconds).map(|s| s.max(0) as u64);
            let grace = Duration::from_secs(own.unwrap_or(DEFAULT_GRACE)).min(a.max_grace);
            jobs.push((e.clone(), grace));
        }
        let results: Vec<_> = futures::stream::iter(jobs)
            .map(|(e, grace)| {
                let kube = self.kube.clone();
                async move {
                    let result = kube.evict(&e.pod.namespace, &e.pod.name, &e.uid, grace).await;
                    (e, result)
                }
            })
            .buffer_unordered(CONCURRENCY)
            .collect()
            .await;
        for (e, result) in results {
            let pod_ref = ObjectRef::pod(&e.pod.namespace, &e.pod.name).with_uid(&e.uid);
            match result {
                Ok(Eviction::Evicted) => {
                    tally.evicted += 1;
                    self.alerts.dispatch(ScalingEvent::pod_evicted(pod_ref, node_ref.clone()));
                    self.metrics.record_eviction(EvictionPurpose::Drain);
                }
                Ok(Eviction::Blocked { pdb, message }) => {
                    tally.blocked += 1;
                    let event = ScalingEvent::eviction_blocked(pod_ref, pdb.as_deref().unwrap_or("(not named)"));
                    self.alerts.dispatch(event.with_field("message", message));
                    self.metrics.record_pdb_rejection(EvictionPurpose::Drain);
                }
                Ok(Eviction::Gone | Eviction::Replaced) => tally.gone += 1,
                Err(err) => tally.errors.push(err.to_string()),
            }
        }
        let summary = format!(
            "node {}: {} evicted, {} refused by a PodDisruptionBudget (retried next pass), {} already gone, {} terminating",
            a.node, tally.evicted, tally.blocked, tally.gone, tally.terminating
        );
        if tally.errors.is_empty() {
            Ok(Outcome::Done(summary))
        } else {
            Err(ActuatorError::Evictions(format!(
                "{summary}; {} failed: {}",
                tally.errors.len(),
                tally.errors.join("; ")
            )))
        }
    }
}
