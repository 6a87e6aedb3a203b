//! Exponentially bucketed histograms, plain and decaying: the data structure
//! of the VPA recommender (`util/histogram.go`, `util/histogram_options.go`,
//! `util/decaying_histogram.go`), reimplemented.
//!
//! A histogram never stores samples, only one weight per bucket, so its size is
//! fixed by the bucket scheme whatever the number of samples: this is what keeps
//! usage history bounded per container.

use jiff::{SignedDuration, Timestamp};

/// Bucket `i > 0` starts at `first * (ratio^i - 1) / (ratio - 1)`: every bucket is
/// `ratio` times wider than the one before, so the relative error of a
/// percentile is the same (5 %) from 10 millicores to 1000 cores.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct BucketScheme {
    num_buckets: usize,
    first_bucket_size: f64,
    ratio: f64,
    /// Buckets lighter than this count as empty (VPA: `0.001 * minSampleWeight`),
    /// so that decayed-away history stops pinning the min/max bucket.
    epsilon: f64,
}

/// VPA's `minSampleWeight`: CPU samples weigh at least this many cores' worth.
pub const MIN_SAMPLE_WEIGHT: f64 = 0.1;
/// VPA's `epsilon`.
pub const EPSILON: f64 = 0.001 * MIN_SAMPLE_WEIGHT;
/// VPA's `DefaultHistogramBucketSizeGrowth`: each bucket 5 % wider than the previous.
pub const BUCKET_GROWTH: f64 = 0.05;

impl BucketScheme {
    /// Buckets covering `[0, max_value]` (the last one is open-ended).
    pub fn exponential(max_value: f64, first_bucket_size: f64, ratio: f64, epsilon: f64) -> Self {
        assert!(
            max_value > 0.0 && first_bucket_size > 0.0 && ratio > 1.0 && epsilon > 0.0,
            "invalid exponential bucket scheme"
        );
        let num_buckets = ((max_value * (ratio - 1.0) / first_bucket_size + 1.0).ln() / ratio.ln()).ceil() as usize + 1;
        Self { num_buckets, first_bucket_size, ratio, epsilon }
    }

    /// CPU in cores: first bucket 0.01 core, up to 1000 cores (176 buckets).
    pub fn cpu() -> Self {
        Self::exponential(1000.0, 0.01, 1.0 + BUCKET_GROWTH, EPSILON)
    }

    /// Memory in bytes: first bucket 10 MB (10^7), up to 1 TB (10^12) (176 buckets).
    pub fn memory() -> Self {
        Self::exponential(1e12, 1e7, 1.0 + BUCKET_GROWTH, EPSILON)
    }

    pub fn num_buckets(&self) -> usize {
        self.num_buckets
    }

    pub fn epsilon(&self) -> f64 {
        self.epsilon
    }

    /// The bucket holding `value`: the inverse of [`Self::bucket_start`].
    pub fn bucket_of(&self, value: f64) -> usize {
        if value.is_nan() || value < self.first_bucket_size {
            return 0;
        }
        let bucket = ((value * (self.ratio - 1.0) / self.first_bucket_size + 1.0).ln() / self.ratio.ln()) as usize;
        bucket.min(self.num_buckets - 1)
    }

    pub fn bucket_start(&self, bucket: usize) -> f64 {
        assert!(bucket < self.num_buckets, "bucket {bucket} out of range");
        if bucket == 0 {
            return 0.0;
        }
        self.first_bucket_size * (self.ratio.powi(bucket as i32) - 1.0) / (self.ratio - 1.0)
    }
}

/// Weights per bucket. `min_bucket..=max_bucket` spans every bucket that is
/// not empty (when there is one), which keeps percentile and scaling loops short.
#[derive(Clone, Debug, PartialEq)]
pub struct Histogram {
    scheme: BucketScheme,
    weights: Box<[f64]>,
    total_weight: f64,
    min_bucket: usize,
    max_bucket: usize,
}

