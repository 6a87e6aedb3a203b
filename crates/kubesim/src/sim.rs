//! The shared state of one kubesim instance, handed to the HTTP layer, the
//! built-in controllers and the harness.

use std::sync::Arc;

use crate::api::lists::ListSnapshots;
use crate::events::EventRecorder;
use crate::faults::Faults;
use crate::options::Options;
use crate::registry::Registry;
use crate::store::Store;
use crate::time::TimeScale;
use crate::usage::Usage;

pub struct Sim {
    pub options: Options,
    pub scale: TimeScale,
    pub store: Arc<Store>,
    pub registry: Arc<Registry>,
    pub faults: Faults,
    pub usage: Usage,
    pub recorder: EventRecorder,
    pub snapshots: ListSnapshots,
    pub started: crate::time::Timestamp,
    /// Nodes added so far; gives each a distinct pod CIDR and address.
    pub node_seq: std::sync::atomic::AtomicU32,
}

impl Sim {
    pub fn new(options: Options) -> Arc<Sim> {
        let store = Arc::new(Store::new(options.watch_history));
        let registry = Arc::new(Registry::new(store.clone()));
        Arc::new(Sim {
            scale: TimeScale(options.time_scale),
            recorder: EventRecorder::new(registry.clone(), options.record_events),
            usage: Usage::new(options.default_usage.clone()),
            faults: Faults::default(),
            snapshots: ListSnapshots::new(options.continue_token_lifetime),
            started: crate::time::now(),
            node_seq: std::sync::atomic::AtomicU32::new(0),
            store,
            registry,
            options,
        })
    }
}
