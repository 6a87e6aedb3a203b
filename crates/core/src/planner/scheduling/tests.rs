use std::borrow::Cow;
use std::collections::BTreeMap;
use std::sync::Arc;

use crate::model::test_support;
use crate::model::{
    HOSTNAME, HostPort, LabelSelector, NodeSelectorOperator, NodeSelectorRequirement, NodeSelectorTerm, OwnerRef,
    Placement, Pod, PodAffinityTerm, Protocol, Resources, Taint, TaintEffect, Toleration, TolerationOperator,
    TopologySpread,
};

use super::*;

fn pod(name: &str, cpu: i64, placement: Placement) -> Pod {
    Pod {
        uid: name.into(),
        labels: Arc::new(BTreeMap::from([("app".to_string(), name.split('-').next().unwrap().to_string())])),
        owner: Some(
            OwnerRef {
                kind: "ReplicaSet".into(),
                name: "rs".into(),
                uid: format!("rs-{}", name.split('-').next().unwrap()),
            }
            .into(),
        ),
        requests: Resources { cpu_milli: cpu, memory: 1 << 20, pods: 1, ..Resources::default() },
        placement: Arc::new(placement),
        ..test_support::pod(name)
    }
}

fn node<'a>(name: &'a str, labels: &'a BTreeMap<String, String>, cpu: i64) -> SchedNode<'a> {
    SchedNode {
        name: Cow::Borrowed(name),
        labels,
        taints: Cow::Owned(vec![]),
        unschedulable: false,
        allocatable: Resources { cpu_milli: cpu, memory: 1 << 30, pods: 110, ..Resources::default() },
        requested: Resources::default(),
        pods: vec![],
        excluded: false,
    }
}

fn taint(key: &str, effect: TaintEffect) -> Taint {
    Taint { key: key.into(), value: Some("x".into()), effect }
}

fn tolerate(key: &str) -> Toleration {
    Toleration { key: Some(key.into()), operator: TolerationOperator::Exists, value: None, effect: None }
}

#[test]
fn predicates_report_the_first_failing_filter() {
    let none = BTreeMap::new();
    let ssd = BTreeMap::from([("disk".to_string(), "ssd".to_string())]);
    let plain = pod("web-0", 500, Placement::default());
    let mut gpu = pod("train-0", 500, Placement::default());
    gpu.requests.set(Resources::GPU, 1);

    let mut cordoned = node("n", &none, 1000);
    cordoned.unschedulable = true;
    let mut tainted = node("n", &none, 1000);
    tainted.taints = Cow::Owned(vec![taint("dedicated", TaintEffect::NoSchedule)]);
    let mut executes = node("n", &none, 1000);
    executes.taints = Cow::Owned(vec![taint("dedicated", TaintEffect::NoExecute)]);
    let mut prefers = node("n", &none, 1000);
    prefers.taints = Cow::Owned(vec![taint("dedicated", TaintEffect::PreferNoSchedule)]);

    let cases: Vec<(&str, &Pod, SchedNode<'_>, Result<(), Unfit>)> = vec![
        ("fits", &plain, node("n", &none, 1000), Ok(())),
        ("cpu", &plain, node("n", &none, 400), Err(Unfit::Resources { resource: "cpu".into() })),
        ("gpu", &gpu, node("n", &none, 1000), Err(Unfit::Resources { resource: "nvidia.com/gpu".into() })),
        ("cordoned", &plain, cordoned.clone(), Err(Unfit::Unschedulable)),
        ("NoSchedule", &plain, tainted.clone(), Err(Unfit::Taint { key: "dedicated".into(), value: "x".into() })),
        ("NoExecute", &plain, executes, Err(Unfit::Taint { key: "dedicated".into(), value: "x".into() })),
        ("PreferNoSchedule is ignored", &plain, prefers, Ok(())),
    ];
    for (name, p, n, want) in cases {
        assert_eq!(check(p, &n), want, "{name}");
    }

    let tolerant = pod(
        "ds-0",
        100,
        Placement { tolerations: vec![tolerate("dedicated"), tolerate(UNSCHEDULABLE_TAINT)], ..Placement::default() },
    );
    assert_eq!(check(&tolerant, &tainted), Ok(()));
    assert_eq!(check(&tolerant, &cordoned), Ok(()));

    let selective = pod("db-0", 100, Placement { node_selector: ssd.clone(), ..Placement::default() });
    assert_eq!(check(&selective, &node("n", &none, 1000)), Err(Unfit::NodeAffinity));
    assert_eq!(check(&selective, &node("n", &ssd, 1000)), Ok(()));
    let affine = pod(
        "db-1",
        100,
        Placement {
            required_node_affinity: vec![NodeSelectorTerm {
                match_expressions: vec![NodeSelectorRequirement {
                    key: "disk".into(),
                    operator: NodeSelectorOperator::In,
                    values: vec!["ssd".into()],
                }],
                match_fields: vec![],
            }],
            ..Placement::default()
        },
    );
    assert_eq!(check(&affine, &node("n", &none, 1000)), Err(Unfit::NodeAffinity));
    assert_eq!(check(&affine, &node("n", &ssd, 1000)), Ok(()));
}

