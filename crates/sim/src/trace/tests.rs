//! The Alibaba importers on small excerpts, and an end-to-end replay of a
//! short window through both policies.

use std::io::Write;
use std::path::Path;
use std::time::Duration as StdDuration;

use super::alibaba_gentd26::{self, Containers};
use super::alibaba_openb::{self, GPU_MODEL_LABEL, GpuSharing, PodListReader};
use super::*;
use crate::report::TimelineEvent;
use crate::{PolicyKind, Scenario, compare};
use heatscaler_core::model::{NodeSelectorOperator, TaintEffect};

const HEADER: &str =
    "name,cpu_milli,memory_mib,num_gpu,gpu_milli,gpu_spec,qos,pod_phase,creation_time,deletion_time,scheduled_time\n";

fn file(name: &str, text: &str) -> (tempfile::TempDir, std::path::PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(name);
    std::fs::File::create(&path).unwrap().write_all(text.as_bytes()).unwrap();
    (dir, path)
}

fn rows(path: &Path, from: u64) -> Vec<Row> {
    let mut r = PodListReader::open(path, StdDuration::from_secs(from), GpuSharing::Whole).unwrap();
    std::iter::from_fn(|| r.next_row().unwrap()).collect()
}

/// Problems as `t.csv:line:column: problem`.
fn problems(path: &Path) -> Vec<String> {
    let name = path.display().to_string();
    validate(TraceKind::AlibabaOpenb, path, false).into_iter().map(|e| e.to_string().replace(&name, "t.csv")).collect()
}

#[test]
fn pod_list_columns_become_requests_lifetimes_and_placement() {
    let (_d, path) = file(
        "pods.csv",
        &format!(
            "{HEADER}p-0,12000,16384,1,1000,,LS,Running,0,500,0\n\
             p-1,6000,12288,1,460,V100M16|V100M32,BE,Failed,100,,100\n\
             p-2,88000,327680,0,0,,Burstable,Pending,200,300,\n\
             p-3,4000,1024,8,1000,,Guaranteed,Succeeded,300,300,300\n"
        ),
    );
    let rows = rows(&path, 0);
    let order: Vec<(u64, String, RowKind)> = rows.iter().map(|r| (r.at.as_secs(), r.pod.clone(), r.kind)).collect();
    let s = |t: u64, p: &str, k: RowKind| (t, p.to_string(), k);
    assert_eq!(
        order,
        vec![
            s(0, "p-0", RowKind::Start),
            s(100, "p-1", RowKind::Start),
            s(200, "p-2", RowKind::Start),
            s(300, "p-3", RowKind::Start),
            s(300, "p-2", RowKind::End),
            s(300, "p-3", RowKind::End),
            s(500, "p-0", RowKind::End),
        ],
        "time order; starts before ends at one instant; an empty deletion_time never ends"
    );
    let start = |name: &str| rows.iter().find(|r| r.pod == name && r.kind == RowKind::Start).unwrap();
    assert_eq!(
        start("p-0").amounts,
        vec![("cpu".into(), 12_000), ("memory".into(), 16 << 30), ("nvidia.com/gpu".into(), 1)]
    );
    assert_eq!(start("p-2").amounts, vec![("cpu".into(), 88_000), ("memory".into(), 320 << 30)], "no GPU");
    assert_eq!(start("p-3").amounts[2], ("nvidia.com/gpu".into(), 8));
    // GPU pods tolerate the GPU taint; CPU pods have no placement of their own.
    let gpu = start("p-0").placement.clone().unwrap();
    assert_eq!(gpu.tolerations[0].key.as_deref(), Some("nvidia.com/gpu"));
    assert_eq!(gpu.tolerations[0].effect, Some(TaintEffect::NoSchedule));
    assert!(gpu.required_node_affinity.is_empty());
    assert!(start("p-2").placement.is_none());
    // gpu_spec alternatives: a required node affinity on the model label, In either.
    let spec = start("p-1").placement.clone().unwrap();
    let req = &spec.required_node_affinity[0].match_expressions[0];
    assert_eq!((req.key.as_str(), req.operator), (GPU_MODEL_LABEL, NodeSelectorOperator::In));
    assert_eq!(req.values, vec!["V100M16".to_string(), "V100M32".into()]);
    assert!(std::sync::Arc::ptr_eq(&start("p-0").placement.clone().unwrap(), &start("p-3").placement.clone().unwrap()));

    // From trace time 301: pods gone by then are not read at all.
    let later: Vec<String> = rows_from(&path, 301);
    assert_eq!(later, vec!["p-0 start", "p-1 start", "p-0 end"]);
    assert!(problems(&path).is_empty());
}

