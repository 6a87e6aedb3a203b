//! A scaling event: one thing heatscaler did, could not do, or decided not to
//! do, with the object it concerns. It is plain data; the dispatcher turns it
//! into a log line, a Kubernetes Event and webhook notifications.

use std::collections::BTreeMap;
use std::fmt;

use serde::Serialize;

use super::{Reason, Severity};
use heatscaler_core::model::{self, Timestamp};

/// The Kubernetes object an event is about (`regarding` in events.k8s.io/v1).
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize)]
pub struct ObjectRef {
    pub api_version: String,
    pub kind: String,
    /// `None` for cluster-scoped objects such as nodes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    pub name: String,
    /// Lets `kubectl describe` tell a recreated object from its namesake.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub uid: Option<String>,
}

impl ObjectRef {
    pub fn node(name: impl Into<String>) -> Self {
        Self { api_version: "v1".into(), kind: "Node".into(), namespace: None, name: name.into(), uid: None }
    }

    /// `AsRef<str>`: the model's pods name themselves with shared `Name`s.
    pub fn pod(namespace: impl AsRef<str>, name: impl AsRef<str>) -> Self {
        Self {
            api_version: "v1".into(),
            kind: "Pod".into(),
            namespace: Some(namespace.as_ref().to_string()),
            name: name.as_ref().to_string(),
            uid: None,
        }
    }

    pub fn with_uid(mut self, uid: impl AsRef<str>) -> Self {
        self.uid = Some(uid.as_ref().to_string());
        self
    }

    pub fn is_node(&self) -> bool {
        self.kind == "Node" && self.api_version == "v1"
    }

    pub fn is_pod(&self) -> bool {
        self.kind == "Pod" && self.api_version == "v1"
    }
}

impl From<&model::Pod> for ObjectRef {
    fn from(p: &model::Pod) -> Self {
        let r = Self::pod(&p.namespace, &p.name);
        if p.uid.is_empty() { r } else { r.with_uid(&p.uid) }
    }
}

impl From<&model::Node> for ObjectRef {
    fn from(n: &model::Node) -> Self {
        Self::node(&n.name)
    }
}

impl fmt::Display for ObjectRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.namespace {
            Some(ns) => write!(f, "{} {ns}/{}", self.kind.to_lowercase(), self.name),
            None => write!(f, "{} {}", self.kind.to_lowercase(), self.name),
        }
    }
}

/// One scaling event. Build it with a constructor for its reason (which fills
/// the message and the documented fields consistently) or with
/// [`ScalingEvent::new`] and the `with_*` methods.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ScalingEvent {
    /// Unique per event, the same in every sink and across retries: webhook
    /// receivers deduplicate redeliveries with it.
    pub id: String,
    pub reason: Reason,
    pub severity: Severity,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub object: Option<ObjectRef>,
    /// A second object involved (the node a pod was evicted from).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub related: Option<ObjectRef>,
    /// The node group concerned, when there is one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
    /// One human sentence, self-contained (it is the Kubernetes Event note).
    pub message: String,
    /// Machine-readable details (`from_size`, `to_size`, `container`, ...).
    pub fields: BTreeMap<String, String>,
    pub time: Timestamp,
    /// Distinguishes events with the same reason and object that are different
    /// news (two successive scale-ups of one group), for deduplication.
    #[serde(skip)]
    pub(crate) discriminator: Option<String>,
}

impl ScalingEvent {
    pub fn new(reason: Reason, message: impl Into<String>) -> Self {
        Self {
            id: format!("{:032x}", rand::random::<u128>()),
            reason,
            severity: reason.default_severity(),
            object: None,
            related: None,
            group: None,
            message: message.into(),
            fields: BTreeMap::new(),
            time: Timestamp::now(),
            discriminator: None,
        }
    }

    pub fn with_object(mut self, object: ObjectRef) -> Self {
        self.object = Some(object);
        self
    }

    pub fn with_related(mut self, related: ObjectRef) -> Self {
        self.related = Some(related);
        self
    }