#[test]
fn host_ports_and_anti_affinity_look_at_the_pods_on_the_node() {
    let none = BTreeMap::new();
    let port = HostPort { port: 8080, protocol: Protocol::Tcp };
    let exporter = pod("exp-0", 10, Placement { host_ports: vec![port], ..Placement::default() });
    let exporter2 = pod("exp-1", 10, Placement { host_ports: vec![port], ..Placement::default() });
    let udp = pod(
        "exp-2",
        10,
        Placement { host_ports: vec![HostPort { port: 8080, protocol: Protocol::Udp }], ..Placement::default() },
    );
    let mut n = node("n", &none, 1000);
    n.add(&exporter);
    assert_eq!(check(&exporter2, &n), Err(Unfit::HostPorts));
    assert_eq!(check(&udp, &n), Ok(()));

    let db = LabelSelector { match_labels: BTreeMap::from([("app".into(), "db".into())]), ..Default::default() };
    let spread = Placement { pod_anti_affinity: vec![host_term(db)], ..Placement::default() };
    let db0 = pod("db-0", 10, spread.clone());
    let db1 = pod("db-1", 10, spread);
    let plain_db = pod("db-2", 10, Placement::default());
    let mut other_ns = pod("db-3", 10, Placement::default());
    other_ns.namespace = "other".into();
    let mut m = node("m", &none, 1000);
    m.add(&db0);
    assert_eq!(check(&db1, &m), Err(Unfit::AntiAffinity));
    // The existing pod's rule also keeps matching pods away.
    assert_eq!(check(&plain_db, &m), Err(Unfit::ExistingAntiAffinity));
    assert_eq!(check(&other_ns, &m), Ok(()));
}

#[test]
fn summary_reads_like_the_scheduler() {
    let mut s = FitSummary::default();
    s.add(&Unfit::Resources { resource: "cpu".into() });
    s.add(&Unfit::Resources { resource: "cpu".into() });
    s.add(&Unfit::Taint { key: "node-role.kubernetes.io/control-plane".into(), value: String::new() });
    assert_eq!(
        s.to_string(),
        "0/3 nodes are available: 2 Insufficient cpu, 1 node(s) had untolerated taint {node-role.kubernetes.io/control-plane: }."
    );
}

#[test]
fn placer_cursors_skip_known_unfit_nodes_and_rollback_restores_them() {
    let none = BTreeMap::new();
    let pods: Vec<Pod> = (0..6).map(|i| pod(&format!("web-{i}"), 500, Placement::default())).collect();
    let mut placer = Placer::new(vec![node("a", &none, 1000), node("b", &none, 1000), node("c", &none, 1000)]);
    let mut placed = Vec::new();
    for p in &pods[..4] {
        let i = placer.find(p, None).unwrap();
        placer.place(p, i);
        placed.push(i);
    }
    assert_eq!(placed, [0, 0, 1, 1]);
    let cp = placer.checkpoint();
    let i = placer.find(&pods[4], None).unwrap();
    placer.place(&pods[4], i);
    assert_eq!(i, 2);
    assert_eq!(placer.find(&pods[5], Some(2)), None, "c skipped, a and b full");
    placer.rollback(cp);
    assert_eq!(placer.nodes()[2].requested.cpu_milli, 0);
    // Skipping a node does not move the cursor past it.
    assert_eq!(placer.find(&pods[4], None), Some(2));
    placer.exclude(2);
    assert_eq!(placer.find(&pods[4], None), None);
    assert_eq!(
        placer.explain(&pods[4], None).to_string(),
        "0/3 nodes are available: 2 Insufficient cpu, 1 node(s) are being removed."
    );
}

/// A term over the test pods' namespace, `default`.
fn host_term(selector: LabelSelector) -> PodAffinityTerm {
    PodAffinityTerm::in_namespace(selector, HOSTNAME, "default")
}

fn selector(app: &str) -> LabelSelector {
    LabelSelector { match_labels: BTreeMap::from([("app".into(), app.into())]), ..Default::default() }
}

#[test]
fn required_pod_affinity_needs_a_matching_pod_on_the_node() {
    let none = BTreeMap::new();
    let cache = pod("cache-0", 10, Placement::default());
    let web = pod("web-0", 10, Placement { pod_affinity: vec![host_term(selector("cache"))], ..Placement::default() });
    let mut with_cache = node("a", &none, 1000);
    with_cache.add(&cache);
    assert_eq!(check(&web, &with_cache), Ok(()));
    assert_eq!(check(&web, &node("b", &none, 1000)), Err(Unfit::Affinity));
    assert_eq!(Unfit::Affinity.to_string(), "node(s) didn't match pod affinity rules");
    // A cache in another namespace does not count.
    let mut elsewhere = pod("cache-1", 10, Placement::default());
    elsewhere.namespace = "other".into();
    let mut c = node("c", &none, 1000);
    c.add(&elsewhere);
    assert_eq!(check(&web, &c), Err(Unfit::Affinity));
    // Replicas kept together (the term matches the pod itself) are not checked.
    let pair = pod("pair-0", 10, Placement { pod_affinity: vec![host_term(selector("pair"))], ..Placement::default() });
    assert_eq!(check(&pair, &node("d", &none, 1000)), Ok(()));
}

