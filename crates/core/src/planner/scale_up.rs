//! Scale-up: which pending pods need new minions, and of which group.
//!
//! A pending pod is checked, in order, against: existing nodes (the scheduler
//! may simply not have caught up), existing nodes once the pods terminating
//! there are gone (a recreated pod's replacement waits for its predecessor's
//! room), capacity already on its way (booting
//! minions and Heat members without a node yet), drained nodes in cooldown
//! (taking one back beats booting one), and only then new minions of each
//! group, bin-packed first-fit decreasing onto the group's template. An
//! expander picks among groups; each group gets at most one request per pass.

use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet};
use std::rc::Rc;

use crate::model::{Pod, Resources, Taint};

use super::action::ScaleUp;
use super::balance;
use super::expander;
use super::explain::{Alert, Explanation, GroupRejection, GroupVerdict, Note, OptionScore, PodExplanation, PodOutcome};
use super::index::{GroupIx, NodeIx, Table};
use super::limits::{Headroom, capacity};
use super::protocol::{CA_REMOVAL_TAINT, Phase, REMOVAL_TAINT, RemovalState, UNSCHEDULABLE_TAINT};
use super::provisioning::GroupView;
use super::resize::{Relief, ScaleUpInput, cpu_memory};
use super::scheduling::{Placer, SchedNode, check_among, preference};
use super::time::after;
use super::{Cx, Pass};

/// Taints a node carries while it starts; capacity on its way is judged without them.
const STARTUP_TAINTS: [&str; 3] = [
    "node.kubernetes.io/not-ready",
    "node.kubernetes.io/unreachable",
    "node.cloudprovider.kubernetes.io/uninitialized",
];

#[derive(Debug, Default)]
pub struct ScaleUpOutcome<'a> {
    pub actions: Vec<ScaleUp>,
    /// Pending pods that fit an existing node, as it is or once pods there
    /// shrink: the scheduler will place them, so scale-down must count them
    /// there.
    pub will_schedule: Vec<(NodeIx, &'a Pod)>,
    /// Drained nodes taken back for pending pods → how many pods they host.
    pub reclaimed: BTreeMap<NodeIx, usize>,
    /// Groups asked to grow this pass.
    pub scaled: BTreeSet<GroupIx>,
    /// Nodes where pending pods fit once over-requested pods shrink → how
    /// many pending pods they take.
    pub relief: BTreeMap<NodeIx, usize>,
}

/// Reads the groups of `pass` (provisioning); `resize`: capacity shrinking
/// pods frees, and resized pods that fit no node (they are tried like pending
/// pods, after them).
pub fn plan<'a>(cx: &Cx<'a>, pass: &mut Pass<'a>, resize: &ScaleUpInput<'a>) -> ScaleUpOutcome<'a> {
    let mut out = ScaleUpOutcome::default();
    let ex = &mut pass.ex;
    let mut pending = pods_to_consider(cx, ex);
    pending.extend(resize.demand.iter().copied());
    if pending.is_empty() {
        return out;
    }

    // Existing nodes the scheduler may not have tried yet.
    let ready: Vec<NodeIx> = cx.ix.nodes().filter(|&i| cx.ix.node(i).ready).collect();
    let mut existing = Placer::new(ready.iter().map(|&i| cx.ix.sched_node(i)).collect()).whole_cluster();
    let mut rest = Vec::new();
    for pod in pending {
        match existing.find(pod, None) {
            Some(i) => {
                existing.place(pod, i);
                out.will_schedule.push((ready[i], pod));
                let node = existing.nodes()[i].name.to_string();
                ex.pods.push(PodExplanation { pod: pod.key(), outcome: PodOutcome::FitsExistingNode { node } });
            }
            None => rest.push(pod),
        }
    }

    // The existing nodes, with the pending pods about to land there, as the
    // rest of the cluster for every other placement: affinity, anti-affinity
    // and spread over zones (and preferences) look at the pods of a whole
    // domain. Without such terms it stays empty and nothing pays for it.
    let context = Rc::new(if cx.ix.wide_topology() { existing.nodes().to_vec() } else { Vec::new() });
    let rest = place_once_terminated(cx, &ready, &existing, rest, &context, &mut out, ex);
    let rest = place_after_resize(cx, &resize.relief, rest, &context, &mut out, ex);
    let templates: Table<GroupIx, Option<SchedNode<'_>>> = cx.ix.groups().map(|(g, _)| template(cx, g, 0)).collect();
    let rest = place_on_upcoming(cx, &pass.groups, &templates, rest, &context, ex);
    let rest = reclaim_drained(cx, rest, &context, &mut out, ex);
    if rest.is_empty() {
        return out;
    }
    if pass.halt.is_some() {
        // Said once for the pass by scale-down's halt (planner::health).
        for pod in rest {
            ex.pods.push(PodExplanation { pod: pod.key(), outcome: PodOutcome::AutoscalingHalted });
        }
        return out;
    }
    if !cx.policy.scale_up.enabled {
        ex.notes.push(Note::ScaleUpDisabled);
        for pod in rest {
            ex.pods.push(PodExplanation { pod: pod.key(), outcome: PodOutcome::ScaleUpDisabled });
        }
        return out;
    }
    grow(cx, pass, &templates, rest, &context, &mut existing, &mut out);
    out
}

