//! The VPA component: the VPA objects of the scenario's workloads (in the
//! snapshot the planner reads, beside the node groups) and the recommender
//! that fills their `status.recommendation` from the usage samples and OOM
//! kills of each metrics tick — fed exactly as the daemon feeds it
//! (`feed_usage`, `OomTracker`, `feed_ooms`, `retain_pods`). Which
//! recommender settings run is the autoscaler's choice: heatscaler's
//! `policy.pod-resize.recommender`, or VPA's defaults for the peers.

use heatscaler_core::model::{PodResourcePolicy, Resources, SignedDuration, VerticalScaling};
use heatscaler_core::policy::RecommenderSettings;
use heatscaler_core::recommender::{
    ContainerUsage, OomTracker, Recommender, feed_ooms, feed_usage, fill_recommendations,
};

use crate::scenario::{Scenario, VpaSpec, WorkloadSpec};
use crate::world::World;

pub struct Vpa {
    objects: Vec<VerticalScaling>,
    recommender: Recommender,
    ooms: OomTracker,
    oom_window: SignedDuration,
    /// New pods get the recommendation (an admission controller runs).
    admission: bool,
    /// Each object's and container's target when it last moved by more than
    /// [`TARGET_MOVE`] (the report's demand changes).
    targets: std::collections::HashMap<(usize, String), Resources>,
}

/// A recommendation target moving by more than this share is a change in
/// demand (the oscillation-cycle definition of docs/testing.md).
const TARGET_MOVE: f64 = 0.1;

impl Vpa {
    pub fn new(sc: &Scenario, settings: &RecommenderSettings, admission: bool) -> Self {
        let objects = sc.workloads.iter().filter_map(|w| w.vpa.as_ref().map(|v| object(w, v))).collect();
        let recommender = Recommender::from_config(settings);
        let oom_window = recommender.settings().memory_aggregation_interval;
        Self { objects, recommender, ooms: OomTracker::default(), oom_window, admission, targets: Default::default() }
    }

    /// The objects appear in the API, without a recommendation yet.
    pub fn start(&mut self, world: &mut World<'_>) {
        world.cluster.snap.vertical = self.objects.clone();
        world.cluster.snap.admission_applies_recommendations = self.admission;
    }

    /// One metrics tick: the recommender reads the samples and the OOM kills
    /// and writes every object's recommendation.
    pub fn observe(&mut self, world: &mut World<'_>, samples: &[ContainerUsage]) {
        let now = world.now();
        let snap = &mut world.cluster.snap;
        let pods = &snap.pods;
        feed_usage(&mut self.recommender, pods, samples);
        feed_ooms(&mut self.recommender, &self.ooms.observe(pods, now, self.oom_window));
        let live: std::collections::HashSet<_> = pods.iter().map(|p| p.key()).collect();
        self.recommender.retain_pods(|k| live.contains(k));
        let mut moved = false;
        for (i, v) in snap.vertical.iter_mut().enumerate() {
            fill_recommendations(v, &self.recommender, pods);
            for r in &v.recommendations {
                let far = |a: i64, b: i64| (a - b).abs() as f64 > TARGET_MOVE * (b.max(1) as f64);
                let key = (i, r.container_name.clone());
                match self.targets.get(&key) {
                    Some(old) if !far(r.target.cpu_milli, old.cpu_milli) && !far(r.target.memory, old.memory) => {}
                    _ => {
                        moved = true;
                        self.targets.insert(key, r.target.clone());
                    }
                }
            }
        }
        if moved {
            world.journal.recommendation_moved(now);
        }
    }
}

/// The object a user would write for the workload, as the daemon's watch
/// hands it to the planner.
fn object(w: &WorkloadSpec, v: &VpaSpec) -> VerticalScaling {
    let workload = w.workload_ref();
    let resource_policy =
        v.controlled_resources.as_deref().map_or_else(Default::default, PodResourcePolicy::controlling);
    VerticalScaling {
        namespace: w.namespace.clone(),
        name: w.name.clone(),
        workload,
        update_mode: v.update_mode,
        min_replicas: v.min_replicas,
        resource_policy,
        eviction_requirements: Vec::new(),
        // The planner counts the workload's live pods.
        replicas: None,
        recommendations: Vec::new(),
    }
}