#[test]
fn topology_spread_counts_matching_pods_against_the_emptiest_node() {
    let none = BTreeMap::new();
    let spread = |min_domains| Placement {
        spread: vec![TopologySpread::required(selector("web"), HOSTNAME, 1, min_domains)],
        ..Placement::default()
    };
    // Replicas share one placement, as the store keeps them (one placer class).
    let shared = Arc::new(spread(1));
    let web: Vec<Pod> = (0..6)
        .map(|i| Pod { placement: shared.clone(), ..pod(&format!("web-{i}"), 10, Placement::default()) })
        .collect();
    // Alone, a node may hold one more than an empty one: max skew 1.
    let mut a = node("a", &none, 1000);
    assert_eq!(check(&web[0], &a), Ok(()));
    a.add(&web[0]);
    assert_eq!(check(&web[1], &a), Err(Unfit::TopologySpread));
    assert_eq!(Unfit::TopologySpread.to_string(), "node(s) didn't match pod topology spread constraints");

    // Over the whole cluster the emptiest node sets the bar: with one pod on
    // each of a and b, a second on a is within the skew.
    let mut placer = Placer::new(vec![node("a", &none, 1000), node("b", &none, 1000)]).whole_cluster();
    for (p, want) in web.iter().zip([0, 1, 0, 1, 0, 1]) {
        let i = placer.find(p, None).unwrap();
        assert_eq!(i, want, "{}", p.name);
        placer.place(p, i);
    }
    // Without that knowledge (new minions), the emptiest counts as empty.
    let mut new = Placer::new(vec![node("n", &none, 1000)]);
    new.place(&web[0], 0);
    assert_eq!(new.find(&web[1], None), None);

    // minDomains 3 with two nodes: the minimum is taken as 0, one pod per node.
    let wide: Vec<Pod> = (0..3).map(|i| pod(&format!("web-{i}"), 10, spread(3))).collect();
    let mut placer = Placer::new(vec![node("a", &none, 1000), node("b", &none, 1000)]).whole_cluster();
    for p in &wide[..2] {
        let i = placer.find(p, None).unwrap();
        placer.place(p, i);
    }
    assert_eq!(placer.find(&wide[2], None), None);
    assert!(
        placer.explain(&wide[2], None).to_string().contains("2 node(s) didn't match pod topology spread constraints")
    );
}

// ------------------------------------------------------- wider topology keys

const ZONE: &str = "topology.kubernetes.io/zone";

fn zone(z: &str) -> BTreeMap<String, String> {
    BTreeMap::from([(ZONE.to_string(), z.to_string())])
}

fn zone_term(app: &str) -> PodAffinityTerm {
    PodAffinityTerm::in_namespace(selector(app), ZONE, "default")
}

/// Nodes a1, a2 (zone a), b1 (zone b) and x (no zone label).
struct Zones {
    a: BTreeMap<String, String>,
    b: BTreeMap<String, String>,
    none: BTreeMap<String, String>,
}

impl Zones {
    fn new() -> Self {
        Self { a: zone("a"), b: zone("b"), none: BTreeMap::new() }
    }
    fn nodes(&self) -> Vec<SchedNode<'_>> {
        vec![
            node("a1", &self.a, 4000),
            node("a2", &self.a, 4000),
            node("b1", &self.b, 4000),
            node("x", &self.none, 4000),
        ]
    }
}

fn verdicts<'a>(placer: &mut Placer<'a>, pod: &'a Pod) -> Vec<Option<String>> {
    let fitting = placer.fitting(pod, None);
    (0..placer.nodes().len())
        .map(|i| {
            if fitting.contains(&i) {
                return None;
            }
            let nodes = &placer.nodes();
            let domains = Domains { live: Some(&[]), ..Domains::alone(nodes) };
            let domains = Domains { whole: true, wide_anti: true, ..domains };
            let prepared = Prepared::new(pod, &domains);
            Some(Unfit::from(first_miss_in(pod, &domains, i, &prepared).expect("unfit")).to_string())
        })
        .collect()
}

#[test]
fn zone_anti_affinity_keeps_the_whole_zone_free_both_ways() {
    let z = Zones::new();
    let db0 = pod("db-0", 10, Placement::default());
    let replica = pod("db-1", 10, Placement { pod_anti_affinity: vec![zone_term("db")], ..Placement::default() });
    let mut placer = Placer::new(z.nodes()).whole_cluster();
    placer.place(&db0, 0);
    // a2 shares a1's zone; b1 and x (no zone: the term does not apply) are free.
    assert_eq!(placer.fitting(&replica, None), [2, 3]);
    assert_eq!(check_among(&replica, &placer.nodes()[1], placer.nodes()), Err(Unfit::AntiAffinity));

    // The existing pod's zone rule keeps matching pods out of its zone, not out of the others.
    let guard = pod("guard-0", 10, Placement { pod_anti_affinity: vec![zone_term("db")], ..Placement::default() });
    let plain_db = pod("db-2", 10, Placement::default());
    let mut placer = Placer::new(z.nodes()).whole_cluster();
    placer.place(&guard, 0);
    assert_eq!(placer.fitting(&plain_db, None), [2, 3]);
    assert_eq!(check_among(&plain_db, &placer.nodes()[1], placer.nodes()), Err(Unfit::ExistingAntiAffinity));
}

#[test]
fn zone_affinity_needs_a_match_in_the_zone_and_lets_the_first_of_a_group_anywhere_with_the_key() {
    let z = Zones::new();
    let cache = pod("cache-0", 10, Placement::default());
    let web = pod("web-0", 10, Placement { pod_affinity: vec![zone_term("cache")], ..Placement::default() });
    let mut placer = Placer::new(z.nodes()).whole_cluster();
    // No cache anywhere and web does not match its own term: nowhere.
    assert_eq!(placer.fitting(&web, None), Vec::<usize>::new());
    placer.place(&cache, 1);
    assert_eq!(placer.fitting(&web, None), [0, 1], "zone a only");
    let v = verdicts(&mut placer, &web);
    assert_eq!(v[2].as_deref(), Some("node(s) didn't match pod affinity rules"));
    assert_eq!(v[3].as_deref(), Some("node(s) didn't match pod affinity rules"), "no zone label");

    // Replicas kept in one zone: the first goes to any node with a zone, the
    // next only where it went.
    let group = Arc::new(Placement { pod_affinity: vec![zone_term("team")], ..Placement::default() });
    let team: Vec<Pod> = (0..2)
        .map(|i| Pod { placement: group.clone(), ..pod(&format!("team-{i}"), 10, Placement::default()) })
        .collect();
    let mut placer = Placer::new(z.nodes()).whole_cluster();
    assert_eq!(placer.fitting(&team[0], None), [0, 1, 2]);
    placer.place(&team[0], 2);
    assert_eq!(placer.fitting(&team[1], None), [2]);
    // A node being emptied does not count: its pod is the one moving.
    assert_eq!(placer.fitting(&team[1], Some(2)), [0, 1]);
}

