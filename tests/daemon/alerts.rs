//! Alert sinks against real HTTP receivers on 127.0.0.1: exact payloads,
//! signatures, retries, deduplication, overflow, and a receiver that hangs.
//!
//! The Kubernetes Events sink is exercised here against an unreachable API
//! server and against `kubesim` failing, then answering, Event writes.

use std::collections::VecDeque;
use std::io::Write;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use heatscaler_core::model::Timestamp;
use heatscaler_daemon::alerts::{Dispatcher, KUBERNETES_EVENTS_SINK, KubeEventSink, ObjectRef, ScalingEvent, webhook};
use heatscaler_daemon::config::{AlertsConfig, Duration as CfgDuration, SecretSource, SinkConfig, SinkKind};
use heatscaler_daemon::telemetry::{AlertOutcome, Metrics};
use hmac::{KeyInit, Mac};
use secrecy::SecretString;
use serde_json::{Value, json};
use tokio::sync::{mpsc, watch};

const WAIT: Duration = Duration::from_secs(10);

// ------------------------------------------------------------------ receiver

#[derive(Debug)]
struct Request {
    path: String,
    headers: HeaderMap,
    body: Bytes,
}

impl Request {
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).expect("JSON body")
    }
}

#[derive(Clone)]
struct ReceiverState {
    arrived: mpsc::UnboundedSender<Request>,
    /// Status codes to answer, in order; 200 once exhausted.
    script: Arc<Mutex<VecDeque<StatusCode>>>,
    /// Requests wait until this is true (false: the receiver holds them).
    gate: watch::Receiver<bool>,
    answered: Arc<Mutex<u32>>,
}

/// A local HTTP server that records every request the moment it arrives.
struct Receiver {
    addr: SocketAddr,
    arrived: mpsc::UnboundedReceiver<Request>,
    gate: watch::Sender<bool>,
    answered: Arc<Mutex<u32>>,
}