/// Unschedulable pods old enough and not about to be placed by preemption.
fn pods_to_consider<'a>(cx: &Cx<'a>, ex: &mut Explanation) -> Vec<&'a Pod> {
    let mut pending = Vec::new();
    for &pod in &cx.ix.unbound {
        if !pod.is_unschedulable() {
            continue;
        }
        let until = after(pod.created, cx.policy.scale_up.new_pod_scale_up_delay);
        if cx.now < until {
            ex.pods.push(PodExplanation { pod: pod.key(), outcome: PodOutcome::TooYoung { until } });
        } else if let Some(node) = &pod.nominated_node {
            ex.pods.push(PodExplanation { pod: pod.key(), outcome: PodOutcome::Nominated { node: node.clone() } });
        } else {
            pending.push(pod);
        }
    }
    pending.sort_by(|a, b| {
        b.priority
            .cmp(&a.priority)
            .then(a.created.cmp(&b.created))
            .then_with(|| (&a.namespace, &a.name).cmp(&(&b.namespace, &b.name)))
    });
    pending
}

/// A new minion of group `g`, with the DaemonSet pods it would run.
pub fn template<'a>(cx: &Cx<'a>, g: GroupIx, n: usize) -> Option<SchedNode<'a>> {
    let group = cx.ix.group(g);
    let shape = group.template.as_ref()?;
    Some(SchedNode::new_minion(format!("template-{}-{n}", group.name), shape, &cx.ix.daemonsets))
}

fn place_on_upcoming<'a>(
    cx: &Cx<'a>,
    views: &Table<GroupIx, GroupView>,
    templates: &Table<GroupIx, Option<SchedNode<'a>>>,
    pods: Vec<&'a Pod>,
    context: &Rc<Vec<SchedNode<'a>>>,
    ex: &mut Explanation,
) -> Vec<&'a Pod> {
    let mut nodes = Vec::new();
    let mut owner = Vec::new();
    for (g, view) in views.iter() {
        for &i in &view.starting_nodes {
            let mut node = cx.ix.sched_node(i);
            node.taints =
                Cow::Owned(node.taints.iter().filter(|t| !STARTUP_TAINTS.contains(&t.key.as_str())).cloned().collect());
            nodes.push(node);
            owner.push(g);
        }
        if let Some(t) = &templates[g] {
            for n in 0..view.unregistered {
                let mut node = t.clone();
                node.name = Cow::Owned(format!("upcoming-{}-{n}", cx.ix.group(g).name));
                nodes.push(node);
                owner.push(g);
            }
        }
    }
    if nodes.is_empty() {
        return pods;
    }
    let mut upcoming = Placer::new(nodes).with_context(context.clone());
    let mut rest = Vec::new();
    for pod in pods {
        match upcoming.find(pod, None) {
            Some(i) => {
                upcoming.place(pod, i);
                let group = cx.ix.group(owner[i]).name.clone();
                ex.pods.push(PodExplanation { pod: pod.key(), outcome: PodOutcome::FitsUpcomingNode { group } });
            }
            None => rest.push(pod),
        }
    }
    rest
}