#[test]
fn terms_cover_their_namespaces_the_pods_own_by_default() {
    let z = Zones::new();
    let mut cache = pod("cache-0", 10, Placement::default());
    cache.namespace = "shared".into();
    let own = pod("web-0", 10, Placement { pod_affinity: vec![zone_term("cache")], ..Placement::default() });
    let listed = PodAffinityTerm { namespaces: vec!["shared".into()], ..zone_term("cache") };
    let listed = pod("web-1", 10, Placement { pod_affinity: vec![listed], ..Placement::default() });
    let all = PodAffinityTerm {
        namespaces: vec![],
        namespace_selector: Some(LabelSelector::default()),
        ..zone_term("cache")
    };
    let all = pod("web-2", 10, Placement { pod_affinity: vec![all], ..Placement::default() });
    let labelled = PodAffinityTerm {
        namespaces: vec![],
        namespace_selector: Some(LabelSelector {
            match_labels: BTreeMap::from([("tier".into(), "infra".into())]),
            ..Default::default()
        }),
        ..zone_term("cache")
    };
    let labelled = pod("web-3", 10, Placement { pod_affinity: vec![labelled], ..Placement::default() });
    let mut placer = Placer::new(z.nodes()).whole_cluster();
    placer.place(&cache, 2);
    assert_eq!(placer.fitting(&own, None), Vec::<usize>::new(), "a cache in another namespace does not count");
    assert_eq!(placer.fitting(&listed, None), [2]);
    assert_eq!(placer.fitting(&all, None), [2]);
    assert_eq!(placer.fitting(&labelled, None), Vec::<usize>::new(), "namespace shared is not labelled tier=infra");
    let infra_labels = BTreeMap::from([("tier".into(), "infra".into())]);
    let mut infra = pod("cache-1", 10, Placement { namespace_labels: infra_labels, ..Placement::default() });
    infra.namespace = "infra".into();
    placer.place(&infra, 0);
    assert_eq!(placer.fitting(&labelled, None), [0, 1]);
}

/// A term over `namespaces` and the namespaces labelled `tier=<tier>`
/// (`None`: no namespace selector; `Some("")`: the empty one, every namespace).
fn ns_term(app: &str, namespaces: &[&str], tier: Option<&str>) -> PodAffinityTerm {
    let namespace_selector = tier.map(|t| LabelSelector {
        match_labels: if t.is_empty() { BTreeMap::new() } else { BTreeMap::from([("tier".into(), t.into())]) },
        ..Default::default()
    });
    PodAffinityTerm {
        namespaces: namespaces.iter().map(|n| n.to_string()).collect(),
        namespace_selector,
        ..zone_term(app)
    }
}

/// A pod of `app` in `namespace`, whose namespace is labelled `tier=<tier>`.
fn pod_in(name: &str, namespace: &str, tier: Option<&str>, placement: Placement) -> Pod {
    let namespace_labels = tier.map(|t| BTreeMap::from([("tier".into(), t.into())])).unwrap_or_default();
    let mut p = pod(name, 10, Placement { namespace_labels, ..placement });
    p.namespace = namespace.into();
    p
}

