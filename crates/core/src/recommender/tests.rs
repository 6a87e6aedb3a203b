//! Scenario tests: the recommender's dynamics checked against the closed-form
//! math of decaying weights, not against loose bounds.

use jiff::{SignedDuration, Timestamp};

use super::*;
use crate::model::test_support;
use crate::model::{
    Capping, Container, ContainerResourcePolicy, ControlledValues, DEFAULT_CONTAINER_POLICY, Pod, PodPhase, Resources,
    WorkloadRef,
};
use crate::policy::RecommenderSettings;

const MI: i64 = 1 << 20;
const MINUTE: SignedDuration = SignedDuration::from_mins(1);

fn t0() -> Timestamp {
    "2026-01-05T00:00:00Z".parse().unwrap()
}

fn web() -> WorkloadRef {
    WorkloadRef { kind: "Deployment".into(), namespace: "shop".into(), name: "web".into() }
}

fn pod_key(name: &str) -> PodKey {
    PodKey { namespace: "shop".into(), name: name.into() }
}

fn recommender() -> Recommender {
    Recommender::from_config(&RecommenderSettings::vpa())
}

/// What the estimator makes of a histogram percentile that lands in the bucket
/// of `value`: the bucket's end, plus the 15 % safety margin (integer
/// arithmetic as VPA: truncate, then add the truncated margin).
fn cpu_target_for(value_cores: f64) -> i64 {
    let s = BucketScheme::cpu();
    let end = (s.bucket_start(s.bucket_of(value_cores) + 1) * 1000.0) as i64;
    end + (end as f64 * 0.15) as i64
}

fn memory_target_for(bytes: i64) -> i64 {
    let s = BucketScheme::memory();
    let end = s.bucket_start(s.bucket_of(bytes as f64) + 1) as i64;
    end + (end as f64 * 0.15) as i64
}

/// Feeds `count` CPU samples one minute apart from `start`; returns the next sample time.
fn feed_cpu(r: &mut Recommender, start: Timestamp, count: usize, cores: f64, request_milli: i64) -> Timestamp {
    let mut t = start;
    for _ in 0..count {
        r.add_cpu_sample(&web(), &pod_key("web-1"), "app", t, cores, request_milli).unwrap();
        t += MINUTE;
    }
    t
}

fn target_cpu(r: &Recommender) -> i64 {
    r.recommend(&web(), None, 1)[0].target.cpu_milli
}

/// Samples one minute apart decay by q = 2^(1 min / half-life) relative to each
/// other. After `n` old samples, the `k` new ones weigh q^n (q^k - 1)/(q - 1)
/// against (q^n - 1)/(q - 1) for the old ones. Returns the smallest k for which
/// `new_share(k)` — the new samples' share of the total — reaches `share`.
fn samples_until_share(n: usize, half_life: SignedDuration, share: f64) -> usize {
    let q = 2f64.powf(MINUTE.as_secs_f64() / half_life.as_secs_f64());
    // new / old >= share / (1 - share)  <=>  q^k >= 1 + share/(1-share) * (1 - q^-n)
    let k = (1.0 + share / (1.0 - share) * (1.0 - q.powi(-(n as i32)))).ln() / q.ln();
    k.floor() as usize + 1
}

#[test]
fn step_up_raises_the_target_after_the_expected_number_of_samples() {
    let mut r = recommender();
    let half_life = r.settings().cpu_half_life;
    let old = 7 * 24 * 60;
    let t = feed_cpu(&mut r, t0(), old, 0.1, 500);
    assert_eq!(target_cpu(&r), cpu_target_for(0.1));

    // p90 moves to the new level once the new samples carry more than 10 % of
    // the weight: log2(1 + (1 - 2^-7)/9) = 0.151 half-lives, 218 samples.
    let k = samples_until_share(old, half_life, 0.1);
    assert_eq!(k, 218, "closed form for 7 days of history, 24 h half-life");
    let t = feed_cpu(&mut r, t, k - 1, 1.0, 500);
    assert_eq!(target_cpu(&r), cpu_target_for(0.1), "one sample short");
    feed_cpu(&mut r, t, 1, 1.0, 500);
    assert_eq!(target_cpu(&r), cpu_target_for(1.0));
}

