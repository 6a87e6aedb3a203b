//! Stability as a tested property (issue 17, item 3): random mixed
//! scenarios ([`generator`]) run through the whole simulator with
//! heatscaler's planner, every pass checked against the invariants of
//! [`invariants`]; and the issue's own fight loop as a fixed regression.
//! See docs/testing.md ("The stability property").

mod generator;
mod invariants;
#[cfg(test)]
mod tests;

pub use generator::generate;
pub use invariants::Checker;

use crate::autoscaler::PolicyKind;
use crate::engine::run_observed;
use crate::report::Run;
use crate::scenario::Scenario;

/// Runs `sc` under heatscaler without its admission webhook (new pods at
/// their template's size unless the scenario declares VPA's admission
/// controller), checking every pass; returns the run and the checker with
/// what it found.
pub fn check(sc: &Scenario) -> (Run, Checker) {
    check_policy(sc, PolicyKind::HeatscalerNoWebhook)
}

/// [`check`] under one of heatscaler's policies (`Heatscaler`: as
/// installed, its admission webhook on).
pub fn check_policy(sc: &Scenario, kind: PolicyKind) -> (Run, Checker) {
    let mut checker = Checker::new(
        sc.policy.scale_down.delay_after_add.get(),
        sc.policy.pod_resize.updater.min_update_interval.get(),
    );
    let run = run_observed(sc, kind, &mut checker).expect("no trace to fail");
    (run, checker)
}
