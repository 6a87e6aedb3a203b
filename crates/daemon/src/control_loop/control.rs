//! The control loop itself; see the module documentation of `control_loop`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::StreamExt;
use tokio::sync::watch;

use super::election::{LeaseGate, Wiring};
use super::leadership::{AlwaysLeader, LeaderGate};
use super::outage::{OUTAGE_CHECK, OutageReporter, OutageSources, OutageWatch};
use super::parts::{Parts, Shared};
use super::planning::{Beside, Planning};
use super::pod_level::PodLevel;
use super::reporting::Reporter;
use super::signals::{Request, Signals};
use super::status::StatusPublisher;
use super::{DaemonError, RunOptions, kube_client};
use crate::act::{Actuator, Outcome, VpaWrite};
use crate::admission::Admitter;
use crate::alerts::ScalingEvent;
use crate::config::Config;
use crate::observe::{Changes, KubeObserver};
use crate::telemetry::{Health, HealthOptions, Metrics, Notifier, TelemetryServer};
use heatscaler_core::model::Timestamp;
use heatscaler_core::planner::placement::Observations;
use heatscaler_core::planner::{Action, ActionKind};

/// Actions of one pass in flight at once.
const ACTION_CONCURRENCY: usize = 8;
/// How long a pass waits for Heat to be re-read after our own request.
const HEAT_FRESHNESS: Duration = Duration::from_secs(5);
/// How often the loop proves it is alive while it has nothing to do.
const IDLE_HEARTBEAT: Duration = Duration::from_secs(5);
/// First wait before retrying a failed start-up step; doubles up to the cap.
const START_RETRY: Duration = Duration::from_secs(1);
const START_RETRY_MAX: Duration = Duration::from_secs(30);
/// At most this long of the stop timeout goes to releasing the leader lease.
const LEASE_RELEASE_TIMEOUT: Duration = Duration::from_secs(2);
/// Longest the final save of the recommender's history may take at stop.
const CHECKPOINT_SAVE_TIMEOUT: Duration = Duration::from_secs(5);

