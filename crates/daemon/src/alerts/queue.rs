//! A bounded queue that never blocks the producer: when full, the *oldest*
//! notification is dropped. During an incident the newest news matters most,
//! and a producer that waited on a dead receiver would stall the control loop.

use std::collections::VecDeque;
use std::sync::Mutex;

use tokio::sync::Notify;

pub(crate) struct DropOldestQueue<T> {
    state: Mutex<State<T>>,
    ready: Notify,
    capacity: usize,
}

struct State<T> {
    items: VecDeque<T>,
    closed: bool,
}

/// What [`DropOldestQueue::push`] did.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Pushed<T> {
    Queued,
    /// Queued, and this oldest item was pushed out.
    DroppedOldest(T),
    /// The queue is closed; the item was not queued.
    Closed(T),
}

impl<T> DropOldestQueue<T> {
    pub(crate) fn new(capacity: usize) -> Self {
        Self {
            state: Mutex::new(State { items: VecDeque::with_capacity(capacity.min(64)), closed: false }),
            ready: Notify::new(),
            capacity: capacity.max(1),
        }
    }

    /// Never waits for the consumer (only for the lock's few instructions).
    pub(crate) fn push(&self, item: T) -> Pushed<T> {
        let result = {
            let mut s = self.state.lock().expect("queue lock");
            if s.closed {
                return Pushed::Closed(item);
            }
            s.items.push_back(item);
            if s.items.len() > self.capacity {
                Pushed::DroppedOldest(s.items.pop_front().expect("over capacity, so not empty"))
            } else {
                Pushed::Queued
            }
        };
        self.ready.notify_one();
        result
    }

    /// The next item; `None` once the queue is closed and empty.
    pub(crate) async fn pop(&self) -> Option<T> {
        loop {
            // Registered before looking, so a push between the look and the
            // wait still wakes us (Notify keeps one permit).
            let notified = self.ready.notified();
            {
                let mut s = self.state.lock().expect("queue lock");
                if let Some(item) = s.items.pop_front() {
                    return Some(item);
                }
                if s.closed {
                    return None;
                }
            }
            notified.await;
        }
    }

    /// Stops accepting; the consumer still gets what is queued, then `None`.
    pub(crate) fn close(&self) {
        self.state.lock().expect("queue lock").closed = true;
        self.ready.notify_one();
    }

    /// Removes and returns everything still queued.
    pub(crate) fn take_all(&self) -> Vec<T> {
        self.state.lock().expect("queue lock").items.drain(..).collect()
    }

    pub(crate) fn len(&self) -> usize {
        self.state.lock().expect("queue lock").items.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overflow_drops_the_oldest() {
        let q = DropOldestQueue::new(2);
        assert_eq!(q.push(1), Pushed::Queued);
        assert_eq!(q.push(2), Pushed::Queued);
        assert_eq!(q.push(3), Pushed::DroppedOldest(1));
        assert_eq!(q.take_all(), vec![2, 3]);
    }

    #[tokio::test]
    async fn pop_waits_for_a_push_and_ends_after_close() {
        let q = std::sync::Arc::new(DropOldestQueue::new(4));
        let consumer = tokio::spawn({
            let q = q.clone();
            async move {
                let mut got = Vec::new();
                while let Some(x) = q.pop().await {
                    got.push(x);
                }
                got
            }
        });
        tokio::task::yield_now().await;
        q.push(1);
        q.push(2);
        q.close();
        assert_eq!(q.push(3), Pushed::Closed(3));
        assert_eq!(consumer.await.unwrap(), vec![1, 2]);
    }
}