/// Largest weight a bucket has in a checkpoint (VPA's `MaxCheckpointWeight`):
/// weights are stored as integers relative to the heaviest bucket.
pub const MAX_CHECKPOINT_WEIGHT: u32 = 10_000;

impl Histogram {
    pub fn new(scheme: BucketScheme) -> Self {
        Self {
            scheme,
            weights: vec![0.0; scheme.num_buckets].into_boxed_slice(),
            total_weight: 0.0,
            min_bucket: scheme.num_buckets - 1,
            max_bucket: 0,
        }
    }

    pub fn scheme(&self) -> &BucketScheme {
        &self.scheme
    }

    pub fn total_weight(&self) -> f64 {
        self.total_weight
    }

    pub fn add(&mut self, value: f64, weight: f64) {
        assert!(weight >= 0.0, "sample weight must be non-negative");
        let bucket = self.scheme.bucket_of(value);
        self.weights[bucket] += weight;
        self.total_weight += weight;
        if self.weights[bucket] >= self.scheme.epsilon {
            self.min_bucket = self.min_bucket.min(bucket);
            self.max_bucket = self.max_bucket.max(bucket);
        }
    }

    /// Removes weight previously added for `value`; never drives a bucket negative.
    pub fn subtract(&mut self, value: f64, weight: f64) {
        assert!(weight >= 0.0, "sample weight must be non-negative");
        let bucket = self.scheme.bucket_of(value);
        let weight = if weight > self.weights[bucket] - self.scheme.epsilon { self.weights[bucket] } else { weight };
        self.weights[bucket] -= weight;
        self.total_weight -= weight;
        self.update_min_max();
    }

    pub fn merge(&mut self, other: &Histogram) {
        assert_eq!(self.scheme, other.scheme, "can't merge histograms with different bucket schemes");
        if other.is_empty() {
            return;
        }
        for bucket in other.min_bucket..=other.max_bucket {
            self.weights[bucket] += other.weights[bucket];
        }
        self.total_weight += other.total_weight;
        self.min_bucket = self.min_bucket.min(other.min_bucket);
        self.max_bucket = self.max_bucket.max(other.max_bucket);
    }

    pub fn is_empty(&self) -> bool {
        self.weights[self.min_bucket] < self.scheme.epsilon
    }

    /// The end of the bucket where the cumulative weight reaches `percentile`
    /// of the total (the start of the last, open-ended bucket); 0 when empty.
    /// Rounding up to the bucket end errs towards giving more, never less.
    pub fn percentile(&self, percentile: f64) -> f64 {
        if self.is_empty() {
            return 0.0;
        }
        let threshold = percentile * self.total_weight;
        let mut partial = 0.0;
        let mut bucket = self.min_bucket;
        while bucket < self.max_bucket {
            partial += self.weights[bucket];
            if partial >= threshold {
                break;
            }
            bucket += 1;
        }
        if bucket < self.scheme.num_buckets - 1 {
            self.scheme.bucket_start(bucket + 1)
        } else {
            self.scheme.bucket_start(bucket)
        }
    }

    /// Multiplies every weight by `factor`; percentiles do not change.
    pub fn scale(&mut self, factor: f64) {
        assert!(factor >= 0.0, "scale factor must be non-negative");
        if self.min_bucket <= self.max_bucket {
            for w in &mut self.weights[self.min_bucket..=self.max_bucket] {
                *w *= factor;
            }
        }
        self.total_weight *= factor;
        self.update_min_max();
    }

    fn update_min_max(&mut self) {
        let eps = self.scheme.epsilon;
        let last = self.scheme.num_buckets - 1;
        while self.weights[self.min_bucket] < eps && self.min_bucket < last {
            self.min_bucket += 1;
        }
        while self.weights[self.max_bucket] < eps && self.max_bucket > 0 {
            self.max_bucket -= 1;
        }
    }

