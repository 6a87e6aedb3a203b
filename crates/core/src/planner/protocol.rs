//! The node annotation protocol: how a removal in progress is recorded on the
//! Node object itself, so that a restarted (or newly elected) daemon continues
//! or rolls back from what it reads on the node, and never from its memory.
//!
//! A node being removed carries the [`REMOVAL_TAINT`] (`NoSchedule`, value: the
//! start in Unix seconds, as cluster-autoscaler's `ToBeDeletedByClusterAutoscaler`),
//! is cordoned, and carries these annotations, all written in one patch:
//!
//! | annotation | value |
//! |---|---|
//! | [`PHASE`] | `draining` → `drained` → `removing` |
//! | [`KIND`] | `empty` (nothing to evict at the start) or `drain` |
//! | [`STARTED`] | RFC 3339 time the removal started |
//! | [`DRAINED`] | RFC 3339 time the node was found drained (phase ≥ drained) |
//! | [`REQUESTED`] | RFC 3339 time Heat was asked to remove the member (phase removing) |
//! | [`GROUP`] | node group name |
//! | [`MEMBER`] | Heat member the node maps to (what the removal names) |
//! | [`CORDONED_BEFORE`] | `true` if the node was already cordoned (a rollback leaves it so) |
//!
//! The same patch puts cluster-autoscaler's signs of a departing node on it
//! ([`DepartureMarks`]): its [`CA_REMOVAL_TAINT`] and the
//! [`EXCLUDE_FROM_LB_LABEL`], which kube-proxy's health check and the cloud
//! load-balancer controllers (Octavia through the OpenStack cloud controller
//! manager) act on, so a draining minion stops receiving new connections.
//!
//! `draining` and `drained` can be rolled back (taints, marks, annotations and
//! our cordon removed); `removing` never is — Heat may already be deleting the server.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::model::{Node, Taint, TaintEffect, Timestamp};

/// `NoSchedule` taint on a node heatscaler is removing.
pub const REMOVAL_TAINT: &str = "heatscaler.io/to-be-removed";
pub const PHASE: &str = "heatscaler.io/removal-phase";
pub const KIND: &str = "heatscaler.io/removal-kind";
pub const STARTED: &str = "heatscaler.io/removal-started";
pub const DRAINED: &str = "heatscaler.io/removal-drained";
pub const REQUESTED: &str = "heatscaler.io/removal-requested";
pub const GROUP: &str = "heatscaler.io/removal-group";
pub const MEMBER: &str = "heatscaler.io/removal-member";
pub const CORDONED_BEFORE: &str = "heatscaler.io/removal-cordoned-before";

/// Every annotation of the protocol; a rollback removes all of them.
pub const REMOVAL_ANNOTATIONS: [&str; 8] = [PHASE, KIND, STARTED, DRAINED, REQUESTED, GROUP, MEMBER, CORDONED_BEFORE];

/// cluster-autoscaler's taint on a node it is removing (`NoSchedule`, value:
/// the start in Unix seconds). kube-proxy fails its health check on such a
/// node and the service controller drops it from load balancers.
pub const CA_REMOVAL_TAINT: &str = "ToBeDeletedByClusterAutoscaler";

/// Well-known node label: the service controller keeps a node carrying it out
/// of external load balancers' pools.
pub const EXCLUDE_FROM_LB_LABEL: &str = "node.kubernetes.io/exclude-from-external-load-balancers";

/// The value heatscaler gives [`EXCLUDE_FROM_LB_LABEL`]: how a rollback
/// tells the label it set from one an operator set (that one is kept).
pub const EXCLUDE_FROM_LB_VALUE: &str = "heatscaler-removal";

/// cluster-autoscaler's node annotation: `"true"` keeps the node out of scale-down.
pub const SCALE_DOWN_DISABLED: &str = "cluster-autoscaler.kubernetes.io/scale-down-disabled";

/// Node label naming the node group a minion belongs to. Heat templates set it
/// (see `config/heatscaler.example.yaml`); it lets a node whose Heat member
/// vanished still be recognised as a group node and reported.
pub const NODE_GROUP_LABEL: &str = "heatscaler.io/node-group";

/// The taint the scheduler puts on cordoned nodes; pods tolerating it
/// (DaemonSets) still schedule there.
pub const UNSCHEDULABLE_TAINT: &str = "node.kubernetes.io/unschedulable";

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Phase {
    Draining,
    Drained,
    Removing,
}

impl Phase {
    pub fn as_str(self) -> &'static str {
        match self {
            Phase::Draining => "draining",
            Phase::Drained => "drained",
            Phase::Removing => "removing",
        }
    }
    fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "draining" => Phase::Draining,
            "drained" => Phase::Drained,
            "removing" => Phase::Removing,
            _ => return None,
        })
    }
}