/// Whether a terminating pod still counts as leaving: within its grace
/// period plus `max-graceful-termination` (the model's `deletion` is the
/// deletionTimestamp, which the API server sets to the end of the grace
/// period; the margin also covers a deletion stamped when it started). Past
/// that the pod is stuck, and its room is not coming back.
fn leaving(cx: &Cx<'_>, pod: &Pod) -> bool {
    pod.deletion.is_some_and(|at| cx.now < after(at, cx.policy.scale_down.max_graceful_termination))
}

/// Existing nodes as they will be once the pods terminating there are gone:
/// kube-scheduler counts a terminating pod's requests until its kubelet
/// confirms it gone, so a replacement of it stays pending meanwhile — yet a
/// minion booted for it would be left empty when the room frees first (the
/// boot takes minutes; a grace period, seconds). Only Ready nodes the
/// scheduler may use (not cordoned, no removal taint — the placer's filters)
/// count, and only pods still [`leaving`]. `existing` holds the pending pods
/// already placed this pass.
fn place_once_terminated<'a>(
    cx: &Cx<'a>,
    ready: &[NodeIx],
    existing: &Placer<'a>,
    pods: Vec<&'a Pod>,
    context: &Rc<Vec<SchedNode<'a>>>,
    out: &mut ScaleUpOutcome<'a>,
    ex: &mut Explanation,
) -> Vec<&'a Pod> {
    if pods.is_empty() {
        return pods;
    }
    let mut index = Vec::new();
    let mut nodes = Vec::new();
    let mut terminating = Vec::new();
    for (k, &i) in ready.iter().enumerate() {
        let gone: Vec<&Pod> = cx.ix.pods_on(i).iter().copied().filter(|p| leaving(cx, p)).collect();
        if gone.is_empty() {
            continue;
        }
        let mut node = existing.nodes()[k].clone();
        for pod in &gone {
            node.requested -= &pod.requests;
        }
        node.pods.retain(|p| !gone.iter().any(|g| std::ptr::eq(*g, *p)));
        index.push(i);
        nodes.push(node);
        terminating.push(gone.len());
    }
    if nodes.is_empty() {
        return pods;
    }
    let mut placer = Placer::new(nodes).with_context(context.clone());
    let mut rest = Vec::new();
    for pod in pods {
        match placer.find(pod, None) {
            Some(k) => {
                placer.place(pod, k);
                out.will_schedule.push((index[k], pod));
                let node = cx.ix.node(index[k]).name.clone();
                let outcome = PodOutcome::FitsOnceTerminated { node, terminating: terminating[k] };
                ex.pods.push(PodExplanation { pod: pod.key(), outcome });
            }
            None => rest.push(pod),
        }
    }
    rest
}

/// Existing nodes as they will be once over-requested pods there shrink in
/// place: resizing pods beats booting a minion (and is faster). Every shrink
/// counted on a node that takes a pending pod is issued this pass.
fn place_after_resize<'a>(
    cx: &Cx<'a>,
    relief: &[Relief],
    pods: Vec<&'a Pod>,
    context: &Rc<Vec<SchedNode<'a>>>,
    out: &mut ScaleUpOutcome<'a>,
    ex: &mut Explanation,
) -> Vec<&'a Pod> {
    let mut freed: BTreeMap<NodeIx, (Resources, usize)> = BTreeMap::new();
    for r in relief.iter().filter(|r| cx.ix.node(r.node).ready) {
        let entry = freed.entry(r.node).or_default();
        entry.0 += &r.freed;
        entry.1 += 1;
    }
    if freed.is_empty() || pods.is_empty() {
        return pods;
    }
    let index: Vec<NodeIx> = freed.keys().copied().collect();
    let nodes = index
        .iter()
        .map(|&i| {
            let mut node = cx.ix.sched_node(i);
            node.requested -= &freed[&i].0;
            node
        })
        .collect();
    let mut placer = Placer::new(nodes).with_context(context.clone());
    let mut rest = Vec::new();
    let mut placed = 0;
    for pod in pods {
        match placer.find(pod, None) {
            Some(k) => {
                placer.place(pod, k);
                placed += 1;
                *out.relief.entry(index[k]).or_insert(0) += 1;
                out.will_schedule.push((index[k], pod));
                let node = cx.ix.node(index[k]).name.clone();
                let resized = freed[&index[k]].1;
                ex.pods.push(PodExplanation { pod: pod.key(), outcome: PodOutcome::FitsAfterResize { node, resized } });
            }
            None => rest.push(pod),
        }
    }
    if placed > 0 {
        let mut total = Resources::default();
        let mut resized = 0;
        for node in out.relief.keys() {
            total += &freed[node].0;
            resized += freed[node].1;
        }
        ex.notes.push(Note::ScaleUpAvoided { pods: placed, resized, freed: cpu_memory(&total) });
    }
    rest
}

