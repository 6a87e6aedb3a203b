use std::collections::BTreeMap;
use std::sync::Arc;

use crate::model::test_support::{self, epoch};
use crate::model::{
    GroupState, NodeShape, OwnerRef, Pod, PodAffinityTerm, PodPhase, Resources, SignedDuration, Snapshot, Timestamp,
    WeightedPodAffinityTerm, WorkloadRef,
};
use crate::policy::{AdvisorMode, PlacementAdvisorPolicy};

use super::*;

const GI: i64 = 1 << 30;

fn workload(name: &str) -> WorkloadRef {
    WorkloadRef { kind: "Deployment".into(), namespace: "shop".into(), name: name.into() }
}

fn res(cpu_milli: i64) -> Resources {
    Resources { cpu_milli, memory: GI, pods: 1, ..Resources::default() }
}

/// Nodes n0..n{nodes} of 4 CPUs in group `workers` (max `max`); replicas
/// placed as `(workload, node, cpu)`.
fn cluster(nodes: usize, max: u32, replicas: &[(&str, usize, i64)]) -> Snapshot {
    let mut snap = Snapshot::default();
    let alloc = Resources { cpu_milli: 4000, memory: 16 * GI, pods: 110, ..Resources::default() };
    for n in 0..nodes {
        snap.nodes.push(test_support::node(&format!("n{n}"), alloc.clone()));
    }
    snap.groups.push(GroupState {
        name: "workers".into(),
        desired: nodes as u32,
        min_size: 0,
        max_size: max,
        members: Vec::new(),
        stack_busy: false,
        template: Some(NodeShape { allocatable: alloc, labels: BTreeMap::new(), taints: Vec::new() }),
        price_per_hour: 1.0,
        priority: 0,
    });
    for (k, &(app, node, cpu)) in replicas.iter().enumerate() {
        let labels =
            BTreeMap::from([("app".to_string(), app.to_string()), ("pod-template-hash".to_string(), format!("h{k}"))]);
        snap.pods.push(Pod {
            namespace: "shop".into(),
            labels: Arc::new(labels),
            owner: Some(
                OwnerRef { kind: "ReplicaSet".into(), name: format!("{app}-rs"), uid: format!("rs-{app}") }.into(),
            ),
            workload: Some(workload(app)),
            node_name: Some(format!("n{node}")),
            phase: PodPhase::Running,
            requests: res(cpu),
            containers: vec![test_support::container("main", res(cpu))],
            ..test_support::pod(&format!("{app}-{k}"))
        });
    }
    snap
}

fn chatty(rps: f64) -> Flow {
    Flow {
        client: workload("frontend"),
        server: workload("cart"),
        requests_per_second: rps,
        p99_same_node_ms: Some(3.0),
        p99_cross_node_ms: Some(12.0),
        server_p99_same_node_ms: None,
        server_p99_cross_node_ms: None,
    }
}

fn policy() -> PlacementAdvisorPolicy {
    PlacementAdvisorPolicy { mode: AdvisorMode::Recommend, ..PlacementAdvisorPolicy::default() }
}

fn at(minutes: i64) -> Timestamp {
    epoch() + SignedDuration::from_mins(minutes)
}

struct Run {
    snap: Snapshot,
    obs: Observations,
    memory: AdvisorMemory,
    policy: PlacementAdvisorPolicy,
}

impl Run {
    fn new(snap: Snapshot, flows: Vec<Flow>) -> Self {
        Self {
            snap,
            obs: Observations { flows, pressure: Vec::new() },
            memory: AdvisorMemory::default(),
            policy: policy(),
        }
    }
    fn pass(&mut self, minutes: i64) -> Advice {
        let input =
            AdvisorInput { snapshot: &self.snap, observations: &self.obs, memory: &self.memory, now: at(minutes) };
        let advice = advise(&input, &self.policy);
        self.memory = advice.memory.clone();
        advice
    }
}

fn new_subjects(advice: &Advice) -> Vec<String> {
    advice.advised.iter().filter(|a| a.new).map(|a| a.proposal.subject()).collect()
}

#[test]
fn cross_node_share_follows_where_replicas_run() {
    let snap = cluster(2, 2, &[("frontend", 0, 100), ("frontend", 1, 100), ("cart", 0, 100)]);
    let pods = |w: &str| snap.pods.iter().filter(|p| p.workload == Some(workload(w))).collect::<Vec<_>>();
    assert_eq!(evidence::cross_node_share(&pods("frontend"), &pods("cart")), 0.5);
    assert_eq!(evidence::cross_node_share(&pods("cart"), &pods("cart")), 0.0);
}

