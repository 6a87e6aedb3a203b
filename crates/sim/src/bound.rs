//! The fluid lower bound on what any autoscaler must pay to run the demand:
//! at each instant, the cheapest capacity that covers the requests of every
//! pod that should be running (running and pending), integrated over time.
//!
//! It ignores bin-packing losses, boots instantly and knows the future, so no
//! policy can beat it; the ratio of a run's cost to it says how much a policy
//! leaves on the table.
//!
//! - **One shape** (every group offers the same allocatable at the same
//!   price): exact integers — `max(Σ min-size, ⌈max over resources r of
//!   demand_r / allocatable_r⌉)`, capped at `Σ max-size`.
//! - **Several shapes**: a linear relaxation over the group shapes. Pods are
//!   sorted into classes by the groups whose minions could host them
//!   (resources, taints, node selector and required node affinity against the
//!   group's shape): a pod requesting GPUs only ever counts on GPU groups. The
//!   bound is the cheapest fractional mix of minions `x_g ∈ [min_g, max_g]`
//!   such that each resource of each class is carried by the groups that
//!   class may use: `Σ_g z_{c,g,r} = demand_{c,r}` and
//!   `Σ_c z_{c,g,r} ≤ x_g · allocatable_{g,r}`; cost `Σ_g price_g · x_g`.
//!   Each resource of a class may split differently between its groups,
//!   which only makes the bound lower (a relaxation of placing whole pods).
//!   Demand beyond every group's `max-size` is left uncovered (as the policies
//!   must leave it pending). Solved with `good_lp` (microlp, pure Rust), once
//!   per distinct demand (cached).
//!
//! A minion's allocatable is its shape's minus the DaemonSet pods it will run
//! (they come with every minion). Pods that run on nodes outside the groups,
//! DaemonSet pods, pods being deleted and pods no shape could ever host are
//! not demand.

use std::borrow::Cow;
use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::Arc;

use good_lp::{Expression, ProblemVariables, Solution, SolverModel, Variable, constraint, variable};
use serde::Serialize;

use heatscaler_core::model::{NodeShape, Placement, Pod, Resources};
use heatscaler_core::planner::scheduling::{SchedNode, check_node};

use super::scenario::{Scenario, resources};

#[derive(Clone, Debug)]
struct Capacity {
    /// Allocatable minus the DaemonSet pods every minion of the group runs.
    effective: Resources,
    shape: NodeShape,
    price: f64,
    min: u32,
    max: u32,
}

impl Capacity {
    /// An empty minion of the group, with what DaemonSets leave of it.
    fn template(&self) -> SchedNode<'_> {
        SchedNode {
            name: Cow::Borrowed("template"),
            labels: &self.shape.labels,
            taints: Cow::Borrowed(&self.shape.taints),
            unschedulable: false,
            allocatable: self.effective.clone(),
            requested: Resources::default(),
            pods: Vec::new(),
            excluded: false,
        }
    }
}

/// The bound at one instant.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize)]
pub struct Instant {
    /// Minions (single shape only).
    pub nodes: Option<u32>,
    pub cost_per_hour: f64,
    /// The demand in minions of the single shape, unrounded (for plots); with
    /// several shapes, the cost per hour of the cheapest mix without the
    /// min-size minions.
    pub demand: f64,
}

/// Requests of the pods that count, per class of groups that may host them.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Demand {
    by_class: Vec<Resources>,
}

impl Demand {
    pub fn add(&mut self, class: usize, r: &Resources) {
        if self.by_class.len() <= class {
            self.by_class.resize(class + 1, Resources::default());
        }
        self.by_class[class] += r;
    }

    pub fn remove(&mut self, class: usize, r: &Resources) {
        self.by_class[class] -= r;
    }

    /// Classes seen so far (some may be empty).
    pub fn classes(&self) -> usize {
        self.by_class.len()
    }

    pub fn class(&self, c: usize) -> Resources {
        self.by_class.get(c).cloned().unwrap_or_default()
    }