/// Issue 21: a term covers the union of its `namespaces` and the namespaces
/// its `namespaceSelector` selects by their labels, in required
/// anti-affinity (the incoming pod's and the existing pods') as in
/// required affinity (above) and in preferences.
#[test]
fn namespace_selectors_select_by_namespace_labels_in_anti_affinity_and_preferences() {
    let z = Zones::new();
    let anti = |term| Placement { pod_anti_affinity: vec![term], ..Placement::default() };
    // db pods: one in zone a (namespace infra, tier=infra), one in zone b
    // (namespace shared, unlabelled).
    let db_infra = pod_in("db-0", "infra", Some("infra"), Placement::default());
    let db_shared = pod_in("db-1", "shared", None, Placement::default());
    let mut placer = Placer::new(z.nodes()).whole_cluster();
    placer.place(&db_infra, 0);
    placer.place(&db_shared, 2);
    let cases: [(&str, PodAffinityTerm, &[usize]); 6] = [
        ("null selector, no namespaces: its own namespace (default), no db there", zone_term("db"), &[0, 1, 2, 3]),
        ("listed only", ns_term("db", &["shared"], None), &[0, 1, 3]),
        ("selected by label only", ns_term("db", &[], Some("infra")), &[2, 3]),
        ("the union of both", ns_term("db", &["shared"], Some("infra")), &[3]),
        ("empty selector: every namespace", ns_term("db", &[], Some("")), &[3]),
        ("a label no namespace has", ns_term("db", &[], Some("web")), &[0, 1, 2, 3]),
    ];
    for (case, term, want) in cases {
        let replica = pod_in("db-9", "default", None, anti(term));
        assert_eq!(placer.fitting(&replica, None), want, "{case}");
    }

    // An existing pod's anti-affinity term selects the incoming pod by its
    // namespace's labels (the symmetric check).
    let guard = pod_in("guard-0", "default", None, anti(ns_term("web", &[], Some("infra"))));
    let mut placer = Placer::new(z.nodes()).whole_cluster();
    placer.place(&guard, 0);
    let web_infra = pod_in("web-0", "infra", Some("infra"), Placement::default());
    let web_other = pod_in("web-1", "apps", Some("web"), Placement::default());
    assert_eq!(placer.fitting(&web_infra, None), [2, 3]);
    assert_eq!(check_among(&web_infra, &placer.nodes()[1], placer.nodes()), Err(Unfit::ExistingAntiAffinity));
    assert_eq!(placer.fitting(&web_other, None), [0, 1, 2, 3]);

    // Preferences: only the cache of a selected namespace attracts or repels.
    let weighted = |term, weight| crate::model::WeightedPodAffinityTerm { weight, term };
    let cache_infra = pod_in("cache-0", "infra", Some("infra"), Placement::default());
    let cache_shared = pod_in("cache-1", "shared", None, Placement::default());
    let mut placer = Placer::new(z.nodes()).whole_cluster();
    placer.place(&cache_shared, 0);
    placer.place(&cache_infra, 2);
    let near = |term| {
        pod_in(
            "near-0",
            "default",
            None,
            Placement { preferred_pod_affinity: vec![weighted(term, 40)], ..Placement::default() },
        )
    };
    let far = |term| {
        let placement = Placement { preferred_pod_anti_affinity: vec![weighted(term, 40)], ..Placement::default() };
        pod_in("far-0", "default", None, placement)
    };
    let near_infra = near(ns_term("cache", &[], Some("infra")));
    assert_eq!(placer.find(&near_infra, None), Some(2));
    assert_eq!((placer.preference(&near_infra, 0), placer.preference(&near_infra, 2)), (0, 40));
    let near_shared = near(ns_term("cache", &["shared"], Some("web")));
    assert_eq!(placer.find(&near_shared, None), Some(0));
    let far_both = far(ns_term("cache", &["shared"], Some("infra")));
    assert_eq!(placer.find(&far_both, None), Some(3), "both zones hold a selected cache: the node without a zone");
    let far_any = far(ns_term("cache", &[], Some("")));
    assert_eq!((placer.preference(&far_any, 1), placer.preference(&far_any, 2)), (-40, -40));
    let far_own = far(zone_term("cache"));
    assert_eq!(placer.preference(&far_own, 0), 0, "no cache in its own namespace");
}

#[test]
fn zone_spread_counts_domains_of_eligible_nodes_with_min_domains() {
    let z = Zones::new();
    let spread = |min_domains| TopologySpread::required(selector("web"), ZONE, 1, min_domains);
    let shared = Arc::new(Placement { spread: vec![spread(1)], ..Placement::default() });
    let web: Vec<Pod> = (0..4)
        .map(|i| Pod { placement: shared.clone(), ..pod(&format!("web-{i}"), 10, Placement::default()) })
        .collect();
    let mut placer = Placer::new(z.nodes()).whole_cluster();
    placer.place(&web[0], 0);
    // Zone a has 1, zone b 0: a second in a would be 2 − 0 > 1. x has no zone: never.
    assert_eq!(placer.fitting(&web[1], None), [2]);
    placer.place(&web[1], 2);
    assert_eq!(placer.fitting(&web[2], None), [0, 1, 2]);
    assert_eq!(
        verdicts(&mut placer, &web[2])[3].as_deref(),
        Some("node(s) didn't match pod topology spread constraints")
    );

    // Node affinity narrows the domains: pinned to zone a, zone b is no
    // domain, so zone a is the emptiest and takes them all.
    let pinned = Arc::new(Placement { spread: vec![spread(1)], node_selector: zone("a"), ..Placement::default() });
    let pinned: Vec<Pod> = (0..3)
        .map(|i| Pod { placement: pinned.clone(), ..pod(&format!("web-{i}"), 10, Placement::default()) })
        .collect();
    let mut placer = Placer::new(z.nodes()).whole_cluster();
    for p in &pinned {
        let i = placer.find(p, None).expect("zone a");
        assert!(i < 2);
        placer.place(p, i);
    }

    // minDomains 3 with two zones: the floor is 0, one pod per zone.
    let three = Arc::new(Placement { spread: vec![spread(3)], ..Placement::default() });
    let three: Vec<Pod> = (0..3)
        .map(|i| Pod { placement: three.clone(), ..pod(&format!("web-{i}"), 10, Placement::default()) })
        .collect();
    let mut placer = Placer::new(z.nodes()).whole_cluster();
    placer.place(&three[0], 0);
    placer.place(&three[1], 2);
    assert_eq!(placer.fitting(&three[2], None), Vec::<usize>::new());
}

#[test]
fn a_template_is_judged_among_the_existing_nodes_of_its_zone() {
    let z = Zones::new();
    let db0 = pod("db-0", 10, Placement::default());
    let replica = pod("db-1", 10, Placement { pod_anti_affinity: vec![zone_term("db")], ..Placement::default() });
    let mut existing = Placer::new(z.nodes()).whole_cluster();
    existing.place(&db0, 0);
    let context = std::rc::Rc::new(existing.nodes().to_vec());
    let template_a = node("template-a-0", &z.a, 4000);
    let template_b = node("template-b-0", &z.b, 4000);
    // Alone, both templates fit; among the cluster only zone b's does.
    assert_eq!(check(&replica, &template_a), Ok(()));
    assert_eq!(check_among(&replica, &template_a, &context), Err(Unfit::AntiAffinity));
    assert_eq!(check_among(&replica, &template_b, &context), Ok(()));
    let mut new = Placer::new(vec![template_a.clone(), template_b.clone()]).with_context(context.clone());
    assert_eq!(new.find(&replica, None), Some(1));
}

