//! Wall-clock time in the Kubernetes wire formats, and the time scale that
//! lets tests shorten every wait kubesim imposes (grace periods, start delays).

use std::time::Duration;

pub use jiff::Timestamp;

pub fn now() -> Timestamp {
    Timestamp::now()
}

/// `metav1.Time`: RFC 3339 with whole seconds.
pub fn format_time(t: Timestamp) -> String {
    t.strftime("%Y-%m-%dT%H:%M:%SZ").to_string()
}

/// `metav1.MicroTime`: RFC 3339 with microseconds.
pub fn format_micro(t: Timestamp) -> String {
    t.strftime("%Y-%m-%dT%H:%M:%S.%6fZ").to_string()
}

/// RFC 3339 with nanoseconds, as the kubelet summary API writes them.
pub fn format_nanos(t: Timestamp) -> String {
    t.strftime("%Y-%m-%dT%H:%M:%S.%9fZ").to_string()
}

pub fn parse_time(text: &str) -> Option<Timestamp> {
    text.parse().ok()
}

pub fn now_string() -> String {
    format_time(now())
}

/// Scales the delays kubesim imposes; 1.0 is real time, 0.01 makes a
/// 30 s grace period last 300 ms.
#[derive(Clone, Copy, Debug)]
pub struct TimeScale(pub f64);

impl TimeScale {
    pub fn scale(&self, d: Duration) -> Duration {
        d.mul_f64(self.0.max(0.0))
    }

    pub fn seconds(&self, secs: i64) -> Duration {
        self.scale(Duration::from_secs(secs.max(0) as u64))
    }
}

/// Human-readable age the way kubectl's printers show it ("5m", "3h20m", "2d").
pub fn human_duration(d: Duration) -> String {
    let secs = d.as_secs() as i64;
    if secs < 120 {
        return format!("{secs}s");
    }
    let minutes = secs / 60;
    if minutes < 10 {
        let s = secs % 60;
        return if s == 0 { format!("{minutes}m") } else { format!("{minutes}m{s}s") };
    }
    if minutes < 180 {
        return format!("{minutes}m");
    }
    let hours = minutes / 60;
    if hours < 8 {
        let m = minutes % 60;
        return if m == 0 { format!("{hours}h") } else { format!("{hours}h{m}m") };
    }
    if hours < 48 {
        return format!("{hours}h");
    }
    if hours < 192 {
        let h = hours % 24;
        let days = hours / 24;
        return if h == 0 { format!("{days}d") } else { format!("{days}d{h}h") };
    }
    let days = hours / 24;
    if days < 365 * 2 {
        return format!("{days}d");
    }
    let years = days / 365;
    if years < 8 {
        let d = days % 365;
        return if d == 0 { format!("{years}y") } else { format!("{years}y{d}d") };
    }
    format!("{years}y")
}

/// Age of an RFC 3339 timestamp relative to now, or "<unknown>".
pub fn age(timestamp: Option<&str>) -> String {
    match timestamp.and_then(parse_time) {
        Some(t) => {
            let elapsed = now().duration_since(t);
            if elapsed.is_negative() {
                return "0s".to_string();
            }
            human_duration(Duration::try_from(elapsed).unwrap_or_default())
        }
        None => "<unknown>".to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_round_trip() {
        let t: Timestamp = "2025-03-01T10:20:30.123456789Z".parse().unwrap();
        assert_eq!(format_time(t), "2025-03-01T10:20:30Z");
        assert_eq!(format_micro(t), "2025-03-01T10:20:30.123456Z");
        assert_eq!(format_nanos(t), "2025-03-01T10:20:30.123456789Z");
        assert_eq!(human_duration(Duration::from_secs(61)), "61s");
        assert_eq!(human_duration(Duration::from_secs(310)), "5m10s");
        assert_eq!(human_duration(Duration::from_secs(3 * 3600 + 1200)), "3h20m");
    }
}
