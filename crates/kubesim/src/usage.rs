//! Container resource usage: piecewise-constant usage models set by the
//! harness, and the per-container accounting (cumulative CPU, current memory)
//! the kubelet stats endpoints and the OOM killer read.
//!
//! A model's step offsets count from the container's (re)start, so a profile
//! ("200 MiB, then 600 MiB after 30 s") replays for every container instance,
//! including replacements created by controllers. Cumulative CPU is integrated
//! exactly over the model in force at each moment: changing a model folds the
//! usage so far into the counter first.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use tokio::sync::watch;

use crate::selectors::LabelSelector;
use crate::time::Timestamp;

/// From `after` (since container start) on, the container uses this much.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UsageStep {
    #[serde(rename = "afterMillis", with = "millis")]
    pub after: Duration,
    pub cpu_millicores: u64,
    pub memory_bytes: u64,
}

mod millis {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(d.as_millis() as u64)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        Ok(Duration::from_millis(u64::deserialize(d)?))
    }
}

/// Piecewise-constant CPU and memory over a container's lifetime. Before the
/// first step's offset the container uses nothing.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct UsageModel {
    pub steps: Vec<UsageStep>,
}

impl UsageModel {
    pub fn constant(cpu_millicores: u64, memory_bytes: u64) -> UsageModel {
        UsageModel { steps: vec![UsageStep { after: Duration::ZERO, cpu_millicores, memory_bytes }] }
    }

    /// Steps as (offset since container start, millicores, bytes), in any order.
    pub fn steps(steps: impl IntoIterator<Item = (Duration, u64, u64)>) -> UsageModel {
        let mut steps: Vec<UsageStep> = steps
            .into_iter()
            .map(|(after, cpu_millicores, memory_bytes)| UsageStep { after, cpu_millicores, memory_bytes })
            .collect();
        steps.sort_by_key(|s| s.after);
        UsageModel { steps }
    }

    fn normalized(mut self) -> UsageModel {
        self.steps.sort_by_key(|s| s.after);
        self
    }

    /// (millicores, bytes) at offset `t`.
    pub fn at(&self, t: Duration) -> (u64, u64) {
        self.steps.iter().rev().find(|s| s.after <= t).map(|s| (s.cpu_millicores, s.memory_bytes)).unwrap_or((0, 0))
    }

    /// CPU used between offsets `from` and `to`, in core-nanoseconds.
    pub fn cpu_integral(&self, from: Duration, to: Duration) -> f64 {
        if to <= from {
            return 0.0;
        }
        let mut total = 0.0;
        for (i, step) in self.steps.iter().enumerate() {
            let start = step.after.max(from);
            let end = self.steps.get(i + 1).map(|n| n.after).unwrap_or(Duration::MAX).min(to);
            if end > start {
                // millicores × 10⁶ = nanocores; × seconds = core-nanoseconds.
                total += step.cpu_millicores as f64 * 1e6 * (end - start).as_secs_f64();
            }
        }
        total
    }

    /// The first offset at or after `from` where memory exceeds `limit`.
    pub fn memory_exceeds(&self, from: Duration, limit: u64) -> Option<Duration> {
        if self.at(from).1 > limit {
            return Some(from);
        }
        self.steps.iter().find(|s| s.after > from && s.memory_bytes > limit).map(|s| s.after)
    }
}

/// Which containers a usage model applies to.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "camelCase")]
pub enum UsageTarget {
    /// One pod (all its containers, or one).
    #[serde(rename_all = "camelCase")]
    Pod { namespace: String, name: String, container: Option<String> },
    /// Pods matching a label selector (query syntax, e.g. "app=web"), now and later.
    #[serde(rename_all = "camelCase")]
    Selector { namespace: Option<String>, selector: String, container: Option<String> },
}

impl UsageTarget {
    pub fn pod(namespace: &str, name: &str) -> UsageTarget {
        UsageTarget::Pod { namespace: namespace.to_string(), name: name.to_string(), container: None }
    }

    pub fn selector(namespace: Option<&str>, selector: &str) -> UsageTarget {
        UsageTarget::Selector {
            namespace: namespace.map(str::to_string),
            selector: selector.to_string(),
            container: None,
        }
    }

    pub fn container(self, container: &str) -> UsageTarget {
        match self {
            UsageTarget::Pod { namespace, name, .. } => {
                UsageTarget::Pod { namespace, name, container: Some(container.to_string()) }
            }
            UsageTarget::Selector { namespace, selector, .. } => {
                UsageTarget::Selector { namespace, selector, container: Some(container.to_string()) }
            }
        }
    }
}

