//! Rules serde cannot express: cross-field constraints, fields that only make
//! sense for one backend kind, and secrets that must resolve now rather than at
//! the first scale-down at 3 a.m.

use std::collections::HashSet;

use super::*;

pub(super) fn validate(config: &Config) -> Vec<ConfigError> {
    let mut v = Validator::default();
    v.kubernetes(&config.kubernetes);
    match &config.openstack {
        Some(os) => v.openstack(os),
        None if !config.node_groups.is_empty() => {
            v.err("openstack", "is required when node-groups are configured (how to reach Heat)")
        }
        None => {}
    }
    v.node_groups(&config.node_groups);
    v.limits(&config.cluster_limits, &config.node_groups);
    for p in heatscaler_core::policy::scaling_problems(&config.scale_up, &config.scale_down) {
        v.err(p.path, p.problem);
    }
    v.pod_resize(&config.pod_resize);
    v.alerts(&config.alerts);
    v.leader_election(&config.leader_election);
    v.daemon(&config.daemon);
    for p in config.placement_advisor.problems() {
        v.err(p.path, p.problem);
    }
    if config.placement_advisor.mode != AdvisorMode::Off && config.mesh_metrics.is_none() {
        v.err("placement-advisor.mode", "needs a mesh-metrics section: the advisor judges the mesh's traffic");
    }
    if let Some(m) = &config.mesh_metrics {
        v.mesh_metrics(m);
    }
    if let Some(w) = &config.admission_webhook {
        v.admission_webhook(w);
        if !config.pod_resize.enabled {
            v.err(
                "admission-webhook",
                "needs pod-resize.enabled: true (the webhook applies the recommendations of the VPA objects it watches)",
            );
        }
    }
    v.bounds(config);
    v.errors
}

/// A Service's namespace or name (RFC 1123 label).
fn is_dns_label(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 63
        && s.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !s.starts_with('-')
        && !s.ends_with('-')
}

const MINUTE: u64 = 60;
const HOUR: u64 = 60 * MINUTE;
const DAY: u64 = 24 * HOUR;

/// Largest node group, node count or core count accepted: far above any
/// Heat stack (Heat's own limit on a stack's resources is 1000 by default).
const MAX_NODES: u32 = 10_000;

#[derive(Default)]
struct Validator {
    errors: Vec<ConfigError>,
}

impl Validator {
    fn err(&mut self, path: impl Into<String>, problem: impl Into<String>) {
        self.errors.push(ConfigError::new(path, problem));
    }

    fn positive(&mut self, path: &str, d: Duration) {
        if d.get().is_zero() {
            self.err(path, "must be longer than zero");
        }
    }

    fn admission_webhook(&mut self, w: &AdmissionWebhookConfig) {
        self.existing_file("admission-webhook.cert-file", w.cert_file.as_deref());
        self.existing_file("admission-webhook.key-file", w.key_file.as_deref());
        self.existing_file("admission-webhook.ca-file", w.ca_file.as_deref());
        match (&w.cert_file, &w.key_file) {
            (Some(_), None) => self.err("admission-webhook.key-file", "is required with cert-file (or give neither)"),
            (None, Some(_)) => self.err("admission-webhook.cert-file", "is required with key-file (or give neither)"),
            (None, None) if w.ca_file.is_some() => self.err(
                "admission-webhook.ca-file",
                "only goes with cert-file and key-file (a generated certificate brings its own CA)",
            ),
            _ => {}
        }
        if w.register == Some(true) && w.cert_file.is_some() && w.ca_file.is_none() {
            self.err(
                "admission-webhook.register",
                "needs ca-file with cert-file: the registration's caBundle is the CA that signed the certificate",
            );
        }
        if let Some(s) = &w.service {
            for (key, value) in [("namespace", &s.namespace), ("name", &s.name)] {
                if !is_dns_label(value) {
                    self.err(
                        format!("admission-webhook.service.{key}"),
                        format!("`{value}` is not a DNS label (lower-case letters, digits and '-', at most 63)"),
                    );
                }
            }
            if s.port == 0 {
                self.err("admission-webhook.service.port", "must be a port (1-65535)");
            }
        }
        if w.cert_file.is_none() {
            let (validity, renew) = (w.certificate_validity.get(), w.renew_before.get());
            if validity < std::time::Duration::from_secs(MINUTE) {
                self.err("admission-webhook.certificate-validity", "must be at least 1m");
            } else if renew.is_zero() || renew >= validity {
                self.err(
                    "admission-webhook.renew-before",
                    format!(
                        "must be longer than zero and shorter than certificate-validity ({})",
                        w.certificate_validity
                    ),
                );
            }
            self.at_most("admission-webhook.certificate-validity", w.certificate_validity, 10 * 365 * DAY);
        }
    }