    /// Non-empty buckets as integer weights relative to the heaviest one
    /// (which gets [`MAX_CHECKPOINT_WEIGHT`]); buckets that round to zero are
    /// dropped. Lossy by design: a checkpoint is a few hundred bytes.
    pub fn checkpoint_weights(&self) -> Vec<(u32, u32)> {
        if self.is_empty() {
            return Vec::new();
        }
        let heaviest = self.weights[self.min_bucket..=self.max_bucket].iter().copied().fold(0.0, f64::max);
        let ratio = f64::from(MAX_CHECKPOINT_WEIGHT) / heaviest;
        (self.min_bucket..=self.max_bucket)
            .filter_map(|b| {
                let w = round_half_up(self.weights[b] * ratio);
                (w > 0.0).then_some((b as u32, w as u32))
            })
            .collect()
    }

    /// Adds checkpointed weights, rescaled so they sum to `total_weight`.
    pub fn load_checkpoint_weights(&mut self, weights: &[(u32, u32)], total_weight: f64) -> Result<(), String> {
        if !total_weight.is_finite() || total_weight < 0.0 {
            return Err(format!("total weight {total_weight} is not a finite non-negative number"));
        }
        let mut sum: u64 = 0;
        for &(bucket, w) in weights {
            if bucket as usize >= self.scheme.num_buckets {
                return Err(format!("bucket {bucket} is beyond the last bucket {}", self.scheme.num_buckets - 1));
            }
            sum += u64::from(w);
        }
        if sum == 0 {
            return Ok(());
        }
        let ratio = total_weight / sum as f64;
        for &(bucket, w) in weights {
            let b = bucket as usize;
            self.weights[b] += f64::from(w) * ratio;
            if self.weights[b] >= self.scheme.epsilon {
                self.min_bucket = self.min_bucket.min(b);
                self.max_bucket = self.max_bucket.max(b);
            }
        }
        self.total_weight += total_weight;
        Ok(())
    }

    /// Heap bytes held (the bucket array).
    pub fn heap_bytes(&self) -> usize {
        self.weights.len() * std::mem::size_of::<f64>()
    }
}

/// VPA's `round`: half away from negative infinity.
pub(crate) fn round_half_up(x: f64) -> f64 {
    (x + 0.5).floor()
}

/// When `2^((t - reference) / half_life)` would exceed `2^MAX_DECAY_EXPONENT`
/// the reference is moved forward (VPA's `maxDecayExponent`).
pub const MAX_DECAY_EXPONENT: i32 = 100;

/// A histogram whose samples lose half their weight every `half_life`.
///
/// Rather than decaying old weights (which would touch every bucket on every
/// sample), a new sample is *inflated* by `2^((t - reference) / half_life)`;
/// only relative weights matter to a percentile, so this is the same thing.
/// When the inflation would overflow, the reference moves forward and all
/// weights are scaled down once.
#[derive(Clone, Debug, PartialEq)]
pub struct DecayingHistogram {
    histogram: Histogram,
    half_life: SignedDuration,
    /// Always a whole multiple of `half_life` since the Unix epoch; `None`
    /// until the first sample (VPA: the zero time).
    reference: Option<Timestamp>,
}

impl DecayingHistogram {
    pub fn new(scheme: BucketScheme, half_life: SignedDuration) -> Self {
        assert!(half_life.is_positive(), "half-life must be positive");
        Self { histogram: Histogram::new(scheme), half_life, reference: None }
    }

    pub fn histogram(&self) -> &Histogram {
        &self.histogram
    }

    pub fn half_life(&self) -> SignedDuration {
        self.half_life
    }

    pub fn reference(&self) -> Option<Timestamp> {
        self.reference
    }

    pub fn add(&mut self, value: f64, weight: f64, at: Timestamp) {
        let factor = self.decay_factor(at);
        self.histogram.add(value, weight * factor);
    }

    pub fn subtract(&mut self, value: f64, weight: f64, at: Timestamp) {
        let factor = self.decay_factor(at);
        self.histogram.subtract(value, weight * factor);
    }