#[test]
fn co_location_is_advised_once_the_evidence_has_held() {
    let snap = cluster(2, 2, &[("frontend", 0, 500), ("frontend", 0, 500), ("cart", 1, 500)]);
    let mut run = Run::new(snap, vec![chatty(200.0)]);
    let first = run.pass(0);
    assert!(first.advised.is_empty());
    assert!(matches!(first.withheld[..], [(_, Withheld::Settling { until, .. })] if until == at(10)));
    assert!(run.pass(9).advised.is_empty());
    let advice = run.pass(10);
    assert_eq!(new_subjects(&advice), ["co-locate Deployment/shop/frontend with Deployment/shop/cart"]);
    let Proposal::CoLocate { weight, term, evidence, room, expected_gain, .. } = &advice.advised[0].proposal else {
        panic!("{advice:?}")
    };
    assert_eq!(*weight, 50);
    // Selects cart's replicas by what they share, not by the per-revision hash.
    assert_eq!(term.selector.match_labels, BTreeMap::from([("app".to_string(), "cart".to_string())]));
    assert_eq!(
        (term.topology_key.as_str(), term.namespaces.as_slice()),
        (HOSTNAME_KEY, ["shop".to_string()].as_slice())
    );
    // 200 req/s × every call crossing × (12 − 3) ms.
    assert_eq!(evidence.latency_cost, 1800.0);
    assert_eq!((*room, *expected_gain), (2, 1800.0));
    assert!(!advice.advised[0].apply, "recommend mode");
    assert!(advice.advised[0].proposal.to_string().contains("200 req/s, 100% crossing nodes"));

    // A quiet pair beside the application's chatty one is never advised: it
    // is under min-latency-cost and outside the share its top talkers make up.
    let mut snap = run.snap.clone();
    snap.pods.push(Pod { workload: Some(workload("search")), ..snap.pods[0].clone() });
    let quiet = Flow { client: workload("search"), ..chatty(20.0) };
    let mut quiet = Run::new(snap, vec![chatty(2000.0), quiet]);
    quiet.policy.cost_share = crate::policy::Fraction(0.8);
    for m in [0, 10, 20] {
        let advice = quiet.pass(m);
        let about_quiet = |s: &str| s.contains("shop/search");
        assert!(!advice.advised.iter().any(|a| about_quiet(&a.proposal.subject())), "{advice:?}");
        assert!(!advice.withheld.iter().any(|(s, _)| about_quiet(s)), "{advice:?}");
    }
}

/// A busy pair's cost per window swings around `min-latency-cost` — each
/// window's saving is the difference of two p99s of a long sub-call — with a
/// mean well above it (hs-cosched9's trace: nginx → home-timeline, 230–2425
/// ms/s). Judged window by window, every quiet window reset its settling and
/// it was never advised; judged on its cost pooled over `raise-after`, it is
/// advised once that mean has held for `raise-after`, by that mean. A pair
/// whose windows clear the threshold half the time with a mean below it is
/// still never advised.
#[test]
fn a_pair_is_judged_on_its_cost_pooled_over_raise_after() {
    let snap = cluster(2, 2, &[("frontend", 0, 500), ("frontend", 0, 500), ("cart", 1, 500)]);
    // 9 ms saved per call: 40/s costs 360 ms/s, 200/s 1800 ms/s; mean 1080.
    let mut run = Run::new(snap.clone(), vec![chatty(40.0)]);
    let mut given = None;
    for m in 0..=30 {
        run.obs.flows[0].requests_per_second = if m % 2 == 0 { 40.0 } else { 200.0 };
        let advice = run.pass(m);
        if !new_subjects(&advice).is_empty() {
            given = Some((m, advice));
            break;
        }
    }
    let Some((m, advice)) = given else { panic!("never advised") };
    // Settling from minute 1 (minute 0 alone is below), advised at 11.
    assert_eq!(m, 11);
    let Proposal::CoLocate { evidence, expected_gain, .. } = &advice.advised[0].proposal else { panic!("{advice:?}") };
    assert_eq!((evidence.latency_cost, *expected_gain), (1080.0, 1080.0));

    // 600 and 100 ms/s in turn: half the windows clear 500, the mean (350) does not.
    let mut quiet = Run::new(snap, vec![chatty(600.0 / 9.0)]);
    for m in 0..=60 {
        quiet.obs.flows[0].requests_per_second = if m % 2 == 0 { 600.0 / 9.0 } else { 100.0 / 9.0 };
        let advice = quiet.pass(m);
        assert!(advice.advised.is_empty(), "minute {m}: {advice:?}");
    }
}

const HOSTNAME_KEY: &str = crate::model::HOSTNAME;

/// A chain frontend → cart → db, both pairs worth advice in the same pass.
/// Given at once, cart's rollout moves it next to db while frontend's moves
/// it next to cart's old replicas, and kube-scheduler's symmetric scoring
/// then draws re-created cart replicas to frontend's nodes: the chain pulls
/// itself apart (hs-cosched7's trace in docs/co-scheduling.md). The second
/// link waits until the first one's ends have settled (workload-cooldown).
#[test]
fn a_chain_is_advised_one_link_at_a_time() {
    let snap = cluster(3, 3, &[("frontend", 0, 500), ("cart", 1, 500), ("db", 2, 500)]);
    let to_db = Flow { client: workload("cart"), server: workload("db"), ..chatty(300.0) };
    let mut run = Run::new(snap, vec![chatty(200.0), to_db]);
    run.policy.cost_share = crate::policy::Fraction(0.0);
    run.pass(0);
    let advice = run.pass(10);
    // cart → db costs more (300 × 9 ms/s), so it goes first; frontend → cart
    // waits: its server was just set in motion.
    assert_eq!(new_subjects(&advice), ["co-locate Deployment/shop/cart with Deployment/shop/db"]);
    let waiting = "co-locate Deployment/shop/frontend with Deployment/shop/cart";
    assert!(
        advice.withheld.iter().any(|(s, w)| s == waiting && *w == Withheld::Cooldown { until: at(70) }),
        "{advice:?}"
    );
    assert!(new_subjects(&run.pass(69)).is_empty());
    assert_eq!(new_subjects(&run.pass(70)), [waiting]);

    // The other order: frontend → cart costlier, so cart's replicas are
    // where frontend is sent; cart → db waits rather than move them.
    run = Run::new(
        run.snap.clone(),
        vec![chatty(400.0), Flow { requests_per_second: 300.0, ..run.obs.flows[1].clone() }],
    );
    run.policy.cost_share = crate::policy::Fraction(0.0);
    run.pass(0);
    assert_eq!(new_subjects(&run.pass(10)), [waiting]);
    assert_eq!(new_subjects(&run.pass(70)), ["co-locate Deployment/shop/cart with Deployment/shop/db"]);
}

