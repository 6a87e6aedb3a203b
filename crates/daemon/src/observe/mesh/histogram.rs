//! Cumulative bucket rates merged across series and their quantile, as
//! PromQL's `histogram_quantile` computes it — done here because the series
//! are merged by placement (same node or not), which Prometheus cannot see.

/// Bucket upper bounds (`le`) to cumulative rates, summed over series.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Buckets {
    /// Sorted by bound; `+Inf` last when present.
    bounds: Vec<(f64, f64)>,
}

impl Buckets {
    pub fn add(&mut self, le: f64, rate: f64) {
        if !rate.is_finite() || le.is_nan() {
            return;
        }
        match self.bounds.binary_search_by(|(b, _)| b.total_cmp(&le)) {
            Ok(i) => self.bounds[i].1 += rate,
            Err(i) => self.bounds.insert(i, (le, rate)),
        }
    }

    pub fn merge(&mut self, other: &Buckets) {
        for &(le, rate) in &other.bounds {
            self.add(le, rate);
        }
    }

    pub fn is_empty(&self) -> bool {
        self.bounds.is_empty()
    }

    /// The `q` quantile: linear interpolation inside the bucket holding the
    /// rank, the lowest bucket starting at 0, a rank in `+Inf` answered with
    /// the highest finite bound. `None` with no observations or no `+Inf`
    /// bucket (a broken histogram; Prometheus answers NaN).
    pub fn quantile(&self, q: f64) -> Option<f64> {
        let (last_le, total) = *self.bounds.last()?;
        if last_le != f64::INFINITY || total <= 0.0 {
            return None;
        }
        // Rates of cumulative counters can dip across buckets when series
        // reset at different moments; Prometheus makes them monotonic too.
        let mut monotonic = Vec::with_capacity(self.bounds.len());
        let mut max = 0.0f64;
        for &(le, c) in &self.bounds {
            max = max.max(c);
            monotonic.push((le, max));
        }
        let total = max;
        let rank = q * total;
        let i = monotonic.iter().position(|&(_, c)| c >= rank)?;
        let (le, count) = monotonic[i];
        if le == f64::INFINITY {
            return Some(if i == 0 { 0.0 } else { monotonic[i - 1].0 });
        }
        let (start, below) = if i == 0 { (0.0f64.min(le), 0.0) } else { monotonic[i - 1] };
        if count == below {
            return Some(le);
        }
        Some(start + (le - start) * (rank - below) / (count - below))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn of(pairs: &[(f64, f64)]) -> Buckets {
        let mut b = Buckets::default();
        for &(le, r) in pairs {
            b.add(le, r);
        }
        b
    }

    #[test]
    fn interpolates_within_the_bucket_like_histogram_quantile() {
        // 100 obs/s: 50 ≤ 5 ms, 90 ≤ 10 ms, all ≤ 25 ms.
        let b = of(&[(5.0, 50.0), (10.0, 90.0), (25.0, 100.0), (f64::INFINITY, 100.0)]);
        assert_eq!(b.quantile(0.5), Some(5.0));
        // Rank 99 lies 9/10 of the way through (10, 25].
        assert!((b.quantile(0.99).unwrap() - 23.5).abs() < 1e-9);
        // First bucket starts at zero.
        assert!((b.quantile(0.25).unwrap() - 2.5).abs() < 1e-9);
    }

    #[test]
    fn merging_series_adds_bucket_rates() {
        let mut near = of(&[(5.0, 10.0), (f64::INFINITY, 10.0)]);
        near.merge(&of(&[(5.0, 0.0), (50.0, 10.0), (f64::INFINITY, 10.0)]));
        assert_eq!(near.quantile(0.5), Some(5.0));
        assert!(near.quantile(0.99).unwrap() > 49.0);
    }

    #[test]
    fn the_inf_bucket_answers_the_highest_bound_and_empty_is_none() {
        assert_eq!(of(&[(5.0, 0.0), (f64::INFINITY, 4.0)]).quantile(0.99), Some(5.0));
        assert_eq!(of(&[(5.0, 0.0), (f64::INFINITY, 0.0)]).quantile(0.99), None);
        assert_eq!(of(&[(5.0, 3.0)]).quantile(0.99), None);
    }
}
