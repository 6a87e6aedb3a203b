//! What a VPA object's `spec.resourcePolicy` does to a recommendation (VPA's
//! `pkg/utils/vpa/capping.go` and `GetProportionalLimit`): `minAllowed` /
//! `maxAllowed` caps, and whether limits follow requests when a target is
//! applied. The policy itself is data of the snapshot
//! (`model::PodResourcePolicy`).

use crate::model::{Capping, Container, ContainerResourcePolicy, ControlledValues, ResourceKind, Resources};

/// Brings every amount of `r` into `[min_allowed, max_allowed]` (zero bounds
/// are unset); returns the resources that were capped.
pub(crate) fn cap_to_policy(r: &mut Resources, policy: &ContainerResourcePolicy) -> Vec<(ResourceKind, Capping)> {
    let mut capped = Vec::new();
    for kind in ResourceKind::ALL {
        let mut amount = kind.get(r);
        if amount == 0 {
            continue; // not recommended (not controlled)
        }
        // Min first, then max, as VPA: with min > max (a misconfiguration) max wins.
        let min = kind.get(&policy.min_allowed);
        let max = kind.get(&policy.max_allowed);
        if min != 0 && amount < min {
            amount = min;
            capped.push((kind, Capping::MinAllowed));
        }
        if max != 0 && amount > max {
            amount = max;
            capped.push((kind, Capping::MaxAllowed));
        }
        kind.set(r, amount);
    }
    capped
}

/// What a container's `resources` become when `target` is applied under
/// `policy` (the actuator's side of VPA: admission controller and updater).
#[derive(Clone, Debug, PartialEq)]
pub struct AppliedResources {
    pub requests: Resources,
    pub limits: Resources,
    /// A limit that could not keep its ratio because it would overflow.
    pub limit_saturated: Vec<ResourceKind>,
}

/// New requests and limits for `container` when its recommendation target
/// (only controlled resources non-zero) is applied.
///
/// `RequestsAndLimits` scales each limit by the same factor as its request,
/// so burstable headroom keeps its shape; `RequestsOnly` leaves limits alone
/// and caps the request at the limit (a request above its limit is invalid).
pub fn apply_to_container(
    container: &Container,
    target: &Resources,
    policy: Option<&ContainerResourcePolicy>,
) -> AppliedResources {
    let controlled = policy.map(|p| p.controlled_values).unwrap_or_default();
    let mut requests = container.requests.clone();
    let mut limits = container.limits.clone();
    let mut limit_saturated = Vec::new();
    for kind in ResourceKind::ALL {
        let mut new_request = kind.get(target);
        if new_request == 0 {
            continue;
        }
        let old_request = kind.get(&container.requests);
        let old_limit = kind.get(&container.limits);
        match controlled {
            ControlledValues::RequestsOnly => {
                if old_limit != 0 {
                    new_request = new_request.min(old_limit);
                }
            }
            ControlledValues::RequestsAndLimits => {
                if let Some(scaled) = proportional_limit(old_limit, old_request, new_request) {
                    if scaled.saturated {
                        limit_saturated.push(kind);
                    }
                    kind.set(&mut limits, scaled.limit);
                }
            }
        }
        kind.set(&mut requests, new_request);
    }
    AppliedResources { requests, limits, limit_saturated }
}

/// A limit scaled for a new request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ScaledLimit {
    pub limit: i64,
    /// The exact value overflowed and was capped at `i64::MAX`.
    pub saturated: bool,
}

/// The limit that keeps `original_limit / original_request` for `new_request`
/// (VPA's `getProportionalResourceLimit`, integer arithmetic, truncating).
/// `None` when there is no limit to keep (unlimited stays unlimited) or no
/// new request. A limit with no request, or equal to it, becomes the new
/// request: Kubernetes treats such a container as request == limit.
pub fn proportional_limit(original_limit: i64, original_request: i64, new_request: i64) -> Option<ScaledLimit> {
    if original_limit <= 0 || new_request <= 0 {
        return None;
    }
    if original_request <= 0 || original_request == original_limit {
        return Some(ScaledLimit { limit: new_request, saturated: false });
    }
    let exact = i128::from(original_limit) * i128::from(new_request) / i128::from(original_request);
    Some(match i64::try_from(exact) {
        Ok(limit) => ScaledLimit { limit, saturated: false },
        Err(_) => ScaledLimit { limit: i64::MAX, saturated: true },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn container(req: (i64, i64), lim: (i64, i64)) -> Container {
        Container {
            name: "app".into(),
            requests: Resources::new(req.0, req.1),
            limits: Resources::new(lim.0, lim.1),
            allocated: None,
            oom_kills: 0,
            last_oom: None,
        }
    }

    #[test]
    fn proportional_limits() {
        // 2x burst ratio kept.
        assert_eq!(proportional_limit(1000, 500, 800), Some(ScaledLimit { limit: 1600, saturated: false }));
        // Truncating integer division, like VPA's big.Int arithmetic.
        assert_eq!(proportional_limit(1000, 300, 100).unwrap().limit, 333);
        assert_eq!(proportional_limit(0, 500, 800), None, "no limit stays no limit");
        assert_eq!(proportional_limit(700, 0, 800).unwrap().limit, 800, "limit without request");
        assert_eq!(proportional_limit(500, 500, 800).unwrap().limit, 800, "guaranteed stays guaranteed");
        assert_eq!(proportional_limit(i64::MAX, 1, 2), Some(ScaledLimit { limit: i64::MAX, saturated: true }));
    }

    #[test]
    fn requests_and_limits_scale_together() {
        let c = container((500, 256 << 20), (1000, 512 << 20));
        let applied = apply_to_container(&c, &Resources::new(750, 300 << 20), None);
        assert_eq!(applied.requests, Resources::new(750, 300 << 20));
        assert_eq!(applied.limits, Resources::new(1500, 600 << 20));
    }

    #[test]
    fn requests_only_keeps_limits_and_caps_requests_at_them() {
        let c = container((500, 256 << 20), (1000, 512 << 20));
        let policy = ContainerResourcePolicy {
            container_name: "app".into(),
            controlled_values: ControlledValues::RequestsOnly,
            ..Default::default()
        };
        let applied = apply_to_container(&c, &Resources::new(1200, 300 << 20), Some(&policy));
        assert_eq!(applied.requests, Resources::new(1000, 300 << 20), "CPU request capped at its limit");
        assert_eq!(applied.limits, c.limits);
    }

    #[test]
    fn uncontrolled_resources_are_left_alone() {
        let c = container((500, 256 << 20), (1000, 512 << 20));
        // Memory not in the target (not controlled): untouched.
        let applied = apply_to_container(&c, &Resources::new(250, 0), None);
        assert_eq!(applied.requests, Resources::new(250, 256 << 20));
        assert_eq!(applied.limits, Resources::new(500, 512 << 20));
    }
}
