//! The advisor inside `planner::plan`: advice becomes actions (apply), or
//! explanation only (recommend); its capacity needs go through the pass.

use crate::model::{LabelSelector, Pdb};
use crate::planner::action::Action;
use crate::planner::explain::PlacementOutcome;
use crate::planner::{Input, Memory, Plan, Policy, plan};

use super::*;

const SUBJECT: &str = "co-locate Deployment/shop/frontend with Deployment/shop/cart";

struct World {
    snap: Snapshot,
    obs: Option<Observations>,
    memory: Memory,
    policy: Policy,
}

impl World {
    fn new(snap: Snapshot, flows: Vec<Flow>, mode: AdvisorMode) -> Self {
        let mut policy = Policy::default();
        policy.placement.mode = mode;
        Self { snap, obs: Some(Observations { flows, pressure: Vec::new() }), memory: Memory::default(), policy }
    }

    fn pass(&mut self, minutes: i64) -> Plan {
        let input = Input {
            snapshot: &self.snap,
            usage: None,
            memory: &self.memory,
            now: at(minutes),
            observations: self.obs.as_ref(),
        };
        let plan = plan(&input, &self.policy);
        self.memory = plan.memory.clone();
        plan
    }

    /// The rollout done: every replica of the workload runs the new template.
    fn roll_out(&mut self, plan: &Plan) {
        for action in &plan.actions {
            let (workload, term, add) = match action {
                Action::SetPreferredAffinity(a) => (&a.workload, &a.term, Some(a.weight)),
                Action::RemovePreferredAffinity(a) => (&a.workload, &a.term, None),
                _ => continue,
            };
            for p in self.snap.pods.iter_mut().filter(|p| p.workload.as_ref() == Some(workload)) {
                let placement = Arc::make_mut(&mut p.placement);
                placement.preferred_pod_affinity.retain(|w| &w.term != term);
                if let Some(weight) = add {
                    placement
                        .preferred_pod_affinity
                        .push(crate::model::WeightedPodAffinityTerm { weight, term: term.clone() });
                }
            }
        }
    }
}

fn placement_actions(plan: &Plan) -> Vec<&Action> {
    plan.actions
        .iter()
        .filter(|a| matches!(a, Action::SetPreferredAffinity(_) | Action::RemovePreferredAffinity(_)))
        .collect()
}

fn outcomes(plan: &Plan) -> Vec<(&str, &PlacementOutcome)> {
    plan.explanation.placement.iter().map(|p| (p.subject.as_str(), &p.outcome)).collect()
}

#[test]
fn recommend_mode_explains_and_changes_nothing() {
    let snap = cluster(2, 2, &[("frontend", 0, 500), ("cart", 1, 500)]);
    let mut w = World::new(snap, vec![chatty(200.0)], AdvisorMode::Recommend);
    let first = w.pass(0);
    assert!(
        matches!(outcomes(&first)[..], [(SUBJECT, PlacementOutcome::Withheld { why })] if why.contains("raise-after"))
    );
    let plan = w.pass(10);
    assert!(placement_actions(&plan).is_empty(), "{:?}", plan.actions);
    let [(SUBJECT, PlacementOutcome::Advised { detail, new: true, applied: false, .. })] = outcomes(&plan)[..] else {
        panic!("{:?}", plan.explanation.placement)
    };
    assert!(detail.contains("200 req/s, 100% crossing nodes, p99 3.0 ms same node vs 12.0 ms cross-node"), "{detail}");
    assert!(plan.explanation.to_string().contains(&format!("placement {SUBJECT}: advised (recommendation only)")));
    // The advisor's memory rides in the planner's.
    assert!(w.memory.placement.standing.contains_key(SUBJECT));
    assert!(w.memory.placement.applied.is_empty());
}

#[test]
fn apply_mode_changes_the_template_until_the_replicas_carry_the_term() {
    let snap = cluster(2, 2, &[("frontend", 0, 500), ("cart", 1, 500)]);
    let mut w = World::new(snap, vec![chatty(200.0)], AdvisorMode::Apply);
    assert!(placement_actions(&w.pass(0)).is_empty());
    let plan = w.pass(10);
    let [Action::SetPreferredAffinity(a)] = placement_actions(&plan)[..] else { panic!("{:?}", plan.actions) };
    assert_eq!((a.workload.name.as_str(), a.server.name.as_str(), a.weight), ("frontend", "cart", 50));
    assert_eq!(a.term.selector.match_labels, BTreeMap::from([("app".to_string(), "cart".to_string())]));
    assert!(a.reason.contains("200 req/s"));
    assert!(matches!(outcomes(&plan)[..], [(SUBJECT, PlacementOutcome::Advised { applied: true, new: true, .. })]));
    // Not carried out yet (a failed patch, a rollout waiting): asked again.
    let again = w.pass(11);
    assert!(matches!(placement_actions(&again)[..], [Action::SetPreferredAffinity(_)]));
    // Rolled out: nothing more to do while the advice stands.
    w.roll_out(&again);
    let plan = w.pass(12);
    assert!(placement_actions(&plan).is_empty(), "{:?}", plan.actions);
    assert!(matches!(outcomes(&plan)[..], [(SUBJECT, PlacementOutcome::Advised { new: false, applied: true, .. })]));
}

