//! The object store: every object of every kind, a global monotonically
//! increasing resourceVersion (like an etcd revision), a bounded change
//! history per kind for watches, and change notification.
//!
//! Objects are stored as JSON with their serialised bytes cached alongside, so
//! a list of 30,000 pods or a watch fan-out to many watchers never
//! re-serialises. Writes go through one closure that runs under the store lock,
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
#[derive(Debug)]
pub struct Obj {
    pub kind: Kind,
    pub key: ObjKey,
    pub value: Value,
    /// `value` serialised, shared by every list and watch that sends it.
    pub raw: Bytes,
    pub rv: u64,
}

impl Obj {
    pub fn uid(&self) -> &str {
        self.value["metadata"]["uid"].as_str().unwrap_or("")
    }

    pub fn meta(&self) -> &Value {
        &self.value["metadata"]
    }
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
                let mut value = current.value.clone();
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
    Obj { kind, key, value, raw, rv }
}

/// The key of an object value of the given kind.
pub fn key_of(kind: Kind, value: &Value) -> ObjKey {
    let meta = &value["metadata"];
    let name = meta["name"].as_str().unwrap_or("");
    if kind.namespaced() { ObjKey::new(meta["namespace"].as_str().unwrap_or(""), name) } else { ObjKey::cluster(name) }
}
