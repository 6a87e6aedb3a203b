//! The configuration file's shape. Keys are kebab-case, like cluster-autoscaler's
//! flags, and defaults follow cluster-autoscaler and the VPA recommender where
//! they have one, so an operator moving over gets the behaviour they know.
//! `config/heatscaler.example.yaml` documents every key.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::{Duration, SecretSource};
use heatscaler_core::policy::{
    ClusterLimits, NodeTemplate, PlacementAdvisorPolicy, RecommenderSettings, ScaleDownPolicy, ScaleUpPolicy,
    UpdaterSettings, loop_defaults,
};

#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct Config {
    #[serde(default)]
    pub kubernetes: KubernetesConfig,
    /// Required as soon as a node group is configured.
    #[serde(default)]
    pub openstack: Option<OpenStackConfig>,
    #[serde(default)]
    pub node_groups: Vec<NodeGroupConfig>,
    #[serde(default)]
    pub cluster_limits: ClusterLimits,
    #[serde(default)]
    pub scale_up: ScaleUpPolicy,
    #[serde(default)]
    pub scale_down: ScaleDownPolicy,
    #[serde(default)]
    pub pod_resize: PodResizePolicy,
    #[serde(default)]
    pub alerts: AlertsConfig,
    #[serde(default)]
    pub telemetry: TelemetryConfig,
    #[serde(default)]
    pub leader_election: LeaderElectionConfig,
    #[serde(default)]
    pub daemon: DaemonConfig,
    /// The placement advisor's policy (issue 21), as the simulator reads it.
    #[serde(default)]
    pub placement_advisor: PlacementAdvisorPolicy,
    /// Where the placement advisor reads a service mesh's traffic and tail
    /// latency (issue 21); without it the advisor has no observations.
    #[serde(default)]
    pub mesh_metrics: Option<MeshMetricsConfig>,
    /// heatscaler's own VPA admission webhook (docs/pod-resizing.md): new pods
    /// of handled VPA objects get their recommendation at creation. Off
    /// without this section.
    #[serde(default)]
    pub admission_webhook: Option<AdmissionWebhookConfig>,
}

impl Config {
    /// Makes relative file paths relative to the configuration file, not to the
    /// daemon's working directory (which systemd sets to `/`).
    pub(super) fn resolve_relative_paths(&mut self, base: &Path) {
        let fix = |p: &mut PathBuf| {
            if p.is_relative() {
                *p = base.join(&*p);
            }
        };
        let fix_secret = |s: &mut SecretSource| {
            if let SecretSource::File(p) = s {
                fix(p);
            }
        };
        if let Some(p) = self.kubernetes.kubeconfig.as_mut() {
            fix(p);
        }
        if let Some(os) = self.openstack.as_mut() {
            if let Some(p) = os.clouds_yaml.as_mut() {
                fix(p);
            }
            if let Some(p) = os.ca_bundle.as_mut() {
                fix(p);
            }
            if let Some(ac) = os.application_credential.as_mut() {
                fix_secret(&mut ac.secret);
            }
            if let Some(pw) = os.password.as_mut() {
                fix_secret(&mut pw.password);
            }
        }
        if let Some(m) = self.mesh_metrics.as_mut() {
            if let Some(p) = m.ca_bundle.as_mut() {
                fix(p);
            }
            if let Some(s) = m.bearer_token.as_mut() {
                fix_secret(s);
            }
        }
        if let Some(w) = self.admission_webhook.as_mut() {
            for p in [&mut w.cert_file, &mut w.key_file, &mut w.ca_file].into_iter().flatten() {
                fix(p);
            }
            fix(&mut w.state_directory);
        }
        for sink in &mut self.alerts.sinks {
            if let Some(s) = sink.url_secret.as_mut() {
                fix_secret(s);
            }
            if let Some(s) = sink.hmac_secret.as_mut() {
                fix_secret(s);
            }
        }
    }

    pub fn group(&self, name: &str) -> Option<&NodeGroupConfig> {
        self.node_groups.iter().find(|g| g.name == name)
    }
}

