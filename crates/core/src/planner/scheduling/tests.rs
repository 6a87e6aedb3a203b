use std::borrow::Cow;
use std::collections::BTreeMap;
use std::sync::Arc;

use crate::model::test_support;
use crate::model::{
    HostPort, HostnameSpread, LabelSelector, NodeSelectorOperator, NodeSelectorRequirement, NodeSelectorTerm, OwnerRef,
    Placement, Pod, Protocol, Resources, Taint, TaintEffect, Toleration, TolerationOperator,
};

use super::*;

fn pod(name: &str, cpu: i64, placement: Placement) -> Pod {
    Pod {
        uid: name.into(),
        labels: Arc::new(BTreeMap::from([("app".to_string(), name.split('-').next().unwrap().to_string())])),
        owner: Some(OwnerRef {
            kind: "ReplicaSet".into(),
            name: "rs".into(),
            uid: format!("rs-{}", name.split('-').next().unwrap()),
        }),
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
    let spread = Placement { anti_affinity_hostname: vec![db], ..Placement::default() };
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
    assert_eq!(placer.nodes[2].requested.cpu_milli, 0);
    // Skipping a node does not move the cursor past it.
    assert_eq!(placer.find(&pods[4], None), Some(2));
    placer.exclude(2);
    assert_eq!(placer.find(&pods[4], None), None);
    assert_eq!(
        placer.explain(&pods[4], None).to_string(),
        "0/3 nodes are available: 2 Insufficient cpu, 1 node(s) are being removed."
    );
}

fn selector(app: &str) -> LabelSelector {
    LabelSelector { match_labels: BTreeMap::from([("app".into(), app.into())]), ..Default::default() }
}

#[test]
fn required_pod_affinity_needs_a_matching_pod_on_the_node() {
    let none = BTreeMap::new();
    let cache = pod("cache-0", 10, Placement::default());
    let web = pod("web-0", 10, Placement { affinity_hostname: vec![selector("cache")], ..Placement::default() });
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
    let pair = pod("pair-0", 10, Placement { affinity_hostname: vec![selector("pair")], ..Placement::default() });
    assert_eq!(check(&pair, &node("d", &none, 1000)), Ok(()));
}

#[test]
fn topology_spread_counts_matching_pods_against_the_emptiest_node() {
    let none = BTreeMap::new();
    let spread = |min_domains| Placement {
        spread_hostname: vec![HostnameSpread { selector: selector("web"), max_skew: 1, min_domains }],
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
