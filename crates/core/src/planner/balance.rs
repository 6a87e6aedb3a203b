//! `balance-similar-node-groups`, as cluster-autoscaler means it: groups
//! whose new minions would be the same machine — the same workers in
//! several availability zones, one Heat stack per zone — are one pool, so a
//! scale-up chosen for one of them is split across all that can host the
//! same pods, the smallest growing first, and their sizes stay balanced
//! (a zone outage then takes a third of the workers, not all of them).
//!
//! Similar means, between two groups' templates (what a new minion looks
//! like): every allocatable resource, and what is left of it after the
//! DaemonSet pods, within 5 % of the larger (cluster-autoscaler's
//! `MaxAllocatableDifferenceRatio` and `MaxFreeDifferenceRatio`); the same
//! extended resources; the same labels except those that differ between
//! zones and nodes by nature ([`IGNORED_LABELS`], heatscaler's own group
//! label, and `scale-up.balancing-ignore-labels`). The pods that made the
//! chosen group grow must each fit a new minion of the other group too.
//! cluster-autoscaler also compares the nodes' capacity (CPU exactly,
//! memory within 1.5 %); a heatscaler template states allocatable only, so
//! the allocatable comparison stands for both.

use std::collections::BTreeMap;

use crate::model::{Pod, Resources};

use super::index::GroupIx;
use super::protocol::NODE_GROUP_LABEL;
use super::scheduling::{SchedNode, check_among};

/// Labels that differ between otherwise identical groups: the node's name,
/// its zone and region (current and deprecated keys, and the zone labels of
/// CSI drivers — Cinder's among them), and labels other tools set per
/// group. cluster-autoscaler's `BasicIgnoredLabels`, plus OpenStack's own.
pub const IGNORED_LABELS: &[&str] = &[
    "kubernetes.io/hostname",
    "topology.kubernetes.io/zone",
    "topology.kubernetes.io/region",
    "failure-domain.beta.kubernetes.io/zone",
    "failure-domain.beta.kubernetes.io/region",
    "beta.kubernetes.io/fluentd-ds-ready",
    "kops.k8s.io/instancegroup",
    "topology.cinder.csi.openstack.org/zone",
    "topology.manila.csi.openstack.org/zone",
    "topology.ebs.csi.aws.com/zone",
    "topology.gke.io/zone",
    "topology.disk.csi.azure.com/zone",
    NODE_GROUP_LABEL,
];

/// Most a resource may differ between similar groups, as a share of the larger.
const TOLERANCE: f64 = 0.05;

fn within(a: i64, b: i64) -> bool {
    let (larger, smaller) = (a.max(b) as f64, a.min(b) as f64);
    larger - smaller <= larger * TOLERANCE
}

fn resources_similar(a: &Resources, b: &Resources) -> bool {
    within(a.cpu_milli, b.cpu_milli)
        && within(a.memory, b.memory)
        && within(a.ephemeral_storage, b.ephemeral_storage)
        && within(a.pods, b.pods)
        && a.extended.keys().eq(b.extended.keys())
        && a.extended.iter().zip(&b.extended).all(|((_, x), (_, y))| within(*x, *y))
}

/// Whether new minions of the two templates are the same machine.
pub fn similar(a: &SchedNode<'_>, b: &SchedNode<'_>, extra_ignored: &[String]) -> bool {
    let ignored = |k: &String| IGNORED_LABELS.contains(&k.as_str()) || extra_ignored.contains(k);
    fn kept<'l>(
        labels: &'l BTreeMap<String, String>,
        ignored: &dyn Fn(&String) -> bool,
    ) -> BTreeMap<&'l String, &'l String> {
        labels.iter().filter(|(k, _)| !ignored(k)).collect()
    }
    let free = |n: &SchedNode<'_>| {
        let mut f = n.allocatable.clone();
        f -= &n.requested;
        f
    };
    resources_similar(&a.allocatable, &b.allocatable)
        && resources_similar(&free(a), &free(b))
        && kept(a.labels, &ignored) == kept(b.labels, &ignored)
}

/// The groups among `others` similar to `chosen` on which every pod of
/// `pods` fits a new minion — judged among the existing nodes `context`, so a
/// zone-affine pod does not send minions to a similar group in another zone.
pub fn similar_groups<'t, 'n: 't>(
    chosen: &SchedNode<'_>,
    others: impl IntoIterator<Item = (GroupIx, &'t SchedNode<'n>)>,
    pods: &[&Pod],
    extra_ignored: &[String],
    context: &[SchedNode<'_>],
) -> Vec<GroupIx> {
    others
        .into_iter()
        .filter(|(_, t)| similar(chosen, t, extra_ignored) && pods.iter().all(|p| check_among(p, t, context).is_ok()))
        .map(|(g, _)| g)
        .collect()
}

/// Splits `new_nodes` minions across groups given as (size now, most
/// minions it may get): each minion goes to the group that is smallest
/// counting what it has been given already and still has room; ties go to
/// the earlier group. Returns the minions per group, in order; fewer than
/// `new_nodes` in all when the groups' room runs out.
pub fn split(groups: &[(u32, u32)], new_nodes: u32) -> Vec<u32> {
    let mut given = vec![0u32; groups.len()];
    for _ in 0..new_nodes {
        let next = (0..groups.len())
            .filter(|&k| given[k] < groups[k].1)
            .min_by_key(|&k| (u64::from(groups[k].0) + u64::from(given[k]), k));
        match next {
            Some(k) => given[k] += 1,
            None => break,
        }
    }
    given
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_smallest_group_grows_first_and_room_is_respected() {
        // Zones at 3, 1, 2 minions; 5 new ones: 1 → 3 first, then all evenly.
        assert_eq!(split(&[(3, 10), (1, 10), (2, 10)], 5), [1, 3, 1]);
        assert_eq!(split(&[(2, 10), (2, 10), (2, 10)], 4), [2, 1, 1]);
        // The smallest is nearly full: the others take the rest.
        assert_eq!(split(&[(0, 1), (4, 10), (4, 10)], 4), [1, 2, 1]);
        // Not enough room anywhere: as many as fit.
        assert_eq!(split(&[(0, 1), (0, 2)], 5), [1, 2]);
    }

    #[test]
    fn within_five_percent_of_the_larger() {
        assert!(within(4000, 3800));
        assert!(!within(4000, 3799));
        assert!(within(0, 0));
    }
}
