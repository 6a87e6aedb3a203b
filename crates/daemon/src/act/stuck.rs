//! Stacks left `*_IN_PROGRESS`: when heat-engine dies mid-update (or its
//! RabbitMQ drops the work), Heat's convergence engine never finishes or
//! fails the update, and the stack stays in progress for good — while it
//! does, heatscaler sends nothing to the group, so the group is held.
//!
//! Busy for longer than `openstack.stack-update-timeout` is a critical
//! `StackStuck` alert, and the step an operator takes: an update of the stack
//! with its own template, environment and parameters (`PATCH`, `openstack
//! stack update --existing` with nothing changed). The convergence engine
//! accepts it while the old traversal is stuck and starts a new one towards
//! the same desired state, so it asks nothing that Heat had not already
//! accepted; it is repeated at most once per timeout. `stack cancel-update`
//! was rejected: in convergence it rolls the stack back (a removal would
//! bring the drained member back) or stops the traversal, finishing nothing.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use super::{Actuator, Outcome};
use crate::alerts::ScalingEvent;
use crate::cloud::group::{GroupError, NodeGroupBackend};
use crate::telemetry::HeatOperation;

/// Per group: when the current stuck episode was alerted, and when recovery was last sent.
#[derive(Debug, Default)]
pub(crate) struct StuckEpisodes(Mutex<BTreeMap<String, Episode>>);

#[derive(Clone, Copy, Debug)]
struct Episode {
    busy_since: Instant,
    last_attempt: Option<Instant>,
}

impl Actuator {
    /// `busy`: each group whose stack is busy, and since when (as observed).
    /// Alerts and tries a recovery for those busy longer than `timeout`;
    /// forgets the others.
    pub async fn handle_stuck_stacks(
        &self,
        busy: &BTreeMap<String, Instant>,
        timeout: Duration,
        now: Instant,
    ) -> Vec<Outcome> {
        let due: Vec<(String, Instant, bool)> = {
            let mut episodes = self.stuck.0.lock().expect("stuck lock");
            episodes.retain(|g, e| busy.get(g) == Some(&e.busy_since));
            let mut due = Vec::new();
            for (group, since) in busy {
                if now.saturating_duration_since(*since) < timeout {
                    continue;
                }
                let episode =
                    episodes.entry(group.clone()).or_insert(Episode { busy_since: *since, last_attempt: None });
                let first = episode.last_attempt.is_none();
                if episode.last_attempt.is_some_and(|t| now.saturating_duration_since(t) < timeout) {
                    continue;
                }
                episode.last_attempt = Some(now);
                due.push((group.clone(), *since, first));
            }
            due
        };
        let mut outcomes = Vec::new();
        for (group, since, first) in due {
            outcomes.push(self.recover_stuck(&group, now.saturating_duration_since(since), first).await);
        }
        outcomes
    }

    async fn recover_stuck(&self, group: &str, busy_for: Duration, first: bool) -> Outcome {
        let (backend, snapshot) = match self.read_group(group).await {
            Ok(read) => read,
            Err(e) => return Outcome::Failed(e),
        };
        if !snapshot.busy {
            return Outcome::Skipped(format!("stack {} is no longer busy", snapshot.stack));
        }
        let status = snapshot.stack_status.clone();
        tracing::error!(group, stack = %snapshot.stack, %status, ?busy_for, "stack stuck; updating it with its own template and parameters");
        let start = Instant::now();
        let sent = backend.heat().update_parameters(&snapshot.stack, &serde_json::Map::new()).await;
        self.metrics.observe_heat_call(HeatOperation::UpdateStack, start.elapsed(), sent.is_ok());
        self.heat.poke();
        let recovery = match &sent {
            Ok(()) => "sent `stack update --existing` with nothing changed to make Heat finish it".to_string(),
            Err(e) => format!("`stack update --existing` failed ({e}); a person must look"),
        };
        if first || sent.is_err() {
            self.alerts.dispatch(ScalingEvent::stack_stuck(group, &snapshot.stack.name, &status, busy_for, &recovery));
        }
        match sent {
            Ok(()) => Outcome::Done(format!(
                "stack {} of group {group} was {status} for {busy_for:?}: {recovery}",
                snapshot.stack
            )),
            Err(e) => Outcome::Failed(GroupError::Cloud { group: group.to_string(), source: e }.into()),
        }
    }
}