fn rows_from(path: &Path, from: u64) -> Vec<String> {
    rows(path, from)
        .into_iter()
        .map(|r| format!("{} {}", r.pod, if r.kind == RowKind::Start { "start" } else { "end" }))
        .collect()
}

#[test]
fn a_malformed_pod_row_names_file_line_and_column() {
    let cases = [
        ("p-0,lots,1024,0,0,,LS,Running,0,10,0\n", "t.csv:2:5: cpu_milli: `lots` is not a whole number ≥ 0"),
        ("p-0,1000,1024,0,0,,LS,Running,0,10\n", "t.csv:2:36: 10 fields, the header has 11"),
        ("p-0,1000,1024,0,0,,XX,Running,0,10,0\n", "t.csv:2:20: qos: `XX` is not one of LS, BE, Burstable, Guaranteed"),
        ("p-0,1000,1024,0,0,,LS,Lost,0,10,0\n", "t.csv:2:23: pod_phase: `Lost` is not one of"),
        ("p-0,1000,1024,1,1500,,LS,Running,0,10,0\n", "t.csv:2:17: gpu_milli: 1500 is more than one GPU"),
        ("p-0,1000,1024,1,500,V100|,LS,Running,0,10,0\n", "t.csv:2:21: gpu_spec: `` in `V100|` is not a GPU model"),
        ("p-0,1000,1024,0,0,,LS,Running,20,10,0\n", "t.csv:2:34: deletion_time 10 is before creation_time 20"),
    ];
    for (body, want) in cases {
        let (_d, path) = file("t.csv", &format!("{HEADER}{body}"));
        let got = problems(&path);
        assert!(got.first().is_some_and(|g| g.starts_with(want)), "{body:?}: {got:?} (want {want})");
    }
    let (_d, path) = file("t.csv", "name,cpu_milli\n");
    assert_eq!(
        problems(&path),
        vec![
            "t.csv:1:1: the header has no `memory_mib`, `num_gpu`, `gpu_milli`, `gpu_spec`, `qos`, `pod_phase`, \
             `creation_time`, `deletion_time` columns (a pod list without lifetimes, like the trace's multi-GPU \
             samples, is a snapshot: there is nothing to replay over time)"
        ]
    );
}

#[test]
fn skip_bad_rows_counts_and_leaves_them_out() {
    let (_d, path) = file(
        "t.csv",
        &format!(
            "{HEADER}p-0,1000,1024,0,0,,LS,Running,0,10,0\n\
             p-1,bad,1024,0,0,,LS,Running,1,10,1\n\
             p-2,1000,1024,0,0,,LS,Running,2,10\n\
             p-3,1000,1024,0,0,,LS,Running,3,10,3\n"
        ),
    );
    assert_eq!(problems(&path).len(), 2, "without the flag each bad row is a problem and nothing runs");
    let checked = check(TraceKind::AlibabaOpenb, &path, StdDuration::ZERO, true, GpuSharing::Shares);
    assert!(checked.problems.is_empty(), "{:?}", checked.problems);
    assert_eq!((checked.skipped, checked.rows), (2, 4), "two pods read, each a start and an end");
    assert_eq!(checked.kept, 2);
    let examples: Vec<String> = checked.skipped_examples.iter().map(|e| format!("{}:{}", e.line, e.column)).collect();
    assert_eq!(examples, vec!["3:5", "4:36"]);
}

