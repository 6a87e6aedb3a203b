//! The call graph at run time (issue 21, item 4): every window it looks at
//! where the services' pods actually run, samples requests through the graph
//! (`call_graph`) — each call to a replica picked uniformly (kube-proxy's and
//! a mesh's default balancing), its hop costing by placement (same node,
//! other node, other zone) and its service time stretched by CPU pressure —
//! and computes what a service mesh would export ([`Observations`]: per pair,
//! calls per second and the p99 of same-node and cross-node calls, as the
//! client's proxy and the server's measure them; per service, CPU usage over
//! requests), which the planner reads, and what the
//! report measures (end-to-end p99, cross-node calls). The model and its
//! assumptions: docs/co-scheduling.md.

use std::collections::BTreeMap;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, Exp};

use heatscaler_core::model::{PodPhase, WorkloadRef};
use heatscaler_core::planner::explain::{PlacementExplanation, PlacementOutcome};
use heatscaler_core::planner::placement::{Flow, Observations, Pressure};

use crate::call_graph::{CallGraphSpec, Step, Tier, Topology, ZONE};
use crate::report::{CallGraphStats, Parts};
use crate::world::World;
use crate::world::cluster::Origin;

/// The running model.
pub struct CallGraph {
    spec: CallGraphSpec,
    topo: Topology,
    rng: ChaCha8Rng,
    /// Workload index in the scenario of each service.
    workload_of: Vec<usize>,
    refs: Vec<WorkloadRef>,
    cpu_request: Vec<f64>,
    latest: Option<Observations>,
    e2e: Vec<f32>,
    late_e2e: Vec<f32>,
    by_kind: Vec<Vec<f32>>,
    window_p99: Vec<f64>,
    /// Per window, the parts of the requests at or above its p99, summed.
    tail: Parts,
    tail_requests: u32,
    calls: f64,
    cross: f64,
    cross_zone: f64,
    late_calls: f64,
    late_cross: f64,
    duration: std::time::Duration,
    advice: BTreeMap<String, AdviceHistory>,
    pub rollout_restarts: u32,
}

#[derive(Default)]
struct AdviceHistory {
    given: u32,
    withdrawn: u32,
    cycles: u32,
}

/// Where one service's running replicas are: (node, zone).
type Replicas = Vec<Vec<(String, Option<String>)>>;

impl CallGraph {
    /// `first_workload`: the scenario's index of the first service's workload.
    pub fn new(spec: &CallGraphSpec, first_workload: usize, seed: u64, duration: std::time::Duration) -> Self {
        let topo = spec.topology();
        let n = topo.services.len();
        let cpu_request = (0..n).map(|s| spec.cpu_request_milli(&topo, s) as f64 / 1000.0).collect();
        let refs = topo
            .services
            .iter()
            .map(|s| WorkloadRef {
                kind: "Deployment".into(),
                namespace: spec.namespace.clone().into(),
                name: s.name.into(),
            })
            .collect();
        Self {
            spec: spec.clone(),
            rng: ChaCha8Rng::seed_from_u64(seed ^ 0xca11_9a9b),
            workload_of: (first_workload..first_workload + n).collect(),
            refs,
            cpu_request,
            topo,
            latest: None,
            e2e: Vec::new(),
            late_e2e: Vec::new(),
            by_kind: vec![Vec::new(); 3],
            window_p99: Vec::new(),
            tail: Parts::default(),
            tail_requests: 0,
            calls: 0.0,
            cross: 0.0,
            cross_zone: 0.0,
            late_calls: 0.0,
            late_cross: 0.0,
            duration,
            advice: BTreeMap::new(),
            rollout_restarts: 0,
        }
    }

    pub fn window(&self) -> std::time::Duration {
        self.spec.window.get()
    }

    /// What the mesh exported over the last window (`None` before the first).
    pub fn observations(&self) -> Option<&Observations> {
        self.latest.as_ref()
    }

    fn replicas(&self, world: &World<'_>) -> Replicas {
        self.workload_of
            .iter()
            .map(|&w| {
                world
                    .cluster
                    .pods_of(Origin::Workload(w))
                    .filter(|p| p.phase == PodPhase::Running && p.deletion.is_none())
                    .filter_map(|p| {
                        let node = p.node_name.clone()?;
                        let zone = world.cluster.node(&node).and_then(|n| n.labels.get(ZONE).cloned());
                        Some((node, zone))
                    })
                    .collect()
            })
            .collect()
    }