    pub fn total(&self) -> Resources {
        let mut t = Resources::default();
        for r in &self.by_class {
            t += r;
        }
        t
    }
}

/// Solves cached per demand; the cache is dropped when it grows past this.
const CACHE_LIMIT: usize = 200_000;

#[derive(Clone, Debug)]
pub struct BoundModel {
    groups: Vec<Capacity>,
    names: Vec<String>,
    static_nodes: HashSet<String>,
    /// All groups share one effective shape and price: the exact integer bound.
    single: bool,
    /// Every resource some group offers, in a fixed order.
    resources: Vec<String>,
    /// Which groups may host a placement (before resources).
    placements: HashMap<Arc<Placement>, Vec<bool>>,
    /// Classes: the groups that may host the pods of the class.
    classes: Vec<Vec<bool>>,
    class_ids: HashMap<Vec<bool>, usize>,
    cache: HashMap<Vec<i64>, (Instant, Vec<f64>)>,
    /// Distinct demands solved as linear programs (the rest came from the
    /// cache), and the wall time spent solving them.
    pub solves: u64,
    pub solve_time: std::time::Duration,
}

impl BoundModel {
    pub fn new(sc: &Scenario) -> Self {
        let groups: Vec<Capacity> = sc
            .node_groups
            .iter()
            .map(|g| {
                let shape = g.shape.shape();
                let mut effective = shape.allocatable.clone();
                for d in &sc.daemonsets {
                    if d.node_selector.iter().all(|(k, v)| shape.labels.get(k) == Some(v)) {
                        let mut r = resources(&d.requests);
                        r.pods = 1;
                        effective -= &r;
                    }
                }
                let price = g.price_per_hour.unwrap_or(shape.allocatable.cpu_milli as f64 / 1000.0);
                Capacity { effective, shape, price, min: g.min_size, max: g.max_size }
            })
            .collect();
        let single = groups.windows(2).all(|w| w[0].effective == w[1].effective && w[0].price == w[1].price);
        let mut names: BTreeSet<String> =
            [Resources::CPU, Resources::MEMORY, Resources::EPHEMERAL_STORAGE, Resources::PODS]
                .into_iter()
                .map(str::to_string)
                .collect();
        for g in &groups {
            names.extend(g.effective.extended.keys().cloned());
        }
        Self {
            groups,
            names: sc.node_groups.iter().map(|g| g.name.clone()).collect(),
            static_nodes: sc.nodes.iter().map(|n| n.name.clone()).collect(),
            single,
            resources: names.into_iter().collect(),
            placements: HashMap::new(),
            classes: Vec::new(),
            class_ids: HashMap::new(),
            cache: HashMap::new(),
            solves: 0,
            solve_time: std::time::Duration::ZERO,
        }
    }

    pub fn single_shape(&self) -> bool {
        self.single && !self.groups.is_empty()
    }

    /// The class of `pod` when it is demand the groups must carry: the
    /// groups whose minions could host it, empty, on their own.
    pub fn counts(&mut self, pod: &Pod) -> Option<usize> {
        if pod.is_daemonset() || pod.mirror || pod.deletion.is_some() || pod.is_terminal() {
            return None;
        }
        if pod.node_name.as_ref().is_some_and(|n| self.static_nodes.contains(n)) {
            return None;
        }
        let groups = &self.groups;
        let allowed = self
            .placements
            .entry(pod.placement.clone())
            .or_insert_with(|| groups.iter().map(|g| check_node(pod, &g.template()).is_ok()).collect());
        let class: Vec<bool> = groups
            .iter()
            .zip(allowed.iter())
            .map(|(g, ok)| *ok && amounts(&pod.requests).all(|(name, v)| v <= g.effective.get(name)))
            .collect();
        if !class.iter().any(|c| *c) {
            return None;
        }
        let next = self.classes.len();
        let id = *self.class_ids.entry(class.clone()).or_insert(next);
        if id == next {
            self.classes.push(class);
        }
        Some(id)
    }