// ---------------------------------------------------------------- Kubernetes

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct KubernetesConfig {
    /// How to reach the API server. `infer` tries `$KUBECONFIG`, `~/.kube/config`,
    /// then the in-cluster service account, as kubectl does.
    #[serde(default)]
    pub access: KubernetesAccess,
    /// Kubeconfig file for `access: kubeconfig`: heatscaler's own identity
    /// (`config/systemd/heatscaler-kubeconfig.sh`), not a master's admin.conf.
    #[serde(default)]
    pub kubeconfig: Option<PathBuf>,
    /// Kubeconfig delivered as a systemd credential (`LoadCredential=kubeconfig:...`).
    #[serde(default)]
    pub kubeconfig_credential: Option<String>,
    /// Kubeconfig context; the file's current context when unset.
    #[serde(default)]
    pub context: Option<String>,
    /// Node labels that mark the control plane; such nodes are never counted
    /// in a node group nor chosen for removal.
    #[serde(default = "default_control_plane_labels")]
    pub control_plane_labels: Vec<String>,
    /// A watch of the API server failing (or not yet listed) for longer than
    /// this is an alert (`KubernetesFailing`) through every sink: the daemon
    /// then plans on data that no longer follows the cluster, and the
    /// Prometheus staleness rule alone takes minutes more.
    #[serde(default = "default_failure_alert_after")]
    pub failure_alert_after: Duration,
}

impl Default for KubernetesConfig {
    fn default() -> Self {
        KubernetesConfig {
            access: KubernetesAccess::default(),
            kubeconfig: None,
            kubeconfig_credential: None,
            context: None,
            control_plane_labels: default_control_plane_labels(),
            failure_alert_after: default_failure_alert_after(),
        }
    }
}