#[test]
fn preferences_rank_fitting_nodes() {
    let z = Zones::new();
    let cache = pod("cache-0", 10, Placement::default());
    let weighted = |app: &str, weight| crate::model::WeightedPodAffinityTerm { weight, term: zone_term(app) };
    let near =
        pod("near-0", 10, Placement { preferred_pod_affinity: vec![weighted("cache", 50)], ..Placement::default() });
    let far = pod(
        "far-0",
        10,
        Placement { preferred_pod_anti_affinity: vec![weighted("cache", 50)], ..Placement::default() },
    );
    let mut placer = Placer::new(z.nodes()).whole_cluster();
    placer.place(&cache, 2);
    // First fit would say a1; the preference says zone b, then away from it.
    assert_eq!(placer.find(&near, None), Some(2));
    assert_eq!(placer.find(&far, None), Some(0));
    assert_eq!(placer.preference(&near, 2), 50);
    assert_eq!(placer.preference(&far, 2), -50);

    // ScheduleAnyway: the emptier zone first, never a filter.
    let soft = TopologySpread {
        when_unsatisfiable: crate::model::WhenUnsatisfiable::ScheduleAnyway,
        ..TopologySpread::required(selector("soft"), ZONE, 1, 1)
    };
    let soft = Arc::new(Placement { spread: vec![soft], ..Placement::default() });
    let soft: Vec<Pod> = (0..3)
        .map(|i| Pod { placement: soft.clone(), ..pod(&format!("soft-{i}"), 10, Placement::default()) })
        .collect();
    let mut placer = Placer::new(z.nodes()).whole_cluster();
    placer.place(&soft[0], 0);
    placer.place(&soft[1], 1);
    assert_eq!(placer.find(&soft[2], None), Some(2));
    assert_eq!(placer.fitting(&soft[2], None), [0, 1, 2, 3]);
}

/// kube-scheduler's `InterPodAffinity` score is symmetric: the terms of the
/// pods already running that select the incoming pod score the nodes of
/// their domains too — preferred affinity +weight, preferred anti-affinity
/// −weight, required affinity `hardPodAffinityWeight` (1). A server
/// replica re-created by a drain goes back next to the clients that prefer
/// it, not to the emptiest node (issue 21).
#[test]
fn existing_pods_terms_score_the_pods_they_select() {
    let none = BTreeMap::new();
    let weighted = |app: &str, weight| crate::model::WeightedPodAffinityTerm { weight, term: host_term(selector(app)) };
    let nodes = || vec![node("n1", &none, 4000), node("n2", &none, 4000), node("n3", &none, 4000)];
    let client = pod(
        "client-0",
        1000,
        Placement { preferred_pod_affinity: vec![weighted("server", 50)], ..Placement::default() },
    );
    let filler = pod("filler-0", 500, Placement::default());
    let server = pod("server-0", 100, Placement::default());
    let mut placer = Placer::new(nodes()).whole_cluster();
    placer.place(&client, 0);
    placer.place(&filler, 1);
    // n3 is the emptiest; the client's term draws the server to n1.
    assert_eq!(placer.preference(&server, 0), 50);
    assert_eq!((placer.preference(&server, 1), placer.preference(&server, 2)), (0, 0));
    assert_eq!(placer.best(&server, None), Some(0));
    assert_eq!(placer.find(&server, None), Some(0));
    // The same through a placer built on the nodes as they are (the
    // simulator's scheduler, scale-down's removal simulation).
    let mut built = nodes();
    built[0].add(&client);
    built[1].add(&filler);
    let mut placer = Placer::new(built).whole_cluster();
    assert_eq!(placer.best(&server, None), Some(0));
    // And through a template judged among the existing nodes (scale-up).
    let template = node("new", &none, 4000);
    assert_eq!(preference(&server, &template, placer.nodes()), 0);
    assert_eq!(preference(&server, &placer.nodes()[0], &placer.nodes()[1..]), 50);

    // Preferred anti-affinity repels what it selects, required affinity
    // attracts with weight 1.
    let quiet = pod(
        "quiet-0",
        500,
        Placement { preferred_pod_anti_affinity: vec![weighted("noisy", 30)], ..Placement::default() },
    );
    let follower = pod(
        "follower-0",
        1000,
        Placement { pod_affinity: vec![host_term(selector("leader"))], ..Placement::default() },
    );
    let noisy = pod("noisy-0", 100, Placement::default());
    let leader = pod("leader-0", 100, Placement::default());
    let mut placer = Placer::new(nodes()).whole_cluster();
    placer.place(&quiet, 2);
    placer.place(&follower, 1);
    placer.place(&filler, 0);
    placer.place(&filler, 0);
    assert_eq!(placer.preference(&noisy, 2), -30);
    assert_eq!(placer.best(&noisy, None), Some(1), "n3 is emptiest, but its pod avoids noisy ones: the next");
    assert_eq!(placer.preference(&leader, 1), 1);
    assert_eq!(placer.best(&leader, None), Some(1));
    // A pod no term selects is placed by LeastAllocated alone.
    assert_eq!(placer.preference(&server, 2), 0);
    assert_eq!(placer.best(&server, None), Some(2));
}

