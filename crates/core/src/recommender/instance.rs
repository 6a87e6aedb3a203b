//! One running container (pod + container name), VPA's `ContainerState`: it
//! deduplicates samples and keeps the memory peak of the current aggregation
//! interval, so that each instance adds exactly one memory peak per interval
//! to its workload's [`AggregateState`].

use jiff::{SignedDuration, Timestamp};

use super::aggregate::AggregateState;

#[derive(Clone, Debug, Default, PartialEq)]
pub(crate) struct InstanceState {
    last_cpu_sample: Option<Timestamp>,
    last_memory_sample: Option<Timestamp>,
    /// End (exclusive) of the current memory aggregation interval.
    window_end: Option<Timestamp>,
    /// Largest working set seen in the current interval, bytes.
    memory_peak: i64,
    /// Memory the last OOM kill in the current interval suggests, bytes.
    oom_peak: i64,
}

/// Why a sample or OOM event was not aggregated.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SampleRejected {
    #[error("usage is negative or not a number")]
    Invalid,
    #[error("sample at {at} is not newer than the last one ({last})")]
    OutOfOrder { at: Timestamp, last: Timestamp },
    #[error("OOM kill at {at} is older than the previous memory aggregation interval (ends {window_end})")]
    OomTooOld { at: Timestamp, window_end: Timestamp },
}

/// Parameters of memory aggregation and the OOM bump.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct MemoryRules {
    pub interval: SignedDuration,
    pub oom_bump_up_ratio: f64,
    pub oom_min_bump_up: i64,
}

impl InstanceState {
    pub fn add_cpu(
        &mut self,
        aggregate: &mut AggregateState,
        usage_cores: f64,
        request_cores: f64,
        at: Timestamp,
    ) -> Result<(), SampleRejected> {
        if !usage_cores.is_finite() || usage_cores < 0.0 {
            return Err(SampleRejected::Invalid);
        }
        if let Some(last) = self.last_cpu_sample
            && at <= last
        {
            return Err(SampleRejected::OutOfOrder { at, last });
        }
        aggregate.add_cpu(usage_cores, request_cores, at);
        self.last_cpu_sample = Some(at);
        Ok(())
    }

    pub fn add_memory(
        &mut self,
        aggregate: &mut AggregateState,
        bytes: i64,
        at: Timestamp,
        rules: &MemoryRules,
    ) -> Result<(), SampleRejected> {
        self.add_memory_sample(aggregate, bytes, at, false, rules)
    }

    /// An OOM kill says the container needed more than it had: feed an
    /// artificial peak of `max(used + min bump, used * ratio)`, where `used` is
    /// the larger of the memory request and this interval's observed peak
    /// (not the previous OOM peak, so repeated kills don't compound).
    pub fn record_oom(
        &mut self,
        aggregate: &mut AggregateState,
        at: Timestamp,
        memory_request: i64,
        rules: &MemoryRules,
    ) -> Result<(), SampleRejected> {
        if let Some(window_end) = self.window_end
            && window_end.checked_sub(rules.interval).is_ok_and(|start| at < start)
        {
            return Err(SampleRejected::OomTooOld { at, window_end });
        }
        let used = memory_request.max(self.memory_peak);
        let needed = (used.saturating_add(rules.oom_min_bump_up)).max(scale_bytes(used, rules.oom_bump_up_ratio));
        self.add_memory_sample(aggregate, needed, at, true, rules)
    }

    fn add_memory_sample(
        &mut self,
        aggregate: &mut AggregateState,
        bytes: i64,
        at: Timestamp,
        is_oom: bool,
        rules: &MemoryRules,
    ) -> Result<(), SampleRejected> {
        if bytes < 0 {
            return Err(SampleRejected::Invalid);
        }
        if !is_oom
            && let Some(last) = self.last_memory_sample
            && at < last
        {
            return Err(SampleRejected::OutOfOrder { at, last });
        }
        self.last_memory_sample = Some(at);
        let window_end = *self.window_end.get_or_insert(at);

        let add_new_peak = if at < window_end {
            let old_peak = self.memory_peak.max(self.oom_peak);
            // VPA also requires `old_peak != 0` here, which loses the whole
            // interval's peak when its first sample read 0 bytes (a container
            // just starting); we replace a zero peak like any other.
            if bytes > old_peak {
                aggregate.subtract_memory_peak(old_peak, window_end);
                true
            } else {
                false
            }
        } else {
            // Move to the interval containing `at`.
            let step = rules.interval.as_nanos();
            let whole = at.duration_since(window_end).as_nanos() / step;
            let end = window_end.as_nanosecond() + (whole + 1) * step;
            self.window_end = Some(Timestamp::from_nanosecond(end).unwrap_or(Timestamp::MAX));
            self.memory_peak = 0;
            self.oom_peak = 0;
            true
        };
        if add_new_peak {
            let window_end = self.window_end.expect("set above");
            aggregate.add_memory_peak(bytes, window_end);
            if is_oom {
                self.oom_peak = bytes;
            } else {
                self.memory_peak = bytes;
            }
        }
        Ok(())
    }
}

/// VPA's `ScaleResource` for bytes: truncates, never negative.
fn scale_bytes(bytes: i64, factor: f64) -> i64 {
    super::estimate::amount_from_f64(bytes as f64 * factor)
}
