//! Leader election on a `coordination.k8s.io/v1` Lease, for several daemons
//! (one per master, or a Deployment's replicas) of which exactly one acts.
//!
//! The rules (client-go's, see `decide.rs`) are pure; this module runs them:
//! an attempt every `retry-period` (a standby's jittered by up to 20 %, so
//! candidates do not collide in lock step), each bounded by `renew-deadline`.
//! [`LeaseGate::is_leader`] compares the local monotonic clock with the
//! deadline of the last successful renewal: a leader that cannot reach the
//! API server stops acting on time even while its request hangs.
//!
//! Campaigning starts once the daemon has synced (a replica that cannot read
//! the cluster or Heat does not take the lease from one that can). On a clean
//! stop the lease is released so a standby takes over within its retry period.
//!
//! Decision (see the report): kube-leader-election compares the remote
//! `renewTime` with the local clock (its README warns it is volatile to clock
//! skew), kube-lease-manager relies on server-side-apply conflicts and a
//! skew tolerance; both are small wrappers over the same three API calls, so
//! this is written directly on kube-rs.

mod decide;
mod lease;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use k8s_openapi::api::coordination::v1::Lease;
use kube::Api;
use tokio::sync::watch;
use tokio::task::JoinHandle;

pub use decide::{Candidate, Observed, Step};
pub use lease::{Attempt, LeaseClient};

use super::leadership::LeaderGate;
use crate::alerts::{ObjectRef, ScalingEvent};
use crate::config::LeaderElectionConfig;
use crate::observe::Changes;
use crate::telemetry::{Health, Leadership, Metrics};

/// The lease-based [`LeaderGate`].
pub struct LeaseGate {
    inner: Arc<Inner>,
    campaign: Mutex<Option<(JoinHandle<()>, watch::Sender<bool>)>>,
}

struct Inner {
    lease: LeaseClient,
    namespace: String,
    candidate: Candidate,
    renew_deadline: Duration,
    retry_period: Duration,
    /// Origin of `deadline`.
    base: Instant,
    /// Nanoseconds after `base` until which we may act; 0 when we may not.
    deadline: AtomicU64,
    /// Who held the lease when we took it (for the change event).
    previous: Mutex<Option<String>>,
    health: Health,
    metrics: Arc<Metrics>,
    changes: Changes,
}

/// What the gate needs besides the configuration.
pub struct Wiring {
    pub client: kube::Client,
    pub identity: String,
    pub health: Health,
    pub metrics: Arc<Metrics>,
    /// Poked when this replica becomes the leader, so it plans at once.
    pub changes: Changes,
}

impl LeaseGate {
    /// A gate that does not lead until [`LeaseGate::campaign`] wins the lease.
    pub fn new(config: &LeaderElectionConfig, wiring: Wiring) -> Self {
        let Wiring { client, identity, health, metrics, changes } = wiring;
        let api: Api<Lease> = Api::namespaced(client, &config.namespace);
        let inner = Arc::new(Inner {
            lease: LeaseClient::new(api, config.lease_name.clone(), metrics.clone()),
            namespace: config.namespace.clone(),
            candidate: Candidate { identity, lease_duration: config.lease_duration.get() },
            renew_deadline: config.renew_deadline.get(),
            retry_period: config.retry_period.get(),
            base: Instant::now(),
            deadline: AtomicU64::new(0),
            previous: Mutex::new(None),
            health,
            metrics,
            changes,
        });
        inner.publish();
        Self { inner, campaign: Mutex::new(None) }
    }

    pub fn identity(&self) -> &str {
        &self.inner.candidate.identity
    }

    /// Starts trying to acquire (and then renewing) the lease, in the background.
    pub fn campaign(&self) {
        let mut campaign = self.campaign.lock().unwrap();
        if campaign.is_some() {
            return;
        }
        let (stop, stopped) = watch::channel(false);
        tracing::info!(
            identity = %self.inner.candidate.identity,
            lease = %format!("{}/{}", self.inner.namespace, self.inner.lease.name()),
            "campaigning for the leader lease"
        );
        *campaign = Some((tokio::spawn(self.inner.clone().run(stopped)), stop));
    }

    /// Stops campaigning and, if we hold the lease, gives it up (within
    /// `within`), so a standby need not wait for it to expire. We stop acting
    /// before the lease is released.
    pub async fn release(&self, within: Duration) {
        let campaign = self.campaign.lock().unwrap().take();
        if let Some((task, stop)) = campaign {
            let _ = stop.send(true);
            let _ = task.await;
        }
        let was_leading = self.inner.is_leader();
        self.inner.deadline.store(0, Ordering::SeqCst);
        self.inner.publish();
        match tokio::time::timeout(within, self.inner.lease.release(&self.inner.candidate)).await {
            Ok(Ok(true)) => tracing::info!(identity = %self.identity(), "released the leader lease"),
            Ok(Ok(false)) => {
                if was_leading {
                    tracing::warn!("the leader lease was no longer ours to release");
                }
            }
            Ok(Err(e)) => tracing::warn!(error = %e, "could not release the leader lease; it expires on its own"),
            Err(_) => tracing::warn!(?within, "releasing the leader lease timed out; it expires on its own"),
        }
    }