fn default_control_plane_labels() -> Vec<String> {
    vec!["node-role.kubernetes.io/control-plane".into(), "node-role.kubernetes.io/master".into()]
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum KubernetesAccess {
    #[default]
    Infer,
    InCluster,
    Kubeconfig,
}

// ----------------------------------------------------------------- OpenStack

/// Keystone authentication. Either `cloud` (an entry of clouds.yaml, found where
/// the OpenStack tools look: `./clouds.yaml`, `~/.config/openstack/`,
/// `/etc/openstack/`), or `auth-url` with exactly one credential, or neither:
/// then the environment (`OS_CLOUD`, else the `OS_*` variables), as openstacksdk.
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct OpenStackConfig {
    #[serde(default)]
    pub cloud: Option<String>,
    /// An explicit clouds.yaml instead of the search path.
    #[serde(default)]
    pub clouds_yaml: Option<PathBuf>,
    #[serde(default)]
    pub auth_url: Option<String>,
    #[serde(default)]
    pub application_credential: Option<ApplicationCredential>,
    #[serde(default)]
    pub password: Option<PasswordAuth>,
    #[serde(default)]
    pub region: Option<String>,
    /// Catalog interface for Heat: `public`, `internal` or `admin`.
    #[serde(default)]
    pub interface: Option<EndpointInterface>,
    /// CA bundle for Keystone and Heat TLS. Verification is always on.
    #[serde(default)]
    pub ca_bundle: Option<PathBuf>,
    /// Timeout of each HTTP request to Keystone or Heat.
    #[serde(default = "default_request_timeout")]
    pub request_timeout: Duration,
    /// How long a Heat stack update may take: a stack busy for longer is
    /// `StackStuck`, and heatscaler updates it with its own template and
    /// parameters to make Heat finish it (`act::stuck`).
    #[serde(default = "default_stack_update_timeout")]
    pub stack_update_timeout: Duration,
    /// Reading a group from Heat (Keystone included) failing for longer than
    /// this is an alert (`OpenStackFailing`), a metric and a `/readyz` detail;
    /// at start-up, a group failing this long no longer holds the others back.
    #[serde(default = "default_failure_alert_after")]
    pub failure_alert_after: Duration,
}

fn default_request_timeout() -> Duration {
    Duration::from_secs(30)
}
fn default_failure_alert_after() -> Duration {
    Duration::from_secs(60)
}
fn default_stack_update_timeout() -> Duration {
    Duration::from_secs(30 * 60)
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum EndpointInterface {
    Public,
    Internal,
    Admin,
}

/// A Keystone application credential, the recommended way for a daemon to
/// authenticate: scoped to one project and revocable without touching a user.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct ApplicationCredential {
    /// The credential's ID. Alternatively `name` with `user-id` or `username`.
    #[serde(default)]
    pub id: Option<String>,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub user_id: Option<String>,
    #[serde(default)]
    pub username: Option<String>,
    #[serde(default)]
    pub user_domain_name: Option<String>,
    pub secret: SecretSource,
}

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct PasswordAuth {
    pub username: String,
    #[serde(default = "default_domain")]
    pub user_domain_name: String,
    pub password: SecretSource,
    /// Project scope: `project-id`, or `project-name` with its domain.
    #[serde(default)]
    pub project_id: Option<String>,
    #[serde(default)]
    pub project_name: Option<String>,
    #[serde(default = "default_domain")]
    pub project_domain_name: String,
    /// A Keystone trust (what Magnum gives its masters): the user is the
    /// trustee, and the token is scoped to the trust (its project and roles)
    /// instead of a project.
    #[serde(default)]
    pub trust_id: Option<String>,
}

fn default_domain() -> String {
    "Default".into()
}

// --------------------------------------------------------------- Node groups

/// A group of minions owned by one Heat stack.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct NodeGroupConfig {
    /// Name used in logs, Events, metrics and `heatscaler groups`.
    pub name: String,
    /// Heat stack name or ID that owns the group.
    pub stack: String,
    pub backend: BackendConfig,
    pub min_size: u32,
    pub max_size: u32,
    /// How a Heat member is matched to its Kubernetes node.
    #[serde(default)]
    pub node_mapping: NodeMapping,
    /// Shape of a new minion, for scale-from-zero and for the simulator.
    /// When the group has nodes, their observed capacity, labels and taints win.
    #[serde(default)]
    pub node_template: Option<NodeTemplate>,
    /// Rank for the `priority` expander: higher is preferred.
    #[serde(default)]
    pub priority: i32,
    /// Cost of one minion per hour, for simulation reports. Default: its vCPUs.
    #[serde(default)]
    pub price_per_hour: Option<f64>,
}

/// Which Heat resource holds the minions and how to resize it.
///
/// `resource-group` (`OS::Heat::ResourceGroup`, Magnum's layout): growth raises
/// `count-parameter`; removal lowers it and names the exact members in
/// `removal-parameter`. `autoscaling-group` (`OS::Heat::AutoScalingGroup`):
/// growth and removal through `scale-up-policy` / `scale-down-policy` signals or
/// `desired-capacity-parameter`; exact removal marks the drained member unhealthy first.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct BackendConfig {
    pub kind: BackendKind,
    /// Name of the group resource in the stack (Magnum: `kube_minions`).
    pub resource: String,
    /// resource-group: stack parameter holding the member count (Magnum: `number_of_minions`).
    #[serde(default)]
    pub count_parameter: Option<String>,
    /// resource-group: stack parameter naming members to remove (Magnum: `minions_to_remove`).
    #[serde(default)]
    pub removal_parameter: Option<String>,
    /// autoscaling-group: stack parameter feeding the group's `desired_capacity`.
    #[serde(default)]
    pub desired_capacity_parameter: Option<String>,
    /// autoscaling-group: `OS::Heat::ScalingPolicy` resource that adds minions.
    #[serde(default)]
    pub scale_up_policy: Option<String>,
    /// autoscaling-group: `OS::Heat::ScalingPolicy` resource that removes minions.
    #[serde(default)]
    pub scale_down_policy: Option<String>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum BackendKind {
    ResourceGroup,
    AutoscalingGroup,
}

