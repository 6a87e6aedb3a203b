//! "Something the planner reads has changed": one counter the observers bump
//! and the run loop waits on (and debounces).

use tokio::sync::watch;

#[derive(Clone, Debug)]
pub struct Changes {
    tx: watch::Sender<u64>,
}

impl Default for Changes {
    fn default() -> Self {
        Self::new()
    }
}

impl Changes {
    pub fn new() -> Self {
        Self { tx: watch::Sender::new(0) }
    }

    pub fn notify(&self) {
        self.tx.send_modify(|n| *n = n.wrapping_add(1));
    }

    /// A receiver that sees changes made after this call.
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        let mut rx = self.tx.subscribe();
        rx.mark_unchanged();
        rx
    }
}