#[test]
fn the_node_list_gives_one_group_per_common_shape() {
    let mut text = String::from("sn,cpu_milli,memory_mib,gpu,model\n");
    for i in 0..60 {
        text.push_str(&format!("n{i},96000,393216,8,G2\n"));
    }
    for i in 0..39 {
        text.push_str(&format!("c{i},32000,262144,0,\n"));
    }
    text.push_str("odd,8000,61440,1,P100\n");
    let (_d, path) = file("nodes.csv", &text);
    let (groups, rare) = alibaba_openb::node_groups(&path, 0.02, GpuSharing::Whole).unwrap();
    let names: Vec<&str> = groups.iter().map(|g| g.name.as_str()).collect();
    assert_eq!(names, vec!["g2-8gpu-96c-384g", "cpu-32c-256g"], "most common first");
    assert_eq!(rare.len(), 1, "1 node of 100 is under 2%");
    let g2 = &groups[0];
    assert_eq!(g2.nodes, 60);
    assert_eq!(g2.template.allocatable["nvidia.com/gpu"].as_units(), 8);
    assert_eq!(g2.template.allocatable["memory"].as_units(), 384 << 30);
    assert_eq!(g2.template.labels[GPU_MODEL_LABEL], "G2");
    assert_eq!(g2.template.taints[0].key, "nvidia.com/gpu");
    assert!(groups[1].template.taints.is_empty() && !groups[1].template.allocatable.contains_key("nvidia.com/gpu"));

    let (_d, bad) = file("nodes.csv", "sn,cpu_milli,memory_mib,gpu,model\nn0,96000,393216,8,\n");
    let e = alibaba_openb::node_groups(&bad, 0.01, GpuSharing::Whole).unwrap_err();
    assert_eq!((e.line, e.column, e.problem.as_str()), (2, 19, "a node with GPUs has no GPU model"));
}

fn gz(text: &str) -> (tempfile::TempDir, std::path::PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("mem.csv.gz");
    let mut enc = flate2::write::GzEncoder::new(std::fs::File::create(&path).unwrap(), flate2::Compression::fast());
    enc.write_all(text.as_bytes()).unwrap();
    enc.finish().unwrap();
    (dir, path)
}

#[test]
fn gentd26_series_become_memory_usage_of_one_workload_each() {
    let mut text = String::from("value,timestamp_anon,container_ip\n");
    // Container ...a (even) sampled 70 times, ...b (odd) 70 times, ...c only 3 times.
    for i in 0..70 {
        text.push_str(&format!("{},{},{}\n", if i < 35 { 0.25 } else { 0.5 }, 1000 + 57 * i, "0".repeat(31) + "a"));
        text.push_str(&format!("-0.00001,{},{}\n", 1000 + 57 * i, "1".repeat(31) + "b"));
        if i < 3 {
            text.push_str(&format!("0.9,{},{}\n", 1000 + 57 * i, "2".repeat(31) + "c"));
        }
    }
    let (_d, path) = gz(&text);
    let all = alibaba_gentd26::read(&path, Containers::All, false).unwrap();
    assert_eq!((all.series.len(), all.too_short), (2, 1));
    let a = &all.series[0];
    assert_eq!((a.samples[0], a.samples[69]), ((0.0, 0.25), (69.0 * 57.0, 0.5)), "offsets from the first sample");
    assert_eq!(all.series[1].samples[0].1, 0.0, "a rounding error below zero is clamped");
    let even = alibaba_gentd26::read(&path, Containers::Even, false).unwrap();
    let odd = alibaba_gentd26::read(&path, Containers::Odd, false).unwrap();
    assert_eq!((even.series.len(), even.series[0].container.chars().last()), (1, Some('a')));
    assert_eq!((odd.series.len(), odd.series[0].container.chars().last()), (1, Some('b')));

    assert_eq!((all.series[0].start, all.series[1].start), (0.0, 0.0), "on the trace's clock");
    let mut sc = crate::Scenario::parse(crate::scenario::POD_LEVEL_ONLY, "replay").unwrap();
    sc.add_workloads(crate::scenario::gentd26_workloads(&all.series)).unwrap();
    let w = &sc.workloads[0];
    let vpa = w.vpa.as_ref().unwrap();
    assert_eq!((w.name.as_str(), vpa.min_replicas), ("000000000000", Some(1)));
    assert_eq!(w.pod.containers[0].requests["memory"].as_units(), 16 << 30);
    let crate::signals::Signal::Series(samples) = &vpa.memory else { panic!("{:?}", vpa.memory) };
    assert_eq!(samples[0].1, 0.25 * (16u64 << 30) as f64, "fraction × the container's memory");

    let (_d, bad) = gz("value,timestamp_anon,container_ip\n0.5,10,abc\n1.7,20,abc\n0.5,soon,abc\n");
    let e = alibaba_gentd26::read(&bad, Containers::All, false).unwrap_err();
    let got: Vec<String> = e.iter().map(|e| format!("{}:{}: {}", e.line, e.column, e.problem)).collect();
    assert_eq!(
        got,
        vec![
            "3:1: value: `1.7` is not a memory utilisation between 0 and 1",
            "4:5: timestamp_anon: `soon` is not a number of seconds between 0 and 10000000000"
        ]
    );
    let skipped = alibaba_gentd26::read(&bad, Containers::All, true).unwrap();
    assert_eq!(skipped.skipped, 2);
}

