//! The allocator's own account of the memory the daemon holds (jemalloc's
//! `stats.*`): live data (`allocated`), the pages holding it (`active`), the
//! pages the process keeps, freed ones waiting for decay included
//! (`resident`), and address space kept but returned to the system
//! (`retained`). A resident-set peak says how much; these say whether it was
//! live data (a fix in the data) or pages not yet given back (a fix in the
//! allocator's settings) — issue 22's peak at 5,000 nodes was both guessed
//! at before this was measured.
//!
//! Sampled on a timer (every [`SAMPLE_EVERY`]); the sample with the most
//! resident memory is kept and exported beside the current one. A peak
//! shorter than the interval can fall between two samples: the kernel's
//! `VmHWM` remains the figure for the peak itself.

use std::sync::Arc;
use std::time::Duration;

use super::Metrics;

/// Reading the stats merges every arena's counters: microseconds, so ten a
/// second cost nothing measurable.
pub const SAMPLE_EVERY: Duration = Duration::from_millis(100);

/// One reading of jemalloc's statistics, in bytes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct AllocatorSample {
    pub allocated: u64,
    pub active: u64,
    pub resident: u64,
    pub retained: u64,
}

impl AllocatorSample {
    /// The allocator's figures now, or `None` if jemalloc does not answer
    /// (a build without its statistics).
    pub fn read() -> Option<Self> {
        use tikv_jemalloc_ctl::{epoch, stats};
        // The counters are cached per epoch: advancing refreshes them.
        epoch::advance().ok()?;
        let bytes = |n: usize| n as u64;
        Some(Self {
            allocated: bytes(stats::allocated::read().ok()?),
            active: bytes(stats::active::read().ok()?),
            resident: bytes(stats::resident::read().ok()?),
            retained: bytes(stats::retained::read().ok()?),
        })
    }
}

/// Samples the allocator until the runtime stops, exporting the current
/// figures and those of the sample with the most resident memory so far.
pub fn spawn_sampler(metrics: Arc<Metrics>) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut peak = AllocatorSample::default();
        let mut every = tokio::time::interval(SAMPLE_EVERY);
        every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        loop {
            every.tick().await;
            let Some(now) = AllocatorSample::read() else { return };
            if now.resident >= peak.resident {
                peak = now;
            }
            metrics.set_allocator(now, peak);
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The figures are jemalloc's and consistent with one another, whichever
    /// allocator the test binary itself uses (jemalloc answers for its own heap).
    #[test]
    fn a_sample_reads_consistent_figures() {
        let held: Vec<u8> = vec![1; 8 << 20];
        let s = AllocatorSample::read().expect("jemalloc's statistics");
        assert!(s.active >= s.allocated, "{s:?}");
        assert!(s.resident >= s.active, "{s:?}");
        drop(held);
    }

    #[tokio::test]
    async fn the_exported_peak_is_the_sample_with_the_most_resident_memory() {
        let metrics = Arc::new(Metrics::new());
        let task = spawn_sampler(metrics.clone());
        tokio::time::sleep(SAMPLE_EVERY * 3).await;
        task.abort();
        let text = metrics.encode();
        let value = |series: &str| -> f64 {
            let line = text.lines().find(|l| l.starts_with(series)).unwrap_or_else(|| panic!("{series} in {text}"));
            line.rsplit(' ').next().unwrap().parse().unwrap()
        };
        let resident = value("heatscaler_allocator_bytes{state=\"resident\"}");
        let peak = value("heatscaler_allocator_peak_bytes{state=\"resident\"}");
        assert!(resident > 0.0 && peak >= resident, "{text}");
    }
}
