//! The pods that arrived lately, remembered across passes for
//! `replace-with-cheaper`: a node's spare room is what the next arrivals land
//! on, and a replacement that fits only the pods already there leaves them to
//! wait for a boot. The snapshot shows only the pods still present; arrivals
//! that came and went between replacements (on the Alibaba GPU week, 32-core
//! pods that run under three minutes, less than a boot) are seen only by
//! watching every pass.
//!
//! History starts at the first pass watched: pods already present then are
//! not taken as arrivals (a restarted daemon, or a simulation's first
//! instant, would otherwise see every pod of the cluster arrive at once). It
//! is kept for a day, the longest cycle demand is known to repeat on; the
//! replacement looks back no further than its own rent-or-buy horizon.

use std::sync::Arc;
use std::time::Duration as StdDuration;

use crate::model::{Pod, Timestamp};
use crate::planner::Cx;
use crate::planner::memory::Arrivals;

/// How far back arrivals are kept.
const HISTORY: StdDuration = StdDuration::from_secs(24 * 3600);

/// Records the pods created since the previous pass (not DaemonSet or mirror
/// pods: they come with nodes, not with demand) and forgets those older than
/// the history; with the knob off, keeps nothing.
pub(super) fn record(cx: &Cx<'_>, arrivals: &mut Arrivals) {
    if !cx.policy.scale_down.replace_with_cheaper {
        *arrivals = Arrivals::default();
        return;
    }
    if let Some(since) = arrivals.seen_until {
        let mut new: Vec<&Pod> = cx
            .ix
            .pods()
            .map(|(_, p)| p)
            .filter(|p| p.created > since && p.created <= cx.now && !p.is_daemonset() && !p.mirror)
            .collect();
        new.sort_by_key(|p| p.created);
        arrivals.pods.extend(new.into_iter().map(|p| Arc::new(p.clone())));
    }
    arrivals.seen_until = Some(cx.now);
    while arrivals.pods.front().is_some_and(|p| older_than(cx.now, p.created, HISTORY)) {
        arrivals.pods.pop_front();
    }
}

/// Whether `at` is more than `span` before `now`.
pub(super) fn older_than(now: Timestamp, at: Timestamp, span: StdDuration) -> bool {
    let ago = now.duration_since(at);
    !ago.is_negative() && ago.unsigned_abs() > span
}

/// The arrivals within `span` of one another, each group starting at one
/// arrival: the sets of pods that needed room before a minion asked for them
/// could have booted. `pods` oldest first.
pub(super) fn within<'p, 'a>(pods: &'p [&'a Pod], span: StdDuration) -> impl Iterator<Item = &'p [&'a Pod]> {
    (0..pods.len()).map(move |start| {
        let end = pods[start..]
            .iter()
            .position(|p| older_than(p.created, pods[start].created, span))
            .map_or(pods.len(), |k| start + k);
        &pods[start..end]
    })
}