    pub fn percentile(&self, percentile: f64) -> f64 {
        self.histogram.percentile(percentile)
    }

    pub fn is_empty(&self) -> bool {
        self.histogram.is_empty()
    }

    /// Adds `other`'s samples, first bringing the older reference up to the newer.
    pub fn merge(&mut self, other: &DecayingHistogram) {
        assert_eq!(self.half_life, other.half_life, "can't merge decaying histograms with different half-lives");
        match (self.reference, other.reference) {
            (_, None) => self.histogram.merge(&other.histogram),
            (None, Some(r)) => {
                self.reference = Some(r);
                self.histogram.merge(&other.histogram);
            }
            (Some(mine), Some(theirs)) if mine < theirs => {
                self.shift_reference(theirs);
                self.histogram.merge(&other.histogram);
            }
            (Some(mine), Some(theirs)) if theirs < mine => {
                let mut aligned = other.clone();
                aligned.shift_reference(mine);
                self.histogram.merge(&aligned.histogram);
            }
            _ => self.histogram.merge(&other.histogram),
        }
    }

    /// The same histogram with its reference moved up to `at` (rounded to a
    /// multiple of the half-life) and its weights scaled down to match: the
    /// same percentiles, but the newest samples weigh about 1 instead of up
    /// to `2^MAX_DECAY_EXPONENT`. A checkpoint is written so, because whoever
    /// reads it inflates its own new samples from the checkpoint's reference
    /// with its own half-life: a reader with a longer half-life (a VPA
    /// recommender, 24 h, reading heatscaler's 4 h memory peaks) would
    /// otherwise find the checkpoint outweighing its own samples for weeks.
    pub fn rebased(&self, at: Timestamp) -> Self {
        let mut h = self.clone();
        if h.reference.is_some_and(|r| r < round_to_multiple(at, h.half_life)) {
            h.shift_reference(at);
        }
        h
    }

    /// Restores checkpointed state; `self` must be empty.
    pub fn load_checkpoint(
        &mut self,
        weights: &[(u32, u32)],
        total_weight: f64,
        reference: Option<Timestamp>,
    ) -> Result<(), String> {
        self.histogram.load_checkpoint_weights(weights, total_weight)?;
        self.reference = reference;
        Ok(())
    }

    fn decay_factor(&mut self, at: Timestamp) -> f64 {
        let horizon = |r: Timestamp| self.half_life.checked_mul(MAX_DECAY_EXPONENT).and_then(|d| r.checked_add(d).ok());
        let reference = match self.reference {
            // No horizon (beyond year 9999): the exponent cannot grow that far.
            Some(r) if horizon(r).is_none_or(|h| at <= h) => r,
            _ => {
                self.shift_reference(at);
                self.reference.expect("just set")
            }
        };
        2f64.powf(ratio(at.duration_since(reference), self.half_life))
    }

    fn shift_reference(&mut self, to: Timestamp) {
        let new_reference = round_to_multiple(to, self.half_life);
        if let Some(old) = self.reference {
            let exponent = round_half_up(ratio(old.duration_since(new_reference), self.half_life));
            // 2^exponent; an exponent below -1074 underflows to 0, clearing history
            // that is too old to matter, as in VPA.
            self.histogram.scale(2f64.powi(exponent.clamp(-2000.0, 2000.0) as i32));
        }
        self.reference = Some(new_reference);
    }
}

fn ratio(a: SignedDuration, b: SignedDuration) -> f64 {
    a.as_nanos() as f64 / b.as_nanos() as f64
}