impl std::fmt::Display for Phase {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum RemovalKind {
    /// Nothing but DaemonSet and mirror pods at the start: no eviction needed.
    Empty,
    /// Pods must be evicted; counts against `max-drain-parallelism`.
    Drain,
}

impl RemovalKind {
    pub fn as_str(self) -> &'static str {
        match self {
            RemovalKind::Empty => "empty",
            RemovalKind::Drain => "drain",
        }
    }
}

/// A removal in progress, as recorded on its node.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct RemovalRecord {
    pub phase: Phase,
    pub kind: RemovalKind,
    pub started: Timestamp,
    pub drained: Option<Timestamp>,
    pub requested: Option<Timestamp>,
    pub group: String,
    pub member: String,
    pub cordoned_before: bool,
}

/// What a node says about its removal.
#[derive(Clone, Debug, PartialEq)]
pub enum RemovalState {
    /// No taint, no protocol annotation.
    None,
    Active(RemovalRecord),
    /// Taint and annotations disagree or cannot be read: left by a dead
    /// operation or edited by hand. Rolled back (never continued).
    Inconsistent {
        problem: String,
        /// What the node recorded, when it could be read.
        cordoned_before: Option<bool>,
    },
}

impl RemovalState {
    pub fn record(&self) -> Option<&RemovalRecord> {
        match self {
            RemovalState::Active(r) => Some(r),
            _ => None,
        }
    }
    pub fn is_none(&self) -> bool {
        matches!(self, RemovalState::None)
    }
}

/// The taint that marks a node heatscaler is removing.
pub fn removal_taint(started: Timestamp) -> Taint {
    Taint { key: REMOVAL_TAINT.into(), value: Some(started.as_second().to_string()), effect: TaintEffect::NoSchedule }
}

/// cluster-autoscaler's taint as it writes it, for a removal started at `started`.
pub fn ca_removal_taint(started: Timestamp) -> Taint {
    Taint {
        key: CA_REMOVAL_TAINT.into(),
        value: Some(started.as_second().to_string()),
        effect: TaintEffect::NoSchedule,
    }
}

/// The signs of a departing node that other controllers read (see the module
/// documentation), put on together and taken off together.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum DepartureMarks {
    /// Add [`CA_REMOVAL_TAINT`] (value: this start) and
    /// [`EXCLUDE_FROM_LB_LABEL`] (unless the node already has the label).
    Set(Timestamp),
    /// Remove [`CA_REMOVAL_TAINT`], and [`EXCLUDE_FROM_LB_LABEL`] if it has
    /// heatscaler's value (an operator's own label stays).
    Clear,
}

impl DepartureMarks {
    /// The label change this makes on a node whose labels are `labels`:
    /// `Some(Some(v))` set, `Some(None)` remove, `None` leave as it is.
    pub fn label_change(self, labels: &BTreeMap<String, String>) -> Option<Option<&'static str>> {
        let current = labels.get(EXCLUDE_FROM_LB_LABEL).map(String::as_str);
        match (self, current) {
            (DepartureMarks::Set(_), None) => Some(Some(EXCLUDE_FROM_LB_VALUE)),
            (DepartureMarks::Clear, Some(EXCLUDE_FROM_LB_VALUE)) => Some(None),
            _ => None,
        }
    }

    /// The taint list `taints` becomes.
    pub fn apply_to_taints(self, taints: &mut Vec<Taint>) {
        taints.retain(|t| t.key != CA_REMOVAL_TAINT);
        if let DepartureMarks::Set(started) = self {
            taints.push(ca_removal_taint(started));
        }
    }
}

/// Reads a node's removal state from its taint and annotations alone.
pub fn read(node: &Node) -> RemovalState {
    let tainted = node.taints.iter().any(|t| t.key == REMOVAL_TAINT);
    let annotated = REMOVAL_ANNOTATIONS.iter().any(|k| node.annotations.contains_key(*k));
    if !tainted && !annotated {
        return RemovalState::None;
    }
    let cordoned_before = node.annotations.get(CORDONED_BEFORE).and_then(|v| v.parse::<bool>().ok());
    let inconsistent = |problem: String| RemovalState::Inconsistent { problem, cordoned_before };
    let record = match parse_record(&node.annotations) {
        Ok(record) => record,
        Err(problem) if tainted => return inconsistent(format!("tainted {REMOVAL_TAINT} but {problem}")),
        Err(problem) => return inconsistent(format!("removal annotations without the taint, and {problem}")),
    };
    // `removing` is past the point of no return: Heat may be deleting the
    // server, so a missing taint does not make it a rollback.
    if !tainted && record.phase != Phase::Removing {
        return inconsistent(format!("phase {} but the {REMOVAL_TAINT} taint was removed", record.phase));
    }
    RemovalState::Active(record)
}