/// How a Heat member is matched to a Kubernetes node.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct NodeMapping {
    pub by: NodeMappingKind,
    /// Label key for `by: label`; the label's value is the Heat member's name.
    #[serde(default)]
    pub label: Option<String>,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum NodeMappingKind {
    /// The node's `spec.providerID` is `openstack:///<server uuid>` of the member's server.
    #[default]
    ProviderId,
    /// The node is named like the member's server.
    NodeName,
    /// The node carries a label whose value is the member's name.
    Label,
}

// ------------------------------------------------ Limits, scale up and down

// `cluster-limits`, `scale-up` and `scale-down` are the policy types the
// planner and the simulator read too: they live in `heatscaler_core::policy`, with
// `node-template` and the pod level's `recommender` and `updater` sections.

// ---------------------------------------------------------------- Pod resize

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields, default)]
pub struct PodResizePolicy {
    pub enabled: bool,
    /// VPA objects whose `spec.recommenders` names this are handled by heatscaler.
    pub recommender_name: String,
    /// Also handle VPA objects that name no recommender (only when no VPA
    /// recommender is installed, or the two would both write their status).
    pub claim_unnamed_vpas: bool,
    /// VPA's admission controller is installed: it gives a recreated pod the
    /// recommended requests. Without it a recreated pod comes back with its
    /// template's requests, so the planner never evicts-and-recreates to resize.
    pub admission_controller: bool,
    pub recommender: RecommenderSettings,
    pub updater: UpdaterSettings,
    pub metrics: UsageCollection,
}

impl Default for PodResizePolicy {
    fn default() -> Self {
        Self {
            enabled: true,
            recommender_name: "heatscaler".into(),
            claim_unnamed_vpas: false,
            admission_controller: false,
            recommender: RecommenderSettings::default(),
            updater: UpdaterSettings::default(),
            metrics: UsageCollection::default(),
        }
    }
}

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields, default)]
pub struct UsageCollection {
    pub source: UsageSource,
    pub interval: Duration,
    /// Nodes scraped at the same time.
    pub concurrency: u32,
    pub node_timeout: Duration,
    /// How kubelets are reached (docs/operations.md, RBAC).
    pub kubelet: KubeletAccess,
    /// `kubelet: direct`: the CA bundle the kubelets' serving certificates are verified against.
    pub kubelet_ca_file: Option<std::path::PathBuf>,
    /// `kubelet: direct`: the bearer token sent to kubelets, re-read every scrape
    /// (projected ServiceAccount tokens rotate).
    pub kubelet_token_file: std::path::PathBuf,
}

/// How kubelets are reached for usage.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum KubeletAccess {
    /// Through the API server's node proxy: RBAC `nodes/proxy get`.
    #[default]
    ApiServerProxy,
    /// `https://<InternalIP>:<kubelet port>/...` with the daemon's own token:
    /// RBAC `nodes/stats get` (summary) or `nodes/metrics get` (cAdvisor).
    Direct,
}

/// Where a pod's ServiceAccount token is mounted.
pub const SERVICE_ACCOUNT_TOKEN: &str = "/var/run/secrets/kubernetes.io/serviceaccount/token";