/// The last-advice times decide only within `workload-cooldown`; past it
/// they are forgotten, so the memory does not grow with every workload ever
/// advised (it did: nothing removed them).
#[test]
fn last_advice_times_are_forgotten_past_the_workload_cooldown() {
    let snap = cluster(2, 2, &[("frontend", 0, 500), ("frontend", 0, 500), ("cart", 1, 500)]);
    let mut run = Run::new(snap, vec![chatty(200.0)]);
    run.pass(0);
    assert_eq!(new_subjects(&run.pass(10)).len(), 1);
    assert!(!run.memory.last_for_workload.is_empty() && !run.memory.last_as_server.is_empty());
    run.pass(69);
    assert!(!run.memory.last_for_workload.is_empty(), "still within the cooldown");
    run.pass(70);
    assert!(run.memory.last_for_workload.is_empty(), "{:?}", run.memory.last_for_workload);
    assert!(run.memory.last_as_server.is_empty(), "{:?}", run.memory.last_as_server);
}

#[test]
fn standing_advice_survives_its_own_success_and_goes_only_after_a_long_lull() {
    let snap = cluster(2, 2, &[("frontend", 0, 500), ("cart", 1, 500)]);
    let mut run = Run::new(snap, vec![chatty(200.0)]);
    run.policy.mode = AdvisorMode::Apply;
    // The absolute threshold alone, as by default (with cost-share, a
    // one-pair graph is its own top talker).
    run.policy.cost_share = crate::policy::Fraction(0.0);
    run.pass(0);
    let given = run.pass(10);
    assert!(given.advised[0].apply);
    // Applied: the replicas now share a node, nothing crosses — the advice stands.
    run.snap.pods[0].node_name = Some("n1".into());
    for m in [20, 60, 120] {
        let advice = run.pass(m);
        assert!(advice.withdrawn.is_empty());
        assert_eq!(advice.advised.len(), 1);
        assert!(!advice.advised[0].new);
    }
    // Traffic falls just under the advice level: still above the release level.
    run.obs.flows = vec![chatty(40.0)]; // 40 × 9 = 360 < 500, ≥ 250
    assert!(run.pass(130).withdrawn.is_empty());
    assert!(run.pass(200).withdrawn.is_empty());
    // Below the release level it goes after release-after (30 min), not before.
    run.obs.flows = vec![chatty(10.0)]; // 90 < 250
    assert!(run.pass(210).withdrawn.is_empty());
    assert!(run.pass(239).withdrawn.is_empty());
    let advice = run.pass(240);
    assert_eq!(advice.withdrawn, ["co-locate Deployment/shop/frontend with Deployment/shop/cart"]);
    assert!(advice.advised.is_empty());
}

#[test]
fn standing_advice_holds_when_no_cross_node_call_is_left_to_measure() {
    let snap = cluster(2, 2, &[("frontend", 0, 500), ("cart", 1, 500)]);
    let mut run = Run::new(snap, vec![chatty(200.0)]);
    run.policy.mode = AdvisorMode::Apply;
    run.pass(0);
    assert_eq!(new_subjects(&run.pass(10)).len(), 1);
    // Co-located: every call stays on its node, so the mesh reports no
    // cross-node p99 at all. That is no evidence the pair became cheap.
    run.snap.pods[0].node_name = Some("n1".into());
    run.obs.flows = vec![Flow { p99_cross_node_ms: None, ..chatty(200.0) }];
    for m in [20, 45, 80, 200] {
        let advice = run.pass(m);
        assert!(advice.withdrawn.is_empty(), "withdrawn at {m}: {advice:?}");
        assert_eq!(advice.advised.len(), 1);
    }
    // The traffic itself stops: it goes after release-after.
    run.obs.flows.clear();
    run.pass(210);
    assert_eq!(run.pass(240).withdrawn.len(), 1);
}