    fn existing_file(&mut self, path: &str, file: Option<&std::path::Path>) {
        if let Some(f) = file
            && !f.is_file()
        {
            self.err(path, format!("file {} does not exist", f.display()));
        }
    }

    fn secret(&mut self, path: &str, s: &SecretSource) {
        if let Err(e) = s.resolve() {
            self.err(path, e.to_string());
        }
    }

    fn url(&mut self, path: &str, text: &str) {
        match url::Url::parse(text) {
            Ok(u) if u.scheme() == "https" || u.scheme() == "http" => {}
            Ok(u) => self.err(path, format!("scheme `{}` is not http or https", u.scheme())),
            // Never echo the text: a URL can carry a token.
            Err(e) => self.err(path, format!("is not a URL ({e})")),
        }
    }

    fn kubernetes(&mut self, k: &KubernetesConfig) {
        if k.kubeconfig.is_some() && k.kubeconfig_credential.is_some() {
            self.err("kubernetes.kubeconfig-credential", "set either kubeconfig or kubeconfig-credential, not both");
        }
        if k.access == KubernetesAccess::InCluster
            && (k.kubeconfig.is_some() || k.kubeconfig_credential.is_some() || k.context.is_some())
        {
            self.err(
                "kubernetes.access",
                "in-cluster access uses the service account; remove kubeconfig, kubeconfig-credential and context",
            );
        }
        self.existing_file("kubernetes.kubeconfig", k.kubeconfig.as_deref());
        if let Some(path) = k.kubeconfig.as_deref().filter(|p| p.is_file())
            && let Err(e) = super::kubeconfig::read(path)
        {
            self.err("kubernetes.kubeconfig", e);
        }
        self.positive("kubernetes.failure-alert-after", k.failure_alert_after);
    }

    fn openstack(&mut self, os: &OpenStackConfig) {
        let env_names_a_cloud =
            || ["OS_CLOUD", "OS_AUTH_URL"].iter().any(|k| std::env::var(k).is_ok_and(|v| !v.is_empty()));
        let explicit = os.auth_url.is_some() || os.application_credential.is_some() || os.password.is_some();
        match (&os.cloud, explicit) {
            (Some(_), true) => self.err(
                "openstack.cloud",
                "use either `cloud` (clouds.yaml) or explicit `auth-url` with a credential, not both",
            ),
            // As openstacksdk: the environment names the cloud (resolved when connecting).
            (None, false) if env_names_a_cloud() => {}
            (None, false) => self.err(
                "openstack",
                "no authentication: set `cloud` (an entry of clouds.yaml) or `auth-url` with `application-credential` or `password`, \
                 or OS_CLOUD or OS_AUTH_URL in the environment",
            ),
            (Some(_), false) => {
                self.existing_file("openstack.clouds-yaml", os.clouds_yaml.as_deref());
                if os.clouds_yaml.is_none() && std::env::var_os("OS_CLIENT_CONFIG_FILE").is_none() {
                    let searched = clouds_yaml_search_path();
                    if !searched.iter().any(|p| p.is_file()) {
                        let list = searched.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(", ");
                        self.err(
                            "openstack.cloud",
                            format!("no clouds.yaml found (looked in {list}); set `clouds-yaml` or OS_CLIENT_CONFIG_FILE"),
                        );
                    }
                }
            }
            (None, true) => {
                if os.clouds_yaml.is_some() {
                    self.err("openstack.clouds-yaml", "only used together with `cloud`");
                }
                match &os.auth_url {
                    None => self.err("openstack.auth-url", "is required with an explicit credential"),
                    Some(u) => self.url("openstack.auth-url", u),
                }
                match (&os.application_credential, &os.password) {
                    (Some(_), Some(_)) => self.err(
                        "openstack.password",
                        "set exactly one of application-credential and password, not both",
                    ),
                    (None, None) => self.err("openstack", "set one of application-credential or password"),
                    (Some(ac), None) => self.application_credential(ac),
                    (None, Some(pw)) => self.password(pw),
                }
            }
        }
        self.existing_file("openstack.ca-bundle", os.ca_bundle.as_deref());
        self.positive("openstack.request-timeout", os.request_timeout);
        self.positive("openstack.stack-update-timeout", os.stack_update_timeout);
        self.positive("openstack.failure-alert-after", os.failure_alert_after);
    }

