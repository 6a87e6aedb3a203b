//! A controller's view of one kind: fed by its informer and by its own writes
//! (applied immediately so the controller never acts twice on stale state),
//! ordered by resourceVersion so a late informer event cannot undo a newer write.
//!
//! A controller's write is a read-modify-write of the object as stored, which
//! may be newer than the version the controller last saw: a status write can
//! land on a spec another client changed a moment before. The version written
//! then carries that change although the controller never reconciled it, and
//! the informer's event for it arrives older than what the cache holds. The
//! cache remembers its own writes until the informer delivers them, so such an
//! event is recognised as someone else's change and reported, not dropped.

use std::collections::HashMap;
use std::sync::Arc;

use crate::store::{Change, EventType, InformerBatch, Obj, ObjKey, Written};

/// One object changed in the cache.
pub struct Update {
    pub key: ObjKey,
    pub old: Option<Arc<Obj>>,
    pub new: Option<Arc<Obj>>,
}

#[derive(Default)]
pub struct ObjCache {
    objects: HashMap<ObjKey, Arc<Obj>>,
    /// Revision of deletions this controller made itself, until the informer catches up.
    tombstones: HashMap<ObjKey, u64>,
    /// Versions this controller wrote itself, until the informer delivers them.
    own_writes: HashMap<ObjKey, OwnWrites>,
}

/// A key's versions written by the controller and not yet delivered by the informer.
struct OwnWrites {
    /// Their revisions, ascending (the informer delivers them in this order).
    revisions: Vec<u64>,
    /// The version the controller had handled before them: what an absorbed
    /// change is reported as changing from.
    before: Option<Arc<Obj>>,
}

impl ObjCache {
    pub fn get(&self, key: &ObjKey) -> Option<&Arc<Obj>> {
        self.objects.get(key)
    }

    pub fn values(&self) -> impl Iterator<Item = &Arc<Obj>> {
        self.objects.values()
    }

    fn upsert(&mut self, obj: &Arc<Obj>) -> Option<Update> {
        if self.tombstones.get(&obj.key).is_some_and(|rv| *rv >= obj.rv) {
            return None;
        }
        if self.objects.get(&obj.key).is_some_and(|o| o.rv >= obj.rv) {
            return None;
        }
        let old = self.objects.insert(obj.key.clone(), obj.clone());
        Some(Update { key: obj.key.clone(), old, new: Some(obj.clone()) })
    }

    fn remove(&mut self, obj: &Arc<Obj>) -> Option<Update> {
        if self.objects.get(&obj.key).is_some_and(|o| o.rv > obj.rv) {
            return None;
        }
        if let Some(rv) = self.tombstones.get(&obj.key)
            && *rv <= obj.rv
        {
            self.tombstones.remove(&obj.key);
        }
        let old = self.objects.remove(&obj.key)?;
        Some(Update { key: obj.key.clone(), old: Some(old), new: None })
    }

    pub fn apply_change(&mut self, change: &Change) -> Option<Update> {
        if let Some(absorbed) = self.absorbed(&change.obj) {
            return Some(absorbed);
        }
        match change.event {
            EventType::Added | EventType::Modified => self.upsert(&change.obj),
            EventType::Deleted => self.remove(&change.obj),
        }
    }

    /// Checks an informer event against this controller's pending writes. A
    /// version older than one the controller wrote, and not its own, is a
    /// change its write was made on top of: the cached version carries it,
    /// but the controller has not handled it yet.
    fn absorbed(&mut self, obj: &Arc<Obj>) -> Option<Update> {
        let own = self.own_writes.get_mut(&obj.key)?;
        let mine = own.revisions.contains(&obj.rv);
        own.revisions.retain(|rv| *rv > obj.rv);
        let pending = !own.revisions.is_empty();
        let cached = self.objects.get(&obj.key).filter(|c| c.rv > obj.rv).cloned();
        let update = match cached {
            Some(cached) if !mine => {
                let old = own.before.replace(cached.clone());
                Some(Update { key: obj.key.clone(), old, new: Some(cached) })
            }
            _ => None,
        };
        if !pending {
            self.own_writes.remove(&obj.key);
        }
        update
    }

    /// Records an object version this controller just wrote.
    pub fn note_written(&mut self, obj: &Arc<Obj>) -> Option<Update> {
        let update = self.upsert(obj)?;
        let own = self
            .own_writes
            .entry(obj.key.clone())
            .or_insert_with(|| OwnWrites { revisions: Vec::new(), before: update.old.clone() });
        own.revisions.push(obj.rv);
        Some(update)
    }

    /// Records a deletion this controller just made.
    pub fn note_deleted(&mut self, obj: &Arc<Obj>) -> Option<Update> {
        self.apply_written(&Written::Deleted(obj.clone()))
    }

    /// Applies the result of this controller's own write.
    pub fn apply_written(&mut self, written: &Written) -> Option<Update> {
        match written {
            Written::Created(o) | Written::Updated(o) => self.note_written(o),
            Written::Deleted(o) => {
                self.tombstones.insert(o.key.clone(), o.rv);
                let old = self.objects.remove(&o.key)?;
                Some(Update { key: o.key.clone(), old: Some(old), new: None })
            }
            Written::Unchanged(_) | Written::Nothing => None,
        }
    }

