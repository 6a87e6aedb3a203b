//! Plain values of the model's records for tests: every field at its most
//! ordinary value, so a test writes only the fields it is about with struct
//! update syntax (`Pod { node_name: Some("n1".into()), ..pod("web-1") }`) and a
//! new field is added here once instead of in every test.
//!
//! Built with the `test-support` feature (dev-dependencies of the other
//! crates enable it) and for this crate's own tests. The simulator and the
//! daemon's observers build their records in full on purpose: there, every
//! field is a decision.

use std::sync::Arc;

use super::{Container, Node, Pod, PodPhase, ResizeState, Resources, Timestamp};

/// 2024-01-01T00:00:00Z, the `created` time of every record built here.
pub fn epoch() -> Timestamp {
    Timestamp::from_second(1_704_067_200).expect("a valid instant")
}

/// A pending, unbound pod `name` in namespace `default` (uid `uid-<name>`)
/// that requests one pod slot and nothing else: no labels, owner, workload,
/// containers or placement constraints.
pub fn pod(name: &str) -> Pod {
    Pod {
        uid: format!("uid-{name}").into(),
        namespace: "default".into(),
        name: name.into(),
        labels: Arc::default(),
        owner: None,
        workload: None,
        node_name: None,
        phase: PodPhase::Pending,
        requests: Resources { pods: 1, ..Resources::default() },
        containers: Vec::new(),
        init_qos: None,
        placement: Arc::default(),
        priority: 0,
        created: epoch(),
        unschedulable_since: None,
        nominated_node: None,
        deletion: None,
        safe_to_evict: None,
        local_storage: false,
        mirror: false,
        resize: ResizeState::None,
    }
}

/// A Ready, schedulable node `name` with `allocatable`, no labels or taints.
pub fn node(name: &str, allocatable: Resources) -> Node {
    Node {
        name: name.into(),
        labels: Default::default(),
        annotations: Default::default(),
        taints: Vec::new(),
        allocatable,
        unschedulable: false,
        ready: true,
        provider_id: None,
        created: epoch(),
    }
}

/// A container `name` with `requests`, no limits, never OOM-killed, with
/// nothing applied by the kubelet yet.
pub fn container(name: &str, requests: Resources) -> Container {
    Container {
        name: name.into(),
        requests,
        limits: Resources::default(),
        allocated: None,
        oom_kills: 0,
        last_oom: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_epoch_is_the_start_of_2024() {
        assert_eq!(epoch().to_string(), "2024-01-01T00:00:00Z");
    }
}