    fn application_credential(&mut self, ac: &ApplicationCredential) {
        let p = "openstack.application-credential";
        match (&ac.id, &ac.name) {
            (Some(_), Some(_)) => self.err(format!("{p}.name"), "set either id or name, not both"),
            (None, None) => self.err(p, "set `id` (or `name` with `user-id` or `username`)"),
            (None, Some(_)) if ac.user_id.is_none() && ac.username.is_none() => {
                self.err(p, "a credential given by `name` also needs `user-id` or `username`")
            }
            _ => {}
        }
        self.secret(&format!("{p}.secret"), &ac.secret);
    }

    fn password(&mut self, pw: &PasswordAuth) {
        let p = "openstack.password";
        let project = pw.project_id.is_some() || pw.project_name.is_some();
        match (&pw.trust_id, project) {
            (None, false) => {
                self.err(p, "set `project-id` or `project-name` (or `trust-id`): Heat stacks live in a project")
            }
            (Some(_), true) => self.err(
                format!("{p}.trust-id"),
                "a trust is scoped to the trustor's project already; drop `project-id`/`project-name`",
            ),
            _ => {}
        }
        self.secret(&format!("{p}.password"), &pw.password);
    }

    fn node_groups(&mut self, groups: &[NodeGroupConfig]) {
        let mut names = HashSet::new();
        // Two groups resizing the same Heat resource would undo each other's steps.
        let mut resources: Vec<(&str, &str, usize)> = Vec::new();
        for (i, g) in groups.iter().enumerate() {
            let key = (g.stack.trim(), g.backend.resource.trim());
            match resources.iter().find(|(s, r, _)| (*s, *r) == key) {
                Some((_, _, first)) => self.err(
                    format!("node-groups[{i}].backend.resource"),
                    format!(
                        "stack `{}` resource `{}` is already the group of node-groups[{first}]; a Heat group belongs to one node group",
                        key.0, key.1
                    ),
                ),
                None => resources.push((key.0, key.1, i)),
            }
        }
        for (i, g) in groups.iter().enumerate() {
            let p = format!("node-groups[{i}]");
            if g.name.trim().is_empty() {
                self.err(format!("{p}.name"), "must not be empty");
            } else if !names.insert(g.name.as_str()) {
                self.err(format!("{p}.name"), format!("`{}` is used by another group", g.name));
            }
            if g.stack.trim().is_empty() {
                self.err(format!("{p}.stack"), "must name a Heat stack (name or ID)");
            }
            if g.min_size > g.max_size {
                self.err(format!("{p}.min-size"), format!("{} is greater than max-size {}", g.min_size, g.max_size));
            }
            if g.max_size == 0 {
                self.err(format!("{p}.max-size"), "must be at least 1");
            }
            self.backend(&format!("{p}.backend"), &g.backend);
            match (g.node_mapping.by, &g.node_mapping.label) {
                (NodeMappingKind::Label, None) => {
                    self.err(format!("{p}.node-mapping.label"), "is required with `by: label`")
                }
                (NodeMappingKind::Label, Some(_)) | (_, None) => {}
                (_, Some(_)) => self.err(format!("{p}.node-mapping.label"), "is only used with `by: label`"),
            }
            if let Some(t) = &g.node_template {
                for key in ["cpu", "memory"] {
                    if !t.allocatable.contains_key(key) {
                        self.err(format!("{p}.node-template.allocatable"), format!("must give `{key}`"));
                    }
                }
            }
            if let Some(price) = g.price_per_hour
                && !(price.is_finite() && price >= 0.0)
            {
                self.err(format!("{p}.price-per-hour"), format!("{price} is not a price (zero or more)"));
            }
        }
    }