#[test]
fn drop_lowers_the_target_after_log2_10_half_lives() {
    let mut r = recommender();
    let half_life = r.settings().cpu_half_life;
    let old = 7 * 24 * 60;
    let t = feed_cpu(&mut r, t0(), old, 1.0, 500);
    assert_eq!(target_cpu(&r), cpu_target_for(1.0));

    // p90 falls only when the new, lower samples hold 90 % of the weight:
    // q^k >= 1 + 9 (1 - 2^-7), i.e. 3.31 half-lives (log2(10) with infinite history).
    let k = samples_until_share(old, half_life, 0.9);
    assert_eq!(k, 4769);
    assert!((k as f64 / 1440.0 - 10f64.log2()).abs() < 0.02);
    let t = feed_cpu(&mut r, t, k - 1, 0.1, 500);
    assert_eq!(target_cpu(&r), cpu_target_for(1.0), "one sample short");
    feed_cpu(&mut r, t, 1, 0.1, 500);
    assert_eq!(target_cpu(&r), cpu_target_for(0.1));
}

#[test]
fn cpu_samples_weigh_by_request_with_a_minimum() {
    // Same usage history, but the high samples were taken under a 4x request:
    // they need 4x fewer samples to reach 10 % of the weight.
    let mut r = recommender();
    let old = 24 * 60;
    let t = feed_cpu(&mut r, t0(), old, 0.1, 100);
    let mut steps = 0;
    let mut t = t;
    while target_cpu(&r) != cpu_target_for(1.0) {
        t = feed_cpu(&mut r, t, 1, 1.0, 400);
        steps += 1;
    }
    // Weight ratio 4: new/old >= (1/9)/4 in the closed form.
    let q = 2f64.powf(1.0 / 1440.0);
    let expected = ((1.0 + (1.0 - q.powi(-(old as i32))) / 36.0).ln() / q.ln()).floor() as usize + 1;
    assert_eq!(steps, expected);

    // Requests below 100m all weigh like 100m (VPA's minimum sample weight).
    let mut a = recommender();
    let mut b = recommender();
    feed_cpu(&mut a, t0(), 10, 0.05, 0);
    feed_cpu(&mut b, t0(), 10, 0.05, 100);
    let wa = a.aggregate(&web(), "app").unwrap().cpu.histogram().total_weight();
    let wb = b.aggregate(&web(), "app").unwrap().cpu.histogram().total_weight();
    assert_eq!(wa, wb);
}

#[test]
fn memory_keeps_one_peak_per_interval_per_pod() {
    let mut r = recommender();
    let t = t0();
    for (i, mib) in [100, 300, 200].into_iter().enumerate() {
        r.add_memory_sample(&web(), &pod_key("web-1"), "app", t + MINUTE * i as i32, mib * MI).unwrap();
    }
    let agg = r.aggregate(&web(), "app").unwrap();
    let s = BucketScheme::memory();
    let end = |b: i64| s.bucket_start(s.bucket_of(b as f64) + 1);
    assert_eq!(agg.memory_peaks.percentile(0.0), end(300 * MI), "the lower peaks were replaced");
    let one_peak = agg.memory_peaks.histogram().total_weight();

    // A second pod of the workload adds its own peak for the same interval.
    r.add_memory_sample(&web(), &pod_key("web-2"), "app", t, 50 * MI).unwrap();
    // The next day is a new interval: a new peak, even if lower.
    r.add_memory_sample(&web(), &pod_key("web-1"), "app", t + SignedDuration::from_hours(25), 120 * MI).unwrap();
    let agg = r.aggregate(&web(), "app").unwrap();
    assert_eq!(agg.memory_peaks.percentile(0.0), end(50 * MI));
    assert_eq!(agg.memory_peaks.percentile(1.0), end(300 * MI));
    // Peaks are stamped with their interval's end: the web-1 day-2 peak weighs
    // 2x the day-1 ones (one half-life later).
    let total = agg.memory_peaks.histogram().total_weight();
    assert!((total / one_peak - 4.0).abs() < 1e-9, "1 + 1 + 2 = {}", total / one_peak);

    // Out-of-order memory samples are refused.
    let err = r.add_memory_sample(&web(), &pod_key("web-1"), "app", t, 10 * MI).unwrap_err();
    assert!(matches!(err, SampleRejected::OutOfOrder { .. }));
}