/// Runs the daemon until SIGTERM or SIGINT. `Ok` is a clean stop.
pub async fn run(options: RunOptions) -> Result<(), DaemonError> {
    let RunOptions { config_path, config, dry_run, stop_timeout, notifier } = options;
    let mut signals = Signals::install().map_err(DaemonError::Signals)?;
    let metrics = Arc::new(Metrics::new());
    let allocator = crate::telemetry::spawn_allocator_sampler(metrics.clone());
    let health = Health::new(HealthOptions {
        heartbeat_timeout: heartbeat_timeout(&config),
        heat_required: !config.node_groups.is_empty(),
    });
    let server = TelemetryServer::bind(config.telemetry.listen, metrics.clone(), health.clone()).await?;
    tracing::info!(listen = %server.local_addr(), "serving /metrics, /healthz and /readyz");
    let (stop_server, server_stop) = watch::channel(false);
    let server_task = tokio::spawn(server.serve(async move {
        let mut rx = server_stop;
        let _ = rx.wait_for(|stop| *stop).await;
    }));
    let watchdog = notifier.spawn_watchdog(health.clone());

    let client = kube_client(&config.kubernetes).await?;
    let changes = Changes::new();
    let election = config.leader_election.enabled.then(|| {
        let identity = config
            .leader_election
            .identity
            .clone()
            .unwrap_or_else(|| format!("{}_{}", instance_name(&config), std::process::id()));
        let wiring = Wiring {
            client: client.clone(),
            identity,
            health: health.clone(),
            metrics: metrics.clone(),
            changes: changes.clone(),
        };
        Arc::new(LeaseGate::new(&config.leader_election, wiring))
    });
    let leader: Arc<dyn LeaderGate> = match &election {
        Some(gate) => gate.clone(),
        None => Arc::new(AlwaysLeader),
    };
    health.set_leadership(leader.leadership());
    metrics.set_leader(leader.is_leader());
    let kube = KubeObserver::start(client.clone(), metrics.clone(), changes.clone());
    let pod_level =
        PodLevel::start(client.clone(), kube.store().clone(), &config, metrics.clone(), changes.clone(), dry_run);
    let webhook = match (&config.admission_webhook, &pod_level) {
        (Some(w), Some(pl)) => {
            let admitter = Admitter {
                store: kube.store().clone(),
                vpas: pl.vpa_objects(),
                recommender_name: config.pod_resize.recommender_name.clone(),
                claim_unnamed: config.pod_resize.claim_unnamed_vpas,
                client: Some(client.clone()),
                dry_run,
            };
            // Its own namespace is never sent to it (its replicas must start
            // while the webhook is down): the Service's, or the lease's.
            let own_namespace =
                w.service.as_ref().map_or_else(|| config.leader_election.namespace.clone(), |s| s.namespace.clone());
            let stopping = stop_server.subscribe();
            let upkeep = crate::admission::upkeep::start(
                w,
                own_namespace,
                admitter,
                metrics.clone(),
                client.clone(),
                health.clone(),
                stopping,
            );
            Some(upkeep.await?)
        }
        _ => None,
    };
    let outages = OutageWatch::start(kube.health().clone(), metrics.clone(), health.clone(), OUTAGE_CHECK);
    let shared = Shared {
        client,
        metrics: metrics.clone(),
        changes,
        instance: instance_name(&config),
        ledger: Default::default(),
        store: kube.store().clone(),
    };

    let mut daemon = Daemon {
        config_path,
        dry_run,
        stop_timeout,
        notifier,
        health,
        metrics,
        shared,
        kube,
        pod_level,
        parts: None,
        planning: Planning::new(),
        reporter: Reporter::new(),
        outages,
        status: StatusPublisher::new(),
        leader,
        leading: false,
        reload_pending: false,
        holding_actions: false,
    };
    let stopped_at = match daemon.start(config, &mut signals).await {
        Started::Stop(at) => at,
        Started::Ready => {
            // Only a synced replica competes for the lease.
            if let Some(gate) = &election {
                gate.campaign();
            }
            daemon.run_loop(&mut signals).await
        }
    };
    daemon.save_history(stopped_at).await;
    if let Some(gate) = &election {
        // Actions in flight are over: hand the lease over before flushing alerts.
        gate.release(LEASE_RELEASE_TIMEOUT.min(stop_timeout.saturating_sub(stopped_at.elapsed()))).await;
    }
    daemon.shutdown(stopped_at).await;
    let _ = stop_server.send(true);
    let _ = server_task.await;
    if let Some(webhook) = webhook {
        let _ = webhook.await;
    }
    if let Some(w) = watchdog {
        w.abort();
    }
    allocator.abort();
    tracing::info!("stopped");
    Ok(())
}

enum Started {
    Ready,
    /// A stop was requested at this instant, before start-up completed.
    Stop(Instant),
}

struct Daemon {
    config_path: std::path::PathBuf,
    dry_run: bool,
    stop_timeout: Duration,
    notifier: Notifier,
    health: Health,
    metrics: Arc<Metrics>,
    shared: Shared,
    kube: KubeObserver,
    /// VPA objects, usage and the recommender (when configured).
    pod_level: Option<PodLevel>,
    parts: Option<Parts>,
    planning: Planning,
    reporter: Reporter,
    /// Reports lasting OpenStack and Kubernetes failures on its own timer.
    outages: OutageWatch,
    /// The status ConfigMap (leader only).
    status: StatusPublisher,
    leader: Arc<dyn LeaderGate>,
    /// Whether the previous pass ran as the leader.
    leading: bool,
    /// A SIGHUP arrived during a pass.
    reload_pending: bool,
    /// Planned actions are held while a watch fails (logged once per outage).
    holding_actions: bool,
}

impl Daemon {
    fn parts(&self) -> &Parts {
        self.parts.as_ref().expect("parts are built before the loop starts")
    }

