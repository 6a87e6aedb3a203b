//! The status ConfigMap, `kube-system/heatscaler-status`: what the leader
//! made of its last pass, for operators (`kubectl -n kube-system describe
//! configmap heatscaler-status`, as cluster-autoscaler's
//! `cluster-autoscaler-status`) and for tools (`heatscaler explain` starts
//! from the timers recorded here).
//!
//! Two keys: [`HUMAN_KEY`] (text: the groups, every node's scale-down status,
//! the pending pods — the planner's explanation) and [`MACHINE_KEY`] (JSON:
//! [`ClusterStatus`]). Only the leader writes it, at most once per
//! [`MIN_INTERVAL`] when it changed and once per [`REFRESH_INTERVAL`] when it
//! did not (so its `time` says the leader is alive), never two writes at once.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use super::planning::Planned;
use crate::act::{KubeOps, StatusWrite};
use heatscaler_core::model::Timestamp;
use heatscaler_core::planner::Memory;
use heatscaler_core::planner::explain::{GroupExplanation, NodeExplanation, Note};
use heatscaler_core::planner::memory::Backoff;

pub const STATUS_NAMESPACE: &str = "kube-system";
pub const STATUS_CONFIGMAP: &str = "heatscaler-status";
/// Human-readable text (cluster-autoscaler's key name).
pub const HUMAN_KEY: &str = "status";
/// [`ClusterStatus`] as JSON.
pub const MACHINE_KEY: &str = "status.json";

/// A changed status is written at most this often.
pub const MIN_INTERVAL: Duration = Duration::from_secs(10);
/// An unchanged status is written again this often.
pub const REFRESH_INTERVAL: Duration = Duration::from_secs(60);
/// Nodes listed in the JSON; the rest are counted (a ConfigMap holds at most 1 MiB).
const MAX_NODES_LISTED: usize = 1000;
/// Bytes of the text kept; the rest is cut with a note.
const MAX_TEXT_BYTES: usize = 256 * 1024;

/// What [`MACHINE_KEY`] holds.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct ClusterStatus {
    /// When the leader wrote it.
    pub time: Timestamp,
    /// The writing replica (leader-election identity or host name).
    pub leader: String,
    pub nodes: usize,
    pub pods: usize,
    pub unschedulable_pods: usize,
    pub groups: Vec<serde_json::Value>,
    pub notes: Vec<String>,
    /// Every node's scale-down status (at most 1000; see `nodes-omitted`).
    pub node_statuses: Vec<serde_json::Value>,
    pub nodes_omitted: usize,
    pub timers: Timers,
}

/// The node-level timers of the planner's memory: what makes a running
/// daemon's decisions differ from a fresh process's.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct Timers {
    pub unneeded_since: BTreeMap<String, Timestamp>,
    pub backoff: BTreeMap<String, Backoff>,
    pub last_scale_up: BTreeMap<String, Timestamp>,
    pub last_scale_down: Option<Timestamp>,
    pub last_failure: Option<Timestamp>,
}

impl Timers {
    pub fn of(memory: &Memory) -> Self {
        Timers {
            unneeded_since: memory.unneeded_since.clone(),
            backoff: memory.backoff.clone(),
            last_scale_up: memory.last_scale_up.clone(),
            last_scale_down: memory.last_scale_down,
            last_failure: memory.last_failure,
        }
    }

    /// A planner memory holding these timers (the rest starts empty).
    pub fn into_memory(self) -> Memory {
        Memory {
            unneeded_since: self.unneeded_since,
            backoff: self.backoff,
            last_scale_up: self.last_scale_up,
            last_scale_down: self.last_scale_down,
            last_failure: self.last_failure,
            ..Memory::default()
        }
    }
}

/// The ConfigMap's data for one pass.
pub fn render(planned: &Planned, memory: &Memory, leader: &str, time: Timestamp) -> BTreeMap<String, String> {
    let ex = &planned.plan.explanation;
    let status = ClusterStatus {
        time,
        leader: leader.to_string(),
        nodes: planned.nodes,
        pods: planned.pods,
        unschedulable_pods: planned.unschedulable_pods,
        groups: ex.groups.iter().map(to_json::<GroupExplanation>).collect(),
        notes: ex.notes.iter().map(Note::to_string).collect(),
        node_statuses: ex.nodes.iter().take(MAX_NODES_LISTED).map(to_json::<NodeExplanation>).collect(),
        nodes_omitted: ex.nodes.len().saturating_sub(MAX_NODES_LISTED),
        timers: Timers::of(memory),
    };
    let mut text = format!(
        "heatscaler status, written by the leader {leader} at {time}\n\
         cluster: {} node(s), {} pod(s), {} unschedulable\n\n{ex}",
        planned.nodes, planned.pods, planned.unschedulable_pods
    );
    if text.len() > MAX_TEXT_BYTES {
        let mut cut = MAX_TEXT_BYTES;
        while !text.is_char_boundary(cut) {
            cut -= 1;
        }
        text.truncate(cut);
        text.push_str("\n… cut here (the status holds at most 256 KiB of text; `heatscaler explain` prints all)\n");
    }
    BTreeMap::from([
        (HUMAN_KEY.to_string(), text),
        (MACHINE_KEY.to_string(), serde_json::to_string_pretty(&status).expect("the status serialises")),
    ])
}