/// Drained nodes in cooldown (not yet handed to Heat) that pending pods fit,
/// as they would be once uncordoned and untainted.
fn reclaim_drained<'a>(
    cx: &Cx<'a>,
    pods: Vec<&'a Pod>,
    context: &Rc<Vec<SchedNode<'a>>>,
    out: &mut ScaleUpOutcome<'a>,
    ex: &mut Explanation,
) -> Vec<&'a Pod> {
    let mut nodes = Vec::new();
    let mut index = Vec::new();
    for (i, state) in cx.ix.removals() {
        let RemovalState::Active(record) = state else { continue };
        if record.phase != Phase::Drained || !cx.ix.node(i).ready {
            continue;
        }
        let mut node = cx.ix.sched_node(i);
        // As the rollback leaves it: both removal taints (ours and cluster-autoscaler's)
        // gone and, when it uncordons, the control plane's `node.kubernetes.io/unschedulable`
        // taint with the cordon.
        let restored = |t: &&Taint| {
            t.key != REMOVAL_TAINT
                && t.key != CA_REMOVAL_TAINT
                && (record.cordoned_before || t.key != UNSCHEDULABLE_TAINT)
        };
        node.taints = Cow::Owned(node.taints.iter().filter(restored).cloned().collect());
        node.unschedulable = record.cordoned_before;
        nodes.push(node);
        index.push(i);
    }
    if nodes.is_empty() || pods.is_empty() {
        return pods;
    }
    let mut drained = Placer::new(nodes).with_context(context.clone());
    let mut rest = Vec::new();
    for pod in pods {
        match drained.find(pod, None) {
            Some(k) => {
                drained.place(pod, k);
                *out.reclaimed.entry(index[k]).or_insert(0) += 1;
                let node = cx.ix.node(index[k]).name.clone();
                ex.pods.push(PodExplanation { pod: pod.key(), outcome: PodOutcome::ReclaimsNode { node } });
            }
            None => rest.push(pod),
        }
    }
    rest
}

/// First-fit decreasing of `pods` onto at most `cap` new minions of a group,
/// among the existing nodes `context` (a zone-affine pod fits only a group
/// whose template is in the right zone). Returns the minions opened, the pods
/// placed (indices into `pods`) and the waste.
fn binpack<'a>(
    pods: &[&'a Pod],
    template: &SchedNode<'a>,
    cap: u32,
    context: &Rc<Vec<SchedNode<'a>>>,
) -> (u32, Vec<usize>, f64) {
    let alloc = &template.allocatable;
    // Dominant share of the template, GPUs and other extended resources included.
    let share = |p: &Pod| {
        let f = |req: i64, have: i64| if have > 0 { req as f64 / have as f64 } else { 0.0 };
        let extended = p.requests.extended.iter().map(|(k, &v)| f(v, alloc.extended.get(k).copied().unwrap_or(0)));
        extended.fold(f(p.requests.cpu_milli, alloc.cpu_milli).max(f(p.requests.memory, alloc.memory)), f64::max)
    };
    let mut order: Vec<usize> = (0..pods.len()).filter(|&i| check_among(pods[i], template, context).is_ok()).collect();
    order.sort_by(|&a, &b| share(pods[b]).total_cmp(&share(pods[a])));
    let mut placer = Placer::new(Vec::new()).with_context(context.clone());
    let mut placed = Vec::new();
    for i in order {
        let pod = pods[i];
        let slot = match placer.find(pod, None) {
            Some(slot) => Some(slot),
            None if (placer.nodes().len() as u32) < cap => Some(placer.push(template.clone())),
            None => None,
        };
        if let Some(slot) = slot {
            placer.place(pod, slot);
            placed.push(i);
        }
    }
    let n = placer.nodes().len() as u32;
    let mut used = Resources::default();
    for node in placer.nodes() {
        used += &node.requested;
    }
    let unused =
        |used: i64, each: i64| if each > 0 { 1.0 - used as f64 / (each as f64 * f64::from(n.max(1))) } else { 0.0 };
    // Idle GPUs are waste as much as idle cores: every resource the template offers counts.
    let mut shares = vec![unused(used.cpu_milli, alloc.cpu_milli), unused(used.memory, alloc.memory)];
    for (name, &each) in alloc.extended.iter().filter(|(_, each)| **each > 0) {
        shares.push(unused(used.extended.get(name).copied().unwrap_or(0), each));
    }
    let waste = shares.iter().sum::<f64>() / shares.len() as f64;
    (n, placed, waste)
}

