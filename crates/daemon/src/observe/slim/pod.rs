//! A pod as the watch keeps it until converted: what the scheduler reserves
//! for it, where it may go, what a drain and a resize must know.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1 as k8s;
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};
use serde::Deserialize;

use super::meta::{PodAnnotations, object_meta};

/// A pod with only the fields [`crate::observe::convert::pod`] reads.
#[derive(Clone, Debug, Default, Deserialize)]
pub struct Pod {
    #[serde(default, deserialize_with = "object_meta::<PodAnnotations, _>")]
    pub metadata: ObjectMeta,
    spec: Option<Spec>,
    status: Option<Status>,
}

super::builtin_resource!(Pod, "", "v1", "Pod", "pods", k8s_openapi::NamespaceResourceScope);

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Spec {
    node_name: Option<String>,
    priority: Option<i32>,
    #[serde(default)]
    containers: Vec<Container>,
    init_containers: Option<Vec<Container>>,
    /// Pod-level requests and limits.
    resources: Option<k8s::ResourceRequirements>,
    overhead: Option<BTreeMap<String, Quantity>>,
    affinity: Option<k8s::Affinity>,
    topology_spread_constraints: Option<Vec<k8s::TopologySpreadConstraint>>,
    node_selector: Option<BTreeMap<String, String>>,
    tolerations: Option<Vec<k8s::Toleration>>,
    volumes: Option<Vec<Volume>>,
}

/// A container: no image, command, environment, probes or mounts.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Container {
    #[serde(default)]
    name: String,
    resources: Option<k8s::ResourceRequirements>,
    ports: Option<Vec<Port>>,
    /// `Always` on an init container: a sidecar.
    restart_policy: Option<String>,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Port {
    #[serde(default)]
    container_port: i32,
    host_port: Option<i32>,
    protocol: Option<String>,
}

/// A volume: its name and whether it is node-local storage.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Volume {
    #[serde(default)]
    name: String,
    host_path: Option<k8s::HostPathVolumeSource>,
    empty_dir: Option<k8s::EmptyDirVolumeSource>,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Status {
    phase: Option<String>,
    conditions: Option<Vec<k8s::PodCondition>>,
    nominated_node_name: Option<String>,
    container_statuses: Option<Vec<ContainerStatus>>,
    init_container_statuses: Option<Vec<ContainerStatus>>,
}

/// What the kubelet applied (`resources`) and how the container last ended.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct ContainerStatus {
    #[serde(default)]
    name: String,
    resources: Option<k8s::ResourceRequirements>,
    state: Option<ContainerState>,
    last_state: Option<ContainerState>,
}

#[derive(Clone, Debug, Default, Deserialize)]
struct ContainerState {
    terminated: Option<Terminated>,
}

/// A termination without its message (up to 4 KiB from the container).
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Terminated {
    #[serde(default)]
    exit_code: i32,
    reason: Option<String>,
    finished_at: Option<Time>,
}

impl Pod {
    /// The API pod with these fields set and every other one empty: the
    /// input of [`crate::observe::convert::pod`]. Built per pod and dropped
    /// after its conversion, never a page of them.
    pub fn into_api(self) -> k8s::Pod {
        k8s::Pod {
            metadata: self.metadata,
            spec: self.spec.map(Spec::into_api),
            status: self.status.map(Status::into_api),
        }
    }
}

impl Spec {
    fn into_api(self) -> k8s::PodSpec {
        k8s::PodSpec {
            node_name: self.node_name,
            priority: self.priority,
            containers: self.containers.into_iter().map(Container::into_api).collect(),
            init_containers: self.init_containers.map(|c| c.into_iter().map(Container::into_api).collect()),
            resources: self.resources,
            overhead: self.overhead,
            affinity: self.affinity,
            topology_spread_constraints: self.topology_spread_constraints,
            node_selector: self.node_selector,
            tolerations: self.tolerations,
            volumes: self.volumes.map(|v| v.into_iter().map(Volume::into_api).collect()),
            ..k8s::PodSpec::default()
        }
    }
}

impl Container {
    fn into_api(self) -> k8s::Container {
        k8s::Container {
            name: self.name,
            resources: self.resources,
            ports: self.ports.map(|p| {
                p.into_iter()
                    .map(|p| k8s::ContainerPort {
                        container_port: p.container_port,
                        host_port: p.host_port,
                        protocol: p.protocol,
                        ..k8s::ContainerPort::default()
                    })
                    .collect()
            }),
            restart_policy: self.restart_policy,
            ..k8s::Container::default()
        }
    }
}

impl Volume {
    fn into_api(self) -> k8s::Volume {
        k8s::Volume { name: self.name, host_path: self.host_path, empty_dir: self.empty_dir, ..k8s::Volume::default() }
    }
}

impl Status {
    fn into_api(self) -> k8s::PodStatus {
        let statuses =
            |s: Option<Vec<ContainerStatus>>| s.map(|s| s.into_iter().map(ContainerStatus::into_api).collect());
        k8s::PodStatus {
            phase: self.phase,
            conditions: self.conditions,
            nominated_node_name: self.nominated_node_name,
            container_statuses: statuses(self.container_statuses),
            init_container_statuses: statuses(self.init_container_statuses),
            ..k8s::PodStatus::default()
        }
    }
}

impl ContainerStatus {
    fn into_api(self) -> k8s::ContainerStatus {
        k8s::ContainerStatus {
            name: self.name,
            resources: self.resources,
            state: self.state.map(ContainerState::into_api),
            last_state: self.last_state.map(ContainerState::into_api),
            ..k8s::ContainerStatus::default()
        }
    }
}

impl ContainerState {
    fn into_api(self) -> k8s::ContainerState {
        k8s::ContainerState {
            terminated: self.terminated.map(|t| k8s::ContainerStateTerminated {
                exit_code: t.exit_code,
                reason: t.reason,
                finished_at: t.finished_at,
                ..k8s::ContainerStateTerminated::default()
            }),
            ..k8s::ContainerState::default()
        }
    }
}