    fn lease_ref(&self) -> ObjectRef {
        ObjectRef {
            api_version: "coordination.k8s.io/v1".into(),
            kind: "Lease".into(),
            namespace: Some(self.inner.namespace.clone()),
            name: self.inner.lease.name().to_string(),
            uid: None,
        }
    }
}

impl LeaderGate for LeaseGate {
    fn is_leader(&self) -> bool {
        self.inner.is_leader()
    }

    fn leadership(&self) -> Leadership {
        self.inner.leadership()
    }

    fn change_event(&self, leading: bool) -> Option<ScalingEvent> {
        let identity = self.identity();
        let event = if leading {
            let previous = self.inner.previous.lock().unwrap().clone();
            ScalingEvent::leader_elected(identity, previous.as_deref())
        } else {
            ScalingEvent::leader_lost(identity, self.inner.renew_deadline)
        };
        Some(event.with_object(self.lease_ref()))
    }
}

impl Drop for LeaseGate {
    fn drop(&mut self) {
        if let Some((task, _)) = self.campaign.lock().unwrap().take() {
            task.abort();
        }
    }
}

impl Inner {
    fn is_leader(&self) -> bool {
        let deadline = self.deadline.load(Ordering::SeqCst);
        deadline != 0 && (self.base.elapsed().as_nanos() as u64) < deadline
    }

    fn leadership(&self) -> Leadership {
        if self.is_leader() { Leadership::Leader } else { Leadership::Standby }
    }

    fn extend(&self, until: Instant) {
        let nanos = until.saturating_duration_since(self.base).as_nanos() as u64;
        self.deadline.store(nanos.max(1), Ordering::SeqCst);
    }

    fn publish(&self) {
        self.health.set_leadership(self.leadership());
        self.metrics.set_leader(self.is_leader());
    }

    fn deadline(&self) -> Option<Instant> {
        let nanos = self.deadline.load(Ordering::SeqCst);
        (nanos != 0).then(|| self.base + Duration::from_nanos(nanos))
    }

    async fn run(self: Arc<Self>, mut stop: watch::Receiver<bool>) {
        let mut observed = None;
        let mut leading = false;
        let mut standby_for: Option<String> = None;
        loop {
            let sent = Instant::now();
            let attempt = self.lease.acquire_or_renew(&self.candidate, &mut observed, sent);
            match tokio::time::timeout(self.renew_deadline, attempt).await {
                Ok(Ok(Attempt::Leading { acquired, previous })) => {
                    self.extend(decide::deadline(sent, self.renew_deadline));
                    standby_for = None;
                    if acquired {
                        *self.previous.lock().unwrap() = previous.clone();
                        tracing::info!(
                            identity = %self.candidate.identity,
                            previous = previous.as_deref().unwrap_or("none"),
                            "acquired the leader lease"
                        );
                    }
                }
                Ok(Ok(Attempt::Standby { holder })) => {
                    // Held by another: whatever we believed, we do not lead.
                    self.deadline.store(0, Ordering::SeqCst);
                    if standby_for.as_deref() != Some(holder.as_str()) {
                        tracing::info!(identity = %self.candidate.identity, %holder, "standby: the leader lease is held by another replica");
                        standby_for = Some(holder);
                    }
                }
                Ok(Err(e)) => {
                    tracing::warn!(error = %e, leading, "leader lease: acquire/renew failed; retrying");
                }
                Err(_) => {
                    tracing::warn!(timeout = ?self.renew_deadline, leading, "leader lease: acquire/renew timed out; retrying");
                }
            }
            leading = self.transition(leading);
            let wait =
                if leading { self.retry_period } else { self.retry_period.mul_f64(1.0 + rand::random_range(0.0..0.2)) };
            let next = tokio::time::Instant::now() + wait;
            loop {
                // Wake at the deadline too: leadership lapsing is published when it happens.
                let lapse = self.deadline().filter(|_| leading).map(tokio::time::Instant::from_std);
                tokio::select! {
                    _ = tokio::time::sleep_until(next) => break,
                    _ = async { tokio::time::sleep_until(lapse.unwrap()).await }, if lapse.is_some_and(|l| l < next) => {
                        leading = self.transition(leading);
                    }
                    _ = stop.changed() => return,
                }
            }
        }
    }

    /// Publishes leadership and logs a change; returns whether we lead now.
    fn transition(&self, was_leading: bool) -> bool {
        let leading = self.is_leader();
        self.publish();
        match (was_leading, leading) {
            (false, true) => {
                tracing::info!(identity = %self.candidate.identity, "became the leader: planning and acting");
                self.changes.notify();
            }
            (true, false) => tracing::warn!(
                identity = %self.candidate.identity,
                renew_deadline = ?self.renew_deadline,
                "stopped leading: the lease was not renewed within renew-deadline"
            ),
            _ => {}
        }
        leading
    }
}
