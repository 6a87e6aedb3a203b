//! What the pod-level benchmark measures, per workload and policy, and the
//! table `heatscaler simulate` prints.

use std::fmt;
use std::time::Duration;

use serde::Serialize;

use heatscaler_core::model::Resources;

use super::cluster::Counts;
use super::spec::Side;

/// Accumulates one run's measurements, per sample interval of each replica slot.
#[derive(Debug)]
pub struct Meter {
    replicas: u32,
    /// Replica-seconds with the container up and measured.
    measured: f64,
    /// Request − usage and usage, integrated over time (core-seconds, byte-seconds).
    cpu_request: f64,
    cpu_usage: f64,
    memory_request: f64,
    memory_usage: f64,
    /// Replica-seconds with CPU (memory) usage above the request.
    cpu_under: f64,
    memory_under: f64,
    /// Replica-seconds not serving (starting, restarting after an OOM kill or an eviction, pending).
    down: f64,
    ooms: u64,
    updates: u64,
    evictions: u64,
    resize_requests: u64,
}

impl Meter {
    pub fn new(replicas: u32) -> Self {
        Self {
            replicas,
            measured: 0.0,
            cpu_request: 0.0,
            cpu_usage: 0.0,
            memory_request: 0.0,
            memory_usage: 0.0,
            cpu_under: 0.0,
            memory_under: 0.0,
            down: 0.0,
            ooms: 0,
            updates: 0,
            evictions: 0,
            resize_requests: 0,
        }
    }

    /// A replica up for `dt` with `applied` requests, using `cpu` cores and `memory` bytes.
    pub fn sample(&mut self, applied: &Resources, cpu: f64, memory: f64, dt: Duration) {
        let dt = dt.as_secs_f64();
        let request_cores = applied.cpu_milli as f64 / 1000.0;
        self.measured += dt;
        self.cpu_request += request_cores * dt;
        self.cpu_usage += cpu * dt;
        self.memory_request += applied.memory as f64 * dt;
        self.memory_usage += memory * dt;
        if cpu > request_cores {
            self.cpu_under += dt;
        }
        if memory > applied.memory as f64 {
            self.memory_under += dt;
        }
    }

    pub fn unavailable(&mut self, dt: Duration) {
        self.down += dt.as_secs_f64();
    }

    pub fn oom(&mut self) {
        self.ooms += 1;
    }

    /// A resize applied in place.
    pub fn update(&mut self) {
        self.updates += 1;
    }

    pub fn resize_requested(&mut self) {
        self.resize_requests += 1;
    }

    /// An evict-and-recreate (also an update).
    pub fn eviction(&mut self) {
        self.evictions += 1;
        self.updates += 1;
    }

    pub fn finish(self, workload: &str, side: Side, duration: Duration, kubelet: Counts) -> Row {
        let pod_days = f64::from(self.replicas) * duration.as_secs_f64() / 86_400.0;
        let ratio = |a: f64, b: f64| if b > 0.0 { a / b } else { 0.0 };
        let total = f64::from(self.replicas) * duration.as_secs_f64();
        let totals = Totals {
            measured: self.measured,
            memory_request: self.memory_request,
            memory_usage: self.memory_usage,
            memory_under: self.memory_under,
            pod_days,
            ooms: self.ooms,
            updates: self.updates,
            evictions: self.evictions,
            down: self.down,
            total,
        };
        Row {
            workload: workload.to_string(),
            policy: side.label().to_string(),
            memory_under_provisioned_share: ratio(self.memory_under, self.measured),
            totals,
            cpu_over_provisioning: ratio(self.cpu_request - self.cpu_usage, self.cpu_usage),
            memory_over_provisioning: ratio(self.memory_request - self.memory_usage, self.memory_usage),
            cpu_under_provisioned_share: ratio(self.cpu_under, self.measured),
            ooms_per_pod_day: ratio(self.ooms as f64, pod_days),
            updates_per_pod_day: ratio(self.updates as f64, pod_days),
            evictions_per_pod_day: ratio(self.evictions as f64, pod_days),
            unavailable_share: ratio(self.down, total),
            resize_requests: self.resize_requests,
            kubelet,
        }
    }
}

