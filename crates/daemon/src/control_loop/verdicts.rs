//! Waiting, briefly, for kube-scheduler's verdict on new pods before a pass
//! that may grow a group.
//!
//! A Deployment's replicas reach the scheduler one after another and each gets
//! its `PodScheduled=False/Unschedulable` condition on its own attempt: on a
//! real control plane the last of a burst can be judged a few hundred
//! milliseconds after the first. A pass planned in between grows the group
//! for part of the burst, and the rest waits until Heat has finished that
//! stack update — one more VM boot of waiting (seen on the test control plane:
//! 2→3 then 3→4 for one burst of 8 pods, where 2→4 was the plan). So while
//! some pod already waits for capacity and others, just created, have no
//! verdict yet, the pass waits for those verdicts — at most
//! [`VERDICT_WAIT`], and only then: a cluster where nothing waits for capacity
//! is never delayed.

use std::time::Duration;

use tokio::sync::Mutex;

use crate::observe::ClusterStore;
use heatscaler_core::model::{Snapshot, Timestamp};

/// The longest a pass waits for verdicts.
pub const VERDICT_WAIT: Duration = Duration::from_secs(1);
/// Pods younger than this without a verdict are waited for (creation times
/// have a resolution of one second).
const YOUNG: Duration = Duration::from_secs(5);
const POLL: Duration = Duration::from_millis(50);

/// Some pod waits for capacity while another, created in the last few
/// seconds, has not been judged by the scheduler yet (unbound, no
/// `Unschedulable` condition, not being deleted).
pub fn verdicts_pending(snapshot: &Snapshot, now: Timestamp) -> bool {
    let waiting = snapshot.pods.iter().any(|p| p.is_unschedulable());
    waiting
        && snapshot.pods.iter().any(|p| {
            let age: Duration = now.duration_since(p.created).try_into().unwrap_or_default();
            p.node_name.is_none()
                && p.deletion.is_none()
                && p.unschedulable_since.is_none()
                && !p.is_terminal()
                && age < YOUNG
        })
}

/// Waits while [`verdicts_pending`] holds, at most [`VERDICT_WAIT`]; returns
/// how long it waited (zero when it did not).
pub async fn await_verdicts(store: &Mutex<ClusterStore>) -> Duration {
    let start = tokio::time::Instant::now();
    let mut waited = false;
    while start.elapsed() < VERDICT_WAIT && verdicts_pending(store.lock().await.snapshot(), Timestamp::now()) {
        waited = true;
        tokio::time::sleep(POLL).await;
    }
    if waited { start.elapsed() } else { Duration::ZERO }
}

#[cfg(test)]
mod tests {
    use super::*;
    use heatscaler_core::model::test_support;

    fn at(secs: i64) -> Timestamp {
        Timestamp::from_second(1_800_000_000 + secs).unwrap()
    }

    #[test]
    fn waits_only_for_young_unjudged_pods_while_others_wait_for_capacity() {
        let now = at(10);
        let mut waiting = test_support::pod("burst-0");
        waiting.unschedulable_since = Some(at(9));
        let mut fresh = test_support::pod("burst-1");
        fresh.created = at(9);
        let mut old = test_support::pod("stuck-0");
        old.created = at(0);
        let mut bound = test_support::pod("web-0");
        bound.created = at(9);
        bound.node_name = Some("n".into());

        let snap = |pods: Vec<heatscaler_core::model::Pod>| Snapshot { pods, ..Snapshot::default() };
        assert!(verdicts_pending(&snap(vec![waiting.clone(), fresh.clone()]), now));
        assert!(!verdicts_pending(&snap(vec![fresh.clone()]), now), "nothing waits for capacity");
        assert!(!verdicts_pending(&snap(vec![waiting.clone(), old]), now), "too old to be waited for");
        assert!(!verdicts_pending(&snap(vec![waiting.clone(), bound]), now), "bound: judged");
        let mut leaving = fresh;
        leaving.deletion = Some(at(9));
        assert!(!verdicts_pending(&snap(vec![waiting, leaving]), now));
    }
}