#[test]
fn new_advice_is_rate_limited_costliest_first() {
    let mut replicas = vec![("cart", 1, 100)];
    for app in ["a", "b", "c"] {
        replicas.push((app, 0, 100));
    }
    let snap = cluster(2, 2, &replicas);
    let flow = |client: &str, rps| Flow { client: workload(client), ..chatty(rps) };
    let mut run = Run::new(snap, vec![flow("a", 100.0), flow("b", 300.0), flow("c", 200.0)]);
    run.pass(0);
    let advice = run.pass(10);
    assert_eq!(
        new_subjects(&advice),
        [
            "co-locate Deployment/shop/b with Deployment/shop/cart",
            "co-locate Deployment/shop/c with Deployment/shop/cart",
        ]
    );
    assert!(matches!(advice.withheld[..], [(_, Withheld::RateLimited { until })] if until == at(70)));
    assert!(new_subjects(&run.pass(69)).is_empty());
    assert_eq!(new_subjects(&run.pass(70)), ["co-locate Deployment/shop/a with Deployment/shop/cart"]);
}

#[test]
fn pressure_on_the_server_asks_for_resources_within_what_groups_provide() {
    // cart uses 95% of its CPU request: the latency is cart's, not the network's.
    let snap = cluster(1, 1, &[("frontend", 0, 500), ("cart", 0, 1000), ("cart", 0, 1000)]);
    let mut run = Run::new(snap, vec![chatty(200.0)]);
    run.obs.pressure = vec![Pressure { workload: workload("cart"), cpu: Some(0.95), memory: Some(0.3) }];
    run.pass(0);
    let advice = run.pass(10);
    let Some(Proposal::IncreaseResources { resource, factor, containers, new_minions, .. }) =
        advice.advised.first().map(|a| &a.proposal)
    else {
        panic!("{advice:?}")
    };
    // 0.95 / 0.7 target = ×1.36: 1000m → 1358m each; 500 + 2 × 1358 fits the 4-CPU node.
    assert_eq!(*resource, Resource::Cpu);
    assert!((factor - 0.95 / 0.7).abs() < 1e-9);
    assert_eq!(containers[0].requests.cpu_milli, 1358);
    assert_eq!(*new_minions, 0);
    assert!(!advice.advised.iter().any(|a| matches!(a.proposal, Proposal::CoLocate { .. })));

    // 2.5 times the CPU (3750m each) does not fit both on the node, and the
    // group is at its max: withheld.
    let snap = cluster(1, 1, &[("frontend", 0, 100), ("cart", 0, 1500), ("cart", 0, 1500)]);
    let mut run = Run::new(snap, vec![chatty(200.0)]);
    run.policy.max_increase = 2.5;
    run.obs.pressure = vec![Pressure { workload: workload("cart"), cpu: Some(2.0), memory: None }];
    run.pass(0);
    let advice = run.pass(10);
    assert!(advice.advised.is_empty());
    assert!(matches!(advice.withheld[..], [(_, Withheld::BeyondCapacity { pods: 1 })]), "{advice:?}");

    // With room to grow the group, the same advice names the minions it needs.
    run.snap.groups[0].max_size = 3;
    let advice = run.pass(20);
    let Some(Proposal::IncreaseResources { new_minions, .. }) = advice.advised.first().map(|a| &a.proposal) else {
        panic!("{advice:?}")
    };
    assert_eq!(*new_minions, 1, "one larger replica stays, the other needs a new minion");
}

/// Two callers of one pressed server each bring evidence for the same
/// resource increase: one candidate, one piece of advice. Before, both were
/// candidates under one subject, and advising the first forgot the subject's
/// settling time while the second still looked it up: the planner panicked
/// (found with `raise-after: 1m` in the social network, hs-cosched9).
#[test]
fn two_callers_of_a_pressed_server_ask_for_one_increase() {
    let snap = cluster(1, 1, &[("frontend", 0, 500), ("admin", 0, 100), ("cart", 0, 1000), ("cart", 0, 1000)]);
    // Each caller's evidence alone is above `min-latency-cost`: 200/s × 3 ms, 100/s × 5.5 ms.
    let admin =
        Flow { client: workload("admin"), requests_per_second: 100.0, p99_same_node_ms: Some(5.5), ..chatty(200.0) };
    let mut run = Run::new(snap, vec![chatty(200.0), admin]);
    run.obs.pressure = vec![Pressure { workload: workload("cart"), cpu: Some(0.95), memory: None }];
    run.pass(0);
    let advice = run.pass(10);
    assert_eq!(new_subjects(&advice), ["increase cpu of Deployment/shop/cart"], "{advice:?}");
    assert!(advice.withheld.is_empty(), "{advice:?}");
    // Ranked by the costlier caller's evidence.
    let Proposal::IncreaseResources { evidence, .. } = &advice.advised[0].proposal else { panic!("{advice:?}") };
    assert_eq!(evidence.requests_per_second, 200.0);
}