    pub fn in_group(mut self, group: impl Into<String>) -> Self {
        self.group = Some(group.into());
        self
    }

    pub fn with_severity(mut self, severity: Severity) -> Self {
        self.severity = severity;
        self
    }

    pub fn with_field(mut self, key: impl Into<String>, value: impl fmt::Display) -> Self {
        self.fields.insert(key.into(), value.to_string());
        self
    }

    /// The event's time; `Timestamp::now()` unless set (the simulator sets its clock's).
    pub fn at(mut self, time: Timestamp) -> Self {
        self.time = time;
        self
    }

    fn distinct_by(mut self, discriminator: impl Into<String>) -> Self {
        self.discriminator = Some(discriminator.into());
        self
    }

    /// What deduplication compares: the reason and the object (or the group
    /// for group-level events), plus a discriminator for distinct news.
    pub fn dedup_key(&self) -> String {
        let target = match &self.object {
            Some(o) => format!(
                "{}/{}/{}/{}",
                o.kind,
                o.namespace.as_deref().unwrap_or(""),
                o.name,
                o.uid.as_deref().unwrap_or("")
            ),
            None => format!("group/{}", self.group.as_deref().unwrap_or("")),
        };
        match &self.discriminator {
            Some(d) => format!("{}|{target}|{d}", self.reason),
            None => format!("{}|{target}", self.reason),
        }
    }

    /// "node k8s-minion-3", "pod shop/web-1", "node group workers" or "cluster".
    pub fn target(&self) -> String {
        match (&self.object, &self.group) {
            (Some(o), _) => o.to_string(),
            (None, Some(g)) => format!("node group {g}"),
            (None, None) => "cluster".into(),
        }
    }

    // ------------------------------------------------------------ scale-up

    pub fn triggered_scale_up(pod: ObjectRef, group: &str, from: u32, to: u32) -> Self {
        Self::new(Reason::TriggeredScaleUp, format!("pod triggered scale-up: node group {group} {from}->{to}"))
            .with_object(pod)
            .in_group(group)
            .with_field("from_size", from)
            .with_field("to_size", to)
    }

    /// `why` says why no group could take the pod, e.g. "1 group at max-size, 2 lack memory".
    pub fn not_trigger_scale_up(pod: ObjectRef, why: &str) -> Self {
        Self::new(Reason::NotTriggerScaleUp, format!("pod didn't trigger scale-up: {why}"))
            .with_object(pod)
            .with_field("why", why)
    }

    pub fn scaled_up_group(group: &str, from: u32, to: u32, pending_pods: usize) -> Self {
        Self::new(
            Reason::ScaledUpGroup,
            format!("node group {group} scaled up {from}->{to} for {pending_pods} pending pods"),
        )
        .in_group(group)
        .with_field("from_size", from)
        .with_field("to_size", to)
        .with_field("pending_pods", pending_pods)
        .distinct_by(format!("{from}->{to}"))
    }

    /// `limit` names what capped it: "max-size 10", "cluster max-cores 200".
    pub fn scale_up_limited(group: &str, wanted: u32, allowed: u32, limit: &str) -> Self {
        Self::new(
            Reason::ScaleUpLimited,
            format!("node group {group} needs {wanted} nodes but {limit} allows {allowed}; pods stay pending"),
        )
        .in_group(group)
        .with_field("wanted_size", wanted)
        .with_field("allowed_size", allowed)
        .with_field("limit", limit)
    }

    pub fn scale_up_failed(group: &str, from: u32, to: u32, error: &str) -> Self {
        Self::new(Reason::ScaleUpFailed, format!("scaling node group {group} {from}->{to} failed: {error}"))
            .in_group(group)
            .with_field("from_size", from)
            .with_field("to_size", to)
            .with_field("error", error)
    }

    /// `member` is the Heat resource name of the minion; `node` its node when it registered.
    pub fn provisioning_failed(group: &str, member: &str, node: Option<ObjectRef>, error: &str) -> Self {
        let e = Self::new(Reason::ProvisioningFailed, format!("minion {member} of node group {group} failed: {error}"))
            .in_group(group)
            .with_field("member", member)
            .with_field("error", error)
            .distinct_by(member);
        match node {
            Some(n) => e.with_object(n),
            None => e,
        }
    }

