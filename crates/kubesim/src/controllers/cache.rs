//! A controller's view of one kind: fed by its informer and by its own writes
//! (applied immediately so the controller never acts twice on stale state),
//! ordered by resourceVersion so a late informer event cannot undo a newer write.

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
        match change.event {
            EventType::Added | EventType::Modified => self.upsert(&change.obj),
            EventType::Deleted => self.remove(&change.obj),
        }
    }

    /// Records an object version this controller just wrote.
    pub fn note_written(&mut self, obj: &Arc<Obj>) -> Option<Update> {
        self.upsert(obj)
    }

    /// Records a deletion this controller just made.
    pub fn note_deleted(&mut self, obj: &Arc<Obj>) -> Option<Update> {
        self.apply_written(&Written::Deleted(obj.clone()))
    }

    /// Applies the result of this controller's own write.
    pub fn apply_written(&mut self, written: &Written) -> Option<Update> {
        match written {
            Written::Created(o) | Written::Updated(o) => self.upsert(o),
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
                for (key, obj) in fresh {
                    if self.objects.get(&key).is_some_and(|o| o.rv == obj.rv) {
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
