//! The progress display of `heatscaler simulate`: a week of a trace is a
//! minute or more of computing, and without it the command said nothing
//! until the end. One bar per policy in simulated time (the runs go side by
//! side, both levels in each), drawn on standard error — only
//! when a person is watching it (a terminal): a file, a pipe or a CI log gets
//! no progress bytes at all.

use std::io::IsTerminal;
use std::time::Duration;

use heatscaler_sim::{PolicyKind, Progress};
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

/// Whether to draw: stderr is a terminal that can redraw a line (`TERM=dumb`
/// ones, such as Emacs' shell buffers, cannot).
pub fn wanted(stderr_is_terminal: bool, term: Option<&str>) -> bool {
    stderr_is_terminal && term != Some("dumb")
}

/// Whether to draw for this process's standard error.
pub fn wanted_here() -> bool {
    wanted(std::io::stderr().is_terminal(), std::env::var("TERM").ok().as_deref())
}

/// The bars, or nothing at all when not [`wanted`].
pub struct Display {
    multi: MultiProgress,
    runs: Vec<ProgressBar>,
}

impl Display {
    pub fn new(draw: bool, policies: &[PolicyKind]) -> Self {
        let target = if draw { ProgressDrawTarget::stderr() } else { ProgressDrawTarget::hidden() };
        let multi = MultiProgress::with_draw_target(target);
        let style = ProgressStyle::with_template("{prefix:>12} [{bar:40}] {msg} ({elapsed}, ~{eta} left)")
            .expect("a valid template")
            .progress_chars("=> ");
        let bar = |prefix: &str| {
            let b = multi.add(ProgressBar::new(1).with_style(style.clone()).with_prefix(prefix.to_string()));
            if draw {
                // The elapsed time moves while a long pass computes.
                b.enable_steady_tick(Duration::from_millis(200));
            }
            b
        };
        let runs = policies.iter().map(|p| bar(p.name())).collect();
        Self { multi, runs }
    }

    /// Removes the bars, so the report is printed on a clean screen.
    pub fn finish(self) {
        for b in &self.runs {
            b.finish_and_clear();
        }
        let _ = self.multi.clear();
    }
}

impl Progress for Display {
    fn advanced(&self, run: usize, done: Duration, total: Duration) {
        let Some(bar) = self.runs.get(run) else { return };
        bar.set_length(total.as_secs().max(1));
        bar.set_position(done.as_secs());
        bar.set_message(format!("{} of {} simulated", whole_minutes(done), whole_minutes(total)));
    }
}

fn whole_minutes(d: Duration) -> humantime::FormattedDuration {
    humantime::format_duration(Duration::from_secs(d.as_secs() / 60 * 60))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn progress_is_drawn_only_on_a_terminal_that_can_redraw() {
        assert!(wanted(true, Some("xterm-256color")));
        assert!(wanted(true, None));
        assert!(!wanted(true, Some("dumb")));
        assert!(!wanted(false, Some("xterm-256color")));
        assert!(!wanted(false, None));
    }

    #[test]
    fn minutes_are_whole() {
        assert_eq!(whole_minutes(Duration::from_secs(3 * 86400 + 3725)).to_string(), "3days 1h 2m");
    }
}