/// Why the social network at 2000/s gets no resource increase (issue 21,
/// item 2): its services run at 50–60 % of their CPU requests, below
/// `target-utilization` (70 %). Raising the requests there would bring the
/// usage further below the advisor's own target — and `pressure-threshold`
/// may not be set below that target (`policy::placement`), so no threshold
/// makes it one. The latency is judged as placement's instead.
#[test]
fn a_server_below_the_target_utilization_gets_no_increase() {
    let snap = cluster(2, 2, &[("frontend", 0, 500), ("cart", 1, 1000)]);
    let mut run = Run::new(snap, vec![chatty(200.0)]);
    run.policy.pressure_threshold = crate::policy::Fraction(0.7);
    run.obs.pressure = vec![Pressure { workload: workload("cart"), cpu: Some(0.6), memory: None }];
    run.pass(0);
    let advice = run.pass(10);
    assert!(!advice.advised.iter().any(|a| matches!(a.proposal, Proposal::IncreaseResources { .. })), "{advice:?}");
    assert!(advice.advised.iter().any(|a| matches!(a.proposal, Proposal::CoLocate { .. })), "{advice:?}");
    // At the threshold and above the target, the same server is given more.
    run.obs.pressure[0].cpu = Some(0.75);
    run.pass(70);
    let advice = run.pass(80);
    assert!(advice.advised.iter().any(|a| matches!(a.proposal, Proposal::IncreaseResources { .. })), "{advice:?}");
}

#[test]
fn off_mode_and_scope_keep_the_advisor_quiet() {
    let snap = cluster(2, 2, &[("frontend", 0, 500), ("cart", 1, 500)]);
    let mut run = Run::new(snap, vec![chatty(200.0)]);
    run.policy.mode = AdvisorMode::Off;
    for m in [0, 10, 20] {
        assert_eq!(run.pass(m), Advice::default());
    }
    run.policy.mode = AdvisorMode::Recommend;
    run.policy.namespaces = vec!["other".into()];
    run.pass(30);
    assert!(run.pass(40).advised.is_empty());
    run.policy.namespaces = vec!["shop".into()];
    run.policy.pod_labels = BTreeMap::from([("tier".into(), "web".into())]);
    run.pass(50);
    assert!(run.pass(60).advised.is_empty());
}

#[test]
fn no_room_next_to_the_server_means_no_advice() {
    // cart's node is full: frontend could not move next to it.
    let snap = cluster(2, 2, &[("frontend", 0, 500), ("cart", 1, 3800)]);
    let mut run = Run::new(snap, vec![chatty(200.0)]);
    run.pass(0);
    let advice = run.pass(10);
    assert!(advice.advised.is_empty());
    assert!(matches!(advice.withheld[..], [(_, Withheld::NoRoomNearServer)]));
}

mod in_plan;

/// Room next to the server is room the scheduler would give: a client whose
/// replicas must spread over zones (`DoNotSchedule`, max skew 1) is not
/// counted as fitting next to its server when one more replica in the
/// server's zone would break the spread — the zones without the server
/// count too, not only the nodes that run it.
#[test]
fn room_next_to_the_server_honours_the_clients_zone_spread() {
    use crate::model::{LabelSelector, Placement, TopologySpread};
    const ZONE: &str = "topology.kubernetes.io/zone";
    // frontend: one replica in zone a (next to cart), one in zone b, none in c.
    let mut snap = cluster(3, 3, &[("cart", 0, 500), ("frontend", 0, 500), ("frontend", 1, 500)]);
    for (n, zone) in snap.nodes.iter_mut().zip(["a", "b", "c"]) {
        n.labels.insert(ZONE.into(), zone.into());
    }
    let spread = TopologySpread::required(
        LabelSelector { match_labels: BTreeMap::from([("app".into(), "frontend".into())]), ..LabelSelector::default() },
        ZONE,
        1,
        1,
    );
    for p in snap.pods.iter_mut().filter(|p| p.labels.get("app").is_some_and(|a| a == "frontend")) {
        p.placement = Arc::new(Placement { spread: vec![spread.clone()], ..Placement::default() });
    }
    let mut run = Run::new(snap, vec![chatty(200.0)]);
    run.pass(0);
    let advice = run.pass(10);
    // Zone a would hold 2 frontends, zone c none: skew 2.
    assert!(advice.advised.is_empty(), "{:?}", advice.advised);
    assert!(matches!(advice.withheld[..], [(_, Withheld::NoRoomNearServer)]), "{:?}", advice.withheld);

    // With a frontend in zone c as well, one more in zone a keeps the skew at 1.
    let mut snap = run.snap.clone();
    let mut third = snap.pods.iter().find(|p| p.name == "frontend-2").unwrap().clone();
    third.name = "frontend-3".into();
    third.node_name = Some("n2".into());
    snap.pods.push(third);
    let mut run = Run::new(snap, vec![chatty(200.0)]);
    run.pass(0);
    let advice = run.pass(10);
    match &advice.advised[..] {
        [Advised { proposal: Proposal::CoLocate { room, .. }, .. }] => assert_eq!(*room, 1),
        other => panic!("{other:?} / {:?}", advice.withheld),
    }
}

/// Three pairs of one application (a, b, c → cart), each under
/// min-latency-cost: the absolute threshold alone never advises any of them.
fn quiet_application() -> Run {
    let snap = cluster(3, 3, &[("cart", 0, 100), ("a", 1, 100), ("b", 2, 100), ("c", 2, 100)]);
    let flow = |client: &str, rps| Flow { client: workload(client), ..chatty(rps) };
    // 9 ms saved per call: 360, 90 and 27 ms/s, all calls crossing.
    Run::new(snap, vec![flow("a", 40.0), flow("b", 10.0), flow("c", 3.0)])
}

