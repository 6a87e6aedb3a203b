//! What each mesh calls its metrics and labels, and the PromQL that reads a
//! window of them grouped by caller, callee and the reporting pod.
//!
//! Istio (`reporter="source"`: the caller's sidecar, so the latency includes
//! the network between the two pods — the part placement changes) labels a
//! call with `source_workload`/`destination_workload` and their namespaces,
//! but not with the callee's pod. The callee's sidecar reports the same calls
//! (`reporter="destination"`, the scraped pod being the callee) without the
//! network hop: the client side less that is the hop's own cost, what
//! co-location saves (`Flow::saving_ms`). Linkerd's outbound metrics
//! (`direction="outbound"`) label the caller by its controller kind
//! (`deployment`, `statefulset`, …) and the callee with the same names under
//! `dst_`, `dst_pod` included; its inbound metrics name the caller only by
//! its TLS identity (`client_id`), not its workload, so Linkerd has no
//! server side per pair. Both are scraped per pod, and the scrape
//! configurations both meshes ship put the pod's name in a target label.

use std::collections::BTreeMap;

use crate::config::MeshKind;

/// A workload label: the label's name and the controller kind it implies
/// (`None`: the mesh does not say, any kind of that name matches).
pub type WorkloadLabel = (&'static str, Option<&'static str>);

#[derive(Clone, Debug)]
pub struct Mapping {
    pub requests: &'static str,
    pub buckets: &'static str,
    /// Matchers inside the braces: which side reported.
    pub selector: &'static str,
    /// Matchers selecting the callee's own reports of the same calls, when
    /// they name the calling workload; the scraped pod is then the callee.
    pub server_selector: Option<&'static str>,
    pub client: &'static [WorkloadLabel],
    pub client_namespace: &'static str,
    pub server: &'static [WorkloadLabel],
    pub server_namespace: &'static str,
    /// The callee's pod, when the mesh labels it.
    pub server_pod: Option<&'static str>,
    /// The target label holding the reporting (calling) pod's name.
    pub pod_label: String,
}

const LINKERD_CLIENT: &[WorkloadLabel] = &[
    ("deployment", Some("Deployment")),
    ("statefulset", Some("StatefulSet")),
    ("daemonset", Some("DaemonSet")),
    ("replicaset", Some("ReplicaSet")),
];
const LINKERD_SERVER: &[WorkloadLabel] = &[
    ("dst_deployment", Some("Deployment")),
    ("dst_statefulset", Some("StatefulSet")),
    ("dst_daemonset", Some("DaemonSet")),
    ("dst_replicaset", Some("ReplicaSet")),
];

impl Mapping {
    pub fn of(kind: MeshKind, pod_label: &str) -> Self {
        match kind {
            MeshKind::Istio => Self {
                requests: "istio_requests_total",
                buckets: "istio_request_duration_milliseconds_bucket",
                selector: r#"reporter="source""#,
                server_selector: Some(r#"reporter="destination""#),
                client: &[("source_workload", None)],
                client_namespace: "source_workload_namespace",
                server: &[("destination_workload", None)],
                server_namespace: "destination_workload_namespace",
                server_pod: None,
                pod_label: pod_label.to_string(),
            },
            MeshKind::Linkerd => Self {
                requests: "request_total",
                buckets: "response_latency_ms_bucket",
                selector: r#"direction="outbound""#,
                server_selector: None,
                client: LINKERD_CLIENT,
                client_namespace: "namespace",
                server: LINKERD_SERVER,
                server_namespace: "dst_namespace",
                server_pod: Some("dst_pod"),
                pod_label: pod_label.to_string(),
            },
        }
    }

    fn by(&self) -> Vec<&str> {
        let mut labels: Vec<&str> = self.client.iter().chain(self.server).map(|(l, _)| *l).collect();
        labels.extend([self.client_namespace, self.server_namespace, self.pod_label.as_str()]);
        labels.extend(self.server_pod);
        labels.sort_unstable();
        labels.dedup();
        labels
    }

    /// Requests per second over `window` (PromQL duration, `300s`).
    pub fn requests_query(&self, window: &str) -> String {
        format!("sum by ({}) (rate({}{{{}}}[{window}]))", self.by().join(", "), self.requests, self.selector)
    }

    /// Per-bucket rates over `window`, to be merged by placement here:
    /// Prometheus does not know which node a pod runs on.
    pub fn buckets_query(&self, window: &str) -> String {
        let mut by = self.by();
        by.push("le");
        format!("sum by ({}) (rate({}{{{}}}[{window}]))", by.join(", "), self.buckets, self.selector)
    }

    /// Per-bucket rates of the callee's own reports, grouped as
    /// [`Self::buckets_query`] groups the caller's; `None`: the mesh has none
    /// per calling workload.
    pub fn server_buckets_query(&self, window: &str) -> Option<String> {
        let mut by = self.by();
        by.push("le");
        let selector = self.server_selector?;
        Some(format!("sum by ({}) (rate({}{{{selector}}}[{window}]))", by.join(", "), self.buckets))
    }

    /// The call a series describes; `None` when a side is unnamed (traffic
    /// from outside the mesh, `unknown` in Istio).
    pub fn call(&self, labels: &BTreeMap<String, String>) -> Option<Call> {
        let (client, server) = self.pair(labels)?;
        let client_pod = labels.get(&self.pod_label).filter(|v| !v.is_empty()).cloned();
        let server_pod = self.server_pod.and_then(|l| labels.get(l)).filter(|v| !v.is_empty()).cloned();
        Some(Call { client, server, client_pod, server_pod })
    }

    /// The call a series of the callee's own reports describes: the scraped
    /// pod is the callee, the caller's pod is not named.
    pub fn server_call(&self, labels: &BTreeMap<String, String>) -> Option<Call> {
        let (client, server) = self.pair(labels)?;
        let server_pod = labels.get(&self.pod_label).filter(|v| !v.is_empty()).cloned();
        Some(Call { client, server, client_pod: None, server_pod })
    }

    fn pair(&self, labels: &BTreeMap<String, String>) -> Option<(Named, Named)> {
        let side = |names: &[WorkloadLabel], ns: &str| -> Option<Named> {
            let namespace = labels.get(ns).filter(|v| !v.is_empty())?.clone();
            names.iter().find_map(|(label, kind)| {
                let name = labels.get(*label).filter(|v| !v.is_empty() && v.as_str() != "unknown")?;
                Some(Named { kind: kind.map(str::to_string), namespace: namespace.clone(), name: name.clone() })
            })
        };
        Some((side(self.client, self.client_namespace)?, side(self.server, self.server_namespace)?))
    }
}

/// A workload as the mesh names it.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Named {
    pub kind: Option<String>,
    pub namespace: String,
    pub name: String,
}

