//! The object store: every object of every kind, a global monotonically
//! increasing resourceVersion (like an etcd revision), a bounded change
//! history per kind for watches, and change notification.
//!
//! Objects are stored as their serialised bytes (with the few facts selectors
//! and controllers scan for, see [`Obj`]), so a list of 150,000 pods or a
//! watch fan-out to many watchers never re-serialises, and 150,000 pods take
//! about what their JSON takes. Writes go through one closure that runs under the store lock,
//! which makes read-modify-write (optimistic concurrency, patches, evictions)
//! atomic.

mod informer;

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};

use bytes::Bytes;
use serde_json::Value;
use tokio::sync::watch;

pub use informer::{Informer, InformerBatch};

use crate::error::ApiError;
use crate::kinds;
use crate::podutil;
use crate::resources::Kind;

/// Namespace ("" when cluster-scoped) and name; orders like etcd keys.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ObjKey {
    pub namespace: String,
    pub name: String,
}

impl ObjKey {
    pub fn new(namespace: &str, name: &str) -> Self {
        ObjKey { namespace: namespace.to_string(), name: name.to_string() }
    }

    pub fn cluster(name: &str) -> Self {
        ObjKey { namespace: String::new(), name: name.to_string() }
    }
}

impl std::fmt::Display for ObjKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.namespace.is_empty() { f.write_str(&self.name) } else { write!(f, "{}/{}", self.namespace, self.name) }
    }
}

/// One stored version of an object. Immutable; a write stores a new one.
///
/// Only the serialised bytes are kept (about 3 KB for a running pod; the same
/// pod as a `serde_json::Value` tree is several times that), with the few
/// [`Facts`] that selectors and the controllers' scans over every object
/// read. Paths that need more decode it with [`Obj::value`]: they handle one
/// object at a time (a write, a watch event for a controller), so a decode
/// there costs what handling the change costs anyway.
#[derive(Debug)]
pub struct Obj {
    pub kind: Kind,
    pub key: ObjKey,
    /// The object serialised: stored once, shared by every list and watch that sends it.
    pub raw: Bytes,
    pub rv: u64,
    pub facts: Facts,
}

/// What is read of an object without decoding it: its uid and labels, the
/// fields a fieldSelector may name, its controller and, for pods, the state
/// the controllers filter on.
#[derive(Debug, Default)]
pub struct Facts {
    uid: Box<str>,
    /// `metadata.labels`, sorted by key.
    labels: Box<[(Box<str>, Box<str>)]>,
    /// The values of [`kinds::selectable_fields`], in its order ("" when absent).
    fields: Box<[Box<str>]>,
    /// The controlling ownerReference's kind and uid.
    controller: Option<(Box<str>, Box<str>)>,
    /// The uids of every ownerReference (garbage collection scans for them).
    owners: Box<[Box<str>]>,
    deleting: bool,
    /// The `Ready` condition is `True`.
    ready: bool,
    /// A node carries a taint of effect `NoExecute`: the node lifecycle
    /// controller's eviction scan, every 100 ms in fast tests, looks for these
    /// among all nodes, and decoding 5,000 nodes each time took most of a core.
    no_execute: bool,
}

impl Facts {
    fn of(kind: Kind, value: &Value) -> Facts {
        let meta = &value["metadata"];
        let mut labels: Vec<(Box<str>, Box<str>)> = meta["labels"]
            .as_object()
            .map(|m| m.iter().map(|(k, v)| (k.as_str().into(), v.as_str().unwrap_or("").into())).collect())
            .unwrap_or_default();
        labels.sort();
        let controller = podutil::controller_ref(value)
            .map(|r| (r["kind"].as_str().unwrap_or("").into(), r["uid"].as_str().unwrap_or("").into()));
        let owners = meta["ownerReferences"].as_array().into_iter().flatten();
        Facts {
            owners: owners.map(|r| r["uid"].as_str().unwrap_or("").into()).collect(),
            uid: meta["uid"].as_str().unwrap_or("").into(),
            labels: labels.into_boxed_slice(),
            fields: kinds::selectable_fields(kind)
                .iter()
                .map(|f| kinds::extract_field(kind, value, f).into())
                .collect(),
            controller,
            deleting: podutil::is_deleting(value),
            ready: podutil::is_ready(value),
            no_execute: value["spec"]["taints"].as_array().into_iter().flatten().any(|t| t["effect"] == "NoExecute"),
        }
    }
}