    pub fn scale_up_backoff(group: &str, until: Timestamp, failures: u32) -> Self {
        Self::new(
            Reason::ScaleUpBackoff,
            format!("node group {group} is not grown again until {until} after {failures} failed scale-ups"),
        )
        .in_group(group)
        .with_field("until", until)
        .with_field("failures", failures)
    }

    pub fn minion_joined(node: ObjectRef, group: &str, member: &str) -> Self {
        Self::new(Reason::MinionJoined, format!("minion {member} of node group {group} joined as a Ready node"))
            .with_object(node)
            .in_group(group)
            .with_field("member", member)
    }

    // ------------------------------------------------------------ scale-down

    pub fn scale_down_blocked(node: ObjectRef, group: &str, why: &str) -> Self {
        Self::new(Reason::ScaleDownBlocked, format!("node is a scale-down candidate but cannot be removed: {why}"))
            .with_object(node)
            .in_group(group)
            .with_field("why", why)
    }

    pub fn scale_down_cordoned(node: ObjectRef, group: &str, unneeded_for: std::time::Duration) -> Self {
        let secs = unneeded_for.as_secs();
        Self::new(Reason::ScaleDownCordoned, format!("node unneeded for {secs}s: cordoned for removal from {group}"))
            .with_object(node)
            .in_group(group)
            .with_field("unneeded_seconds", secs)
    }

    pub fn drain_started(node: ObjectRef, group: &str, pods: usize) -> Self {
        Self::new(Reason::DrainStarted, format!("draining {pods} pods"))
            .with_object(node)
            .in_group(group)
            .with_field("pods", pods)
    }

    pub fn pod_evicted(pod: ObjectRef, node: ObjectRef) -> Self {
        let msg = format!("evicted to drain node {} for scale-down", node.name);
        Self::new(Reason::PodEvicted, msg).with_object(pod).with_related(node)
    }

    pub fn eviction_blocked(pod: ObjectRef, pdb: &str) -> Self {
        Self::new(Reason::EvictionBlocked, format!("eviction refused by PodDisruptionBudget {pdb}; will retry"))
            .with_object(pod)
            .with_field("pdb", pdb)
    }

    pub fn drain_finished(node: ObjectRef, group: &str, took: std::time::Duration) -> Self {
        let secs = took.as_secs();
        Self::new(Reason::DrainFinished, format!("drained in {secs}s"))
            .with_object(node)
            .in_group(group)
            .with_field("duration_seconds", secs)
    }

    pub fn drain_failed(node: ObjectRef, group: &str, why: &str) -> Self {
        Self::new(Reason::DrainFailed, format!("drain failed, node uncordoned: {why}"))
            .with_object(node)
            .in_group(group)
            .with_field("why", why)
    }

    pub fn scale_down_aborted(node: ObjectRef, group: &str, why: &str) -> Self {
        Self::new(Reason::ScaleDownAborted, format!("scale-down aborted, node uncordoned: {why}"))
            .with_object(node)
            .in_group(group)
            .with_field("why", why)
    }

    pub fn minion_removed(node: ObjectRef, group: &str, member: &str) -> Self {
        Self::new(Reason::MinionRemoved, format!("minion {member} removed from node group {group}"))
            .with_object(node)
            .in_group(group)
            .with_field("member", member)
    }

    pub fn minion_removal_failed(node: ObjectRef, group: &str, member: &str, error: &str) -> Self {
        Self::new(
            Reason::MinionRemovalFailed,
            format!("removing drained minion {member} from node group {group} failed (node stays cordoned): {error}"),
        )
        .with_object(node)
        .in_group(group)
        .with_field("member", member)
        .with_field("error", error)
    }