/// A node list (CPU and V100M32 8-GPU minions) and a pod list for a
/// short window: CPU pods, GPU pods (one pinned to V100 models), and one pod
/// asking for 16 GPUs, which no minion has.
fn replay(with_unhostable: bool) -> crate::Report {
    let dir = tempfile::tempdir().unwrap();
    let mut nodes = String::from("sn,cpu_milli,memory_mib,gpu,model\n");
    for i in 0..10 {
        nodes.push_str(&format!("c{i},32000,131072,0,\nv{i},96000,786432,8,V100M32\n"));
    }
    std::fs::write(dir.path().join("nodes.csv"), nodes).unwrap();
    // The first pod is gone before the window starts: never read.
    let mut pods = format!("{HEADER}early,1000,1024,0,0,,LS,Running,0,100,0\n");
    for i in 0..12u64 {
        let t = 3600 + i * 120;
        pods.push_str(&format!("cpu-{i},8000,16384,0,0,,BE,Running,{t},{},{t}\n", t + 3600));
        let spec = if i % 3 == 0 { "V100M16|V100M32" } else { "" };
        pods.push_str(&format!("gpu-{i},8000,32768,1,1000,{spec},LS,Running,{t},{},{t}\n", t + 2400));
        if i == 5 && with_unhostable {
            pods.push_str(&format!("huge-{i},8000,32768,16,1000,,LS,Pending,{t},,\n"));
        }
    }
    std::fs::write(dir.path().join("pods.csv"), pods).unwrap();
    let text = r#"
name: short-window
seed: 2
duration: 3h
sample-interval: 1m
provisioning: {heat-update: 30s, boot: {lognormal: {median: 2m, p99: 5m}}, pod-termination: 5s}
node-groups-from: [{kind: alibaba-openb, file: nodes.csv, min-share: 0.1}]
traces:
  - {name: openb, kind: alibaba-openb, file: pods.csv, start: 30m}
"#;
    let sc = Scenario::parse_in(text, "short.yaml", dir.path()).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(sc.node_groups.len(), 2);
    for g in &sc.node_groups {
        // Up to the list's 10 nodes of the shape, from zero, sized from the demand, default price.
        assert_eq!((g.min_size, g.max_size, g.initial_auto, g.price_per_hour), (0, 10, true, None), "{}", g.name);
    }
    compare(&sc, &[PolicyKind::HeatscalerNoWebhook, PolicyKind::CaDefaults]).unwrap()
}