/// New minions for the pods nothing else takes: per round, every group that
/// can grow bin-packs them, the expander picks one, until none helps.
fn grow<'a>(
    cx: &Cx<'a>,
    pass: &mut Pass<'a>,
    templates: &Table<GroupIx, Option<SchedNode<'a>>>,
    mut pods: Vec<&'a Pod>,
    context: &Rc<Vec<SchedNode<'a>>>,
    existing: &mut Placer<'a>,
    out: &mut ScaleUpOutcome<'a>,
) {
    let mut headroom = Headroom::new(cx, pass);
    let mut last_limit: Table<GroupIx, Option<GroupRejection>> = Table::filled(None, cx.ix.group_count());
    loop {
        let mut options: Vec<(GroupIx, OptionScore, Vec<usize>)> = Vec::new();
        for (g, group) in cx.ix.groups() {
            if out.scaled.contains(&g) {
                continue;
            }
            let (cap, why) = match capacity(cx, pass, g, &headroom) {
                Ok(c) => c,
                Err(why) => {
                    last_limit[g] = Some(why);
                    continue;
                }
            };
            last_limit[g] = Some(why);
            let Some(template) = &templates[g] else { continue };
            let (n, placed, waste) = binpack(&pods, template, cap, context);
            if placed.is_empty() {
                continue;
            }
            // How much the pods placed prefer this group's minions (preferred
            // terms, ScheduleAnyway spread): only the most preferred options
            // go to the expander.
            let preferred = placed.iter().map(|&i| preference(pods[i], template, context)).sum();
            let score = OptionScore {
                group: group.name.clone(),
                new_nodes: n,
                pods: placed.len(),
                waste,
                priority: group.priority,
                price_per_hour: group.price_per_hour,
                chosen: false,
                preference: preferred,
            };
            options.push((g, score, placed));
        }
        if options.is_empty() {
            break;
        }
        // The expander chooses among the options the pods prefer most (all
        // of them when no pod has preferences); every option is explained.
        let best = options.iter().map(|(_, s, _)| s.preference).max().unwrap_or(0);
        let preferred: Vec<usize> = (0..options.len()).filter(|&k| options[k].1.preference == best).collect();
        let scores: Vec<OptionScore> = preferred.iter().map(|&k| options[k].1.clone()).collect();
        let pick = preferred[expander::choose(cx.policy.scale_up.expander, &scores, cx.policy.seed, cx.now)];
        for (k, (g, score, _)) in options.iter().enumerate() {
            let mut score = score.clone();
            score.chosen = k == pick;
            if let Some(e) = pass.ex.groups.iter_mut().find(|e| e.group == cx.ix.group(*g).name) {
                e.options.retain(|o| o.group != score.group);
                e.options.push(score);
            }
        }
        let (g, score, placed) = options.swap_remove(pick);
        let group = cx.ix.group(g);
        let placed: BTreeSet<usize> = placed.into_iter().collect();
        let mut helped = Vec::new();
        let mut keep = Vec::new();
        for (i, pod) in pods.into_iter().enumerate() {
            if placed.contains(&i) { helped.push(pod) } else { keep.push(pod) }
        }
        pods = keep;
        for pod in &helped {
            pass.ex.pods.push(PodExplanation {
                pod: pod.key(),
                outcome: PodOutcome::TriggersScaleUp { group: group.name.clone() },
            });
        }
        let growth = balanced(cx, pass, templates, context, &headroom, &out.scaled, g, score.new_nodes, &helped);
        for (h, n) in growth {
            let group = cx.ix.group(h);
            if let Some(shape) = &group.template {
                headroom.consume(n, &shape.allocatable);
            }
            out.scaled.insert(h);
            out.actions.push(ScaleUp {
                group: group.name.clone(),
                expected_desired: group.desired,
                new_desired: group.desired + n,
                pods: helped.iter().take(cx.policy.tuning.pods_named_per_reason).map(|p| p.key()).collect(),
                pod_count: helped.len(),
                expander: cx.policy.scale_up.expander,
            });
        }
        if pods.is_empty() {
            break;
        }
    }
    explain_unhelped(cx, templates, context, &last_limit, pods, existing, &mut pass.ex);
}

