//! `scale-up.balance-similar-node-groups` (issue 20): the same workers in
//! three zones grow together, smallest first; groups that differ in
//! resources, in a label that matters, or that cannot host the pods stay out.

use super::super::explain::Note;
use super::*;

const ZONE: &str = "topology.kubernetes.io/zone";

/// Three zones of 4-CPU workers at 2, 1 and 0 minions, all full, and 6
/// pending pods of 3.5 CPU (one per new minion).
fn zones() -> World {
    let mut w = World::new();
    for (g, zone, minions) in [("zone-a", "a", 2), ("zone-b", "b", 1), ("zone-c", "c", 0)] {
        w.group(g, 0, 10, 4000, 16 * GI).template.as_mut().unwrap().labels.insert(ZONE.into(), zone.into());
        for i in 0..minions {
            let node = format!("{g}-{i}");
            w.minion(g, &node);
            w.pod(&format!("filler-{g}{i}"), Some(&node), 4000, GI);
        }
    }
    for i in 0..6 {
        w.pending(&format!("web-{i}"), 3500, GI);
    }
    w
}

fn growth(plan: &Plan) -> Vec<(String, u32, u32)> {
    let mut ups: Vec<_> =
        scale_ups(plan).iter().map(|s| (s.group.clone(), s.expected_desired, s.new_desired)).collect();
    ups.sort();
    ups
}

#[test]
fn a_scale_up_is_split_across_similar_groups_smallest_first() {
    let mut w = zones();
    // Without balancing: all six minions go to the group the expander chose.
    assert_eq!(growth(&w.plan()), [("zone-a".to_string(), 2, 8)]);

    w.policy.scale_up.balance_similar_node_groups = true;
    let plan = w.plan();
    assert_eq!(
        growth(&plan),
        [("zone-a".to_string(), 2, 3), ("zone-b".to_string(), 1, 3), ("zone-c".to_string(), 0, 3)],
        "every zone ends at 3"
    );
    assert!(
        plan.explanation.notes.iter().any(|n| matches!(n, Note::ScaleUpBalanced { chosen, split }
            if chosen == "zone-a" && split.iter().map(|(_, n)| n).sum::<u32>() == 6)),
        "{:?}",
        plan.explanation.notes
    );
    let note = plan.explanation.notes.iter().find(|n| matches!(n, Note::ScaleUpBalanced { .. })).unwrap();
    assert_eq!(
        note.to_string(),
        "scale-up of zone-a balanced across similar groups (balance-similar-node-groups): zone-a +1, zone-b +2, \
         zone-c +3"
    );
}

#[test]
fn max_size_bounds_a_share_and_the_others_take_the_rest() {
    let mut w = zones();
    w.policy.scale_up.balance_similar_node_groups = true;
    w.group_mut("zone-c").max_size = 1;
    assert_eq!(
        growth(&w.plan()),
        [("zone-a".to_string(), 2, 4), ("zone-b".to_string(), 1, 4), ("zone-c".to_string(), 0, 1)]
    );
}

#[test]
fn groups_that_differ_are_not_balanced_with() {
    let mut w = zones();
    w.policy.scale_up.balance_similar_node_groups = true;
    // zone-b: 8% more memory (beyond the 5% tolerance).
    w.group_mut("zone-b").template.as_mut().unwrap().allocatable.memory = 16 * GI * 108 / 100;
    // zone-c: a label that is not a zone.
    w.group_mut("zone-c").template.as_mut().unwrap().labels.insert("disk".into(), "hdd".into());
    assert_eq!(growth(&w.plan()), [("zone-a".to_string(), 2, 8)]);

    // The same label made ignorable, and zone-b within tolerance (4% more): all three again.
    w.policy.scale_up.balancing_ignore_labels = vec!["disk".into()];
    w.group_mut("zone-b").template.as_mut().unwrap().allocatable.memory = 16 * GI * 104 / 100;
    assert_eq!(growth(&w.plan()).len(), 3);
}

#[test]
fn a_similar_group_the_pods_cannot_use_is_left_out() {
    let mut w = zones();
    w.policy.scale_up.balance_similar_node_groups = true;
    // zone-c's minions are tainted; the pending pods do not tolerate it.
    w.group_mut("zone-c").template.as_mut().unwrap().taints.push(crate::model::Taint {
        key: "dedicated".into(),
        value: Some("batch".into()),
        effect: crate::model::TaintEffect::NoSchedule,
    });
    // 6 minions across a (2) and b (1): b to 2, then alternately, a first → a 5, b 4.
    assert_eq!(growth(&w.plan()), [("zone-a".to_string(), 2, 5), ("zone-b".to_string(), 1, 4)]);
}
