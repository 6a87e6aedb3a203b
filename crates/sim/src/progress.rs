//! How far a simulation has got, for a front end to show: a week of a trace
//! takes a minute or more, and the simulator itself prints nothing. Reported
//! in simulated time, about a thousand times a run, from the runs' threads.

use std::time::Duration;

/// Told how far the runs of a simulation have got.
pub trait Progress: Sync {
    /// Run `run` (the index of its policy in the comparison) has simulated
    /// `done` of `total`.
    fn advanced(&self, run: usize, done: Duration, total: Duration);
}

/// Nobody is watching.
#[derive(Clone, Copy, Debug, Default)]
pub struct Silent;

impl Progress for Silent {
    fn advanced(&self, _run: usize, _done: Duration, _total: Duration) {}
}

/// Reports a run's simulated time at most every thousandth of its length,
/// so the event loop pays one comparison per event.
pub(crate) struct Ticker<'p> {
    progress: &'p dyn Progress,
    run: usize,
    total: Duration,
    step: Duration,
    next: Duration,
}

impl<'p> Ticker<'p> {
    pub(crate) fn new(progress: &'p dyn Progress, run: usize, total: Duration) -> Self {
        let step = (total / 1000).max(Duration::from_millis(1));
        Self { progress, run, total, step, next: Duration::ZERO }
    }

    pub(crate) fn at(&mut self, done: Duration) {
        if done >= self.next {
            self.progress.advanced(self.run, done.min(self.total), self.total);
            self.next = done + self.step;
        }
    }

    pub(crate) fn finished(&mut self) {
        self.progress.advanced(self.run, self.total, self.total);
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use super::*;

    #[derive(Default)]
    struct Seen(Mutex<Vec<(usize, Duration)>>);

    impl Progress for Seen {
        fn advanced(&self, run: usize, done: Duration, _total: Duration) {
            self.0.lock().unwrap().push((run, done));
        }
    }

    #[test]
    fn a_run_is_reported_about_a_thousand_times_and_ends_at_its_length() {
        let seen = Seen::default();
        let total = Duration::from_secs(3600);
        let mut t = Ticker::new(&seen, 1, total);
        for ms in (0..=3_600_000u64).step_by(100) {
            t.at(Duration::from_millis(ms));
        }
        t.finished();
        let seen = seen.0.into_inner().unwrap();
        assert!((1000..=1002).contains(&seen.len()), "{}", seen.len());
        assert!(seen.iter().all(|(run, _)| *run == 1));
        assert!(seen.windows(2).all(|w| w[0].1 <= w[1].1), "never backwards");
        assert_eq!(seen.last().unwrap().1, total);
    }
}