#[test]
fn a_quiet_applications_top_talkers_are_advised_by_their_share_of_its_cost() {
    let mut run = quiet_application();
    run.policy.min_requests_per_second = 1.0;
    assert_eq!(run.policy.cost_share, crate::policy::Fraction(0.0), "off by default");
    run.pass(0);
    assert!(run.pass(10).advised.is_empty(), "under min-latency-cost, no share rule: nothing");

    // With the share rule at 80 %: a (360 of 477 ms/s, 75 %) and b, which
    // crosses the line; c, the last 6 %, is left alone.
    let mut run = quiet_application();
    run.policy.min_requests_per_second = 1.0;
    run.policy.cost_share = crate::policy::Fraction(0.8);
    run.pass(0);
    let advice = run.pass(10);
    assert_eq!(
        new_subjects(&advice),
        [
            "co-locate Deployment/shop/a with Deployment/shop/cart",
            "co-locate Deployment/shop/b with Deployment/shop/cart",
        ]
    );
    // The same application ten times busier: the same pairs, no more.
    let mut busy = quiet_application();
    busy.policy.min_requests_per_second = 1.0;
    busy.policy.cost_share = crate::policy::Fraction(0.8);
    for f in &mut busy.obs.flows {
        f.requests_per_second *= 10.0;
    }
    busy.pass(0);
    assert_eq!(new_subjects(&busy.pass(10)), new_subjects(&advice));
}

#[test]
fn advice_given_by_share_stands_while_the_pair_stays_among_the_top_talkers() {
    let mut run = quiet_application();
    run.policy.min_requests_per_second = 1.0;
    run.policy.cost_share = crate::policy::Fraction(0.8);
    run.policy.mode = AdvisorMode::Apply;
    run.pass(0);
    assert_eq!(new_subjects(&run.pass(10)).len(), 2);
    // b's traffic halves (45 of 432 ms/s): out of the 80 % set, still in the
    // 90 % one standing advice is judged by — it holds, no flapping.
    run.obs.flows[1].requests_per_second = 5.0;
    for m in [20, 60, 120] {
        let advice = run.pass(m);
        assert!(advice.withdrawn.is_empty(), "{m}: {advice:?}");
        assert_eq!(advice.advised.len(), 2);
    }
    // b falls to a trickle (under 1 % of the application's cost): it goes
    // after release-after, a stays.
    run.obs.flows[1].requests_per_second = 0.3;
    run.policy.min_requests_per_second = 0.1;
    run.pass(130);
    let advice = run.pass(160);
    assert_eq!(advice.withdrawn, ["co-locate Deployment/shop/b with Deployment/shop/cart"]);
    assert_eq!(advice.advised.len(), 1);
}

/// The reverse pull (hs-cosched7's trace): cart is replicated over three
/// nodes and shared — orders calls it five times as often as frontend does.
/// frontend's term towards cart would, by kube-scheduler's symmetric
/// scoring, draw every re-created cart replica to frontend's node: all three
/// there, and every call of orders (on n2 and n3) crossing. The pair's gain
/// (200 req/s × all crossing × 9 ms = 1800 ms/s) is less than what orders
/// would pay (1000 req/s × 1/3 more crossing × 9 ms = 3000 ms/s), so the
/// advice is withheld; with orders calling 100 req/s it is given, its
/// expected gain 300 ms/s lower.
#[test]
fn a_co_location_whose_pull_stacks_a_shared_server_is_withheld() {
    let snap = cluster(
        4,
        4,
        &[
            ("cart", 1, 500),
            ("cart", 2, 500),
            ("cart", 3, 500),
            ("frontend", 0, 500),
            ("orders", 2, 500),
            ("orders", 3, 500),
        ],
    );
    let orders = |rps| Flow { client: workload("orders"), ..chatty(rps) };
    let frontend = "co-locate Deployment/shop/frontend with Deployment/shop/cart";
    let mut run = Run::new(snap.clone(), vec![chatty(200.0), orders(1000.0)]);
    run.pass(0);
    let advice = run.pass(10);
    let pulled = advice.withheld.iter().find(|(s, _)| s == frontend).map(|(_, w)| w.clone());
    let Some(Withheld::ReversePull { gain, cost }) = pulled else { panic!("{advice:?}") };
    assert!((gain - 1800.0).abs() < 1e-6 && (cost - 3000.0).abs() < 1e-6, "{gain} {cost}");
    assert!(new_subjects(&advice).is_empty(), "{advice:?}");

    let mut run = Run::new(snap, vec![chatty(200.0), orders(100.0)]);
    run.pass(0);
    let advice = run.pass(10);
    assert_eq!(new_subjects(&advice), [frontend]);
    let Proposal::CoLocate { expected_gain, reverse_pull, .. } = &advice.advised[0].proposal else { panic!() };
    assert!((reverse_pull - 300.0).abs() < 1e-6 && (expected_gain - 1500.0).abs() < 1e-6, "{advice:?}");

    // A server with one replica is where the pull is the point: it moves
    // next to frontend, away from nobody's replicas but its own old node's.
    let single = cluster(3, 3, &[("cart", 1, 500), ("frontend", 0, 500), ("orders", 2, 500)]);
    let mut run = Run::new(single, vec![chatty(200.0), orders(1000.0)]);
    run.pass(0);
    let advice = run.pass(10);
    assert!(new_subjects(&advice).iter().any(|s| s == frontend), "{advice:?}");
}