impl Obj {
    /// The object decoded.
    pub fn value(&self) -> Value {
        #[cfg(test)]
        DECODES.with(|d| d.set(d.get() + 1));
        serde_json::from_slice(&self.raw).expect("stored objects are JSON kubesim serialised")
    }

    pub fn uid(&self) -> &str {
        &self.facts.uid
    }

    /// One label's value.
    pub fn label(&self, key: &str) -> Option<&str> {
        let labels = &self.facts.labels;
        labels.binary_search_by(|(k, _)| k.as_ref().cmp(key)).ok().map(|i| labels[i].1.as_ref())
    }

    /// `metadata.labels` as JSON (`{}` when there are none).
    pub fn labels(&self) -> Value {
        Value::Object(self.facts.labels.iter().map(|(k, v)| (k.to_string(), Value::String(v.to_string()))).collect())
    }

    /// A selectable field's value ([`kinds::selectable_fields`]; "" for others
    /// and when absent), e.g. a pod's `spec.nodeName`.
    pub fn field(&self, path: &str) -> &str {
        kinds::selectable_fields(self.kind)
            .iter()
            .position(|f| *f == path)
            .and_then(|i| self.facts.fields.get(i))
            .map_or("", |v| v.as_ref())
    }

    /// The controlling owner's kind and uid.
    pub fn controller(&self) -> Option<(&str, &str)> {
        self.facts.controller.as_ref().map(|(k, u)| (k.as_ref(), u.as_ref()))
    }

    /// One of its ownerReferences names `uid`.
    pub fn owned_by(&self, uid: &str) -> bool {
        self.facts.owners.iter().any(|o| o.as_ref() == uid)
    }

    /// Carries a deletionTimestamp.
    pub fn is_deleting(&self) -> bool {
        self.facts.deleting
    }

    /// Its `Ready` condition is `True` (pods, nodes).
    pub fn is_ready(&self) -> bool {
        self.facts.ready
    }

    /// A node has a `NoExecute` taint.
    pub fn has_no_execute_taint(&self) -> bool {
        self.facts.no_execute
    }

    /// A pod's `spec.nodeName`.
    pub fn node_name(&self) -> &str {
        self.field("spec.nodeName")
    }

    /// Terminal: a pod in phase Succeeded or Failed.
    pub fn is_terminal(&self) -> bool {
        matches!(self.field("status.phase"), "Succeeded" | "Failed")
    }

    /// Active in the controllers' sense: not terminal and not being deleted.
    pub fn is_active(&self) -> bool {
        !self.is_terminal() && !self.is_deleting()
    }
}

#[cfg(test)]
thread_local! {
    /// How many objects [`Obj::value`] decoded on this thread: tests of the
    /// scans over every object count them, since a scan that decodes is what
    /// makes kubesim slow at 5,000 nodes and no small test would time it.
    static DECODES: std::cell::Cell<u64> = const { std::cell::Cell::new(0) };
}

#[cfg(test)]
thread_local! {
    /// How often this thread took the store's lock: a scan over every pod
    /// that takes it once a pod holds up every list the server is serving.
    static LOCKS: std::cell::Cell<u64> = const { std::cell::Cell::new(0) };
}

/// Times this thread took the store's lock so far (tests only).
#[cfg(test)]
pub fn locks_on_this_thread() -> u64 {
    LOCKS.with(|l| l.get())
}

/// Objects decoded on this thread so far (tests only).
#[cfg(test)]
pub fn decodes_on_this_thread() -> u64 {
    DECODES.with(|d| d.get())
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EventType {
    Added,
    Modified,
    Deleted,
}

impl EventType {
    pub fn as_str(self) -> &'static str {
        match self {
            EventType::Added => "ADDED",
            EventType::Modified => "MODIFIED",
            EventType::Deleted => "DELETED",
        }
    }
}