/// The minions each group gets when the expander chose `new_nodes` of group
/// `g` for `pods`: all of them to `g`, or with `balance-similar-node-groups`
/// split across `g` and the groups similar to it (planner::balance), the
/// smallest first. The chosen group comes first, so it wins ties.
#[allow(clippy::too_many_arguments)]
fn balanced<'a>(
    cx: &Cx<'a>,
    pass: &mut Pass<'a>,
    templates: &Table<GroupIx, Option<SchedNode<'a>>>,
    context: &[SchedNode<'a>],
    headroom: &Headroom,
    scaled: &BTreeSet<GroupIx>,
    g: GroupIx,
    new_nodes: u32,
    pods: &[&'a Pod],
) -> Vec<(GroupIx, u32)> {
    let up = &cx.policy.scale_up;
    let Some(chosen) = templates[g].as_ref().filter(|_| up.balance_similar_node_groups) else {
        return vec![(g, new_nodes)];
    };
    let others = cx
        .ix
        .groups()
        .filter(|(h, _)| *h != g && !scaled.contains(h))
        .filter_map(|(h, _)| templates[h].as_ref().map(|t| (h, t)));
    let mut pool = vec![(g, new_nodes)];
    for h in balance::similar_groups(chosen, others, pods, &up.balancing_ignore_labels, context) {
        if let Ok((cap, _)) = capacity(cx, pass, h, headroom) {
            pool.push((h, cap));
        }
    }
    if pool.len() == 1 {
        return pool;
    }
    let sizes: Vec<(u32, u32)> = pool.iter().map(|&(h, cap)| (cx.ix.group(h).desired, cap)).collect();
    let given = balance::split(&sizes, new_nodes);
    let growth: Vec<(GroupIx, u32)> =
        pool.iter().zip(given).filter(|(_, n)| *n > 0).map(|(&(h, _), n)| (h, n)).collect();
    pass.ex.notes.push(Note::ScaleUpBalanced {
        chosen: cx.ix.group(g).name.clone(),
        split: growth.iter().map(|&(h, n)| (cx.ix.group(h).name.clone(), n)).collect(),
    });
    growth
}

fn explain_unhelped<'a>(
    cx: &Cx<'a>,
    templates: &Table<GroupIx, Option<SchedNode<'a>>>,
    context: &[SchedNode<'a>],
    last_limit: &Table<GroupIx, Option<GroupRejection>>,
    pods: Vec<&'a Pod>,
    existing: &mut Placer<'a>,
    ex: &mut Explanation,
) {
    let mut hopeless = 0;
    let mut example = None;
    for pod in pods {
        let scheduler = existing.explain(pod, None).to_string();
        let groups: Vec<GroupVerdict> = cx
            .ix
            .groups()
            .map(|(g, group)| {
                let rejection = match &templates[g] {
                    None => GroupRejection::NoTemplate,
                    Some(t) => match check_among(pod, t, context) {
                        Err(filter) => GroupRejection::DoesNotFit { filter },
                        Ok(()) => last_limit[g].clone().unwrap_or(GroupRejection::MaxSize { max: group.max_size }),
                    },
                };
                GroupVerdict { group: group.name.clone(), rejection }
            })
            .collect();
        if groups.iter().all(|v| v.rejection.is_permanent()) {
            hopeless += 1;
            example.get_or_insert_with(|| {
                let why = groups.iter().map(|v| format!("{}: {}", v.group, v.rejection)).collect::<Vec<_>>().join("; ");
                (pod.key(), if why.is_empty() { "no node groups configured".to_string() } else { why })
            });
        }
        ex.pods.push(PodExplanation { pod: pod.key(), outcome: PodOutcome::NoScaleUp { scheduler, groups } });
    }
    if let Some((example, why)) = example {
        ex.alerts.push(Alert::PodsUnhelpable { pods: hopeless, example, why });
    }
}