/// hs-cosched9's trace, item 2: home-timeline, kept next to its single redis
/// by an earlier term, was advised towards post-storage, whose three
/// replicas were stacked on another node. kube-scheduler sums a preferred
/// term's weight per pod it selects, so the new term (50 × 3) outscored the
/// old (50 × 1): the rollout took home-timeline away from its redis, a
/// chattier pair than the one it brought home. The rollout's cost to the
/// client's own other calls now counts against the gain: with the redis pair
/// at 2500 req/s (1 ms assumed saving, no cross-node call left to measure)
/// against 1800 ms/s gained, the advice is withheld; at 1000 req/s it is
/// given, its expected gain 1000 ms/s lower.
#[test]
fn a_co_location_that_takes_the_client_from_its_standing_one_counts_what_that_breaks() {
    let snap = kept_next_to_redis(None);
    let frontend = "co-locate Deployment/shop/frontend with Deployment/shop/cart";

    let mut run = Run::new(snap.clone(), vec![chatty(200.0), to_redis(2500.0)]);
    run.pass(0);
    let advice = run.pass(10);
    assert!(new_subjects(&advice).is_empty(), "{advice:?}");
    let moved = advice.withheld.iter().find(|(s, _)| s == frontend).map(|(_, w)| w.clone());
    assert_eq!(moved, Some(Withheld::ClientMove { gain: 1800.0, cost: 2500.0 }), "{advice:?}");

    let mut run = Run::new(snap, vec![chatty(200.0), to_redis(1000.0)]);
    run.pass(0);
    let advice = run.pass(10);
    assert_eq!(new_subjects(&advice), [frontend]);
    let Proposal::CoLocate { expected_gain, client_move, .. } = &advice.advised[0].proposal else { panic!() };
    assert_eq!((*client_move, *expected_gain), (1000.0, 800.0), "{advice:?}");
}

/// hs-cosched10's trace of the 19-service loss: nginx → home-timeline ranked
/// first because its client-side p99s differ by home-timeline's own calls
/// (the replica answering the cross-node calls was further from its redis
/// and post-storage), though the hop itself saves less than home-timeline →
/// its redis. Here frontend → cart: 300 req/s, client side 3 vs 12 ms (9 ms,
/// 2700 ms/s) but cart's own side 2.5 vs 9.5 ms, so the hop is 0.5 vs 2.5 ms
/// (2 ms, 600 ms/s); cart → db: 200 req/s, 1 vs 5 ms with db at 0.5 on both
/// sides (4 ms, 800 ms/s). Judged per hop, cart → db goes first and frontend
/// → cart waits for cart to settle. Without the server side (a mesh that
/// reports only the client's) the whole sub-call's difference stands in, and
/// frontend → cart goes first, as before.
#[test]
fn a_pair_is_ranked_by_what_its_hop_saves_not_by_its_servers_downstream_calls() {
    let snap = cluster(3, 3, &[("frontend", 0, 500), ("cart", 1, 500), ("db", 2, 500)]);
    let to_cart = Flow { server_p99_same_node_ms: Some(2.5), server_p99_cross_node_ms: Some(9.5), ..chatty(300.0) };
    let to_db = Flow {
        client: workload("cart"),
        server: workload("db"),
        requests_per_second: 200.0,
        p99_same_node_ms: Some(1.0),
        p99_cross_node_ms: Some(5.0),
        server_p99_same_node_ms: Some(0.5),
        server_p99_cross_node_ms: Some(0.5),
    };
    let (frontend, cart) = (
        "co-locate Deployment/shop/frontend with Deployment/shop/cart",
        "co-locate Deployment/shop/cart with Deployment/shop/db",
    );
    let mut run = Run::new(snap.clone(), vec![to_cart.clone(), to_db.clone()]);
    run.policy.cost_share = crate::policy::Fraction(0.0);
    run.pass(0);
    let advice = run.pass(10);
    assert_eq!(new_subjects(&advice), [cart], "{advice:?}");
    let Proposal::CoLocate { evidence, .. } = &advice.advised[0].proposal else { panic!("{advice:?}") };
    assert_eq!((evidence.saving_ms, evidence.latency_cost), (4.0, 800.0));
    assert!(advice.withheld.iter().any(|(s, w)| s == frontend && matches!(w, Withheld::Cooldown { .. })), "{advice:?}");
    assert_eq!(to_cart.saving_ms(1.0), Some(2.0));

    // Only the client side reported: the sub-call's difference.
    let client_side_only = |f: Flow| Flow { server_p99_same_node_ms: None, server_p99_cross_node_ms: None, ..f };
    let mut run = Run::new(snap, vec![client_side_only(to_cart), client_side_only(to_db)]);
    run.policy.cost_share = crate::policy::Fraction(0.0);
    run.pass(0);
    assert_eq!(new_subjects(&run.pass(10)), [frontend]);
}