/// One entry of a kind's history: the new version (for deletions, the last
/// version carrying the deletion's resourceVersion) and the one it replaced.
#[derive(Clone, Debug)]
pub struct Change {
    pub event: EventType,
    pub obj: Arc<Obj>,
    pub prev: Option<Arc<Obj>>,
}

/// What a write closure decided.
pub enum Write {
    Put(Value),
    Delete,
    Unchanged,
}

/// What a write did.
#[derive(Clone, Debug)]
pub enum Written {
    Created(Arc<Obj>),
    Updated(Arc<Obj>),
    Unchanged(Arc<Obj>),
    Deleted(Arc<Obj>),
    /// The closure chose not to write and there was no object.
    Nothing,
}

impl Written {
    pub fn object(&self) -> Option<&Arc<Obj>> {
        match self {
            Written::Created(o) | Written::Updated(o) | Written::Unchanged(o) | Written::Deleted(o) => Some(o),
            Written::Nothing => None,
        }
    }
}

/// A watch cursor fell out of the retained history.
#[derive(Debug, Clone, Copy)]
pub struct Expired {
    pub requested: u64,
    pub oldest: u64,
}

struct Bucket {
    objects: BTreeMap<ObjKey, Arc<Obj>>,
    history: VecDeque<Change>,
    /// Changes at or below this revision may have been dropped from `history`.
    compacted_rv: u64,
}

struct Inner {
    rv: u64,
    buckets: Vec<Bucket>,
    history_capacity: usize,
}

pub struct Store {
    inner: Mutex<Inner>,
    notifiers: Vec<watch::Sender<u64>>,
    any_change: watch::Sender<u64>,
}

