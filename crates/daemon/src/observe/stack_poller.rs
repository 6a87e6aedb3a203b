//! The Heat side: one poller reading every node group's stack through its
//! backend, every `daemon.heat-poll-interval`, at once when poked (after our
//! own Heat requests), and every few seconds while a stack is busy (so the
//! end of an update is seen soon, not a poll interval later).
//!
//! Heat has no watch API; polling is the only way. The latest good read of
//! each group is kept: a failed poll leaves it in place (every action
//! re-reads Heat before acting, so a stale read cannot cause a wrong one).

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::{Notify, watch};
use tokio::task::JoinHandle;

use super::Changes;
use crate::cloud::group::{Backend, GroupSnapshot, NodeGroupBackend};
use crate::telemetry::{HeatOperation, Metrics};

/// How often a busy stack is re-read.
const BUSY_POLL: Duration = Duration::from_secs(2);
/// First retry after a failed read; doubles up to the poll interval.
const RETRY_INITIAL: Duration = Duration::from_secs(1);

/// The latest good read of one group.
#[derive(Clone, Debug)]
pub struct GroupRead {
    pub snapshot: GroupSnapshot,
    pub at: Instant,
}

/// Asks the poller to read Heat now (after one of our own requests).
#[derive(Clone, Debug, Default)]
pub struct HeatPoke {
    notify: Arc<Notify>,
    /// Pokes so far; a read that started after poke n makes the reads fresh up to n.
    requested: Arc<AtomicU64>,
}

impl HeatPoke {
    pub fn poke(&self) {
        self.requested.fetch_add(1, Ordering::SeqCst);
        self.notify.notify_one();
    }
}

#[derive(Debug, Default)]
struct Shared {
    reads: BTreeMap<String, GroupRead>,
    errors: BTreeMap<String, String>,
    /// Since when each failing group has failed without a good read in between, and why.
    failing: BTreeMap<String, (Instant, &'static str)>,
    /// Since when each busy group's stack has been read busy without a break.
    busy_since: BTreeMap<String, Instant>,
    /// Reads in flight, with when they started.
    reading: BTreeMap<String, Instant>,
}

/// A group whose reads have failed without a break.
#[derive(Clone, Debug, PartialEq)]
pub struct Failing {
    pub group: String,
    pub since: Instant,
    /// `GroupError::reason` of the latest failure.
    pub reason: &'static str,
    pub error: String,
}

/// The failing groups of a [`HeatObserver`], readable without it: the
/// outage watch (`control_loop::outage`) checks them on its own timer, in
/// every wait of the control loop.
#[derive(Clone, Debug)]
pub struct HeatFailures(Arc<Mutex<Shared>>);

impl HeatFailures {
    /// Groups whose reads fail, with since when; a read still waiting for
    /// Heat counts as failing since it started. Against a dead heat-engine
    /// one read hangs until `openstack.request-timeout` and the session
    /// retries it (five attempts: about a minute at 10 s each), so waiting
    /// for it to fail delayed `OpenStackFailing` that long — and a read whose
    /// last attempt met the restarted engine hid the outage altogether.
    /// Callers judge by age (`failure-alert-after`), so a read taking its
    /// usual second is never news.
    pub fn failing(&self) -> Vec<Failing> {
        let shared = self.0.lock().expect("heat reads lock");
        let mut failing: Vec<Failing> = shared
            .failing
            .iter()
            .map(|(group, (since, reason))| Failing {
                group: group.clone(),
                since: *since,
                reason,
                error: shared.errors.get(group).cloned().unwrap_or_default(),
            })
            .collect();
        for (group, since) in &shared.reading {
            if !shared.failing.contains_key(group) {
                failing.push(Failing {
                    group: group.clone(),
                    since: *since,
                    reason: "heat_unreachable",
                    error: format!(
                        "a read of the group has had no answer from Heat for {}s",
                        since.elapsed().as_secs()
                    ),
                });
            }
        }
        failing
    }
}

/// The poller and what it read. Dropping it stops the poller.
#[derive(Debug)]
pub struct HeatObserver {
    shared: Arc<Mutex<Shared>>,
    poke: HeatPoke,
    synced: watch::Receiver<bool>,
    /// The poke count the latest completed read started after.
    fresh: watch::Receiver<u64>,
    task: JoinHandle<()>,
}

impl Drop for HeatObserver {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl HeatObserver {
    pub fn start(backends: Vec<Arc<Backend>>, interval: Duration, metrics: Arc<Metrics>, changes: Changes) -> Self {
        let shared = Arc::new(Mutex::new(Shared::default()));
        let poke = HeatPoke::default();
        let (synced_tx, synced) = watch::channel(backends.is_empty());
        let (fresh_tx, fresh) = watch::channel(0);
        let poller = Poller { backends, interval, metrics, changes, shared: shared.clone(), poke: poke.clone() };
        let task = tokio::spawn(poller.run(synced_tx, fresh_tx));
        Self { shared, poke, synced, fresh, task }
    }