impl Receiver {
    async fn start(script: &[u16], open: bool) -> Self {
        let (tx, arrived) = mpsc::unbounded_channel();
        let (gate, gate_rx) = watch::channel(open);
        let answered = Arc::new(Mutex::new(0));
        let state = ReceiverState {
            arrived: tx,
            script: Arc::new(Mutex::new(script.iter().map(|c| StatusCode::from_u16(*c).unwrap()).collect())),
            gate: gate_rx,
            answered: answered.clone(),
        };
        let app = axum::Router::new().fallback(handle).with_state(state);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        Self { addr, arrived, gate, answered }
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    async fn next(&mut self) -> Request {
        tokio::time::timeout(WAIT, self.arrived.recv()).await.expect("a request within 10s").unwrap()
    }

    fn open(&self) {
        self.gate.send_replace(true);
    }

    fn answered(&self) -> u32 {
        *self.answered.lock().unwrap()
    }

    fn nothing_more(&mut self) -> bool {
        self.arrived.try_recv().is_err()
    }
}

async fn handle(State(s): State<ReceiverState>, uri: Uri, headers: HeaderMap, body: Bytes) -> Response {
    let _ = s.arrived.send(Request { path: uri.path().to_string(), headers, body });
    let mut gate = s.gate.clone();
    let _ = gate.wait_for(|open| *open).await;
    let status = s.script.lock().unwrap().pop_front().unwrap_or(StatusCode::OK);
    *s.answered.lock().unwrap() += 1;
    let mut r = (status, "receiver says so").into_response();
    if status == StatusCode::TOO_MANY_REQUESTS {
        r.headers_mut().insert("retry-after", "0".parse().unwrap());
    }
    r
}

// ------------------------------------------------------------------ helpers

fn alerts(sinks: Vec<SinkConfig>) -> AlertsConfig {
    AlertsConfig {
        kubernetes_events: false,
        sinks,
        queue_capacity: 100,
        dedup_window: CfgDuration::from_secs(300),
        retry_initial: CfgDuration::from_millis(10),
        retry_max: CfgDuration::from_millis(50),
        max_attempts: 5,
    }
}

fn sink(kind: SinkKind, url: Option<String>) -> SinkConfig {
    SinkConfig {
        kind,
        url,
        url_secret: None,
        hmac_secret: None,
        timeout: CfgDuration::from_secs(5),
        name: None,
        min_severity: None,
        include_details: false,
    }
}

fn secret_file(dir: &Path, name: &str, value: &str) -> SecretSource {
    let p = dir.join(name);
    std::fs::write(&p, format!("{value}\n")).unwrap();
    SecretSource::File(p)
}

fn at(ts: &str) -> Timestamp {
    ts.parse().unwrap()
}

async fn until(what: &str, cond: impl Fn() -> bool) {
    let start = Instant::now();
    while !cond() {
        assert!(start.elapsed() < WAIT, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// Captures this thread's log output (the tests run on a current-thread
/// runtime, so the sink workers log on this thread too).
#[derive(Clone, Default)]
struct LogBuffer(Arc<Mutex<Vec<u8>>>);

impl Write for LogBuffer {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl LogBuffer {
    /// The process-wide log capture. A global subscriber, not `set_default`:
    /// a thread-scoped one misses events from callsites whose interest another
    /// test's thread cached first, which made log assertions flaky.
    fn global() -> Self {
        static LOGS: std::sync::OnceLock<LogBuffer> = std::sync::OnceLock::new();
        LOGS.get_or_init(|| {
            let logs = LogBuffer::default();
            let writer = logs.clone();
            tracing_subscriber::fmt()
                .with_max_level(tracing::Level::DEBUG)
                .with_ansi(false)
                .with_writer(move || writer.clone())
                .init();
            logs
        })
        .clone()
    }
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

// ------------------------------------------------------------------ payloads

#[tokio::test]
async fn alertmanager_receives_the_exact_alert() {
    let mut am = Receiver::start(&[], true).await;
    let metrics = Arc::new(Metrics::new());
    let d = Dispatcher::from_config(
        &alerts(vec![sink(SinkKind::Alertmanager, Some(am.url("/am")))]),
        None,
        metrics.clone(),
    )
    .unwrap();
    let event = ScalingEvent::drain_failed(ObjectRef::node("minion-3"), "workers", "2 pods could not be evicted")
        .at(at("2024-06-01T10:00:00Z"));
    let id = event.id.clone();
    d.dispatch(event);

    let r = am.next().await;
    assert_eq!(r.path, "/am/api/v2/alerts");
    assert_eq!(r.headers["content-type"], "application/json");
    assert_eq!(
        r.json(),
        json!([{
            "labels": {
                "alertname": "DrainFailed",
                "severity": "warning",
                "source": "heatscaler",
                "group": "workers",
                "node": "minion-3"
            },
            "annotations": {
                "summary": "DrainFailed on node minion-3",
                "description": "drain failed, node uncordoned: 2 pods could not be evicted",
                "event_id": id,
                "why": "2 pods could not be evicted"
            },
            "startsAt": "2024-06-01T10:00:00Z",
            "endsAt": "2024-06-01T10:05:00Z"
        }])
    );
    until("sent counted", || metrics.alert_count("alertmanager-0", AlertOutcome::Sent) == 1).await;

    // A pod-level alert is labelled with namespace and pod.
    let pod = ObjectRef::pod("shop", "web-7").with_uid("4f1c");
    d.dispatch(ScalingEvent::pod_resize_infeasible(pod, "node has 2 CPUs").at(at("2024-06-01T10:00:00Z")));
    let labels = am.next().await.json()[0]["labels"].clone();
    assert_eq!(
        labels,
        json!({"alertname": "PodResizeInfeasible", "severity": "warning", "source": "heatscaler",
               "namespace": "shop", "pod": "web-7"})
    );
}

#[tokio::test]
async fn webhook_body_is_signed_over_its_exact_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let mut hook = Receiver::start(&[], true).await;
    let mut cfg = sink(SinkKind::Webhook, Some(hook.url("/hooks/heatscaler")));
    cfg.hmac_secret = Some(secret_file(dir.path(), "hmac", "correct horse battery staple"));
    let d = Dispatcher::from_config(&alerts(vec![cfg]), None, Arc::new(Metrics::new())).unwrap();
    let event = ScalingEvent::scaled_up_group("workers", 3, 5, 12).at(at("2024-06-01T10:00:00Z"));
    let id = event.id.clone();
    let before = Timestamp::now().as_second();
    d.dispatch(event);

    let r = hook.next().await;
    assert_eq!(r.path, "/hooks/heatscaler");
    let sig = r.headers["x-heatscaler-signature"].to_str().unwrap();
    let ts = r.headers["x-heatscaler-timestamp"].to_str().unwrap();
    assert_eq!(r.headers["x-heatscaler-delivery"].to_str().unwrap(), id);

    // Independently of heatscaler's code: HMAC-SHA256 of the raw body, hex.
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(b"correct horse battery staple").unwrap();
    mac.update(&r.body);
    let expected: String = mac.finalize().into_bytes().iter().map(|b| format!("{b:02x}")).collect();
    assert_eq!(sig, format!("sha256={expected}"));

    let body = r.json();
    let sent_at = body["sent_at"].as_i64().unwrap();
    assert_eq!(ts, sent_at.to_string());
    assert!(sent_at >= before && sent_at <= Timestamp::now().as_second());
    assert_eq!(
        body,
        json!({
            "version": "heatscaler.alert/v1",
            "id": id,
            "sent_at": sent_at,
            "event": {
                "id": id,
                "reason": "ScaledUpGroup",
                "severity": "info",
                "group": "workers",
                "message": "node group workers scaled up 3->5 for 12 pending pods",
                "fields": {"from_size": "3", "to_size": "5", "pending_pods": "12"},
                "time": "2024-06-01T10:00:00Z"
            }
        })
    );

    // The receiver-side reference check agrees, and rejects a replay after the tolerance.
    let key = SecretString::from("correct horse battery staple");
    let now = Timestamp::now();
    let tolerance = Duration::from_secs(300);
    assert_eq!(webhook::verify(&key, &r.body, sig, ts, now, tolerance).unwrap().id, id);
    let later = Timestamp::from_second(sent_at + 301).unwrap();
    assert!(webhook::verify(&key, &r.body, sig, ts, later, tolerance).is_err());
}

#[tokio::test]
async fn slack_gets_text_and_blocks_at_the_secret_url() {
    let dir = tempfile::tempdir().unwrap();
    let mut slack = Receiver::start(&[], true).await;
    let mut cfg = sink(SinkKind::Slack, None);
    cfg.url_secret = Some(secret_file(dir.path(), "slack", &slack.url("/services/T0/B0/tok3n")));
    let d = Dispatcher::from_config(&alerts(vec![cfg]), None, Arc::new(Metrics::new())).unwrap();
    d.dispatch(
        ScalingEvent::scale_up_failed("workers", 3, 5, "Quota exceeded for instances").at(at("2024-06-01T10:00:00Z")),
    );

    let r = slack.next().await;
    assert_eq!(r.path, "/services/T0/B0/tok3n");
    assert_eq!(
        r.json(),
        json!({
            "text": ":warning: ScaleUpFailed on node group workers: scaling node group workers 3-&gt;5 failed: Quota exceeded for instances",
            "blocks": [
                {"type": "section", "text": {"type": "mrkdwn",
                    "text": ":warning: *ScaleUpFailed* on node group workers\nscaling node group workers 3-&gt;5 failed: Quota exceeded for instances"}},
                {"type": "context", "elements": [{"type": "mrkdwn",
                    "text": "severity: warning  ·  group: `workers`  ·  error: `Quota exceeded for instances`  ·  from_size: `3`  ·  to_size: `5`  ·  at 2024-06-01T10:00:00Z"}]}
            ]
        })
    );
}

// ------------------------------------------------------------------ delivery

#[tokio::test]
async fn server_errors_and_throttling_are_retried_until_success() {
    let mut am = Receiver::start(&[500, 503, 429], true).await;
    let metrics = Arc::new(Metrics::new());
    let d =
        Dispatcher::from_config(&alerts(vec![sink(SinkKind::Alertmanager, Some(am.url("")))]), None, metrics.clone())
            .unwrap();
    d.dispatch(ScalingEvent::scale_up_failed("workers", 1, 2, "boom"));
    let first = am.next().await.body;
    for _ in 0..3 {
        assert_eq!(am.next().await.body, first, "a retry resends the same alert");
    }
    until("sent", || metrics.alert_count("alertmanager-0", AlertOutcome::Sent) == 1).await;
    assert_eq!(metrics.alert_count("alertmanager-0", AlertOutcome::Failed), 0);
    assert!(am.nothing_more());
}

#[tokio::test]
async fn a_client_error_is_not_retried_and_exhausted_retries_fail() {
    let mut am = Receiver::start(&[400], true).await;
    let metrics = Arc::new(Metrics::new());
    let d =
        Dispatcher::from_config(&alerts(vec![sink(SinkKind::Alertmanager, Some(am.url("")))]), None, metrics.clone())
            .unwrap();
    d.dispatch(ScalingEvent::scale_up_failed("workers", 1, 2, "boom"));
    am.next().await;
    until("failed", || metrics.alert_count("alertmanager-0", AlertOutcome::Failed) == 1).await;
    assert!(am.nothing_more(), "a 400 is final");
    assert_eq!(metrics.alert_count("alertmanager-0", AlertOutcome::Sent), 0);

    // 500 on every attempt: max-attempts requests, then failed.
    let mut down = Receiver::start(&[500; 5], true).await;
    let d =
        Dispatcher::from_config(&alerts(vec![sink(SinkKind::Alertmanager, Some(down.url("")))]), None, metrics.clone())
            .unwrap();
    d.dispatch(ScalingEvent::scale_up_failed("workers", 1, 2, "boom"));
    for _ in 0..5 {
        down.next().await;
    }
    until("failed", || metrics.alert_count("alertmanager-0", AlertOutcome::Failed) == 2).await;
    assert!(down.nothing_more());
}

#[tokio::test]
async fn the_same_reason_and_object_is_sent_once_per_window() {
    let mut hook = Receiver::start(&[], true).await;
    let metrics = Arc::new(Metrics::new());
    let d = Dispatcher::from_config(&alerts(vec![sink(SinkKind::Webhook, Some(hook.url("/")))]), None, metrics.clone())
        .unwrap();
    for why in ["timeout", "still timing out", "and again"] {
        d.dispatch(ScalingEvent::drain_failed(ObjectRef::node("minion-1"), "workers", why));
    }
    d.dispatch(ScalingEvent::drain_failed(ObjectRef::node("minion-2"), "workers", "timeout"));
    assert_eq!(metrics.alert_count("webhook-0", AlertOutcome::Deduplicated), 2);

    let nodes: Vec<Value> = vec![hook.next().await.json(), hook.next().await.json()];
    let names: Vec<&str> = nodes.iter().map(|b| b["event"]["object"]["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["minion-1", "minion-2"]);
    assert_eq!(nodes[0]["event"]["message"], "drain failed, node uncordoned: timeout", "the first one is sent");
    until("sent", || metrics.alert_count("webhook-0", AlertOutcome::Sent) == 2).await;
    assert!(hook.nothing_more());
}

#[tokio::test]
async fn sinks_get_what_their_severity_and_audience_ask_for() {
    let mut am = Receiver::start(&[], true).await;
    let mut hook = Receiver::start(&[], true).await;
    let mut detailed = Receiver::start(&[], true).await;
    let mut all = sink(SinkKind::Webhook, Some(detailed.url("/")));
    all.include_details = true;
    all.name = Some("everything".into());
    let d = Dispatcher::from_config(
        &alerts(vec![
            sink(SinkKind::Alertmanager, Some(am.url(""))),
            sink(SinkKind::Webhook, Some(hook.url("/"))),
            all,
        ]),
        None,
        Arc::new(Metrics::new()),
    )
    .unwrap();
    assert_eq!(d.sink_names(), ["alertmanager-0", "webhook-1", "everything"]);
    d.dispatch(ScalingEvent::drain_started(ObjectRef::node("m1"), "workers", 4)); // info, detail
    d.dispatch(ScalingEvent::scaled_up_group("workers", 1, 2, 1)); // info, operators
    d.dispatch(ScalingEvent::drain_failed(ObjectRef::node("m1"), "workers", "t")); // warning, operators

    assert_eq!(am.next().await.json()[0]["labels"]["alertname"], "DrainFailed");
    let reasons = |r: &mut Vec<String>, v: Value| r.push(v["event"]["reason"].as_str().unwrap().to_string());
    let mut got = Vec::new();
    for _ in 0..2 {
        reasons(&mut got, hook.next().await.json());
    }
    assert_eq!(got, ["ScaledUpGroup", "DrainFailed"]);
    let mut got = Vec::new();
    for _ in 0..3 {
        reasons(&mut got, detailed.next().await.json());
    }
    assert_eq!(got, ["DrainStarted", "ScaledUpGroup", "DrainFailed"]);
    assert!(am.nothing_more() && hook.nothing_more());
}

#[tokio::test]
async fn a_full_queue_drops_the_oldest_and_counts_it() {
    let mut hook = Receiver::start(&[], false).await;
    let metrics = Arc::new(Metrics::new());
    let mut cfg = alerts(vec![sink(SinkKind::Webhook, Some(hook.url("/")))]);
    cfg.queue_capacity = 3;
    let d = Dispatcher::from_config(&cfg, None, metrics.clone()).unwrap();
    let node_event = |i: u32| ScalingEvent::drain_failed(ObjectRef::node(format!("m{i}")), "workers", "t");

    d.dispatch(node_event(0));
    let held = hook.next().await; // the worker is now stuck on m0
    for i in 1..=6 {
        d.dispatch(node_event(i));
    }
    assert_eq!(metrics.alert_count("webhook-0", AlertOutcome::Dropped), 3, "m1..m3 pushed out by m4..m6");
    assert!(metrics.encode().contains("heatscaler_alert_queue_length{sink=\"webhook-0\"} 3"));

    hook.open();
    let mut order = vec![held.json()["event"]["object"]["name"].as_str().unwrap().to_string()];
    for _ in 0..3 {
        order.push(hook.next().await.json()["event"]["object"]["name"].as_str().unwrap().to_string());
    }
    assert_eq!(order, ["m0", "m4", "m5", "m6"]);
    until("sent", || metrics.alert_count("webhook-0", AlertOutcome::Sent) == 4).await;
}

#[tokio::test]
async fn a_hanging_receiver_never_delays_dispatch() {
    let mut hung = Receiver::start(&[], false).await;
    let metrics = Arc::new(Metrics::new());
    let mut cfg = alerts(vec![sink(SinkKind::Webhook, Some(hung.url("/")))]);
    cfg.sinks[0].timeout = CfgDuration::from_secs(60);
    cfg.queue_capacity = 1000;
    let d = Dispatcher::from_config(&cfg, None, metrics.clone()).unwrap();

    d.dispatch(ScalingEvent::drain_failed(ObjectRef::node("m0"), "workers", "t"));
    hung.next().await; // the receiver now holds the worker's request

    let n = 2000u32;
    let mut worst = Duration::ZERO;
    let start = Instant::now();
    for i in 1..=n {
        let e = ScalingEvent::drain_failed(ObjectRef::node(format!("m{i}")), "workers", "t");
        let t = Instant::now();
        d.dispatch(e);
        worst = worst.max(t.elapsed());
    }
    let total = start.elapsed();
    println!("dispatch with a hanging sink: {n} events in {total:?}, mean {:?}, worst {worst:?}", total / n);
    assert_eq!(hung.answered(), 0, "every dispatch returned while the receiver still held the request");
    assert_eq!(metrics.alert_count("webhook-0", AlertOutcome::Sent), 0);
    assert_eq!(metrics.alert_count("webhook-0", AlertOutcome::Dropped), u64::from(n) - 1000);

    // Shutdown gives up after its grace period and counts what is left.
    let t = Instant::now();
    let report = d.shutdown(Duration::from_millis(200)).await;
    println!("shutdown with a hanging sink took {:?}", t.elapsed());
    assert_eq!(report.dropped, 1001, "1000 queued + 1 in flight");
    assert_eq!(metrics.alert_count("webhook-0", AlertOutcome::Dropped), u64::from(n) - 1000 + 1001);
}

// ------------------------------------------------------------------ secrets

#[tokio::test]
async fn secrets_stay_out_of_logs_errors_and_debug() {
    let logs = LogBuffer::global();
    let dir = tempfile::tempdir().unwrap();
    // A port with nothing listening: every attempt fails with "connection refused".
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap()
    };
    let slack_url = format!("http://{closed}/services/T0/B0/SLACKTOKEN123");
    let mut slack = sink(SinkKind::Slack, None);
    slack.url_secret = Some(secret_file(dir.path(), "slack", &slack_url));
    let mut hook = sink(SinkKind::Webhook, Some(format!("http://{closed}/hook")));
    hook.hmac_secret = Some(secret_file(dir.path(), "hmac", "HMACKEY456"));
    let mut cfg = alerts(vec![slack, hook]);
    cfg.max_attempts = 2;
    let metrics = Arc::new(Metrics::new());
    let d = Dispatcher::from_config(&cfg, None, metrics.clone()).unwrap();
    d.dispatch(ScalingEvent::scale_up_failed("workers", 1, 2, "boom"));
    until("both sinks failed", || {
        metrics.alert_count("slack-0", AlertOutcome::Failed) == 1
            && metrics.alert_count("webhook-1", AlertOutcome::Failed) == 1
    })
    .await;

    let text = logs.text();
    assert!(text.contains("notification could not be delivered"), "{text}");
    assert!(text.to_lowercase().contains("connect"), "the cause is logged: {text}");
    let debug = format!("{d:?}");
    for secret in ["SLACKTOKEN123", "HMACKEY456"] {
        assert!(!text.contains(secret), "{secret} in logs:\n{text}");
        assert!(!debug.contains(secret), "{secret} in {debug}");
        assert!(!metrics.encode().contains(secret));
    }

    // A Slack URL secret that is not a URL is reported without being quoted.
    let mut bad = sink(SinkKind::Slack, None);
    bad.url_secret = Some(secret_file(dir.path(), "bad", "hooks.slack.com/services/T0/B0/SLACKTOKEN123"));
    let err = Dispatcher::from_config(&alerts(vec![bad]), None, metrics).unwrap_err().to_string();
    assert!(err.starts_with("alerts.sinks[0] (slack-0): url-secret is not a valid URL"), "{err}");
    assert!(!err.contains("SLACKTOKEN123"));
}

// ------------------------------------------------------------- Kubernetes Events

#[tokio::test]
async fn kubernetes_events_need_an_object_and_an_unreachable_api_drops_them() {
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap()
    };
    let config = kube::Config::new(format!("http://{closed}").parse().unwrap());
    let client = kube::Client::try_from(config).unwrap();
    let sink = KubeEventSink::new(client, Some("master-1".into()));
    let metrics = Arc::new(Metrics::new());
    let mut cfg = alerts(vec![]);
    cfg.kubernetes_events = true;
    cfg.max_attempts = 3;
    let d = Dispatcher::from_config(&cfg, Some(sink), metrics.clone()).unwrap();
    assert_eq!(d.sink_names(), [KUBERNETES_EVENTS_SINK]);

    // Group-level events have no object and no fallback was given: not queued, not counted.
    d.dispatch(ScalingEvent::scaled_up_group("workers", 1, 2, 1));
    d.dispatch(ScalingEvent::triggered_scale_up(ObjectRef::pod("shop", "web-1"), "workers", 1, 2));
    // No connection is an API server failing: the Event is dropped (not
    // retried against it) and counted.
    until("dropped", || metrics.alert_count(KUBERNETES_EVENTS_SINK, AlertOutcome::Dropped) == 1).await;
    assert_eq!(metrics.alert_count(KUBERNETES_EVENTS_SINK, AlertOutcome::Sent), 0);
    assert!(d.shutdown(Duration::from_secs(1)).await.dropped == 0, "the group event was never queued");

    // kubernetes-events: false leaves the sink out even when one is given.
    let client = kube::Client::try_from(kube::Config::new(format!("http://{closed}").parse().unwrap())).unwrap();
    let off = Dispatcher::from_config(&alerts(vec![]), Some(KubeEventSink::new(client, None)), metrics).unwrap();
    assert!(off.sink_names().is_empty());
}

/// The API server failing every Event write (503): each Event was sent with
/// the dispatcher's retries, and the next one started its retries afresh —
/// load on a failing API server at the pace of the retry policy (before the
/// fix, every Event here failed after its 5 attempts). Now the first failure
/// stops the writes: every Event
/// meanwhile is dropped and counted, a probe goes after a growing back-off,
/// and the first answer after the outage writes Events again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubernetes_events_are_dropped_not_retried_while_the_api_server_fails() {
    let sim = kubesim::KubeSim::start(kubesim::Options::fast()).await.unwrap();
    let fault = sim.add_fault(kubesim::FaultRule::error(503, 1.0).on_path("/apis/events.k8s.io"));
    let sink = KubeEventSink::new(sim.kube_client_without_retries().unwrap(), Some("master-1".into()));
    let metrics = Arc::new(Metrics::new());
    let mut cfg = alerts(vec![]);
    cfg.kubernetes_events = true;
    let d = Dispatcher::from_config(&cfg, Some(sink), metrics.clone()).unwrap();
    // 20 Events over 10 s, each on its own pod (no deduplication; kubesim
    // has the namespace `default`, so the Events can be written once it answers).
    for i in 0..20 {
        d.dispatch(ScalingEvent::triggered_scale_up(ObjectRef::pod("default", format!("web-{i}")), "workers", 1, 2));
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    until("all 20 settled", || metrics.alert_count(KUBERNETES_EVENTS_SINK, AlertOutcome::Dropped) == 20).await;
    let requests = sim.faults().hits(fault).len();
    println!("{requests} Event requests reached the failing API server for 20 Events in 10 s");
    // The first Event, and at most the probes of a back-off starting at 5 s.
    assert!(requests <= 3, "{requests} requests reached the failing API server");
    assert_eq!(metrics.alert_count(KUBERNETES_EVENTS_SINK, AlertOutcome::Failed), 0);

    // The API server answers again: the next probe succeeds and Events flow.
    sim.faults().clear();
    let deadline = Instant::now() + Duration::from_secs(90);
    let mut i = 100;
    while metrics.alert_count(KUBERNETES_EVENTS_SINK, AlertOutcome::Sent) == 0 {
        assert!(
            Instant::now() < deadline,
            "no Event written after the API server recovered: {} failed, {} dropped",
            metrics.alert_count(KUBERNETES_EVENTS_SINK, AlertOutcome::Failed),
            metrics.alert_count(KUBERNETES_EVENTS_SINK, AlertOutcome::Dropped)
        );
        d.dispatch(ScalingEvent::triggered_scale_up(ObjectRef::pod("default", format!("web-{i}")), "workers", 1, 2));
        i += 1;
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    d.dispatch(ScalingEvent::triggered_scale_up(ObjectRef::pod("default", "after"), "workers", 1, 2));
    until("the next Event goes at once", || metrics.alert_count(KUBERNETES_EVENTS_SINK, AlertOutcome::Sent) == 2).await;
    d.shutdown(Duration::from_secs(1)).await;
}
