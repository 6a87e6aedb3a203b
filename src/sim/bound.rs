//! The fluid lower bound on what any autoscaler must pay to run the demand:
//! at each instant, the fewest minions whose total allocatable covers the
//! requests of every pod that should be running (running and pending),
//! integrated over time.
//!
//! It ignores placement constraints and bin-packing losses, boots instantly
//! and knows the future, so no policy can beat it; the ratio of a run's cost
//! to it says how much a policy leaves on the table.
//!
//! - **One shape** (every group offers the same allocatable at the same
//!   price): exact integers — `max(Σ min-size, ⌈max over resources r of
//!   demand_r / allocatable_r⌉)`, capped at `Σ max-size`.
//! - **Several shapes**: a cost bound. The min-size minions are paid anyway;
//!   beyond what they offer, each resource costs at least the cheapest price
//!   per unit of it among the shapes, so the bound is
//!   `Σ min · price + max over r of (demand_r − min capacity_r)⁺ · min_g(price_g / allocatable_g,r)`.
//!
//! A minion's allocatable is its shape's minus the DaemonSet pods it will run
//! (they come with every minion). Pods that run on nodes outside the groups,
//! DaemonSet pods, pods being deleted and pods no shape could ever host are
//! not demand.

use std::collections::HashSet;

use serde::Serialize;

use crate::model::{NodeShape, Pod, Resources};

use super::scenario::{Scenario, resources};

#[derive(Clone, Debug)]
struct Capacity {
    /// Allocatable minus the DaemonSet pods every minion of the group runs.
    effective: Resources,
    price: f64,
    min: u32,
    max: u32,
}

/// The bound at one instant.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize)]
pub struct Instant {
    /// Minions (single shape only).
    pub nodes: Option<u32>,
    pub cost_per_hour: f64,
    /// The demand in minions of the single shape, unrounded (for plots); with
    /// several shapes, the demand in cost per hour.
    pub demand: f64,
}

#[derive(Clone, Debug)]
pub struct BoundModel {
    groups: Vec<Capacity>,
    static_nodes: HashSet<String>,
    /// All groups share one effective shape and price: the exact integer bound.
    single: bool,
}

impl BoundModel {
    pub fn new(sc: &Scenario) -> Self {
        let groups: Vec<Capacity> = sc
            .node_groups
            .iter()
            .map(|g| {
                let shape = NodeShape::from_template(&g.shape);
                let mut effective = shape.allocatable.clone();
                for d in &sc.daemonsets {
                    if d.node_selector.iter().all(|(k, v)| shape.labels.get(k) == Some(v)) {
                        let mut r = resources(&d.requests);
                        r.pods = 1;
                        effective -= &r;
                    }
                }
                let price = g.price_per_hour.unwrap_or(shape.allocatable.cpu_milli as f64 / 1000.0);
                Capacity { effective, price, min: g.min_size, max: g.max_size }
            })
            .collect();
        let single = groups.windows(2).all(|w| w[0].effective == w[1].effective && w[0].price == w[1].price);
        Self { groups, static_nodes: sc.nodes.iter().map(|n| n.name.clone()).collect(), single }
    }

    pub fn single_shape(&self) -> bool {
        self.single && !self.groups.is_empty()
    }

    /// Whether `pod` is demand the groups must carry.
    pub fn counts(&self, pod: &Pod) -> bool {
        if pod.is_daemonset() || pod.mirror || pod.deletion.is_some() || pod.is_terminal() {
            return false;
        }
        if pod.node_name.as_ref().is_some_and(|n| self.static_nodes.contains(n)) {
            return false;
        }
        self.groups.iter().any(|g| amounts(&pod.requests).all(|(name, v)| v <= g.effective.get(name)))
    }

    /// The bound for a total demand.
    pub fn at(&self, demand: &Resources) -> Instant {
        if self.groups.is_empty() {
            return Instant::default();
        }
        if self.single {
            let g = &self.groups[0];
            let (min, max) = self.groups.iter().fold((0u32, 0u32), |(a, b), g| (a + g.min, b + g.max));
            let mut nodes = 0i64;
            let mut fluid = 0.0f64;
            for (name, d) in amounts(demand) {
                let e = g.effective.get(name);
                if d > 0 && e > 0 {
                    nodes = nodes.max((d + e - 1) / e);
                    fluid = fluid.max(d as f64 / e as f64);
                }
            }
            let nodes = (nodes.clamp(0, i64::from(u32::MAX)) as u32).max(min).min(max);
            return Instant { nodes: Some(nodes), cost_per_hour: f64::from(nodes) * g.price, demand: fluid };
        }
        let fixed: f64 = self.groups.iter().map(|g| f64::from(g.min) * g.price).sum();
        let mut beyond = 0.0f64;
        let mut fluid = 0.0f64;
        for (name, d) in amounts(demand) {
            let held: i64 = self.groups.iter().map(|g| i64::from(g.min) * g.effective.get(name).max(0)).sum();
            let unit = self
                .groups
                .iter()
                .filter(|g| g.effective.get(name) > 0)
                .map(|g| g.price / g.effective.get(name) as f64)
                .fold(f64::INFINITY, f64::min);
            if unit.is_finite() {
                beyond = beyond.max((d - held).max(0) as f64 * unit);
                fluid = fluid.max(d as f64 * unit);
            }
        }
        Instant { nodes: None, cost_per_hour: fixed + beyond, demand: fluid }
    }
}