fn to_json<T: Serialize>(v: &T) -> serde_json::Value {
    serde_json::to_value(v).expect("explanations serialise")
}

/// Decides when the status is written and writes it in the background.
#[derive(Debug, Default)]
pub struct StatusPublisher {
    /// When the last write started and what it said (its `time` aside).
    last: Option<(Instant, String)>,
    in_flight: Arc<AtomicBool>,
    /// The ConfigMap was found missing (warned once until it is back).
    missing: Arc<AtomicBool>,
}

impl StatusPublisher {
    pub fn new() -> Self {
        Self::default()
    }

    /// Whether a status saying `content` is written now (see the module documentation).
    fn due(&self, content: &str, now: Instant) -> bool {
        match &self.last {
            None => true,
            Some((at, last)) => {
                let since = now.saturating_duration_since(*at);
                if last == content { since >= REFRESH_INTERVAL } else { since >= MIN_INTERVAL }
            }
        }
    }

    /// Writes this pass's status if it is due and no write is in flight.
    pub fn publish(&mut self, kube: &KubeOps, planned: &Planned, memory: &Memory, leader: &str) {
        let now = Instant::now();
        // What changed, without the time of writing.
        let content = render(planned, memory, leader, Timestamp::UNIX_EPOCH);
        let content = format!("{:?}", content);
        if !self.due(&content, now) || self.in_flight.swap(true, Ordering::AcqRel) {
            return;
        }
        self.last = Some((now, content));
        let data = render(planned, memory, leader, Timestamp::now());
        let (kube, in_flight, missing) = (kube.clone(), self.in_flight.clone(), self.missing.clone());
        tokio::spawn(async move {
            match kube.write_status(STATUS_NAMESPACE, STATUS_CONFIGMAP, &data).await {
                Ok(StatusWrite::Written) => missing.store(false, Ordering::Relaxed),
                Ok(StatusWrite::Missing) => {
                    if !missing.swap(true, Ordering::Relaxed) {
                        tracing::warn!(
                            "ConfigMap {STATUS_NAMESPACE}/{STATUS_CONFIGMAP} does not exist: no status is published \
                             until it is created (config/kubernetes/rbac.yaml creates it)"
                        );
                    }
                }
                Err(e) => tracing::warn!(error = %e, "cannot write the status ConfigMap; the next pass tries again"),
            }
            in_flight.store(false, Ordering::Release);
        });
    }
}

/// The status a leader published, read back (`heatscaler explain`). `None`
/// when the ConfigMap or its JSON key is absent.
pub async fn read(client: &kube::Client) -> Result<Option<ClusterStatus>, String> {
    let api = kube::Api::<k8s_openapi::api::core::v1::ConfigMap>::namespaced(client.clone(), STATUS_NAMESPACE);
    let cm = api.get_opt(STATUS_CONFIGMAP).await.map_err(|e| e.to_string())?;
    let Some(json) = cm.and_then(|c| c.data).and_then(|mut d| d.remove(MACHINE_KEY)) else { return Ok(None) };
    serde_json::from_str(&json).map(Some).map_err(|e| format!("key {MACHINE_KEY}: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_changed_status_waits_min_interval_and_an_unchanged_one_the_refresh_interval() {
        let t0 = Instant::now();
        let mut p = StatusPublisher::new();
        assert!(p.due("a", t0));
        p.last = Some((t0, "a".into()));
        assert!(!p.due("a", t0 + MIN_INTERVAL));
        assert!(p.due("a", t0 + REFRESH_INTERVAL));
        assert!(!p.due("b", t0 + MIN_INTERVAL - Duration::from_millis(1)));
        assert!(p.due("b", t0 + MIN_INTERVAL));
    }

    #[test]
    fn the_timers_round_trip_through_the_json() {
        let t: Timestamp = "2026-01-01T00:00:00Z".parse().unwrap();
        let mut memory = Memory::default();
        memory.unneeded_since.insert("w-1".into(), t);
        memory.last_scale_up.insert("workers".into(), t);
        memory.backoff.insert("gpu".into(), Backoff { failures: 2, until: t });
        memory.last_failure = Some(t);
        let timers = Timers::of(&memory);
        let back: Timers = serde_json::from_str(&serde_json::to_string(&timers).unwrap()).unwrap();
        let mut expected = memory.clone();
        expected.resize = Default::default();
        assert_eq!(back.into_memory(), expected);
    }
}
