//! The history of one container of one workload (VPA's
//! `AggregateContainerState`): a decaying histogram of CPU usage and one of
//! memory peaks, plus what the confidence estimate needs.

use jiff::{SignedDuration, Timestamp};

use super::histogram::{BucketScheme, DecayingHistogram, MIN_SAMPLE_WEIGHT};

#[derive(Clone, Debug, PartialEq)]
pub struct AggregateState {
    /// CPU usage in cores, each sample weighted by the container's request.
    pub(crate) cpu: DecayingHistogram,
    /// Memory peaks in bytes, one per container instance per aggregation interval.
    pub(crate) memory_peaks: DecayingHistogram,
    /// First/last CPU sample and the CPU sample count: the confidence inputs
    /// (memory samples do not count, as in VPA).
    pub(crate) first_sample: Option<Timestamp>,
    pub(crate) last_sample: Option<Timestamp>,
    pub(crate) total_samples: u64,
    pub(crate) created: Timestamp,
}

impl AggregateState {
    pub fn new(cpu_half_life: SignedDuration, memory_half_life: SignedDuration, created: Timestamp) -> Self {
        Self {
            cpu: DecayingHistogram::new(BucketScheme::cpu(), cpu_half_life),
            memory_peaks: DecayingHistogram::new(BucketScheme::memory(), memory_half_life),
            first_sample: None,
            last_sample: None,
            total_samples: 0,
            created,
        }
    }

    /// Weighting by request means that after a request increase the history
    /// gathered under the old, smaller request counts for less: the
    /// recommendation follows a CPU-starved container up quickly.
    pub(crate) fn add_cpu(&mut self, usage_cores: f64, request_cores: f64, at: Timestamp) {
        self.cpu.add(usage_cores, request_cores.max(MIN_SAMPLE_WEIGHT), at);
        if self.last_sample.is_none_or(|last| at > last) {
            self.last_sample = Some(at);
        }
        if self.first_sample.is_none_or(|first| at < first) {
            self.first_sample = Some(at);
        }
        self.total_samples += 1;
    }

    pub(crate) fn add_memory_peak(&mut self, bytes: i64, at: Timestamp) {
        self.memory_peaks.add(bytes as f64, 1.0, at);
    }

    pub(crate) fn subtract_memory_peak(&mut self, bytes: i64, at: Timestamp) {
        self.memory_peaks.subtract(bytes as f64, 1.0, at);
    }

    pub(crate) fn merge(&mut self, other: &AggregateState) {
        self.cpu.merge(&other.cpu);
        self.memory_peaks.merge(&other.memory_peaks);
        if let Some(first) = other.first_sample
            && self.first_sample.is_none_or(|mine| first < mine)
        {
            self.first_sample = Some(first);
        }
        if let Some(last) = other.last_sample
            && self.last_sample.is_none_or(|mine| last > mine)
        {
            self.last_sample = Some(last);
        }
        self.total_samples += other.total_samples;
    }

    /// How many days of history back the estimate, heuristically: the smaller of
    /// the span between first and last sample and the sample count normalised to
    /// one per minute, both in units of `interval` (VPA's confidence interval,
    /// 24 h). A steady stream of one sample a minute for N days gives N.
    pub fn confidence(&self, interval: SignedDuration) -> f64 {
        let span = match (self.first_sample, self.last_sample) {
            (Some(first), Some(last)) => last.duration_since(first),
            _ => SignedDuration::ZERO,
        };
        let lifespan = span.as_secs_f64() / interval.as_secs_f64();
        let samples = self.total_samples as f64 / (interval.as_secs_f64() / 60.0);
        lifespan.min(samples)
    }

    /// No sample for a whole memory aggregation window (or never any sample
    /// and created that long ago): the workload container is gone or idle and
    /// its history is dropped.
    pub fn is_expired(&self, now: Timestamp, window: SignedDuration) -> bool {
        match self.last_sample {
            Some(last) if self.total_samples > 0 => now.duration_since(last) >= window,
            _ => now.duration_since(self.created) >= window,
        }
    }

    pub fn cpu_histogram(&self) -> &DecayingHistogram {
        &self.cpu
    }

    pub fn memory_peak_histogram(&self) -> &DecayingHistogram {
        &self.memory_peaks
    }

    pub fn total_samples(&self) -> u64 {
        self.total_samples
    }

    pub fn first_sample(&self) -> Option<Timestamp> {
        self.first_sample
    }

    pub fn last_sample(&self) -> Option<Timestamp> {
        self.last_sample
    }

    /// Bytes this state occupies, heap included.
    pub fn footprint_bytes(&self) -> usize {
        std::mem::size_of::<Self>() + self.cpu.histogram().heap_bytes() + self.memory_peaks.histogram().heap_bytes()
    }
}