/// Who called whom, and from which pod to which (when labelled).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Call {
    pub client: Named,
    pub server: Named,
    pub client_pod: Option<String>,
    pub server_pod: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn istio_queries_group_by_both_workloads_and_the_reporting_pod() {
        let m = Mapping::of(MeshKind::Istio, "pod");
        assert_eq!(
            m.buckets_query("300s"),
            "sum by (destination_workload, destination_workload_namespace, pod, source_workload, source_workload_namespace, le) \
             (rate(istio_request_duration_milliseconds_bucket{reporter=\"source\"}[300s]))"
        );
        let call = m
            .call(&labels(&[
                ("source_workload", "web"),
                ("source_workload_namespace", "shop"),
                ("destination_workload", "cart"),
                ("destination_workload_namespace", "shop"),
                ("pod", "web-1"),
            ]))
            .unwrap();
        assert_eq!(call.client.name, "web");
        assert_eq!(call.client.kind, None);
        assert_eq!(call.client_pod.as_deref(), Some("web-1"));
        assert_eq!(call.server_pod, None);
        // Calls from outside the mesh are not a pair.
        assert!(m.call(&labels(&[("source_workload", "unknown"), ("destination_workload", "cart")])).is_none());
        // The callee's own reports of the same calls: the scraped pod is the callee.
        assert_eq!(
            m.server_buckets_query("300s").as_deref(),
            Some(
                "sum by (destination_workload, destination_workload_namespace, pod, source_workload, source_workload_namespace, le) \
                 (rate(istio_request_duration_milliseconds_bucket{reporter=\"destination\"}[300s]))"
            )
        );
        let served = m
            .server_call(&labels(&[
                ("source_workload", "web"),
                ("source_workload_namespace", "shop"),
                ("destination_workload", "cart"),
                ("destination_workload_namespace", "shop"),
                ("pod", "cart-7"),
            ]))
            .unwrap();
        assert_eq!((served.client_pod, served.server_pod.as_deref()), (None, Some("cart-7")));
    }

    #[test]
    fn linkerd_names_the_kind_and_the_callee_pod() {
        let m = Mapping::of(MeshKind::Linkerd, "pod");
        assert!(m.requests_query("60s").contains(r#"request_total{direction="outbound"}[60s]"#));
        // Its inbound series name the caller by identity only: no server side per pair.
        assert_eq!(m.server_buckets_query("60s"), None);
        let call = m
            .call(&labels(&[
                ("statefulset", "api"),
                ("namespace", "shop"),
                ("dst_deployment", "db"),
                ("dst_namespace", "data"),
                ("pod", "api-0"),
                ("dst_pod", "db-7d9-x"),
            ]))
            .unwrap();
        assert_eq!(call.client.kind.as_deref(), Some("StatefulSet"));
        assert_eq!(call.server.kind.as_deref(), Some("Deployment"));
        assert_eq!(call.server.namespace, "data");
        assert_eq!(call.server_pod.as_deref(), Some("db-7d9-x"));
    }
}
