//! What a VPA admission controller gives one container of a new pod: its
//! recommendation's target, within the object's resource policy, applied to
//! the requests (and limits) the pod is created with — VPA's
//! `pkg/admission-controller/resource/pod/recommendation` and the capping
//! processor it calls.
//!
//! One function for both sides: the planner predicts a recreated pod's size
//! with it (`planner::resize::admission::recreated`) and heatscaler's own
//! admission webhook sets the new pod's resources with it (the daemon's
//! `admission` module), so what the planner counts on and what the webhook
//! does cannot drift apart.

use super::apply::{AppliedResources, apply_to_container, cap_to_policy};
use crate::model::{Container, ContainerScalingMode, ResourceKind, UpdateMode, VerticalScaling};

/// The resources `container` of a pod of `vpa`'s workload is admitted with,
/// or `None` when the admission controller leaves it as created:
///
/// - `updateMode: Off` mutates nothing; every other mode (`Initial`,
///   `Recreate`, `InPlaceOrRecreate`, `InPlace`) does — VPA's rule: the mode
///   says how *running* pods are updated, a new pod always starts at the
///   recommendation unless the object is off;
/// - a container whose policy is `mode: Off`, or that the recommendation
///   does not name, is left alone;
/// - the target is capped to `minAllowed` / `maxAllowed` again and reduced to
///   the `controlledResources` (the policy may have changed since the status
///   was written, and the admission controller reads the spec as it is now);
/// - limits follow requests under `RequestsAndLimits`, stay under
///   `RequestsOnly` ([`apply_to_container`]).
///
/// `container` is the container as the pod is created (its controller's
/// template): nothing is allocated to a pod not yet bound.
pub fn admitted(container: &Container, vpa: &VerticalScaling) -> Option<AppliedResources> {
    if vpa.update_mode == UpdateMode::Off {
        return None;
    }
    let policy = vpa.resource_policy.for_container(&container.name);
    if policy.is_some_and(|p| p.mode == ContainerScalingMode::Off) {
        return None;
    }
    let mut target = vpa.recommendation(&container.name)?.target.clone();
    if let Some(p) = policy {
        for kind in ResourceKind::ALL {
            if !p.controls(kind) {
                kind.set(&mut target, 0);
            }
        }
        cap_to_policy(&mut target, p);
    }
    if ResourceKind::ALL.into_iter().all(|k| k.get(&target) == 0) {
        return None;
    }
    Some(apply_to_container(container, &target, policy))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{
        ContainerRecommendation, ContainerResourcePolicy, ControlledValues, PodResourcePolicy, Resources, WorkloadRef,
    };

    const MI: i64 = 1 << 20;

    fn container(name: &str) -> Container {
        Container {
            name: name.into(),
            requests: Resources::new(500, 256 * MI),
            limits: Resources::new(1000, 512 * MI),
            allocated: None,
            oom_kills: 0,
            last_oom: None,
        }
    }

    fn vpa(mode: UpdateMode, target: Resources) -> VerticalScaling {
        VerticalScaling {
            namespace: "ns".into(),
            name: "web".into(),
            workload: WorkloadRef { kind: "Deployment".into(), namespace: "ns".into(), name: "web".into() },
            update_mode: mode,
            min_replicas: None,
            resource_policy: PodResourcePolicy::default(),
            eviction_requirements: Vec::new(),
            replicas: None,
            recommendations: vec![ContainerRecommendation {
                container_name: "app".into(),
                lower_bound: target.clone(),
                upper_bound: target.clone(),
                uncapped_target: target.clone(),
                target,
                capped: Vec::new(),
            }],
        }
    }

    fn policy(p: ContainerResourcePolicy) -> PodResourcePolicy {
        PodResourcePolicy { container_policies: vec![p] }
    }

    #[test]
    fn every_mode_but_off_admits_the_target_with_limits_in_proportion() {
        for mode in [UpdateMode::Initial, UpdateMode::Recreate, UpdateMode::InPlaceOrRecreate, UpdateMode::InPlace] {
            let got = admitted(&container("app"), &vpa(mode, Resources::new(750, 300 * MI))).expect("admitted");
            assert_eq!(got.requests, Resources::new(750, 300 * MI), "{mode:?}");
            assert_eq!(got.limits, Resources::new(1500, 600 * MI), "{mode:?}: the 2x burst ratio kept");
        }
        assert_eq!(admitted(&container("app"), &vpa(UpdateMode::Off, Resources::new(750, 300 * MI))), None);
    }

    #[test]
    fn no_recommendation_or_an_unnamed_container_is_left_alone() {
        let mut v = vpa(UpdateMode::Recreate, Resources::new(750, 300 * MI));
        assert_eq!(admitted(&container("sidecar"), &v), None, "the VPA does not name this container");
        v.recommendations.clear();
        assert_eq!(admitted(&container("app"), &v), None, "no recommendation yet");
    }

    #[test]
    fn a_container_policy_off_is_left_alone() {
        let mut v = vpa(UpdateMode::Recreate, Resources::new(750, 300 * MI));
        v.resource_policy = policy(ContainerResourcePolicy {
            container_name: "*".into(),
            mode: ContainerScalingMode::Off,
            ..Default::default()
        });
        assert_eq!(admitted(&container("app"), &v), None);
    }

    #[test]
    fn the_target_is_capped_to_the_policy_as_it_is_now() {
        let mut v = vpa(UpdateMode::Recreate, Resources::new(100, 4096 * MI));
        v.resource_policy = policy(ContainerResourcePolicy {
            container_name: "app".into(),
            min_allowed: Resources::new(200, 0),
            max_allowed: Resources::new(0, 1024 * MI),
            ..Default::default()
        });
        let got = admitted(&container("app"), &v).expect("admitted");
        assert_eq!(got.requests, Resources::new(200, 1024 * MI), "minAllowed cpu, maxAllowed memory");
    }

    #[test]
    fn only_controlled_resources_change() {
        let mut v = vpa(UpdateMode::Recreate, Resources::new(750, 300 * MI));
        v.resource_policy = policy(ContainerResourcePolicy {
            container_name: "*".into(),
            controlled_resources: Some(vec![ResourceKind::Memory]),
            controlled_values: ControlledValues::RequestsOnly,
            ..Default::default()
        });
        let got = admitted(&container("app"), &v).expect("admitted");
        assert_eq!(got.requests, Resources::new(500, 300 * MI), "cpu not controlled: as created");
        assert_eq!(got.limits, Resources::new(1000, 512 * MI), "RequestsOnly: limits as created");
        v.resource_policy.container_policies[0].controlled_resources = Some(Vec::new());
        assert_eq!(admitted(&container("app"), &v), None, "nothing controlled: nothing to set");
    }
}
