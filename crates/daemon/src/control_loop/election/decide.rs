//! The election's decisions, pure: a Lease record as read, what this candidate
//! observed before and its own monotonic clock in; what to write (or to wait)
//! out. The I/O around it is in `lease.rs`.
//!
//! The rules are client-go's `leaderelection`:
//!
//! - A lease held by another candidate expires `leaseDurationSeconds` after the
//!   record last *changed as this candidate saw it*, on this candidate's own
//!   clock. The remote `renewTime` is written for people and never compared
//!   with our clock, so clock skew between masters cannot shorten a lease.
//! - The holder renews by writing the same record with a new `renewTime`; a
//!   candidate takes an expired or released lease over by writing itself in as
//!   holder, with `leaseTransitions` + 1. Both writes carry the resourceVersion
//!   read, so of two candidates racing for one expired lease exactly one wins.
//! - A leader acts only until its last successful renewal (the instant the
//!   renewal was *sent*) plus `renew-deadline`, which is shorter than the lease
//!   duration: it stops acting before any other candidate can observe its lease
//!   expired. That is [`deadline`].
//! - Releasing (clean shutdown) clears the holder and sets the duration to 1 s,
//!   so a standby takes over at its next attempt instead of a lease later.

use std::time::{Duration, Instant};

use k8s_openapi::api::coordination::v1::LeaseSpec;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;

/// A lease record as this candidate last saw it change, and when (its clock).
#[derive(Clone, Debug, PartialEq)]
pub struct Observed {
    pub spec: LeaseSpec,
    pub at: Instant,
}

/// What to do with the lease as read.
#[derive(Clone, Debug, PartialEq)]
pub enum Step {
    /// There is no lease: create it, held by us.
    Create(LeaseSpec),
    /// Replace the record read (with its resourceVersion) by this one, held by us.
    /// `acquiring` when the lease changes hands (it was not ours).
    Write { spec: LeaseSpec, acquiring: bool },
    /// Another candidate holds a lease that has not expired by our observation.
    Standby { holder: String, expires_in: Duration },
}

/// One candidate for the lease.
#[derive(Clone, Debug)]
pub struct Candidate {
    pub identity: String,
    /// Written into the lease: how long others must wait after our last renewal.
    pub lease_duration: Duration,
}

impl Candidate {
    /// The step for the record `read` (`None`: the lease does not exist) at
    /// `now` (monotonic; `wall` is only written). Updates `observed` when the
    /// record differs from the one observed before.
    pub fn step(
        &self,
        read: Option<&LeaseSpec>,
        observed: &mut Option<Observed>,
        now: Instant,
        wall: jiff::Timestamp,
    ) -> Step {
        let Some(current) = read else {
            return Step::Create(self.record(&LeaseSpec::default(), wall, None, 0));
        };
        let seen_at = match observed {
            Some(o) if o.spec == *current => o.at,
            _ => {
                *observed = Some(Observed { spec: current.clone(), at: now });
                now
            }
        };
        let transitions = current.lease_transitions.unwrap_or(0);
        match holder(current) {
            Some(h) if h == self.identity => Step::Write {
                spec: self.record(current, wall, current.acquire_time.clone(), transitions),
                acquiring: false,
            },
            Some(h) => {
                let duration = record_duration(current).unwrap_or(self.lease_duration);
                let expires = seen_at + duration;
                if now < expires {
                    return Step::Standby { holder: h.to_string(), expires_in: expires - now };
                }
                Step::Write { spec: self.record(current, wall, None, transitions + 1), acquiring: true }
            }
            None => Step::Write { spec: self.record(current, wall, None, transitions + 1), acquiring: true },
        }
    }

    /// The record that gives the lease up, if we hold it.
    pub fn released(&self, current: &LeaseSpec, wall: jiff::Timestamp) -> Option<LeaseSpec> {
        (holder(current) == Some(self.identity.as_str())).then(|| LeaseSpec {
            holder_identity: None,
            lease_duration_seconds: Some(1),
            acquire_time: Some(MicroTime(wall)),
            renew_time: Some(MicroTime(wall)),
            ..current.clone()
        })
    }