    pub fn poke(&self) -> HeatPoke {
        self.poke.clone()
    }

    /// The latest good read of every group that has one.
    pub fn reads(&self) -> BTreeMap<String, GroupRead> {
        self.shared.lock().expect("heat reads lock").reads.clone()
    }

    /// Groups whose latest read failed, with the error.
    pub fn errors(&self) -> BTreeMap<String, String> {
        self.shared.lock().expect("heat reads lock").errors.clone()
    }

    /// Groups whose stack is busy, with since when it has been seen busy.
    pub fn busy_since(&self) -> BTreeMap<String, Instant> {
        self.shared.lock().expect("heat reads lock").busy_since.clone()
    }

    /// Groups whose reads fail, with since when.
    pub fn failing(&self) -> Vec<Failing> {
        self.failures().failing()
    }

    /// A handle on [`Self::failing`] that outlives no poller: it reads what
    /// this observer's poller records.
    pub fn failures(&self) -> HeatFailures {
        HeatFailures(self.shared.clone())
    }

    /// Waits (at most `timeout`) for a read that started after our latest own
    /// Heat request, so a pass does not plan on the state from before it.
    pub async fn wait_fresh(&self, timeout: Duration) {
        let wanted = self.poke.requested.load(Ordering::SeqCst);
        let mut rx = self.fresh.clone();
        let _ = tokio::time::timeout(timeout, rx.wait_for(|done| *done >= wanted)).await;
    }