#[test]
fn oom_kill_bumps_memory() {
    let mut r = recommender();
    let t = t0();
    feed_cpu(&mut r, t, 10, 0.2, 200);
    r.add_memory_sample(&web(), &pod_key("web-1"), "app", t, 500 * MI).unwrap();
    assert_eq!(r.recommend(&web(), None, 1)[0].target.memory, memory_target_for(500 * MI));

    // Killed with a 600Mi request: max(600Mi + 100Mi, 600Mi * 1.2) = 720Mi.
    r.record_oom(&web(), &pod_key("web-1"), "app", t + MINUTE * 5, 600 * MI).unwrap();
    assert_eq!(r.recommend(&web(), None, 1)[0].target.memory, memory_target_for(720 * MI));

    // A small request: the bump starts from the larger observed peak instead,
    // max(500Mi + 100Mi, 500Mi * 1.2) = 600Mi, below the 720Mi peak already there.
    r.record_oom(&web(), &pod_key("web-1"), "app", t + MINUTE * 6, 200 * MI).unwrap();
    assert_eq!(r.recommend(&web(), None, 1)[0].target.memory, memory_target_for(720 * MI));

    // On a fresh pod, the minimum bump decides: max(250Mi + 100Mi, 300Mi) = 350Mi.
    let mut fresh = recommender();
    feed_cpu(&mut fresh, t, 10, 0.2, 200);
    fresh.record_oom(&web(), &pod_key("web-1"), "app", t, 250 * MI).unwrap();
    assert_eq!(fresh.recommend(&web(), None, 1)[0].target.memory, memory_target_for(350 * MI));

    // A kill from before the previous interval is too old to mean anything now.
    r.add_memory_sample(&web(), &pod_key("web-1"), "app", t + SignedDuration::from_hours(50), 100 * MI).unwrap();
    let err = r.record_oom(&web(), &pod_key("web-1"), "app", t + MINUTE, 600 * MI).unwrap_err();
    assert!(matches!(err, SampleRejected::OomTooOld { .. }), "{err}");
}