impl Default for UsageCollection {
    fn default() -> Self {
        Self {
            source: UsageSource::Summary,
            interval: Duration::from_secs(60),
            concurrency: 32,
            node_timeout: Duration::from_secs(10),
            kubelet: KubeletAccess::ApiServerProxy,
            kubelet_ca_file: None,
            kubelet_token_file: SERVICE_ACCOUNT_TOKEN.into(),
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum UsageSource {
    /// `/api/v1/nodes/<node>/proxy/stats/summary`.
    Summary,
    /// `/api/v1/nodes/<node>/proxy/metrics/cadvisor`.
    Cadvisor,
}

// -------------------------------------------------------------------- Alerts

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields, default)]
pub struct AlertsConfig {
    /// Emit a Kubernetes Event on the involved object for every scaling step.
    pub kubernetes_events: bool,
    pub sinks: Vec<SinkConfig>,
    /// Notifications waiting per sink; beyond it the oldest are dropped and counted.
    pub queue_capacity: u32,
    /// The same alert (same reason and object) is sent at most once per window.
    pub dedup_window: Duration,
    pub retry_initial: Duration,
    pub retry_max: Duration,
    pub max_attempts: u32,
}

impl Default for AlertsConfig {
    fn default() -> Self {
        Self {
            kubernetes_events: true,
            sinks: Vec::new(),
            queue_capacity: 1000,
            dedup_window: Duration::from_secs(5 * 60),
            retry_initial: Duration::from_secs(1),
            retry_max: Duration::from_secs(60),
            max_attempts: 8,
        }
    }
}

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct SinkConfig {
    pub kind: SinkKind,
    /// Endpoint. For Alertmanager its base URL (`/api/v2/alerts` is appended).
    #[serde(default)]
    pub url: Option<String>,
    /// Endpoint from a secret, for URLs that carry a token (Slack incoming webhooks).
    #[serde(default)]
    pub url_secret: Option<SecretSource>,
    /// `webhook` only: HMAC-SHA256 key; the signature goes in `X-Heatscaler-Signature`.
    #[serde(default)]
    pub hmac_secret: Option<SecretSource>,
    /// Per-request timeout.
    #[serde(default = "default_sink_timeout")]
    pub timeout: Duration,
    /// Name in logs and in the `sink` label of metrics; `<kind>-<index>` when unset.
    /// (Never derived from the URL: URLs can carry credentials.)
    #[serde(default)]
    pub name: Option<String>,
    /// Least severity sent to this sink. Unset: `warning` for Alertmanager (an
    /// alert there pages someone), `info` for webhook and Slack.
    #[serde(default)]
    pub min_severity: Option<AlertSeverity>,
    /// Also send the per-pod and intermediate steps (TriggeredScaleUp, DrainStarted,
    /// PodEvicted, PodResized, ...), which Kubernetes Events and logs always get.
    #[serde(default)]
    pub include_details: bool,
}

impl SinkConfig {
    /// The sink's name given its position in `alerts.sinks`.
    pub fn effective_name(&self, index: usize) -> String {
        self.name.clone().unwrap_or_else(|| format!("{}-{index}", self.kind.as_str()))
    }

    pub fn effective_min_severity(&self) -> AlertSeverity {
        self.min_severity.unwrap_or(match self.kind {
            SinkKind::Alertmanager => AlertSeverity::Warning,
            SinkKind::Webhook | SinkKind::Slack => AlertSeverity::Info,
        })
    }
}

/// How much attention a scaling event needs. Ordered: `info < warning < critical`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum AlertSeverity {
    Info,
    Warning,
    Critical,
}

impl AlertSeverity {
    pub const fn as_str(self) -> &'static str {
        match self {
            AlertSeverity::Info => "info",
            AlertSeverity::Warning => "warning",
            AlertSeverity::Critical => "critical",
        }
    }
}

fn default_sink_timeout() -> Duration {
    Duration::from_secs(10)
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum SinkKind {
    Alertmanager,
    Webhook,
    Slack,
}

impl SinkKind {
    pub const fn as_str(self) -> &'static str {
        match self {
            SinkKind::Alertmanager => "alertmanager",
            SinkKind::Webhook => "webhook",
            SinkKind::Slack => "slack",
        }
    }
}

// ----------------------------------------------------------------- Telemetry

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields, default)]
pub struct TelemetryConfig {
    /// Address of `/metrics`, `/healthz` and `/readyz`. Loopback unless you mean it.
    pub listen: SocketAddr,
    pub log_format: LogFormat,
}