impl Store {
    pub fn new(history_capacity: usize) -> Store {
        let buckets = Kind::ALL
            .iter()
            .map(|_| Bucket { objects: BTreeMap::new(), history: VecDeque::new(), compacted_rv: 0 })
            .collect();
        Store {
            inner: Mutex::new(Inner { rv: 0, buckets, history_capacity: history_capacity.max(1) }),
            notifiers: Kind::ALL.iter().map(|_| watch::channel(0).0).collect(),
            any_change: watch::channel(0).0,
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        #[cfg(test)]
        LOCKS.with(|l| l.set(l.get() + 1));
        // A panic inside a write closure leaves the data consistent (writes are
        // committed only after the closure returns), so poisoning is ignored.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn current_rv(&self) -> u64 {
        self.lock().rv
    }

    pub fn get(&self, kind: Kind, key: &ObjKey) -> Option<Arc<Obj>> {
        self.lock().buckets[kind.index()].objects.get(key).cloned()
    }

    /// All objects of a kind (in one namespace when given), in key order, and
    /// the revision they are consistent with.
    pub fn list(&self, kind: Kind, namespace: Option<&str>) -> (Vec<Arc<Obj>>, u64) {
        let inner = self.lock();
        let bucket = &inner.buckets[kind.index()];
        let items = match namespace {
            Some(ns) => {
                let start = ObjKey::new(ns, "");
                bucket.objects.range(start..).take_while(|(k, _)| k.namespace == ns).map(|(_, v)| v.clone()).collect()
            }
            None => bucket.objects.values().cloned().collect(),
        };
        (items, inner.rv)
    }

    pub fn count(&self, kind: Kind) -> usize {
        self.lock().buckets[kind.index()].objects.len()
    }

    /// Atomic read-modify-write of one object. `decide` sees the current
    /// version and returns what to store; it runs under the store lock, so it
    /// must be quick and must not call back into the store. With `dry_run`
    /// nothing is committed and the would-be object is returned.
    pub fn write(
        &self,
        kind: Kind,
        key: &ObjKey,
        dry_run: bool,
        decide: impl FnOnce(Option<&Arc<Obj>>) -> Result<Write, ApiError>,
    ) -> Result<Written, ApiError> {
        let mut inner = self.lock();
        let current = inner.buckets[kind.index()].objects.get(key).cloned();
        let decision = decide(current.as_ref())?;
        let next_rv = inner.rv + 1;
        let written = match decision {
            Write::Unchanged => match current {
                Some(c) => return Ok(Written::Unchanged(c)),
                None => return Ok(Written::Nothing),
            },
            Write::Put(mut value) => {
                let rv = if dry_run { current.as_ref().map(|c| c.rv).unwrap_or(0) } else { next_rv };
                if rv > 0 {
                    value["metadata"]["resourceVersion"] = Value::String(rv.to_string());
                }
                let obj = Arc::new(make_obj(kind, key.clone(), value, rv));
                if dry_run {
                    return Ok(if current.is_some() { Written::Updated(obj) } else { Written::Created(obj) });
                }
                let event = if current.is_some() { EventType::Modified } else { EventType::Added };
                inner.buckets[kind.index()].objects.insert(key.clone(), obj.clone());
                inner.record(kind, Change { event, obj: obj.clone(), prev: current.clone() });
                if event == EventType::Added { Written::Created(obj) } else { Written::Updated(obj) }
            }
            Write::Delete => {
                let Some(current) = current else { return Ok(Written::Nothing) };
                if dry_run {
                    return Ok(Written::Deleted(current));
                }
                let mut value = current.value();
                value["metadata"]["resourceVersion"] = Value::String(next_rv.to_string());
                let obj = Arc::new(make_obj(kind, key.clone(), value, next_rv));
                inner.buckets[kind.index()].objects.remove(key);
                inner.record(kind, Change { event: EventType::Deleted, obj: obj.clone(), prev: Some(current) });
                Written::Deleted(obj)
            }
        };
        inner.rv = next_rv;
        drop(inner);
        self.notifiers[kind.index()].send_replace(next_rv);
        self.any_change.send_replace(next_rv);
        Ok(written)
    }

    /// Changes of a kind after revision `cursor` (at most `max`), and the
    /// revision the caller has then seen everything up to.
    pub fn changes_since(&self, kind: Kind, cursor: u64, max: usize) -> Result<(Vec<Change>, u64), Expired> {
        let inner = self.lock();
        let bucket = &inner.buckets[kind.index()];
        if cursor < bucket.compacted_rv {
            return Err(Expired { requested: cursor, oldest: bucket.compacted_rv });
        }
        let start = bucket.history.partition_point(|c| c.obj.rv <= cursor);
        let end = (start + max).min(bucket.history.len());
        let changes: Vec<Change> = bucket.history.range(start..end).cloned().collect();
        let seen = if end == bucket.history.len() {
            inner.rv.max(cursor)
        } else {
            changes.last().map(|c| c.obj.rv).unwrap_or(cursor)
        };
        Ok((changes, seen))
    }

    /// Revision below which a kind's history is no longer complete.
    pub fn oldest_retained(&self, kind: Kind) -> u64 {
        self.lock().buckets[kind.index()].compacted_rv
    }

    /// Notified with the latest revision whenever an object of `kind` changes.
    pub fn subscribe(&self, kind: Kind) -> watch::Receiver<u64> {
        self.notifiers[kind.index()].subscribe()
    }

    /// Notified on every change of any kind.
    pub fn subscribe_all(&self) -> watch::Receiver<u64> {
        self.any_change.subscribe()
    }

    /// Drop all retained history, as an etcd compaction would: watches and
    /// continue tokens older than now get `410 Gone`.
    pub fn compact(&self) {
        let mut inner = self.lock();
        let rv = inner.rv;
        for bucket in &mut inner.buckets {
            bucket.history.clear();
            bucket.compacted_rv = rv;
        }
    }
}

impl Inner {
    fn record(&mut self, kind: Kind, change: Change) {
        let capacity = self.history_capacity;
        let bucket = &mut self.buckets[kind.index()];
        bucket.history.push_back(change);
        while bucket.history.len() > capacity {
            if let Some(dropped) = bucket.history.pop_front() {
                bucket.compacted_rv = dropped.obj.rv;
            }
        }
    }
}

fn make_obj(kind: Kind, key: ObjKey, value: Value, rv: u64) -> Obj {
    let raw = Bytes::from(serde_json::to_vec(&value).expect("JSON values always serialise"));
    Obj { kind, key, facts: Facts::of(kind, &value), raw, rv }
}

/// The key of an object value of the given kind.
pub fn key_of(kind: Kind, value: &Value) -> ObjKey {
    let meta = &value["metadata"];
    let name = meta["name"].as_str().unwrap_or("");
    if kind.namespaced() { ObjKey::new(meta["namespace"].as_str().unwrap_or(""), name) } else { ObjKey::cluster(name) }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    /// What selectors and scans read without decoding agrees with the object.
    #[test]
    fn an_objects_facts_are_what_its_json_says() {
        let pod = json!({
            "metadata": {"name": "web-1", "namespace": "team", "uid": "u-1",
                "labels": {"tier": "front", "app": "web"},
                "deletionTimestamp": "2026-01-01T00:00:00Z",
                "ownerReferences": [
                    {"kind": "Node", "name": "n", "uid": "u-n"},
                    {"kind": "ReplicaSet", "name": "web", "uid": "u-rs", "controller": true}]},
            "spec": {"nodeName": "minion-1", "hostNetwork": true, "containers": []},
            "status": {"phase": "Running", "conditions": [{"type": "Ready", "status": "True"}]},
        });
        let obj = make_obj(Kind::Pod, key_of(Kind::Pod, &pod), pod.clone(), 7);
        assert_eq!(obj.value(), pod, "the bytes decode to the object stored");
        assert_eq!(obj.uid(), "u-1");
        assert_eq!((obj.label("app"), obj.label("tier"), obj.label("zone")), (Some("web"), Some("front"), None));
        assert_eq!(obj.labels(), pod["metadata"]["labels"]);
        assert_eq!(obj.node_name(), "minion-1");
        assert_eq!(obj.field("status.phase"), "Running");
        assert_eq!(obj.field("spec.hostNetwork"), "true", "as a field selector compares it");
        assert_eq!(obj.field("status.podIP"), "", "absent");
        assert_eq!(obj.controller(), Some(("ReplicaSet", "u-rs")), "the controller, not the first owner");
        assert!(obj.owned_by("u-n") && obj.owned_by("u-rs") && !obj.owned_by("u-1"));
        assert!(obj.is_deleting() && obj.is_ready() && !obj.is_terminal() && !obj.is_active());

        let node = json!({"metadata": {"name": "minion-1", "uid": "u-2"}, "spec": {"unschedulable": true,
            "taints": [{"key": "a", "effect": "NoSchedule"}]}});
        let obj = make_obj(Kind::Node, key_of(Kind::Node, &node), node, 8);
        assert_eq!(obj.field("spec.unschedulable"), "true");
        assert_eq!(obj.labels(), json!({}));
        assert!(obj.controller().is_none() && !obj.is_ready() && !obj.is_deleting());
        assert!(!obj.has_no_execute_taint(), "NoSchedule only");

        let tainted = json!({"metadata": {"name": "minion-2", "uid": "u-3"}, "spec": {"taints": [
            {"key": "a", "effect": "NoSchedule"}, {"key": "b", "effect": "NoExecute"}]}});
        let obj = make_obj(Kind::Node, key_of(Kind::Node, &tainted), tainted, 9);
        assert!(obj.has_no_execute_taint());
    }

    /// A write's new facts replace the old: a pod that finished is terminal.
    #[test]
    fn facts_follow_each_write() {
        let store = Store::new(10);
        let key = ObjKey::new("team", "job-1");
        let pod = |phase: &str| {
            json!({"metadata": {"name": "job-1", "namespace": "team", "uid": "u"},
            "status": {"phase": phase}})
        };
        store.write(Kind::Pod, &key, false, |_| Ok(Write::Put(pod("Running")))).unwrap();
        assert!(store.get(Kind::Pod, &key).unwrap().is_active());
        store.write(Kind::Pod, &key, false, |_| Ok(Write::Put(pod("Succeeded")))).unwrap();
        let now = store.get(Kind::Pod, &key).unwrap();
        assert!(now.is_terminal() && !now.is_active());
        assert_eq!(now.value()["metadata"]["resourceVersion"], "2");
    }
}
