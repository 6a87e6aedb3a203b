//! Minions joining and leaving, as real ones would: when Heat lists a new
//! member (its server created), the VM boots and its kubelet registers a
//! Ready Node with that server's providerID — then, and not before. When Heat
//! deletes the member the VM is gone: its kubelet falls silent, and on the real
//! control plane the OpenStack cloud controller manager deletes the Node once
//! the node lifecycle controller has marked it NotReady (the CCM's cloud node
//! lifecycle controller looks at NotReady nodes only). heatscaler deletes it
//! first when it can: that is its job. Also records every member ever listed,
//! so a test can assert that a member was never removed.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use heatscaler_core::model::MemberStatus;
use heatscaler_daemon::cloud::group::{Backend, NodeGroupBackend};
use k8s_openapi::api::core::v1::Node;
use kube::Api;

use super::kubelets::{Kubelets, Shape};

pub const GROUP_LABEL: &str = "heatscaler.io/node-group";

#[derive(Default)]
pub struct MinionLog {
    /// `group/member` → node it registered as.
    pub registered: BTreeMap<String, String>,
    /// Every `group/member` Heat listed at some point.
    pub listed: BTreeSet<String>,
    /// Members of the first group Heat listed and later stopped listing (by member name).
    pub removed: BTreeSet<String>,
    /// Every `group/member` Heat listed and later stopped listing.
    pub removed_all: BTreeSet<String>,
    /// `group/member` listed in the latest read.
    pub current: BTreeSet<String>,
    /// Smallest desired size of the first group seen after `watch_min_desired`.
    pub min_desired_seen: Option<u32>,
    /// Nodes the cloud controller manager deleted (their VM gone, NotReady).
    pub deleted_by_ccm: BTreeSet<String>,
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

/// One group the harness boots minions for.
pub struct Joining {
    pub backend: Arc<Backend>,
    pub shape: Shape,
}

impl Minions {
    /// `never_join`: `group/member` whose VM never registers a node.
    pub fn start(
        kubelets: Arc<Kubelets>,
        client: kube::Client,
        groups: Vec<Joining>,
        never_join: BTreeSet<String>,
    ) -> Minions {
        let log: Arc<Mutex<MinionLog>> = Arc::default();
        let l = log.clone();
        let task = tokio::spawn(async move {
            let nodes: Api<Node> = Api::all(client);
            // Nodes whose VM is gone, for the cloud controller manager.
            let mut vm_gone: BTreeSet<String> = BTreeSet::new();
            loop {
                for (g, joining) in groups.iter().enumerate() {
                    let Ok(read) = joining.backend.read().await else { continue };
                    let group = joining.backend.config().name.clone();
                    let key = |m: &str| format!("{group}/{m}");
                    let now: BTreeSet<String> = read.members.iter().map(|m| key(&m.name)).collect();
                    let mut boot = Vec::new();
                    {
                        let mut log = l.lock().unwrap();
                        let was: Vec<String> =
                            log.current.iter().filter(|k| k.starts_with(&format!("{group}/"))).cloned().collect();
                        for gone in was.into_iter().filter(|k| !now.contains(k)) {
                            log.current.remove(&gone);
                            log.removed_all.insert(gone.clone());
                            if g == 0 {
                                log.removed.insert(gone[group.len() + 1..].to_string());
                            }
                            if let Some(node) = log.registered.get(&gone) {
                                // The server is deleted: its kubelet falls silent.
                                kubelets.vm_deleted(node);
                                vm_gone.insert(node.clone());
                            }
                        }
                        for m in &read.members {
                            log.listed.insert(key(&m.name));
                            log.current.insert(key(&m.name));
                            let ready = m.status == MemberStatus::Complete && m.server_id.is_some();
                            if ready
                                && !log.registered.contains_key(&key(&m.name))
                                && !never_join.contains(&key(&m.name))
                            {
                                boot.push((m.name.clone(), m.server_id.clone().unwrap()));
                            }
                        }
                        if g == 0
                            && let Some(min) = log.min_desired_seen.as_mut()
                        {
                            *min = (*min).min(read.desired);
                        }
                    }
                    for (member, server) in boot {
                        let name = node_name(&group, &member);
                        let mut shape = joining.shape.clone();
                        shape.labels.insert(GROUP_LABEL.into(), group.clone());
                        let provider_id = format!("openstack:///{server}");
                        // The API server may be down (the chaos soak kills it): the VM
                        // keeps trying to register, as a kubelet does.
                        match kubelets.boot(&name, Some(&provider_id), &shape).await {
                            Ok(()) => {
                                l.lock().unwrap().registered.insert(key(&member), name);
                            }
                            Err(e) => eprintln!("minion {name}: its kubelet could not register yet: {e}"),
                        }
                    }
                }
                if kubelets.is_real() {
                    cloud_controller_manager(&nodes, &mut vm_gone, &l).await;
                }
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        });
        Minions { log, task }
    }

    pub fn log<T>(&self, f: impl FnOnce(&MinionLog) -> T) -> T {
        f(&self.log.lock().unwrap())
    }

    /// From now on, track the smallest desired size Heat reports for the first group.
    pub fn watch_min_desired(&self, from: u32) {
        self.log.lock().unwrap().min_desired_seen = Some(from);
    }
}

/// The OpenStack CCM's cloud node lifecycle controller: a node that is not
/// Ready and whose instance no longer exists is deleted.
async fn cloud_controller_manager(nodes: &Api<Node>, vm_gone: &mut BTreeSet<String>, log: &Mutex<MinionLog>) {
    let mut forget = Vec::new();
    for name in vm_gone.iter() {
        match nodes.get_opt(name).await {
            Ok(None) => forget.push(name.clone()),
            Ok(Some(node)) => {
                let ready = node
                    .status
                    .and_then(|s| s.conditions)
                    .into_iter()
                    .flatten()
                    .any(|c| c.type_ == "Ready" && c.status == "True");
                if !ready && nodes.delete(name, &Default::default()).await.is_ok() {
                    log.lock().unwrap().deleted_by_ccm.insert(name.clone());
                    forget.push(name.clone());
                }
            }
            Err(_) => {}
        }
    }
    for name in forget {
        vm_gone.remove(&name);
    }
}