/// One workload under one policy.
#[derive(Clone, Debug, Serialize)]
pub struct Row {
    pub workload: String,
    pub policy: String,
    /// (Σ request − Σ usage) / Σ usage over the time replicas were up.
    pub cpu_over_provisioning: f64,
    pub memory_over_provisioning: f64,
    /// Share of up time with CPU usage above the request (memory above the limit is an OOM kill).
    pub cpu_under_provisioned_share: f64,
    pub ooms_per_pod_day: f64,
    /// In-place resizes applied plus evict-and-recreates.
    pub updates_per_pod_day: f64,
    pub evictions_per_pod_day: f64,
    /// Share of replica time not serving (starting after an eviction, restarting after an OOM kill).
    pub unavailable_share: f64,
    /// In-place resize requests sent (heatscaler).
    pub resize_requests: u64,
    /// Kubelet verdicts on resizes: deferred, infeasible, actuation errors.
    pub kubelet: Counts,
    /// Share of up time with memory usage above the request (not yet an OOM kill: that is the limit).
    pub memory_under_provisioned_share: f64,
    /// The sums behind the ratios, for pooling workloads.
    pub totals: Totals,
}

/// Sums of one run, in replica-seconds, byte-seconds and counts.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Totals {
    pub measured: f64,
    pub memory_request: f64,
    pub memory_usage: f64,
    pub memory_under: f64,
    pub pod_days: f64,
    pub ooms: u64,
    pub updates: u64,
    pub evictions: u64,
    pub down: f64,
    pub total: f64,
}

/// Workloads pooled per policy: the ratios of the summed totals.
#[derive(Clone, Debug, Serialize)]
pub struct Pooled {
    pub policy: String,
    pub workloads: usize,
    pub pod_days: f64,
    pub memory_over_provisioning: f64,
    pub memory_under_provisioned_share: f64,
    pub ooms_per_pod_day: f64,
    pub updates_per_pod_day: f64,
    pub evictions_per_pod_day: f64,
    pub unavailable_share: f64,
}

impl PodLevelReport {
    /// Per policy, every workload pooled (weighted by its size and time).
    pub fn pooled(&self) -> Vec<Pooled> {
        let mut policies: Vec<&str> = Vec::new();
        for r in &self.rows {
            if !policies.contains(&r.policy.as_str()) {
                policies.push(&r.policy);
            }
        }
        let ratio = |a: f64, b: f64| if b > 0.0 { a / b } else { 0.0 };
        policies
            .into_iter()
            .map(|policy| {
                let mut t = Totals::default();
                let mut n = 0;
                for r in self.rows.iter().filter(|r| r.policy == policy) {
                    n += 1;
                    let x = &r.totals;
                    t.measured += x.measured;
                    t.memory_request += x.memory_request;
                    t.memory_usage += x.memory_usage;
                    t.memory_under += x.memory_under;
                    t.pod_days += x.pod_days;
                    t.ooms += x.ooms;
                    t.updates += x.updates;
                    t.evictions += x.evictions;
                    t.down += x.down;
                    t.total += x.total;
                }
                Pooled {
                    policy: policy.to_string(),
                    workloads: n,
                    pod_days: t.pod_days,
                    memory_over_provisioning: ratio(t.memory_request - t.memory_usage, t.memory_usage),
                    memory_under_provisioned_share: ratio(t.memory_under, t.measured),
                    ooms_per_pod_day: ratio(t.ooms as f64, t.pod_days),
                    updates_per_pod_day: ratio(t.updates as f64, t.pod_days),
                    evictions_per_pod_day: ratio(t.evictions as f64, t.pod_days),
                    unavailable_share: ratio(t.down, t.total),
                }
            })
            .collect()
    }
}