#[test]
fn confidence_widens_bounds_while_history_is_short() {
    let mut r = recommender();
    // One sample: no history span, confidence 0: the upper bound is unbounded
    // and the lower bound falls to the pod minimum.
    feed_cpu(&mut r, t0(), 1, 0.5, 500);
    let rec = &r.recommend(&web(), None, 1)[0];
    assert_eq!(rec.upper_bound.cpu_milli, MAX_RESOURCE_AMOUNT);
    assert_eq!(rec.lower_bound.cpu_milli, 25);

    // 12 h at one sample a minute: confidence 0.5, upper x3, lower x(1.002)^-2.
    let mut r = recommender();
    feed_cpu(&mut r, t0(), 12 * 60 + 1, 0.5, 500);
    let conf = r.aggregate(&web(), "app").unwrap().confidence(CONFIDENCE_INTERVAL);
    assert_eq!(conf, 0.5);
    let base = cpu_target_for(0.5); // constant usage: every percentile is the same bucket
    let rec = &r.recommend(&web(), None, 1)[0];
    assert_eq!(rec.target.cpu_milli, base);
    assert_eq!(rec.upper_bound.cpu_milli, (base as f64 * 3.0) as i64);
    assert_eq!(rec.lower_bound.cpu_milli, (base as f64 * (1.0 + 0.001 / 0.5f64).powf(-2.0)) as i64);

    // A week: upper x(1 + 1/7), lower within 0.03 % of the target.
    let mut r = recommender();
    feed_cpu(&mut r, t0(), 7 * 24 * 60 + 1, 0.5, 500);
    let rec = &r.recommend(&web(), None, 1)[0];
    assert_eq!(rec.upper_bound.cpu_milli, (base as f64 * (1.0 + 1.0 / 7.0)) as i64);
    assert_eq!(rec.lower_bound.cpu_milli, (base as f64 * (1.0 + 0.001 / 7.0f64).powf(-2.0)) as i64);

    // VPA's estimator_test: 9 samples 2 minutes apart give 9/1440 = 0.00625.
    let mut r = recommender();
    let mut t = t0();
    for _ in 0..9 {
        r.add_cpu_sample(&web(), &pod_key("web-1"), "app", t, 1.0, 500).unwrap();
        t += MINUTE * 2;
    }
    assert_eq!(r.aggregate(&web(), "app").unwrap().confidence(CONFIDENCE_INTERVAL), 0.00625);

    // Sparse samples: a week of history but one sample an hour counts as 168/1440 days.
    let mut r = recommender();
    let mut t = t0();
    for _ in 0..=(7 * 24) {
        r.add_cpu_sample(&web(), &pod_key("web-1"), "app", t, 0.5, 500).unwrap();
        t += SignedDuration::from_hours(1);
    }
    let conf = r.aggregate(&web(), "app").unwrap().confidence(CONFIDENCE_INTERVAL);
    assert_eq!(conf, 169.0 / 1440.0);
}

#[test]
fn policy_caps_filters_and_switches_off() {
    let mut r = recommender();
    feed_cpu(&mut r, t0(), 600, 1.0, 500);
    r.add_memory_sample(&web(), &pod_key("web-1"), "app", t0(), 300 * MI).unwrap();
    r.add_cpu_sample(&web(), &pod_key("web-1"), "sidecar", t0(), 0.001, 10).unwrap();

    let policy = PodResourcePolicy {
        container_policies: vec![
            ContainerResourcePolicy {
                container_name: "app".into(),
                min_allowed: Resources::new(0, 1 << 30),
                max_allowed: Resources::new(200, 0),
                ..Default::default()
            },
            ContainerResourcePolicy {
                container_name: DEFAULT_CONTAINER_POLICY.into(),
                controlled_resources: Some(vec![ResourceKind::Cpu]),
                ..Default::default()
            },
        ],
    };
    let recs = r.recommend(&web(), Some(&policy), 2);
    assert_eq!(recs.len(), 2);
    let app = &recs[0];
    assert_eq!(app.container_name, "app");
    assert_eq!(app.uncapped_target.cpu_milli, cpu_target_for(1.0));
    assert_eq!(app.target.cpu_milli, 200, "maxAllowed");
    assert_eq!(app.upper_bound.cpu_milli, 200);
    assert_eq!(app.target.memory, 1 << 30, "minAllowed");
    assert_eq!(app.capped, vec![(ResourceKind::Cpu, Capping::MaxAllowed), (ResourceKind::Memory, Capping::MinAllowed)]);

    // The sidecar falls under `*`: CPU only, and the 25m pod minimum split over two containers.
    let sidecar = &recs[1];
    assert_eq!(sidecar.container_name, "sidecar");
    assert_eq!(sidecar.target.cpu_milli, 12);
    assert_eq!(sidecar.target.memory, 0, "memory not controlled");
    assert_eq!(sidecar.upper_bound.memory, 0);

    // Mode Off: no recommendation for the container at all.
    let off = PodResourcePolicy {
        container_policies: vec![ContainerResourcePolicy {
            container_name: "sidecar".into(),
            mode: ContainerScalingMode::Off,
            ..Default::default()
        }],
    };
    let recs = r.recommend(&web(), Some(&off), 2);
    assert_eq!(recs.iter().map(|r| r.container_name.as_str()).collect::<Vec<_>>(), ["app"]);
    // Without any policy the app's memory has the pod minimum's share as floor: 125Mi.
    let recs = r.recommend(&web(), None, 2);
    assert_eq!(recs[0].target.memory, memory_target_for(300 * MI).max(125 * MI));
}

