//! The kubelet model for every node: starts bound pods (admission, Running +
//! Ready, IPs), terminates deleted pods after their (scaled) grace period,
//! admits and actuates in-place resizes, OOM-kills containers whose usage
//! model exceeds their memory limit (with crash-loop back-off), and feeds the
//! usage accounting behind the stats endpoints.

mod resize;
mod status;
#[cfg(test)]
mod tests;

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};
use tokio::time::Instant;

use super::cache::{ObjCache, Update};
use crate::error::ApiError;
use crate::podutil;
use crate::quantity;
use crate::resources::Kind;
use crate::sim::Sim;
use crate::store::{Informer, Obj, ObjKey, Written};
use crate::subresources::binding::{remove_condition, set_condition};
use crate::time::{self, Timestamp};
use crate::usage::{PodRun, Usage};
use resize::{Capacity, Used, Verdict};
use status::{container_id, container_status_mut, cpu_memory, memory_limit};

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Phase {
    Starting,
    Running,
    Terminating,
}

struct PodState {
    key: ObjKey,
    node: String,
    phase: Phase,
    /// What of the pod spec the kubelet has admitted.
    allocated: Option<Allocation>,
    terminate_at: Option<Instant>,
    deferred: bool,
}

/// What the kubelet admitted of a pod's spec: each container's name,
/// resources and resize and restart policies, and the pod overhead — what
/// admission, resize and its actuation read. Kept serialised: a few hundred
/// bytes, where the whole spec as a `Value` was several kilobytes, and every
/// running pod has one.
struct Allocation(Box<[u8]>);

impl Allocation {
    fn of(spec: &Value) -> Allocation {
        let containers = |list: &str| -> Value {
            let kept = ["name", "resources", "resizePolicy", "restartPolicy"];
            let pruned = spec[list].as_array().into_iter().flatten().map(|c| {
                Value::Object(kept.iter().filter_map(|k| Some((k.to_string(), c.get(*k)?.clone()))).collect())
            });
            Value::Array(pruned.collect())
        };
        let mut kept = json!({"containers": containers("containers")});
        if spec["initContainers"].is_array() {
            kept["initContainers"] = containers("initContainers");
        }
        if !spec["overhead"].is_null() {
            kept["overhead"] = spec["overhead"].clone();
        }
        Allocation(serde_json::to_vec(&kept).expect("JSON values always serialise").into_boxed_slice())
    }

    /// The admitted part of the spec, shaped as the spec is.
    fn spec(&self) -> Value {
        serde_json::from_slice(&self.0).expect("an allocation is JSON it serialised")
    }
}

#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Debug)]
enum Action {
    Start(String),
    Terminate(String),
    FinishResize(String),
    Restart(String, String),
    Oom(String, String),
}

struct Kubelet {
    sim: Arc<Sim>,
    pods: ObjCache,
    nodes: ObjCache,
    states: HashMap<String, PodState>,
    /// node → uids of the pods this kubelet model runs there.
    node_pods: HashMap<String, std::collections::HashSet<String>>,
    timers: BinaryHeap<Reverse<(Instant, u64, Action)>>,
    seq: u64,
    ip_counters: HashMap<String, u32>,
    oom_planned: HashMap<(String, String), Timestamp>,
}

const COMPONENT: &str = "kubelet";
const MAX_BACKOFF: Duration = Duration::from_secs(300);

pub async fn run(sim: Arc<Sim>) {
    let mut pods = Informer::new(sim.store.clone(), Kind::Pod);
    let mut nodes = Informer::new(sim.store.clone(), Kind::Node);
    let mut usage_changes = sim.usage.subscribe();
    let retry_every = sim.scale.seconds(10).max(Duration::from_millis(200));
    let mut retry = tokio::time::interval(retry_every);
    let mut k = Kubelet {
        sim,
        pods: ObjCache::default(),
        nodes: ObjCache::default(),
        states: HashMap::new(),
        node_pods: HashMap::new(),
        timers: BinaryHeap::new(),
        seq: 0,
        ip_counters: HashMap::new(),
        oom_planned: HashMap::new(),
    };
    loop {
        let next_timer = k.timers.peek().map(|Reverse((at, _, _))| *at);
        tokio::select! {
            batch = nodes.next() => {
                for u in k.nodes.apply_batch(batch) {
                    k.on_node(u);
                }
            }
            batch = pods.next() => {
                for u in k.pods.apply_batch(batch) {
                    k.on_pod(u);
                }
            }
            _ = usage_changes.changed() => k.plan_ooms(),
            _ = sleep_until(next_timer) => k.fire_due(),
            _ = retry.tick() => k.retry_deferred(None),
        }
    }
}