    /// Builds the parts (retrying while Keystone or the alert sinks cannot be
    /// set up), then waits for the first sync of everything.
    async fn start(&mut self, mut config: Config, signals: &mut Signals) -> Started {
        let mut retry = START_RETRY;
        let mut failing_since: Option<Instant> = None;
        // The sinks that said start-up keeps failing, kept until it succeeds so the alert is delivered.
        let mut startup_alerts: Option<crate::alerts::Dispatcher> = None;
        while self.parts.is_none() {
            self.health.heartbeat();
            let request = tokio::select! {
                built = Parts::build(config.clone(), &self.shared, self.dry_run) => match built {
                    Ok(parts) => {
                        self.parts = Some(parts);
                        self.follow_outages();
                        if let Some(alerts) = startup_alerts.take() {
                            alerts.shutdown(Duration::from_secs(2)).await;
                        }
                        continue;
                    }
                    Err(e) => {
                        let since = *failing_since.get_or_insert_with(Instant::now);
                        if startup_alerts.is_none() {
                            startup_alerts = self.alert_lasting_start_up_failure(&config, since, &e);
                        }
                        tracing::error!(error = %e, retry_in = ?retry, "start-up failed; retrying");
                        self.notifier.status(&format!("start-up failed, retrying: {e}"));
                        let wait = retry;
                        retry = (retry * 2).min(START_RETRY_MAX);
                        tokio::select! {
                            _ = tokio::time::sleep(wait) => continue,
                            r = signals.next() => r,
                        }
                    }
                },
                r = signals.next() => r,
            };
            match request {
                Request::Stop => return Started::Stop(Instant::now()),
                // Not running yet: the new file simply replaces the one being started with.
                Request::Reload => match crate::config::load(&self.config_path) {
                    Ok(new) => config = new,
                    Err(e) => tracing::error!(error = %e, "configuration rejected; starting with the previous one"),
                },
            }
        }
        loop {
            self.health.heartbeat();
            if self.kube.health().unsynced().is_empty() {
                self.health.mark_kubernetes_synced();
            }
            let waiting = self.waiting_for();
            if waiting.is_empty() {
                break;
            }
            self.notifier.status(&format!("waiting for {}", waiting.join(", ")));
            tokio::select! {
                _ = async { self.kube.health().wait_synced().await; self.parts().heat.wait_synced().await } => {}
                _ = tokio::time::sleep(IDLE_HEARTBEAT) => {}
                r = signals.next() => match r {
                    Request::Stop => return Started::Stop(Instant::now()),
                    Request::Reload => {
                        if let Some(at) = self.reload(signals).await {
                            return Started::Stop(at);
                        }
                    }
                },
            }
        }
        self.health.mark_kubernetes_synced();
        self.health.mark_heat_synced();
        let status = format!(
            "synced: {} node group(s){}",
            self.parts().config.node_groups.len(),
            if self.parts().actuator.dry_run() { ", dry run" } else { "" }
        );
        tracing::info!("{status}; planning");
        self.notifier.ready(&status);
        Started::Ready
    }

    /// The leader saves the recommender's history once more before it hands
    /// the lease over, so a successor loses nothing since the last round.
    async fn save_history(&self, stopped_at: Instant) {
        let (Some(pod_level), Some(parts)) = (&self.pod_level, &self.parts) else { return };
        if !self.leading || !self.leader.is_leader() {
            return;
        }
        let checkpoints = pod_level.checkpoints(Timestamp::now());
        if checkpoints.is_empty() {
            return;
        }
        let budget = CHECKPOINT_SAVE_TIMEOUT.min(self.stop_timeout.saturating_sub(stopped_at.elapsed()));
        let save = VpaWrite::Checkpoints(checkpoints);
        if tokio::time::timeout(budget, parts.actuator.write_vpa(&save)).await.is_err() {
            tracing::warn!(?budget, "recommender checkpoints not all written before stopping");
        }
    }