/// Rounds to the nearest multiple of `step` since the Unix epoch, halves up
/// (Go's `Time.Round` counts from year 1; for whole-day steps both agree).
fn round_to_multiple(t: Timestamp, step: SignedDuration) -> Timestamp {
    let nanos = t.as_nanosecond();
    let step_n = step.as_nanos();
    let rem = nanos.rem_euclid(step_n);
    let rounded = if rem + rem < step_n { nanos - rem } else { nanos - rem + step_n };
    Timestamp::from_nanosecond(rounded).unwrap_or(t)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vpa_bucket_schemes() {
        let cpu = BucketScheme::cpu();
        assert_eq!(cpu.num_buckets(), 176);
        assert_eq!(BucketScheme::memory().num_buckets(), 176);
        assert_eq!(cpu.bucket_start(0), 0.0);
        assert!((cpu.bucket_start(1) - 0.01).abs() < 1e-12);
        assert!((cpu.bucket_start(2) - 0.0205).abs() < 1e-12);
        for b in 0..cpu.num_buckets() {
            let start = cpu.bucket_start(b);
            // The start of a bucket belongs to it, the point just below to the previous one.
            assert_eq!(cpu.bucket_of(start * (1.0 + 1e-9) + 1e-12), b, "bucket {b}");
            if b > 0 {
                assert_eq!(cpu.bucket_of(start * (1.0 - 1e-9)), b - 1, "bucket {b}");
            }
        }
        assert_eq!(cpu.bucket_of(5000.0), 175);
        assert_eq!(cpu.bucket_of(-1.0), 0);
    }

    #[test]
    fn exponential_scheme_matches_vpas_own_example() {
        // VPA's histogram_options_test: max 100, first bucket 10, ratio 2.
        let s = BucketScheme::exponential(100.0, 10.0, 2.0, EPSILON);
        assert_eq!(s.num_buckets(), 5);
        let starts: Vec<f64> = (0..5).map(|b| s.bucket_start(b)).collect();
        assert_eq!(starts, [0.0, 10.0, 30.0, 70.0, 150.0]);
        let buckets: Vec<usize> = [-1.0, 0.0, 9.99, 10.0, 29.99, 30.0, 69.99, 70.0, 149.99, 150.0, 1e9]
            .into_iter()
            .map(|v| s.bucket_of(v))
            .collect();
        assert_eq!(buckets, [0, 0, 0, 1, 1, 2, 2, 3, 3, 4, 4]);
    }

    #[test]
    fn decay_halves_weight_per_half_life() {
        let hour = SignedDuration::from_hours(1);
        let t0: Timestamp = "2026-01-01T00:00:00Z".parse().unwrap();
        let mut h = DecayingHistogram::new(BucketScheme::cpu(), hour);
        // 1.0 at t0, then 2.0 two half-lives later: weights 1 and 4.
        h.add(1.0, 1.0, t0);
        h.add(2.0, 1.0, t0 + hour * 2);
        let scheme = *h.histogram().scheme();
        let end = |v: f64| scheme.bucket_start(scheme.bucket_of(v) + 1);
        assert_eq!(h.percentile(0.2), end(1.0));
        assert_eq!(h.percentile(0.21), end(2.0));
    }

    #[test]
    fn percentile_is_the_end_of_the_bucket_reaching_it() {
        let scheme = BucketScheme::cpu();
        let mut h = Histogram::new(scheme);
        assert_eq!(h.percentile(0.9), 0.0);
        for v in [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0, 10.0] {
            h.add(v, 1.0);
        }
        let p50 = h.percentile(0.5);
        assert_eq!(p50, scheme.bucket_start(scheme.bucket_of(5.0) + 1));
        assert_eq!(h.percentile(1.0), scheme.bucket_start(scheme.bucket_of(10.0) + 1));
        assert_eq!(h.percentile(0.0), scheme.bucket_start(scheme.bucket_of(1.0) + 1));
    }

    #[test]
    fn subtract_and_scale_keep_min_max_honest() {
        let mut h = Histogram::new(BucketScheme::memory());
        h.add(1e8, 1.0);
        h.add(5e8, 1.0);
        h.subtract(5e8, 1.0);
        assert_eq!(h.percentile(1.0), h.scheme().bucket_start(h.scheme().bucket_of(1e8) + 1));
        h.subtract(1e8, 5.0);
        assert!(h.is_empty());
        h.add(2e8, 1.0);
        h.scale(1e-6);
        assert!(h.is_empty(), "weights below epsilon count as empty");
    }

    #[test]
    fn checkpoint_round_trip_keeps_percentiles() {
        let mut h = Histogram::new(BucketScheme::cpu());
        for i in 0..500 {
            h.add(0.05 + f64::from(i) * 0.003, 1.0 + f64::from(i % 7));
        }
        let weights = h.checkpoint_weights();
        assert!(weights.iter().any(|&(_, w)| w == MAX_CHECKPOINT_WEIGHT));
        let mut back = Histogram::new(BucketScheme::cpu());
        back.load_checkpoint_weights(&weights, h.total_weight()).unwrap();
        for p in [0.5, 0.9, 0.95, 0.99] {
            assert_eq!(back.percentile(p), h.percentile(p), "p{p}");
        }
        assert!((back.total_weight() - h.total_weight()).abs() < 1e-9);
        let err = back.load_checkpoint_weights(&[(176, 1)], 1.0).unwrap_err();
        assert!(err.contains("bucket 176"), "{err}");
    }

    #[test]
    fn reference_shift_keeps_relative_weights() {
        let hour = SignedDuration::from_hours(1);
        let t0: Timestamp = "2026-01-01T00:00:00Z".parse().unwrap();
        let mut shifted = DecayingHistogram::new(BucketScheme::cpu(), hour);
        shifted.add(1.0, 1.0, t0);
        // 150 half-lives later: beyond MAX_DECAY_EXPONENT, the reference moves.
        let later = t0 + hour * 150;
        shifted.add(2.0, 1.0, later);
        assert_eq!(shifted.reference(), Some(later));
        // The first sample now weighs 2^-150 of the second: gone below epsilon.
        assert_eq!(
            shifted.percentile(0.0),
            shifted.histogram().scheme().bucket_start(shifted.histogram().scheme().bucket_of(2.0) + 1)
        );

        let mut h = DecayingHistogram::new(BucketScheme::cpu(), hour);
        h.add(1.0, 1.0, t0);
        h.add(2.0, 1.0, t0 + hour * 99);
        let w_before = h.histogram().total_weight();
        h.add(3.0, 0.0, t0 + hour * 101); // zero weight: only moves the reference
        let w_after = h.histogram().total_weight();
        assert!(h.reference().unwrap() > t0);
        let expected = w_before * 2f64.powi(-101);
        assert!((w_after - expected).abs() <= expected * 1e-12, "{w_after} vs {expected}");
    }

    #[test]
    fn merge_aligns_references() {
        let day = SignedDuration::from_hours(24);
        let t0: Timestamp = "2026-01-01T00:00:00Z".parse().unwrap();
        let mut a = DecayingHistogram::new(BucketScheme::memory(), day);
        a.add(1e8, 1.0, t0);
        let mut b = DecayingHistogram::new(BucketScheme::memory(), day);
        b.add(1e9, 1.0, t0 + day * 200);
        let mut ab = a.clone();
        ab.merge(&b);
        let mut ba = b.clone();
        ba.merge(&a);
        assert_eq!(ab.reference(), ba.reference());
        assert_eq!(ab.percentile(0.5), ba.percentile(0.5));
        assert_eq!(ab.percentile(0.0), b.percentile(0.0), "the 200-day-old sample has decayed away");
    }

    #[test]
    fn rounding_to_half_life_multiples() {
        let day = SignedDuration::from_hours(24);
        let t: Timestamp = "2026-03-04T11:59:59Z".parse().unwrap();
        assert_eq!(round_to_multiple(t, day).to_string(), "2026-03-04T00:00:00Z");
        let t: Timestamp = "2026-03-04T12:00:00Z".parse().unwrap();
        assert_eq!(round_to_multiple(t, day).to_string(), "2026-03-05T00:00:00Z");
    }
}