#[test]
fn a_template_change_waits_for_the_pdb_and_takes_from_its_allowance() {
    let snap = cluster(2, 2, &[("frontend", 0, 500), ("frontend", 0, 500), ("cart", 1, 500)]);
    let mut w = World::new(snap, vec![chatty(200.0)], AdvisorMode::Apply);
    let selector =
        LabelSelector { match_labels: BTreeMap::from([("app".into(), "frontend".into())]), ..Default::default() };
    w.snap.pdbs.push(Pdb { namespace: "shop".into(), name: "frontend".into(), selector, disruptions_allowed: 0 });
    w.pass(0);
    let plan = w.pass(10);
    assert!(placement_actions(&plan).is_empty(), "{:?}", plan.actions);
    assert!(
        outcomes(&plan)
            .contains(&(SUBJECT, &PlacementOutcome::WaitingForDisruptionBudget { pdb: "shop/frontend".into() })),
        "{:?}",
        plan.explanation.placement
    );
    // The PDB allows one again: the change goes out.
    w.snap.pdbs[0].disruptions_allowed = 1;
    assert!(matches!(placement_actions(&w.pass(11))[..], [Action::SetPreferredAffinity(_)]));
}

#[test]
fn withdrawn_advice_removes_the_term_it_added() {
    let snap = cluster(2, 2, &[("frontend", 0, 500), ("cart", 1, 500)]);
    let mut w = World::new(snap, vec![chatty(200.0)], AdvisorMode::Apply);
    w.pass(0);
    let plan = w.pass(10);
    w.roll_out(&plan);
    // The traffic stops for good: after release-after (30 min) the term goes.
    w.obs = Some(Observations::default());
    assert!(placement_actions(&w.pass(20)).is_empty());
    let plan = w.pass(50);
    let [Action::RemovePreferredAffinity(r)] = placement_actions(&plan)[..] else { panic!("{:?}", plan.actions) };
    assert_eq!((r.workload.name.as_str(), r.subject.as_str()), ("frontend", SUBJECT));
    assert!(outcomes(&plan).contains(&(SUBJECT, &PlacementOutcome::Withdrawn { applied: true })));
    // Asked until the replicas no longer carry it, then forgotten.
    assert!(matches!(placement_actions(&w.pass(51))[..], [Action::RemovePreferredAffinity(_)]));
    let plan = w.pass(52);
    w.roll_out(&plan);
    assert!(placement_actions(&w.pass(53)).is_empty());
    assert!(w.memory.placement.withdrawing.is_empty() && w.memory.placement.applied.is_empty());
}

/// A group move in `apply` mode: the client's term and its partner's, each
/// its own template change, both towards the server; withdrawn together.
#[test]
fn a_group_move_changes_both_templates_and_is_withdrawn_with_its_partner() {
    let mut w = World::new(kept_next_to_redis(None), vec![chatty(200.0), to_redis(2500.0)], AdvisorMode::Apply);
    let redis = "co-locate Deployment/shop/frontend with Deployment/shop/redis";
    w.memory.placement.standing.insert(redis.to_string(), at(-300));
    w.pass(0);
    let plan = w.pass(10);
    let mut set: Vec<(&str, &str, &str)> = placement_actions(&plan)
        .iter()
        .map(|a| match a {
            Action::SetPreferredAffinity(a) => (a.workload.name.as_str(), a.server.name.as_str(), a.subject.as_str()),
            other => panic!("{other:?}"),
        })
        .collect();
    set.sort();
    let partner = "co-locate Deployment/shop/redis with Deployment/shop/cart (moving with Deployment/shop/frontend)";
    assert_eq!(set, [("frontend", "cart", SUBJECT), ("redis", "cart", partner)], "{:?}", plan.actions);
    let [Action::SetPreferredAffinity(a), Action::SetPreferredAffinity(b)] = placement_actions(&plan)[..] else {
        panic!()
    };
    assert_eq!(a.term, b.term);
    w.roll_out(&plan);
    assert!(placement_actions(&w.pass(11)).is_empty());

    // The traffic stops: the partner's term goes with the client's (and the
    // standing frontend → redis, applied as the pass found it, with its own).
    w.obs = Some(Observations::default());
    w.pass(20);
    let plan = w.pass(50);
    let mut removed: Vec<(&str, &str)> = placement_actions(&plan)
        .iter()
        .map(|a| match a {
            Action::RemovePreferredAffinity(r) => (r.workload.name.as_str(), r.server.name.as_str()),
            other => panic!("{other:?}"),
        })
        .collect();
    removed.sort();
    assert_eq!(removed, [("frontend", "cart"), ("frontend", "redis"), ("redis", "cart")], "{:?}", plan.actions);
}