    /// One window: sample requests over where the pods run now, record the
    /// measures, and compute the observations the planner reads next.
    pub fn tick(&mut self, world: &World<'_>) {
        let at = world.elapsed();
        let rps = self.spec.requests_per_second.at(at).max(0.0);
        let replicas = self.replicas(world);
        let rates = self.topo.edge_rates(rps);
        // CPU pressure: each service's usage over what its running replicas request.
        let mut busy = vec![0.0; self.topo.services.len()];
        for ((_, server), r) in &rates {
            busy[*server] += r * self.topo.services[*server].cpu_ms / 1000.0;
        }
        let rho: Vec<f64> = busy
            .iter()
            .enumerate()
            .map(|(s, used)| {
                let up = replicas[s].len();
                if up == 0 { f64::INFINITY } else { used / (up as f64 * self.cpu_request[s]) }
            })
            .collect();

        let mut rng = std::mem::replace(&mut self.rng, ChaCha8Rng::seed_from_u64(0));
        let samples = self.spec.samples.max(1);
        let mut sampler = Sampler { graph: self, replicas: &replicas, rho: &rho, edges: BTreeMap::new() };
        let mut window = Vec::with_capacity(samples as usize);
        for _ in 0..samples {
            let mut pick = rng.random::<f64>();
            let kinds = &sampler.graph.topo.requests;
            let k = kinds
                .iter()
                .position(|k| {
                    pick -= k.weight;
                    pick < 0.0
                })
                .unwrap_or(0);
            let parts = sampler.step(&kinds[k].root, None, &mut rng);
            window.push((k, parts));
        }
        let edges = std::mem::take(&mut sampler.edges);
        self.rng = rng;
        self.by_kind.resize(self.topo.requests.len(), Vec::new());
        for &(k, parts) in &window {
            self.by_kind[k].push(parts.total() as f32);
        }
        let tail_from = {
            let mut totals: Vec<f32> = window.iter().map(|(_, p)| p.total() as f32).collect();
            totals.sort_by(f32::total_cmp);
            percentile(&totals, 0.99)
        };
        for (_, parts) in window.iter().filter(|(_, p)| p.total() as f32 >= tail_from) {
            self.tail.add(parts);
            self.tail_requests += 1;
        }
        let window: Vec<f32> = window.into_iter().map(|(_, p)| p.total() as f32).collect();

        // Cross-node calls per second, exactly, from where the replicas run.
        let secs = self.spec.window.get().as_secs_f64();
        let late = at.as_secs_f64() >= self.duration.as_secs_f64() * 0.75;
        for ((client, server), r) in &rates {
            let Some(c) = client else { continue };
            let (node_share, zone_share) = cross_shares(&replicas[*c], &replicas[*server]);
            self.calls += r * secs;
            self.cross += r * secs * node_share;
            self.cross_zone += r * secs * zone_share;
            if late {
                self.late_calls += r * secs;
                self.late_cross += r * secs * node_share;
            }
        }
        let mut sorted = window.clone();
        sorted.sort_by(f32::total_cmp);
        self.window_p99.push(f64::from(percentile(&sorted, 0.99)));
        if late {
            self.late_e2e.extend_from_slice(&window);
        }
        self.e2e.extend(window);

        let min = self.spec.min_samples as usize;
        let p99 = |v: &mut Vec<f32>| -> Option<f64> {
            (v.len() >= min).then(|| {
                v.sort_by(f32::total_cmp);
                f64::from(percentile(v, 0.99))
            })
        };
        let flows = rates
            .iter()
            .filter_map(|((client, server), r)| {
                let c = (*client)?;
                let mut e = edges.get(&(c, *server)).cloned().unwrap_or_default();
                Some(Flow {
                    client: self.refs[c].clone(),
                    server: self.refs[*server].clone(),
                    requests_per_second: *r,
                    p99_same_node_ms: p99(&mut e.same),
                    p99_cross_node_ms: p99(&mut e.cross),
                    server_p99_same_node_ms: p99(&mut e.server_same),
                    server_p99_cross_node_ms: p99(&mut e.server_cross),
                })
            })
            .collect();
        let pressure = rho
            .iter()
            .enumerate()
            .filter(|(_, r)| r.is_finite())
            .map(|(s, r)| Pressure { workload: self.refs[s].clone(), cpu: Some(*r), memory: None })
            .collect();
        self.latest = Some(Observations { flows, pressure });
    }

