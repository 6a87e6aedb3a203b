//! From the mesh's series to the advisor's [`Flow`]s: the workloads resolved
//! against the watched cluster, and each series' calls put on the same-node
//! or the cross-node side by where its pods run (docs/decisions.md, "Which
//! calls crossed nodes"); the callee's own reports of the same calls
//! apportioned to the sides by where the callers run ("A pair's saving is
//! its hop's").

use std::collections::{BTreeMap, HashMap};

use heatscaler_core::model::{Snapshot, WorkloadRef};
use heatscaler_core::planner::placement::Flow;

use super::histogram::Buckets;
use super::mapping::{Call, Mapping, Named};
use super::prometheus::Sample;

/// Where the calls of one series went.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Side {
    SameNode,
    CrossNode,
    /// Some of the callee's replicas run on the caller's node and some do not,
    /// and the mesh does not say which one answered: counted in the traffic,
    /// left out of both latencies.
    Mixed,
    /// A pod the cluster does not show (gone since, or not scheduled).
    Unplaced,
}

/// What one read of the mesh found, beside the flows.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct MeshReading {
    pub flows: Vec<Flow>,
    /// Pairs dropped because a side names no workload the cluster runs.
    pub unknown_pairs: usize,
    /// Requests/s whose series were [`Side::Mixed`] or [`Side::Unplaced`].
    pub unsplit_requests_per_second: f64,
}

/// A workload's replicas by the nodes they run on.
type Replicas<'a> = (&'a WorkloadRef, Vec<&'a str>);

struct Placement<'a> {
    node_of_pod: HashMap<(String, String), &'a str>,
    /// (namespace, name) → the workloads of that name, and their replicas' nodes.
    workloads: HashMap<(String, String), Vec<Replicas<'a>>>,
}

impl<'a> Placement<'a> {
    fn of(snapshot: &'a Snapshot) -> Self {
        let mut node_of_pod = HashMap::new();
        let mut workloads: HashMap<(String, String), Vec<Replicas>> = HashMap::new();
        for pod in &snapshot.pods {
            let (Some(node), false) = (pod.node_name.as_deref(), pod.is_terminal() || pod.deletion.is_some()) else {
                continue;
            };
            node_of_pod.insert((pod.namespace.to_string(), pod.name.to_string()), node);
            if let Some(w) = &pod.workload {
                let entry = workloads.entry((w.namespace.to_string(), w.name.to_string())).or_default();
                match entry.iter_mut().find(|(x, _)| *x == w) {
                    Some((_, nodes)) => nodes.push(node),
                    None => entry.push((w, vec![node])),
                }
            }
        }
        Self { node_of_pod, workloads }
    }

    fn workload(&self, named: &Named) -> Option<&Replicas<'a>> {
        let all = self.workloads.get(&(named.namespace.clone(), named.name.clone()))?;
        match &named.kind {
            Some(kind) => all.iter().find(|(w, _)| &w.kind == kind),
            // Istio names no kind: a name shared by two kinds is ambiguous.
            None if all.len() == 1 => all.first(),
            None => None,
        }
    }

    fn side(&self, call: &Call, server_nodes: &[&str]) -> Side {
        let Some(client_node) =
            call.client_pod.as_ref().and_then(|p| self.node_of_pod.get(&(call.client.namespace.clone(), p.clone())))
        else {
            return Side::Unplaced;
        };
        if let Some(pod) = &call.server_pod {
            return match self.node_of_pod.get(&(call.server.namespace.clone(), pod.clone())) {
                Some(n) if n == client_node => Side::SameNode,
                Some(_) => Side::CrossNode,
                None => Side::Unplaced,
            };
        }
        let near = server_nodes.iter().filter(|n| *n == client_node).count();
        match near {
            0 => Side::CrossNode,
            n if n == server_nodes.len() => Side::SameNode,
            _ => Side::Mixed,
        }
    }

    /// Of a callee pod's calls from `client_nodes`' replicas (the callee's
    /// own report, which names no calling pod), the share made from its own
    /// node: those replicas over all, each caller replica taken to send it
    /// as many calls. `None` when the callee pod is not placed.
    fn near_share(&self, call: &Call, client_nodes: &[&str]) -> Option<f64> {
        let pod = call.server_pod.as_ref()?;
        let node = self.node_of_pod.get(&(call.server.namespace.clone(), pod.clone()))?;
        if client_nodes.is_empty() {
            return None;
        }
        Some(client_nodes.iter().filter(|n| *n == node).count() as f64 / client_nodes.len() as f64)
    }
}