    /// Waits until every group has been read once.
    pub async fn wait_synced(&self) {
        let mut rx = self.synced.clone();
        let _ = rx.wait_for(|s| *s).await;
    }
}

struct Poller {
    backends: Vec<Arc<Backend>>,
    interval: Duration,
    metrics: Arc<Metrics>,
    changes: Changes,
    shared: Arc<Mutex<Shared>>,
    poke: HeatPoke,
}

impl Poller {
    async fn run(self, synced: watch::Sender<bool>, fresh: watch::Sender<u64>) {
        let mut retry = RETRY_INITIAL;
        loop {
            let generation = self.poke.requested.load(Ordering::SeqCst);
            let metrics = &self.metrics;
            let shared = &self.shared;
            let reads = futures::future::join_all(self.backends.iter().map(|b| async move {
                let start = Instant::now();
                shared.lock().expect("heat reads lock").reading.insert(b.config().name.clone(), start);
                let result = b.read().await;
                metrics.observe_heat_call(HeatOperation::GetStack, start.elapsed(), result.is_ok());
                (b.config().name.clone(), start, result)
            }))
            .await;
            let (changed, busy, failed) = self.shared.lock().expect("heat reads lock").record(reads);
            if !failed && !*synced.borrow() {
                synced.send_replace(self.shared.lock().expect("heat reads lock").reads.len() == self.backends.len());
            }
            fresh.send_replace(generation);
            if changed {
                self.changes.notify();
            }
            let wait = if failed {
                let w = retry.min(self.interval);
                retry = (retry * 2).min(self.interval);
                w
            } else {
                retry = RETRY_INITIAL;
                if busy { BUSY_POLL.min(self.interval) } else { self.interval }
            };
            tokio::select! {
                _ = tokio::time::sleep(wait) => {}
                _ = self.poke.notify.notified() => {}
            }
        }
    }
}

/// One read of a group: its name, when the read started, what it gave.
type Read = (String, Instant, Result<GroupSnapshot, crate::cloud::group::GroupError>);

impl Shared {
    /// Stores the reads; returns (anything changed, any stack busy, any read failed).
    ///
    /// A failure is dated from the start of the read that failed, not its
    /// end: against a dead heat-engine a read hangs until
    /// `openstack.request-timeout`, and that time is part of the outage
    /// (`openstack.failure-alert-after` counts from when Heat stopped
    /// answering, as far as the daemon can know it).
    fn record(&mut self, reads: Vec<Read>) -> (bool, bool, bool) {
        let (mut changed, mut busy, mut failed) = (false, false, false);
        for (group, started, result) in reads {
            self.reading.remove(&group);
            match result {
                Ok(snapshot) => {
                    busy |= snapshot.busy;
                    if snapshot.busy {
                        let began = snapshot.update_began().map_or_else(Instant::now, since_heat_time);
                        self.busy_since.entry(group.clone()).or_insert(began);
                    } else {
                        self.busy_since.remove(&group);
                    }
                    if self.errors.remove(&group).is_some() {
                        tracing::info!(%group, "Heat is readable again");
                    }
                    self.failing.remove(&group);
                    let same = self.reads.get(&group).is_some_and(|old| same_state(&old.snapshot, &snapshot));
                    changed |= !same;
                    self.reads.insert(group, GroupRead { snapshot, at: Instant::now() });
                }
                Err(e) => {
                    failed = true;
                    let text = e.to_string();
                    let reason = e.reason();
                    self.failing.entry(group.clone()).or_insert((started, reason)).1 = reason;
                    if self.errors.get(&group) != Some(&text) {
                        tracing::warn!(%group, error = %text, "reading the group from Heat failed; retrying");
                    }
                    self.errors.insert(group, text);
                }
            }
        }
        (changed, busy, failed)
    }
}

/// The instant of a time Heat gave, on this process's monotonic clock: a
/// stack busy since before this process started (a restart during a stuck
/// update) counts from when Heat began the update, so `StackStuck` comes
/// `stack-update-timeout` after that, not after this process's first read.
/// A time in the future (a Heat clock ahead of ours) counts from now.
fn since_heat_time(began: heatscaler_core::model::Timestamp) -> Instant {
    let age = heatscaler_core::model::Timestamp::now().duration_since(began);
    let now = Instant::now();
    Duration::try_from(age).ok().and_then(|age| now.checked_sub(age)).unwrap_or(now)
}

/// What the planner reads of a group is the same.
fn same_state(a: &GroupSnapshot, b: &GroupSnapshot) -> bool {
    a.desired == b.desired && a.busy == b.busy && a.stack_status == b.stack_status && a.members == b.members
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cloud::group::GroupError;

    fn busy(status: &str, updated: Option<String>) -> GroupSnapshot {
        GroupSnapshot {
            group: "workers".into(),
            stack: crate::cloud::heat::StackRef { name: "k8s".into(), id: "id".into() },
            stack_status: status.into(),
            stack_status_reason: "Stack UPDATE started".into(),
            updated,
            busy: true,
            desired: 2,
            members: Vec::new(),
            members_stack: None,
            parameters: Default::default(),
        }
    }

    /// Heat's format: UTC, no zone.
    fn heat_time(ago: Duration) -> String {
        let t = heatscaler_core::model::Timestamp::now() - ago;
        t.strftime("%Y-%m-%dT%H:%M:%S").to_string()
    }

    /// A daemon restarted while a stack is stuck counted "busy for" from its
    /// own first read, so `StackStuck` came up to twice
    /// `stack-update-timeout` after the update began (docs/reliability.md).
    #[test]
    fn a_stack_in_progress_is_busy_since_heat_began_the_update() {
        let mut shared = Shared::default();
        let snapshot = busy("UPDATE_IN_PROGRESS", Some(heat_time(Duration::from_secs(300))));
        shared.record(vec![("workers".into(), Instant::now(), Ok(snapshot))]);
        let busy_for = shared.busy_since["workers"].elapsed();
        assert!(
            (Duration::from_secs(299)..Duration::from_secs(303)).contains(&busy_for),
            "busy for {busy_for:?}, Heat began the update 300 s ago"
        );
    }

    /// Only the stack's own update has a start Heat tells; a member in
    /// progress under a complete stack, a creation without `updated_time`, or
    /// a Heat clock ahead of ours count from the first busy read.
    #[test]
    fn otherwise_a_stack_is_busy_since_it_was_first_read_busy() {
        let old = Some(heat_time(Duration::from_secs(3600)));
        let ahead = {
            let t = heatscaler_core::model::Timestamp::now() + Duration::from_secs(600);
            Some(t.strftime("%Y-%m-%dT%H:%M:%S").to_string())
        };
        for snapshot in
            [busy("UPDATE_COMPLETE", old), busy("CREATE_IN_PROGRESS", None), busy("UPDATE_IN_PROGRESS", ahead)]
        {
            let mut shared = Shared::default();
            let status = snapshot.stack_status.clone();
            shared.record(vec![("workers".into(), Instant::now(), Ok(snapshot))]);
            let busy_for = shared.busy_since["workers"].elapsed();
            assert!(busy_for < Duration::from_secs(2), "{status}: busy for {busy_for:?}");
        }
    }

    /// The fourth full soak: heat-engine killed for 64 s, `OpenStackFailing`
    /// after 61.5 s — the first read hung through its five attempts before it
    /// failed. A read waiting for Heat counts from its start, and a read
    /// that ends well clears it.
    #[test]
    fn a_read_still_waiting_for_heat_counts_as_failing_since_it_started() {
        let failures = HeatFailures(Arc::default());
        let started = Instant::now() - Duration::from_secs(40);
        failures.0.lock().unwrap().reading.insert("workers".into(), started);
        let failing = failures.failing();
        assert_eq!(failing.len(), 1, "{failing:?}");
        assert_eq!((failing[0].since, failing[0].reason), (started, "heat_unreachable"));
        assert!(failing[0].error.contains("no answer from Heat for 40s"), "{}", failing[0].error);
        failures.0.lock().unwrap().record(vec![("workers".into(), started, Ok(busy("UPDATE_COMPLETE", None)))]);
        assert!(failures.failing().is_empty(), "the read ended well");
        // A failure recorded before keeps its own date and reason while the next read waits.
        let earlier = started - Duration::from_secs(20);
        failures.0.lock().unwrap().record(vec![("workers".into(), earlier, Err(refused()))]);
        failures.0.lock().unwrap().reading.insert("workers".into(), started);
        let failing = failures.failing();
        assert_eq!(failing.len(), 1, "{failing:?}");
        assert_eq!((failing[0].since, failing[0].reason), (earlier, refused().reason()));
    }

    fn refused() -> GroupError {
        GroupError::Refused { group: "workers".into(), reason: "heat-engine is not answering".into() }
    }

    /// The second chaos soak's violation (docs/reliability.md): a read that
    /// hangs until `openstack.request-timeout` against a dead heat-engine
    /// dated the outage from its end, up to a request timeout late.
    #[test]
    fn a_failure_is_dated_from_the_start_of_the_read_that_failed() {
        let failures = HeatFailures(Arc::default());
        let started = Instant::now() - Duration::from_secs(10);
        let (_, _, failed) = failures.0.lock().unwrap().record(vec![("workers".into(), started, Err(refused()))]);
        assert!(failed);
        assert_eq!(failures.failing()[0].since, started, "dated from the end of the read");
        // Later failures of the same outage keep its first date.
        failures.0.lock().unwrap().record(vec![("workers".into(), Instant::now(), Err(refused()))]);
        assert_eq!(failures.failing()[0].since, started);
        assert_eq!(failures.failing()[0].reason, refused().reason());
    }
}
