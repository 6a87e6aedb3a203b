//! A pair's cost judged over the `raise-after` period, not window by window.
//!
//! A co-location pair's cost is requests/s × crossing share × (cross-node p99
//! − same-node p99), each p99 from one window's calls. For a pair whose
//! sub-call is long (a call that itself calls on), that difference is the
//! difference of two p99s of 10–16 ms for a hop that differs by under one:
//! from window to window it swings by a factor of ten around a mean well above
//! `min-latency-cost` (docs/co-scheduling.md, hs-cosched9's trace). Asking
//! every window to clear the threshold for `raise-after` then never advises
//! the busiest pairs: one quiet window resets them. An alerting rule is
//! written the other way — `for:` on an expression that is itself a range
//! aggregate (`rate(x[5m]) > t`) — and so is this: the advisor keeps each
//! candidate's cost per pass over the last `raise-after`, and a pair
//! qualifies while the time-weighted mean over that range is above the
//! threshold; `raise-after` then asks the mean to stay there.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::model::Timestamp;

use super::super::time::elapsed;

/// One pass's cost of a candidate, in ms of tail latency per second.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct CostSample {
    pub at: Timestamp,
    pub cost: f64,
}

/// Each candidate's costs over the range: the subject's record gets this
/// pass's cost; subjects with no candidate this pass are forgotten (their
/// pair stopped calling or left scope: no evidence is left to pool), and
/// samples older than the range are dropped — all but the newest of them,
/// which covers the range's start.
pub(super) fn record(
    history: &mut BTreeMap<String, Vec<CostSample>>,
    now: Timestamp,
    range: Duration,
    costs: &[(&str, f64)],
) {
    history.retain(|subject, _| costs.iter().any(|(s, _)| s == subject));
    for &(subject, cost) in costs {
        let samples = history.entry(subject.to_string()).or_default();
        samples.retain(|s| s.at <= now);
        samples.push(CostSample { at: now, cost });
        let before = samples.iter().rposition(|s| elapsed(now, s.at) >= range).unwrap_or(0);
        samples.drain(..before);
    }
}

/// The time-weighted mean cost over the last `range`. A mesh's window ends
/// where it is read, so each sample stands for the time since the one
/// before it; the first sample alone, with nothing before it, counts only
/// while it is the whole record.
pub(super) fn mean(samples: &[CostSample], now: Timestamp, range: Duration) -> f64 {
    let mut weighted = 0.0;
    let mut span = 0.0;
    for pair in samples.windows(2) {
        let (earlier, later) = (pair[0], pair[1]);
        let covered = elapsed(later.at, earlier.at).min(range.saturating_sub(elapsed(now, later.at)));
        let secs = covered.as_secs_f64();
        weighted += later.cost * secs;
        span += secs;
    }
    if span > 0.0 { weighted / span } else { samples.last().map_or(0.0, |s| s.cost) }
}
