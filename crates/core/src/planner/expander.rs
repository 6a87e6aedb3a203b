//! Choosing among node groups that can all host (some of) the pending pods.

use std::cmp::Ordering;

use rand::Rng;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use crate::model::Timestamp;
use crate::policy::Expander;

use super::explain::OptionScore;

/// Index of the chosen option. Options are non-empty and in group order.
///
/// - `least-waste`: least unused CPU, memory and extended resources (GPUs)
///   on the new minions; ties go to the option helping more pods, then the
///   cheaper, then the group name.
/// - `price`: the lowest price of the new minions per pod they host (groups'
///   `price-per-hour`, default their vCPUs), ties broken by least waste. Where
///   flavors differ in price per unit of what the pods need — GPUs above all —
///   least waste is not least cost; this is cluster-autoscaler's `price`
///   expander in spirit.
/// - `priority`: highest group priority, ties broken by least waste.
/// - `random`: uniform among the options, from a generator seeded with the
///   policy seed and `now` — reproducible, yet not the same group every pass.
pub fn choose(expander: Expander, options: &[OptionScore], seed: u64, now: Timestamp) -> usize {
    assert!(!options.is_empty(), "choose() needs at least one option");
    let least_waste = |a: &OptionScore, b: &OptionScore| -> Ordering {
        a.waste
            .total_cmp(&b.waste)
            .then(b.pods.cmp(&a.pods))
            .then(a.price_per_hour.total_cmp(&b.price_per_hour))
            .then(a.group.cmp(&b.group))
    };
    let best_by = |cmp: &dyn Fn(&OptionScore, &OptionScore) -> Ordering| {
        (0..options.len()).min_by(|&a, &b| cmp(&options[a], &options[b])).unwrap_or(0)
    };
    match expander {
        Expander::LeastWaste => best_by(&least_waste),
        Expander::Priority => best_by(&|a, b| b.priority.cmp(&a.priority).then(least_waste(a, b))),
        Expander::Price => best_by(&|a, b| price_per_pod(a).total_cmp(&price_per_pod(b)).then(least_waste(a, b))),
        Expander::Random => {
            let mix = (now.as_nanosecond() as u64).rotate_left(29) ^ 0x9e37_79b9_7f4a_7c15;
            let mut rng = ChaCha8Rng::seed_from_u64(seed ^ mix);
            rng.random_range(0..options.len())
        }
    }
}

fn price_per_pod(o: &OptionScore) -> f64 {
    o.price_per_hour * f64::from(o.new_nodes) / o.pods.max(1) as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    fn option(group: &str, pods: usize, waste: f64, priority: i32) -> OptionScore {
        OptionScore {
            group: group.into(),
            new_nodes: 1,
            pods,
            waste,
            priority,
            price_per_hour: 1.0,
            chosen: false,
            preference: 0,
        }
    }

    #[test]
    fn least_waste_then_pods_then_name() {
        let now: Timestamp = "2024-01-01T00:00:00Z".parse().unwrap();
        let opts = [option("big", 4, 0.6, 0), option("small", 4, 0.1, 0), option("also-small", 9, 0.1, 0)];
        assert_eq!(choose(Expander::LeastWaste, &opts, 0, now), 2);
        let tie = [option("b", 1, 0.5, 0), option("a", 1, 0.5, 0)];
        assert_eq!(choose(Expander::LeastWaste, &tie, 0, now), 1);
    }

    #[test]
    fn priority_wins_over_waste() {
        let now: Timestamp = "2024-01-01T00:00:00Z".parse().unwrap();
        let opts = [option("cheap", 4, 0.1, 0), option("preferred", 4, 0.7, 10), option("preferred2", 4, 0.5, 10)];
        assert_eq!(choose(Expander::Priority, &opts, 0, now), 2);
    }

    #[test]
    fn price_is_per_pod_hosted_then_least_waste() {
        let now: Timestamp = "2024-01-01T00:00:00Z".parse().unwrap();
        let priced = |group: &str, new_nodes: u32, pods: usize, waste: f64, price: f64| OptionScore {
            new_nodes,
            price_per_hour: price,
            ..option(group, pods, waste, 0)
        };
        // One 8-GPU minion at 96/h for 8 one-GPU pods (12 per pod) beats four
        // 2-GPU minions at 104/h each (52 per pod), however little either wastes.
        let opts = [priced("t4", 4, 8, 0.05, 104.0), priced("g2", 1, 8, 0.4, 96.0)];
        assert_eq!(choose(Expander::Price, &opts, 0, now), 1);
        assert_eq!(choose(Expander::LeastWaste, &opts, 0, now), 0);
        let tie = [priced("a", 1, 2, 0.5, 10.0), priced("b", 2, 4, 0.2, 10.0)];
        assert_eq!(choose(Expander::Price, &tie, 0, now), 1, "same price per pod: less waste");
    }

    #[test]
    fn random_is_reproducible_and_varies() {
        let opts: Vec<_> = (0..8).map(|i| option(&format!("g{i}"), 1, 0.5, 0)).collect();
        let t0: Timestamp = "2024-01-01T00:00:00Z".parse().unwrap();
        let picks: Vec<usize> =
            (0..20).map(|s| choose(Expander::Random, &opts, 7, t0 + jiff::SignedDuration::from_secs(s))).collect();
        let again: Vec<usize> =
            (0..20).map(|s| choose(Expander::Random, &opts, 7, t0 + jiff::SignedDuration::from_secs(s))).collect();
        assert_eq!(picks, again);
        assert!(picks.iter().any(|&p| p != picks[0]), "random expander always picked {}", picks[0]);
    }
}
