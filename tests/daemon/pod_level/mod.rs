//! The pod level against kubesim over HTTP: the collector, the recommender,
//! VPA objects and their status, the planner, and the resize/eviction calls,
//! driven pass by pass the way the daemon will (see docs/pod-resizing.md,
//! "What the daemon calls, in order").

mod collector;
mod daemon;
#[path = "../../support/e2e/daemon.rs"]
pub(crate) mod daemon_process;
mod observe;
mod resize;
mod watch;

use std::time::Duration;

use heatscaler_core::model::{GroupState, Timestamp, UpdateMode};
use heatscaler_core::planner::action::Action;
use heatscaler_core::planner::{self, Input, Memory, Plan, Policy, ResizePolicy};
use heatscaler_core::policy::{Duration as PolicyDuration, ScaleDownPolicy};
use heatscaler_core::recommender::{OomTracker, Recommender, feed_ooms, feed_usage, fill_recommendations};
use heatscaler_daemon::config::{UpdaterSettings, UsageCollection, UsageSource};
use heatscaler_daemon::usage::{ScrapeTarget, UsageCollector};
use heatscaler_daemon::vpa::StatusUpdate;
use heatscaler_daemon::vpa::api::{self, VerticalPodAutoscaler};
use heatscaler_daemon::vpa::client::{self, VpaObjects};
use k8s_openapi::api::autoscaling::v1::CrossVersionObjectReference;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, ListParams, PostParams};
use kubesim::{KubeSim, KubeSimHandle, NodeSpec, Options};

pub const WAIT: Duration = Duration::from_secs(30);

pub async fn start(nodes: Vec<NodeSpec>) -> (KubeSimHandle, kube::Client) {
    let sim = KubeSim::start(Options::fast()).await.expect("kubesim starts");
    for node in nodes {
        sim.add_node(node).expect("node added");
    }
    let client = sim.kube_client().expect("kube client");
    (sim, client)
}

/// A VPA object naming heatscaler's recommender, for a Deployment.
pub async fn create_vpa(client: &kube::Client, name: &str, mode: api::UpdateMode) -> VerticalPodAutoscaler {
    let spec = api::VerticalPodAutoscalerSpec {
        target_ref: Some(CrossVersionObjectReference {
            api_version: Some("apps/v1".into()),
            kind: "Deployment".into(),
            name: name.into(),
        }),
        update_policy: Some(api::PodUpdatePolicy { update_mode: Some(mode), ..Default::default() }),
        resource_policy: None,
        recommenders: vec![api::RecommenderSelector { name: "heatscaler".into() }],
        startup_boost: None,
    };
    let vpas: Api<VerticalPodAutoscaler> = Api::default_namespaced(client.clone());
    vpas.create(&PostParams::default(), &VerticalPodAutoscaler::new("default", name, spec)).await.expect("VPA created")
}

/// The daemon's pod level, one pass at a time.
pub struct PodLevel {
    pub client: kube::Client,
    collector: UsageCollector,
    pub recommender: Recommender,
    ooms: OomTracker,
    memory: Memory,
    pub policy: Policy,
    objects: VpaObjects,
    /// Node groups to plan with (the Heat side is not simulated here).
    pub groups: Vec<GroupState>,
    /// `pod-resize.admission-controller`: recreated pods get the recommendation.
    pub admission_controller: bool,
}

impl PodLevel {
    pub fn new(client: kube::Client, updater: UpdaterSettings) -> Self {
        let collection = UsageCollection { source: UsageSource::Summary, ..UsageCollection::default() };
        Self {
            collector: UsageCollector::new(client.clone(), &collection),
            recommender: Recommender::from_config(&Default::default()),
            ooms: OomTracker::default(),
            memory: Memory::default(),
            policy: Policy {
                resize: ResizePolicy { enabled: true, updater },
                // The tests' pods are seconds old when they are recreated.
                scale_down: ScaleDownPolicy { min_pod_age: PolicyDuration::from_secs(0), ..ScaleDownPolicy::default() },
                ..Policy::default()
            },
            objects: VpaObjects::default(),
            groups: Vec::new(),
            admission_controller: false,
            client,
        }
    }

