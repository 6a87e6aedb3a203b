//! From the mesh's series to the advisor's [`Flow`]s: the workloads resolved
//! against the watched cluster, and each series' calls put on the same-node
//! or the cross-node side by where its pods run (docs/decisions.md, "Which
//! calls crossed nodes").

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
}

#[derive(Default)]
struct PairAcc {
    requests_per_second: f64,
    same: Buckets,
    cross: Buckets,
}

/// Joins the requests and bucket series of one read into flows.
pub fn flows(mapping: &Mapping, snapshot: &Snapshot, requests: &[Sample], buckets: &[Sample]) -> MeshReading {
    let placement = Placement::of(snapshot);
    let mut pairs: BTreeMap<(WorkloadRef, WorkloadRef), PairAcc> = BTreeMap::new();
    let mut unknown: std::collections::BTreeSet<(Named, Named)> = Default::default();
    let mut unsplit = 0.0;
    let mut resolve = |call: &Call| {
        let client = placement.workload(&call.client);
        let server = placement.workload(&call.server);
        match (client, server) {
            (Some((c, _)), Some((s, nodes))) if c != s => {
                Some(((*c).clone(), (*s).clone(), placement.side(call, nodes)))
            }
            (Some(_), Some(_)) => None,
            _ => {
                unknown.insert((call.client.clone(), call.server.clone()));
                None
            }
        }
    };
    for sample in requests {
        let Some(call) = mapping.call(&sample.labels) else { continue };
        let Some((c, s, side)) = resolve(&call) else { continue };
        if !sample.value.is_finite() {
            continue;
        }
        if matches!(side, Side::Mixed | Side::Unplaced) {
            unsplit += sample.value;
        }
        pairs.entry((c, s)).or_default().requests_per_second += sample.value;
    }
    for sample in buckets {
        let Some(call) = mapping.call(&sample.labels) else { continue };
        let Some(le) =
            sample.labels.get("le").and_then(|v| if v == "+Inf" { Some(f64::INFINITY) } else { v.parse().ok() })
        else {
            continue;
        };
        let Some((c, s, side)) = resolve(&call) else { continue };
        let acc = pairs.entry((c, s)).or_default();
        match side {
            Side::SameNode => acc.same.add(le, sample.value),
            Side::CrossNode => acc.cross.add(le, sample.value),
            Side::Mixed | Side::Unplaced => {}
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
        let reading = flows(&m, &snapshot, &requests, &buckets);
        assert_eq!(reading.flows.len(), 1);
        let f = &reading.flows[0];
        assert_eq!(f.client.name, "web");
        assert_eq!(f.requests_per_second, 100.0);
        assert!((f.p99_same_node_ms.unwrap() - 4.95).abs() < 1e-9);
        assert!(f.p99_cross_node_ms.unwrap() > 49.0);
        assert_eq!(reading.unsplit_requests_per_second, 0.0);
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
        let reading = flows(&m, &snapshot, &requests, &buckets);
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
        let reading = flows(&m, &snapshot, &requests, &buckets);
        let f = &reading.flows[0];
        assert_eq!(f.requests_per_second, 20.0);
        assert!(f.p99_same_node_ms.unwrap() <= 1.0);
        assert!(f.p99_cross_node_ms.unwrap() > 9.0);
    }
}
