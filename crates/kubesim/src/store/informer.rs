//! In-process informers: how the built-in controllers follow the store, the
//! same list-then-watch contract a client-go informer has over HTTP.

use std::sync::Arc;

use tokio::sync::watch;

use super::{Change, Obj, Store};
use crate::resources::Kind;

/// What an informer delivers next.
pub enum InformerBatch {
    /// The complete current state; replaces whatever the consumer cached.
    /// Sent first, and again if the consumer fell out of the retained history.
    Resync(Vec<Arc<Obj>>),
    Changes(Vec<Change>),
}

pub struct Informer {
    store: Arc<Store>,
    kind: Kind,
    cursor: Option<u64>,
    notify: watch::Receiver<u64>,
}

const BATCH: usize = 2048;

impl Informer {
    pub fn new(store: Arc<Store>, kind: Kind) -> Informer {
        let notify = store.subscribe(kind);
        Informer { store, kind, cursor: None, notify }
    }

    /// The next batch; waits for changes when there are none. Cancel-safe.
    pub async fn next(&mut self) -> InformerBatch {
        // Controllers loop on this; keep them preemptible even when changes
        // never stop coming (their own writes feed them).
        tokio::task::consume_budget().await;
        loop {
            if let Some(batch) = self.try_next() {
                return batch;
            }
            if self.notify.changed().await.is_err() {
                // The store is gone; nothing will ever change again.
                std::future::pending::<()>().await;
            }
        }
    }

    /// The next batch if one is ready, without waiting.
    pub fn try_next(&mut self) -> Option<InformerBatch> {
        self.notify.borrow_and_update();
        let Some(cursor) = self.cursor else {
            let (items, rv) = self.store.list(self.kind, None);
            self.cursor = Some(rv);
            return Some(InformerBatch::Resync(items));
        };
        match self.store.changes_since(self.kind, cursor, BATCH) {
            Ok((changes, seen)) => {
                self.cursor = Some(seen);
                if changes.is_empty() { None } else { Some(InformerBatch::Changes(changes)) }
            }
            Err(_) => {
                let (items, rv) = self.store.list(self.kind, None);
                self.cursor = Some(rv);
                Some(InformerBatch::Resync(items))
            }
        }
    }
}