    /// How long a failing Heat read is tolerated before it is news.
    /// Keystone or Heat refusing start-up for longer than
    /// `openstack.failure-alert-after` is the same news as a group's reads
    /// failing later (a daemon restarted while its credentials are rejected
    /// never gets further): `OpenStackFailing` for every group, through the
    /// configured sinks, built for it. Returns them, to keep until delivered.
    fn alert_lasting_start_up_failure(
        &self,
        config: &Config,
        since: Instant,
        error: &DaemonError,
    ) -> Option<crate::alerts::Dispatcher> {
        let DaemonError::Cloud(cloud) = error else { return None };
        let bound = config.openstack.as_ref().map_or(Duration::from_secs(60), |o| o.failure_alert_after.get());
        let lasted = since.elapsed();
        if lasted < bound {
            return None;
        }
        let reason = crate::cloud::group::GroupError::Cloud { group: String::new(), source: cloud.clone() }.reason();
        let events = crate::alerts::KubeEventSink::new(self.shared.client.clone(), Some(self.shared.instance.clone()));
        let alerts = crate::alerts::Dispatcher::from_config(&config.alerts, Some(events), self.metrics.clone()).ok()?;
        tracing::error!(?lasted, %error, "OpenStack failing at start-up");
        for g in &config.node_groups {
            alerts.dispatch(ScalingEvent::openstack_failing(&g.name, reason, lasted, &error.to_string()));
        }
        Some(alerts)
    }

    fn failure_bound(&self) -> Duration {
        self.parts().config.openstack.as_ref().map_or(Duration::from_secs(60), |o| o.failure_alert_after.get())
    }

    /// Points the outage watch at the current parts (Heat poller, sinks,
    /// bounds); it reports on its own timer from then on, in every wait.
    fn follow_outages(&self) {
        let parts = self.parts();
        self.outages.follow(OutageSources {
            heat: parts.heat.failures(),
            alerts: parts.alerts.clone(),
            openstack_bound: self.failure_bound(),
            kubernetes_bound: parts.config.kubernetes.failure_alert_after.get(),
        });
    }

    /// What start-up still waits for, in words. A group Heat has failed to
    /// read for longer than `openstack.failure-alert-after` is not waited for:
    /// it is alerted and degrades only itself.
    fn waiting_for(&self) -> Vec<String> {
        let mut waiting: Vec<String> =
            self.kube.health().unsynced().iter().map(|w| format!("the first list of {}", w.as_str())).collect();
        let reads = self.parts().heat.reads();
        let failing = self.parts().heat.failing();
        let given_up: Vec<&str> = OutageReporter::lasting(&failing, self.failure_bound(), Instant::now())
            .into_iter()
            .map(|f| f.group.as_str())
            .collect();
        for g in &self.parts().config.node_groups {
            if !reads.contains_key(&g.name) && !given_up.contains(&g.name.as_str()) {
                let why = self.parts().heat.errors().get(&g.name).cloned();
                waiting.push(match why {
                    Some(e) => format!("Heat stack of group {} ({e})", g.name),
                    None => format!("Heat stack of group {}", g.name),
                });
            }
        }
        waiting
    }