impl Default for TelemetryConfig {
    fn default() -> Self {
        Self { listen: SocketAddr::from(([127, 0, 0, 1], 9464)), log_format: LogFormat::Text }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum LogFormat {
    Text,
    Json,
}

// --------------------------------------------------------- Admission webhook

/// `admission-webhook`: where heatscaler serves `POST /mutate-pods` to the API
/// server, with which certificate, and how the API server is told of it.
///
/// With no `cert-file`/`key-file` the daemon makes its own (a throwaway CA and
/// a serving certificate in `state-directory`) and registers its
/// `MutatingWebhookConfiguration` itself, as VPA's admission controller does
/// with `--register-webhook`: the package's install then needs no hand step.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct AdmissionWebhookConfig {
    /// Address the HTTPS listener binds: loopback when the API server runs on
    /// the same host (systemd on the master), `0.0.0.0:9443` behind a Service.
    #[serde(default = "default_webhook_listen")]
    pub listen: SocketAddr,
    /// PEM serving certificate (chain) the API server verifies against the
    /// registration's `caBundle`; re-read when the file changes. Unset (with
    /// `key-file`): the daemon generates and renews its own.
    #[serde(default)]
    pub cert_file: Option<PathBuf>,
    /// PEM private key of `cert-file`.
    #[serde(default)]
    pub key_file: Option<PathBuf>,
    /// PEM CA bundle that signed `cert-file`: the registration's `caBundle`.
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
    /// Whether the daemon creates and updates its `MutatingWebhookConfiguration`.
    /// Unset: yes, unless `cert-file` is given without `ca-file` (an install
    /// that registered the webhook by hand, before the daemon could).
    #[serde(default)]
    pub register: Option<bool>,
    /// In-cluster: the Service in front of the replicas, which the
    /// registration names (and the generated certificate's DNS name,
    /// `NAME.NAMESPACE.svc`). Unset: the registration names the URL
    /// `https://LISTEN-ADDRESS/mutate-pods` (127.0.0.1 for an unspecified
    /// address), the API server on the same host as the daemon.
    #[serde(default)]
    pub service: Option<WebhookService>,
    /// Where the generated certificate and key are kept (0600; they survive
    /// restarts). systemd's `StateDirectory=heatscaler`; an `emptyDir` in the
    /// in-cluster Deployment.
    #[serde(default = "default_state_directory")]
    pub state_directory: PathBuf,
    /// Lifetime of a generated certificate (cert-manager's default: 90 days).
    #[serde(default = "default_certificate_validity")]
    pub certificate_validity: Duration,
    /// A generated certificate is replaced this long before it expires
    /// (cert-manager's default: a third of its lifetime).
    #[serde(default = "default_renew_before")]
    pub renew_before: Duration,
}

/// The Service of `admission-webhook.service`.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct WebhookService {
    pub namespace: String,
    pub name: String,
    /// The Service's port (its `targetPort` is the listener's).
    #[serde(default = "default_webhook_service_port")]
    pub port: u16,
}

impl AdmissionWebhookConfig {
    /// The operator's certificate files, when given (both, or validation failed).
    pub fn given_certificate(&self) -> Option<(&Path, &Path)> {
        Some((self.cert_file.as_deref()?, self.key_file.as_deref()?))
    }

    /// Whether the daemon registers itself (see `register`).
    pub fn registers(&self) -> bool {
        self.register.unwrap_or(self.cert_file.is_none() || self.ca_file.is_some())
    }
}

impl Default for AdmissionWebhookConfig {
    fn default() -> Self {
        Self {
            listen: default_webhook_listen(),
            cert_file: None,
            key_file: None,
            ca_file: None,
            register: None,
            service: None,
            state_directory: default_state_directory(),
            certificate_validity: default_certificate_validity(),
            renew_before: default_renew_before(),
        }
    }
}

fn default_webhook_listen() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 9443))
}

fn default_state_directory() -> PathBuf {
    PathBuf::from("/var/lib/heatscaler")
}

fn default_certificate_validity() -> Duration {
    Duration::from_secs(90 * 24 * 3600)
}

fn default_renew_before() -> Duration {
    Duration::from_secs(30 * 24 * 3600)
}

fn default_webhook_service_port() -> u16 {
    443
}

// ----------------------------------------------------------- Leader election

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields, default)]
pub struct LeaderElectionConfig {
    pub enabled: bool,
    pub namespace: String,
    pub lease_name: String,
    /// This daemon's identity in the Lease; the host name when unset.
    pub identity: Option<String>,
    pub lease_duration: Duration,
    /// A leader that cannot renew within this stops acting (must be < lease-duration).
    pub renew_deadline: Duration,
    pub retry_period: Duration,
}