#[derive(Default)]
struct PairAcc {
    requests_per_second: f64,
    same: Buckets,
    cross: Buckets,
    /// The callee's own reports of the calls, by side.
    server_same: Buckets,
    server_cross: Buckets,
}

/// A bucket series' upper bound.
fn le(sample: &Sample) -> Option<f64> {
    sample.labels.get("le").and_then(|v| if v == "+Inf" { Some(f64::INFINITY) } else { v.parse().ok() })
}

/// Joins the requests and bucket series of one read into flows:
/// `server_buckets` are the callee's own reports (empty when the mesh has
/// none per calling workload).
///
/// A callee's report excludes the network hop, so its durations do not
/// depend on where the caller ran: a callee pod's series, which names no
/// calling pod, is apportioned to the sides by the share of the caller's
/// replicas on its node rather than left out as a mixed caller's series is
/// (where the two sides' latencies differ and cannot be told apart).
pub fn flows(
    mapping: &Mapping,
    snapshot: &Snapshot,
    requests: &[Sample],
    buckets: &[Sample],
    server_buckets: &[Sample],
) -> MeshReading {
    let placement = Placement::of(snapshot);
    let mut pairs: BTreeMap<(WorkloadRef, WorkloadRef), PairAcc> = BTreeMap::new();
    let mut unknown: std::collections::BTreeSet<(Named, Named)> = Default::default();
    let mut unsplit = 0.0;
    let placed = &placement;
    let unknown_pairs = &mut unknown;
    let mut resolve = move |call: &Call| {
        let client = placed.workload(&call.client);
        let server = placed.workload(&call.server);
        match (client, server) {
            (Some(c), Some(s)) if c.0 != s.0 => Some((c, s)),
            (Some(_), Some(_)) => None,
            _ => {
                unknown_pairs.insert((call.client.clone(), call.server.clone()));
                None
            }
        }
    };
    for sample in requests {
        let Some(call) = mapping.call(&sample.labels) else { continue };
        let Some(((c, _), (s, nodes))) = resolve(&call) else { continue };
        if !sample.value.is_finite() {
            continue;
        }
        if matches!(placement.side(&call, nodes), Side::Mixed | Side::Unplaced) {
            unsplit += sample.value;
        }
        pairs.entry(((*c).clone(), (*s).clone())).or_default().requests_per_second += sample.value;
    }
    for sample in buckets {
        let Some(call) = mapping.call(&sample.labels) else { continue };
        let Some(le) = le(sample) else { continue };
        let Some(((c, _), (s, nodes))) = resolve(&call) else { continue };
        let acc = pairs.entry(((*c).clone(), (*s).clone())).or_default();
        match placement.side(&call, nodes) {
            Side::SameNode => acc.same.add(le, sample.value),
            Side::CrossNode => acc.cross.add(le, sample.value),
            Side::Mixed | Side::Unplaced => {}
        }
    }
    for sample in server_buckets {
        let Some(call) = mapping.server_call(&sample.labels) else { continue };
        let Some(le) = le(sample) else { continue };
        let Some(((c, client_nodes), (s, _))) = resolve(&call) else { continue };
        let Some(near) = placement.near_share(&call, client_nodes) else { continue };
        let acc = pairs.entry(((*c).clone(), (*s).clone())).or_default();
        if near > 0.0 {
            acc.server_same.add(le, sample.value * near);
        }
        if near < 1.0 {
            acc.server_cross.add(le, sample.value * (1.0 - near));
        }
    }
    let flows = pairs
        .into_iter()
        .filter(|(_, acc)| acc.requests_per_second > 0.0)
        .map(|((client, server), acc)| Flow {
            client,
            server,
            requests_per_second: acc.requests_per_second,
            p99_same_node_ms: acc.same.quantile(0.99),
            p99_cross_node_ms: acc.cross.quantile(0.99),
            server_p99_same_node_ms: acc.server_same.quantile(0.99),
            server_p99_cross_node_ms: acc.server_cross.quantile(0.99),
        })
        .collect();
    MeshReading { flows, unknown_pairs: unknown.len(), unsplit_requests_per_second: unsplit }
}