/// Beyond this many workloads the table pools them (`--json` has each).
const ROWS_SHOWN: usize = 12;

#[derive(Clone, Debug, Serialize)]
pub struct PodLevelReport {
    pub duration_secs: u64,
    pub seed: u64,
    pub rows: Vec<Row>,
}

impl fmt::Display for PodLevelReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let days = self.duration_secs as f64 / 86_400.0;
        writeln!(
            f,
            "pod-level benchmark: up to {days:.1} days simulated per workload, seed {}, same usage for both policies",
            self.seed
        )?;
        if self.rows.len() > 2 * ROWS_SHOWN {
            return self.fmt_pooled(f);
        }
        writeln!(
            f,
            "{:<12} {:<14} {:>9} {:>9} {:>10} {:>9} {:>9} {:>9} {:>8} {:>16}",
            "workload",
            "policy",
            "cpu over",
            "mem over",
            "cpu under",
            "OOM/pd",
            "upd/pd",
            "evict/pd",
            "unavail",
            "deferred/infeas."
        )?;
        let mut last = "";
        for r in &self.rows {
            let name = if r.workload == last { "" } else { r.workload.as_str() };
            last = &r.workload;
            writeln!(
                f,
                "{:<12} {:<14} {:>8.0}% {:>8.0}% {:>9.1}% {:>9.2} {:>9.2} {:>9.2} {:>7.2}% {:>16}",
                name,
                r.policy,
                r.cpu_over_provisioning * 100.0,
                r.memory_over_provisioning * 100.0,
                r.cpu_under_provisioned_share * 100.0,
                r.ooms_per_pod_day,
                r.updates_per_pod_day,
                r.evictions_per_pod_day,
                r.unavailable_share * 100.0,
                format!("{}/{}", r.kubelet.deferred, r.kubelet.infeasible),
            )?;
        }
        writeln!(f, "over = (request − usage) / usage; under = share of up time with CPU usage above its request;")?;
        writeln!(
            f,
            "pd = per pod-day; upd = in-place resizes applied + evict-and-recreates; unavail = replica time not serving."
        )?;
        writeln!(
            f,
            "* vpa-defaults: the Kubernetes VPA recommender, updater (Recreate) and admission controller with their"
        )?;
        writeln!(f, "  documented defaults, re-implemented in heatscaler's simulator (not VPA's code).")
    }
}

impl PodLevelReport {
    fn fmt_pooled(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "{:<14} {:>9} {:>9} {:>9} {:>10} {:>9} {:>9} {:>9} {:>8}",
            "policy", "workloads", "pod-days", "mem over", "mem under", "OOM/pd", "upd/pd", "evict/pd", "unavail"
        )?;
        for p in self.pooled() {
            writeln!(
                f,
                "{:<14} {:>9} {:>9.1} {:>8.1}% {:>9.2}% {:>9.3} {:>9.2} {:>9.2} {:>7.3}%",
                p.policy,
                p.workloads,
                p.pod_days,
                p.memory_over_provisioning * 100.0,
                p.memory_under_provisioned_share * 100.0,
                p.ooms_per_pod_day,
                p.updates_per_pod_day,
                p.evictions_per_pod_day,
                p.unavailable_share * 100.0,
            )?;
        }
        writeln!(f, "workloads pooled (sums over all of them; --json has each workload);")?;
        writeln!(
            f,
            "mem over = (Σ request − Σ usage) / Σ usage; mem under = share of up time with memory usage above"
        )?;
        writeln!(f, "its request; pd = per pod-day; upd = in-place resizes applied + evict-and-recreates.")?;
        writeln!(
            f,
            "* vpa-defaults: the Kubernetes VPA recommender, updater (Recreate) and admission controller with their"
        )?;
        writeln!(f, "  documented defaults, re-implemented in heatscaler's simulator (not VPA's code).")
    }
}