    /// Observe, collect, recommend, write status, plan, execute.
    pub async fn pass(&mut self) -> Plan {
        let now = Timestamp::now();
        let mut snapshot = observe::snapshot(&self.client, now).await;
        snapshot.groups = self.groups.clone();
        snapshot.admission_applies_recommendations = self.admission_controller;
        let nodes: Vec<ScrapeTarget> =
            snapshot.nodes.iter().filter(|n| n.ready).map(|n| ScrapeTarget::proxied(n.name.clone())).collect();
        let scrape = self.collector.collect(&nodes, now).await;
        feed_usage(&mut self.recommender, &snapshot.pods, &scrape.containers);
        let window = self.recommender.settings().memory_aggregation_interval;
        feed_ooms(&mut self.recommender, &self.ooms.observe(&snapshot.pods, now, window));

        // VPA objects: a relist through the same event handling as a watch.
        let vpas: Api<VerticalPodAutoscaler> = Api::all(self.client.clone());
        self.objects.apply(kube::runtime::watcher::Event::Init);
        for v in vpas.list(&ListParams::default()).await.expect("list VPAs").items {
            self.objects.apply(kube::runtime::watcher::Event::InitApply(v));
        }
        self.objects.apply(kube::runtime::watcher::Event::InitDone);
        for handled in self.objects.handled("heatscaler", false, |_| None) {
            let namespaced: Api<VerticalPodAutoscaler> =
                Api::namespaced(self.client.clone(), handled.object.metadata.namespace.as_deref().unwrap());
            let (recommendations, pods_matched, unsupported) = match &handled.model {
                Ok(model) => {
                    let mut model = model.clone();
                    fill_recommendations(&mut model, &self.recommender, &snapshot.pods);
                    let matched = snapshot.pods.iter().any(|p| p.workload.as_ref() == Some(&model.workload));
                    let recs = model.recommendations.clone();
                    snapshot.vertical.push(model);
                    (recs, matched, None)
                }
                Err(problem) => (Vec::new(), false, Some(problem.clone())),
            };
            let update = StatusUpdate {
                recommendations: &recommendations,
                pods_matched,
                unsupported: unsupported.as_ref(),
                generation: handled.object.metadata.generation,
                unsupported_fields: &heatscaler_daemon::vpa::unsupported_fields(handled.object),
                upstream: &[],
            };
            client::sync_status(&namespaced, handled.object, &update, now).await.expect("status written");
        }

        let plan = planner::plan(
            &Input { snapshot: &snapshot, usage: None, memory: &self.memory, now, observations: None },
            &self.policy,
        );
        self.memory = plan.memory.clone();
        for action in &plan.actions {
            match action {
                Action::ResizePod(a) => {
                    let pods: Api<Pod> = Api::namespaced(self.client.clone(), &a.pod.namespace);
                    client::resize_pod(&pods, a, now).await.expect("resize sent");
                }
                Action::RecreatePod(a) => {
                    let pods: Api<Pod> = Api::namespaced(self.client.clone(), &a.pod.namespace);
                    client::recreate_pod(&pods, a).await.expect("eviction sent");
                }
                _ => {}
            }
        }
        plan
    }

    /// A pass every second until `done` holds for the cluster, within [`WAIT`].
    pub async fn until(&mut self, what: &str, mut done: impl AsyncFnMut(&kube::Client, &Plan) -> bool) -> Plan {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            let plan = self.pass().await;
            if done(&self.client, &plan).await {
                return plan;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "timed out waiting for {what}; last plan:\n{}",
                plan.explanation
            );
            next_second().await;
        }
    }
}

/// Sleeps until just after the next whole second. The Summary API stamps
/// readings to the second (`metav1.Time`) and the recommender refuses a
/// sample not newer than the last: passes (and scrapes) a second apart, as the
/// daemon's are a minute apart.
pub async fn next_second() {
    let now = Timestamp::now();
    let next = Timestamp::from_second(now.as_second() + 1).unwrap() + jiff::SignedDuration::from_millis(20);
    tokio::time::sleep(Duration::try_from(next.duration_since(now)).unwrap()).await;
}

/// Updates as soon as they are due: no rate limit, no waiting off target.
pub fn eager() -> UpdaterSettings {
    UpdaterSettings {
        min_update_interval: heatscaler_daemon::config::Duration::from_secs(0),
        update_off_target_after: heatscaler_daemon::config::Duration::from_secs(0),
        ..UpdaterSettings::default()
    }
}

pub async fn pods_of(client: &kube::Client, app: &str) -> Vec<Pod> {
    let pods: Api<Pod> = Api::default_namespaced(client.clone());
    pods.list(&ListParams::default().labels(&format!("app={app}"))).await.unwrap().items
}

pub async fn vpa_status(client: &kube::Client, name: &str) -> Option<api::VerticalPodAutoscalerStatus> {
    let vpas: Api<VerticalPodAutoscaler> = Api::default_namespaced(client.clone());
    vpas.get(name).await.unwrap().status
}

pub fn mode(m: UpdateMode) -> api::UpdateMode {
    match m {
        UpdateMode::Off => api::UpdateMode::Off,
        UpdateMode::Initial => api::UpdateMode::Initial,
        UpdateMode::Recreate => api::UpdateMode::Recreate,
        UpdateMode::InPlaceOrRecreate => api::UpdateMode::InPlaceOrRecreate,
        UpdateMode::InPlace => api::UpdateMode::InPlace,
    }
}