    fn backend(&mut self, p: &str, b: &BackendConfig) {
        if b.resource.trim().is_empty() {
            self.err(format!("{p}.resource"), "must name the group resource in the stack");
        }
        let rg_only = [("count-parameter", &b.count_parameter), ("removal-parameter", &b.removal_parameter)];
        let asg_only = [
            ("desired-capacity-parameter", &b.desired_capacity_parameter),
            ("scale-up-policy", &b.scale_up_policy),
            ("scale-down-policy", &b.scale_down_policy),
        ];
        match b.kind {
            BackendKind::ResourceGroup => {
                for (key, value) in rg_only {
                    if value.is_none() {
                        self.err(format!("{p}.{key}"), "is required for kind resource-group");
                    }
                }
                for (key, value) in asg_only {
                    if value.is_some() {
                        self.err(format!("{p}.{key}"), "is only valid for kind autoscaling-group");
                    }
                }
            }
            BackendKind::AutoscalingGroup => {
                for (key, value) in rg_only {
                    if value.is_some() {
                        self.err(format!("{p}.{key}"), "is only valid for kind resource-group");
                    }
                }
                let can_grow = b.desired_capacity_parameter.is_some() || b.scale_up_policy.is_some();
                let can_shrink = b.desired_capacity_parameter.is_some() || b.scale_down_policy.is_some();
                if !can_grow || !can_shrink {
                    self.err(
                        p.to_string(),
                        "kind autoscaling-group needs desired-capacity-parameter, or both scale-up-policy and scale-down-policy",
                    );
                }
            }
        }
    }

    fn limits(&mut self, l: &ClusterLimits, groups: &[NodeGroupConfig]) {
        let pct = l.max_total_unready_percentage;
        if !(pct.is_finite() && (0.0..=100.0).contains(&pct)) {
            self.err("cluster-limits.max-total-unready-percentage", "must be a percentage from 0 to 100");
        }
        if let Some(max) = l.max_nodes_total {
            let min_total: u32 = groups.iter().map(|g| g.min_size).sum();
            if max < min_total {
                self.err(
                    "cluster-limits.max-nodes-total",
                    format!("{max} is below the sum of the groups' min-size ({min_total})"),
                );
            }
        }
    }

    fn pod_resize(&mut self, r: &PodResizePolicy) {
        let p = "pod-resize";
        if r.recommender_name.trim().is_empty() {
            self.err(format!("{p}.recommender-name"), "must not be empty");
        }
        let rec = &r.recommender;
        self.positive(&format!("{p}.recommender.cpu-histogram-half-life"), rec.cpu_histogram_half_life);
        self.positive(&format!("{p}.recommender.memory-histogram-half-life"), rec.memory_histogram_half_life);
        self.positive(&format!("{p}.recommender.memory-aggregation-interval"), rec.memory_aggregation_interval);
        self.positive(&format!("{p}.recommender.checkpoint-interval"), rec.checkpoint_interval);
        if rec.memory_aggregation_interval_count == 0 {
            self.err(format!("{p}.recommender.memory-aggregation-interval-count"), "must be at least 1");
        }
        if rec.lower_bound_percentile > rec.upper_bound_percentile {
            self.err(format!("{p}.recommender.lower-bound-percentile"), "is above upper-bound-percentile");
        }
        if !(rec.safety_margin_fraction.is_finite() && rec.safety_margin_fraction >= 0.0) {
            self.err(format!("{p}.recommender.safety-margin-fraction"), "must be zero or more");
        }
        if !(rec.oom_bump_up_ratio.is_finite() && rec.oom_bump_up_ratio >= 1.0) {
            self.err(
                format!("{p}.recommender.oom-bump-up-ratio"),
                "must be at least 1 (it multiplies the memory at the OOM)",
            );
        }
        self.positive(&format!("{p}.metrics.interval"), r.metrics.interval);
        self.positive(&format!("{p}.metrics.node-timeout"), r.metrics.node_timeout);
        if r.metrics.concurrency == 0 {
            self.err(format!("{p}.metrics.concurrency"), "must be at least 1");
        }
        if r.metrics.kubelet == super::schema::KubeletAccess::Direct && r.metrics.kubelet_ca_file.is_none() {
            self.err(
                format!("{p}.metrics.kubelet-ca-file"),
                "required with `kubelet: direct` (kubelet serving certificates are verified, never skipped)",
            );
        }
    }