/// Every resource amount of a bundle, by its Kubernetes name.
fn amounts(r: &Resources) -> impl Iterator<Item = (&str, i64)> {
    [
        (Resources::CPU, r.cpu_milli),
        (Resources::MEMORY, r.memory),
        (Resources::EPHEMERAL_STORAGE, r.ephemeral_storage),
        (Resources::PODS, r.pods),
    ]
    .into_iter()
    .chain(r.extended.iter().map(|(k, v)| (k.as_str(), *v)))
}

#[cfg(test)]
mod tests {
    use super::super::cluster::{Cluster, Origin, PodTemplate};
    use super::super::scenario::PodSpec;
    use super::*;

    fn scenario(groups: &str) -> Scenario {
        let text = format!(
            "name: b\nduration: 1h\ndaemonsets: [{{name: proxy, requests: {{cpu: 100m, memory: 100Mi}}}}]\nnode-groups:\n{groups}"
        );
        Scenario::parse(&text, "b.yaml").unwrap()
    }

    #[test]
    fn one_shape_is_exact_integers_net_of_daemonsets() {
        let m = BoundModel::new(&scenario(
            "  - {name: g, min-size: 1, max-size: 10, initial-size: 1, price-per-hour: 2, shape: {allocatable: {cpu: 4100m, memory: 8292Mi, pods: '11'}}}\n",
        ));
        assert!(m.single_shape());
        // 4 cores, 8 GiB, 10 pods per minion after the DaemonSet.
        let mut d = Resources::new(8_001, 1 << 30);
        d.pods = 3;
        let b = m.at(&d);
        assert_eq!(b.nodes, Some(3), "8.001 cores need three 4-core minions");
        assert_eq!(b.cost_per_hour, 6.0);
        assert!((b.demand - 8.001 / 4.0).abs() < 1e-12);
        d.pods = 21;
        assert_eq!(m.at(&d).nodes, Some(3), "21 pod slots need three minions too");
        d.pods = 31;
        assert_eq!(m.at(&d).nodes, Some(4), "pods is a resource like any other");
        assert_eq!(m.at(&Resources::default()).nodes, Some(1), "never below min-size");
        assert_eq!(m.at(&Resources::new(1_000_000, 0)).nodes, Some(10), "never above max-size");
    }

    #[test]
    fn several_shapes_pay_the_cheapest_unit_of_each_resource() {
        let m = BoundModel::new(&scenario(
            "  - {name: cpu, min-size: 0, max-size: 10, initial-size: 0, price-per-hour: 1, shape: {allocatable: {cpu: 8100m, memory: 4196Mi}}}\n  - {name: mem, min-size: 1, max-size: 10, initial-size: 1, price-per-hour: 1, shape: {allocatable: {cpu: 2100m, memory: 32868Mi}}}\n",
        ));
        assert!(!m.single_shape());
        // CPU: 1/8 per core from `cpu`; memory: 1/32 per GiB from `mem`. The
        // `mem` minion at min-size holds 2 cores and 32 GiB and costs 1.
        let b = m.at(&Resources::new(18_000, 16 << 30));
        assert_eq!(b.nodes, None);
        assert!((b.cost_per_hour - (1.0 + 16.0 / 8.0)).abs() < 1e-9, "{b:?}");
    }

    #[test]
    fn only_hostable_workload_pods_count() {
        let m = BoundModel::new(&scenario(
            "  - {name: g, min-size: 0, max-size: 3, initial-size: 0, shape: {allocatable: {cpu: '2', memory: 4Gi}}}\n",
        ));
        let mut cluster = Cluster::default();
        let mut pod = |requests: &str| {
            let spec: PodSpec =
                crate::yaml::from_str(&format!("{{containers: [{{name: c, requests: {requests}}}]}}")).unwrap();
            let template = PodTemplate::from_spec(&spec, "default", "p", Some("ReplicaSet"));
            let uid = cluster.add_pod(&template, "p".into(), super::super::engine::epoch(), Origin::OneOff(0));
            cluster.pod(&uid).unwrap().clone()
        };
        assert!(m.counts(&pod("{cpu: 500m}")));
        assert!(!m.counts(&pod("{cpu: '4'}")), "bigger than any minion");
        assert!(!m.counts(&pod("{cpu: 500m, nvidia.com/gpu: '1'}")), "no group offers GPUs");
    }
}
