//! What an emulated node is (its shape, as a VM's kubelet would register it)
//! and the kubelet's timings.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// A node taint set at registration (`--register-with-taints`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Taint {
    pub key: String,
    #[serde(default)]
    pub value: String,
    pub effect: String,
}

/// One emulated node: what cloud-init and the kubelet flags of a minion VM
/// would give it. Capacity keys are resource names (`cpu`, `memory`, `pods`,
/// `ephemeral-storage`, extended resources such as `nvidia.com/gpu`);
/// allocatable defaults to capacity.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NodeSpec {
    pub name: String,
    /// `spec.providerID`, e.g. `openstack:///<server uuid>`.
    #[serde(default)]
    pub provider_id: Option<String>,
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    #[serde(default)]
    pub taints: Vec<Taint>,
    #[serde(default = "default_capacity")]
    pub capacity: BTreeMap<String, String>,
    /// Overrides of capacity (system/kube reserved taken off).
    #[serde(default)]
    pub allocatable: BTreeMap<String, String>,
    /// Registered cordoned (`--register-schedulable=false`).
    #[serde(default)]
    pub unschedulable: bool,
}

fn default_capacity() -> BTreeMap<String, String> {
    [("cpu", "4"), ("memory", "16Gi"), ("pods", "110"), ("ephemeral-storage", "100Gi")]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

impl NodeSpec {
    /// 4 CPUs, 16 GiB, 110 pods, 100 GiB ephemeral storage.
    pub fn new(name: &str) -> NodeSpec {
        NodeSpec {
            name: name.to_string(),
            provider_id: None,
            labels: BTreeMap::new(),
            taints: Vec::new(),
            capacity: default_capacity(),
            allocatable: BTreeMap::new(),
            unschedulable: false,
        }
    }

    pub fn cpu(self, cpu: &str) -> Self {
        self.resource("cpu", cpu)
    }

    pub fn memory(self, memory: &str) -> Self {
        self.resource("memory", memory)
    }

    pub fn pods(self, pods: u32) -> Self {
        self.resource("pods", &pods.to_string())
    }

    /// Any capacity entry, e.g. `resource("nvidia.com/gpu", "2")`.
    pub fn resource(mut self, name: &str, amount: &str) -> Self {
        self.capacity.insert(name.to_string(), amount.to_string());
        self
    }

    pub fn allocatable(mut self, name: &str, amount: &str) -> Self {
        self.allocatable.insert(name.to_string(), amount.to_string());
        self
    }

    pub fn provider_id(mut self, id: &str) -> Self {
        self.provider_id = Some(id.to_string());
        self
    }

    pub fn label(mut self, key: &str, value: &str) -> Self {
        self.labels.insert(key.to_string(), value.to_string());
        self
    }

    pub fn taint(mut self, key: &str, value: &str, effect: &str) -> Self {
        self.taints.push(Taint { key: key.into(), value: value.into(), effect: effect.into() });
        self
    }

    pub fn unschedulable(mut self) -> Self {
        self.unschedulable = true;
        self
    }

    /// Capacity with the allocatable overrides applied.
    pub fn effective_allocatable(&self) -> BTreeMap<String, String> {
        let mut a = self.capacity.clone();
        a.extend(self.allocatable.clone());
        a
    }
}

/// The kubelet's timings. [`Timing::default`] is a default kubelet's;
/// tests shorten them with [`Timing::fast`].
#[derive(Clone, Debug)]
pub struct Timing {
    /// `nodeLeaseDurationSeconds` (40 s); the lease is renewed every quarter of it.
    pub lease_duration: Duration,
    pub lease_renew_interval: Duration,
    /// `nodeStatusReportFrequency` (5 min): status is posted on change and at least this often.
    pub node_status_report_frequency: Duration,
    /// From a pod's admission to its containers running (image pull, sandbox).
    pub pod_start_delay: Duration,
    /// From an admitted resize to its actuation (the runtime updating cgroups).
    pub resize_actuation_delay: Duration,
    /// Multiplies every termination grace period (1.0: as the pod asks).
    pub grace_period_scale: f64,
    /// How often deferred resizes are retried without a trigger (the kubelet's 3 min).
    pub resize_retry_period: Duration,
}

impl Default for Timing {
    fn default() -> Self {
        Timing {
            lease_duration: Duration::from_secs(40),
            lease_renew_interval: Duration::from_secs(10),
            node_status_report_frequency: Duration::from_secs(300),
            pod_start_delay: Duration::from_millis(1000),
            resize_actuation_delay: Duration::from_millis(500),
            grace_period_scale: 1.0,
            resize_retry_period: Duration::from_secs(180),
        }
    }
}

impl Timing {
    /// For tests against a control plane started with short node-monitor
    /// periods: leases every second, fast starts, grace periods at 5 %.
    pub fn fast() -> Self {
        Timing {
            lease_duration: Duration::from_secs(4),
            lease_renew_interval: Duration::from_secs(1),
            node_status_report_frequency: Duration::from_secs(60),
            pod_start_delay: Duration::from_millis(200),
            resize_actuation_delay: Duration::from_millis(200),
            grace_period_scale: 0.05,
            resize_retry_period: Duration::from_secs(10),
        }
    }

    pub fn grace(&self, seconds: i64) -> Duration {
        Duration::from_secs(seconds.max(0) as u64).mul_f64(self.grace_period_scale.max(0.0))
    }
}