    /// The advisor's explanation of one pass: counts advice and its cycles.
    pub fn saw_pass(&mut self, placement: &[PlacementExplanation]) {
        for p in placement {
            let h = self.advice.entry(p.subject.clone()).or_default();
            match &p.outcome {
                PlacementOutcome::Advised { new: true, .. } => {
                    if h.withdrawn > 0 && h.given == h.withdrawn {
                        h.cycles += 1;
                    }
                    h.given += 1;
                }
                PlacementOutcome::Withdrawn { .. } => h.withdrawn += 1,
                _ => {}
            }
        }
    }

    pub fn stats(&self) -> CallGraphStats {
        let mut all = self.e2e.clone();
        all.sort_by(f32::total_cmp);
        let mut late = self.late_e2e.clone();
        late.sort_by(f32::total_cmp);
        let windows = self.window_p99.len().max(1) as f64;
        let p99_by_kind_ms = self
            .topo
            .requests
            .iter()
            .zip(&self.by_kind)
            .map(|(k, v)| {
                let mut v = v.clone();
                v.sort_by(f32::total_cmp);
                (k.name.to_string(), f64::from(percentile(&v, 0.99)))
            })
            .collect();
        CallGraphStats {
            p99_by_kind_ms,
            p99_ms: f64::from(percentile(&all, 0.99)),
            p50_ms: f64::from(percentile(&all, 0.5)),
            mean_window_p99_ms: self.window_p99.iter().sum::<f64>() / windows,
            late_p99_ms: f64::from(percentile(&late, 0.99)),
            cross_node_calls_m: self.cross / 1e6,
            cross_node_share: if self.calls > 0.0 { self.cross / self.calls } else { 0.0 },
            late_cross_node_share: if self.late_calls > 0.0 { self.late_cross / self.late_calls } else { 0.0 },
            cross_zone_calls_m: self.cross_zone / 1e6,
            rollout_restarts: self.rollout_restarts,
            timed_out: self.e2e.iter().filter(|&&ms| ms >= 1000.0).count(),
            tail: self.tail.shares(),
            advised: self.advice.values().map(|h| h.given).sum(),
            withdrawn: self.advice.values().map(|h| h.withdrawn).sum(),
            oscillations: self.advice.values().map(|h| h.cycles).sum(),
        }
    }
}

/// Sampled call latencies of one pair, split by placement, as the client's
/// proxy and the server's measure them (Istio's `reporter="source"` and
/// `reporter="destination"`).
#[derive(Clone, Default)]
struct EdgeSamples {
    same: Vec<f32>,
    cross: Vec<f32>,
    server_same: Vec<f32>,
    server_cross: Vec<f32>,
}

struct Sampler<'g> {
    graph: &'g CallGraph,
    replicas: &'g Replicas,
    rho: &'g [f64],
    edges: BTreeMap<(usize, usize), EdgeSamples>,
}