    /// Whether two demands are the same amounts per class (an extended
    /// resource at zero and one absent are the same).
    pub fn same(&self, a: &Demand, b: &Demand) -> bool {
        (0..a.classes().max(b.classes()))
            .all(|c| self.resources.iter().all(|name| a.class(c).get(name) == b.class(c).get(name)))
    }

    /// Why no group's minion could ever host `pod`, when that is why it is
    /// not demand: per distinct reason, the groups it applies to.
    pub fn why_unhostable(&mut self, pod: &Pod) -> Option<String> {
        if pod.is_daemonset() || pod.mirror || pod.deletion.is_some() || pod.is_terminal() || self.groups.is_empty() {
            return None;
        }
        if pod.node_name.as_ref().is_some_and(|n| self.static_nodes.contains(n)) || self.counts(pod).is_some() {
            return None;
        }
        let mut reasons: Vec<(String, Vec<&str>)> = Vec::new();
        for (g, name) in self.groups.iter().zip(&self.names) {
            let reason = match check_node(pod, &g.template()) {
                Err(unfit) => unfit.to_string(),
                Ok(()) => match amounts(&pod.requests).find(|(r, v)| *v > g.effective.get(r)) {
                    Some((r, v)) => format!("Insufficient {r} (requests {v}, a minion has {})", g.effective.get(r)),
                    None => continue,
                },
            };
            match reasons.iter_mut().find(|(r, _)| *r == reason) {
                Some((_, groups)) => groups.push(name),
                None => reasons.push((reason, vec![name])),
            }
        }
        let all = self.groups.len();
        Some(
            reasons
                .into_iter()
                .map(|(r, groups)| match groups.len() == all {
                    true => format!("{r} (every group)"),
                    false => format!("{r} (groups {})", groups.join(", ")),
                })
                .collect::<Vec<_>>()
                .join("; "),
        )
    }

    /// The bound for a demand.
    pub fn at(&mut self, demand: &Demand) -> Instant {
        if self.groups.is_empty() {
            return Instant::default();
        }
        if self.single {
            return self.single_at(&demand.total());
        }
        self.solve(demand).0
    }

    /// The cheapest fractional number of minions per group for a demand
    /// (several shapes; one shape: the integer bound on the first group).
    pub fn mix(&mut self, demand: &Demand) -> Vec<f64> {
        if self.single {
            let mut out = vec![0.0; self.groups.len()];
            if let Some(first) = out.first_mut() {
                *first = f64::from(self.single_at(&demand.total()).nodes.unwrap_or(0));
            }
            return out;
        }
        self.solve(demand).1
    }

    fn single_at(&self, demand: &Resources) -> Instant {
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
        Instant { nodes: Some(nodes), cost_per_hour: f64::from(nodes) * g.price, demand: fluid }
    }

    fn solve(&mut self, demand: &Demand) -> (Instant, Vec<f64>) {
        let mut key: Vec<i64> = Vec::new();
        for (c, r) in demand.by_class.iter().enumerate() {
            if self.resources.iter().any(|name| r.get(name) != 0) {
                key.push(c as i64);
                key.extend(self.resources.iter().map(|name| r.get(name)));
            }
        }
        if let Some(hit) = self.cache.get(&key) {
            return hit.clone();
        }
        self.solves += 1;
        let started = std::time::Instant::now();
        let (cost, mix) = self.program(demand, true);
        let fluid = if self.groups.iter().any(|g| g.min > 0) { self.program(demand, false).0 } else { cost };
        self.solve_time += started.elapsed();
        let out = (Instant { nodes: None, cost_per_hour: cost, demand: fluid }, mix);
        if self.cache.len() >= CACHE_LIMIT {
            self.cache.clear();
        }
        self.cache.insert(key, out.clone());
        out
    }

