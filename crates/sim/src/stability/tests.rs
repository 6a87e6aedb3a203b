//! The stability property over generated scenarios, and issue 17's fight
//! loop and docs/unified.md's odd-half loop as fixed regressions.
//!
//! `cargo test -p heatscaler-sim stability` runs seeds 1..=[`SEEDS`] but
//! [`KNOWN_FAILING`]; `HEATSCALER_STABILITY_SEEDS=N` runs every seed of 1..=N
//! instead and `HEATSCALER_STABILITY_SEED=N` re-runs one, printing its
//! scenario and timeline.

use super::{check, check_policy, generate};
use crate::autoscaler::PolicyKind;
use crate::scenario::Scenario;

/// Seeds run by default: the whole property stays well under a minute in a
/// debug build (docs/testing.md has the figure).
const SEEDS: u64 = 40;

/// Seeds of 1..=SEEDS that still break an invariant, left out of the default
/// run and handed on (`HEATSCALER_STABILITY_SEED=N` reproduces one;
/// docs/testing.md says why). 13 and 38 pass since scale-down places a
/// drain's pods where the scheduler binds them, 26 since a pod younger than
/// `min-pod-age` is not evicted by choice. 33 (and 76 of 1..=120) pass
/// since scale-up waits for the room a terminating predecessor frees on the
/// node its recreated replacement fits (issue 17 item 3).
const KNOWN_FAILING: [u64; 0] = [];

fn scenario(text: &str, name: &str) -> Scenario {
    Scenario::parse(text, name).unwrap_or_else(|e| panic!("{e}\n{text}"))
}

fn seeds() -> Vec<u64> {
    if let Some(one) = std::env::var("HEATSCALER_STABILITY_SEED").ok().and_then(|s| s.parse().ok()) {
        return vec![one];
    }
    match std::env::var("HEATSCALER_STABILITY_SEEDS").ok().and_then(|s| s.parse().ok()) {
        Some(n) => (1..=n).collect(),
        None => (1..=SEEDS).filter(|s| !KNOWN_FAILING.contains(s)).collect(),
    }
}

#[test]
fn generated_scenarios_keep_every_invariant() {
    let mut failures = Vec::new();
    let mut exercised = (0u64, 0u32, 0u32);
    // Both heatscaler configurations: as installed (its admission webhook
    // on: recreated pods come back at their recommendation) and without it.
    let runs =
        seeds().into_iter().flat_map(|seed| [(seed, PolicyKind::Heatscaler), (seed, PolicyKind::HeatscalerNoWebhook)]);
    for (seed, kind) in runs {
        let text = generate(seed);
        let sc = scenario(&text, &format!("stability-{seed}.yaml"));
        let (run, checker) = check_policy(&sc, kind);
        let pod = run.pod_level.clone().unwrap_or_default();
        exercised.0 += checker.passes;
        exercised.1 += pod.resizes_requested + pod.recreations;
        exercised.2 += run.node_level.scale_ups + run.node_level.scale_downs;
        if std::env::var("HEATSCALER_STABILITY_SEED").is_ok() {
            // One seed re-run: its scenario and what happened, to read.
            eprintln!("{text}");
            for e in &run.timeline {
                eprintln!("{:>8.0}s {:<12} {}", e.at_secs, e.subject, e.event);
            }
            eprintln!("seed {seed}: {} passes, {pod:?}, {:?}", checker.passes, run.node_level);
        }
        if !checker.violations.is_empty() {
            failures.push(format!(
                "seed {seed}, policy {} (re-run: HEATSCALER_STABILITY_SEED={seed} cargo test -p heatscaler-sim stability::tests::generated):\n  {}\nscenario:\n{text}",
                kind.name(),
                checker.violations.join("\n  ")
            ));
        }
    }
    assert!(failures.is_empty(), "{} seed(s) broke an invariant:\n{}", failures.len(), failures.join("\n"));
    // The property means something only if the runs did pod- and node-level work.
    assert!(exercised.0 > 0 && exercised.1 > 0 && exercised.2 > 0, "nothing exercised: {exercised:?}");
}

#[test]
fn the_generator_is_a_pure_function_of_the_seed_and_makes_valid_scenarios() {
    for seed in 1..=50 {
        assert_eq!(generate(seed), generate(seed));
        scenario(&generate(seed), "generated.yaml");
    }
    assert_ne!(generate(1), generate(2));
}

/// Issue 17's first finding: two minions each running `other` (1500m) and
/// `web` (1000m); web's recommendation rises to about 3000m with
/// `InPlaceOrRecreate` and no admission controller. For six hours the
/// planner must not cycle (scale-up, evict web to move, web back at 1000m,
/// removal, scale-up again).
#[test]
fn the_fight_loop_of_issue_17_settles() {
    let sc = scenario(crate::scenario::FIGHT_LOOP, "fight-loop.yaml");
    let (run, checker) = check(&sc);
    assert!(
        checker.violations.is_empty(),
        "{} violation(s), {} node-level cycle(s):\n{}\n{:?}",
        checker.violations.len(),
        checker.cycles(),
        checker.violations.join("\n"),
        run.node_level
    );
    // Web's growth was acted on.
    let pod = run.pod_level.unwrap_or_default();
    assert!(pod.resizes_requested + pod.recreations > 0, "{pod:?}");
}

/// docs/unified.md's odd half, small: a pod shrunk in place (template 8 GiB,
/// running at its ~700 MiB recommendation) with no admission controller.
/// Judged at its shrunk size, one minion's pods fit on the other: a drain
/// evicted `cache`, its replacement came back at 8 GiB, fit nowhere, and the
/// group grew again — and the new minion, holding one shrunk pod, was
/// drained in turn every `min-pod-age`. Scale-down counts the template's size.
#[test]
fn a_pod_shrunk_in_place_is_not_drained_where_its_template_does_not_fit() {
    let sc = scenario(SHRUNK_IN_PLACE, "shrunk-in-place.yaml");
    let (run, checker) = check(&sc);
    assert!(
        checker.violations.is_empty() && run.node_level.scale_ups == 0,
        "{} violation(s), {} node-level cycle(s):\n{}\n{:?}",
        checker.violations.len(),
        checker.cycles(),
        checker.violations.join("\n"),
        run.node_level
    );
    // cache was shrunk in place: the case is exercised.
    let pod = run.pod_level.unwrap_or_default();
    assert!(pod.resizes_requested > 0, "{pod:?}");
}

const SHRUNK_IN_PLACE: &str = r#"
name: shrunk-in-place
description: >-
  The odd half of docs/unified.md, small: two 16 GiB minions, each running
  `base` (6 GiB) and `cache` (template 8 GiB, using 600 MiB; InPlaceOrRecreate,
  no VPA admission controller). cache is shrunk in place; at its shrunk size
  one minion's pods fit on the other, at its template's 8 GiB they do not.
seed: 1
duration: 8h
sample-interval: 1m
provisioning: {heat-update: 30s, boot: 120s, pod-termination: 5s}
node-groups:
  - name: minions
    min-size: 1
    max-size: 6
    initial-size: 2
    price-per-hour: 0.2
    shape: {allocatable: {cpu: "4", memory: 16Gi}}
workloads:
  - name: base
    pod: {containers: [{name: base, requests: {cpu: "1", memory: 6Gi}}]}
    replicas: 2
  - name: cache
    pod: {containers: [{name: cache, requests: {cpu: 100m, memory: 8Gi}, limits: {memory: 8Gi}}]}
    replicas: 2
    vpa:
      update-mode: InPlaceOrRecreate
      cpu: 50m
      memory: 600Mi
      noise: 0
"#;
