//! Which members Heat deletes when an AutoScalingGroup shrinks.
//!
//! Heat's rule (`heat.common.grouputils.GroupInspector` and
//! `heat.scaling.template.member_definitions`): members are ordered by
//! (not `*_FAILED`, creation time, name) and the group keeps the *last* N, so
//! failed members go first, then the oldest; ties in creation time (Heat keeps
//! whole seconds) are broken by resource name. A scaling-policy signal computes
//! the new size from the members that are *not* failed, so with failed members a
//! signal of -1 deletes all of them plus the oldest healthy one.

use super::HeatMember;

/// Members in the order Heat deletes them.
pub fn removal_order(members: &[HeatMember]) -> Vec<&HeatMember> {
    let mut ordered: Vec<&HeatMember> = members.iter().collect();
    ordered.sort_by(|a, b| {
        (!a.heat_failed(), a.heat_created.as_deref().unwrap_or(""), a.name.as_str()).cmp(&(
            !b.heat_failed(),
            b.heat_created.as_deref().unwrap_or(""),
            b.name.as_str(),
        ))
    });
    ordered
}

/// Members deleted when the group is resized to `capacity` (a new
/// `desired_capacity`). `None` when Heat's choice cannot be known: a member
/// without a creation time is not yet ordered by Heat either.
pub fn for_capacity(members: &[HeatMember], capacity: u32) -> Option<Vec<String>> {
    if members.iter().any(|m| m.heat_created.is_none()) {
        return None;
    }
    let remove = members.len().saturating_sub(capacity as usize);
    Some(removal_order(members).into_iter().take(remove).map(|m| m.name.clone()).collect())
}

/// New capacity and deleted members for a `change_in_capacity` signal of `adjustment`.
pub fn for_signal(members: &[HeatMember], adjustment: i64, min: u32, max: u32) -> Option<(u32, Vec<String>)> {
    let healthy = members.iter().filter(|m| !m.heat_failed()).count() as i64;
    let capacity = (healthy + adjustment).clamp(min as i64, max as i64) as u32;
    Some((capacity, for_capacity(members, capacity)?))
}

#[cfg(test)]
mod tests {
    use super::*;
    use heatscaler_core::model::MemberStatus;

    fn m(name: &str, status: &str, created: &str) -> HeatMember {
        HeatMember {
            name: name.into(),
            status: MemberStatus::Complete,
            heat_status: status.into(),
            status_reason: None,
            created: None,
            heat_created: Some(created.into()),
            physical_id: None,
            server_id: None,
            node_name: None,
        }
    }

    #[test]
    fn failed_first_then_oldest_then_name() {
        let members = vec![
            m("zz", "CREATE_COMPLETE", "2026-01-01T00:00:01Z"),
            m("aa", "CREATE_COMPLETE", "2026-01-01T00:00:01Z"),
            m("old", "CREATE_COMPLETE", "2026-01-01T00:00:00Z"),
            m("bad", "CREATE_FAILED", "2026-01-01T00:00:09Z"),
        ];
        let order: Vec<_> = removal_order(&members).iter().map(|m| m.name.as_str()).collect();
        assert_eq!(order, ["bad", "old", "aa", "zz"]);
        assert_eq!(for_capacity(&members, 2).unwrap(), ["bad", "old"]);
        assert_eq!(for_capacity(&members, 4).unwrap(), Vec::<String>::new());
    }

    #[test]
    fn signal_counts_only_healthy_members() {
        let members = vec![
            m("a", "CREATE_COMPLETE", "2026-01-01T00:00:00Z"),
            m("b", "CREATE_COMPLETE", "2026-01-01T00:00:01Z"),
            m("c", "CHECK_FAILED", "2026-01-01T00:00:02Z"),
        ];
        // healthy 2 - 1 = 1: the failed member and the oldest healthy one go.
        assert_eq!(for_signal(&members, -1, 0, 10).unwrap(), (1, vec!["c".to_string(), "a".to_string()]));
    }

    #[test]
    fn unknown_creation_time_means_unknown_victims() {
        let mut members = vec![m("a", "CREATE_COMPLETE", "2026-01-01T00:00:00Z")];
        members[0].heat_created = None;
        assert_eq!(for_capacity(&members, 0), None);
    }
}
