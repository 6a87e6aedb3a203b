//! The systemd notifier against a real notification socket.
//!
//! A custom harness (`harness = false`): sd-notify reads `NOTIFY_SOCKET` and
//! `WATCHDOG_USEC` from the environment, which can only be set safely before
//! any thread exists — i.e. first thing in `main`, before the Tokio runtime.

use std::os::unix::net::UnixDatagram;
use std::time::{Duration, Instant};

use heatscaler_daemon::telemetry::{Health, HealthOptions, Notifier};

const WATCHDOG: Duration = Duration::from_millis(200);
const HEARTBEAT_TIMEOUT: Duration = Duration::from_millis(300);

fn main() {
    // Outside systemd: nothing to talk to, every call is a no-op.
    assert!(std::env::var_os("NOTIFY_SOCKET").is_none(), "run the tests outside a Type=notify unit");
    let outside = Notifier::from_env();
    assert!(!outside.is_enabled() && outside.watchdog_timeout().is_none());
    outside.ready("ignored");
    outside.stopping("ignored");
    println!("test outside_systemd_is_a_no_op ... ok");

    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("notify");
    let socket = UnixDatagram::bind(&path).unwrap();
    socket.set_read_timeout(Some(Duration::from_millis(50))).unwrap();
    // SAFETY: no other thread exists yet (no runtime, no harness).
    unsafe {
        std::env::set_var("NOTIFY_SOCKET", &path);
        std::env::set_var("WATCHDOG_USEC", WATCHDOG.as_micros().to_string());
        std::env::set_var("WATCHDOG_PID", std::process::id().to_string());
    }
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    runtime.block_on(state_changes(&socket));
    println!("test state_changes_reach_the_socket ... ok");
    runtime.block_on(watchdog_follows_the_heartbeat(&socket));
    println!("test watchdog_follows_the_heartbeat ... ok");
}

fn recv(socket: &UnixDatagram) -> Option<String> {
    let mut buf = [0u8; 4096];
    socket.recv(&mut buf).ok().map(|n| String::from_utf8_lossy(&buf[..n]).into_owned())
}

fn expect(socket: &UnixDatagram) -> String {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        if let Some(m) = recv(socket) {
            return m;
        }
        assert!(Instant::now() < deadline, "no notification within 5s");
    }
}

async fn state_changes(socket: &UnixDatagram) {
    let n = Notifier::from_env();
    assert!(n.is_enabled());
    assert_eq!(n.watchdog_timeout(), Some(WATCHDOG));
    n.ready("synced: 3 groups,\n120 nodes");
    assert_eq!(
        expect(socket),
        "READY=1\nSTATUS=synced: 3 groups, 120 nodes\n",
        "a newline cannot start a new assignment"
    );
    n.status("scaling up workers 3->5");
    assert_eq!(expect(socket), "STATUS=scaling up workers 3->5\n");
    n.reloading();
    let m = expect(socket);
    assert!(m.starts_with("RELOADING=1\nMONOTONIC_USEC="), "{m}");
    n.stopping("SIGTERM: finishing the current step");
    assert_eq!(expect(socket), "STOPPING=1\nSTATUS=SIGTERM: finishing the current step\n");
    assert!(Notifier::disabled().spawn_watchdog(Health::new(HealthOptions::default())).is_none());
}

/// Counts WATCHDOG=1 pings over `span`, and whether the "stuck" status came.
fn watch(socket: &UnixDatagram, span: Duration) -> (usize, bool) {
    let end = Instant::now() + span;
    let (mut pings, mut stuck) = (0, false);
    while Instant::now() < end {
        match recv(socket).as_deref() {
            Some("WATCHDOG=1\n") => pings += 1,
            Some(m) if m.starts_with("STATUS=main loop stuck") => stuck = true,
            Some(m) => panic!("unexpected notification {m:?}"),
            None => {}
        }
    }
    (pings, stuck)
}

async fn watchdog_follows_the_heartbeat(socket: &UnixDatagram) {
    let health = Health::new(HealthOptions { heartbeat_timeout: HEARTBEAT_TIMEOUT, heat_required: false });
    let beating = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(true));
    let heart = tokio::spawn({
        let (health, beating) = (health.clone(), beating.clone());
        async move {
            loop {
                if beating.load(std::sync::atomic::Ordering::Relaxed) {
                    health.heartbeat();
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
    });
    let task = Notifier::from_env().spawn_watchdog(health.clone()).expect("watchdog enabled");

    // Alive: pinged every WATCHDOG/2 = 100 ms.
    let (pings, stuck) = tokio::task::block_in_place(|| watch(socket, Duration::from_millis(600)));
    println!("  alive: {pings} pings in 600ms");
    assert!(pings >= 2 && !stuck, "{pings} pings while alive");

    // The loop stops beating: after HEARTBEAT_TIMEOUT the pings stop and the status says why.
    beating.store(false, std::sync::atomic::Ordering::Relaxed);
    let stopped_at = Instant::now();
    tokio::task::block_in_place(|| {
        let deadline = Instant::now() + Duration::from_secs(5);
        while !watch(socket, Duration::from_millis(50)).1 {
            assert!(Instant::now() < deadline, "a stuck loop is reported within 5s");
        }
    });
    assert!(!health.liveness().alive);
    let (pings, _) = tokio::task::block_in_place(|| watch(socket, 2 * WATCHDOG));
    println!("  stuck: {pings} pings in the {:?} after the heartbeat went stale", 2 * WATCHDOG);
    assert_eq!(pings, 0, "a stuck loop must not feed the watchdog");
    assert!(stopped_at.elapsed() > HEARTBEAT_TIMEOUT);

    // The loop recovers: feeding resumes.
    beating.store(true, std::sync::atomic::Ordering::Relaxed);
    let (pings, _) = tokio::task::block_in_place(|| watch(socket, Duration::from_millis(400)));
    assert!(pings >= 2, "{pings} pings after recovery");
    task.abort();
    heart.abort();
}
