//! Both levels together, pass after pass: issue 17's fight loop replayed with
//! the planner alone and a cluster that reacts as a real one does.

use std::collections::BTreeMap;

use crate::model::{
    Container, ContainerRecommendation, MemberStatus, PodPhase, ResizeState, Resources, SignedDuration, Timestamp,
    UpdateMode, VerticalScaling, WorkloadRef,
};
use crate::planner::Plan;
use crate::planner::action::{Action, ResizePod};

use super::{GI, World};

/// What the cluster does between passes, as the issue's replay had it:
/// minions boot 120 s after a scale-up; a ReplicaSet replaces an evicted pod
/// at its template's requests (no admission controller); a least-allocated
/// scheduler places pending pods; the kubelet applies a resize when the node
/// has room and defers it otherwise (retrying as room frees).
struct Cluster {
    w: World,
    /// (when, group) of minions booting.
    boots: Vec<(Timestamp, String)>,
    /// Template requests (millicores) per app.
    templates: BTreeMap<String, i64>,
    names: usize,
    /// Actions planned, per kind.
    counts: BTreeMap<&'static str, u32>,
    /// Per pass: (scale-ups, removals started, recreations).
    timeline: Vec<(u32, u32, u32)>,
}

fn web_workload() -> WorkloadRef {
    WorkloadRef { kind: "Deployment".into(), namespace: "default".into(), name: "web".into() }
}

impl Cluster {
    /// Two 4-core minions, each running `other` (1500m) and `web` (1000m);
    /// web's recommendation is 3000m, `InPlaceOrRecreate`, default settings.
    fn issue_17() -> Self {
        let mut w = World::new();
        w.group("g", 1, 10, 4000, 16 * GI);
        let mut c = Cluster {
            w,
            boots: Vec::new(),
            templates: BTreeMap::from([("web".into(), 1000), ("other".into(), 1500)]),
            names: 0,
            counts: BTreeMap::new(),
            timeline: Vec::new(),
        };
        for n in ["n1", "n2"] {
            c.w.minion("g", n);
            c.replica("other", Some(n));
            c.replica("web", Some(n));
        }
        let r = Resources::new;
        c.w.snap.vertical.push(VerticalScaling {
            namespace: "default".into(),
            name: "web".into(),
            workload: web_workload(),
            update_mode: UpdateMode::InPlaceOrRecreate,
            min_replicas: None,
            resource_policy: Default::default(),
            eviction_requirements: vec![],
            replicas: Some(2),
            recommendations: vec![ContainerRecommendation {
                container_name: "app".into(),
                target: r(3000, GI),
                lower_bound: r(2500, GI),
                upper_bound: r(4000, 2 * GI),
                uncapped_target: r(3000, GI),
                capped: vec![],
            }],
        });
        c
    }

    /// A replica of `app` at its template's requests, or at the
    /// recommendation where an admission controller applies it.
    fn replica(&mut self, app: &str, node: Option<&str>) {
        let admitted = node.is_none() && app == "web" && self.w.snap.admission_applies_recommendations;
        let cpu = if admitted { 3000 } else { self.templates[app] };
        let name = format!("{app}-{}", self.names);
        self.names += 1;
        let now = self.w.now;
        let pod = self.w.pod(&name, node, cpu, GI);
        pod.created = now;
        pod.containers = vec![Container {
            name: "app".into(),
            requests: Resources::new(cpu, GI),
            limits: Resources::default(),
            allocated: node.map(|_| Resources::new(cpu, GI)),
            oom_kills: 0,
            last_oom: None,
        }];
        if app == "web" {
            pod.workload = Some(web_workload());
        }
    }

    fn requested(&self, node: &str) -> i64 {
        self.w.snap.pods.iter().filter(|p| p.node_name.as_deref() == Some(node)).map(|p| p.requests.cpu_milli).sum()
    }

    fn allocatable(&self, node: &str) -> i64 {
        self.w.snap.nodes.iter().find(|n| n.name == node).map_or(0, |n| n.allocatable.cpu_milli)
    }

    fn pass(&mut self) {
        let plan = self.w.step();
        let mut this = (0, 0, 0);
        for a in &plan.actions {
            *self.counts.entry(a.kind().as_str()).or_default() += 1;
            match a {
                Action::ScaleUp(_) => this.0 += 1,
                Action::StartRemoval(_) => this.1 += 1,
                Action::RecreatePod(_) => this.2 += 1,
                _ => {}
            }
        }
        self.timeline.push(this);
        self.execute(&plan);
        self.w.advance(10);
        self.react();
    }

    fn execute(&mut self, plan: &Plan) {
        let (resizes, rest): (Vec<&Action>, Vec<&Action>) =
            plan.actions.iter().partition(|a| matches!(a, Action::ResizePod(_)));
        let others = Plan { actions: rest.into_iter().cloned().collect(), ..plan.clone() };
        for a in &others.actions {
            if let Action::ScaleUp(s) = a {
                for _ in s.expected_desired..s.new_desired {
                    self.boots.push((self.w.now + SignedDuration::from_secs(120), s.group.clone()));
                }
            }
        }
        self.w.apply(&others);
        self.w.heat_done();
        for a in resizes {
            let Action::ResizePod(r) = a else { continue };
            self.request_resize(r);
        }
    }

    /// The spec takes the new requests; the kubelet applies them if they fit.
    fn request_resize(&mut self, r: &ResizePod) {
        let now = self.w.now;
        let Some(pod) = self.w.snap.pods.iter_mut().find(|p| p.uid == r.uid) else { return };
        let c = &mut pod.containers[0];
        c.requests.cpu_milli = r.containers[0].requests.cpu_milli;
        let held = c.requests.cpu_milli.max(c.allocated.as_ref().map_or(0, |a| a.cpu_milli));
        pod.requests.cpu_milli = held;
        pod.resize = ResizeState::Deferred { since: now, message: "Node didn't have enough capacity".into() };
    }