    /// Applies an informer batch, returning what changed.
    pub fn apply_batch(&mut self, batch: InformerBatch) -> Vec<Update> {
        match batch {
            InformerBatch::Changes(changes) => changes.iter().filter_map(|c| self.apply_change(c)).collect(),
            InformerBatch::Resync(items) => {
                let mut updates = Vec::new();
                let fresh: HashMap<ObjKey, Arc<Obj>> = items.into_iter().map(|o| (o.key.clone(), o)).collect();
                let gone: Vec<ObjKey> = self.objects.keys().filter(|k| !fresh.contains_key(*k)).cloned().collect();
                for key in gone {
                    let old = self.objects.remove(&key);
                    updates.push(Update { key, old, new: None });
                }
                self.tombstones.clear();
                // What this controller's own writes were made on top of is not
                // in a resync: a key with writes pending is reported changed.
                let mut own_writes = std::mem::take(&mut self.own_writes);
                for (key, obj) in fresh {
                    let pending = own_writes.remove(&key);
                    if self.objects.get(&key).is_some_and(|o| o.rv == obj.rv) {
                        if let Some(own) = pending {
                            updates.push(Update { key, old: own.before, new: Some(obj) });
                        }
                        continue;
                    }
                    let old = self.objects.insert(key.clone(), obj.clone());
                    updates.push(Update { key, old, new: Some(obj) });
                }
                updates
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};

    use super::*;
    use crate::resources::Kind;
    use crate::store::{Informer, Store, Write};

    fn replicas(obj: &Obj) -> Value {
        let value: Value = serde_json::from_slice(&obj.raw).unwrap();
        value["spec"]["replicas"].clone()
    }

    fn deployment(replicas: i64) -> Value {
        json!({"metadata": {"name": "web", "namespace": "default", "uid": "u-web"}, "spec": {"replicas": replicas}})
    }

    /// Another client's scale change, on the object as stored now.
    fn scale(store: &Store, key: &ObjKey, replicas: i64) {
        store
            .write(Kind::Deployment, key, false, |current| {
                let mut v: Value = serde_json::from_slice(&current.unwrap().raw).unwrap();
                v["spec"]["replicas"] = json!(replicas);
                Ok(Write::Put(v))
            })
            .unwrap();
    }

    /// The controller's status write, as the store does it: on the object as stored now.
    fn write_status(store: &Store, key: &ObjKey, observed: i64) -> Arc<Obj> {
        let written = store
            .write(Kind::Deployment, key, false, |current| {
                let mut v: Value = serde_json::from_slice(&current.unwrap().raw).unwrap();
                v["status"] = json!({"observedGeneration": observed});
                Ok(Write::Put(v))
            })
            .unwrap();
        let Written::Updated(obj) = written else { panic!("an update, got {written:?}") };
        obj
    }

    /// A status write that lands on a scale change the controller has not
    /// seen yet: the informer's event for the scale change is older than the
    /// version the controller wrote, but it must still reach the controller
    /// (before, it was dropped and the Deployment stayed at its old scale).
    #[test]
    fn a_change_under_the_controllers_own_write_is_reported() {
        let store = Arc::new(Store::new(100));
        let key = ObjKey::new("default", "web");
        store.write(Kind::Deployment, &key, false, |_| Ok(Write::Put(deployment(2)))).unwrap();
        let mut informer = Informer::new(store.clone(), Kind::Deployment);
        let mut cache = ObjCache::default();
        assert_eq!(cache.apply_batch(informer.try_next().unwrap()).len(), 1);

        // Another client scales it; the controller, not told yet, writes status.
        scale(&store, &key, 3);
        let own = write_status(&store, &key, 1);
        let noted = cache.note_written(&own).expect("the controller's write is newer than its cache");
        assert_eq!(replicas(noted.old.as_ref().unwrap()), json!(2));

        let updates = cache.apply_batch(informer.try_next().unwrap());
        assert_eq!(updates.len(), 1, "the scale change is handed to the controller once");
        let (old, new) = (updates[0].old.as_ref().unwrap(), updates[0].new.as_ref().unwrap());
        assert_eq!((replicas(old), replicas(new)), (json!(2), json!(3)));
        assert_eq!(new.rv, own.rv, "as the cached version, which carries it");

        // Its own writes alone are not handed back to it.
        let own = write_status(&store, &key, 2);
        assert!(cache.note_written(&own).is_some());
        assert!(cache.apply_batch(informer.try_next().unwrap()).is_empty());
        assert!(cache.own_writes.is_empty(), "nothing kept once the informer caught up");
    }

    /// The same when the informer fell out of the history and resyncs: the
    /// change under a pending own write is not in the list, so the key is
    /// reported changed.
    #[test]
    fn a_resync_reports_keys_with_own_writes_pending() {
        let store = Arc::new(Store::new(1));
        let key = ObjKey::new("default", "web");
        store.write(Kind::Deployment, &key, false, |_| Ok(Write::Put(deployment(2)))).unwrap();
        let mut informer = Informer::new(store.clone(), Kind::Deployment);
        let mut cache = ObjCache::default();
        cache.apply_batch(informer.try_next().unwrap());
        scale(&store, &key, 3);
        let own = write_status(&store, &key, 1);
        cache.note_written(&own);
        store.compact();

        let batch = informer.try_next().unwrap();
        assert!(matches!(batch, InformerBatch::Resync(_)));
        let updates = cache.apply_batch(batch);
        assert_eq!(updates.len(), 1);
        assert_eq!(replicas(updates[0].new.as_ref().unwrap()), json!(3));
    }
}