#[cfg(test)]
mod tests {
    use heatscaler_core::model::test_support;
    use heatscaler_core::model::{Pod, PodPhase};

    use super::*;
    use crate::config::MeshKind;

    fn pod(name: &str, workload: &str, node: &str) -> Pod {
        Pod {
            name: name.into(),
            namespace: "shop".into(),
            workload: Some(WorkloadRef { kind: "Deployment".into(), namespace: "shop".into(), name: workload.into() }),
            node_name: Some(node.into()),
            phase: PodPhase::Running,
            ..test_support::pod(name)
        }
    }

    fn sample(pairs: &[(&str, &str)], value: f64) -> Sample {
        Sample { labels: pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(), value }
    }

    fn istio(pod: &str, client: &str, server: &str, extra: &[(&str, &str)], value: f64) -> Sample {
        let mut l = vec![
            ("source_workload", client),
            ("source_workload_namespace", "shop"),
            ("destination_workload", server),
            ("destination_workload_namespace", "shop"),
            ("pod", pod),
        ];
        l.extend_from_slice(extra);
        sample(&l, value)
    }

    #[test]
    fn istio_series_split_by_the_calling_pods_node_against_the_callees_replicas() {
        let snapshot = Snapshot {
            pods: vec![pod("web-1", "web", "n1"), pod("web-2", "web", "n2"), pod("cart-1", "cart", "n1")],
            ..Snapshot::default()
        };
        let m = Mapping::of(MeshKind::Istio, "pod");
        let requests = [istio("web-1", "web", "cart", &[], 30.0), istio("web-2", "web", "cart", &[], 70.0)];
        let buckets = [
            istio("web-1", "web", "cart", &[("le", "5")], 30.0),
            istio("web-1", "web", "cart", &[("le", "+Inf")], 30.0),
            istio("web-2", "web", "cart", &[("le", "5")], 0.0),
            istio("web-2", "web", "cart", &[("le", "50")], 70.0),
            istio("web-2", "web", "cart", &[("le", "+Inf")], 70.0),
        ];
        let reading = flows(&m, &snapshot, &requests, &buckets, &[]);
        assert_eq!(reading.flows.len(), 1);
        let f = &reading.flows[0];
        assert_eq!(f.client.name, "web");
        assert_eq!(f.requests_per_second, 100.0);
        assert!((f.p99_same_node_ms.unwrap() - 4.95).abs() < 1e-9);
        assert!(f.p99_cross_node_ms.unwrap() > 49.0);
        assert_eq!(reading.unsplit_requests_per_second, 0.0);
    }

