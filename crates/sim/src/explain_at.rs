//! `simulate --explain-at`: heatscaler's own explanation of the decision
//! passes at chosen instants of a run — what `heatscaler explain` prints for
//! a live cluster, for the simulated one. Why a minion stays is a question
//! about one pass (the scale-down stage's verdict for each node: under or
//! over the threshold, which pod fits no other node, what holds an unneeded
//! one), and a run's totals cannot answer it.
//!
//! The explanation is the planner's own (`planner::explain`), taken from the
//! pass the run made, with its memory (timers, cool-downs) as it was — not a
//! second planning of a copied snapshot. Beside it, each node's requests
//! against its allocatable as the scheduler counts them, so a verdict can be
//! read against the room there is.

use std::fmt;
use std::time::Duration;

use heatscaler_core::model::Resources;
use heatscaler_core::planner::Action;
use heatscaler_core::planner::explain::Explanation;

use crate::autoscaler::PassObserver;
use crate::world::World;

/// Collects the first pass at or after each asked instant (time since the
/// run's start).
pub(crate) struct ExplainAt {
    /// Ascending.
    wanted: Vec<Duration>,
    next: usize,
    passes: Vec<ExplainedPass>,
}

impl ExplainAt {
    pub(crate) fn new(at: &[Duration]) -> Self {
        let mut wanted = at.to_vec();
        wanted.sort();
        wanted.dedup();
        Self { wanted, next: 0, passes: Vec::new() }
    }

    pub(crate) fn into_passes(self) -> Vec<ExplainedPass> {
        self.passes
    }
}