#[test]
fn a_short_window_replays_through_both_policies_with_the_same_trace() {
    let report = replay(true);
    assert_eq!(report.runs.len(), 2);
    let input = serde_json::to_string(&report.runs[0].input).unwrap();
    for run in &report.runs {
        let n = &run.node_level;
        assert_eq!(serde_json::to_string(&run.input).unwrap(), input, "every policy is fed the same trace");
        // Every pod that fits some group ran; the 16-GPU pod is reported, not waited for.
        assert_eq!(n.never_scheduled, 0, "{}: {:?}", run.policy, n);
        assert_eq!(n.unhostable_pods, 1, "{}", run.policy);
        assert_eq!(n.unhostable[0].pod, "default/huge-5");
        assert!(
            n.unhostable[0]
                .reason
                .contains("Insufficient nvidia.com/gpu (requests 16000, a minion has 8000) (groups v100m32"),
            "{}",
            n.unhostable[0].reason
        );
        assert!(n.scale_ups > 0, "{}: the window needs more than the start's minions", run.policy);
        assert!(n.cost >= n.lower_bound.cost * 0.999, "{}: {} < bound {}", run.policy, n.cost, n.lower_bound.cost);
    }
    // The unplaceable pod never triggers growth: the runs without it scale identically.
    let without = replay(false);
    for (a, b) in report.runs.iter().zip(&without.runs) {
        let ups = |r: &crate::report::Run| -> Vec<(u64, String, u32)> {
            r.timeline
                .iter()
                .filter_map(|e| match &e.event {
                    TimelineEvent::ScaleUp { to, .. } => Some((e.at_secs as u64, e.subject.clone(), *to)),
                    _ => None,
                })
                .collect()
        };
        assert_eq!(ups(a), ups(b), "{}: the 16-GPU pod changed the scale-ups", a.policy);
    }
}

#[test]
fn skip_bad_rows_skips_a_row_that_is_not_utf8() {
    let dir = tempfile::tempdir().unwrap();
    // The pod list (alibaba-openb) and the own format, each with one row of Latin-1 bytes.
    let openb = dir.path().join("openb.csv");
    let mut bytes = HEADER.as_bytes().to_vec();
    bytes.extend_from_slice(b"p-0,1000,1024,0,0,,LS,Running,0,10,0\n");
    bytes.extend_from_slice(b"p-\xe9,1000,1024,0,0,,LS,Running,1,10,1\n");
    bytes.extend_from_slice(b"p-2,1000,1024,0,0,,LS,Running,2,10,2\n");
    std::fs::write(&openb, &bytes).unwrap();
    let checked = check(TraceKind::AlibabaOpenb, &openb, StdDuration::ZERO, true, GpuSharing::Shares);
    assert!(checked.problems.is_empty(), "{:?}", checked.problems);
    assert_eq!((checked.skipped, checked.rows), (1, 4), "{:?}", checked.skipped_examples);
    assert!(checked.skipped_examples[0].problem.contains("not UTF-8"), "{:?}", checked.skipped_examples);

    let own = dir.path().join("own.csv");
    let mut bytes = b"time,pod,event,cpu,memory\n0,a,start,100m,64Mi\n".to_vec();
    bytes.extend_from_slice(b"1,\xe9,start,100m,64Mi\n");
    bytes.extend_from_slice(b"2,a,end,,\n");
    std::fs::write(&own, &bytes).unwrap();
    let checked = check(TraceKind::Csv, &own, StdDuration::ZERO, true, GpuSharing::Shares);
    assert!(checked.problems.is_empty(), "{:?}", checked.problems);
    assert_eq!((checked.skipped, checked.rows), (1, 2), "{:?}", checked.skipped_examples);
    // Without the flag the row is a problem at its line, not an unreadable file.
    let problems = check(TraceKind::Csv, &own, StdDuration::ZERO, false, GpuSharing::Shares).problems;
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert_eq!(problems[0].line, 3);
}

/// Found by `trace::fuzz::fuzz_gentd26`: a finite but huge timestamp made
/// the series' span overflow `Duration` (a panic in `pod_level`, now `scenario::gentd26_workloads`).
#[test]
fn gentd26_refuses_a_timestamp_beyond_any_trace() {
    let mut text = String::from("value,timestamp_anon,container_ip\n");
    for i in 0..70 {
        let at = if i == 69 { "1e30".to_string() } else { (1000 + 57 * i).to_string() };
        text.push_str(&format!("0.25,{at},{}\n", "0".repeat(31) + "a"));
    }
    let (_d, path) = gz(&text);
    let problems = alibaba_gentd26::read(&path, Containers::All, false).unwrap_err();
    assert!(problems[0].problem.contains("timestamp_anon: `1e30`"), "{problems:?}");
    let read = alibaba_gentd26::read(&path, Containers::All, true).unwrap();
    assert_eq!(read.skipped, 1);
    crate::scenario::gentd26_workloads(&read.series);
}