    pub fn scaled_down_group(group: &str, from: u32, to: u32, minions: &[&str]) -> Self {
        let list = minions.join(",");
        Self::new(Reason::ScaledDownGroup, format!("node group {group} scaled down {from}->{to}, removed {list}"))
            .in_group(group)
            .with_field("from_size", from)
            .with_field("to_size", to)
            .with_field("minions", &list)
            // What happened is which minions went, not the sizes: a second 4->3
            // within the window is another minion removed, and its record must not be lost.
            .distinct_by(list)
    }

    pub fn openstack_failing(group: &str, reason: &str, lasted: std::time::Duration, error: &str) -> Self {
        Self::new(
            Reason::OpenStackFailing,
            format!(
                "node group {group}: Heat has not been readable for {}s ({reason}); nothing is scaled in this group \
                 until it is: {error}",
                lasted.as_secs()
            ),
        )
        .in_group(group)
        .with_field("reason", reason)
        .with_field("error", error)
        .with_field("failing_for", format!("{}s", lasted.as_secs()))
    }

    /// `error`: the latest read's error (never the URL: it may carry a token).
    pub fn mesh_metrics_failing(lasted: std::time::Duration, error: &str) -> Self {
        Self::new(
            Reason::MeshMetricsFailing,
            format!(
                "the service mesh's traffic has not been readable from Prometheus for {}s; the placement advisor \
                 gives no new advice until it is: {error}",
                lasted.as_secs()
            ),
        )
        .with_field("error", error)
        .with_field("failing_for", format!("{}s", lasted.as_secs()))
    }

    /// `watches`: the failing watches (`nodes,pods`); `error`: the latest error of one of them.
    pub fn kubernetes_failing(watches: &str, lasted: std::time::Duration, error: &str) -> Self {
        Self::new(
            Reason::KubernetesFailing,
            format!(
                "the Kubernetes API has failed for {}s (watches of {watches}); heatscaler's view of the cluster may be \
                 that old: {error}",
                lasted.as_secs()
            ),
        )
        .with_field("watches", watches)
        .with_field("error", error)
        .with_field("failing_for", format!("{}s", lasted.as_secs()))
    }

    pub fn stack_stuck(group: &str, stack: &str, status: &str, busy_for: std::time::Duration, recovery: &str) -> Self {
        Self::new(
            Reason::StackStuck,
            format!(
                "node group {group}: stack {stack} has been {status} for {}s; nothing is sent to the group \
                 meanwhile; {recovery}",
                busy_for.as_secs()
            ),
        )
        .in_group(group)
        .with_field("stack", stack)
        .with_field("status", status)
        .with_field("busy_for", format!("{}s", busy_for.as_secs()))
        .with_field("recovery", recovery)
    }

    pub fn removal_mismatch(group: &str, why: &str, chosen: &[&str], unexpected: &[String], kept: &[String]) -> Self {
        Self::new(Reason::RemovalMismatch, format!("node group {group}: {why}"))
            .in_group(group)
            .with_field("chosen", chosen.join(","))
            .with_field("unexpectedly_removed", unexpected.join(","))
            .with_field("kept", kept.join(","))
    }

    pub fn removal_not_wired(group: &str, error: &str) -> Self {
        Self::new(Reason::RemovalNotWired, error).in_group(group).with_field("error", error)
    }

    // ------------------------------------------------------------ pod level

    /// `from`/`to` are Kubernetes quantities (`250m`, `512Mi`).
    pub fn pod_resized(pod: ObjectRef, container: &str, resource: &str, from: &str, to: &str) -> Self {
        Self::new(Reason::PodResized, format!("container {container} {resource} request {from} -> {to} in place"))
            .with_object(pod)
            .with_field("container", container)
            .with_field("resource", resource)
            .with_field("from", from)
            .with_field("to", to)
            .distinct_by(format!("{container}/{resource}/{to}"))
    }

    pub fn pod_resize_deferred(pod: ObjectRef, message: &str) -> Self {
        Self::new(Reason::PodResizeDeferred, format!("resize deferred by the kubelet: {message}")).with_object(pod)
    }

    pub fn pod_resize_infeasible(pod: ObjectRef, message: &str) -> Self {
        Self::new(Reason::PodResizeInfeasible, format!("resize infeasible on this node: {message}")).with_object(pod)
    }