    fn react(&mut self) {
        let now = self.w.now;
        // Minions whose boot is done join.
        let (due, later): (Vec<_>, Vec<_>) = self.boots.drain(..).partition(|(t, _)| *t <= now);
        self.boots = later;
        for (_, group) in due {
            let name = format!("m{}", self.names);
            self.names += 1;
            let node = self.w.minion(&group, &name);
            node.created = now;
            let g = self.w.group_mut(&group);
            g.desired -= 1; // the scale-up already counted it
            g.members.last_mut().unwrap().created = Some(now);
        }
        // Evicted pods go; their ReplicaSet replaces them from the template.
        let evicted: Vec<String> = self
            .w
            .snap
            .pods
            .iter()
            .filter(|p| p.deletion.is_some())
            .map(|p| p.labels.get("app").cloned().unwrap_or_default())
            .collect();
        self.w.terminate();
        for app in evicted {
            self.replica(&app, None);
        }
        // The kubelet applies deferred resizes that fit now.
        for i in 0..self.w.snap.pods.len() {
            let p = &self.w.snap.pods[i];
            if !matches!(p.resize, ResizeState::Deferred { .. }) {
                continue;
            }
            let node = p.node_name.clone().unwrap();
            if self.requested(&node) <= self.allocatable(&node) {
                let p = &mut self.w.snap.pods[i];
                let spec = p.containers[0].requests.clone();
                p.containers[0].allocated = Some(spec);
                p.resize = ResizeState::None;
            }
        }
        // The scheduler: least allocated first, among Ready schedulable nodes.
        for i in 0..self.w.snap.pods.len() {
            if self.w.snap.pods[i].node_name.is_some() {
                continue;
            }
            let need = self.w.snap.pods[i].requests.cpu_milli;
            let ready: Vec<String> = self
                .w
                .snap
                .nodes
                .iter()
                .filter(|n| n.ready && !n.unschedulable && n.taints.is_empty())
                .map(|n| n.name.clone())
                .collect();
            let best = ready
                .into_iter()
                .filter(|n| self.requested(n) + need <= self.allocatable(n))
                .min_by_key(|n| (self.requested(n), n.clone()));
            let p = &mut self.w.snap.pods[i];
            match best {
                Some(node) => {
                    p.node_name = Some(node);
                    p.phase = PodPhase::Running;
                    p.unschedulable_since = None;
                    let c = &mut p.containers[0];
                    c.allocated = Some(c.requests.clone());
                }
                None => {
                    p.unschedulable_since.get_or_insert(now);
                }
            }
        }
    }

    fn minions(&self) -> usize {
        self.w.snap.groups[0].members.iter().filter(|m| m.status == MemberStatus::Complete).count()
    }
}

/// Issue 17, first bullet: in 6 hours of 10 s passes the replay saw 28
/// scale-ups, 29 removals, 30 recreations and one resize, in a 12-minute
/// cycle. Without an admission controller web is never evicted to move (it
/// would come back at 1000m); its growth is asked in place and deferred by
/// the kubelet, and nothing else happens: no scale-up, no removal.
#[test]
fn the_web_other_fight_loop_of_issue_17_does_not_happen() {
    let mut c = Cluster::issue_17();
    for _ in 0..6 * 360 {
        c.pass();
    }
    let count = |kind: &str| c.counts.get(kind).copied().unwrap_or(0);
    assert_eq!(
        (count("scale-up"), count("start-removal"), count("recreate-pod")),
        (0, 0, 0),
        "actions planned in 6 h: {:?}",
        c.counts
    );
    assert!(count("resize-pod") <= 2, "each web replica asked once, then deferred: {:?}", c.counts);
    assert_eq!(c.minions(), 2);
}

/// The same with the admission controller declared: web moves to where
/// 3000m fits and comes back at 3000m there. It settles within the first
/// hour: one scale-up, each replica moved once, one consolidation — and no
/// action at all in the five hours after.
#[test]
fn with_an_admission_controller_the_web_other_case_settles() {
    let mut c = Cluster::issue_17();
    c.w.snap.admission_applies_recommendations = true;
    c.w.snap.vertical[0].min_replicas = Some(1);
    for _ in 0..6 * 360 {
        c.pass();
    }
    let total = c.timeline.iter().fold((0, 0, 0), |a, t| (a.0 + t.0, a.1 + t.1, a.2 + t.2));
    let late = c.timeline[360..].iter().fold((0, 0, 0), |a, t| (a.0 + t.0, a.1 + t.1, a.2 + t.2));
    assert_eq!(late, (0, 0, 0), "still acting after the first hour: {:?}", c.counts);
    assert!(total.2 <= 2, "each replica moved at most once: {:?}", c.counts);
    // Both replicas grew in the same pass: two minions came (3000m + 3000m
    // do not share one), then the two `other` replicas shared a node and
    // the one left empty went — once. Three minions hold it all.
    assert_eq!((total.0, total.1), (1, 1), "{:?}", c.counts);
    assert_eq!(c.minions(), 3, "{:?}", c.counts);
    let web: Vec<i64> =
        c.w.snap
            .pods
            .iter()
            .filter(|p| p.workload.is_some())
            .map(|p| p.containers[0].allocated.as_ref().map_or(0, |a| a.cpu_milli))
            .collect();
    assert_eq!(web, vec![3000, 3000], "both replicas run at their recommendation: {:?}", c.counts);
}
