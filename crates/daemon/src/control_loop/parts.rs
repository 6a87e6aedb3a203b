//! The parts of the daemon a configuration reload replaces: the policy, the
//! alert sinks, the Heat session and node-group backends, the Heat poller and
//! the actuator. The Kubernetes client and watches, the telemetry server and
//! the planner's memory live on across reloads.

use std::sync::Arc;

use tokio::sync::Mutex;

use super::DaemonError;
use super::mesh::MeshFeed;
use crate::act::{Actuator, RemovalLedger};
use crate::alerts::{Dispatcher, KubeEventSink};
use crate::cloud::Cloud;
use crate::cloud::group::Backend;
use crate::cloud::heat::HeatClient;
use crate::config::{AdvisorMode, Config};
use crate::observe::{Changes, ClusterStore, HeatObserver};
use crate::telemetry::Metrics;
use heatscaler_core::planner::Policy;

/// What stays across reloads and the parts are built from.
#[derive(Clone)]
pub struct Shared {
    pub client: kube::Client,
    pub metrics: Arc<Metrics>,
    pub changes: Changes,
    /// `reportingInstance` of our Events.
    pub instance: String,
    /// Sent removals awaiting confirmation, held groups: kept across reloads.
    pub ledger: RemovalLedger,
    /// The watched cluster, for the mesh reader's placement.
    pub store: Arc<Mutex<ClusterStore>>,
}

pub struct Parts {
    pub config: Config,
    pub policy: Policy,
    pub alerts: Dispatcher,
    pub heat: HeatObserver,
    pub actuator: Arc<Actuator>,
    /// The service mesh's traffic, when `mesh-metrics` is configured.
    pub mesh: Option<MeshFeed>,
}

impl Parts {
    /// Builds everything a configuration names. Resolves secrets and
    /// authenticates with Keystone now, so a reload with a bad credential is
    /// rejected instead of failing later.
    pub async fn build(config: Config, shared: &Shared, dry_run: bool) -> Result<Parts, DaemonError> {
        let events = KubeEventSink::new(shared.client.clone(), Some(shared.instance.clone()));
        let alerts = Dispatcher::from_config(&config.alerts, Some(events), shared.metrics.clone())?;
        let backends = match backends(&config).await {
            Ok(b) => b,
            Err(e) => {
                alerts.shutdown(std::time::Duration::ZERO).await;
                return Err(e);
            }
        };
        let heat = HeatObserver::start(
            backends.clone(),
            config.daemon.heat_poll_interval.get(),
            shared.metrics.clone(),
            shared.changes.clone(),
        );
        let actuator = Arc::new(
            Actuator::new(
                shared.client.clone(),
                backends,
                alerts.clone(),
                shared.metrics.clone(),
                heat.poke(),
                dry_run || config.daemon.dry_run,
            )
            .with_ledger(shared.ledger.clone()),
        );
        let policy = config.planner_policy();
        let mesh = match mesh_to_read(&config) {
            Some(m) => Some(MeshFeed::start(m, shared.store.clone(), alerts.clone())?),
            None => None,
        };
        Ok(Parts { config, policy, alerts, heat, actuator, mesh })
    }
}

/// The mesh's Prometheus, read only for an advisor that is on: a configured
/// but unused Prometheus must not raise `MeshMetricsFailing`.
fn mesh_to_read(config: &Config) -> Option<&crate::config::MeshMetricsConfig> {
    config.mesh_metrics.as_ref().filter(|_| config.placement_advisor.mode != AdvisorMode::Off)
}

async fn backends(config: &Config) -> Result<Vec<Arc<Backend>>, DaemonError> {
    if config.node_groups.is_empty() {
        return Ok(Vec::new());
    }
    let openstack = config.openstack.as_ref().ok_or(DaemonError::NoOpenStack)?;
    let heat = HeatClient::new(Cloud::connect(openstack).await?);
    let timeout = openstack.stack_update_timeout.get();
    Ok(config
        .node_groups
        .iter()
        .map(|g| Arc::new(Backend::new(heat.clone(), g.clone()).with_settle_timeout(timeout)))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_mesh_is_read_only_while_the_advisor_is_on() {
        let text = "mesh-metrics:\n  prometheus-url: http://prom:9090\n";
        let off = crate::config::parse(text, "t", None).unwrap();
        assert!(mesh_to_read(&off).is_none());
        let on = crate::config::parse(&format!("{text}placement-advisor:\n  mode: recommend\n"), "t", None).unwrap();
        assert!(mesh_to_read(&on).is_some());
    }
}