/// A pod list of `n` pods as the trace writes them (creation times rising,
/// some never deleted, GPU-sharing pods among them), in file order.
fn real_like_rows(n: u64) -> Vec<String> {
    (0..n)
        .map(|i| {
            let t = 100 + i * 37;
            let (gpus, milli) = match i % 4 {
                0 => (0, 0),
                1 => (1, 250 + (i % 3) * 250),
                2 => (1, 1000),
                _ => (2, 1000),
            };
            let deletion = if i % 5 == 0 { String::new() } else { (t + 600 + (i % 7) * 90).to_string() };
            format!("openb-pod-{i:04},{},{},{gpus},{milli},,LS,Running,{t},{deletion},{t}\n", 1000 + i * 10, 2048)
        })
        .collect()
}

/// A fixed shuffle (the trace's other samples are not in creation order).
fn shuffled(mut rows: Vec<String>) -> Vec<String> {
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    for i in (1..rows.len()).rev() {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        rows.swap(i, (x % (i as u64 + 1)) as usize);
    }
    rows
}

/// A row as compared: time, pod, kind, requests.
type Summary = (u64, String, RowKind, Vec<(String, i64)>);

fn summary(rows: Vec<Row>) -> Vec<Summary> {
    rows.into_iter().map(|r| (r.at.as_secs(), r.pod, r.kind, r.amounts)).collect()
}

#[test]
fn a_shuffled_pod_list_is_replayed_in_creation_order() {
    let sorted = real_like_rows(60);
    let mixed = shuffled(sorted.clone());
    assert_ne!(mixed, sorted);
    let (_a, sorted_path) = file("sorted.csv", &format!("{HEADER}{}", sorted.concat()));
    let (_b, mixed_path) = file("mixed.csv", &format!("{HEADER}{}", mixed.concat()));
    let want = summary(rows(&sorted_path, 0));
    let got = summary(rows(&mixed_path, 0));
    // The same rows, in time order (ties between different pods may differ in order).
    assert!(got.windows(2).all(|w| w[0].0 <= w[1].0), "{got:?}");
    let key = |v: &[Summary]| {
        let mut v = v.to_vec();
        v.sort_by(|a, b| (a.0, &a.1, a.2 as u8).cmp(&(b.0, &b.1, b.2 as u8)));
        v
    };
    assert_eq!(key(&got), key(&want));
    assert_eq!(got.len(), 60 + 48, "every pod starts, the deleted ones end");
    assert!(problems(&mixed_path).is_empty(), "{:?}", problems(&mixed_path));
    // From a later time too: pods gone before it are left out of the shuffled file as of the sorted one.
    assert_eq!(summary(rows(&mixed_path, 1500)).len(), summary(rows(&sorted_path, 1500)).len());

    // A row further out of place than the reorder buffer holds is an error
    // naming it, the time the replay had reached, and the buffer's size.
    let late = format!("{HEADER}{}{}", sorted[1..].concat(), sorted[0]);
    let (_c, late_path) = file("late.csv", &late);
    let mut r =
        PodListReader::with_window(&late_path, StdDuration::ZERO, GpuSharing::Shares, 8).expect("header is fine");
    let e = loop {
        match r.next_row() {
            Ok(Some(_)) => continue,
            Ok(None) => panic!("the last row is 59 pods late: an error was expected"),
            Err(e) => break e,
        }
    };
    assert_eq!(e.line, 61, "{e}");
    assert!(
        e.problem.starts_with("creation_time 100 comes after the replay reached")
            && e.problem.contains("more than the reorder buffer's 8 pods; sort it by creation_time first"),
        "{e}"
    );
    // With a buffer as long as the displacement, the same file is sorted.
    let mut r = PodListReader::with_window(&late_path, StdDuration::ZERO, GpuSharing::Whole, 60).unwrap();
    let all: Vec<Row> = std::iter::from_fn(|| r.next_row().unwrap()).collect();
    assert_eq!(key(&summary(all)), key(&want));
}