    /// `current` held by us, renewed at `wall`; acquired at `acquired` (now when `None`).
    fn record(
        &self,
        current: &LeaseSpec,
        wall: jiff::Timestamp,
        acquired: Option<MicroTime>,
        transitions: i32,
    ) -> LeaseSpec {
        LeaseSpec {
            holder_identity: Some(self.identity.clone()),
            // Whole seconds on the wire: rounded up, never granting others a shorter wait.
            lease_duration_seconds: Some(
                i32::try_from(self.lease_duration.as_millis().div_ceil(1000).max(1)).unwrap_or(i32::MAX),
            ),
            acquire_time: Some(acquired.unwrap_or(MicroTime(wall))),
            renew_time: Some(MicroTime(wall)),
            lease_transitions: Some(transitions),
            // Fields of the coordinated-election API we do not use are kept as found.
            ..current.clone()
        }
    }
}

/// Until when a leader may act after a renewal sent at `sent`.
pub fn deadline(sent: Instant, renew_deadline: Duration) -> Instant {
    sent + renew_deadline
}

/// The holder named in a record; an empty name is no holder (client-go's release).
pub fn holder(spec: &LeaseSpec) -> Option<&str> {
    spec.holder_identity.as_deref().filter(|h| !h.is_empty())
}

fn record_duration(spec: &LeaseSpec) -> Option<Duration> {
    let secs = spec.lease_duration_seconds.filter(|s| *s > 0)?;
    Some(Duration::from_secs(u64::try_from(secs).ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    const LEASE: Duration = Duration::from_secs(15);

    fn me() -> Candidate {
        Candidate { identity: "master-a".into(), lease_duration: LEASE }
    }

    fn wall(secs: i64) -> jiff::Timestamp {
        jiff::Timestamp::from_second(1_700_000_000 + secs).unwrap()
    }

    fn held_by(holder: &str, renewed: i64, transitions: i32) -> LeaseSpec {
        LeaseSpec {
            holder_identity: Some(holder.into()),
            lease_duration_seconds: Some(15),
            acquire_time: Some(MicroTime(wall(0))),
            renew_time: Some(MicroTime(wall(renewed))),
            lease_transitions: Some(transitions),
            ..LeaseSpec::default()
        }
    }

    fn written(step: Step) -> (LeaseSpec, bool) {
        match step {
            Step::Write { spec, acquiring } => (spec, acquiring),
            other => panic!("expected a write, got {other:?}"),
        }
    }

    #[test]
    fn no_lease_is_created_held_by_us() {
        let Step::Create(spec) = me().step(None, &mut None, Instant::now(), wall(5)) else { panic!() };
        assert_eq!(spec.holder_identity.as_deref(), Some("master-a"));
        assert_eq!(spec.lease_duration_seconds, Some(15));
        assert_eq!(spec.lease_transitions, Some(0));
        assert_eq!(spec.acquire_time, Some(MicroTime(wall(5))));
        assert_eq!(spec.renew_time, Some(MicroTime(wall(5))));
    }

    #[test]
    fn a_live_lease_of_another_keeps_us_standby_until_it_stops_changing_for_its_duration() {
        let t0 = Instant::now();
        let mut observed = None;
        let lease = held_by("master-b", 0, 3);
        let step = me().step(Some(&lease), &mut observed, t0, wall(0));
        assert_eq!(step, Step::Standby { holder: "master-b".into(), expires_in: LEASE });
        // The holder renews every 2 s: each change restarts the wait.
        let mut now = t0;
        for i in 1..20 {
            now = t0 + Duration::from_secs(2 * i);
            let renewed = held_by("master-b", 2 * i as i64, 3);
            assert!(matches!(me().step(Some(&renewed), &mut observed, now, wall(0)), Step::Standby { .. }));
        }
        // Then it stops: unchanged for less than the duration is still held ...
        let last = held_by("master-b", 38, 3);
        let step = me().step(Some(&last), &mut observed, now + LEASE - Duration::from_millis(1), wall(60));
        assert_eq!(step, Step::Standby { holder: "master-b".into(), expires_in: Duration::from_millis(1) });
        // ... and at the duration it is ours, one transition more, acquired now.
        let (spec, acquiring) = written(me().step(Some(&last), &mut observed, now + LEASE, wall(60)));
        assert!(acquiring);
        assert_eq!(spec.holder_identity.as_deref(), Some("master-a"));
        assert_eq!(spec.lease_transitions, Some(4));
        assert_eq!(spec.acquire_time, Some(MicroTime(wall(60))));
    }

    #[test]
    fn remote_timestamps_are_never_compared_with_our_clock() {
        // The holder's clock is an hour behind ours (or it died an hour ago:
        // we cannot tell). A record we see for the first time is live for a
        // whole duration from now, by our clock.
        let t0 = Instant::now();
        let mut observed = None;
        let stale_looking = held_by("master-b", -3600, 1);
        let step = me().step(Some(&stale_looking), &mut observed, t0, wall(0));
        assert_eq!(step, Step::Standby { holder: "master-b".into(), expires_in: LEASE });
        // A holder whose clock runs an hour ahead does not get a longer lease either.
        let ahead = held_by("master-b", 3600, 1);
        let mut observed = None;
        me().step(Some(&ahead), &mut observed, t0, wall(0));
        assert!(matches!(me().step(Some(&ahead), &mut observed, t0 + LEASE, wall(15)), Step::Write { .. }));
    }

    #[test]
    fn the_holders_duration_counts_not_ours() {
        let t0 = Instant::now();
        let mut observed = None;
        let mut short = held_by("master-b", 0, 0);
        short.lease_duration_seconds = Some(4);
        me().step(Some(&short), &mut observed, t0, wall(0));
        assert!(matches!(
            me().step(Some(&short), &mut observed, t0 + Duration::from_secs(3), wall(3)),
            Step::Standby { .. }
        ));
        assert!(matches!(
            me().step(Some(&short), &mut observed, t0 + Duration::from_secs(4), wall(4)),
            Step::Write { .. }
        ));
    }

    #[test]
    fn our_own_lease_is_renewed_keeping_acquire_time_and_transitions() {
        let lease = held_by("master-a", 10, 7);
        let (spec, acquiring) = written(me().step(Some(&lease), &mut None, Instant::now(), wall(12)));
        assert!(!acquiring);
        assert_eq!(spec.lease_transitions, Some(7));
        assert_eq!(spec.acquire_time, Some(MicroTime(wall(0))));
        assert_eq!(spec.renew_time, Some(MicroTime(wall(12))));
    }

    #[test]
    fn a_released_lease_is_taken_at_once() {
        let lease = held_by("master-b", 0, 2);
        let released =
            Candidate { identity: "master-b".into(), lease_duration: LEASE }.released(&lease, wall(9)).unwrap();
        assert_eq!(released.holder_identity, None);
        assert_eq!(released.lease_duration_seconds, Some(1));
        assert_eq!(released.lease_transitions, Some(2));
        let (spec, acquiring) = written(me().step(Some(&released), &mut None, Instant::now(), wall(10)));
        assert!(acquiring);
        assert_eq!(spec.lease_transitions, Some(3));
        // An empty holder, as client-go writes it, is no holder either.
        let mut empty = lease.clone();
        empty.holder_identity = Some(String::new());
        assert!(matches!(me().step(Some(&empty), &mut None, Instant::now(), wall(10)), Step::Write { .. }));
    }

    #[test]
    fn only_the_holder_releases() {
        assert_eq!(me().released(&held_by("master-b", 0, 0), wall(1)), None);
        assert!(me().released(&held_by("master-a", 0, 0), wall(1)).is_some());
    }

    #[test]
    fn a_leader_stops_acting_before_a_standby_may_take_over() {
        // The renewal is sent at `sent`; the API server stores it at the
        // earliest then, and a standby observes it at the earliest then too.
        let sent = Instant::now();
        let renew_deadline = Duration::from_secs(10);
        let mut observed = None;
        let renewed = held_by("master-b", 0, 0);
        me().step(Some(&renewed), &mut observed, sent, wall(0));
        let takeover = (0..60)
            .map(|s| sent + Duration::from_millis(500 * s))
            .find(|t| matches!(me().step(Some(&renewed), &mut observed, *t, wall(0)), Step::Write { .. }))
            .unwrap();
        assert!(deadline(sent, renew_deadline) < takeover);
    }

    #[test]
    fn a_fractional_duration_is_rounded_up_on_the_wire() {
        let c = Candidate { identity: "master-a".into(), lease_duration: Duration::from_millis(2500) };
        let Step::Create(spec) = c.step(None, &mut None, Instant::now(), wall(0)) else { panic!() };
        assert_eq!(spec.lease_duration_seconds, Some(3));
    }

    #[test]
    fn unused_lease_fields_are_kept() {
        let mut lease = held_by("master-a", 0, 0);
        lease.strategy = Some("OldestEmulationVersion".into());
        let (spec, _) = written(me().step(Some(&lease), &mut None, Instant::now(), wall(1)));
        assert_eq!(spec.strategy.as_deref(), Some("OldestEmulationVersion"));
    }
}
