//! Simulated time: the clock and the queue of timed events. Nothing sleeps;
//! the engine pops the next event and the clock jumps to it. Events due at
//! the same instant run in the order they were scheduled.

use std::cmp::{Ordering, Reverse};
use std::collections::BinaryHeap;
use std::time::Duration as StdDuration;

use heatscaler_core::model::Timestamp;
use heatscaler_core::planner::time;

/// The start of every simulation (Kubernetes 1.3 was released in July 2016).
pub fn epoch() -> Timestamp {
    "2016-07-01T00:00:00Z".parse().expect("valid timestamp")
}

/// Something due at an instant, named by the component that handles it
/// (the engine dispatches; indices are the scenario's).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    /// The autoscaler under test: a decision pass is due.
    Plan,
    /// The autoscaler under test polls Heat.
    HeatPoll,
    /// The autoscaler's process restarts and loses its memory.
    Restart,
    /// Heat: stack update `update` of group `group` finished.
    HeatDone {
        group: usize,
        update: u64,
    },
    /// Heat: a new member's server booted; its node registers.
    Boot {
        group: usize,
        member: String,
    },
    /// The kubelet: a terminating pod is gone.
    PodGone {
        uid: String,
    },
    /// Controllers: workload `w`'s replica count is due for a look.
    Workload(usize),
    /// Controllers: one-off pod `i` arrives, or departs.
    Arrive(usize),
    Depart(usize),
    /// Generators: a burst of bursty generator `i`; a job's runtime is over.
    Burst(usize),
    JobDone {
        job: usize,
        uid: String,
    },
    /// Trace replay: rows of trace `t` are due.
    TraceRows(usize),
    /// The report: a sample of the series is due.
    Sample,
    /// The pod level: usage samples, the recommender, kubelet retries and
    /// (for the peers) VPA's updater are due.
    Metrics,
    /// The call graph: a window of the mesh's metrics is due, and a step of
    /// any rollout of a changed template.
    CallGraph,
}

#[derive(Debug, PartialEq, Eq)]
struct Scheduled {
    at: Timestamp,
    seq: u64,
    event: Event,
}

impl Ord for Scheduled {
    fn cmp(&self, other: &Self) -> Ordering {
        (self.at, self.seq).cmp(&(other.at, other.seq))
    }
}

impl PartialOrd for Scheduled {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

/// The simulated clock, from the epoch to the end of the run, and what is
/// due on it.
pub struct Clock {
    epoch: Timestamp,
    now: Timestamp,
    end: Timestamp,
    queue: BinaryHeap<Reverse<Scheduled>>,
    seq: u64,
}

impl Clock {
    pub fn new(epoch: Timestamp, end: Timestamp) -> Self {
        Self { epoch, now: epoch, end, queue: BinaryHeap::new(), seq: 0 }
    }

    pub fn now(&self) -> Timestamp {
        self.now
    }

    pub fn epoch(&self) -> Timestamp {
        self.epoch
    }

    pub fn end(&self) -> Timestamp {
        self.end
    }

    /// Simulated time since the start.
    pub fn elapsed(&self) -> StdDuration {
        time::elapsed(self.now, self.epoch)
    }

    pub fn at(&mut self, at: Timestamp, event: Event) {
        self.seq += 1;
        self.queue.push(Reverse(Scheduled { at, seq: self.seq, event }));
    }

    pub fn after(&mut self, d: StdDuration, event: Event) {
        self.at(time::after_std(self.now, d), event);
    }

    /// The next event and its instant, unless the run ends first. The clock
    /// stays where it is until [`Clock::advance`].
    pub fn next(&mut self) -> Option<(Timestamp, Event)> {
        let Reverse(next) = self.queue.pop()?;
        (next.at <= self.end).then_some((next.at, next.event))
    }

    /// Moves the clock forward to `to`.
    pub fn advance(&mut self, to: Timestamp) {
        self.now = to;
    }
}