    /// Plans on every change (debounced) and at least every resync interval,
    /// until a stop is requested; returns when it was.
    async fn run_loop(&mut self, signals: &mut Signals) -> Instant {
        let mut changes = self.shared.changes.subscribe();
        let mut next_resync = tokio::time::Instant::now();
        loop {
            self.health.heartbeat();
            if std::mem::take(&mut self.reload_pending)
                && let Some(at) = self.reload(signals).await
            {
                // Requested during a wait of the previous iteration.
                return at;
            }
            for (kind, age) in self.kube.health().data_age() {
                self.metrics.set_watch_data_age(kind.as_str(), age);
            }
            let debounce = self.parts().config.daemon.debounce.get();
            // A due resync (the first pass at start among them) is planned
            // now. Left to the select below, it could lose to a change that
            // landed meanwhile: a timer due "now" is not ready on its first
            // poll (tokio rounds its deadline up to the next millisecond), so
            // the change's debounce ran first — the first pass after start
            // waited out a whole debounce when the last list completed just
            // after the sync (seen under load: no pass for 30 s with a
            // 5-minute debounce).
            let due = tokio::time::Instant::now() >= next_resync;
            if !due {
                tokio::select! {
                    biased;
                    r = signals.next() => match r {
                        Request::Stop => return Instant::now(),
                        Request::Reload => {
                            if let Some(at) = self.reload(signals).await {
                                return at;
                            }
                            next_resync = tokio::time::Instant::now();
                            continue;
                        }
                    },
                    _ = tokio::time::sleep_until(next_resync) => {}
                    changed = changes.changed() => {
                        if changed.is_err() {
                            continue;
                        }
                        // Let a burst of events land before planning on them.
                        let debounced = tokio::time::sleep(debounce);
                        if unless_stopped(signals, &mut self.reload_pending, debounced).await.is_none() {
                            return Instant::now();
                        }
                    }
                    _ = tokio::time::sleep(IDLE_HEARTBEAT) => continue,
                }
            }
            // Plan a burst of new pods together, not the part the scheduler has judged so far.
            let verdicts = super::verdicts::await_verdicts(self.kube.store());
            let Some(waited) = unless_stopped(signals, &mut self.reload_pending, verdicts).await else {
                return Instant::now();
            };
            if !waited.is_zero() {
                tracing::debug!(?waited, "waited for the scheduler's verdict on new pods");
            }
            changes.mark_unchanged();
            next_resync = tokio::time::Instant::now() + self.parts().config.daemon.resync_interval.get();
            if let Some(stop) = self.pass(signals).await {
                return stop;
            }
        }
    }