#[test]
fn a_pod_list_without_lifetimes_is_refused_naming_every_missing_column() {
    // The trace's multi-GPU samples: no creation or deletion times.
    let (_d, path) = file(
        "multi.csv",
        "name,cpu_milli,memory_mib,num_gpu,gpu_milli,gpu_spec,qos,pod_phase\n\
         p-0,1000,1024,8,1000,,LS,Running\n",
    );
    let got = problems(&path);
    assert_eq!(got.len(), 1, "{got:?}");
    assert!(
        got[0].starts_with(
            "t.csv:1:1: the header has no `creation_time`, `deletion_time` columns (a pod list without lifetimes"
        ),
        "{got:?}"
    );
    let (_d, path) = file("few.csv", "name,cpu_milli,creation_time\n");
    assert_eq!(
        problems(&path),
        vec![
            "t.csv:1:1: the header has no `memory_mib`, `num_gpu`, `gpu_milli`, `gpu_spec`, `qos`, `pod_phase`, \
             `deletion_time` columns (a pod list without lifetimes, like the trace's multi-GPU samples, is a \
             snapshot: there is nothing to replay over time)"
        ]
    );
}

#[test]
fn skip_bad_rows_refuses_a_file_that_is_mostly_bad() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.csv");
    let mut bytes = HEADER.as_bytes().to_vec();
    bytes.extend_from_slice(b"p-0,1000,1024,0,0,,LS,Running,0,10,0\n");
    bytes.extend_from_slice(b"p-\xe9,1000,1024,0,0,,LS,Running,1,10,1\n");
    bytes.extend_from_slice(b"p-2,lots,1024,0,0,,LS,Running,2,10,2\n");
    std::fs::write(&path, &bytes).unwrap();
    let checked = check(TraceKind::AlibabaOpenb, &path, StdDuration::ZERO, true, GpuSharing::Shares);
    assert_eq!((checked.skipped, checked.kept), (2, 1));
    assert_eq!(checked.problems.len(), 1, "{:?}", checked.problems);
    let e = checked.problems[0].to_string();
    assert!(e.contains("2 of its 3 records could not be used (--skip-bad-rows): most of the file was dropped"), "{e}");
    assert!(e.contains(":3:1: the row is not UTF-8 text"), "the first bad row is named: {e}");
    // Half bad is not most: replayed, with the count.
    bytes.extend_from_slice(b"p-3,1000,1024,0,0,,LS,Running,3,10,3\n");
    std::fs::write(&path, &bytes).unwrap();
    let checked = check(TraceKind::AlibabaOpenb, &path, StdDuration::ZERO, true, GpuSharing::Shares);
    assert!(checked.problems.is_empty(), "{:?}", checked.problems);
    assert_eq!((checked.skipped, checked.kept), (2, 2));
}

#[test]
fn skip_bad_rows_states_the_dropped_count_in_the_report() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("nodes.csv"), "sn,cpu_milli,memory_mib,gpu,model\nc0,32000,131072,0,\n").unwrap();
    let mut bytes = HEADER.as_bytes().to_vec();
    for i in 0..6 {
        bytes.extend_from_slice(format!("p-{i},1000,1024,0,0,,LS,Running,{},{},0\n", 60 * i, 60 * i + 600).as_bytes());
    }
    bytes.extend_from_slice(b"p-\xe9,1000,1024,0,0,,LS,Running,400,900,0\n");
    bytes.extend_from_slice(b"p-x,1000,1024,0,0,,XX,Running,500,900,0\n");
    std::fs::write(dir.path().join("pods.csv"), &bytes).unwrap();
    let text = r#"
name: holes
duration: 30m
node-groups-from: [{kind: alibaba-openb, file: nodes.csv}]
traces:
  - {name: openb, kind: alibaba-openb, file: pods.csv, skip-bad-rows: true}