/// frontend (2 × 500m) on n0 next to its redis (500m), its template
/// carrying a term towards the redis (earlier advice); cart's three replicas
/// on n1; with `filler`, a pod of that many millicores on n1 too.
fn kept_next_to_redis(filler: Option<i64>) -> Snapshot {
    let mut replicas = vec![
        ("redis", 0, 500),
        ("frontend", 0, 500),
        ("frontend", 0, 500),
        ("cart", 1, 500),
        ("cart", 1, 500),
        ("cart", 1, 500),
    ];
    if let Some(cpu) = filler {
        replicas.push(("batch", 1, cpu));
    }
    let mut snap = cluster(3, 3, &replicas);
    let near_redis = WeightedPodAffinityTerm {
        weight: 50,
        term: PodAffinityTerm::in_namespace(
            crate::model::LabelSelector {
                match_labels: BTreeMap::from([("app".to_string(), "redis".to_string())]),
                ..Default::default()
            },
            HOSTNAME_KEY,
            "shop",
        ),
    };
    for p in snap.pods.iter_mut().filter(|p| p.workload == Some(workload("frontend"))) {
        let mut placement = (*p.placement).clone();
        placement.preferred_pod_affinity.push(near_redis.clone());
        p.placement = Arc::new(placement);
    }
    snap
}

/// frontend → its redis: no cross-node call left to measure (co-located).
fn to_redis(rps: f64) -> Flow {
    Flow {
        server: workload("redis"),
        requests_per_second: rps,
        p99_same_node_ms: Some(3.0),
        p99_cross_node_ms: None,
        ..chatty(0.0)
    }
}

/// hs-cosched12's trace, item 1: home-timeline, kept next to its single
/// redis by standing advice, was withheld from post-storage's node
/// (`ClientMove`) because the rollout would leave the redis behind, though
/// post-storage's node had room for both. The redis can move with it: its
/// template gets the same term, towards the server, and the client's move is
/// costed where the redis ends. Here frontend (2 × 500m) and its redis
/// (500m) on n0, cart's three replicas on n1 (1500m of 4000m): the group is
/// advised, the expected gain is the pair's whole 1800 ms/s (the redis
/// pair, 2500 req/s, stays on one node). With n1 too full for the redis
/// (a 1200m pod there), the redis could not follow: withheld as before.
#[test]
fn a_client_kept_next_to_its_store_moves_with_it_when_the_servers_node_holds_both() {
    let to_redis = to_redis(2500.0);
    let (frontend, redis) = (
        "co-locate Deployment/shop/frontend with Deployment/shop/cart",
        "co-locate Deployment/shop/frontend with Deployment/shop/redis",
    );
    let run_on = |snap: Snapshot| {
        let mut run = Run::new(snap, vec![chatty(200.0), to_redis.clone()]);
        // frontend → redis is the standing advice that keeps them together.
        run.memory.standing.insert(redis.to_string(), at(-300));
        run.pass(0);
        run.pass(10)
    };

    let advice = run_on(kept_next_to_redis(None));
    assert_eq!(new_subjects(&advice), [frontend], "{advice:?}");
    let Proposal::CoLocate { expected_gain, client_move, partners, .. } = &advice.advised[1].proposal else {
        panic!("{advice:?}")
    };
    assert_eq!(partners, &[workload("redis")], "{advice:?}");
    assert_eq!((*client_move, *expected_gain), (0.0, 1800.0), "{advice:?}");
    assert!(advice.advised.iter().any(|a| !a.new && a.proposal.subject() == redis), "{advice:?}");

    let advice = run_on(kept_next_to_redis(Some(1200)));
    assert!(new_subjects(&advice).is_empty(), "{advice:?}");
    let moved = advice.withheld.iter().find(|(s, _)| s == frontend).map(|(_, w)| w.clone());
    assert_eq!(moved, Some(Withheld::ClientMove { gain: 1800.0, cost: 2500.0 }), "{advice:?}");
}

/// A group move waits while a partner is itself being moved (advised
/// within `workload-cooldown`); a client that can move alone does not wait
/// on the workloads it might have taken along (hs-cosched13's three-zone
/// run: nginx → user-timeline was held because nginx's standing partner,
/// home-timeline, had just been advised).
#[test]
fn only_a_group_move_waits_on_its_partners_cooldown() {
    let redis = "co-locate Deployment/shop/frontend with Deployment/shop/redis";
    let frontend = "co-locate Deployment/shop/frontend with Deployment/shop/cart";
    let run_on = |rps: f64| {
        let mut run = Run::new(kept_next_to_redis(None), vec![chatty(200.0), to_redis(rps)]);
        run.memory.standing.insert(redis.to_string(), at(-300));
        // redis was advised on (say as a client of its own) 5 minutes ago.
        run.memory.last_for_workload.insert(workload("redis").to_string(), at(5));
        run.pass(0);
        run.pass(10)
    };
    // The redis pair is quiet enough for frontend to move alone: advised.
    let advice = run_on(100.0);
    assert_eq!(new_subjects(&advice), [frontend], "{advice:?}");
    // Only the group pays: it waits for the redis's cooldown.
    let advice = run_on(2500.0);
    assert!(new_subjects(&advice).is_empty(), "{advice:?}");
    assert!(advice.withheld.iter().any(|(s, w)| s == frontend && matches!(w, Withheld::Cooldown { .. })), "{advice:?}");
}
