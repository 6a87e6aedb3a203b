//! The VPA-defaults peer as a component: VPA's updater with its documented
//! defaults (`peers::vpa_defaults`) run on every metrics tick (its
//! `--updater-interval` is 1m, the scenario's default tick), evicting through
//! the world's eviction API — PDBs honoured, owners told — with VPA's own
//! admission controller giving the replacements the recommendation. It reads
//! the VPA objects and pods and knows nothing of the node level: run beside
//! cluster-autoscaler's peer, the two are blind to each other, as operators
//! run them today.

use std::collections::BTreeMap;
use std::time::Duration;

use heatscaler_core::model::{Pod, Timestamp, UpdateMode};

use crate::peers::vpa_defaults::{self, UpdaterView};
use crate::report::TimelineEvent;
use crate::world::{Eviction, Owners, World};

/// A pod as VPA's updater reads it: the object and what its kubelet reports.
struct Viewed<'a> {
    pod: &'a Pod,
    serving: bool,
    last_oom_after: Option<Duration>,
}

impl UpdaterView for Viewed<'_> {
    fn pod(&self) -> &Pod {
        self.pod
    }

    fn up(&self, _now: Timestamp) -> bool {
        self.serving
    }

    fn last_oom_after(&self) -> Option<Duration> {
        self.last_oom_after
    }
}

/// One updater loop over every VPA object that lets it evict.
pub fn run(world: &mut World<'_>, owners: &mut dyn Owners) {
    let now = world.now();
    let mut doomed: Vec<(String, String)> = Vec::new();
    for v in &world.cluster.snap.vertical {
        if !matches!(v.update_mode, UpdateMode::Recreate | UpdateMode::InPlaceOrRecreate) {
            continue;
        }
        let pods: Vec<Viewed<'_>> = world
            .cluster
            .snap
            .pods
            .iter()
            .filter(|p| p.workload.as_ref() == Some(&v.workload) && p.deletion.is_none())
            .map(|p| Viewed {
                pod: p,
                serving: world.serving(&p.uid),
                last_oom_after: world.container_run(&p.uid).and_then(|r| r.last_oom_after),
            })
            .collect();
        // VPA reads the configured replicas from the controller; the live pods here.
        let configured = pods.len() as u32;
        for uid in vpa_defaults::evictions(&pods, v, configured, now) {
            doomed.push((uid, v.workload.name.to_string()));
        }
    }
    for (uid, workload) in doomed {
        let name = world.cluster.pod(&uid).map(|p| p.name.to_string()).unwrap_or_default();
        let mut allowed = BTreeMap::new();
        let w = world.workload_of(&uid);
        let answer = world.evict(&uid, None, &mut allowed, owners);
        for (i, left) in allowed {
            world.cluster.snap.pdbs[i].disruptions_allowed = left;
        }
        match answer {
            Eviction::Evicted => {
                world.recreated(w);
                world.record(&workload, TimelineEvent::PodRecreated { pod: name, wanted: "VPA updater".into() });
            }
            Eviction::Refused => world.journal.pod_level.recreations_refused += 1,
            Eviction::Gone => {}
        }
    }
}