"#;
    let sc = Scenario::parse_in(text, "holes.yaml", dir.path()).unwrap_or_else(|e| panic!("{e}"));
    let report = compare(&sc, &[PolicyKind::HeatscalerNoWebhook, PolicyKind::CaDefaults]).unwrap();
    for run in &report.runs {
        assert_eq!((run.input.trace_rows, run.input.trace_rows_dropped), (12, 2), "{}", run.policy);
    }
    let table = report.to_string();
    assert!(table.contains("trace rows dropped as bad (--skip-bad-rows): 2 (and 12 replayed)"), "{table}");
    assert!(table.contains("cost / lower bound"), "{table}");
    let json = serde_json::to_value(&report).unwrap();
    assert_eq!(json["runs"][0]["input"]["trace_rows_dropped"], 2);
}

#[test]
fn gpu_sharing_pods_ask_for_shares_or_whole_gpus() {
    let (_d, path) = file("pods.csv", &format!("{HEADER}{}", real_like_rows(4).concat()));
    let amounts = |gpu: GpuSharing| -> Vec<Vec<(String, i64)>> {
        let mut r = PodListReader::open(&path, StdDuration::ZERO, gpu).unwrap();
        std::iter::from_fn(|| r.next_row().unwrap())
            .filter(|r| r.kind == RowKind::Start)
            .map(|r| r.amounts.into_iter().filter(|(n, _)| n.contains("gpu")).collect())
            .collect()
    };
    let milli = |v: i64| vec![("nvidia.com/gpu".to_string(), v)];
    let whole = |v: i64| vec![("nvidia.com/gpu".to_string(), v)];
    // Pods: no GPU; a 500-milli share of one; one whole GPU; two whole GPUs.
    assert_eq!(amounts(GpuSharing::Shares), vec![vec![], milli(500), milli(1000), milli(2000)]);
    assert_eq!(amounts(GpuSharing::Whole), vec![vec![], whole(1), whole(1), whole(2)]);

    let (_n, nodes) = file("nodes.csv", "sn,cpu_milli,memory_mib,gpu,model\nn0,96000,393216,8,G2\n");
    let (shares, _) = alibaba_openb::node_groups(&nodes, 0.0, GpuSharing::Shares).unwrap();
    assert_eq!(shares[0].template.allocatable["nvidia.com/gpu"].as_units(), 8000);
    let (whole_groups, _) = alibaba_openb::node_groups(&nodes, 0.0, GpuSharing::Whole).unwrap();
    assert_eq!(whole_groups[0].template.allocatable["nvidia.com/gpu"].as_units(), 8);

    // End to end: sixteen quarter-GPU pods take 4 of one 8-GPU minion's GPUs
    // as shares, but 16 whole GPUs (two minions) without sharing.
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("nodes.csv"),
        "sn,cpu_milli,memory_mib,gpu,model\nn0,96000,393216,8,G2\nn1,96000,393216,8,G2\nn2,96000,393216,8,G2\n",
    )
    .unwrap();
    let mut pods = HEADER.to_string();
    for i in 0..16 {
        pods.push_str(&format!("s-{i},2000,4096,1,250,,LS,Running,{},7200,0\n", 60 + i));
    }
    std::fs::write(dir.path().join("pods.csv"), pods).unwrap();
    let peak_minions = |sharing: &str| {
        let text = format!(
            "name: sharing\nduration: 1h\ngpu-sharing: {sharing}\n\
             node-groups-from: [{{kind: alibaba-openb, file: nodes.csv}}]\n\
             traces: [{{name: openb, kind: alibaba-openb, file: pods.csv}}]\n"
        );
        let sc = Scenario::parse_in(&text, "sharing.yaml", dir.path()).unwrap_or_else(|e| panic!("{e}"));
        let report = compare(&sc, &[PolicyKind::HeatscalerNoWebhook]).unwrap();
        let run = &report.runs[0];
        assert_eq!(run.node_level.never_scheduled, 0, "{sharing}: {:?}", run.node_level);
        run.series.iter().map(|s| s.billed).max().unwrap()
    };
    assert_eq!(peak_minions("shares"), 1, "16 × 0.25 GPU = 4 GPUs of one minion");
    assert_eq!(peak_minions("whole"), 2, "16 whole GPUs = two 8-GPU minions");
}