    fn alerts(&mut self, a: &AlertsConfig) {
        if a.queue_capacity == 0 {
            self.err("alerts.queue-capacity", "must be at least 1");
        }
        if a.max_attempts == 0 {
            self.err("alerts.max-attempts", "must be at least 1");
        }
        if a.retry_initial > a.retry_max {
            self.err("alerts.retry-initial", "is longer than retry-max");
        }
        for (i, s) in a.sinks.iter().enumerate() {
            let p = format!("alerts.sinks[{i}]");
            match (&s.url, &s.url_secret) {
                (Some(_), Some(_)) => self.err(format!("{p}.url-secret"), "set either url or url-secret, not both"),
                (None, None) => self.err(p.clone(), "needs `url` or `url-secret`"),
                (Some(u), None) => {
                    self.url(&format!("{p}.url"), u);
                    if s.kind == SinkKind::Slack {
                        self.err(
                            format!("{p}.url"),
                            "a Slack webhook URL is a credential: give it with url-secret so it is never logged",
                        );
                    }
                }
                (None, Some(secret)) => match secret.resolve() {
                    Ok(u) => self.url(&format!("{p}.url-secret"), secrecy::ExposeSecret::expose_secret(&u)),
                    Err(e) => self.err(format!("{p}.url-secret"), e.to_string()),
                },
            }
            match (&s.hmac_secret, s.kind) {
                (Some(secret), SinkKind::Webhook) => self.secret(&format!("{p}.hmac-secret"), secret),
                (Some(_), _) => self.err(format!("{p}.hmac-secret"), "is only used by kind webhook"),
                (None, _) => {}
            }
            self.positive(&format!("{p}.timeout"), s.timeout);
            if let Some(name) = &s.name
                && (name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c)))
            {
                self.err(format!("{p}.name"), "use letters, digits, `-`, `_` or `.` (it becomes a metric label)");
            }
            let name = s.effective_name(i);
            if a.sinks.iter().enumerate().take(i).any(|(j, o)| o.effective_name(j) == name) {
                self.err(format!("{p}.name"), format!("sink name `{name}` is used twice"));
            }
        }
    }

    fn leader_election(&mut self, l: &LeaderElectionConfig) {
        let p = "leader-election";
        self.positive(&format!("{p}.retry-period"), l.retry_period);
        if l.renew_deadline >= l.lease_duration {
            self.err(
                format!("{p}.renew-deadline"),
                format!(
                    "{} must be shorter than lease-duration {}: a leader must stop acting before another may start",
                    l.renew_deadline, l.lease_duration
                ),
            );
        }
        if l.retry_period >= l.renew_deadline {
            self.err(format!("{p}.retry-period"), "must be shorter than renew-deadline");
        }
        if l.lease_name.is_empty() || l.namespace.is_empty() {
            self.err(p, "namespace and lease-name must not be empty");
        }
    }

    /// `d` at most `max_secs`, the bound in the message. Every duration has
    /// one: `debounce: 9999999999999h` was valid, and a wait that long ignored
    /// everything but SIGKILL.
    fn at_most(&mut self, path: &str, d: Duration, max_secs: u64) {
        if d.get() > std::time::Duration::from_secs(max_secs) {
            let max = Duration::from_secs(max_secs);
            self.err(path, format!("{d} is longer than the longest accepted, {max}"));
        }
    }

    /// A count at most `max`, the bound in the message.
    fn count_at_most(&mut self, path: &str, n: u64, max: u64) {
        if n > max {
            self.err(path, format!("{n} is more than the most accepted, {max}"));
        }
    }

    /// Upper bounds on every duration, size and count of the file. Loop
    /// timings are bounded tightly (a stop must not wait on them); policy
    /// times generously (days); counts far above any real cluster.
    fn bounds(&mut self, c: &Config) {
        let d = &c.daemon;
        self.at_most("daemon.debounce", d.debounce, 5 * MINUTE);
        self.at_most("daemon.resync-interval", d.resync_interval, HOUR);
        self.at_most("daemon.heat-poll-interval", d.heat_poll_interval, HOUR);
        if let Some(os) = &c.openstack {
            self.at_most("openstack.request-timeout", os.request_timeout, 5 * MINUTE);
            self.at_most("openstack.stack-update-timeout", os.stack_update_timeout, 6 * HOUR);
        }
        self.count_at_most("node-groups", c.node_groups.len() as u64, 1000);
        for (i, g) in c.node_groups.iter().enumerate() {
            self.count_at_most(&format!("node-groups[{i}].max-size"), g.max_size.into(), MAX_NODES.into());
            self.count_at_most(&format!("node-groups[{i}].min-size"), g.min_size.into(), MAX_NODES.into());
        }
        let l = &c.cluster_limits;
        if let Some(n) = l.max_nodes_total {
            self.count_at_most("cluster-limits.max-nodes-total", n.into(), MAX_NODES.into());
        }
        if let Some(n) = l.max_cores_total {
            self.count_at_most("cluster-limits.max-cores-total", n.into(), u64::from(MAX_NODES) * 1024);
        }
        self.count_at_most("cluster-limits.ok-total-unready-count", l.ok_total_unready_count.into(), MAX_NODES.into());
        for (i, label) in c.scale_up.balancing_ignore_labels.iter().enumerate() {
            if label.trim().is_empty() {
                self.err(format!("scale-up.balancing-ignore-labels[{i}]"), "must not be empty");
            }
        }
        let up = &c.scale_up;
        self.at_most("scale-up.new-pod-scale-up-delay", up.new_pod_scale_up_delay, HOUR);
        self.at_most("scale-up.max-node-provision-time", up.max_node_provision_time, 6 * HOUR);
        self.at_most("scale-up.backoff-initial", up.backoff_initial, 6 * HOUR);
        self.at_most("scale-up.backoff-max", up.backoff_max, DAY);
        self.count_at_most("scale-up.max-nodes-per-scale-up", up.max_nodes_per_scale_up.into(), MAX_NODES.into());
        let down = &c.scale_down;
        for (key, value) in [
            ("unneeded-time", down.unneeded_time),
            ("unready-time", down.unready_time),
            ("delay-after-add", down.delay_after_add),
            ("delay-after-delete", down.delay_after_delete),
            ("delay-after-failure", down.delay_after_failure),
            ("cooldown-before-removal", down.cooldown_before_removal),
        ] {
            self.at_most(&format!("scale-down.{key}"), value, 7 * DAY);
        }
        self.at_most("scale-down.max-eviction-time", down.max_eviction_time, 6 * HOUR);
        self.at_most("scale-down.max-graceful-termination", down.max_graceful_termination, HOUR);
        self.count_at_most("scale-down.max-nodes-per-step", down.max_nodes_per_step.into(), MAX_NODES.into());
        self.count_at_most("scale-down.max-drain-parallelism", down.max_drain_parallelism.into(), 1000);
        let r = &c.pod_resize;
        let rec = &r.recommender;
        for (key, value) in [
            ("cpu-histogram-half-life", rec.cpu_histogram_half_life),
            ("memory-histogram-half-life", rec.memory_histogram_half_life),
            ("memory-aggregation-interval", rec.memory_aggregation_interval),
        ] {
            self.at_most(&format!("pod-resize.recommender.{key}"), value, 30 * DAY);
        }
        self.at_most("pod-resize.recommender.checkpoint-interval", rec.checkpoint_interval, DAY);
        self.count_at_most(
            "pod-resize.recommender.memory-aggregation-interval-count",
            rec.memory_aggregation_interval_count.into(),
            1000,
        );
        let u = &r.updater;
        self.count_at_most("pod-resize.updater.min-replicas", u.min_replicas.into(), 100_000);
        for (key, value) in [
            ("min-update-interval", u.min_update_interval),
            ("update-off-target-after", u.update_off_target_after),
            ("deferred-timeout", u.deferred_timeout),
        ] {
            self.at_most(&format!("pod-resize.updater.{key}"), value, 7 * DAY);
        }
        self.at_most("pod-resize.metrics.interval", r.metrics.interval, HOUR);
        self.at_most("pod-resize.metrics.node-timeout", r.metrics.node_timeout, 5 * MINUTE);
        self.count_at_most("pod-resize.metrics.concurrency", r.metrics.concurrency.into(), 1024);
        let a = &c.alerts;
        self.count_at_most("alerts.sinks", a.sinks.len() as u64, 64);
        self.count_at_most("alerts.queue-capacity", a.queue_capacity.into(), 1_000_000);
        self.count_at_most("alerts.max-attempts", a.max_attempts.into(), 100);
        self.at_most("alerts.dedup-window", a.dedup_window, DAY);
        self.at_most("alerts.retry-initial", a.retry_initial, HOUR);
        self.at_most("alerts.retry-max", a.retry_max, 6 * HOUR);
        for (i, s) in a.sinks.iter().enumerate() {
            self.at_most(&format!("alerts.sinks[{i}].timeout"), s.timeout, 5 * MINUTE);
        }
        let le = &c.leader_election;
        self.at_most("leader-election.lease-duration", le.lease_duration, 5 * MINUTE);
        self.at_most("leader-election.renew-deadline", le.renew_deadline, 5 * MINUTE);
        self.at_most("leader-election.retry-period", le.retry_period, MINUTE);
        let pa = &c.placement_advisor;
        for (key, value) in [
            ("raise-after", pa.raise_after),
            ("release-after", pa.release_after),
            ("window", pa.window),
            ("workload-cooldown", pa.workload_cooldown),
        ] {
            self.at_most(&format!("placement-advisor.{key}"), value, 7 * DAY);
        }
        self.count_at_most("placement-advisor.max-new-advice", pa.max_new_advice.into(), 10_000);
        if let Some(m) = &c.mesh_metrics {
            self.at_most("mesh-metrics.window", m.window, DAY);
            self.at_most("mesh-metrics.interval", m.interval, HOUR);
            self.at_most("mesh-metrics.request-timeout", m.request_timeout, 5 * MINUTE);
            self.at_most("mesh-metrics.failure-alert-after", m.failure_alert_after, DAY);
        }
    }

    fn mesh_metrics(&mut self, m: &MeshMetricsConfig) {
        let p = "mesh-metrics";
        match url::Url::parse(&m.prometheus_url) {
            Err(e) => self.err(format!("{p}.prometheus-url"), format!("is not a URL ({e})")),
            Ok(u) if u.scheme() != "http" && u.scheme() != "https" => {
                self.err(format!("{p}.prometheus-url"), format!("scheme `{}` is not http or https", u.scheme()))
            }
            Ok(u) if !u.username().is_empty() || u.password().is_some() || u.query().is_some() => self.err(
                format!("{p}.prometheus-url"),
                "carries credentials or a query string: give a token with bearer-token so it is never logged",
            ),
            Ok(_) => {}
        }
        self.existing_file(&format!("{p}.ca-bundle"), m.ca_bundle.as_deref());
        if let Some(t) = &m.bearer_token {
            self.secret(&format!("{p}.bearer-token"), t);
            // A secret never crosses the network in clear text.
            if url::Url::parse(&m.prometheus_url).is_ok_and(|u| u.scheme() == "http") {
                self.err(format!("{p}.bearer-token"), "would be sent in clear text: give an https prometheus-url");
            }
        }
        for (key, d) in [("window", m.window), ("interval", m.interval), ("request-timeout", m.request_timeout)] {
            self.positive(&format!("{p}.{key}"), d);
        }
        if m.window.get() < std::time::Duration::from_secs(1) {
            self.err(format!("{p}.window"), "must be at least 1s (PromQL ranges are whole seconds here)");
        }
        if m.pod_label.is_empty()
            || !m.pod_label.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
            || m.pod_label.starts_with(|c: char| c.is_ascii_digit())
        {
            self.err(format!("{p}.pod-label"), format!("`{}` is not a Prometheus label name", m.pod_label));
        }
    }

    fn daemon(&mut self, d: &DaemonConfig) {
        self.positive("daemon.resync-interval", d.resync_interval);
        self.positive("daemon.heat-poll-interval", d.heat_poll_interval);
    }
}

/// Where the OpenStack tools (and osauth) look for clouds.yaml, in order.
pub(super) fn clouds_yaml_search_path() -> Vec<std::path::PathBuf> {
    let mut paths = vec![std::path::PathBuf::from("clouds.yaml")];
    if let Some(home) = std::env::var_os("HOME") {
        paths.push(std::path::PathBuf::from(home).join(".config/openstack/clouds.yaml"));
    }
    paths.push("/etc/openstack/clouds.yaml".into());
    paths
}