#[test]
fn controlled_values_shape_the_applied_resources() {
    let mut r = recommender();
    feed_cpu(&mut r, t0(), 600, 1.0, 500);
    r.add_memory_sample(&web(), &pod_key("web-1"), "app", t0(), 300 * MI).unwrap();
    let rec = &r.recommend(&web(), None, 1)[0];
    let container = Container {
        name: "app".into(),
        requests: Resources::new(500, 256 * MI),
        limits: Resources::new(1000, 512 * MI),
        allocated: None,
        oom_kills: 0,
        last_oom: None,
    };
    let both = apply_to_container(&container, &rec.target, None);
    assert_eq!(both.requests, rec.target);
    assert_eq!(both.limits.cpu_milli, rec.target.cpu_milli * 2);
    assert_eq!(both.limits.memory, rec.target.memory * 2);

    let requests_only = ContainerResourcePolicy {
        container_name: "app".into(),
        controlled_values: ControlledValues::RequestsOnly,
        ..Default::default()
    };
    let only = apply_to_container(&container, &rec.target, Some(&requests_only));
    assert_eq!(only.limits, container.limits);
    assert_eq!(only.requests.cpu_milli, 1000, "capped at the unchanged limit");
    assert_eq!(only.requests.memory, rec.target.memory);
}

#[test]
fn checkpoint_round_trip_preserves_recommendations() {
    let mut r = recommender();
    let mut t = t0();
    for i in 0..(3 * 24 * 60) {
        let cores = 0.2 + 0.3 * ((i % 97) as f64 / 97.0);
        r.add_cpu_sample(&web(), &pod_key("web-1"), "app", t, cores, 300).unwrap();
        if i % 10 == 0 {
            r.add_memory_sample(&web(), &pod_key("web-1"), "app", t, (200 + (i % 300) as i64) * MI).unwrap();
        }
        t += MINUTE;
    }
    r.record_oom(&web(), &pod_key("web-1"), "app", t, 400 * MI).unwrap();

    let saved = r.checkpoints(t);
    assert_eq!(saved.len(), 1);
    let json = serde_json::to_string_pretty(&saved).unwrap();
    for key in [
        "\"cpuHistogram\"",
        "\"bucketWeights\"",
        "\"referenceTimestamp\"",
        "\"version\": \"v3\"",
        "\"containerName\": \"app\"",
    ] {
        assert!(json.contains(key), "{key} missing from {json}");
    }
    let loaded: Vec<ContainerCheckpoint> = serde_json::from_str(&json).unwrap();
    assert_eq!(loaded, saved);

    let mut restored = recommender();
    restored.restore(&loaded[0], t).unwrap();
    assert_eq!(restored.recommend(&web(), None, 1), r.recommend(&web(), None, 1));
    let (a, b) = (restored.aggregate(&web(), "app").unwrap(), r.aggregate(&web(), "app").unwrap());
    assert_eq!(
        (a.first_sample(), a.last_sample(), a.total_samples()),
        (b.first_sample(), b.last_sample(), b.total_samples())
    );

    // History keeps accumulating on top of what was restored.
    restored.add_cpu_sample(&web(), &pod_key("web-2"), "app", t, 0.3, 300).unwrap();
    assert_eq!(restored.aggregate(&web(), "app").unwrap().total_samples(), b.total_samples() + 1);

    let mut wrong = loaded[0].clone();
    wrong.status.version = "v2".into();
    let err = recommender().restore(&wrong, t).unwrap_err();
    assert!(err.to_string().contains("version `v2`"), "{err}");
}

