//! The harness's view of the cluster: objects read and written with the
//! administrator's client (the same calls against the real control plane and
//! kubesim).

use std::fmt::Debug;
use std::time::Duration;

use k8s_openapi::NamespaceResourceScope;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{Node, Pod};
use kube::api::{Api, ListParams, Patch, PatchParams, PostParams};
use kube::{Resource, ResourceExt};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::json;

use super::{NS, World, is_running, node_of};

pub fn is_ready(node: &Node) -> bool {
    node.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .into_iter()
        .flatten()
        .any(|c| c.type_ == "Ready" && c.status == "True")
}

/// `Ready` of a node: `True`, `False`, `Unknown`.
pub fn ready_status(node: &Node) -> Option<String> {
    node.status.as_ref()?.conditions.as_ref()?.iter().find(|c| c.type_ == "Ready").map(|c| c.status.clone())
}

impl World {
    /// Creates a namespaced object in its namespace (default `default`).
    pub async fn create<K>(&self, obj: &K) -> K
    where
        K: Resource<DynamicType = (), Scope = NamespaceResourceScope> + Clone + Debug + Serialize + DeserializeOwned,
    {
        let ns = obj.meta().namespace.clone().unwrap_or_else(|| NS.to_string());
        let api: Api<K> = Api::namespaced(self.client.clone(), &ns);
        api.create(&PostParams::default(), obj).await.unwrap_or_else(|e| panic!("create {}: {e}", obj.name_any()))
    }

    /// A namespaced object, if it exists.
    pub async fn get<K>(&self, namespace: &str, name: &str) -> Option<K>
    where
        K: Resource<DynamicType = (), Scope = NamespaceResourceScope> + Clone + Debug + DeserializeOwned,
    {
        let api: Api<K> = Api::namespaced(self.client.clone(), namespace);
        api.get_opt(name).await.unwrap_or_else(|e| panic!("get {name}: {e}"))
    }

    /// Every object of a kind, in every namespace.
    pub async fn list_all<K>(&self) -> Vec<K>
    where
        K: Resource<DynamicType = ()> + Clone + Debug + DeserializeOwned,
    {
        Api::<K>::all(self.client.clone()).list(&ListParams::default()).await.expect("list").items
    }

    pub async fn node(&self, name: &str) -> Option<Node> {
        Api::<Node>::all(self.client.clone()).get_opt(name).await.unwrap_or_else(|e| panic!("get node {name}: {e}"))
    }

    pub async fn nodes(&self) -> Vec<Node> {
        self.list_all::<Node>().await
    }

    /// Pods in `default` whose name starts with `prefix`.
    pub async fn pods(&self, prefix: &str) -> Vec<Pod> {
        let api: Api<Pod> = Api::namespaced(self.client.clone(), NS);
        api.list(&ListParams::default())
            .await
            .expect("list pods")
            .items
            .into_iter()
            .filter(|p| p.name_any().starts_with(prefix))
            .collect()
    }

    /// Pods of `prefix` running (not terminating).
    pub async fn running(&self, prefix: &str) -> Vec<Pod> {
        self.pods(prefix).await.into_iter().filter(is_running).collect()
    }

    /// Pods of `prefix` running on `node` (not terminating).
    pub async fn running_on(&self, prefix: &str, node: &str) -> usize {
        self.running(prefix).await.iter().filter(|p| node_of(p) == Some(node)).count()
    }

    pub async fn set_cordon(&self, node: &str, cordoned: bool) {
        let nodes: Api<Node> = Api::all(self.client.clone());
        let patch = json!({"spec": {"unschedulable": cordoned}});
        nodes.patch(node, &PatchParams::default(), &Patch::Merge(&patch)).await.expect("cordon");
    }

    pub async fn set_replicas(&self, deployment: &str, replicas: i32) {
        let api: Api<Deployment> = Api::namespaced(self.client.clone(), NS);
        let patch = json!({"spec": {"replicas": replicas}});
        api.patch(deployment, &PatchParams::default(), &Patch::Merge(&patch)).await.expect("scale");
    }

    /// Deletes a Node object, as an administrator would (`kubectl delete node`).
    pub async fn delete_node(&self, name: &str) {
        let nodes: Api<Node> = Api::all(self.client.clone());
        nodes.delete(name, &Default::default()).await.expect("delete the node");
    }

    /// Puts a Deployment's pods on `node` by cordoning the other nodes while they schedule.
    pub async fn place_on(&self, node: &str, d: Deployment) {
        let name = d.metadata.name.clone().unwrap();
        let replicas = d.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1) as usize;
        let others: Vec<String> =
            self.nodes().await.into_iter().filter_map(|n| n.metadata.name).filter(|n| n != node).collect();
        for o in &others {
            self.set_cordon(o, true).await;
        }
        self.create(&d).await;
        self.wait(&format!("{name} running on {node}"), Duration::from_secs(60), async || {
            self.running(&name).await.iter().filter(|p| node_of(p) == Some(node)).count() == replicas
        })
        .await;
        for o in &others {
            self.set_cordon(o, false).await;
        }
    }
}