/// Over a zone: an existing pod's zone-wide term scores every node of its
/// zone, in whichever node of the zone the pod runs.
#[test]
fn existing_pods_zone_terms_score_their_whole_zone() {
    let z = Zones::new();
    let weighted = |app: &str, weight| crate::model::WeightedPodAffinityTerm { weight, term: zone_term(app) };
    let client =
        pod("client-0", 10, Placement { preferred_pod_affinity: vec![weighted("server", 20)], ..Placement::default() });
    let filler = pod("filler-0", 2000, Placement::default());
    let server = pod("server-0", 10, Placement::default());
    let mut placer = Placer::new(z.nodes()).whole_cluster();
    placer.place(&client, 0);
    placer.place(&filler, 2);
    placer.place(&filler, 3);
    let scores: Vec<i64> = (0..4).map(|i| placer.preference(&server, i)).collect();
    assert_eq!(scores, [20, 20, 0, 0]);
    assert_eq!(placer.best(&server, None), Some(1), "zone a, its emptier node");
}

/// kube-scheduler adds a preferred term's weight once per pod it selects in
/// the node's domain: a client goes where more of its server's replicas run.
#[test]
fn preferred_terms_count_every_pod_they_select() {
    let none = BTreeMap::new();
    let weighted = |app: &str, weight| crate::model::WeightedPodAffinityTerm { weight, term: host_term(selector(app)) };
    let client = pod(
        "client-0",
        100,
        Placement { preferred_pod_affinity: vec![weighted("server", 10)], ..Placement::default() },
    );
    let avoider = pod(
        "avoider-0",
        100,
        Placement { preferred_pod_anti_affinity: vec![weighted("server", 10)], ..Placement::default() },
    );
    let servers: Vec<Pod> = (0..3).map(|i| pod(&format!("server-{i}"), 500, Placement::default())).collect();
    let mut placer =
        Placer::new(vec![node("n1", &none, 4000), node("n2", &none, 4000), node("n3", &none, 4000)]).whole_cluster();
    placer.place(&servers[0], 0);
    placer.place(&servers[1], 1);
    placer.place(&servers[2], 1);
    assert_eq!((placer.preference(&client, 0), placer.preference(&client, 1)), (10, 20));
    assert_eq!(placer.best(&client, None), Some(1), "n1 is emptier, n2 runs two servers");
    assert_eq!((placer.preference(&avoider, 0), placer.preference(&avoider, 1)), (-10, -20));
}

/// A small deterministic generator (xorshift64*): the test needs many
/// varied clusters, reproducibly, and the core crate has no `rand`.
#[derive(Clone)]
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

#[test]
fn best_from_the_free_index_is_the_node_a_full_scan_ranks_first() {
    // Equal shapes and equal loads make ties (broken by name), some nodes
    // are cordoned, tainted, without memory, overcommitted or excluded, and
    // some pods fit nowhere or ask for no CPU: every path of the index's
    // pruning is compared with the scan it replaces, through placements,
    // rollbacks and exclusions. Half the queries skip a node (hidden from
    // the index while skipped), and every cluster is also given sorted by
    // name, the tie-break then comparing positions.
    let none = BTreeMap::new();
    let names: Vec<String> = (0..40).map(|i| format!("n{:02}", (i * 7) % 40)).collect();
    let mut rng = Rng(0x5eed);
    let shapes = [(1000, 1 << 30), (2000, 1 << 30), (2000, 2 << 30), (4000, 8 << 30), (1000, 0)];
    let pods: Vec<Pod> = (0..60)
        .map(|i| {
            let cpu = [0, 100, 250, 500, 1000, 1500, 5000][i % 7];
            let mut p = pod(&format!("w{}-{i}", i % 5), cpu, Placement::default());
            p.requests.memory = [0, 1 << 20, 256 << 20, 1 << 30, 3 << 30][(i / 7) % 5];
            p
        })
        .collect();
    let mut compared = 0;
    for round in 0..200 {
        let n = 1 + rng.below(names.len() as u64) as usize;
        let nodes: Vec<SchedNode<'_>> = (0..n)
            .map(|i| {
                let (cpu, memory) = shapes[rng.below(shapes.len() as u64) as usize];
                let mut node = node(&names[i], &none, cpu);
                node.allocatable.memory = memory;
                match rng.below(12) {
                    0 => node.unschedulable = true,
                    1 => node.taints = Cow::Owned(vec![taint("dedicated", TaintEffect::NoSchedule)]),
                    2 => node.requested.cpu_milli = cpu + 500,
                    3 => node.excluded = true,
                    _ => {}
                }
                node
            })
            .collect();
        let mut sorted = nodes.clone();
        sorted.sort_by(|a, b| a.name.cmp(&b.name));
        // Both orders see the same queries and steps.
        let steps = Rng(rng.next());
        for (in_name_order, nodes) in [(false, nodes), (true, sorted)] {
            let mut rng = steps.clone();
            let mut placer = Placer::new(nodes).whole_cluster();
            if in_name_order {
                placer = placer.in_name_order();
            }
            let mut checkpoints = Vec::new();
            for step in 0..80 {
                let pod = &pods[rng.below(pods.len() as u64) as usize];
                let skip = (rng.below(2) == 0).then(|| rng.below(n as u64) as usize);
                let indexed = placer.best(pod, skip);
                let scanned = placer.best_by_scan(pod, skip);
                assert_eq!(
                    indexed, scanned,
                    "round {round}, step {step}, in name order {in_name_order}: {} skip {skip:?}",
                    pod.name
                );
                compared += 1;
                match rng.below(10) {
                    0 => checkpoints.push(placer.checkpoint()),
                    1 => {
                        if let Some(cp) = checkpoints.pop() {
                            placer.rollback(cp);
                        }
                    }
                    2 => placer.exclude(rng.below(n as u64) as usize),
                    _ => {
                        if let Some(i) = indexed {
                            placer.place(pod, i);
                        }
                    }
                }
            }
        }
    }
    assert_eq!(compared, 2 * 200 * 80);
}