impl Sampler<'_> {
    /// The time `step` takes, run from a pod of `from` (`None`: the user) on
    /// `(node, zone)`.
    fn step(&mut self, step: &Step, from: Option<(usize, &(String, Option<String>))>, rng: &mut ChaCha8Rng) -> Parts {
        match step {
            Step::Parallel(steps) => steps
                .iter()
                .map(|s| self.step(s, from, rng))
                .max_by(|a, b| a.total().total_cmp(&b.total()))
                .unwrap_or_default(),
            Step::Call { service, p, then } => {
                if *p < 1.0 && rng.random::<f64>() >= *p {
                    return Parts::default();
                }
                let pods = &self.replicas[*service];
                if pods.is_empty() {
                    // No replica: the call times out (a fixed second).
                    return Parts { timeouts: 1000.0, ..Parts::default() };
                }
                let pod = &pods[rng.random_range(0..pods.len())];
                let hop = match from {
                    None => Parts::default(),
                    Some((_, at)) => self.hop(at, pod, rng),
                };
                let mut parts = hop;
                let s = &self.graph.topo.services[*service];
                // CPU pressure stretches the service time as a queue's
                // 1 / (1 − ρ) would, ρ capped at 0.95.
                let stretch = 1.0 / (1.0 - self.rho[*service].min(0.95));
                let ms = Exp::new(1.0 / (s.service_ms * stretch)).map_or(s.service_ms, |d| d.sample(rng));
                parts.service += ms / stretch;
                parts.queueing += ms - ms / stretch;
                if s.tier == Tier::Database {
                    parts.in_databases += ms;
                }
                for t in then {
                    parts.add(&self.step(t, Some((*service, pod)), rng));
                }
                if let Some((client, at)) = from {
                    let total = parts.total();
                    // The server's proxy times the call from the request's
                    // arrival to the response's departure: its own half of
                    // the two sidecars' cost in, the network and the
                    // client's sidecar out.
                    let server = total - (hop.total() - hop.proxies / 2.0);
                    let e = self.edges.entry((client, *service)).or_default();
                    let (client_side, server_side) = if at.0 == pod.0 {
                        (&mut e.same, &mut e.server_same)
                    } else {
                        (&mut e.cross, &mut e.server_cross)
                    };
                    client_side.push(total as f32);
                    server_side.push(server as f32);
                }
                parts
            }
        }
    }

    /// One hop's parts: the network's round trip by placement, the sidecars.
    fn hop(&self, a: &(String, Option<String>), b: &(String, Option<String>), rng: &mut ChaCha8Rng) -> Parts {
        let h = &self.graph.spec.hop;
        let base = if a.0 == b.0 {
            h.same_node_ms
        } else if a.1.is_some() && b.1.is_some() && a.1 != b.1 {
            h.other_zone_ms
        } else {
            h.other_node_ms
        };
        // A network round trip's tail: the base plus an exponential half its size.
        let jitter = Exp::new(2.0 / base.max(1e-6)).map_or(0.0, |d| d.sample(rng));
        let network = base + jitter;
        if a.0 == b.0 {
            Parts { same_node_hops: network, proxies: h.proxies_ms, ..Parts::default() }
        } else {
            Parts { cross_node_hops: network, proxies: h.proxies_ms, ..Parts::default() }
        }
    }
}

/// The share of calls from `a`'s replicas to `b`'s that cross nodes, and
/// zones, calls spread evenly over both sides' replicas.
fn cross_shares(a: &[(String, Option<String>)], b: &[(String, Option<String>)]) -> (f64, f64) {
    if a.is_empty() || b.is_empty() {
        return (0.0, 0.0);
    }
    let (mut same_node, mut other_zone) = (0usize, 0usize);
    for x in a {
        for y in b {
            same_node += usize::from(x.0 == y.0);
            other_zone += usize::from(x.1.is_some() && y.1.is_some() && x.1 != y.1);
        }
    }
    let pairs = (a.len() * b.len()) as f64;
    (1.0 - same_node as f64 / pairs, other_zone as f64 / pairs)
}

fn percentile(sorted: &[f32], q: f64) -> f32 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() as f64 - 1.0) * q).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

#[cfg(test)]
mod tests {
    use heatscaler_core::policy::AdvisorMode;

    use crate::co_scheduling::{SweepRow, sweep};
    use crate::scenario::Scenario;

    const SCENARIO: &str = "
name: graph
seed: 1
duration: 3h
daemon: {debounce: 1s, resync-interval: 30s, heat-poll-interval: 30s}
node-groups:
  - name: minions
    min-size: 2
    max-size: 12
    initial-size: 5
    shape: {allocatable: {cpu: '4', memory: 16Gi, pods: '110'}}
call-graph:
  requests-per-second: 2000
  sized-for-rps: 2000
  samples: 600
";

    fn row(rows: &[SweepRow], mode: AdvisorMode) -> &SweepRow {
        rows.iter().find(|r| r.mode == mode).unwrap()
    }

