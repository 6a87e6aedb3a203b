//! "Sent once per window": the first event with a key passes, repeats within
//! `window` of it are suppressed, and the first repeat after the window passes
//! and opens a new window. A fixed window (not sliding) guarantees an ongoing
//! condition is re-announced every window instead of going silent forever.

use std::collections::HashMap;
use std::time::{Duration, Instant};

pub(crate) struct Deduplicator {
    window: Duration,
    first_sent: HashMap<String, Instant>,
    next_prune: Option<Instant>,
}

impl Deduplicator {
    pub(crate) fn new(window: Duration) -> Self {
        Self { window, first_sent: HashMap::new(), next_prune: None }
    }

    /// Whether an event with `key` observed at `now` should be sent.
    pub(crate) fn admit(&mut self, key: &str, now: Instant) -> bool {
        if self.window.is_zero() {
            return true;
        }
        self.prune(now);
        match self.first_sent.get(key) {
            Some(&t) if now.saturating_duration_since(t) < self.window => false,
            _ => {
                self.first_sent.insert(key.to_owned(), now);
                true
            }
        }
    }

    /// Forgets expired keys once per window, so memory follows the number of
    /// distinct events per window, not since start-up.
    fn prune(&mut self, now: Instant) {
        if self.next_prune.is_some_and(|t| now < t) {
            return;
        }
        let window = self.window;
        self.first_sent.retain(|_, &mut t| now.saturating_duration_since(t) < window);
        self.next_prune = Some(now + window);
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.first_sent.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn once_per_fixed_window() {
        let t0 = Instant::now();
        let s = Duration::from_secs;
        let mut d = Deduplicator::new(s(300));
        assert!(d.admit("a", t0));
        assert!(!d.admit("a", t0 + s(10)));
        assert!(d.admit("b", t0 + s(10)), "another key is independent");
        assert!(!d.admit("a", t0 + s(299)));
        assert!(d.admit("a", t0 + s(300)), "the window is fixed from the first send");
        assert!(!d.admit("a", t0 + s(301)));
    }

    #[test]
    fn zero_window_admits_everything_and_old_keys_are_pruned() {
        let t0 = Instant::now();
        let mut off = Deduplicator::new(Duration::ZERO);
        assert!(off.admit("a", t0) && off.admit("a", t0));

        let mut d = Deduplicator::new(Duration::from_secs(60));
        for i in 0..100 {
            d.admit(&format!("k{i}"), t0);
        }
        d.admit("late", t0 + Duration::from_secs(61));
        assert_eq!(d.len(), 1);
    }
}