/// heatscaler's default keeps hourly memory peaks with a 4 h half-life; a VPA
/// recommender (24 h / 24 h) taking over its checkpoint inflates new samples
/// by `2^(age / 24 h)` from the checkpoint's reference. Written at the
/// histogram's own reference (up to 100 half-lives back, 2^100 of
/// inflation), the checkpoint would outweigh VPA's own samples for weeks; at
/// a reference moved up to the checkpoint's time, VPA's daily peaks take over
/// within a week, as they would from a VPA checkpoint.
#[test]
fn a_vpa_recommender_taking_over_a_checkpoint_follows_its_own_samples_within_a_week() {
    let mut heatscaler = Recommender::from_config(&RecommenderSettings::default());
    let hour = SignedDuration::from_hours(1);
    let mut t = t0();
    // 300 h of hourly peaks: 75 half-lives past the histogram's reference.
    for _ in 0..300 {
        heatscaler.add_cpu_sample(&web(), &pod_key("web-1"), "app", t, 0.5, 500).unwrap();
        heatscaler.add_memory_sample(&web(), &pod_key("web-1"), "app", t, 1200 * MI).unwrap();
        t += hour;
    }
    let saved = heatscaler.checkpoints(t);
    let mut vpa = recommender();
    vpa.restore(&saved[0], t).unwrap();
    // A week of VPA's own daily peaks, lower, from the pod that replaced web-1.
    for day in 0..7 {
        let at = t + SignedDuration::from_hours(24 * day);
        vpa.add_cpu_sample(&web(), &pod_key("web-2"), "app", at, 0.5, 500).unwrap();
        vpa.add_memory_sample(&web(), &pod_key("web-2"), "app", at, 400 * MI).unwrap();
    }
    assert_eq!(vpa.recommend(&web(), None, 1)[0].target.memory, memory_target_for(400 * MI));
    // heatscaler's own restore reads the same histogram.
    let mut restored = Recommender::from_config(&RecommenderSettings::default());
    restored.restore(&saved[0], t).unwrap();
    assert_eq!(restored.recommend(&web(), None, 1), heatscaler.recommend(&web(), None, 1));
}

#[test]
fn history_expires_and_footprint_is_fixed() {
    let mut r = recommender();
    feed_cpu(&mut r, t0(), 100, 0.5, 500);
    r.add_memory_sample(&web(), &pod_key("web-1"), "app", t0(), 100 * MI).unwrap();
    let fp = r.footprint();
    assert_eq!((fp.aggregates, fp.instances), (1, 1));
    let per_aggregate = std::mem::size_of::<AggregateState>() + 2 * 176 * 8;
    assert_eq!(r.aggregate(&web(), "app").unwrap().footprint_bytes(), per_aggregate);
    // Bounded: a thousand more samples change nothing.
    feed_cpu(&mut r, t0() + SignedDuration::from_hours(3), 1000, 0.7, 500);
    assert_eq!(r.footprint(), fp);

    r.retain_pods(|p| p.name != "web-1");
    assert_eq!(r.footprint().instances, 0, "pod state goes with the pod");
    assert_eq!(r.garbage_collect(t0() + SignedDuration::from_hours(7 * 24)), 0);
    // 8 intervals of 24 h after the last sample, the history goes.
    assert_eq!(r.garbage_collect(t0() + SignedDuration::from_hours(3 + 8 * 24 + 17)), 1);
    assert!(r.recommend(&web(), None, 1).is_empty());
}

fn pod(name: &str, workload: Option<WorkloadRef>, container: Container) -> Pod {
    Pod {
        namespace: "shop".into(),
        workload,
        node_name: Some("minion-0".into()),
        phase: PodPhase::Running,
        requests: container.requests.clone(),
        containers: vec![container],
        created: t0(),
        ..test_support::pod(name)
    }
}

fn app_container(cpu: i64, mem: i64) -> Container {
    test_support::container("app", Resources::new(cpu, mem))
}