    pub fn pod_resize_failed(pod: ObjectRef, error: &str) -> Self {
        Self::new(Reason::PodResizeFailed, format!("resize refused: {error}"))
            .with_object(pod)
            .with_field("error", error)
    }

    /// `recommendation_applied`: an admission controller gives the
    /// replacement the new requests (`pod-resize.admission-controller`);
    /// without one it comes back at its template's, and the Event says so.
    pub fn pod_evicted_for_resize(pod: ObjectRef, why: &str, recommendation_applied: bool) -> Self {
        let what = if recommendation_applied {
            "evicted to be recreated with new requests (the admission controller applies them)"
        } else {
            "evicted; its controller recreates it with its template's requests (no admission controller applies \
             the recommendation)"
        };
        Self::new(Reason::PodEvictedForResize, format!("{what}: {why}")).with_object(pod)
    }

    /// `vpa`: `namespace/name`; `pods`: how many of its pods are affected.
    pub fn pod_resize_unsupported(pod: ObjectRef, vpa: &str, pods: usize, why: &str) -> Self {
        Self::new(Reason::PodResizeUnsupported, format!("VPA {vpa}: {pods} pod(s) not updated: {why}"))
            .with_object(pod)
            .with_field("vpa", vpa)
            .with_field("pods", pods)
    }

    /// The recommender's saved history (its VerticalPodAutoscalerCheckpoints)
    /// could not be listed for `lasted`: `going_on` when the pod level goes
    /// on without it (the API refused: a 403 no retry mends), else it still
    /// waits and retries.
    pub fn checkpoints_unlisted(error: &str, lasted: std::time::Duration, going_on: bool) -> Self {
        let then = if going_on {
            "the recommender goes on without its saved history (heatscaler's account needs list on \
             verticalpodautoscalercheckpoints, as config/kubernetes/rbac.yaml grants)"
        } else {
            "no recommendation is published until they are (retrying)"
        };
        Self::new(
            Reason::KubernetesFailing,
            format!("VerticalPodAutoscalerCheckpoints could not be listed for {}s: {error}; {then}", lasted.as_secs()),
        )
        .with_field("watches", "verticalpodautoscalercheckpoints")
        .with_field("error", error)
        .with_field("failing_for", format!("{}s", lasted.as_secs()))
    }

    /// `vpa`: `namespace/name` of a VPA object heatscaler handles; `seen`: the
    /// upstream component and the pod that shows it acted.
    pub fn upstream_vpa_active(vpa: &str, seen: &crate::vpa::upstream::UpstreamSighting) -> Self {
        Self::new(
            Reason::UpstreamVpaActive,
            format!("VPA {vpa}: {seen}; heatscaler updates these pods too (two updaters fight)"),
        )
        .with_object(ObjectRef::pod(&seen.namespace, &seen.pod))
        .with_field("vpa", vpa)
        .with_field("component", format!("{:?}", seen.component))
    }

    /// `pod` was created without heatscaler's admission mark although its VPA
    /// object had a recommendation for it.
    pub fn admission_webhook_not_called(namespace: &str, pod: &str) -> Self {
        Self::new(
            Reason::AdmissionWebhookNotCalled,
            format!(
                "pod {namespace}/{pod} was created at its template's requests: the API server did not call \
                 heatscaler's admission webhook (is the MutatingWebhookConfiguration installed, its caBundle \
                 and address right?); the planner no longer counts on recreated pods getting their recommendation"
            ),
        )
        .with_object(ObjectRef::pod(namespace, pod))
    }

    /// `error` lists every problem of the rejected file (never a secret: the
    /// configuration holds references to secrets, not their values).
    pub fn config_reload_failed(path: &str, error: &str) -> Self {
        Self::new(Reason::ConfigReloadFailed, format!("configuration {path} rejected, the previous one stays: {error}"))
            .with_field("path", path)
            .with_field("error", error)
    }

