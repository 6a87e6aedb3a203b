//! The pod side of one node's kubelet: a watch on the pods bound to the node
//! (`spec.nodeName=<node>`, as the kubelet's own), and what the 1.35 kubelet
//! writes back:
//!
//! - admission (`OutOfcpu`... with the kubelet's message when a bound pod does
//!   not fit next to the admitted ones), then `Pending`/`ContainerCreating`,
//!   then `Running` with every container started and ready and the conditions
//!   `PodReadyToStartContainers`, `Initialized`, `ContainersReady`, `Ready`;
//!   init containers completed, sidecars (restartable init containers) running;
//! - graceful termination: on `deletionTimestamp`, containers stop after the
//!   pod's `deletionGracePeriodSeconds` (scaled by [`Timing::grace_period_scale`]),
//!   the terminal status is written and the pod is deleted with grace 0 and a
//!   UID precondition — the kubelet's final delete. A stopped kubelet does none
//!   of this: its pods stay `Terminating`, as on a real cluster;
//! - in-place resize: when a container's cpu/memory in the spec differ from
//!   what was allocated, `Infeasible` / `Deferred` (`PodResizePending`, with
//!   the kubelet's messages, deferred ones retried when pods leave or shrink
//!   and every [`Timing::resize_retry_period`]) or admitted:
//!   `allocatedResources` updated and `PodResizeInProgress` set, then, after
//!   [`Timing::resize_actuation_delay`], `resources` updated (containers whose
//!   `resizePolicy` says `RestartContainer` restart) and the condition cleared.
//!
//! Every status write is a strategic merge patch of `pods/status` carrying the
//! pod's UID (so a write never lands on a recreated pod of the same name) and
//! `observedGeneration`.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap, HashMap, HashSet};
use std::sync::Arc;

use futures::StreamExt;
use jiff::Timestamp;
use k8s_openapi::api::core::v1::{Container, Pod, ResourceRequirements};
use kube::api::{Api, DeleteParams, Patch, PatchParams, Preconditions};
use kube::runtime::WatchStreamExt;
use kube::runtime::watcher::{self, Event};
use kubesim::usage::{PodRun, Usage};
use serde_json::{Value, json};
use tokio::time::Instant;

use crate::resources::{self, ResizeVerdict, Resources};
use crate::{NodeContext, PodMeta};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    /// Admitted; containers being created.
    Starting,
    Running,
    /// Deleted; containers stopping within the grace period.
    Terminating,
    /// Stopped, or refused at admission: holds nothing on the node.
    Done,
}

#[derive(Clone, Debug)]
struct ContainerRun {
    id: String,
    started_at: Timestamp,
    restarts: i32,
}

struct Record {
    pod: Pod,
    state: State,
    ip: String,
    started_at: Timestamp,
    containers: BTreeMap<String, ContainerRun>,
    /// What the kubelet admitted per container (requests and limits).
    allocated: BTreeMap<String, ResourceRequirements>,
    /// What the runtime applied per container.
    actuated: BTreeMap<String, ResourceRequirements>,
    /// `PodResizePending`: (reason, message, generation).
    pending: Option<(String, String, i64)>,
    /// `PodResizeInProgress` since this generation.
    in_progress: Option<i64>,
}

impl Record {
    fn holds_resources(&self) -> bool {
        matches!(self.state, State::Starting | State::Running | State::Terminating)
    }

    fn uid(&self) -> String {
        self.pod.metadata.uid.clone().unwrap_or_default()
    }

    fn requests(&self) -> Resources {
        let spec = self.pod.spec.clone().unwrap_or_default();
        resources::pod_requests(&spec, &|c| self.allocated.get(c).cloned())
    }
}

#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Action {
    Start(String),
    Terminate(String),
    FinishResize(String),
}

