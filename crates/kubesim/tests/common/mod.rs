//! Shared test setup: a kubesim with fast timings and a few nodes.

#![allow(dead_code)]

use std::time::Duration;

use kube::Client;
use kubesim::{KubeSim, KubeSimHandle, NodeSpec, Options};

pub const WAIT: Duration = Duration::from_secs(20);

pub async fn start(nodes: Vec<NodeSpec>) -> (KubeSimHandle, Client) {
    start_with(Options::fast(), nodes).await
}

pub async fn start_with(options: Options, nodes: Vec<NodeSpec>) -> (KubeSimHandle, Client) {
    let sim = KubeSim::start(options).await.expect("kubesim starts");
    for node in nodes {
        sim.add_node(node).expect("node added");
    }
    // Without kube-rs' retry layer: tests assert on the answers themselves (429s included).
    let client = sim.kube_client_without_retries().expect("kube client");
    (sim, client)
}

pub fn nodes(n: usize, cpu: &str, memory: &str) -> Vec<NodeSpec> {
    (0..n).map(|i| NodeSpec::new(&format!("node-{i}")).cpu(cpu).memory(memory)).collect()
}

/// The Status of a failed API call.
pub fn status_of<T: std::fmt::Debug>(result: Result<T, kube::Error>) -> Box<kube::core::Status> {
    match result {
        Err(kube::Error::Api(status)) => status,
        other => panic!("expected an API error, got {other:?}"),
    }
}