#[test]
fn without_observations_standing_advice_is_kept_and_nothing_is_withdrawn() {
    let snap = cluster(2, 2, &[("frontend", 0, 500), ("cart", 1, 500)]);
    let mut w = World::new(snap, vec![chatty(200.0)], AdvisorMode::Apply);
    w.pass(0);
    w.pass(10);
    let before = w.memory.placement.clone();
    w.obs = None;
    for m in [20, 60, 120] {
        let plan = w.pass(m);
        assert!(
            outcomes(&plan).contains(&(crate::planner::placement::in_plan::ADVISOR, &PlacementOutcome::NoObservations))
        );
        // The applied term is still asked for: it is not on the template yet.
        assert!(matches!(placement_actions(&plan)[..], [Action::SetPreferredAffinity(_)]));
    }
    assert_eq!(w.memory.placement.standing, before.standing);
    assert_eq!(w.memory.placement.applied, before.applied);
}

#[test]
fn off_mode_plans_nothing_and_drops_the_memory() {
    let snap = cluster(2, 2, &[("frontend", 0, 500), ("cart", 1, 500)]);
    let mut w = World::new(snap, vec![chatty(200.0)], AdvisorMode::Recommend);
    w.pass(0);
    w.pass(10);
    assert!(!w.memory.placement.standing.is_empty());
    w.policy.placement.mode = AdvisorMode::Off;
    let plan = w.pass(20);
    assert!(plan.explanation.placement.is_empty() && placement_actions(&plan).is_empty());
    assert_eq!(w.memory.placement, AdvisorMemory::default());
}

fn pressed(cpu: f64) -> Vec<Pressure> {
    vec![Pressure { workload: workload("cart"), cpu: Some(cpu), memory: None }]
}

#[test]
fn an_applied_increase_is_the_pod_levels_target_planned_with_the_node_level() {
    // Room on the node: cart's replicas are resized in place, ×0.95/0.7.
    let snap = cluster(1, 1, &[("frontend", 0, 500), ("cart", 0, 1000), ("cart", 0, 1000)]);
    let mut w = World::new(snap, vec![chatty(200.0)], AdvisorMode::Apply);
    w.obs.as_mut().unwrap().pressure = pressed(0.95);
    w.pass(0);
    let plan = w.pass(10);
    let resized: Vec<(i64, &str)> = plan
        .actions
        .iter()
        .filter_map(|a| match a {
            Action::ResizePod(r) => Some((r.containers[0].requests.cpu_milli, r.vpa.as_str())),
            _ => None,
        })
        .collect();
    // The pod level's own rules hold: one of the two replicas at a time
    // (max-disruption-fraction).
    assert_eq!(resized, [(1358, "shop/placement-advisor")], "{:?}\n{}", plan.actions, plan.explanation);
    assert!(plan.explanation.to_string().contains("max-disruption-fraction"));
    assert!(matches!(
        outcomes(&plan)[..],
        [("increase cpu of Deployment/shop/cart", PlacementOutcome::Advised { applied: true, .. })]
    ));
    // The floor holds through the workload's cooldown, then goes.
    assert!(w.memory.placement.floors.contains_key("Deployment/shop/cart"));
    w.obs.as_mut().unwrap().pressure.clear();
    w.pass(69);
    assert!(w.memory.placement.floors.contains_key("Deployment/shop/cart"));
    w.pass(70);
    assert!(w.memory.placement.floors.is_empty());

    // Recommend mode: the same advice changes no request.
    let snap = cluster(1, 1, &[("frontend", 0, 500), ("cart", 0, 1000), ("cart", 0, 1000)]);
    let mut w = World::new(snap, vec![chatty(200.0)], AdvisorMode::Recommend);
    w.obs.as_mut().unwrap().pressure = pressed(0.95);
    w.pass(0);
    let plan = w.pass(10);
    assert!(!plan.actions.iter().any(|a| matches!(a, Action::ResizePod(_))), "{:?}", plan.actions);
}

#[test]
fn an_applied_increase_that_needs_a_new_minion_grows_the_group_in_the_same_plan() {
    // 2 × 1500m at ×2 = 3000m each: one stays (3000 + 100 ≤ 4000), the other
    // needs a node of its own, which the group (max 2) can add.
    let snap = cluster(1, 2, &[("frontend", 0, 100), ("cart", 0, 1500), ("cart", 0, 1500)]);
    let mut w = World::new(snap, vec![chatty(200.0)], AdvisorMode::Apply);
    w.snap.admission_applies_recommendations = true;
    w.obs.as_mut().unwrap().pressure = pressed(2.0);
    // Past min-pod-age (20 min), so a replica may move.
    w.pass(20);
    let plan = w.pass(30);
    let ups: Vec<(u32, u32)> = plan
        .actions
        .iter()
        .filter_map(|a| match a {
            Action::ScaleUp(u) => Some((u.expected_desired, u.new_desired)),
            _ => None,
        })
        .collect();
    assert_eq!(ups, [(1, 2)], "{:?}\n{}", plan.actions, plan.explanation);
}