    /// One pass. Returns the time a stop was requested, if one was during the pass.
    async fn pass(&mut self, signals: &mut Signals) -> Option<Instant> {
        let leading = self.leader.is_leader();
        self.metrics.set_leader(leading);
        self.health.set_leadership(self.leader.leadership());
        if leading != self.leading
            && let Some(event) = self.leader.change_event(leading)
        {
            self.parts().alerts.dispatch(event);
        }
        if !leading {
            if self.leading {
                tracing::info!("no longer the leader: not planning");
                self.planning.forget();
                self.reporter.forget_removals();
            }
            self.leading = false;
            return None;
        }
        self.leading = true;
        let started = Instant::now();
        let now = Timestamp::now();
        let parts = self.parts.as_ref().expect("parts are built before the loop starts");
        if unless_stopped(signals, &mut self.reload_pending, parts.heat.wait_fresh(HEAT_FRESHNESS)).await.is_none() {
            return Some(Instant::now());
        }
        if !parts.actuator.dry_run() {
            let recorded = held_by_nodes(&self.kube.store().lock().await.snapshot().nodes);
            parts.actuator.hold_recorded(&recorded);
            parts.actuator.confirm_removals().await;
            let timeout = parts.config.openstack.as_ref().map(|o| o.stack_update_timeout.get());
            if let Some(timeout) = timeout {
                parts.actuator.handle_stuck_stacks(&parts.heat.busy_since(), timeout, Instant::now()).await;
            }
        }
        let reads = parts.heat.reads();
        let observations = parts.mesh.as_ref().and_then(|m| m.flows()).map(|flows| Observations {
            flows,
            pressure: self.pod_level.as_ref().map(|p| p.pressure()).unwrap_or_default(),
        });
        let Some(mut planned) = self
            .planning
            .plan(
                self.kube.store(),
                &reads,
                &parts.config.node_groups,
                &parts.policy,
                Beside { pod_level: self.pod_level.as_ref(), observations: observations.as_ref() },
                now,
            )
            .await
        else {
            tracing::debug!("a watch is re-listing; planning when it is complete");
            return None;
        };
        self.reporter.report(&planned, self.planning.memory(), &parts.alerts, &self.metrics);
        for alert in std::mem::take(&mut planned.pod_level_alerts) {
            parts.alerts.dispatch(alert);
        }
        // Nothing is written or done on a view a failing watch no longer
        // updates: every action would re-read its objects from the failing
        // API server, retry, fail, and be planned again next pass — load on
        // a server already failing (the chaos soak counted 67 requests a
        // minute against a killed one), for actions planned on stale data.
        let stale = !self.kube.health().failing().is_empty();
        if !stale {
            self.status.publish(parts.actuator.kube(), &planned, self.planning.memory(), &self.shared.instance);
        }
        let planned_in = started.elapsed();
        // The pod level's writes go with the actions: through the actuator
        // (dry run), each after the same leadership check, awaited at stop.
        let mut writes = if stale { Vec::new() } else { planned.status_writes };
        let checkpoints = match &self.pod_level {
            Some(p) if !parts.actuator.dry_run() && !stale => p.due_checkpoints(now),
            _ => Vec::new(),
        };
        if !checkpoints.is_empty() {
            writes.push(VpaWrite::Checkpoints(checkpoints));
        }
        let mut actions = planned.plan.actions;
        tracing::debug!(
            nodes = planned.nodes,
            pods = planned.pods,
            pending = planned.unschedulable_pods,
            actions = actions.len(),
            took = ?planned_in,
            "planned"
        );
        if stale && !actions.is_empty() {
            if !std::mem::replace(&mut self.holding_actions, true) {
                tracing::warn!(held = actions.len(), "a Kubernetes watch is failing: no action until it lists again");
            }
            actions.clear();
        } else if !stale && std::mem::take(&mut self.holding_actions) {
            tracing::info!("the Kubernetes watches list again: acting on the plan");
        }
        let (stop_tx, stop_rx) = watch::channel(false);
        let mut run = tokio::spawn(execute(parts.actuator.clone(), actions, writes, now, stop_rx, self.leader.clone()));
        let mut stop_requested = None;
        let outcomes = loop {
            tokio::select! {
                done = &mut run => break done.unwrap_or_default(),
                r = signals.next() => match r {
                    Request::Stop => {
                        // No new action starts; the ones in flight may finish.
                        let _ = stop_tx.send(true);
                        let at = Instant::now();
                        stop_requested = Some(at);
                        let grace = self.action_grace();
                        tracing::info!(?grace, "stopping: waiting for actions in flight");
                        match tokio::time::timeout(grace, &mut run).await {
                            Ok(done) => break done.unwrap_or_default(),
                            Err(_) => {
                                tracing::warn!("actions still in flight at the stop deadline; abandoning them");
                                run.abort();
                                break Vec::new();
                            }
                        }
                    }
                    // Applied after this pass; the signal is not lost.
                    Request::Reload => self.reload_pending = true,
                },
            }
        };
        let failed = outcomes.iter().filter(|o| o.is_failure()).count();
        // A pass on data a failing watch no longer updates is not a success:
        // the staleness alert on this metric must fire while watches fail.
        if failed == 0 && self.kube.health().failing().is_empty() {
            self.metrics.record_successful_loop(now, started.elapsed());
        }
        let acted = outcomes.iter().filter(|o| matches!(o, Outcome::Done(_) | Outcome::DryRun)).count();
        self.notifier.status(&format!(
            "{} nodes, {} pods, {} unschedulable; last pass: {acted} action(s) done, {failed} failed{}",
            planned.nodes,
            planned.pods,
            planned.unschedulable_pods,
            self.watch_problems()
        ));
        if std::mem::take(&mut self.reload_pending) && stop_requested.is_none() {
            return self.reload(signals).await;
        }
        stop_requested
    }

