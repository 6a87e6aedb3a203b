//! Minions joining and leaving, as real ones would: when Heat lists a new
//! member (its server created), a kubelet registers a Ready Node with that
//! server's providerID; when Heat deletes the member, the server is gone and
//! its kubelet stops reporting (the Node turns NotReady; deleting the Node
//! object is heatscaler's job). Also records every member ever listed, so a
//! test can assert that a member was never removed.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use heatscaler_core::model::MemberStatus;
use heatscaler_daemon::cloud::group::{Backend, NodeGroupBackend};
use kubesim::{KubeSimHandle, NodeSpec};

pub const GROUP_LABEL: &str = "heatscaler.io/node-group";

#[derive(Default)]
pub struct MinionLog {
    /// member → node it registered as.
    pub registered: BTreeMap<String, String>,
    /// Every member Heat listed at some point.
    pub listed: BTreeSet<String>,
    /// Members Heat listed and later stopped listing.
    pub removed: BTreeSet<String>,
    /// Members listed in the latest read.
    pub current: BTreeSet<String>,
    /// Smallest desired size seen after `watch_min_from` was set.
    pub min_desired_seen: Option<u32>,
}

pub struct Minions {
    log: Arc<Mutex<MinionLog>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Minions {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Node name of a member: `<group>-<member>`.
pub fn node_name(group: &str, member: &str) -> String {
    format!("{group}-{member}")
}

impl Minions {
    pub fn start(sim: Arc<KubeSimHandle>, backend: Arc<Backend>, shape: NodeSpec, never_join: &[&str]) -> Minions {
        let log: Arc<Mutex<MinionLog>> = Arc::default();
        let skip: Arc<Mutex<BTreeSet<String>>> =
            Arc::new(Mutex::new(never_join.iter().map(|m| m.to_string()).collect()));
        let (l, s) = (log.clone(), skip.clone());
        let task = tokio::spawn(async move {
            let group = backend.config().name.clone();
            loop {
                if let Ok(read) = backend.read().await {
                    let mut log = l.lock().unwrap();
                    let now: BTreeSet<String> = read.members.iter().map(|m| m.name.clone()).collect();
                    for gone in log.current.difference(&now).cloned().collect::<Vec<_>>() {
                        log.removed.insert(gone.clone());
                        if let Some(node) = log.registered.get(&gone) {
                            // The server is deleted: its kubelet falls silent.
                            let _ = sim.set_node_ready(node, false);
                        }
                    }
                    for m in &read.members {
                        log.listed.insert(m.name.clone());
                        let ready = m.status == MemberStatus::Complete && m.server_id.is_some();
                        if ready && !log.registered.contains_key(&m.name) && !s.lock().unwrap().contains(&m.name) {
                            let name = node_name(&group, &m.name);
                            let mut spec = shape.clone();
                            spec.name = name.clone();
                            spec.provider_id = Some(format!("openstack:///{}", m.server_id.as_deref().unwrap()));
                            spec.labels.insert(GROUP_LABEL.into(), group.clone());
                            sim.add_node(spec).expect("register the minion's node");
                            log.registered.insert(m.name.clone(), name);
                        }
                    }
                    if let Some(min) = log.min_desired_seen.as_mut() {
                        *min = (*min).min(read.desired);
                    }
                    log.current = now;
                }
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        });
        Minions { log, task }
    }

    pub fn log<T>(&self, f: impl FnOnce(&MinionLog) -> T) -> T {
        f(&self.log.lock().unwrap())
    }

    /// From now on, track the smallest desired size Heat reports.
    pub fn watch_min_desired(&self, from: u32) {
        self.log.lock().unwrap().min_desired_seen = Some(from);
    }
}
