//! Timestamp arithmetic that never panics: configuration durations are
//! operator input, and a plan must not abort because one is absurdly large.

use std::time::Duration as StdDuration;

use crate::model::Timestamp;
use crate::policy::Duration;

/// `t + d`, saturating at the latest representable instant.
pub fn after(t: Timestamp, d: Duration) -> Timestamp {
    after_std(t, d.get())
}

pub fn after_std(t: Timestamp, d: StdDuration) -> Timestamp {
    t.saturating_add(d).unwrap_or(Timestamp::MAX)
}

/// How long from `since` to `now`; zero when `since` is in the future
/// (clock skew between the API server and us must not look like a timeout).
pub fn elapsed(now: Timestamp, since: Timestamp) -> StdDuration {
    StdDuration::try_from(now.duration_since(since)).unwrap_or_default()
}

/// `30s`, `2m10s`, `1h5m`: compact, for timelines and explanations.
pub fn compact(d: StdDuration) -> String {
    let secs = d.as_secs();
    let (h, m, s) = (secs / 3600, (secs / 60) % 60, secs % 60);
    match (h, m, s) {
        (0, 0, _) if d.subsec_millis() != 0 && secs < 10 => format!("{:.1}s", d.as_secs_f64()),
        (0, 0, s) => format!("{s}s"),
        (0, m, 0) => format!("{m}m"),
        (0, m, s) => format!("{m}m{s}s"),
        (h, 0, 0) => format!("{h}h"),
        (h, m, 0) => format!("{h}h{m}m"),
        (h, m, s) => format!("{h}h{m}m{s}s"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn saturates_and_clamps() {
        let t: Timestamp = "2024-01-01T00:00:00Z".parse().unwrap();
        assert_eq!(after(t, Duration::from_secs(60)), "2024-01-01T00:01:00Z".parse().unwrap());
        assert_eq!(after(t, Duration(StdDuration::MAX)), Timestamp::MAX);
        assert_eq!(elapsed(t, after(t, Duration::from_secs(5))), StdDuration::ZERO);
        assert_eq!(compact(StdDuration::from_secs(130)), "2m10s");
        assert_eq!(compact(StdDuration::from_secs(3600 + 300)), "1h5m");
        assert_eq!(compact(StdDuration::from_millis(200)), "0.2s");
    }
}