    /// The linear program of the module doc; `with_min`: minions at
    /// min-size are paid for whatever the demand.
    fn program(&self, demand: &Demand, with_min: bool) -> (f64, Vec<f64>) {
        let mut vars = ProblemVariables::new();
        let x: Vec<Variable> = self
            .groups
            .iter()
            .map(|g| {
                let min = if with_min { f64::from(g.min) } else { 0.0 };
                vars.add(variable().min(min).max(f64::from(g.max).max(min)))
            })
            .collect();
        let mut objective: Expression = self.groups.iter().zip(&x).map(|(g, v)| g.price * *v).sum();
        // Per group and resource: the minions' share each class puts there.
        let mut load: Vec<Vec<Expression>> = vec![vec![Expression::from(0.0); self.resources.len()]; self.groups.len()];
        let mut cover = Vec::new();
        for (c, requested) in demand.by_class.iter().enumerate() {
            let class = &self.classes[c];
            for (r, name) in self.resources.iter().enumerate() {
                let d = requested.get(name);
                if d <= 0 {
                    continue;
                }
                // Fractions of this class's resource each allowed group carries, and the uncovered rest.
                let mut covered = Expression::from(0.0);
                let mut dearest = 0.0f64;
                for (g, group) in self.groups.iter().enumerate() {
                    let have = group.effective.get(name);
                    if !class[g] || have <= 0 {
                        continue;
                    }
                    let z = vars.add(variable().min(0.0).max(1.0));
                    covered += z;
                    load[g][r] += (d as f64 / have as f64) * z;
                    dearest = dearest.max(group.price * d as f64 / have as f64);
                }
                let uncovered = vars.add(variable().min(0.0).max(1.0));
                objective += (2.0 * dearest + 1.0) * uncovered;
                cover.push(constraint!(covered + uncovered == 1.0));
            }
        }
        let mut model = vars.minimise(objective.clone()).using(good_lp::microlp);
        for c in cover {
            model = model.with(c);
        }
        for (g, per_resource) in load.into_iter().enumerate() {
            for l in per_resource {
                model = model.with(constraint!(l <= x[g]));
            }
        }
        match model.solve() {
            Ok(solution) => {
                let mix: Vec<f64> = x.iter().map(|v| solution.value(*v).max(0.0)).collect();
                let cost = self.groups.iter().zip(&mix).map(|(g, n)| g.price * n).sum();
                (cost, mix)
            }
            // The program is always feasible (all uncovered) and bounded; a
            // solver failure falls back to the min-size minions alone, which is
            // still a lower bound.
            Err(_) => {
                let mix: Vec<f64> = self.groups.iter().map(|g| if with_min { f64::from(g.min) } else { 0.0 }).collect();
                (self.groups.iter().zip(&mix).map(|(g, n)| g.price * n).sum(), mix)
            }
        }
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
    use super::*;
    use crate::scenario::PodSpec;
    use crate::world::clock::epoch;
    use crate::world::cluster::{Cluster, Origin, PodTemplate};

    fn scenario(groups: &str) -> Scenario {
        let text = format!(
            "name: b\nduration: 1h\ndaemonsets: [{{name: proxy, requests: {{cpu: 100m, memory: 100Mi}}}}]\nnode-groups:\n{groups}"
        );
        Scenario::parse(&text, "b.yaml").unwrap()
    }

    /// A pod of the given spec (YAML flow map of `PodSpec`).
    fn pod(spec: &str) -> Pod {
        let spec: PodSpec = heatscaler_core::yaml::from_str(spec).unwrap();
        let mut cluster = Cluster::default();
        let template = PodTemplate::from_spec(&spec, "default", "p", Some("ReplicaSet"));
        let uid = cluster.add_pod(&template, "p".into(), epoch(), Origin::OneOff(0));
        cluster.pod(&uid).unwrap().clone()
    }

    /// The demand of `n` copies of each pod.
    fn demand(m: &mut BoundModel, pods: &[(u32, &Pod)]) -> Demand {
        let mut d = Demand::default();
        for (n, p) in pods {
            let class = m.counts(p).expect("the pod counts");
            for _ in 0..*n {
                d.add(class, &p.requests);
            }
        }
        d
    }

    #[test]
    fn one_shape_is_exact_integers_net_of_daemonsets() {
        let mut m = BoundModel::new(&scenario(
            "  - {name: g, min-size: 1, max-size: 10, initial-size: 1, price-per-hour: 2, shape: {allocatable: {cpu: 4100m, memory: 8292Mi, pods: '11'}}}\n",
        ));
        assert!(m.single_shape());
        // 4 cores, 8 GiB, 10 pods per minion after the DaemonSet.
        let at = |m: &mut BoundModel, r: Resources| {
            let mut d = Demand::default();
            d.add(0, &r);
            m.at(&d)
        };
        let mut d = Resources::new(8_001, 1 << 30);
        d.pods = 3;
        let b = at(&mut m, d.clone());
        assert_eq!(b.nodes, Some(3), "8.001 cores need three 4-core minions");
        assert_eq!(b.cost_per_hour, 6.0);
        assert!((b.demand - 8.001 / 4.0).abs() < 1e-12);
        d.pods = 21;
        assert_eq!(at(&mut m, d.clone()).nodes, Some(3), "21 pod slots need three minions too");
        d.pods = 31;
        assert_eq!(at(&mut m, d).nodes, Some(4), "pods is a resource like any other");
        assert_eq!(at(&mut m, Resources::default()).nodes, Some(1), "never below min-size");
        assert_eq!(at(&mut m, Resources::new(1_000_000, 0)).nodes, Some(10), "never above max-size");
    }

    #[test]
    fn several_shapes_take_the_cheapest_mix_covering_every_resource() {
        let mut m = BoundModel::new(&scenario(
            "  - {name: cpu, min-size: 0, max-size: 10, initial-size: 0, price-per-hour: 1, shape: {allocatable: {cpu: 8100m, memory: 4196Mi}}}\n  - {name: mem, min-size: 1, max-size: 10, initial-size: 1, price-per-hour: 1, shape: {allocatable: {cpu: 2100m, memory: 32868Mi}}}\n",
        ));
        assert!(!m.single_shape());
        // Per minion after the DaemonSet: `cpu` 8 cores / 4 GiB, `mem` 2 cores / 32 GiB.
        // 18 cores and 16 GiB: the `mem` minion at min-size brings 2 cores and
        // all the memory, two `cpu` minions the other 16 cores.
        let p = pod("{containers: [{name: c, requests: {cpu: 500m, memory: 444Mi}}]}");
        let d = demand(&mut m, &[(36, &p)]);
        let b = m.at(&d);
        assert_eq!(b.nodes, None);
        assert!((b.cost_per_hour - 3.0).abs() < 1e-6, "{b:?}");
        let mix = m.mix(&d);
        assert!((mix[0] - 2.0).abs() < 1e-6 && (mix[1] - 1.0).abs() < 1e-6, "{mix:?}");
        // The fluid demand leaves out the min-size minion where it is not needed.
        assert!(b.demand <= b.cost_per_hour + 1e-9);
        assert_eq!(m.solves, 1);
        m.at(&d);
        assert_eq!(m.solves, 1, "a demand seen before is not solved again");
    }

    #[test]
    fn pods_needing_gpus_count_only_on_gpu_groups_and_taints_keep_the_rest_off() {
        let groups = |taint: &str| {
            format!(
                "  - {{name: cpu, min-size: 0, max-size: 10, initial-size: 0, price-per-hour: 32, shape: {{allocatable: {{cpu: 32100m, memory: 128100Mi}}}}}}\n  - {{name: gpu, min-size: 0, max-size: 1, initial-size: 0, price-per-hour: 40, shape: {{allocatable: {{cpu: 8100m, memory: 32868Mi, nvidia.com/gpu: '1'}}, taints: [{taint}]}}}}\n"
            )
        };
        let cpu_pod = pod("{containers: [{name: c, requests: {cpu: '1', memory: 1Gi}}]}");
        let gpu_pod = pod(
            "{containers: [{name: c, requests: {cpu: '1', memory: 1Gi, nvidia.com/gpu: '1'}}], tolerations: [{key: nvidia.com/gpu}]}",
        );
        let tainted = "{key: nvidia.com/gpu, value: present, effect: NoSchedule}";
        let mut m = BoundModel::new(&scenario(&groups(tainted)));
        let d = demand(&mut m, &[(64, &cpu_pod), (1, &gpu_pod)]);
        // 64 cores on two `cpu` minions (64); the GPU pod on one `gpu` minion (40).
        assert!((m.at(&d).cost_per_hour - 104.0).abs() < 1e-6, "{:?}", m.at(&d));
        // The cheapest core alone would say max(65 cores × 1, 1 GPU × 40) = 65.

        // Untainted, CPU pods may use the GPU minion's 7 spare cores: 40 + 57.
        let mut m = BoundModel::new(&scenario(&groups("")));
        let d = demand(&mut m, &[(64, &cpu_pod), (1, &gpu_pod)]);
        assert!((m.at(&d).cost_per_hour - 97.0).abs() < 1e-6, "{:?}", m.at(&d));

        // Beyond max-size the rest is left uncovered, as the policies must leave it pending.
        let d = demand(&mut m, &[(2, &gpu_pod)]);
        assert!((m.at(&d).cost_per_hour - 40.0).abs() < 1e-6, "{:?}", m.at(&d));
    }

    #[test]
    fn gpu_model_affinity_narrows_the_groups() {
        let mut m = BoundModel::new(&scenario(
            "  - {name: t4, min-size: 0, max-size: 10, initial-size: 0, price-per-hour: 10, shape: {allocatable: {cpu: 8100m, memory: 32868Mi, nvidia.com/gpu: '1'}, labels: {heatscaler.io/gpu-model: T4}}}\n  - {name: v100, min-size: 0, max-size: 10, initial-size: 0, price-per-hour: 30, shape: {allocatable: {cpu: 8100m, memory: 32868Mi, nvidia.com/gpu: '1'}, labels: {heatscaler.io/gpu-model: V100M16}}}\n",
        ));
        let any = pod("{containers: [{name: c, requests: {cpu: '1', nvidia.com/gpu: '1'}}]}");
        let mut v100 = any.clone();
        let mut placement = (*v100.placement).clone();
        placement.required_node_affinity = vec![heatscaler_core::model::NodeSelectorTerm {
            match_expressions: vec![heatscaler_core::model::NodeSelectorRequirement {
                key: "heatscaler.io/gpu-model".into(),
                operator: heatscaler_core::model::NodeSelectorOperator::In,
                values: vec!["V100M16".into(), "V100M32".into()],
            }],
            match_fields: vec![],
        }];
        v100.placement = Arc::new(placement);
        let d = demand(&mut m, &[(1, &any), (1, &v100)]);
        assert!((m.at(&d).cost_per_hour - 40.0).abs() < 1e-6, "one T4 and one V100 minion: {:?}", m.at(&d));
    }

    #[test]
    fn only_hostable_workload_pods_count() {
        let mut m = BoundModel::new(&scenario(
            "  - {name: g, min-size: 0, max-size: 3, initial-size: 0, shape: {allocatable: {cpu: '2', memory: 4Gi}}}\n",
        ));
        assert!(m.counts(&pod("{containers: [{name: c, requests: {cpu: 500m}}]}")).is_some());
        assert!(m.counts(&pod("{containers: [{name: c, requests: {cpu: '4'}}]}")).is_none(), "bigger than any minion");
        let gpu = pod("{containers: [{name: c, requests: {cpu: 500m, nvidia.com/gpu: '1'}}]}");
        assert!(m.counts(&gpu).is_none(), "no group offers GPUs");
    }
}