struct Rule {
    target: UsageTarget,
    selector: LabelSelector,
    model: Arc<UsageModel>,
}

impl Rule {
    /// Specificity: pod rules beat selector rules; container-scoped beat pod-wide.
    fn applies(&self, ns: &str, name: &str, labels: &Value, container: &str) -> Option<u8> {
        match &self.target {
            UsageTarget::Pod { namespace, name: n, container: c } => {
                (namespace == ns && n == name && c.as_deref().is_none_or(|c| c == container))
                    .then_some(if c.is_some() { 4 } else { 3 })
            }
            UsageTarget::Selector { namespace, container: c, .. } => (namespace.as_deref().is_none_or(|n| n == ns)
                && c.as_deref().is_none_or(|c| c == container)
                && self.selector.matches_labels(labels))
            .then_some(if c.is_some() { 2 } else { 1 }),
        }
    }
}

/// A running container instance as the kubelet model tracks it.
#[derive(Clone, Debug)]
pub struct ContainerRun {
    pub name: String,
    /// False while the container waits to be restarted (crash-loop back-off).
    pub running: bool,
    pub started: Timestamp,
    pub memory_limit: Option<u64>,
    model: Arc<UsageModel>,
    cpu_total: f64,
    counted_until: Timestamp,
}

impl ContainerRun {
    fn offset(&self, at: Timestamp) -> Duration {
        Duration::try_from(at.duration_since(self.started)).unwrap_or(Duration::ZERO)
    }

    fn fold(&mut self, now: Timestamp) {
        if self.running {
            let (from, to) = (self.offset(self.counted_until), self.offset(now));
            self.cpu_total += self.model.cpu_integral(from, to);
        }
        self.counted_until = now;
    }

    fn cpu_until(&self, now: Timestamp) -> f64 {
        if !self.running {
            return self.cpu_total;
        }
        self.cpu_total + self.model.cpu_integral(self.offset(self.counted_until), self.offset(now))
    }

    /// When memory first exceeds the limit, at or after `now`.
    pub fn oom_at(&self, now: Timestamp) -> Option<Timestamp> {
        if !self.running {
            return None;
        }
        let limit = self.memory_limit?;
        let offset = self.model.memory_exceeds(self.offset(now), limit)?;
        self.started.checked_add(offset).ok()
    }
}

#[derive(Clone, Debug)]
pub struct PodRun {
    pub uid: String,
    pub namespace: String,
    pub name: String,
    pub labels: Value,
    pub started: Timestamp,
    pub containers: Vec<ContainerRun>,
}

/// Usage at one instant.
#[derive(Clone, Debug)]
pub struct ContainerSample {
    pub name: String,
    pub started: Timestamp,
    pub cpu_nanocores: u64,
    pub cpu_core_nanoseconds: u64,
    pub memory_bytes: u64,
    pub memory_limit: Option<u64>,
}

#[derive(Clone, Debug)]
pub struct PodSample {
    pub uid: String,
    pub namespace: String,
    pub name: String,
    pub started: Timestamp,
    pub containers: Vec<ContainerSample>,
}

struct Inner {
    rules: Vec<Rule>,
    default: Arc<UsageModel>,
    /// node → pod uid → running pod.
    nodes: HashMap<String, BTreeMap<String, PodRun>>,
    /// CPU of containers that have stopped, per node, so the node's
    /// cumulative counter never goes backwards.
    retired: HashMap<String, f64>,
}

impl Inner {
    fn resolve(&self, ns: &str, name: &str, labels: &Value, container: &str) -> Arc<UsageModel> {
        let mut best: Option<(u8, usize)> = None;
        for (i, rule) in self.rules.iter().enumerate() {
            if let Some(score) = rule.applies(ns, name, labels, container)
                && best.is_none_or(|(s, _)| score >= s)
            {
                best = Some((score, i));
            }
        }
        best.map(|(_, i)| self.rules[i].model.clone()).unwrap_or_else(|| self.default.clone())
    }