fn parse_record(a: &BTreeMap<String, String>) -> Result<RemovalRecord, String> {
    let get = |k: &str| a.get(k).map(String::as_str).ok_or_else(|| format!("annotation {k} is missing"));
    let time = |k: &str| -> Result<Timestamp, String> {
        get(k)?.parse::<Timestamp>().map_err(|_| format!("annotation {k} is not an RFC 3339 time"))
    };
    let opt_time =
        |k: &str| -> Result<Option<Timestamp>, String> { if a.contains_key(k) { time(k).map(Some) } else { Ok(None) } };
    let phase_text = get(PHASE)?;
    let phase =
        Phase::parse(phase_text).ok_or_else(|| format!("annotation {PHASE} has unknown value `{phase_text}`"))?;
    let kind = match get(KIND)? {
        "empty" => RemovalKind::Empty,
        "drain" => RemovalKind::Drain,
        other => return Err(format!("annotation {KIND} has unknown value `{other}`")),
    };
    let record = RemovalRecord {
        phase,
        kind,
        started: time(STARTED)?,
        drained: opt_time(DRAINED)?,
        requested: opt_time(REQUESTED)?,
        group: get(GROUP)?.to_string(),
        member: get(MEMBER)?.to_string(),
        cordoned_before: get(CORDONED_BEFORE)?
            .parse()
            .map_err(|_| format!("annotation {CORDONED_BEFORE} is not `true` or `false`"))?,
    };
    if phase >= Phase::Drained && record.drained.is_none() {
        return Err(format!("phase {phase} without annotation {DRAINED}"));
    }
    if phase == Phase::Removing && record.requested.is_none() {
        return Err(format!("phase removing without annotation {REQUESTED}"));
    }
    Ok(record)
}

impl RemovalRecord {
    /// The annotations that represent this record (all protocol keys it sets).
    pub fn to_annotations(&self) -> BTreeMap<String, String> {
        let mut a = BTreeMap::new();
        a.insert(PHASE.into(), self.phase.as_str().into());
        a.insert(KIND.into(), self.kind.as_str().into());
        a.insert(STARTED.into(), self.started.to_string());
        if let Some(t) = self.drained {
            a.insert(DRAINED.into(), t.to_string());
        }
        if let Some(t) = self.requested {
            a.insert(REQUESTED.into(), t.to_string());
        }
        a.insert(GROUP.into(), self.group.clone());
        a.insert(MEMBER.into(), self.member.clone());
        a.insert(CORDONED_BEFORE.into(), self.cordoned_before.to_string());
        a
    }
}

/// A change to one Node: what an action writes. The actuator sends it as one
/// patch (so taint, cordon and annotations change together or not at all);
/// the simulator and tests apply it with [`NodePatch::apply`].
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct NodePatch {
    pub set_annotations: BTreeMap<String, String>,
    pub remove_annotations: Vec<String>,
    pub add_taint: Option<Taint>,
    /// Keys of taints to remove (any effect).
    pub remove_taints: Vec<String>,
    /// New `spec.unschedulable`, when it changes.
    pub unschedulable: Option<bool>,
    /// cluster-autoscaler's taint and the exclude-from-load-balancers label.
    pub departure: Option<DepartureMarks>,
}

