//! kube-runtime's watcher against kubesim: it resumes after a dropped watch
//! without relisting, and relists after 410 Gone.

mod common;

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{WAIT, nodes, start};
use futures::StreamExt;
use k8s_openapi::api::core::v1::Pod;
use kube::api::Api;
use kube::runtime::{WatchStreamExt, watcher};
use kubesim::{FaultRule, PodTemplate};

#[derive(Default)]
struct Seen {
    names: BTreeSet<String>,
    inits: usize,
    errors: Vec<String>,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watcher_survives_dropped_watches_and_relists_after_410() {
    let (sim, client) = start(nodes(1, "8", "16Gi")).await;
    sim.create(&PodTemplate::new("c").pod("default", "before")).unwrap();
    let pods: Api<Pod> = Api::default_namespaced(client);
    let seen = Arc::new(Mutex::new(Seen::default()));
    let sink = seen.clone();
    let task = tokio::spawn(async move {
        let mut stream = watcher(pods, watcher::Config::default()).default_backoff().boxed();
        while let Some(event) = stream.next().await {
            let mut s = sink.lock().unwrap();
            match event {
                Ok(watcher::Event::Init) => {
                    s.inits += 1;
                    s.names.clear();
                }
                Ok(watcher::Event::InitApply(p) | watcher::Event::Apply(p)) => {
                    s.names.insert(p.metadata.name.unwrap());
                }
                Ok(watcher::Event::Delete(p)) => {
                    s.names.remove(&p.metadata.name.unwrap());
                }
                Ok(watcher::Event::InitDone) => {}
                Err(e) => s.errors.push(e.to_string()),
            }
        }
    });
    let has = |name: &'static str| {
        let seen = seen.clone();
        move |_: &kubesim::KubeSimHandle| seen.lock().unwrap().names.contains(name)
    };
    sim.wait_for("initial list", WAIT, has("before")).await.unwrap();
    assert_eq!(seen.lock().unwrap().inits, 1);

    // A dropped connection: the watcher re-watches from its last resourceVersion.
    sim.drop_watches();
    sim.create(&PodTemplate::new("c").pod("default", "after-drop")).unwrap();
    sim.wait_for("event after the drop", WAIT, has("after-drop")).await.unwrap();
    assert_eq!(seen.lock().unwrap().inits, 1, "resumed without relisting");

    // Changes, then a compaction, while the watch is down: the watcher's
    // resourceVersion is older than the history, re-watching gets 410 Gone
    // and the watcher relists. Re-watches fail (503) until then, so the
    // watcher cannot catch up before the compaction, however fast it retries.
    let down = sim.faults().add(FaultRule::error(503, 1.0).on_verbs(&["watch"]));
    sim.drop_watches();
    sim.delete::<Pod>(Some("default"), "before").unwrap();
    sim.create(&PodTemplate::new("c").pod("default", "after-410")).unwrap();
    sim.compact_watch_history();
    sim.faults().remove(down);
    sim.wait_for("relist after 410", WAIT, |_| {
        let s = seen.lock().unwrap();
        s.inits == 2 && s.names.contains("after-410")
    })
    .await
    .unwrap();
    // The deletion that happened meanwhile is reflected: the pod terminates gracefully, then goes.
    let gone = sim
        .wait_for("deleted pod gone from the watcher's view", WAIT, |_| !seen.lock().unwrap().names.contains("before"));
    if let Err(e) = gone.await {
        let s = seen.lock().unwrap();
        let stored: Vec<String> = sim.list::<Pod>(None).into_iter().filter_map(|p| p.metadata.name).collect();
        let before = sim.list::<Pod>(None).into_iter().find(|p| p.metadata.name.as_deref() == Some("before"));
        let state = before.map(|p| {
            (
                p.metadata.deletion_timestamp,
                p.metadata.deletion_grace_period_seconds,
                p.spec.and_then(|s| s.node_name),
                p.status.and_then(|s| s.phase),
            )
        });
        panic!(
            "{e:?}: inits {}, errors {:?}, seen {:?}, stored {stored:?}, before (deletion, grace, node, phase) {state:?}",
            s.inits, s.errors, s.names
        );
    }
    tokio::time::sleep(Duration::from_millis(10)).await;
    task.abort();
}