    #[test]
    fn the_services_become_workloads_and_the_mesh_is_observed() {
        let sc = Scenario::parse(SCENARIO, "graph").unwrap();
        assert_eq!(sc.workloads.len(), 25);
        assert_eq!(sc.call_graph_first_workload, 0);
        let nginx = &sc.workloads[0];
        assert_eq!(nginx.name, "nginx-web-server");
        // 2000 req/s × 0.4 ms of CPU over 3 replicas at 50 %: 533m → 550m.
        assert_eq!(nginx.pod.containers[0].requests["cpu"].as_milli(), 550);
        let bad = SCENARIO.replace("samples: 600", "samples: 600\n  replicas-scale: 0");
        let e = Scenario::parse(&bad, "graph").unwrap_err();
        assert!(e.to_string().contains("call-graph.replicas-scale"), "{e}");
    }

    #[test]
    fn applied_advice_cuts_cross_node_traffic_recommend_changes_nothing() {
        let sc = Scenario::parse(SCENARIO, "graph").unwrap();
        let rows = sweep(&sc, &[AdvisorMode::Off, AdvisorMode::Recommend, AdvisorMode::Apply], &[1], 3).unwrap();
        let (off, rec, apply) =
            (row(&rows, AdvisorMode::Off), row(&rows, AdvisorMode::Recommend), row(&rows, AdvisorMode::Apply));
        assert!(off.graph.cross_node_share > 0.4, "{:?}", off.graph);
        assert_eq!(off.graph.advised, 0);
        // Recommend: advice given, nothing moved.
        assert!(rec.graph.advised > 0);
        assert_eq!(rec.graph.rollout_restarts, 0);
        assert!((rec.graph.cross_node_share - off.graph.cross_node_share).abs() < 1e-9);
        // Apply: templates changed and rolled out; the pairs now share nodes.
        assert!(apply.graph.rollout_restarts > 0);
        assert!(
            apply.graph.late_cross_node_share < off.graph.late_cross_node_share * 0.9,
            "{:?} vs {:?}",
            apply.graph,
            off.graph
        );
        assert_eq!(apply.graph.oscillations, 0);
        assert_eq!(apply.graph.timed_out, 0);
        // The tail's parts add up to its time, every part measured.
        for r in [off, apply] {
            let t = &r.graph.tail;
            let sum = t.cross_node_hops + t.same_node_hops + t.proxies + t.service + t.queueing + t.timeouts;
            assert!((sum - 1.0).abs() < 1e-9, "{t:?}");
            assert!(t.cross_node_hops > 0.0 && t.proxies > 0.0 && t.service > 0.0 && t.queueing > 0.0, "{t:?}");
            assert!(t.in_databases > 0.0 && t.in_databases < t.service + t.queueing, "{t:?}");
        }
    }

    /// Three zones, one group each: calls between zones are counted apart
    /// (and cost the other-zone hop), and the advisor, applied, does not
    /// add to them.
    #[test]
    fn the_zoned_scenario_counts_calls_between_zones() {
        let mut sc =
            Scenario::parse(include_str!("../../../scenarios/social-network-zones.yaml"), "social-network-zones.yaml")
                .unwrap();
        assert_eq!(sc.node_groups.len(), 3);
        for g in &sc.node_groups {
            assert!(g.shape.labels.get(crate::call_graph::ZONE).is_some_and(|z| z.starts_with("zone-")), "{}", g.name);
        }
        sc.duration = heatscaler_core::policy::Duration::from_secs(3 * 3600);
        let rows = sweep(&sc, &[AdvisorMode::Off, AdvisorMode::Apply], &[1], 2).unwrap();
        let (off, apply) = (row(&rows, AdvisorMode::Off), row(&rows, AdvisorMode::Apply));
        assert!(off.graph.cross_zone_calls_m > 0.0, "{:?}", off.graph);
        assert!(off.graph.cross_zone_calls_m < off.graph.cross_node_calls_m, "{:?}", off.graph);
        assert!(apply.graph.cross_zone_calls_m <= off.graph.cross_zone_calls_m, "{:?} vs {:?}", apply.graph, off.graph);
        assert_eq!(apply.graph.oscillations, 0);
    }

    #[test]
    fn the_hotel_reservation_scenario_is_its_own_graph() {
        let sc = Scenario::parse(include_str!("../../../scenarios/hotel-reservation.yaml"), "hotel-reservation.yaml")
            .unwrap();
        assert_eq!(sc.workloads.len(), 14);
        assert_eq!(sc.workloads[0].name, "frontend");
        assert_eq!(sc.workloads[0].namespace, "hotel-reservation");
    }
}