#[test]
fn feeding_joins_usage_and_ooms_to_workloads() {
    let mut resized = app_container(500, 256 * MI);
    resized.allocated = Some(Resources::new(250, 256 * MI));
    let pods = vec![pod("web-1", Some(web()), resized), pod("bare", None, app_container(100, 64 * MI))];
    let usage = |pod: &str, container: &str| ContainerUsage {
        pod: pod_key(pod),
        container: container.into(),
        at: t0(),
        cpu_cores: Some(0.3),
        memory_working_set: Some(200 * MI),
    };
    let mut r = recommender();
    let report = feed_usage(
        &mut r,
        &pods,
        &[usage("web-1", "app"), usage("bare", "app"), usage("gone", "app"), usage("web-1", "init")],
    );
    assert_eq!(
        report,
        FeedReport {
            cpu_samples: 1,
            memory_samples: 1,
            no_workload: 1,
            unknown_pod: 1,
            unknown_container: 1,
            ..Default::default()
        }
    );
    // Weighted by the applied (allocated) request, 250m, not the spec's 500m.
    let w = r.aggregate(&web(), "app").unwrap().cpu.histogram().total_weight();
    assert!((w - 0.25).abs() < 1e-12, "{w}");
    // The same scrape again: the CPU sample is a duplicate; a memory sample at
    // the same instant is accepted (as VPA) but cannot raise the peak.
    let again = feed_usage(&mut r, &pods, &[usage("web-1", "app")]);
    assert_eq!((again.rejected, again.memory_samples), (1, 1));

    let mut tracker = OomTracker::default();
    let mut pods = pods;
    pods[0].containers[0].last_oom = Some(t0() + MINUTE);
    let now = t0() + MINUTE * 2;
    let events = tracker.observe(&pods, now, SignedDuration::from_hours(24));
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].memory_request, 256 * MI);
    assert!(tracker.observe(&pods, now, SignedDuration::from_hours(24)).is_empty(), "reported once");
    assert_eq!(feed_ooms(&mut r, &events).ooms, 1);
    assert_eq!(r.recommend(&web(), None, 1)[0].target.memory, memory_target_for(356 * MI));
    // A kill older than the cutoff (e.g. in status at daemon start) is not an event.
    assert!(
        OomTracker::default()
            .observe(&pods, now + SignedDuration::from_hours(48), SignedDuration::from_hours(24))
            .is_empty()
    );
}

/// Not a check: prints the figures quoted in docs/recommender.md.
/// `cargo test --lib footprint_and_throughput_figures -- --ignored --nocapture`
#[test]
#[ignore]
fn footprint_and_throughput_figures() {
    let workloads: Vec<WorkloadRef> = (0..1000)
        .map(|i| WorkloadRef { kind: "Deployment".into(), namespace: "ns".into(), name: format!("w{i}").into() })
        .collect();
    let mut r = recommender();
    let mut t = t0();
    let start = std::time::Instant::now();
    for _ in 0..100 {
        for (i, w) in workloads.iter().enumerate() {
            let p = PodKey { namespace: "ns".into(), name: format!("p{i}").into() };
            r.add_cpu_sample(w, &p, "app", t, 0.1 + (i % 17) as f64 * 0.05, 200).unwrap();
            r.add_memory_sample(w, &p, "app", t, (100 + (i % 50) as i64) * MI).unwrap();
        }
        t += MINUTE;
    }
    let feed = start.elapsed();
    let start = std::time::Instant::now();
    let n: usize = workloads.iter().map(|w| r.recommend(w, None, 1).len()).sum();
    let recommend = start.elapsed();
    let checkpoints = r.checkpoints(t);
    let json = serde_json::to_string(&checkpoints).unwrap();
    eprintln!(
        "200k samples fed in {feed:?}; {n} recommendations in {recommend:?}; {:?}; \
         AggregateState {} B + 2 x 176 x 8 B buckets; instance state {} B; checkpoint {} B of JSON per container",
        r.footprint(),
        std::mem::size_of::<AggregateState>(),
        std::mem::size_of::<instance::InstanceState>(),
        json.len() / checkpoints.len()
    );
}
