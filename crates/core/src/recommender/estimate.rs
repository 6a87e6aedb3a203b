//! From history to numbers (VPA's `logic/estimator.go` and the estimator
//! chain of `logic/recommender.go`): a percentile of the histogram, plus a
//! safety margin, widened by a confidence multiplier while history is short,
//! and never below the per-container share of the pod minimum.

use jiff::SignedDuration;

use super::aggregate::AggregateState;

/// VPA's `MaxResourceAmount` (10^14 millicores or bytes): what an unbounded
/// estimate (no history yet) saturates to.
pub const MAX_RESOURCE_AMOUNT: i64 = 100_000_000_000_000;

/// VPA's `--confidence-interval-cpu` / `--confidence-interval-memory` default:
/// history is measured in days.
pub const CONFIDENCE_INTERVAL: SignedDuration = SignedDuration::from_hours(24);

/// Upper bound × `(1 + 1/confidence)^1`: ×3 after 12 h, ×2 after a day, ×1.14
/// after a week; unbounded with no history, so a young workload is never
/// shrunk because of a guess.
pub const UPPER_BOUND_CONFIDENCE: (f64, f64) = (1.0, 1.0);
/// Lower bound × `(1 + 0.001/confidence)^-2`: ×0 with no history, ×0.6 after
/// 5 minutes, ×0.95 after an hour; so a young workload is not grown early either.
pub const LOWER_BOUND_CONFIDENCE: (f64, f64) = (0.001, -2.0);

/// An amount in millicores (CPU) or bytes (memory) from a float: truncated,
/// clamped to `[0, MAX_RESOURCE_AMOUNT]`; NaN (0 × ∞) reads as 0.
pub(crate) fn amount_from_f64(x: f64) -> i64 {
    if x.is_nan() || x <= 0.0 {
        0
    } else if x >= MAX_RESOURCE_AMOUNT as f64 {
        MAX_RESOURCE_AMOUNT
    } else {
        x as i64
    }
}

pub(crate) fn scale(amount: i64, factor: f64) -> i64 {
    amount_from_f64(amount as f64 * factor)
}

/// CPU millicores and memory bytes for one container.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Amounts {
    pub cpu_milli: i64,
    pub memory: i64,
}

/// The three estimates for a container, before policy.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Estimates {
    pub target: Amounts,
    pub lower_bound: Amounts,
    pub upper_bound: Amounts,
}

/// Estimator parameters, from configuration.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct EstimatorSettings {
    pub target_cpu_percentile: f64,
    pub target_memory_percentile: f64,
    pub lower_bound_percentile: f64,
    pub upper_bound_percentile: f64,
    pub safety_margin_fraction: f64,
    pub pod_min_cpu_milli: i64,
    pub pod_min_memory: i64,
}

impl EstimatorSettings {
    /// The estimates for one container of a pod with `containers_per_pod`
    /// containers (the pod minimum is split evenly between them).
    pub fn estimate(&self, state: &AggregateState, containers_per_pod: usize) -> Estimates {
        let fraction = 1.0 / containers_per_pod.max(1) as f64;
        let min = Amounts {
            cpu_milli: scale(self.pod_min_cpu_milli, fraction),
            memory: scale(self.pod_min_memory, fraction),
        };
        let confidence = state.confidence(CONFIDENCE_INTERVAL);
        let margin = |a: i64| a + scale(a, self.safety_margin_fraction);
        let widen =
            |a: i64, (multiplier, exponent): (f64, f64)| scale(a, (1.0 + multiplier / confidence).powf(exponent));
        let percentiles = |cpu_p: f64, mem_p: f64| Amounts {
            cpu_milli: margin(amount_from_f64(state.cpu.percentile(cpu_p) * 1000.0)),
            memory: margin(amount_from_f64(state.memory_peaks.percentile(mem_p))),
        };
        let at_least_min =
            |a: Amounts| Amounts { cpu_milli: a.cpu_milli.max(min.cpu_milli), memory: a.memory.max(min.memory) };

        let target = percentiles(self.target_cpu_percentile, self.target_memory_percentile);
        let lower = percentiles(self.lower_bound_percentile, self.lower_bound_percentile);
        let upper = percentiles(self.upper_bound_percentile, self.upper_bound_percentile);
        let lower = Amounts {
            cpu_milli: widen(lower.cpu_milli, LOWER_BOUND_CONFIDENCE),
            memory: widen(lower.memory, LOWER_BOUND_CONFIDENCE),
        };
        let upper = Amounts {
            cpu_milli: widen(upper.cpu_milli, UPPER_BOUND_CONFIDENCE),
            memory: widen(upper.memory, UPPER_BOUND_CONFIDENCE),
        };
        Estimates { target: at_least_min(target), lower_bound: at_least_min(lower), upper_bound: at_least_min(upper) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn amounts_truncate_and_saturate() {
        assert_eq!(amount_from_f64(1.9), 1);
        assert_eq!(amount_from_f64(-3.0), 0);
        assert_eq!(amount_from_f64(f64::INFINITY), MAX_RESOURCE_AMOUNT);
        assert_eq!(amount_from_f64(0.0 * f64::INFINITY), 0);
        assert_eq!(scale(1000, 1.15), 1150);
    }
}
