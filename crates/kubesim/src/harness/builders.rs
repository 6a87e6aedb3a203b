//! Conveniences for harnesses: typed objects for common test workloads.
//! They are plain k8s-openapi values; create them through the harness or
//! through any client.

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::{DaemonSet, Deployment, ReplicaSet};
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

/// One-container pod template: image, requests/limits, labels, resize policy.
#[derive(Clone, Debug)]
pub struct PodTemplate {
    container: String,
    image: String,
    labels: BTreeMap<String, String>,
    requests: BTreeMap<String, String>,
    limits: BTreeMap<String, String>,
    resize_policy: Vec<(String, String)>,
    node_selector: BTreeMap<String, String>,
    tolerations: Vec<Value>,
    anti_affinity_hostname: bool,
    grace_period: Option<i64>,
    restart_policy: Option<String>,
}

fn typed<T: DeserializeOwned>(v: Value) -> T {
    serde_json::from_value(v).expect("kubesim builders produce valid objects")
}

impl PodTemplate {
    pub fn new(container: &str) -> PodTemplate {
        PodTemplate {
            container: container.to_string(),
            image: "registry.k8s.io/pause:3.10".to_string(),
            labels: BTreeMap::new(),
            requests: BTreeMap::new(),
            limits: BTreeMap::new(),
            resize_policy: Vec::new(),
            node_selector: BTreeMap::new(),
            tolerations: Vec::new(),
            anti_affinity_hostname: false,
            grace_period: None,
            restart_policy: None,
        }
    }

    pub fn image(mut self, image: &str) -> Self {
        self.image = image.to_string();
        self
    }

    pub fn label(mut self, key: &str, value: &str) -> Self {
        self.labels.insert(key.to_string(), value.to_string());
        self
    }

    pub fn requests(mut self, cpu: &str, memory: &str) -> Self {
        self.requests.insert("cpu".into(), cpu.into());
        self.requests.insert("memory".into(), memory.into());
        self
    }

    pub fn limits(mut self, cpu: &str, memory: &str) -> Self {
        self.limits.insert("cpu".into(), cpu.into());
        self.limits.insert("memory".into(), memory.into());
        self
    }

    pub fn memory_limit(mut self, memory: &str) -> Self {
        self.limits.insert("memory".into(), memory.into());
        self
    }

    /// `restart_policy` is NotRequired or RestartContainer.
    pub fn resize_policy(mut self, resource: &str, restart_policy: &str) -> Self {
        self.resize_policy.push((resource.to_string(), restart_policy.to_string()));
        self
    }

    pub fn node_selector(mut self, key: &str, value: &str) -> Self {
        self.node_selector.insert(key.to_string(), value.to_string());
        self
    }

    pub fn toleration(mut self, key: &str, effect: &str) -> Self {
        self.tolerations.push(json!({"key": key, "operator": "Exists", "effect": effect}));
        self
    }

    /// Required anti-affinity against pods with the same labels, per node.
    pub fn spread_one_per_node(mut self) -> Self {
        self.anti_affinity_hostname = true;
        self
    }

    pub fn grace_period(mut self, seconds: i64) -> Self {
        self.grace_period = Some(seconds);
        self
    }

    pub fn restart_policy(mut self, policy: &str) -> Self {
        self.restart_policy = Some(policy.to_string());
        self
    }

    fn spec(&self) -> Value {
        let mut container = json!({"name": self.container, "image": self.image, "resources": {}});
        if !self.requests.is_empty() {
            container["resources"]["requests"] = json!(self.requests);
        }
        if !self.limits.is_empty() {
            container["resources"]["limits"] = json!(self.limits);
        }
        if !self.resize_policy.is_empty() {
            container["resizePolicy"] =
                self.resize_policy.iter().map(|(r, p)| json!({"resourceName": r, "restartPolicy": p})).collect();
        }
        let mut spec = json!({"containers": [container]});
        if !self.node_selector.is_empty() {
            spec["nodeSelector"] = json!(self.node_selector);
        }
        if !self.tolerations.is_empty() {
            spec["tolerations"] = json!(self.tolerations);
        }
        if let Some(g) = self.grace_period {
            spec["terminationGracePeriodSeconds"] = json!(g);
        }
        if let Some(p) = &self.restart_policy {
            spec["restartPolicy"] = json!(p);
        }
        if self.anti_affinity_hostname {
            spec["affinity"] = json!({"podAntiAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [{
                "labelSelector": {"matchLabels": self.labels},
                "topologyKey": "kubernetes.io/hostname",
            }]}});
        }
        spec
    }

    fn template(&self) -> Value {
        json!({"metadata": {"labels": self.labels}, "spec": self.spec()})
    }

    pub fn pod(&self, namespace: &str, name: &str) -> Pod {
        typed(json!({
            "metadata": {"name": name, "namespace": namespace, "labels": self.labels},
            "spec": self.spec(),
        }))
    }

    pub fn deployment(&self, namespace: &str, name: &str, replicas: i32) -> Deployment {
        typed(json!({
            "metadata": {"name": name, "namespace": namespace, "labels": self.labels},
            "spec": {"replicas": replicas, "selector": {"matchLabels": self.labels}, "template": self.template()},
        }))
    }

    pub fn replica_set(&self, namespace: &str, name: &str, replicas: i32) -> ReplicaSet {
        typed(json!({
            "metadata": {"name": name, "namespace": namespace, "labels": self.labels},
            "spec": {"replicas": replicas, "selector": {"matchLabels": self.labels}, "template": self.template()},
        }))
    }

    pub fn daemon_set(&self, namespace: &str, name: &str) -> DaemonSet {
        typed(json!({
            "metadata": {"name": name, "namespace": namespace, "labels": self.labels},
            "spec": {"selector": {"matchLabels": self.labels}, "template": self.template()},
        }))
    }
}

/// How much disruption a budget tolerates.
#[derive(Clone, Debug)]
pub enum Budget {
    MinAvailable(Value),
    MaxUnavailable(Value),
}

/// A PodDisruptionBudget selecting pods by labels. Budget values are ints
/// (`json!(2)`) or percentages (`json!("50%")`).
pub fn pdb(namespace: &str, name: &str, match_labels: &[(&str, &str)], budget: Budget) -> PodDisruptionBudget {
    let labels: BTreeMap<&str, &str> = match_labels.iter().copied().collect();
    let mut spec = json!({"selector": {"matchLabels": labels}});
    match budget {
        Budget::MinAvailable(v) => spec["minAvailable"] = v,
        Budget::MaxUnavailable(v) => spec["maxUnavailable"] = v,
    }
    typed(json!({"metadata": {"name": name, "namespace": namespace}, "spec": spec}))
}