pub(crate) struct Kubelet {
    ctx: Arc<NodeContext>,
    records: HashMap<String, Record>,
    timers: BinaryHeap<Reverse<(Instant, u64, Action)>>,
    seq: u64,
    next_ip: u32,
    relisted: Option<HashSet<String>>,
}

fn random_hex(bytes: usize) -> String {
    use rand::RngCore;
    let mut b = vec![0u8; bytes];
    rand::rng().fill_bytes(&mut b);
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn time(t: Timestamp) -> String {
    t.strftime("%Y-%m-%dT%H:%M:%SZ").to_string()
}

/// Containers whose resources can change in place: app containers and sidecars.
fn resizable(pod: &Pod) -> Vec<&Container> {
    let spec = pod.spec.as_ref();
    let apps = spec.map(|s| s.containers.iter()).into_iter().flatten();
    let sidecars =
        spec.and_then(|s| s.init_containers.as_ref()).into_iter().flatten().filter(|c| resources::is_sidecar(c));
    apps.chain(sidecars).collect()
}

fn requirements_json(r: &ResourceRequirements) -> Value {
    let mut v = json!({});
    if let Some(req) = &r.requests {
        v["requests"] = json!(req);
    }
    if let Some(lim) = &r.limits {
        v["limits"] = json!(lim);
    }
    v
}

/// Only cpu and memory are resized in place; the rest stays as admitted.
fn with_cpu_memory_of(base: &ResourceRequirements, desired: Option<&ResourceRequirements>) -> ResourceRequirements {
    let mut out = base.clone();
    for (field, from) in [
        (&mut out.requests, desired.and_then(|d| d.requests.as_ref())),
        (&mut out.limits, desired.and_then(|d| d.limits.as_ref())),
    ] {
        let map = field.get_or_insert_with(BTreeMap::new);
        map.retain(|k, _| k != "cpu" && k != "memory");
        for (k, v) in from.into_iter().flatten() {
            if k == "cpu" || k == "memory" {
                map.insert(k.clone(), v.clone());
            }
        }
        if map.is_empty() {
            *field = None;
        }
    }
    out
}

impl Kubelet {
    pub(crate) fn new(ctx: Arc<NodeContext>) -> Kubelet {
        Kubelet { ctx, records: HashMap::new(), timers: BinaryHeap::new(), seq: 0, next_ip: 2, relisted: None }
    }

    fn node(&self) -> &str {
        &self.ctx.spec.name
    }

    fn usage(&self) -> &Usage {
        &self.ctx.usage
    }

    pub(crate) async fn run(mut self) {
        let api: Api<Pod> = Api::all(self.ctx.client.clone());
        let config = watcher::Config::default().fields(&format!("spec.nodeName={}", self.node()));
        let mut events = watcher::watcher(api, config).default_backoff().boxed();
        let mut retry = tokio::time::interval(self.ctx.timing.resize_retry_period);
        retry.tick().await;
        loop {
            let next = self.timers.peek().map(|Reverse((at, _, _))| *at);
            let sleep = async {
                match next {
                    Some(at) => tokio::time::sleep_until(at).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                ev = events.next() => match ev {
                    Some(Ok(ev)) => self.on_event(ev).await,
                    Some(Err(e)) => tracing::warn!(node = self.node(), "pod watch: {e}"),
                    None => return,
                },
                () = sleep => self.fire_due().await,
                _ = retry.tick() => self.retry_deferred().await,
            }
        }
    }

    fn schedule(&mut self, after: std::time::Duration, action: Action) {
        self.seq += 1;
        self.timers.push(Reverse((Instant::now() + after, self.seq, action)));
    }

    async fn fire_due(&mut self) {
        let now = Instant::now();
        while let Some(Reverse((at, _, _))) = self.timers.peek() {
            if *at > now {
                break;
            }
            let Some(Reverse((_, _, action))) = self.timers.pop() else { break };
            match action {
                Action::Start(uid) => self.start(&uid).await,
                Action::Terminate(uid) => self.terminate(&uid).await,
                Action::FinishResize(uid) => self.finish_resize(&uid).await,
            }
        }
    }

    async fn on_event(&mut self, ev: Event<Pod>) {
        match ev {
            Event::Init => self.relisted = Some(HashSet::new()),
            Event::InitApply(pod) => {
                if let (Some(seen), Some(uid)) = (self.relisted.as_mut(), pod.metadata.uid.clone()) {
                    seen.insert(uid);
                }
                self.on_pod(pod).await;
            }
            Event::InitDone => {
                if let Some(seen) = self.relisted.take() {
                    let gone: Vec<String> = self.records.keys().filter(|u| !seen.contains(*u)).cloned().collect();
                    for uid in gone {
                        self.forget(&uid);
                    }
                    self.retry_deferred().await;
                }
            }
            Event::Apply(pod) => self.on_pod(pod).await,
            Event::Delete(pod) => {
                if let Some(uid) = pod.metadata.uid {
                    self.forget(&uid);
                    self.retry_deferred().await;
                }
            }
        }
    }

    fn forget(&mut self, uid: &str) {
        if self.records.remove(uid).is_some() {
            self.usage().pod_stopped(self.node(), uid);
            self.ctx.pods_meta.lock().unwrap_or_else(|e| e.into_inner()).remove(uid);
        }
    }

    async fn on_pod(&mut self, pod: Pod) {
        let Some(uid) = pod.metadata.uid.clone() else { return };
        let deleting = pod.metadata.deletion_timestamp.is_some();
        let phase = pod.status.as_ref().and_then(|s| s.phase.clone()).unwrap_or_default();
        let terminal = phase == "Succeeded" || phase == "Failed";

        if !self.records.contains_key(&uid) {
            if terminal || deleting {
                // Finished before this kubelet saw it (or while it was stopped).
                if deleting {
                    self.final_delete(&pod).await;
                }
                return;
            }
            if phase == "Running" {
                self.adopt(pod);
                return;
            }
            self.admit(pod).await;
            return;
        }

        let record = self.records.get_mut(&uid).expect("checked above");
        let labels_changed = record.pod.metadata.labels != pod.metadata.labels;
        record.pod = pod;
        if labels_changed {
            let labels = json!(record.pod.metadata.labels);
            self.ctx.usage.pod_labels_changed(&self.ctx.spec.name, &uid, &labels);
        }
        let state = record.state;
        if deleting && matches!(state, State::Starting | State::Running) {
            let grace = record.pod.metadata.deletion_grace_period_seconds.unwrap_or(30);
            record.state = State::Terminating;
            let after = if state == State::Starting { std::time::Duration::ZERO } else { self.ctx.timing.grace(grace) };
            self.schedule(after, Action::Terminate(uid));
            return;
        }
        if state == State::Done && deleting {
            let pod = record.pod.clone();
            self.final_delete(&pod).await;
            return;
        }
        if state == State::Running {
            self.consider_resize(&uid).await;
        }
    }

    /// A pod already running when this kubelet started (a restarted kubelet):
    /// its allocation is read back from status, as from the kubelet's checkpoint.
    fn adopt(&mut self, pod: Pod) {
        let uid = pod.metadata.uid.clone().unwrap_or_default();
        let status = pod.status.clone().unwrap_or_default();
        let mut allocated = BTreeMap::new();
        let mut actuated = BTreeMap::new();
        let mut containers = BTreeMap::new();
        let statuses =
            status.container_statuses.iter().flatten().chain(status.init_container_statuses.iter().flatten());
        for s in statuses {
            let spec_r = resizable(&pod).into_iter().find(|c| c.name == s.name).and_then(|c| c.resources.clone());
            let actual = s.resources.clone().or(spec_r.clone()).unwrap_or_default();
            let mut alloc = actual.clone();
            if let Some(a) = &s.allocated_resources {
                alloc.requests = Some(a.clone());
            }
            allocated.insert(s.name.clone(), alloc);
            actuated.insert(s.name.clone(), actual);
            let started_at =
                s.state.as_ref().and_then(|st| st.running.as_ref()).and_then(|r| r.started_at.as_ref()).map(|t| t.0);
            containers.insert(
                s.name.clone(),
                ContainerRun {
                    id: s.container_id.clone().unwrap_or_else(|| format!("containerd://{}", random_hex(32))),
                    started_at: started_at.unwrap_or_else(Timestamp::now),
                    restarts: s.restart_count,
                },
            );
        }
        let started_at = status.start_time.as_ref().map(|t| t.0).unwrap_or_else(Timestamp::now);
        let record = Record {
            ip: status.pod_ip.clone().unwrap_or_else(|| self.ctx.ip.to_string()),
            pod,
            state: State::Running,
            started_at,
            containers,
            allocated,
            actuated,
            pending: None,
            in_progress: None,
        };
        let tracked = self.usage().sample(self.node(), Timestamp::now()).iter().any(|p| p.uid == uid);
        if !tracked {
            self.track_usage(&record);
        }
        self.publish_meta(&record);
        self.records.insert(uid, record);
    }

    fn others(&self, except: &str) -> (Resources, i64) {
        let mut sum = Resources::new();
        let mut count = 0;
        for (uid, r) in &self.records {
            if uid == except || !r.holds_resources() {
                continue;
            }
            count += 1;
            for (k, v) in r.requests() {
                *sum.entry(k).or_default() += v;
            }
        }
        (sum, count)
    }

    fn allocatable(&self) -> Resources {
        self.ctx
            .spec
            .effective_allocatable()
            .into_iter()
            .map(|(k, v)| {
                let q = k8s_openapi::apimachinery::pkg::api::resource::Quantity(v);
                let a = resources::amount(&k, &q);
                (k, a)
            })
            .collect()
    }

    async fn admit(&mut self, pod: Pod) {
        let uid = pod.metadata.uid.clone().unwrap_or_default();
        let spec = pod.spec.clone().unwrap_or_default();
        let requests = resources::pod_requests(&spec, &|_| None);
        let (others, count) = self.others(&uid);
        let host_network = spec.host_network == Some(true);
        let ip = if host_network { self.ctx.ip.to_string() } else { self.pod_ip() };
        let mut allocated = BTreeMap::new();
        for c in spec.containers.iter().chain(spec.init_containers.iter().flatten()) {
            allocated.insert(c.name.clone(), c.resources.clone().unwrap_or_default());
        }
        let mut record = Record {
            actuated: allocated.clone(),
            allocated,
            pod,
            state: State::Starting,
            ip,
            started_at: Timestamp::now(),
            containers: BTreeMap::new(),
            pending: None,
            in_progress: None,
        };
        if let Some(short) = resources::admit(&requests, &others, count, &self.allocatable()) {
            record.state = State::Done;
            let body = json!({
                "metadata": {"uid": uid},
                "status": {
                    "observedGeneration": record.pod.metadata.generation,
                    "phase": "Failed",
                    "reason": short.reason(),
                    "message": format!("Pod was rejected: {}", short.message()),
                },
            });
            self.patch_status(&record.pod, body).await;
            self.records.insert(uid, record);
            return;
        }
        let body = self.status_body(&record);
        self.patch_status(&record.pod, body).await;
        self.records.insert(uid.clone(), record);
        self.schedule(self.ctx.timing.pod_start_delay, Action::Start(uid));
    }

    /// A pod address in the node's /24 of 10.244.0.0/14 (kubeadm's usual pod
    /// network); never connected to, only reported.
    fn pod_ip(&mut self) -> String {
        let index = self.ctx.index;
        let n = self.next_ip;
        self.next_ip = if self.next_ip >= 254 { 2 } else { self.next_ip + 1 };
        format!("10.{}.{}.{}", 244 + (index >> 8) % 4, index & 0xff, n)
    }

    async fn start(&mut self, uid: &str) {
        let Some(record) = self.records.get_mut(uid) else { return };
        if record.state != State::Starting {
            return;
        }
        let now = Timestamp::now();
        record.state = State::Running;
        record.started_at = now;
        let spec = record.pod.spec.clone().unwrap_or_default();
        for c in spec.containers.iter().chain(spec.init_containers.iter().flatten()) {
            record.containers.insert(
                c.name.clone(),
                ContainerRun { id: format!("containerd://{}", random_hex(32)), started_at: now, restarts: 0 },
            );
        }
        let record = &self.records[uid];
        self.track_usage(record);
        self.publish_meta(record);
        let body = self.status_body(record);
        let pod = record.pod.clone();
        self.patch_status(&pod, body).await;
        // A resize requested while the pod was starting.
        self.consider_resize(uid).await;
    }

    fn track_usage(&self, record: &Record) {
        let memory_limit = |name: &str| {
            record.actuated.get(name).and_then(|r| r.limits.as_ref()).and_then(|l| l.get("memory")).map(|q| {
                let a = resources::amount("memory", q);
                a.max(0) as u64
            })
        };
        let running: Vec<_> = resizable(&record.pod)
            .into_iter()
            .filter_map(|c| {
                let run = record.containers.get(&c.name)?;
                Some(Usage::new_container(&c.name, run.started_at, memory_limit(&c.name)))
            })
            .collect();
        self.usage().pod_started(
            self.node(),
            PodRun {
                uid: record.uid(),
                namespace: record.pod.metadata.namespace.clone().unwrap_or_default(),
                name: record.pod.metadata.name.clone().unwrap_or_default(),
                labels: json!(record.pod.metadata.labels),
                started: record.started_at,
                containers: running,
            },
        );
    }

    fn publish_meta(&self, record: &Record) {
        let images: HashMap<&str, &str> =
            resizable(&record.pod).into_iter().map(|c| (c.name.as_str(), c.image.as_deref().unwrap_or(""))).collect();
        let meta = PodMeta {
            qos: record.pod.status.as_ref().and_then(|s| s.qos_class.clone()).unwrap_or_else(|| "BestEffort".into()),
            containers: record
                .containers
                .iter()
                .filter(|(name, _)| images.contains_key(name.as_str()))
                .map(|(name, run)| (name.clone(), run.id.clone(), images[name.as_str()].to_string()))
                .collect(),
        };
        self.ctx.pods_meta.lock().unwrap_or_else(|e| e.into_inner()).insert(record.uid(), meta);
    }

    async fn terminate(&mut self, uid: &str) {
        let Some(record) = self.records.get_mut(uid) else { return };
        if record.state != State::Terminating {
            return;
        }
        record.state = State::Done;
        let record = &self.records[uid];
        let body = self.status_body(record);
        let pod = record.pod.clone();
        self.usage().pod_stopped(self.node(), uid);
        self.ctx.pods_meta.lock().unwrap_or_else(|e| e.into_inner()).remove(uid);
        self.patch_status(&pod, body).await;
        self.final_delete(&pod).await;
        self.retry_deferred().await;
    }

    /// The kubelet's last word on a pod: delete with grace 0, UID-checked.
    async fn final_delete(&self, pod: &Pod) {
        let api: Api<Pod> =
            Api::namespaced(self.ctx.client.clone(), pod.metadata.namespace.as_deref().unwrap_or("default"));
        let params = DeleteParams {
            grace_period_seconds: Some(0),
            preconditions: Some(Preconditions { uid: pod.metadata.uid.clone(), resource_version: None }),
            ..Default::default()
        };
        match api.delete(pod.metadata.name.as_deref().unwrap_or_default(), &params).await {
            Ok(_) => {}
            Err(kube::Error::Api(e)) if e.code == 404 || e.code == 409 => {}
            Err(e) => tracing::warn!(node = self.node(), pod = ?pod.metadata.name, "final delete: {e}"),
        }
    }

    async fn retry_deferred(&mut self) {
        let deferred: Vec<String> = self
            .records
            .iter()
            .filter(|(_, r)| r.state == State::Running && r.pending.as_ref().is_some_and(|p| p.0 == "Deferred"))
            .map(|(u, _)| u.clone())
            .collect();
        for uid in deferred {
            self.consider_resize(&uid).await;
        }
    }

    /// Compares desired and allocated cpu/memory and answers as the kubelet.
    async fn consider_resize(&mut self, uid: &str) {
        let Some(record) = self.records.get(uid) else { return };
        if record.state != State::Running {
            return;
        }
        let generation = record.pod.metadata.generation.unwrap_or(1);
        let mut desired = record.allocated.clone();
        let mut differs = false;
        for c in resizable(&record.pod) {
            let alloc = record.allocated.get(&c.name).cloned().unwrap_or_default();
            if resources::cpu_memory(c.resources.as_ref()) != resources::cpu_memory(Some(&alloc)) {
                differs = true;
                desired.insert(c.name.clone(), with_cpu_memory_of(&alloc, c.resources.as_ref()));
            }
        }
        if !differs {
            if record.pending.is_some() {
                let record = self.records.get_mut(uid).expect("present");
                record.pending = None;
                let body = self.status_body(&self.records[uid]);
                let pod = self.records[uid].pod.clone();
                self.patch_status(&pod, body).await;
            }
            return;
        }
        let spec = record.pod.spec.clone().unwrap_or_default();
        let requests = resources::pod_requests(&spec, &|c| desired.get(c).cloned());
        let (others, count) = self.others(uid);
        let verdict = resources::judge_resize(&requests, &others, count, &self.allocatable());
        let verdict_kind = match verdict {
            ResizeVerdict::Fits => "Fits",
            ResizeVerdict::Infeasible(_) => "Infeasible",
            ResizeVerdict::Deferred(_) => "Deferred",
        };
        let record = self.records.get_mut(uid).expect("present");
        match verdict {
            ResizeVerdict::Fits => {
                let shrank = record.requests().iter().any(|(k, v)| requests.get(k).copied().unwrap_or(0) < *v);
                record.allocated = desired;
                record.pending = None;
                record.in_progress = Some(record.in_progress.unwrap_or(generation).max(generation));
                let body = self.status_body(&self.records[uid]);
                let pod = self.records[uid].pod.clone();
                self.patch_status(&pod, body).await;
                self.schedule(self.ctx.timing.resize_actuation_delay, Action::FinishResize(uid.to_string()));
                if shrank {
                    Box::pin(self.retry_deferred()).await;
                }
            }
            ResizeVerdict::Infeasible(message) | ResizeVerdict::Deferred(message) => {
                let reason = if matches!(verdict_kind, "Infeasible") { "Infeasible" } else { "Deferred" };
                let pending = Some((reason.to_string(), message, generation));
                if record.pending != pending {
                    record.pending = pending;
                    let body = self.status_body(&self.records[uid]);
                    let pod = self.records[uid].pod.clone();
                    self.patch_status(&pod, body).await;
                }
            }
        }
    }

    async fn finish_resize(&mut self, uid: &str) {
        let Some(record) = self.records.get_mut(uid) else { return };
        if record.state != State::Running || record.in_progress.is_none() {
            return;
        }
        let now = Timestamp::now();
        let node = self.ctx.spec.name.clone();
        let mut restarted = Vec::new();
        for c in resizable(&record.pod) {
            let (Some(old), Some(new)) = (record.actuated.get(&c.name), record.allocated.get(&c.name)) else {
                continue;
            };
            if needs_restart(c, old, new)
                && let Some(run) = record.containers.get_mut(&c.name)
            {
                run.restarts += 1;
                run.started_at = now;
                restarted.push(c.name.clone());
            }
        }
        record.actuated = record.allocated.clone();
        record.in_progress = None;
        let record = &self.records[uid];
        for name in &restarted {
            self.usage().container_restarted(&node, uid, name, now);
        }
        for (name, r) in &record.actuated {
            let limit = r.limits.as_ref().and_then(|l| l.get("memory")).map(|q| resources::amount("memory", q) as u64);
            self.usage().set_memory_limit(&node, uid, name, limit);
        }
        let body = self.status_body(record);
        let pod = record.pod.clone();
        self.patch_status(&pod, body).await;
    }

    async fn patch_status(&self, pod: &Pod, body: Value) {
        let api: Api<Pod> =
            Api::namespaced(self.ctx.client.clone(), pod.metadata.namespace.as_deref().unwrap_or("default"));
        let name = pod.metadata.name.as_deref().unwrap_or_default();
        match api.patch_status(name, &PatchParams::default(), &Patch::Strategic(body)).await {
            Ok(_) => {}
            Err(kube::Error::Api(e)) if e.code == 404 || e.code == 409 => {}
            Err(e) => tracing::warn!(node = self.node(), pod = name, "status update: {e}"),
        }
    }

    /// The status the kubelet reports for a pod in its current state.
    fn status_body(&self, r: &Record) -> Value {
        let now = Timestamp::now();
        let now_s = time(now);
        let generation = r.pod.metadata.generation.unwrap_or(1);
        let old = r.pod.status.clone().unwrap_or_default();
        let old_conditions = old.conditions.unwrap_or_default();
        let spec = r.pod.spec.clone().unwrap_or_default();
        let app_names: Vec<&str> = spec.containers.iter().map(|c| c.name.as_str()).collect();
        let has_init = spec.init_containers.as_ref().is_some_and(|i| !i.is_empty());

        let condition = |kind: &str, status: bool, reason: Option<String>, message: Option<String>| {
            let status = if status { "True" } else { "False" };
            let transition = old_conditions
                .iter()
                .find(|c| c.type_ == kind && c.status == status)
                .and_then(|c| c.last_transition_time.as_ref())
                .map(|t| time(t.0))
                .unwrap_or_else(|| now_s.clone());
            // null removes a reason or message left from the previous state
            // (a strategic merge patch merges conditions field by field).
            json!({"type": kind, "status": status, "lastProbeTime": null, "lastTransitionTime": transition,
                   "observedGeneration": generation, "reason": reason, "message": message})
        };
        let not_ready = format!("containers with unready status: [{}]", app_names.join(" "));
        let (phase, sandbox, initialized, ready, ready_reason, ready_msg) = match r.state {
            State::Starting => ("Pending", false, !has_init, false, Some("ContainersNotReady"), Some(not_ready)),
            State::Running => ("Running", true, true, true, None, None),
            State::Terminating => ("Running", true, true, false, Some("ContainersNotReady"), Some(not_ready)),
            State::Done => ("Succeeded", false, true, false, Some("PodCompleted"), None),
        };
        let done = r.state == State::Done;
        let mut conditions = vec![
            condition("PodReadyToStartContainers", sandbox, None, None),
            condition(
                "Initialized",
                initialized,
                (done || !initialized).then(|| (if done { "PodCompleted" } else { "ContainersNotInitialized" }).into()),
                (!initialized && !done).then(|| "containers with incomplete status: [init]".into()),
            ),
            condition("ContainersReady", ready, ready_reason.map(Into::into), ready_msg.clone()),
            condition("Ready", ready, ready_reason.map(Into::into), ready_msg),
        ];
        match &r.pending {
            Some((reason, message, gen_)) => {
                let mut c = condition("PodResizePending", true, Some(reason.clone()), Some(message.clone()));
                c["observedGeneration"] = json!(gen_);
                c["lastProbeTime"] = json!(now_s);
                conditions.push(c);
            }
            None => conditions.push(json!({"type": "PodResizePending", "$patch": "delete"})),
        }
        match r.in_progress {
            Some(gen_) => {
                let mut c = condition("PodResizeInProgress", true, None, None);
                c["observedGeneration"] = json!(gen_);
                c["lastProbeTime"] = json!(now_s);
                conditions.push(c);
            }
            None => conditions.push(json!({"type": "PodResizeInProgress", "$patch": "delete"})),
        }

        let container_status = |c: &Container, init: bool| {
            let run = r.containers.get(&c.name);
            let image = c.image.clone().unwrap_or_default();
            let mut s = json!({
                "name": c.name,
                "image": image,
                "imageID": "",
                "restartCount": run.map(|x| x.restarts).unwrap_or(0),
                "ready": false,
                "started": false,
            });
            let sidecar = init && resources::is_sidecar(c);
            match (r.state, run) {
                (State::Starting, _) | (_, None) => {
                    s["state"] =
                        json!({"waiting": {"reason": if init { "PodInitializing" } else { "ContainerCreating" }}});
                }
                (State::Running | State::Terminating, Some(run)) if !init || sidecar => {
                    s["state"] = json!({"running": {"startedAt": time(run.started_at)}});
                    s["ready"] = json!(r.state == State::Running);
                    s["started"] = json!(true);
                }
                (_, Some(run)) => {
                    s["state"] = json!({"terminated": {
                        "exitCode": 0, "reason": "Completed", "startedAt": time(run.started_at),
                        "finishedAt": if init { time(run.started_at) } else { now_s.clone() },
                        "containerID": run.id,
                    }});
                }
            }
            if let Some(run) = run {
                s["containerID"] = json!(run.id);
                s["imageID"] = json!(format!("{image}@sha256:{}", "0".repeat(64)));
            }
            if run.is_some() && (!init || sidecar) {
                if let Some(a) = r.allocated.get(&c.name) {
                    s["allocatedResources"] = json!(a.requests.clone().unwrap_or_default());
                }
                if let Some(a) = r.actuated.get(&c.name) {
                    s["resources"] = requirements_json(a);
                }
            }
            s
        };
        let containers: Vec<Value> = spec.containers.iter().map(|c| container_status(c, false)).collect();
        let inits: Vec<Value> = spec.init_containers.iter().flatten().map(|c| container_status(c, true)).collect();

        let mut status = json!({
            "observedGeneration": generation,
            "phase": phase,
            "conditions": conditions,
            "hostIP": self.ctx.ip.to_string(),
            "hostIPs": [{"ip": self.ctx.ip.to_string()}],
            "containerStatuses": containers,
        });
        if !inits.is_empty() {
            status["initContainerStatuses"] = json!(inits);
        }
        if r.state != State::Starting || old.start_time.is_some() {
            status["startTime"] = json!(time(old.start_time.map(|t| t.0).unwrap_or(r.started_at)));
        } else {
            status["startTime"] = json!(now_s);
        }
        if r.state != State::Done {
            status["podIP"] = json!(r.ip);
            status["podIPs"] = json!([{"ip": r.ip}]);
        }
        json!({"metadata": {"uid": r.uid()}, "status": status})
    }
}

/// Whether a resize of `c` from `old` to `new` restarts it under its `resizePolicy`.
fn needs_restart(c: &Container, old: &ResourceRequirements, new: &ResourceRequirements) -> bool {
    let (old_req, old_lim) = resources::cpu_memory(Some(old));
    let (new_req, new_lim) = resources::cpu_memory(Some(new));
    ["cpu", "memory"].iter().any(|res| {
        let changed = old_req.get(*res) != new_req.get(*res) || old_lim.get(*res) != new_lim.get(*res);
        let policy = c
            .resize_policy
            .iter()
            .flatten()
            .find(|p| p.resource_name == *res)
            .map(|p| p.restart_policy.as_str())
            .unwrap_or("NotRequired");
        changed && policy == "RestartContainer"
    })
}