async fn sleep_until(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

impl Kubelet {
    fn usage(&self) -> &Usage {
        &self.sim.usage
    }

    fn schedule(&mut self, after: Duration, action: Action) {
        self.seq += 1;
        self.timers.push(Reverse((Instant::now() + after, self.seq, action)));
    }

    fn fire_due(&mut self) {
        let now = Instant::now();
        let mut fired = 0;
        while let Some(Reverse((at, _, _))) = self.timers.peek() {
            if *at > now || fired >= 512 {
                break;
            }
            let Some(Reverse((_, _, action))) = self.timers.pop() else { break };
            fired += 1;
            let result = match action {
                Action::Start(uid) => self.start(&uid),
                Action::Terminate(uid) => self.terminate(&uid),
                Action::FinishResize(uid) => self.finish_resize(&uid),
                Action::Restart(uid, c) => self.restart(&uid, &c),
                Action::Oom(uid, c) => self.oom(&uid, &c),
            };
            if let Err(e) = result {
                tracing::debug!(error = %e, "kubesim kubelet: action failed");
            }
        }
    }

    /// Applies a write of ours to the cache and reacts to it.
    fn note(&mut self, written: Written) {
        let update = match &written {
            Written::Deleted(o) => self.pods.note_deleted(o),
            Written::Created(o) | Written::Updated(o) => self.pods.note_written(o),
            _ => None,
        };
        if let Some(u) = update {
            self.on_pod(u);
        }
    }

    fn mutate_pod(&mut self, uid: &str, f: impl FnOnce(&mut Value) -> Result<(), ApiError>) -> Result<(), ApiError> {
        let Some(key) = self.states.get(uid).map(|s| s.key.clone()) else { return Ok(()) };
        let written = self.sim.registry.mutate(Kind::Pod, &key, Some(uid), f)?;
        self.note(written);
        Ok(())
    }

    fn current_pod(&self, uid: &str) -> Option<Arc<Obj>> {
        let state = self.states.get(uid)?;
        self.pods.get(&state.key).filter(|o| o.uid() == uid).cloned()
    }

    fn on_node(&mut self, u: Update) {
        let node = u.key.name.clone();
        if u.new.is_none() {
            self.usage().node_removed(&node);
            for uid in self.node_pods.remove(&node).unwrap_or_default() {
                self.states.remove(&uid);
            }
            return;
        }
        if u.old.is_none() {
            // Pods bound before this kubelet saw its node register.
            let bound: Vec<Arc<Obj>> = self.pods.values().filter(|p| p.node_name() == node).cloned().collect();
            for pod in bound {
                self.on_pod(Update { key: pod.key.clone(), old: None, new: Some(pod) });
            }
        }
    }

    fn on_pod(&mut self, u: Update) {
        if let Some(old) = &u.old
            && u.new.as_ref().is_none_or(|n| n.uid() != old.uid())
        {
            self.forget(old.uid());
        }
        let Some(obj) = u.new else { return };
        let pod = &obj.value();
        let uid = obj.uid().to_string();
        let node = podutil::node_name(pod).to_string();
        if node.is_empty() || self.nodes.get(&ObjKey::cluster(&node)).is_none() {
            return;
        }
        if podutil::is_terminal(pod) {
            if self.states.get(&uid).is_some_and(|s| s.phase != Phase::Terminating) {
                self.forget(&uid);
            }
            if podutil::is_deleting(pod) {
                let _ = self.sim.registry.finish_deletion(Kind::Pod, &obj.key, &uid);
            }
            return;
        }
        if !self.states.contains_key(&uid) {
            self.node_pods.entry(node.clone()).or_default().insert(uid.clone());
            self.states.insert(
                uid.clone(),
                PodState {
                    key: obj.key.clone(),
                    node: node.clone(),
                    phase: Phase::Starting,
                    allocated: None,
                    terminate_at: None,
                    deferred: false,
                },
            );
            let delay = self.sim.scale.scale(self.sim.options.pod_start_delay);
            self.schedule(delay, Action::Start(uid.clone()));
        }
        if podutil::is_deleting(pod) {
            let grace = pod["metadata"]["deletionGracePeriodSeconds"].as_i64().unwrap_or(0);
            let after = self.sim.scale.seconds(grace);
            let at = Instant::now() + after;
            let state = self.states.get_mut(&uid).expect("inserted above");
            state.phase = Phase::Terminating;
            if state.terminate_at.is_none_or(|t| at < t) {
                state.terminate_at = Some(at);
                self.schedule(after, Action::Terminate(uid));
            }
            return;
        }
        if self.states.get(&uid).is_some_and(|s| s.phase == Phase::Running) {
            // Both sides as `Obj::labels` gives them (`{}` when there are
            // none), as the usage model was given them when the pod started.
            let labels = obj.labels();
            if u.old.as_ref().is_some_and(|o| o.labels() != labels) {
                self.usage().pod_labels_changed(&node, &uid, &labels);
            }
            if let Err(e) = self.reconcile_resize(&uid) {
                tracing::debug!(error = %e, "kubesim kubelet: resize");
            }
        }
    }

    /// Stops tracking a pod: its containers are gone.
    fn forget(&mut self, uid: &str) {
        if let Some(state) = self.states.remove(uid) {
            if let Some(set) = self.node_pods.get_mut(&state.node) {
                set.remove(uid);
            }
            self.usage().pod_stopped(&state.node, uid);
            self.retry_deferred(Some(&state.node));
        }
    }

    fn capacity(&self, node: &str) -> Capacity {
        let Some(obj) = self.nodes.get(&ObjKey::cluster(node)) else { return Capacity::default() };
        let a = &obj.value()["status"]["allocatable"];
        let text = |k: &str| a[k].as_str().unwrap_or("").to_string();
        Capacity {
            cpu: quantity::cpu_millis(&text("cpu")).unwrap_or(0),
            mem: quantity::whole_units(&text("memory")).unwrap_or(0),
            pods: quantity::whole_units(&text("pods")).unwrap_or(0),
        }
    }

    /// Resources held by admitted pods on a node, except `except`.
    fn used(&self, node: &str, except: &str) -> Used {
        let mut used = Used::default();
        for uid in self.node_pods.get(node).into_iter().flatten() {
            let Some(s) = self.states.get(uid) else { continue };
            if uid == except {
                continue;
            }
            let Some(allocated) = &s.allocated else { continue };
            let (cpu, mem) = crate::kinds::pod_requests_from_spec(&allocated.spec());
            used.cpu += cpu;
            used.mem += mem;
            used.pods += 1;
        }
        used
    }

    /// Whether the node's kubelet runs: on a node that is not Ready (its
    /// kubelet stopped or its VM gone) nothing starts and nothing finishes
    /// terminating, as on a real cluster; the work waits for it to return.
    fn node_ready(&self, node: &str) -> bool {
        self.nodes.get(&ObjKey::cluster(node)).is_some_and(|n| n.is_ready())
    }

    /// Tries `action` again later (its node is not Ready).
    fn later(&mut self, action: Action) {
        let wait = self.sim.scale.seconds(1).max(Duration::from_millis(200));
        self.schedule(wait, action);
    }

    fn start(&mut self, uid: &str) -> Result<(), ApiError> {
        let Some(state) = self.states.get(uid) else { return Ok(()) };
        if state.phase != Phase::Starting {
            return Ok(());
        }
        let node = state.node.clone();
        if !self.node_ready(&node) {
            self.later(Action::Start(uid.to_string()));
            return Ok(());
        }
        let Some(obj) = self.current_pod(uid) else { return Ok(()) };
        let spec = obj.value()["spec"].clone();
        let (cpu, mem) = crate::kinds::pod_requests_from_spec(&spec);
        let capacity = self.capacity(&node);
        let others = self.used(&node, uid);
        if let Some(message) = resize::admission_shortfall(cpu, mem, capacity, others, true) {
            let resource = message.split([':', ',']).nth(1).unwrap_or("").trim().to_string();
            let reason = format!("OutOf{resource}");
            let message = format!("Pod was rejected: {message}");
            self.mutate_pod(uid, |p| {
                p["status"]["phase"] = json!("Failed");
                p["status"]["reason"] = json!(reason);
                p["status"]["message"] = json!(message);
                Ok(())
            })?;
            self.forget(uid);
            return Ok(());
        }
        let node_obj = self.nodes.get(&ObjKey::cluster(&node)).cloned();
        let host_ip = node_obj
            .as_ref()
            .and_then(|n| n.value()["status"]["addresses"].as_array().cloned())
            .and_then(|a| a.into_iter().find(|x| x["type"] == "InternalIP"))
            .and_then(|x| x["address"].as_str().map(str::to_string))
            .unwrap_or_else(|| "10.0.0.1".to_string());
        let pod_ip = self.allocate_ip(&node, node_obj.as_deref());
        let started = time::now();
        let now = time::format_time(started);
        // The containers run before the status says so, as on a real kubelet:
        // whoever sees the pod Running (a scraper listing pods, then reading
        // stats/summary) finds it in the node's usage. The other order left a
        // window where a Ready pod was missing from its node's summary.
        let containers = spec["containers"]
            .as_array()
            .into_iter()
            .flatten()
            .chain(spec["initContainers"].as_array().into_iter().flatten().filter(|c| c["restartPolicy"] == "Always"))
            .map(|c| Usage::new_container(c["name"].as_str().unwrap_or(""), started, memory_limit(c)))
            .collect();
        self.usage().pod_started(
            &node,
            PodRun {
                uid: uid.to_string(),
                namespace: obj.key.namespace.clone(),
                name: obj.key.name.clone(),
                labels: obj.labels(),
                started,
                containers,
            },
        );
        // The phase is read where it is written: a terminal phase someone
        // wrote since this kubelet last looked stands, as a real kubelet
        // forces a pod's status back to the API server's Succeeded or Failed
        // ("Pod attempted illegal phase transition").
        let mut finished = false;
        if let Err(e) = self.mutate_pod(uid, |p| {
            finished = podutil::is_terminal(p);
            if !finished {
                status::set_running(p, &host_ip, &pod_ip, &now);
            }
            Ok(())
        }) {
            self.usage().pod_stopped(&node, uid);
            return Err(e);
        }
        if finished {
            self.forget(uid);
            return Ok(());
        }
        if let Some(state) = self.states.get_mut(uid) {
            // Our own write above can come back already deleting (deleted while
            // starting): `on_pod` then made it Terminating, which must stand, or
            // the termination it scheduled would find a running pod and do nothing.
            if state.phase == Phase::Starting {
                state.phase = Phase::Running;
            }
            state.allocated = Some(Allocation::of(&spec));
        }
        self.plan_ooms_for(uid);
        // A resize that arrived while the pod was starting.
        self.reconcile_resize(uid)
    }

    fn allocate_ip(&mut self, node: &str, node_obj: Option<&Obj>) -> String {
        let counter = self.ip_counters.entry(node.to_string()).or_insert(0);
        *counter += 1;
        let host = (*counter % 253) + 2;
        let cidr = node_obj.and_then(|n| n.value()["spec"]["podCIDR"].as_str().map(str::to_string));
        let base = cidr.as_deref().and_then(|c| c.split('/').next()).unwrap_or("10.244.0.0");
        let octets: Vec<&str> = base.split('.').collect();
        if octets.len() == 4 {
            format!("{}.{}.{}.{host}", octets[0], octets[1], octets[2])
        } else {
            format!("10.244.0.{host}")
        }
    }

    fn terminate(&mut self, uid: &str) -> Result<(), ApiError> {
        let Some(state) = self.states.get(uid) else { return Ok(()) };
        if state.phase != Phase::Terminating || state.terminate_at.is_some_and(|t| t > Instant::now()) {
            return Ok(());
        }
        if !self.node_ready(&state.node.clone()) {
            self.later(Action::Terminate(uid.to_string()));
            return Ok(());
        }
        let key = state.key.clone();
        let now = time::now_string();
        let was_running = self.current_pod(uid).is_some_and(|p| p.value()["status"]["containerStatuses"].is_array());
        if was_running {
            self.mutate_pod(uid, |p| {
                status::set_terminated(p, &now);
                Ok(())
            })?;
        }
        self.forget(uid);
        if let Some(deleted) = self.sim.registry.finish_deletion(Kind::Pod, &key, uid)? {
            match deleted {
                crate::registry::Deleted::Gone(o) => self.note(Written::Deleted(o)),
                crate::registry::Deleted::Pending(o) => self.note(Written::Updated(o)),
            }
        }
        Ok(())
    }

    fn reconcile_resize(&mut self, uid: &str) -> Result<(), ApiError> {
        let Some(state) = self.states.get(uid) else { return Ok(()) };
        let (node, Some(allocated)) = (state.node.clone(), state.allocated.as_ref().map(Allocation::spec)) else {
            return Ok(());
        };
        if state.phase != Phase::Running {
            return Ok(());
        }
        let Some(obj) = self.current_pod(uid) else { return Ok(()) };
        let desired = obj.value()["spec"].clone();
        if !resize::differs(&desired, &allocated) {
            if let Some(s) = self.states.get_mut(uid) {
                s.deferred = false;
            }
            if podutil::condition(&obj.value(), "PodResizePending").is_some() {
                self.mutate_pod(uid, |p| {
                    remove_condition(p, "PodResizePending");
                    Ok(())
                })?;
            }
            return Ok(());
        }
        let verdict = resize::judge(&desired, self.capacity(&node), self.used(&node, uid));
        let generation = obj.value()["metadata"]["generation"].clone();
        match verdict {
            Verdict::Pending(reason, message) => {
                if let Some(s) = self.states.get_mut(uid) {
                    s.deferred = reason == "Deferred";
                }
                self.mutate_pod(uid, |p| {
                    set_condition(p, "PodResizePending", "True", Some(reason), Some(&message));
                    stamp_generation(p, "PodResizePending", &generation);
                    Ok(())
                })
            }
            Verdict::Fits => {
                if let Some(s) = self.states.get_mut(uid) {
                    s.deferred = false;
                    s.allocated = Some(Allocation::of(&desired));
                }
                self.mutate_pod(uid, |p| {
                    remove_condition(p, "PodResizePending");
                    resize::record_allocation(p, &desired);
                    set_condition(p, "PodResizeInProgress", "True", None, None);
                    stamp_generation(p, "PodResizeInProgress", &generation);
                    p["status"]["observedGeneration"] = generation.clone();
                    Ok(())
                })?;
                let delay = self.sim.scale.scale(self.sim.options.resize_actuation_delay);
                self.schedule(delay, Action::FinishResize(uid.to_string()));
                Ok(())
            }
        }
    }

    fn finish_resize(&mut self, uid: &str) -> Result<(), ApiError> {
        let Some(state) = self.states.get(uid) else { return Ok(()) };
        let (node, Some(allocated)) = (state.node.clone(), state.allocated.as_ref().map(Allocation::spec)) else {
            return Ok(());
        };
        if state.phase != Phase::Running {
            return Ok(());
        }
        let Some(obj) = self.current_pod(uid) else { return Ok(()) };
        let containers = allocated["containers"].as_array().cloned().unwrap_or_default();
        let pod = obj.value();
        // A memory limit cannot be lowered below what the container uses now.
        for c in &containers {
            let name = c["name"].as_str().unwrap_or("");
            let actual = pod["status"]["containerStatuses"]
                .as_array()
                .and_then(|s| s.iter().find(|s| s["name"] == name))
                .and_then(|s| s["resources"]["limits"]["memory"].as_str().and_then(quantity::whole_units));
            let (Some(new_limit), Some(old_limit)) = (memory_limit(c), actual) else { continue };
            let usage = self.usage().memory_of(&node, uid, name).unwrap_or(0);
            if (new_limit as i64) < old_limit && usage > new_limit {
                let message = format!(
                    "cannot decrease memory limit of container {name} to {new_limit} below current usage {usage}"
                );
                self.mutate_pod(uid, |p| {
                    set_condition(p, "PodResizeInProgress", "True", Some("Error"), Some(&message));
                    Ok(())
                })?;
                let delay = self.sim.scale.scale(self.sim.options.resize_actuation_delay);
                self.schedule(delay, Action::FinishResize(uid.to_string()));
                return Ok(());
            }
        }
        let now_ts = time::now();
        let now = time::format_time(now_ts);
        let mut restarted = Vec::new();
        let mut decreased = false;
        self.mutate_pod(uid, |p| {
            let spec_containers = p["spec"]["containers"].as_array().cloned().unwrap_or_default();
            for c in &containers {
                let name = c["name"].as_str().unwrap_or("").to_string();
                let new = cpu_memory(&c["resources"]);
                let policy_holder = spec_containers.iter().find(|s| s["name"] == name.as_str()).unwrap_or(c);
                let Some(s) = container_status_mut(p, &name) else { continue };
                let old = s["resources"].clone();
                if old == new {
                    continue;
                }
                decreased |= ["cpu", "memory"].iter().any(|r| {
                    let q = |v: &Value| v["requests"][r].as_str().and_then(quantity::whole_units).unwrap_or(0);
                    q(&new) < q(&old)
                });
                if resize::needs_restart(policy_holder, &old, &new) {
                    let count = s["restartCount"].as_i64().unwrap_or(0) + 1;
                    s["restartCount"] = json!(count);
                    s["state"] = json!({"running": {"startedAt": now}});
                    s["containerID"] = json!(container_id());
                    restarted.push(name.clone());
                }
                s["resources"] = new;
            }
            remove_condition(p, "PodResizeInProgress");
            Ok(())
        })?;
        for c in &containers {
            let name = c["name"].as_str().unwrap_or("");
            self.usage().set_memory_limit(&node, uid, name, memory_limit(c));
        }
        for name in &restarted {
            self.usage().container_restarted(&node, uid, name, now_ts);
        }
        if decreased {
            self.retry_deferred(Some(&node));
        }
        self.plan_ooms_for(uid);
        Ok(())
    }

    /// Re-evaluates deferred resizes (on one node, or everywhere).
    fn retry_deferred(&mut self, node: Option<&str>) {
        let uids: Vec<String> = match node {
            Some(n) => self
                .node_pods
                .get(n)
                .into_iter()
                .flatten()
                .filter(|u| self.states.get(*u).is_some_and(|s| s.deferred))
                .cloned()
                .collect(),
            None => self.states.iter().filter(|(_, s)| s.deferred).map(|(u, _)| u.clone()).collect(),
        };
        for uid in uids {
            if let Err(e) = self.reconcile_resize(&uid) {
                tracing::debug!(error = %e, "kubesim kubelet: deferred resize");
            }
        }
    }

    /// Plans OOM kills for every container (after usage models changed).
    fn plan_ooms(&mut self) {
        let now = time::now();
        for (_node, uid, container, at) in self.usage().oom_schedule(now) {
            self.plan_oom(uid, container, at, now);
        }
    }

    /// Plans OOM kills for one pod's containers (after it started, restarted or resized).
    fn plan_ooms_for(&mut self, uid: &str) {
        let Some(node) = self.states.get(uid).map(|s| s.node.clone()) else { return };
        let now = time::now();
        for (container, at) in self.usage().oom_schedule_for(&node, uid, now) {
            self.plan_oom(uid.to_string(), container, at, now);
        }
    }

    fn plan_oom(&mut self, uid: String, container: String, at: Timestamp, now: Timestamp) {
        let key = (uid.clone(), container.clone());
        if self.oom_planned.get(&key) == Some(&at) {
            return;
        }
        self.oom_planned.insert(key, at);
        let after = std::time::Duration::try_from(at.duration_since(now)).unwrap_or(Duration::ZERO);
        self.schedule(after, Action::Oom(uid, container));
    }

    fn oom(&mut self, uid: &str, container: &str) -> Result<(), ApiError> {
        self.oom_planned.remove(&(uid.to_string(), container.to_string()));
        let Some(state) = self.states.get(uid) else { return Ok(()) };
        if state.phase != Phase::Running {
            return Ok(());
        }
        let node = state.node.clone();
        let Some(obj) = self.current_pod(uid) else { return Ok(()) };
        let limit = obj.value()["spec"]["containers"]
            .as_array()
            .and_then(|cs| cs.iter().find(|c| c["name"] == container))
            .and_then(memory_limit);
        let usage = self.usage().memory_of(&node, uid, container);
        let (Some(limit), Some(usage)) = (limit, usage) else { return Ok(()) };
        if usage <= limit {
            // The plan is stale (model or limit changed); re-plan.
            self.plan_ooms_for(uid);
            return Ok(());
        }
        let restart_policy = obj.value()["spec"]["restartPolicy"].as_str().unwrap_or("Always").to_string();
        let restarts = obj.value()["status"]["containerStatuses"]
            .as_array()
            .and_then(|s| s.iter().find(|s| s["name"] == container))
            .and_then(|s| s["restartCount"].as_i64())
            .unwrap_or(0);
        // The first restart is immediate; then 10 s doubling up to 5 min.
        let backoff = if restarts == 0 {
            Duration::ZERO
        } else {
            Duration::from_secs(10).saturating_mul(1 << (restarts - 1).min(5) as u32).min(MAX_BACKOFF)
        };
        let backoff = self.sim.scale.scale(backoff);
        let now_ts = time::now();
        let now = time::format_time(now_ts);
        let pod_desc = format!("{}_{}({uid})", obj.key.name, obj.key.namespace);
        let restart = restart_policy != "Never";
        self.mutate_pod(uid, |p| {
            if let Some(s) = container_status_mut(p, container) {
                let started = s["state"]["running"]["startedAt"].clone();
                s["lastState"] = json!({"terminated": {
                    "exitCode": 137, "reason": "OOMKilled", "startedAt": started, "finishedAt": now,
                    "containerID": s["containerID"],
                }});
                if restart {
                    s["restartCount"] = json!(restarts + 1);
                    if backoff.is_zero() {
                        s["state"] = json!({"running": {"startedAt": now}});
                        s["containerID"] = json!(container_id());
                        s["ready"] = json!(true);
                        s["started"] = json!(true);
                    } else {
                        let secs = backoff.as_secs().max(1);
                        s["state"] = json!({"waiting": {
                            "reason": "CrashLoopBackOff",
                            "message": format!("back-off {secs}s restarting failed container={container} pod={pod_desc}"),
                        }});
                        s["ready"] = json!(false);
                        s["started"] = json!(false);
                    }
                } else {
                    s["state"] = s["lastState"].clone();
                    s["lastState"] = json!({});
                    s["ready"] = json!(false);
                    s["started"] = json!(false);
                }
            }
            if !restart {
                p["status"]["phase"] = json!("Failed");
            }
            status::refresh_readiness(p);
            Ok(())
        })?;
        if let Some(obj) = self.current_pod(uid) {
            let message = format!("Container {container} was OOM-killed (memory {usage} > limit {limit})");
            self.sim.recorder.record(&obj.value(), "Warning", "OOMKilling", &message, COMPONENT, Some(&node));
        }
        if !restart {
            self.forget(uid);
        } else if backoff.is_zero() {
            self.usage().container_restarted(&node, uid, container, now_ts);
        } else {
            self.usage().container_stopped(&node, uid, container, now_ts);
            if let Some(obj) = self.current_pod(uid) {
                let message = format!("Back-off restarting failed container {container} in pod {pod_desc}");
                self.sim.recorder.record(&obj.value(), "Warning", "BackOff", &message, COMPONENT, Some(&node));
            }
            self.schedule(backoff, Action::Restart(uid.to_string(), container.to_string()));
        }
        self.plan_ooms_for(uid);
        Ok(())
    }

    fn restart(&mut self, uid: &str, container: &str) -> Result<(), ApiError> {
        let Some(state) = self.states.get(uid) else { return Ok(()) };
        if state.phase != Phase::Running {
            return Ok(());
        }
        let node = state.node.clone();
        let now_ts = time::now();
        let now = time::format_time(now_ts);
        self.mutate_pod(uid, |p| {
            if let Some(s) = container_status_mut(p, container) {
                s["state"] = json!({"running": {"startedAt": now}});
                s["containerID"] = json!(container_id());
                s["ready"] = json!(true);
                s["started"] = json!(true);
            }
            status::refresh_readiness(p);
            Ok(())
        })?;
        self.usage().container_restarted(&node, uid, container, now_ts);
        self.plan_ooms_for(uid);
        Ok(())
    }
}

fn stamp_generation(pod: &mut Value, condition: &str, generation: &Value) {
    if let Some(c) =
        pod["status"]["conditions"].as_array_mut().and_then(|cs| cs.iter_mut().find(|c| c["type"] == condition))
    {
        c["observedGeneration"] = generation.clone();
    }
}