/// The plugins' normalisations, against hand-computed kube-scheduler scores.
#[test]
fn plugin_scores_are_normalised_as_kube_scheduler_normalises_them() {
    use super::score::{normalize_affinity, spread_scores, total};
    // InterPodAffinity: (s − min) / (max − min) × 100, truncated.
    assert_eq!(normalize_affinity(&[0, 50, 100, 30]), [0, 50, 100, 30]);
    assert_eq!(normalize_affinity(&[-50, 0, 150]), [0, 25, 100]);
    assert_eq!(normalize_affinity(&[0, 2, 3]), [0, 66, 100]);
    assert_eq!(normalize_affinity(&[10, 10]), [0, 0]);
    // PodTopologySpread, one hostname constraint (max skew 1) over 2 nodes:
    // raw 0 × ln 4 = 0 and 2 × ln 4 = 2.77 → 3; normalised
    // 100 × (3 + 0 − s) / 3: 100 and 0. A node lacking the key: 0.
    assert_eq!(spread_scores(&[Some(vec![0]), Some(vec![2])], &[2], &[1]), [100, 0]);
    // Max skew 2 adds 1 to every raw score: 1 and 4 (2.77 + 1 = 3.77 → 4);
    // 100 × (4 + 1 − 1) / 4 = 100, 100 × (4 + 1 − 4) / 4 = 25.
    assert_eq!(spread_scores(&[Some(vec![0]), Some(vec![2]), None], &[2], &[2]), [100, 25, 0]);
    // All raw scores 0: every node 100. No constraint: 0.
    assert_eq!(spread_scores(&[Some(vec![0]), Some(vec![0])], &[2], &[1]), [100, 100]);
    assert_eq!(spread_scores(&[Some(vec![]), Some(vec![])], &[], &[]), [0, 0]);
    // Weights 2, 2 and 1 (LeastAllocated 0–1 taken to 0–100).
    assert_eq!(total(66, 100, Some(0.9)), 2.0 * 66.0 + 2.0 * 100.0 + 90.0);
    assert_eq!(total(66, 100, None), 332.0);
}

/// The ranking is the weighted sum, not affinity first: three pods of the
/// server on a nearly full node, two on an empty one, none on a third. The
/// client's raw affinity 150, 100, 0 normalise to 100, 66, 0; LeastAllocated
/// leaves about 0.1 and 0.95 of the first two (×100, weight 1): 2 × 100 + 10
/// = 210 against 2 × 66 + 95 = 227, so the scheduler binds to the emptier
/// node (affinity first, the model bound to the first). A pod with no
/// preference ranks by LeastAllocated alone, as before.
#[test]
fn nodes_are_ranked_by_the_weighted_sum_of_the_plugins_scores() {
    let none = BTreeMap::new();
    let term = crate::model::WeightedPodAffinityTerm { weight: 50, term: host_term(selector("server")) };
    let client = pod("client-0", 0, Placement { preferred_pod_affinity: vec![term], ..Placement::default() });
    let servers: Vec<Pod> = (0..5).map(|i| pod(&format!("server-{i}"), 0, Placement::default())).collect();
    let full = pod("filler-0", 3600, Placement::default());
    let some = pod("filler-1", 400, Placement::default());
    let nodes = vec![node("n1", &none, 4000), node("n2", &none, 4000), node("n3", &none, 4000)];
    let mut placer = Placer::new(nodes).whole_cluster();
    placer.place(&full, 0);
    placer.place(&some, 1);
    for s in &servers[..3] {
        placer.place(s, 0);
    }
    for s in &servers[3..] {
        placer.place(s, 1);
    }
    // Memory is nearly free everywhere (1 MiB requests of 1 GiB): CPU decides.
    let free = |i: usize| least_allocated(&placer.nodes()[i], &client);
    assert!((free(0) - (0.1 + 1.0) / 2.0).abs() < 0.01 && (free(1) - (0.9 + 1.0) / 2.0).abs() < 0.01);
    assert_eq!((placer.preference(&client, 0), placer.preference(&client, 1)), (150, 100));
    // 2 × 100 + 55 = 255 against 2 × 66 + 95 = 227: with memory counted the
    // nearly full node still wins; make memory as full as CPU there.
    assert_eq!(placer.best(&client, None), Some(0));
    let heavy = Pod {
        requests: Resources { cpu_milli: 0, memory: 9 * (1 << 30) / 10, pods: 1, ..Resources::default() },
        ..pod("filler-2", 0, Placement::default())
    };
    placer.place(&heavy, 0);
    // n1: free (0.1 + ~0.1) / 2 → 10; n2: (0.9 + ~1.0) / 2 → 95.
    // 2 × 100 + 10 = 210 against 2 × 66 + 95 = 227.
    assert_eq!(placer.best(&client, None), Some(1));
    // First fit (room checks) ranks by the plugins alone: n1.
    assert_eq!(placer.find(&client, None), Some(0));
    // Without a preference: the emptiest node, n3.
    assert_eq!(placer.best(&some, None), Some(2));
}
