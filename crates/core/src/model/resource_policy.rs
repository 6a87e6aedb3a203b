//! A VPA object's `spec.resourcePolicy` as plain data: per container, whether
//! it is scaled, which resources, between which bounds, and whether limits
//! follow requests. The recommender caps its estimates with it and the
//! planner applies recommendations under it (`recommender::apply_to_container`);
//! both read the same types, so they live with the rest of the snapshot.

use super::Resources;

/// The container name a VPA uses for "every container without its own policy".
pub const DEFAULT_CONTAINER_POLICY: &str = "*";

/// The two resources a VPA recommends.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ResourceKind {
    Cpu,
    Memory,
}

impl ResourceKind {
    pub const ALL: [ResourceKind; 2] = [ResourceKind::Cpu, ResourceKind::Memory];

    /// Millicores for CPU, bytes for memory.
    pub fn get(self, r: &Resources) -> i64 {
        match self {
            ResourceKind::Cpu => r.cpu_milli,
            ResourceKind::Memory => r.memory,
        }
    }

    pub fn set(self, r: &mut Resources, amount: i64) {
        match self {
            ResourceKind::Cpu => r.cpu_milli = amount,
            ResourceKind::Memory => r.memory = amount,
        }
    }

    /// The Kubernetes resource name, as VPA objects list it
    /// (`controlledResources`, `evictionRequirements[].resources`).
    pub fn name(self) -> &'static str {
        match self {
            ResourceKind::Cpu => Resources::CPU,
            ResourceKind::Memory => Resources::MEMORY,
        }
    }
}

/// `containerPolicies[].mode`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ContainerScalingMode {
    #[default]
    Auto,
    /// No recommendation at all for this container.
    Off,
}

/// `containerPolicies[].controlledValues`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ControlledValues {
    /// Requests follow the recommendation and limits keep their ratio to requests (VPA's default).
    #[default]
    RequestsAndLimits,
    /// Only requests change, and never above the container's limit.
    RequestsOnly,
}

/// One entry of `spec.resourcePolicy.containerPolicies`.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ContainerResourcePolicy {
    /// A container name, or [`DEFAULT_CONTAINER_POLICY`].
    pub container_name: String,
    pub mode: ContainerScalingMode,
    /// Zero (unset) amounts impose nothing, as in VPA.
    pub min_allowed: Resources,
    pub max_allowed: Resources,
    /// `None`: both CPU and memory (VPA's default).
    pub controlled_resources: Option<Vec<ResourceKind>>,
    pub controlled_values: ControlledValues,
}

impl ContainerResourcePolicy {
    pub fn controls(&self, kind: ResourceKind) -> bool {
        self.controlled_resources.as_ref().is_none_or(|list| list.contains(&kind))
    }
}

/// `spec.resourcePolicy`.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct PodResourcePolicy {
    pub container_policies: Vec<ContainerResourcePolicy>,
}

impl PodResourcePolicy {
    /// A policy for every container (`*`) that controls only the resources
    /// `names` names, as `controlledResources` does (names VPA does not know
    /// are ignored, as VPA ignores them). Scenarios write VPA objects this way.
    pub fn controlling(names: &[String]) -> Self {
        PodResourcePolicy {
            container_policies: vec![ContainerResourcePolicy {
                container_name: DEFAULT_CONTAINER_POLICY.into(),
                controlled_resources: Some(
                    ResourceKind::ALL.into_iter().filter(|k| names.iter().any(|n| n == k.name())).collect(),
                ),
                ..Default::default()
            }],
        }
    }

    /// The container's own policy, else the `*` one, else none.
    pub fn for_container(&self, name: &str) -> Option<&ContainerResourcePolicy> {
        self.container_policies
            .iter()
            .find(|p| p.container_name == name)
            .or_else(|| self.container_policies.iter().find(|p| p.container_name == DEFAULT_CONTAINER_POLICY))
    }
}

/// Which bound moved a recommendation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Capping {
    MinAllowed,
    MaxAllowed,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn container_policy_lookup_prefers_exact_name() {
        let policy = PodResourcePolicy {
            container_policies: vec![
                ContainerResourcePolicy {
                    container_name: "*".into(),
                    mode: ContainerScalingMode::Off,
                    ..Default::default()
                },
                ContainerResourcePolicy { container_name: "app".into(), ..Default::default() },
            ],
        };
        assert_eq!(policy.for_container("app").unwrap().mode, ContainerScalingMode::Auto);
        assert_eq!(policy.for_container("sidecar").unwrap().mode, ContainerScalingMode::Off);
        assert!(PodResourcePolicy::default().for_container("app").is_none());
    }
}