impl NodePatch {
    pub fn apply(&self, node: &mut Node) {
        for k in &self.remove_annotations {
            node.annotations.remove(k);
        }
        node.annotations.extend(self.set_annotations.iter().map(|(k, v)| (k.clone(), v.clone())));
        node.taints.retain(|t| !self.remove_taints.contains(&t.key));
        if let Some(taint) = &self.add_taint {
            node.taints.retain(|t| t.key != taint.key);
            node.taints.push(taint.clone());
        }
        if let Some(u) = self.unschedulable {
            node.unschedulable = u;
        }
        if let Some(marks) = self.departure {
            marks.apply_to_taints(&mut node.taints);
            match marks.label_change(&node.labels) {
                Some(Some(v)) => {
                    node.labels.insert(EXCLUDE_FROM_LB_LABEL.into(), v.into());
                }
                Some(None) => {
                    node.labels.remove(EXCLUDE_FROM_LB_LABEL);
                }
                None => {}
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ts(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    pub(crate) fn bare_node() -> Node {
        Node {
            name: "m-1".into(),
            labels: BTreeMap::new(),
            annotations: BTreeMap::new(),
            taints: vec![],
            allocatable: Default::default(),
            unschedulable: false,
            ready: true,
            provider_id: None,
            created: ts("2024-01-01T00:00:00Z"),
        }
    }

    fn record(phase: Phase) -> RemovalRecord {
        RemovalRecord {
            phase,
            kind: RemovalKind::Drain,
            started: ts("2024-01-01T01:00:00Z"),
            drained: (phase >= Phase::Drained).then(|| ts("2024-01-01T01:02:00Z")),
            requested: (phase == Phase::Removing).then(|| ts("2024-01-01T01:03:00Z")),
            group: "workers".into(),
            member: "3".into(),
            cordoned_before: false,
        }
    }

    #[test]
    fn round_trips_every_phase_through_the_node() {
        for phase in [Phase::Draining, Phase::Drained, Phase::Removing] {
            let mut node = bare_node();
            let r = record(phase);
            NodePatch {
                set_annotations: r.to_annotations(),
                add_taint: Some(removal_taint(r.started)),
                unschedulable: Some(true),
                ..Default::default()
            }
            .apply(&mut node);
            assert_eq!(read(&node), RemovalState::Active(r));
        }
    }

    #[test]
    fn inconsistent_states_are_recognised() {
        let mut tainted_only = bare_node();
        tainted_only.taints.push(removal_taint(ts("2024-01-01T00:00:00Z")));
        assert!(matches!(read(&tainted_only), RemovalState::Inconsistent { .. }));

        let mut untainted = bare_node();
        untainted.annotations = record(Phase::Drained).to_annotations();
        assert!(matches!(read(&untainted), RemovalState::Inconsistent { cordoned_before: Some(false), .. }));

        // `removing` without the taint still continues: Heat may be deleting it.
        let mut removing = bare_node();
        removing.annotations = record(Phase::Removing).to_annotations();
        assert!(matches!(read(&removing), RemovalState::Active(_)));

        let mut bad_phase = bare_node();
        bad_phase.taints.push(removal_taint(ts("2024-01-01T00:00:00Z")));
        bad_phase.annotations = record(Phase::Draining).to_annotations();
        bad_phase.annotations.insert(PHASE.into(), "exploding".into());
        let RemovalState::Inconsistent { problem, .. } = read(&bad_phase) else { panic!() };
        assert!(problem.contains("exploding"), "{problem}");

        let mut drained_without_time = bare_node();
        drained_without_time.taints.push(removal_taint(ts("2024-01-01T00:00:00Z")));
        drained_without_time.annotations = record(Phase::Drained).to_annotations();
        drained_without_time.annotations.remove(DRAINED);
        assert!(matches!(read(&drained_without_time), RemovalState::Inconsistent { .. }));

        assert_eq!(read(&bare_node()), RemovalState::None);
    }

    #[test]
    fn a_removal_carries_cluster_autoscalers_marks_and_a_rollback_takes_only_ours_off() {
        use crate::planner::action::{RollBackRemoval, StartRemoval};
        use crate::planner::explain::RollbackReason;
        let r = record(Phase::Draining);
        let start = StartRemoval { node: "m-1".into(), record: r.clone(), utilization: 0.1, unneeded_since: r.started };
        let back = RollBackRemoval {
            node: "m-1".into(),
            uncordon: true,
            reason: RollbackReason::Inconsistent { problem: "test".into() },
        };

        let mut node = bare_node();
        node.taints.push(Taint { key: "dedicated".into(), value: Some("db".into()), effect: TaintEffect::NoSchedule });
        start.patch().apply(&mut node);
        let ca = node.taints.iter().find(|t| t.key == CA_REMOVAL_TAINT).expect("cluster-autoscaler's taint");
        assert_eq!(ca.value.as_deref(), Some("1704070800"), "Unix seconds of the start, as cluster-autoscaler writes");
        assert_eq!(ca.effect, TaintEffect::NoSchedule);
        assert!(node.taints.iter().any(|t| t.key == REMOVAL_TAINT), "heatscaler's own taint stays");
        assert_eq!(node.labels.get(EXCLUDE_FROM_LB_LABEL).map(String::as_str), Some(EXCLUDE_FROM_LB_VALUE));
        assert_eq!(read(&node), RemovalState::Active(r.clone()));

        back.patch().apply(&mut node);
        assert_eq!(node.taints.iter().map(|t| t.key.as_str()).collect::<Vec<_>>(), ["dedicated"]);
        assert!(node.labels.is_empty(), "{:?}", node.labels);
        assert_eq!(read(&node), RemovalState::None);

        // An operator's own exclusion label is neither overwritten nor removed.
        let mut excluded = bare_node();
        excluded.labels.insert(EXCLUDE_FROM_LB_LABEL.into(), "true".into());
        start.patch().apply(&mut excluded);
        back.patch().apply(&mut excluded);
        assert_eq!(excluded.labels.get(EXCLUDE_FROM_LB_LABEL).map(String::as_str), Some("true"));
    }
}