impl Default for LeaderElectionConfig {
    fn default() -> Self {
        Self {
            enabled: false,
            // Where config/kubernetes/rbac.yaml's Role grants the lease (and
            // namespace.yaml creates): the shipped RBAC works with the defaults.
            namespace: "heatscaler".into(),
            lease_name: "heatscaler".into(),
            identity: None,
            lease_duration: Duration::from_secs(15),
            renew_deadline: Duration::from_secs(10),
            retry_period: Duration::from_secs(2),
        }
    }
}

// -------------------------------------------------------------------- Daemon

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields, default)]
pub struct DaemonConfig {
    /// Log and emit Events for intended actions without performing them.
    pub dry_run: bool,
    /// Watch events within this window are planned together.
    pub debounce: Duration,
    /// A full plan runs at least this often even without watch events
    /// (timers such as unneeded-time and cooldowns expire without events).
    pub resync_interval: Duration,
    /// How often Heat stacks are polled for member state.
    pub heat_poll_interval: Duration,
}

impl Default for DaemonConfig {
    fn default() -> Self {
        Self {
            dry_run: false,
            debounce: loop_defaults::DEBOUNCE,
            resync_interval: loop_defaults::RESYNC_INTERVAL,
            heat_poll_interval: loop_defaults::HEAT_POLL_INTERVAL,
        }
    }
}

// ---------------------------------------------------------------- mesh metrics

/// Which service mesh's metric names and labels the Prometheus holds.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum MeshKind {
    /// `istio_requests_total` and `istio_request_duration_milliseconds_bucket`
    /// (`reporter="source"`, and `"destination"` for the server side,
    /// `source_workload`, `destination_workload`, …).
    #[default]
    Istio,
    /// The Linkerd proxy's `request_total` and `response_latency_ms_bucket`
    /// (`direction="outbound"`, `deployment`/`statefulset`, `dst_*`, `dst_pod`).
    Linkerd,
}

/// A Prometheus that scrapes the mesh's proxies, read through its HTTP API.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct MeshMetricsConfig {
    /// Base URL of the Prometheus HTTP API (`https://prometheus.monitoring:9090`);
    /// `/api/v1/query` is appended. Credentials go in `bearer-token`, never here.
    pub prometheus_url: String,
    #[serde(default)]
    pub mesh: MeshKind,
    /// The range the rates and quantiles are taken over (PromQL `[window]`):
    /// at least two of Prometheus's scrape intervals.
    #[serde(default = "default_mesh_window")]
    pub window: Duration,
    /// How often the mesh's traffic is read.
    #[serde(default = "default_mesh_interval")]
    pub interval: Duration,
    /// The target label the scrape configuration puts the scraped pod's name
    /// in (Istio's and Linkerd's own Prometheus configurations use `pod`): it
    /// tells which node the reporting proxy ran on.
    #[serde(default = "default_mesh_pod_label")]
    pub pod_label: String,
    /// CA bundle for an `https` URL. Verification is always on.
    #[serde(default)]
    pub ca_bundle: Option<PathBuf>,
    /// Sent as `Authorization: Bearer …` (a Prometheus behind an
    /// authenticating proxy, or OpenShift's Thanos querier).
    #[serde(default)]
    pub bearer_token: Option<SecretSource>,
    #[serde(default = "default_mesh_timeout")]
    pub request_timeout: Duration,
    /// Reading Prometheus failing for longer than this is an alert
    /// (`MeshMetricsFailing`): the advisor then works on stale traffic.
    #[serde(default = "default_mesh_failure_alert_after")]
    pub failure_alert_after: Duration,
}

fn default_mesh_window() -> Duration {
    Duration::from_secs(5 * 60)
}
fn default_mesh_interval() -> Duration {
    Duration::from_secs(60)
}
fn default_mesh_pod_label() -> String {
    "pod".into()
}
fn default_mesh_timeout() -> Duration {
    Duration::from_secs(10)
}
fn default_mesh_failure_alert_after() -> Duration {
    Duration::from_secs(10 * 60)
}