    /// The callee's own reports (`reporter="destination"`, the scraped pod
    /// the callee's): cart-1 shares n1 with one of web's two replicas, so
    /// half its calls are put on the same-node side and half on the other;
    /// cart-2, on a node without web, on the cross-node side alone. The
    /// hop's own cost is then each side's client p99 less its server p99.
    #[test]
    fn istio_callee_reports_are_apportioned_by_where_the_callers_replicas_run() {
        let snapshot = Snapshot {
            pods: vec![
                pod("web-1", "web", "n1"),
                pod("web-2", "web", "n2"),
                pod("cart-1", "cart", "n1"),
                pod("cart-2", "cart", "n3"),
            ],
            ..Snapshot::default()
        };
        let m = Mapping::of(MeshKind::Istio, "pod");
        // web-1's calls are mixed (cart on n1 and n3): only web-2's measure the cross-node side.
        let requests = [istio("web-1", "web", "cart", &[], 100.0), istio("web-2", "web", "cart", &[], 100.0)];
        let buckets = [
            istio("web-2", "web", "cart", &[("le", "5")], 0.0),
            istio("web-2", "web", "cart", &[("le", "10")], 100.0),
            istio("web-2", "web", "cart", &[("le", "+Inf")], 100.0),
        ];
        let served = [
            istio("cart-1", "web", "cart", &[("le", "1")], 100.0),
            istio("cart-1", "web", "cart", &[("le", "5")], 100.0),
            istio("cart-1", "web", "cart", &[("le", "+Inf")], 100.0),
            istio("cart-2", "web", "cart", &[("le", "1")], 0.0),
            istio("cart-2", "web", "cart", &[("le", "5")], 100.0),
            istio("cart-2", "web", "cart", &[("le", "+Inf")], 100.0),
            // A callee pod the cluster does not show is left out.
            istio("cart-9", "web", "cart", &[("le", "1")], 0.0),
            istio("cart-9", "web", "cart", &[("le", "+Inf")], 50.0),
        ];
        let reading = flows(&m, &snapshot, &requests, &buckets, &served);
        let f = &reading.flows[0];
        assert_eq!(f.p99_same_node_ms, None);
        assert!((f.p99_cross_node_ms.unwrap() - 9.95).abs() < 1e-9, "{f:?}");
        // Same side: cart-1's 50 calls, all ≤ 1 ms.
        assert!((f.server_p99_same_node_ms.unwrap() - 0.99).abs() < 1e-9, "{f:?}");
        // Cross side: cart-1's other 50 (≤ 1 ms) and cart-2's 100 (1–5 ms):
        // rank 148.5 of 150 lies 98.5 % of the way through (1, 5].
        assert!((f.server_p99_cross_node_ms.unwrap() - 4.94).abs() < 1e-9, "{f:?}");
    }

    #[test]
    fn a_callee_on_both_sides_is_mixed_and_an_unknown_workload_is_counted() {
        let snapshot = Snapshot {
            pods: vec![pod("web-1", "web", "n1"), pod("cart-1", "cart", "n1"), pod("cart-2", "cart", "n2")],
            ..Snapshot::default()
        };
        let m = Mapping::of(MeshKind::Istio, "pod");
        let requests = [istio("web-1", "web", "cart", &[], 10.0), istio("x-1", "ghost", "cart", &[], 5.0)];
        let buckets = [istio("web-1", "web", "cart", &[("le", "+Inf")], 10.0)];
        let reading = flows(&m, &snapshot, &requests, &buckets, &[]);
        assert_eq!(reading.flows[0].p99_same_node_ms, None);
        assert_eq!(reading.flows[0].p99_cross_node_ms, None);
        assert_eq!(reading.unsplit_requests_per_second, 10.0);
        assert_eq!(reading.unknown_pairs, 1);
    }

    #[test]
    fn linkerd_series_split_by_the_callee_pod() {
        let snapshot = Snapshot {
            pods: vec![pod("web-1", "web", "n1"), pod("cart-1", "cart", "n1"), pod("cart-2", "cart", "n2")],
            ..Snapshot::default()
        };
        let m = Mapping::of(MeshKind::Linkerd, "pod");
        let l = |dst: &str, le: Option<&str>, v: f64| {
            let mut p = vec![
                ("deployment", "web"),
                ("namespace", "shop"),
                ("dst_deployment", "cart"),
                ("dst_namespace", "shop"),
                ("pod", "web-1"),
                ("dst_pod", dst),
            ];
            if let Some(le) = le {
                p.push(("le", le));
            }
            sample(&p, v)
        };
        let requests = [l("cart-1", None, 10.0), l("cart-2", None, 10.0)];
        let buckets = [
            l("cart-1", Some("1"), 10.0),
            l("cart-1", Some("+Inf"), 10.0),
            l("cart-2", Some("1"), 0.0),
            l("cart-2", Some("10"), 10.0),
            l("cart-2", Some("+Inf"), 10.0),
        ];
        let reading = flows(&m, &snapshot, &requests, &buckets, &[]);
        let f = &reading.flows[0];
        assert_eq!(f.requests_per_second, 20.0);
        assert!(f.p99_same_node_ms.unwrap() <= 1.0);
        assert!(f.p99_cross_node_ms.unwrap() > 9.0);
    }
}