    fn refresh(&mut self, now: Timestamp) {
        let mut resolved = Vec::new();
        for pods in self.nodes.values() {
            for pod in pods.values() {
                for c in &pod.containers {
                    resolved.push(self.resolve(&pod.namespace, &pod.name, &pod.labels, &c.name));
                }
            }
        }
        let mut resolved = resolved.into_iter();
        for pods in self.nodes.values_mut() {
            for pod in pods.values_mut() {
                for c in &mut pod.containers {
                    let model = resolved.next().expect("one model per container");
                    if model != c.model {
                        c.fold(now);
                        c.model = model;
                    }
                }
            }
        }
    }
}

/// Usage models plus the accounting of every running container.
pub struct Usage {
    inner: Mutex<Inner>,
    changed: watch::Sender<u64>,
}

impl Usage {
    pub fn new(default: UsageModel) -> Usage {
        Usage {
            inner: Mutex::new(Inner {
                rules: Vec::new(),
                default: Arc::new(default.normalized()),
                nodes: HashMap::new(),
                retired: HashMap::new(),
            }),
            changed: watch::channel(0).0,
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Sets the model for a target, replacing an earlier model for the same target.
    pub fn set(&self, target: UsageTarget, model: UsageModel) -> Result<(), String> {
        let selector = match &target {
            UsageTarget::Selector { selector, .. } => LabelSelector::parse(selector)?,
            UsageTarget::Pod { .. } => LabelSelector::everything(),
        };
        let now = crate::time::now();
        let mut inner = self.lock();
        inner.rules.retain(|r| r.target != target);
        inner.rules.push(Rule { target, selector, model: Arc::new(model.normalized()) });
        inner.refresh(now);
        drop(inner);
        self.changed.send_modify(|n| *n += 1);
        Ok(())
    }

    /// Removes every model; containers fall back to the default.
    pub fn clear(&self) {
        let now = crate::time::now();
        let mut inner = self.lock();
        inner.rules.clear();
        inner.refresh(now);
        drop(inner);
        self.changed.send_modify(|n| *n += 1);
    }

    /// Notified when models change (the OOM killer re-plans).
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.changed.subscribe()
    }

    /// Records a pod's containers starting on a node.
    pub fn pod_started(&self, node: &str, mut pod: PodRun) {
        let mut inner = self.lock();
        for c in &mut pod.containers {
            c.model = inner.resolve(&pod.namespace, &pod.name, &pod.labels, &c.name);
        }
        inner.nodes.entry(node.to_string()).or_default().insert(pod.uid.clone(), pod);
    }

    pub fn new_container(name: &str, started: Timestamp, memory_limit: Option<u64>) -> ContainerRun {
        ContainerRun {
            name: name.to_string(),
            running: true,
            started,
            memory_limit,
            model: Arc::new(UsageModel::constant(0, 0)),
            cpu_total: 0.0,
            counted_until: started,
        }
    }

    /// A container restarted: a new instance whose counters and model offsets start over.
    pub fn container_restarted(&self, node: &str, uid: &str, container: &str, at: Timestamp) {
        let mut inner = self.lock();
        let mut retired = 0.0;
        if let Some(c) = container_mut(&mut inner, node, uid, container) {
            c.fold(at);
            retired = c.cpu_total;
            c.started = at;
            c.counted_until = at;
            c.cpu_total = 0.0;
            c.running = true;
        }
        *inner.retired.entry(node.to_string()).or_default() += retired;
    }

    /// A container stopped (killed, waiting in back-off): no usage until it restarts.
    pub fn container_stopped(&self, node: &str, uid: &str, container: &str, at: Timestamp) {
        let mut inner = self.lock();
        if let Some(c) = container_mut(&mut inner, node, uid, container) {
            c.fold(at);
            c.running = false;
        }
    }

    pub fn set_memory_limit(&self, node: &str, uid: &str, container: &str, limit: Option<u64>) {
        let mut inner = self.lock();
        if let Some(c) = container_mut(&mut inner, node, uid, container) {
            c.memory_limit = limit;
        }
    }

    pub fn pod_labels_changed(&self, node: &str, uid: &str, labels: &Value) {
        let now = crate::time::now();
        let mut inner = self.lock();
        let Some(pod) = inner.nodes.get_mut(node).and_then(|p| p.get_mut(uid)) else { return };
        if pod.labels == *labels {
            return;
        }
        pod.labels = labels.clone();
        inner.refresh(now);
    }

    pub fn pod_stopped(&self, node: &str, uid: &str) {
        let now = crate::time::now();
        let mut inner = self.lock();
        let Some(mut pod) = inner.nodes.get_mut(node).and_then(|pods| pods.remove(uid)) else { return };
        let mut retired = 0.0;
        for c in &mut pod.containers {
            c.fold(now);
            retired += c.cpu_total;
        }
        *inner.retired.entry(node.to_string()).or_default() += retired;
    }

    pub fn node_removed(&self, node: &str) {
        let mut inner = self.lock();
        inner.nodes.remove(node);
        inner.retired.remove(node);
    }

    /// Cumulative CPU of everything that ran on a node, in core-nanoseconds.
    pub fn node_cpu_total(&self, node: &str, now: Timestamp) -> u64 {
        let inner = self.lock();
        let mut total = inner.retired.get(node).copied().unwrap_or(0.0);
        for pod in inner.nodes.get(node).into_iter().flat_map(|p| p.values()) {
            for c in &pod.containers {
                total += c.cpu_until(now);
            }
        }
        total.round() as u64
    }

    /// Current memory of one container, if it runs.
    pub fn memory_of(&self, node: &str, uid: &str, container: &str) -> Option<u64> {
        let now = crate::time::now();
        let mut inner = self.lock();
        container_mut(&mut inner, node, uid, container).filter(|c| c.running).map(|c| c.model.at(c.offset(now)).1)
    }

    /// Upcoming OOM kills of one pod's containers: (container, when).
    pub fn oom_schedule_for(&self, node: &str, uid: &str, now: Timestamp) -> Vec<(String, Timestamp)> {
        let inner = self.lock();
        let Some(pod) = inner.nodes.get(node).and_then(|p| p.get(uid)) else { return Vec::new() };
        pod.containers.iter().filter_map(|c| Some((c.name.clone(), c.oom_at(now)?))).collect()
    }

    /// Upcoming OOM kills everywhere: (node, pod uid, container, when).
    pub fn oom_schedule(&self, now: Timestamp) -> Vec<(String, String, String, Timestamp)> {
        let inner = self.lock();
        let mut out = Vec::new();
        for (node, pods) in &inner.nodes {
            for (uid, pod) in pods {
                for c in &pod.containers {
                    if let Some(at) = c.oom_at(now) {
                        out.push((node.clone(), uid.clone(), c.name.clone(), at));
                    }
                }
            }
        }
        out
    }

    /// Usage of every running pod on a node at `now`.
    pub fn sample(&self, node: &str, now: Timestamp) -> Vec<PodSample> {
        let inner = self.lock();
        let Some(pods) = inner.nodes.get(node) else { return Vec::new() };
        pods.values()
            .map(|pod| PodSample {
                uid: pod.uid.clone(),
                namespace: pod.namespace.clone(),
                name: pod.name.clone(),
                started: pod.started,
                containers: pod
                    .containers
                    .iter()
                    .filter(|c| c.running)
                    .map(|c| {
                        let offset = c.offset(now);
                        let (cpu, mem) = c.model.at(offset);
                        let total = c.cpu_until(now);
                        ContainerSample {
                            name: c.name.clone(),
                            started: c.started,
                            cpu_nanocores: cpu * 1_000_000,
                            cpu_core_nanoseconds: total.round() as u64,
                            memory_bytes: mem,
                            memory_limit: c.memory_limit,
                        }
                    })
                    .collect(),
            })
            .collect()
    }
}

fn container_mut<'a>(inner: &'a mut Inner, node: &str, uid: &str, container: &str) -> Option<&'a mut ContainerRun> {
    inner.nodes.get_mut(node)?.get_mut(uid)?.containers.iter_mut().find(|c| c.name == container)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integrates_piecewise_constant_cpu() {
        let m = UsageModel::steps([
            (Duration::ZERO, 100, 10),
            (Duration::from_secs(10), 500, 20),
            (Duration::from_secs(20), 0, 30),
        ]);
        assert_eq!(m.at(Duration::from_secs(5)), (100, 10));
        assert_eq!(m.at(Duration::from_secs(15)), (500, 20));
        // 10 s at 0.1 core + 10 s at 0.5 core = 6 core-seconds.
        let total = m.cpu_integral(Duration::ZERO, Duration::from_secs(30));
        assert!((total - 6e9).abs() < 1.0, "{total}");
        assert_eq!(m.memory_exceeds(Duration::ZERO, 15), Some(Duration::from_secs(10)));
        assert_eq!(m.memory_exceeds(Duration::from_secs(12), 15), Some(Duration::from_secs(12)));
        assert_eq!(m.memory_exceeds(Duration::ZERO, 30), None);
    }
}