impl PassObserver for ExplainAt {
    fn pass(&mut self, _: &World<'_>, _: &[Action]) {}

    fn explained(&mut self, world: &World<'_>, explanation: &Explanation, actions: &[Action]) {
        let since_start = world.now().duration_since(world.epoch()).unsigned_abs();
        if self.wanted.get(self.next).is_none_or(|&t| since_start < t) {
            return;
        }
        let mut asked = Vec::new();
        while let Some(&t) = self.wanted.get(self.next).filter(|&&t| t <= since_start) {
            asked.push(t);
            self.next += 1;
        }
        self.passes.push(ExplainedPass {
            asked,
            at: since_start,
            nodes: loads(world),
            explanation: explanation.clone(),
            actions: actions.iter().map(ToString::to_string).collect(),
        });
    }

    fn finished(&mut self, _: &World<'_>) {}
}

/// Each node's pods and requests, as the scheduler counts them.
fn loads(world: &World<'_>) -> Vec<NodeLoad> {
    let snap = &world.cluster.snap;
    let mut nodes: Vec<NodeLoad> = snap
        .nodes
        .iter()
        .map(|n| NodeLoad {
            node: n.name.clone(),
            allocatable: n.allocatable.clone(),
            requested: Resources::default(),
            from_templates: Resources::default(),
            pods: 0,
        })
        .collect();
    for pod in snap.pods.iter().filter(|p| !p.is_terminal()) {
        let Some(on) = pod.node_name.as_deref() else { continue };
        if let Some(load) = nodes.iter_mut().find(|l| l.node == on) {
            load.requested.cpu_milli += pod.requests.cpu_milli;
            load.requested.memory += pod.requests.memory;
            let template = pod.owner.as_ref().and_then(|o| snap.templates.get(o.uid.as_str()));
            let created = template.map_or(&pod.requests, |t| &t.requests);
            load.from_templates.cpu_milli += created.cpu_milli;
            load.from_templates.memory += created.memory;
            load.pods += 1;
        }
    }
    nodes
}

/// One explained pass.
#[derive(Clone, Debug)]
pub struct ExplainedPass {
    /// The instants asked for that this pass is the first at or after.
    pub asked: Vec<Duration>,
    /// When it ran, since the run's start.
    pub at: Duration,
    pub nodes: Vec<NodeLoad>,
    pub explanation: Explanation,
    /// The pass's actions, as `heatscaler explain` words them.
    pub actions: Vec<String>,
}

/// A node's bound pods and what they request, against its allocatable.
#[derive(Clone, Debug)]
pub struct NodeLoad {
    pub node: String,
    pub allocatable: Resources,
    pub requested: Resources,
    /// The same pods as their controllers' templates create them (as they
    /// run where no template is known): what a drain's replacements ask of
    /// the scheduler when no admission controller rewrites them.
    pub from_templates: Resources,
    pub pods: usize,
}

/// `1h12m3s`, `45s` (whole seconds), as the timelines write times.
fn clock(d: Duration) -> String {
    let s = d.as_secs();
    let (h, m, s) = (s / 3600, s / 60 % 60, s % 60);
    match (h, m) {
        (0, 0) => format!("{s}s"),
        (0, _) => format!("{m}m{s}s"),
        _ => format!("{h}h{m}m{s}s"),
    }
}

impl fmt::Display for ExplainedPass {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let asked: Vec<String> = self.asked.iter().map(|&t| clock(t)).collect();
        writeln!(f, "pass at {} (the first at or after {})", clock(self.at), asked.join(", "))?;
        for n in &self.nodes {
            let share = |want: i64, have: i64| if have > 0 { 100.0 * want as f64 / have as f64 } else { 0.0 };
            let gib = |b: i64| b as f64 / f64::from(1u32 << 30);
            writeln!(
                f,
                "  node {}: {} pod(s), cpu {}m of {}m ({:.0}%), memory {:.1} of {:.1} GiB ({:.0}%); \
                 from their templates cpu {}m, memory {:.1} GiB",
                n.node,
                n.pods,
                n.requested.cpu_milli,
                n.allocatable.cpu_milli,
                share(n.requested.cpu_milli, n.allocatable.cpu_milli),
                gib(n.requested.memory),
                gib(n.allocatable.memory),
                share(n.requested.memory, n.allocatable.memory),
                n.from_templates.cpu_milli,
                gib(n.from_templates.memory),
            )?;
        }
        for line in self.explanation.to_string().lines() {
            writeln!(f, "  {line}")?;
        }
        if self.actions.is_empty() {
            writeln!(f, "  no action")?;
        }
        for a in &self.actions {
            writeln!(f, "  action: {a}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use heatscaler_core::planner::explain::{Hold, NodeStatus};

    use crate::autoscaler::PolicyKind;
    use crate::engine::{run_explained, run_policy};
    use crate::scenario::Scenario;

    /// Two minions, one pod: the other minion is unneeded, waits out
    /// `unneeded-time` (10 min) and goes.
    const ONE_POD_TWO_MINIONS: &str = r#"
name: test
seed: 3
duration: 30m
sample-interval: 10s
provisioning: {heat-update: 20s, boot: 60s, pod-termination: 2s}
node-groups:
  - name: g
    min-size: 1
    max-size: 4
    initial-size: 2
    shape: {allocatable: {cpu: "2", memory: 8Gi}}
workloads:
  - name: web
    pod: {containers: [{name: web, requests: {cpu: "1", memory: 1Gi}}]}
    replicas: {steps: [{at: 0s, value: 1}]}
"#;

    #[test]
    fn the_passes_asked_for_are_explained_with_each_nodes_scale_down_verdict() {
        let sc = Scenario::parse(ONE_POD_TWO_MINIONS, "test.yaml").unwrap_or_else(|e| panic!("{e}"));
        let min = |m: u64| Duration::from_secs(60 * m);
        // Out of order, one twice, one after the run's end.
        let (run, passes) =
            run_explained(&sc, PolicyKind::HeatscalerNoWebhook, &[min(5), min(1), min(5), min(25), min(90)]).unwrap();
        let asked: Vec<&[Duration]> = passes.iter().map(|p| p.asked.as_slice()).collect();
        assert_eq!(asked, [&[min(1)][..], &[min(5)], &[min(25)]], "{passes:#?}");
        for p in &passes {
            assert!(p.at >= p.asked[0] && p.at < p.asked[0] + min(1), "the first pass at or after: {p:#?}");
        }

        // At 5 minutes: the empty minion is unneeded, held by its timer; the
        // other one is not removable, and both say so.
        let five = &passes[1];
        assert_eq!(five.nodes.len(), 2, "{five}");
        let (busy, idle): (Vec<_>, Vec<_>) = five.nodes.iter().partition(|n| n.pods > 0);
        assert_eq!((busy.len(), idle.len()), (1, 1), "{five}");
        assert_eq!(busy[0].requested.cpu_milli, 1000);
        assert_eq!(busy[0].from_templates.memory, 1 << 30, "the pod runs as its template made it");
        assert!(
            matches!(
                five.explanation.node(&idle[0].node),
                Some(NodeStatus::Unneeded { held: Some(Hold::UnneededTime), .. })
            ),
            "{five}"
        );
        assert!(five.explanation.node(&busy[0].node).is_some(), "{five}");
        let text = five.to_string();
        assert!(text.starts_with("pass at 5m"), "{text}");
        assert!(text.contains(&format!("node {} (g): unneeded since", idle[0].node)), "{text}");
        assert!(text.contains("cpu 1000m of 2000m (50%)"), "{text}");

        // By 25 minutes it is gone: one minion left.
        assert_eq!(passes[2].nodes.len(), 1, "{}", passes[2]);

        // Watching does not change the run.
        let plain = run_policy(&sc, PolicyKind::HeatscalerNoWebhook).unwrap();
        assert_eq!(run.node_level.node_hours, plain.node_level.node_hours);
        assert_eq!(run.node_level.nodes_removed, 1);

        // A peer explains nothing.
        let (_, peer) = run_explained(&sc, PolicyKind::CaDefaults, &[min(5)]).unwrap();
        assert!(peer.is_empty());
    }
}