    fn watch_problems(&self) -> String {
        let failing = self.kube.health().failing();
        let heat = self.parts().heat.errors();
        if failing.is_empty() && heat.is_empty() {
            return String::new();
        }
        let mut parts: Vec<String> =
            failing.iter().map(|(k, e)| format!("watch {} failing: {e}", k.as_str())).collect();
        parts.extend(heat.iter().map(|(g, e)| format!("Heat read of {g} failing: {e}")));
        format!("; {}", parts.join("; "))
    }

    fn action_grace(&self) -> Duration {
        self.stop_timeout.saturating_sub(alert_flush_reserve(self.stop_timeout))
    }

    /// Re-reads the configuration file. An invalid file, or one whose sinks or
    /// Keystone credentials cannot be set up, is rejected and alerted; the
    /// daemon keeps running with the previous configuration.
    ///
    /// Setting up the new parts (Keystone, sinks) waits on the network: a stop
    /// requested meanwhile abandons the reload and is returned.
    async fn reload(&mut self, signals: &mut Signals) -> Option<Instant> {
        self.notifier.reloading();
        let path = self.config_path.display().to_string();
        tracing::info!(%path, "reloading the configuration");
        let result = match crate::config::load(&self.config_path) {
            Err(e) => Err(e.to_string()),
            Ok(config) => {
                let old = &self.parts().config;
                let collection = |c: &Config| {
                    let p = &c.pod_resize;
                    (
                        p.enabled,
                        p.recommender_name.clone(),
                        p.claim_unnamed_vpas,
                        p.admission_controller,
                        c.scale_down.use_observed_usage,
                    )
                };
                for (section, same) in [
                    ("kubernetes", same_json(&old.kubernetes, &config.kubernetes)),
                    ("telemetry", same_json(&old.telemetry, &config.telemetry)),
                    ("admission-webhook", old.admission_webhook == config.admission_webhook),
                    ("leader-election", same_json(&old.leader_election, &config.leader_election)),
                    (
                        "pod-resize (except updater)",
                        same_json(&old.pod_resize.recommender, &config.pod_resize.recommender)
                            && same_json(&old.pod_resize.metrics, &config.pod_resize.metrics)
                            && collection(old) == collection(&config),
                    ),
                ] {
                    if !same {
                        tracing::warn!(section, "changes to this section take effect at the next restart");
                    }
                }
                let build = Parts::build(config, &self.shared, self.dry_run);
                match unless_stopped(signals, &mut self.reload_pending, build).await {
                    Some(built) => built.map_err(|e| e.to_string()),
                    None => {
                        tracing::info!(%path, "stop requested during the reload; not applying it");
                        return Some(Instant::now());
                    }
                }
            }
        };
        match result {
            Ok(parts) => {
                if let Some(old) = self.parts.replace(parts) {
                    // Let the old sinks deliver what they hold, in the background.
                    tokio::spawn(async move { old.alerts.shutdown(Duration::from_secs(10)).await });
                }
                self.follow_outages();
                tracing::info!(%path, "configuration reloaded");
            }
            Err(error) => {
                tracing::error!(%path, %error, "configuration rejected; keeping the previous one");
                self.parts().alerts.dispatch(ScalingEvent::config_reload_failed(&path, &error));
            }
        }
        self.notifier.ready("configuration reloaded");
        None
    }

    /// Flushes alerts within what is left of the stop timeout, and says so to systemd.
    async fn shutdown(&mut self, stop_requested: Instant) {
        self.notifier.stopping("stopping: flushing alerts");
        let left = self.stop_timeout.saturating_sub(stop_requested.elapsed());
        if let Some(parts) = &self.parts {
            let report = parts.alerts.shutdown(left).await;
            if report.dropped > 0 {
                tracing::warn!(dropped = report.dropped, "alerts left undelivered at shutdown");
            }
        }
    }
}

/// Waits for `wait` unless a stop is requested first (`None`). A reload
/// requested meanwhile is applied after the pass, as during actions: every
/// wait of the loop watches the signals, so a stop takes effect at once
/// whatever the configured debounce.
async fn unless_stopped<F: std::future::Future>(
    signals: &mut Signals,
    reload_pending: &mut bool,
    wait: F,
) -> Option<F::Output> {
    let mut wait = std::pin::pin!(wait);
    loop {
        tokio::select! {
            out = &mut wait => return Some(out),
            r = signals.next() => match r {
                Request::Stop => return None,
                Request::Reload => *reload_pending = true,
            },
        }
    }
}

