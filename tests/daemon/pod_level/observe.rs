//! Test scaffolding: the cluster as the pod level reads it, listed once —
//! nodes, pods with workloads resolved through ReplicaSets, containers with
//! their applied resources, OOM kills and resize conditions; every other
//! field at `test_support`'s plain value. (The daemon's own observers, with
//! their watches, are tested in `cluster`.)

use std::collections::BTreeMap;
use std::sync::Arc;

use heatscaler_core::model::{
    Container, Node, OwnerRef, Placement, Pod, PodPhase, Resources, Snapshot, Timestamp, WorkloadRef, test_support,
};
use heatscaler_daemon::usage::last_oom_kill;
use heatscaler_daemon::vpa;
use k8s_openapi::api::apps::v1::ReplicaSet;
use k8s_openapi::api::core::v1 as core;
use kube::api::{Api, ListParams};

pub async fn snapshot(client: &kube::Client, now: Timestamp) -> Snapshot {
    let nodes: Api<core::Node> = Api::all(client.clone());
    let pods: Api<core::Pod> = Api::all(client.clone());
    let sets: Api<ReplicaSet> = Api::all(client.clone());
    let deployments: BTreeMap<(String, String), String> = sets
        .list(&ListParams::default())
        .await
        .expect("list ReplicaSets")
        .items
        .into_iter()
        .filter_map(|rs| {
            let owner = rs.metadata.owner_references?.into_iter().find(|o| o.kind == "Deployment")?;
            Some(((rs.metadata.namespace?, rs.metadata.name?), owner.name))
        })
        .collect();
    let placement = Arc::new(Placement::default());
    Snapshot {
        nodes: nodes.list(&ListParams::default()).await.expect("list nodes").items.iter().map(node).collect(),
        pods: pods
            .list(&ListParams::default())
            .await
            .expect("list pods")
            .items
            .iter()
            .map(|p| pod(p, &deployments, &placement, now))
            .collect(),
        ..Snapshot::default()
    }
}

fn resources(list: Option<&BTreeMap<String, k8s_openapi::apimachinery::pkg::api::resource::Quantity>>) -> Resources {
    list.map(|l| Resources::from_quantities(l.iter().map(|(k, v)| (k.as_str(), v.0.as_str()))).unwrap())
        .unwrap_or_default()
}

fn node(n: &core::Node) -> Node {
    let status = n.status.clone().unwrap_or_default();
    Node {
        labels: n.metadata.labels.clone().unwrap_or_default(),
        unschedulable: n.spec.as_ref().and_then(|s| s.unschedulable).unwrap_or(false),
        ready: status.conditions.unwrap_or_default().iter().any(|c| c.type_ == "Ready" && c.status == "True"),
        created: n.metadata.creation_timestamp.as_ref().unwrap().0,
        ..test_support::node(n.metadata.name.as_deref().unwrap(), resources(status.allocatable.as_ref()))
    }
}

fn pod(
    p: &core::Pod,
    deployments: &BTreeMap<(String, String), String>,
    placement: &Arc<Placement>,
    now: Timestamp,
) -> Pod {
    let namespace = p.metadata.namespace.clone().unwrap();
    let owner = p.metadata.owner_references.as_ref().and_then(|o| o.iter().find(|o| o.controller == Some(true)));
    let workload = owner.map(|o| match deployments.get(&(namespace.clone(), o.name.clone())) {
        Some(d) if o.kind == "ReplicaSet" => {
            WorkloadRef { kind: "Deployment".into(), namespace: namespace.clone().into(), name: d.clone().into() }
        }
        _ => WorkloadRef {
            kind: o.kind.clone().into(),
            namespace: namespace.clone().into(),
            name: o.name.clone().into(),
        },
    });
    let spec = p.spec.clone().unwrap_or_default();
    let status = p.status.clone().unwrap_or_default();
    let statuses = status.container_statuses.clone().unwrap_or_default();
    let containers: Vec<Container> = spec
        .containers
        .iter()
        .map(|c| {
            let s = statuses.iter().find(|s| s.name == c.name);
            let r = c.resources.clone().unwrap_or_default();
            Container {
                name: c.name.clone(),
                requests: resources(r.requests.as_ref()),
                limits: resources(r.limits.as_ref()),
                allocated: s.and_then(vpa::allocated_requests),
                oom_kills: 0,
                last_oom: s.and_then(last_oom_kill),
            }
        })
        .collect();
    // What the scheduler reserves: the larger of desired and allocated.
    let mut requests = Resources { pods: 1, ..Resources::default() };
    for c in &containers {
        requests += &c.allocated.as_ref().map_or(c.requests.clone(), |a| a.max(&c.requests));
    }
    let phase = match status.phase.as_deref() {
        Some("Running") => PodPhase::Running,
        Some("Succeeded") => PodPhase::Succeeded,
        Some("Failed") => PodPhase::Failed,
        Some("Pending") => PodPhase::Pending,
        _ => PodPhase::Unknown,
    };
    Pod {
        uid: p.metadata.uid.clone().unwrap().into(),
        namespace: namespace.into(),
        labels: p.metadata.labels.clone().unwrap_or_default().into(),
        owner: owner.map(|o| OwnerRef { kind: o.kind.clone(), name: o.name.clone(), uid: o.uid.clone() }.into()),
        workload,
        node_name: spec.node_name.clone(),
        phase,
        requests,
        containers,
        placement: placement.clone(),
        created: p.metadata.creation_timestamp.as_ref().unwrap().0,
        deletion: p.metadata.deletion_timestamp.as_ref().map(|t| t.0),
        resize: vpa::resize_state(p, now),
        ..test_support::pod(p.metadata.name.as_deref().unwrap())
    }
}