    /// On the leader Lease: `identity` took the lease over from `previous` (or a free lease).
    pub fn leader_elected(identity: &str, previous: Option<&str>) -> Self {
        let from = previous.map(|p| format!(", taking over from {p}")).unwrap_or_default();
        Self::new(Reason::LeaderElection, format!("{identity} became leader{from}"))
            .with_field("identity", identity)
            .with_field("previous", previous.unwrap_or(""))
            .distinct_by(format!("{identity}+"))
    }

    /// On the leader Lease: `identity` stopped acting, its lease not renewed within `renew_deadline`.
    pub fn leader_lost(identity: &str, renew_deadline: std::time::Duration) -> Self {
        Self::new(
            Reason::LeaderElection,
            format!("{identity} stopped leading: lease not renewed within {renew_deadline:?} or taken over"),
        )
        .with_severity(Severity::Warning)
        .with_field("identity", identity)
        .distinct_by(format!("{identity}-"))
    }

    pub fn unregistered_minion(group: &str, member: &str, what: &str) -> Self {
        Self::new(Reason::UnregisteredMinion, format!("node group {group}, minion {member}: {what}"))
            .in_group(group)
            .with_field("member", member)
            .distinct_by(member)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dedup_key_is_reason_and_object_or_group() {
        let a = ScalingEvent::drain_failed(ObjectRef::node("n1"), "workers", "timeout");
        let b = ScalingEvent::drain_failed(ObjectRef::node("n1"), "workers", "other words");
        let c = ScalingEvent::drain_failed(ObjectRef::node("n2"), "workers", "timeout");
        assert_eq!(a.dedup_key(), b.dedup_key(), "the message does not matter");
        assert_ne!(a.dedup_key(), c.dedup_key());
        assert_ne!(a.id, b.id);
        // Successive scale-ups of one group are different news; a repeated report is not.
        let up1 = ScalingEvent::scaled_up_group("workers", 3, 5, 4);
        let up1_again = ScalingEvent::scaled_up_group("workers", 3, 5, 6);
        let up2 = ScalingEvent::scaled_up_group("workers", 5, 7, 2);
        assert_eq!(up1.dedup_key(), up1_again.dedup_key());
        assert_ne!(up1.dedup_key(), up2.dedup_key());
        // Two 4->3 removals are different news when different minions went.
        let down1 = ScalingEvent::scaled_down_group("workers", 4, 3, &["m-1"]);
        let down2 = ScalingEvent::scaled_down_group("workers", 4, 3, &["m-2"]);
        assert_ne!(down1.dedup_key(), down2.dedup_key());
        assert_eq!(down1.dedup_key(), ScalingEvent::scaled_down_group("workers", 4, 3, &["m-1"]).dedup_key());
    }

    #[test]
    fn constructors_fill_documented_fields_and_default_severity() {
        let e = ScalingEvent::scale_up_failed("workers", 3, 5, "Quota exceeded for instances");
        assert_eq!(e.severity, Severity::Warning);
        assert_eq!(e.fields["from_size"], "3");
        assert_eq!(e.fields["to_size"], "5");
        assert_eq!(e.target(), "node group workers");
        let p = ScalingEvent::pod_evicted(ObjectRef::pod("shop", "web-1").with_uid("u1"), ObjectRef::node("n1"));
        assert_eq!(p.target(), "pod shop/web-1");
        assert_eq!(p.related.as_ref().unwrap().name, "n1");
    }

    /// Issue 17: "recreated with new requests" only when an admission
    /// controller really gives the replacement the new requests.
    #[test]
    fn an_eviction_for_resize_says_what_the_replacement_gets() {
        let pod = || ObjectRef::pod("shop", "web-1");
        let applied = ScalingEvent::pod_evicted_for_resize(pod(), "app was OOM-killed", true);
        assert!(applied.message.starts_with("evicted to be recreated with new requests"), "{}", applied.message);
        let not = ScalingEvent::pod_evicted_for_resize(pod(), "app was OOM-killed", false);
        assert!(!not.message.contains("with new requests"), "{}", not.message);
        assert!(not.message.contains("template's requests"), "{}", not.message);
    }
}
