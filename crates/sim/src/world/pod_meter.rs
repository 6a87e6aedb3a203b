//! How well the pods of each workload with a VPA object were sized, measured
//! while the run goes: on each metrics tick, the requests the kubelet applied
//! against the usage sampled (over-provisioning, time under the request),
//! time not serving; and, as they happen, OOM kills, resizes applied and
//! evictions (to recreate, or by a drain). The recorder turns it into the
//! report's `pod_workloads` rows; nothing here is computed from a policy's
//! intentions, only from what the world's pods did.

use std::time::Duration as StdDuration;

use heatscaler_core::model::Resources;

use crate::report::{PodTotals, PodWorkload};

#[derive(Clone, Debug, Default)]
pub struct PodMeter {
    /// By the scenario's workload index; `None` for workloads without a VPA object.
    workloads: Vec<Option<(String, PodTotals)>>,
}

impl PodMeter {
    /// Workload `w` (named `name`) is measured.
    pub fn measure(&mut self, w: usize, name: &str) {
        if self.workloads.len() <= w {
            self.workloads.resize(w + 1, None);
        }
        self.workloads[w] = Some((name.to_string(), PodTotals::default()));
    }

    fn totals(&mut self, w: usize) -> Option<&mut PodTotals> {
        self.workloads.get_mut(w).and_then(Option::as_mut).map(|(_, t)| t)
    }

    /// A pod of workload `w` was alive (not deleted) for `alive`, of which
    /// `down` not serving (pending, starting, restarting).
    pub fn live(&mut self, w: usize, alive: StdDuration, down: StdDuration) {
        let Some(t) = self.totals(w) else { return };
        let alive = alive.as_secs_f64();
        t.total += alive;
        t.pod_days += alive / 86_400.0;
        t.down += down.as_secs_f64().min(alive);
    }

    /// A serving container of workload `w` with `applied` requests used `cpu`
    /// cores and `memory` bytes for `dt`.
    pub fn sample(&mut self, w: usize, applied: &Resources, cpu: f64, memory: f64, dt: StdDuration) {
        let Some(t) = self.totals(w) else { return };
        let dt = dt.as_secs_f64();
        let request_cores = applied.cpu_milli as f64 / 1000.0;
        t.measured += dt;
        t.cpu_request += request_cores * dt;
        t.cpu_usage += cpu * dt;
        t.memory_request += applied.memory as f64 * dt;
        t.memory_usage += memory * dt;
        if cpu > request_cores {
            t.cpu_under += dt;
        }
        if memory > applied.memory as f64 {
            t.memory_under += dt;
        }
    }

    pub fn oom_kill(&mut self, w: usize) {
        if let Some(t) = self.totals(w) {
            t.ooms += 1;
        }
    }

    /// A resize the kubelet applied in place.
    pub fn resized(&mut self, w: usize) {
        if let Some(t) = self.totals(w) {
            t.updates += 1;
        }
    }

    /// A pod evicted to be recreated at a new size (an update as well).
    pub fn recreated(&mut self, w: usize) {
        if let Some(t) = self.totals(w) {
            t.updates += 1;
        }
    }

    /// A pod evicted, for whatever reason (recreation or drain).
    pub fn evicted(&mut self, w: usize) {
        if let Some(t) = self.totals(w) {
            t.evictions += 1;
        }
    }

    /// One row per measured workload, in the scenario's order.
    pub fn rows(&self) -> Vec<PodWorkload> {
        self.workloads.iter().flatten().map(|(name, t)| t.row(name)).collect()
    }
}