/// Runs a pass's actions, a few at a time, Heat growth first (it is what
/// pending pods wait for). None starts once `stop` is set or leadership is lost.
/// Whether a pass may still write: no stop asked, and this replica leads.
fn may_act(stop: &watch::Receiver<bool>, leader: &dyn LeaderGate) -> bool {
    !*stop.borrow() && leader.is_leader()
}

/// Executes a pass's actions and the pod level's writes, each only while
/// this replica leads and no stop was asked; returns the actions' outcomes
/// (a failed write is logged and retried by the next pass, not a failed
/// action).
async fn execute(
    actuator: Arc<Actuator>,
    mut actions: Vec<Action>,
    writes: Vec<VpaWrite>,
    now: Timestamp,
    stop: watch::Receiver<bool>,
    leader: Arc<dyn LeaderGate>,
) -> Vec<Outcome> {
    actions.sort_by_key(|a| match a.kind() {
        ActionKind::ScaleUp => 0,
        ActionKind::RemoveMembers => 1,
        _ => 2,
    });
    let acting = futures::stream::iter(actions)
        .map(|action| {
            let actuator = actuator.clone();
            let stop = stop.clone();
            let leader = leader.clone();
            async move {
                if !may_act(&stop, &*leader) {
                    return None;
                }
                Some(actuator.execute(&action, now).await)
            }
        })
        .buffer_unordered(ACTION_CONCURRENCY)
        .filter_map(|o| async move { o })
        .collect::<Vec<Outcome>>();
    let writing = futures::stream::iter(writes)
        .map(|write| {
            let actuator = actuator.clone();
            let stop = stop.clone();
            let leader = leader.clone();
            async move {
                if may_act(&stop, &*leader) {
                    actuator.write_vpa(&write).await;
                }
            }
        })
        .buffer_unordered(ACTION_CONCURRENCY)
        .collect::<Vec<()>>();
    let (outcomes, _) = futures::join!(acting, writing);
    outcomes
}

/// Groups held after a removal mismatch, as recorded on their nodes.
fn held_by_nodes(nodes: &[heatscaler_core::model::Node]) -> std::collections::BTreeMap<String, String> {
    nodes
        .iter()
        .filter_map(|n| {
            let group = n.annotations.get(crate::act::MISMATCH_GROUP_ANNOTATION)?;
            let what = n.annotations.get(crate::act::MISMATCH_ANNOTATION).cloned().unwrap_or_default();
            Some((group.clone(), format!("{what} (recorded on node {})", n.name)))
        })
        .collect()
}

/// The part of the stop timeout kept for delivering alerts.
fn alert_flush_reserve(stop_timeout: Duration) -> Duration {
    (stop_timeout / 3).min(Duration::from_secs(5))
}

/// Well above the longest legitimate pass, which is at most a few resync intervals.
fn heartbeat_timeout(config: &Config) -> Duration {
    (config.daemon.resync_interval.get() * 6).max(Duration::from_secs(120))
}

/// `reportingInstance` of our Events: the leader-election identity, else the host name.
fn instance_name(config: &Config) -> String {
    config.leader_election.identity.clone().unwrap_or_else(|| {
        // gethostname(2), not /proc/sys/kernel/hostname: the unit's ProcSubset=pid hides /proc/sys.
        hostname::get()
            .ok()
            .and_then(|h| h.into_string().ok())
            .filter(|h| !h.is_empty())
            .unwrap_or_else(|| "heatscaler".into())
    })
}

fn same_json<T: serde::Serialize>(a: &T, b: &T) -> bool {
    serde_json::to_value(a).ok() == serde_json::to_value(b).ok()
}
