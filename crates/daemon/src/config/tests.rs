//! Each bad configuration must produce an error that names its key path.

use super::*;

const VALID: &str = r#"
openstack:
  auth-url: https://keystone.example:5000/v3
  application-credential:
    id: 0123abcd
    secret: { env: HEATSCALER_CONFIG_TEST_SECRET }
node-groups:
  - name: workers
    stack: k8s-prod
    backend:
      kind: resource-group
      resource: kube_minions
      count-parameter: number_of_minions
      removal-parameter: minions_to_remove
    min-size: 1
    max-size: 10
"#;

fn with_secret() {
    // SAFETY: tests in this module only ever set this one variable to the same value.
    unsafe { std::env::set_var("HEATSCALER_CONFIG_TEST_SECRET", "s3cret-value") };
}

fn errors_of(text: &str) -> Vec<ConfigError> {
    with_secret();
    match parse(text, "test.yaml", None) {
        Ok(_) => panic!("configuration was accepted:\n{text}"),
        Err(e) => e.errors,
    }
}

fn assert_error(text: &str, path: &str, needle: &str) {
    let errors = errors_of(text);
    assert!(
        errors.iter().any(|e| e.path == path && e.problem.contains(needle)),
        "expected an error at `{path}` mentioning `{needle}`, got: {errors:#?}"
    );
}

#[test]
fn the_valid_base_is_accepted_with_defaults() {
    with_secret();
    let c = parse(VALID, "test.yaml", None).unwrap();
    assert_eq!(c.node_groups[0].max_size, 10);
    assert_eq!(c.scale_down.unneeded_time, Duration::from_secs(600));
    assert_eq!(c.scale_down.utilization_threshold, Fraction(0.5));
}

#[test]
fn replace_with_cheaper_is_off_by_default_read_when_set_and_a_wrong_type_names_it() {
    with_secret();
    assert!(!parse(VALID, "test.yaml", None).unwrap().scale_down.replace_with_cheaper);
    let on = parse(&format!("{VALID}scale-down:\n  replace-with-cheaper: true\n"), "test.yaml", None).unwrap();
    assert!(on.scale_down.replace_with_cheaper);
    assert_error(
        &format!("{VALID}scale-down:\n  replace-with-cheaper: sometimes\n"),
        "scale-down.replace-with-cheaper",
        "invalid",
    );
}

#[test]
fn the_example_file_is_valid() {
    // Give the example the files, variables and credentials a real master has.
    let dir = tempfile::tempdir().unwrap();
    for name in ["admin.conf", "webhook-hmac", "openstack-secret"] {
        std::fs::write(dir.path().join(name), "x\n").unwrap();
    }
    std::fs::write(dir.path().join("admin.conf"), "apiVersion: v1\nkind: Config\n").unwrap();
    // SAFETY: only this test reads these two variables.
    unsafe {
        std::env::set_var("CREDENTIALS_DIRECTORY", dir.path());
        std::env::set_var("HEATSCALER_SLACK_WEBHOOK", "https://hooks.slack.example/services/T/B/X");
    }
    let text = include_str!("../../../../config/heatscaler.example.yaml")
        .replace("/etc/heatscaler/credentials/kubeconfig", &dir.path().join("admin.conf").display().to_string())
        .replace("/etc/heatscaler/webhook-hmac", &dir.path().join("webhook-hmac").display().to_string());
    let config = parse(&text, "heatscaler.example.yaml", None).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(config.node_groups.len(), 2);
}

#[test]
fn unknown_key_names_its_parent_path() {
    let text = VALID.replace("min-size: 1", "min-size: 1\n    mni-size: 2");
    let errors = errors_of(&text);
    assert_eq!(errors.len(), 1);
    assert_eq!(errors[0].path, "node-groups[0].mni-size");
    assert!(errors[0].problem.contains("unknown field `mni-size`"), "{errors:?}");
}

#[test]
fn wrong_type_names_the_key() {
    assert_error(&VALID.replace("max-size: 10", "max-size: ten"), "node-groups[0].max-size", "invalid");
}

#[test]
fn min_above_max() {
    assert_error(&VALID.replace("min-size: 1", "min-size: 12"), "node-groups[0].min-size", "greater than max-size");
}

#[test]
fn missing_secret_names_the_variable_not_a_value() {
    let text = VALID.replace("HEATSCALER_CONFIG_TEST_SECRET", "HEATSCALER_CONFIG_TEST_UNSET");
    assert_error(&text, "openstack.application-credential.secret", "HEATSCALER_CONFIG_TEST_UNSET is not set");
}

#[test]
fn negative_duration() {
    let text = format!("{VALID}scale-down:\n  unneeded-time: -5m\n");
    assert_error(&text, "scale-down.unneeded-time", "negative");
}

#[test]
fn unitless_duration() {
    let text = format!("{VALID}scale-down:\n  cooldown-before-removal: 30\n");
    assert_error(&text, "scale-down.cooldown-before-removal", "no unit");
}

#[test]
fn threshold_outside_zero_one() {
    let text = format!("{VALID}scale-down:\n  utilization-threshold: 1.5\n");
    assert_error(&text, "scale-down.utilization-threshold", "between 0 and 1");
}

#[test]
fn unknown_backend_kind() {
    let text = VALID.replace("kind: resource-group", "kind: heat-group");
    assert_error(&text, "node-groups[0].backend.kind", "unknown variant `heat-group`");
}

#[test]
fn resource_group_without_removal_parameter() {
    let text = VALID.replace("      removal-parameter: minions_to_remove\n", "");
    assert_error(&text, "node-groups[0].backend.removal-parameter", "required for kind resource-group");
}

#[test]
fn autoscaling_group_with_resource_group_keys() {
    let text = VALID.replace("kind: resource-group", "kind: autoscaling-group");
    assert_error(&text, "node-groups[0].backend.count-parameter", "only valid for kind resource-group");
}

#[test]
fn duplicate_group_names() {
    let group = VALID.split("node-groups:\n").nth(1).unwrap();
    let text = format!("{VALID}{group}");
    assert_error(&text, "node-groups[1].name", "used by another group");
}

#[test]
fn cloud_and_explicit_auth_together() {
    let text = VALID.replace("openstack:\n", "openstack:\n  cloud: prod\n");
    assert_error(&text, "openstack.cloud", "not both");
}

#[test]
fn node_groups_without_openstack() {
    let text = VALID.split("node-groups:").nth(1).map(|g| format!("node-groups:{g}")).unwrap();
    assert_error(&text, "openstack", "required when node-groups");
}

#[test]
fn label_mapping_without_label_key() {
    let text = VALID.replace("    min-size: 1", "    node-mapping: { by: label }\n    min-size: 1");
    assert_error(&text, "node-groups[0].node-mapping.label", "required with `by: label`");
}

#[test]
fn bad_quantity_in_template() {
    let text = VALID.replace(
        "    min-size: 1",
        "    node-template:\n      allocatable: { cpu: four, memory: 16Gi }\n    min-size: 1",
    );
    let errors = errors_of(&text);
    assert!(errors[0].path.starts_with("node-groups[0].node-template.allocatable"), "{errors:?}");
    assert!(errors[0].problem.contains("not a Kubernetes quantity"), "{errors:?}");
}

#[test]
fn renew_deadline_not_below_lease_duration() {
    let text = format!("{VALID}leader-election:\n  enabled: true\n  lease-duration: 10s\n  renew-deadline: 15s\n");
    assert_error(&text, "leader-election.renew-deadline", "shorter than lease-duration");
}

#[test]
fn slack_url_inline_is_refused_without_echoing_it() {
    let url = "https://hooks.slack.example/services/T000/B000/XXXXSECRET";
    let text = format!("{VALID}alerts:\n  sinks:\n    - kind: slack\n      url: {url}\n");
    let errors = errors_of(&text);
    assert!(errors.iter().any(|e| e.path == "alerts.sinks[0].url" && e.problem.contains("url-secret")));
    assert!(errors.iter().all(|e| !e.to_string().contains("XXXXSECRET")));
}

#[test]
fn secrets_never_appear_in_errors_or_debug() {
    with_secret();
    let c = parse(VALID, "test.yaml", None).unwrap();
    let resolved = c.openstack.as_ref().unwrap().application_credential.as_ref().unwrap().secret.resolve().unwrap();
    assert!(!format!("{resolved:?} {c:?}").contains("s3cret-value"));
    let text = VALID.replace("min-size: 1", "min-size: 99");
    assert!(errors_of(&text).iter().all(|e| !e.to_string().contains("s3cret-value")));
}

#[test]
fn relative_paths_resolve_against_the_file() {
    with_secret();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("ac-secret"), "x\n").unwrap();
    let text = VALID.replace("{ env: HEATSCALER_CONFIG_TEST_SECRET }", "{ file: ac-secret }");
    let c = parse(&text, "test.yaml", Some(dir.path())).unwrap();
    let ac = c.openstack.unwrap().application_credential.unwrap();
    assert_eq!(ac.secret, SecretSource::File(dir.path().join("ac-secret")));
}

#[test]
fn duplicate_sink_names_and_bad_severity() {
    let text = format!(
        "{VALID}alerts:\n  sinks:\n    - kind: webhook\n      url: http://a.example/\n      name: ops\n    - kind: alertmanager\n      url: http://b.example/\n      name: ops\n"
    );
    assert_error(&text, "alerts.sinks[1].name", "used twice");
    let text = format!(
        "{VALID}alerts:\n  sinks:\n    - kind: webhook\n      url: http://a.example/\n      min-severity: loud\n"
    );
    assert_error(&text, "alerts.sinks[0].min-severity", "unknown variant");
}

#[test]
fn an_empty_or_truncated_file_is_refused() {
    for text in ["", "\n  \n", "# all commented out\n# node-groups: []\n", "---\n", "~\n", "null"] {
        let errors = errors_of(text);
        assert!(errors[0].problem.contains("has no settings"), "{text:?}: {errors:?}");
    }
    // Cut in the middle of a group: the group is incomplete, not silently gone.
    let cut = &VALID[..VALID.find("number_of_minions").unwrap() + 9];
    assert_error(cut, "node-groups[0]", "missing field `min-size`");
    // The file on disk, as `check-config`, `run` and a reload read it.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("empty.yaml");
    std::fs::write(&path, "").unwrap();
    assert!(load(&path).unwrap_err().to_string().contains("has no settings"));
}

#[test]
fn an_inline_secret_is_refused_without_quoting_it() {
    for value in ["InlineHunter2Secret", "'InlineHunter2Secret'", "[InlineHunter2Secret]", "271828182845"] {
        let text = VALID.replace("{ env: HEATSCALER_CONFIG_TEST_SECRET }", value);
        let errors = errors_of(&text);
        let all = format!("{errors:?} {}", ConfigErrors { source_name: "t".into(), errors: errors.clone() });
        assert!(!all.contains("InlineHunter2Secret") && !all.contains("271828182845"), "{value}: {all}");
        assert!(
            errors.iter().any(|e| e.path == "openstack.application-credential.secret"
                && e.problem.contains("never written in the file")),
            "{value}: {errors:?}"
        );
    }
    // Elsewhere too: a quoted value is never echoed, the key path and line still are.
    let errors = errors_of(&VALID.replace("max-size: 10", "max-size: InlineHunter2Secret"));
    assert!(!format!("{errors:?}").contains("InlineHunter2Secret"), "{errors:?}");
    assert_eq!(errors[0].path, "node-groups[0].max-size");
}

#[test]
fn config_and_secret_files_are_read_with_a_bound() {
    let e = load(Path::new("/dev/zero")).unwrap_err().to_string();
    assert!(e.contains("larger than 1048576 bytes"), "{e}");
    let e = SecretSource::File("/dev/zero".into()).resolve().unwrap_err().to_string();
    assert!(e.contains("larger than 65536 bytes"), "{e}");
}

#[test]
fn every_duration_and_count_has_an_upper_bound_named_in_the_message() {
    assert_error(
        &format!("{VALID}daemon: {{ debounce: 9999999999999h }}\n"),
        "daemon.debounce",
        "is longer than the longest accepted, 5m",
    );
    assert_error(&format!("{VALID}daemon: {{ resync-interval: 2h }}\n"), "daemon.resync-interval", "1h");
    assert_error(&VALID.replace("max-size: 10", "max-size: 4000000000"), "node-groups[0].max-size", "10000");
    assert_error(&format!("{VALID}scale-down: {{ unneeded-time: 30d }}\n"), "scale-down.unneeded-time", "7days");
    assert_error(&format!("{VALID}alerts: {{ queue-capacity: 4000000000 }}\n"), "alerts.queue-capacity", "1000000");
    assert_error(
        &format!("{VALID}leader-election: {{ lease-duration: 1h, renew-deadline: 50m, retry-period: 2h }}\n"),
        "leader-election.retry-period",
        "1m",
    );
    // The bounds are far from the defaults and the example.
    with_secret();
    parse(VALID, "t", None).unwrap();
}

#[test]
fn a_cloud_without_any_clouds_yaml_is_refused() {
    let text = VALID.replace("  auth-url: https://keystone.example:5000/v3\n", "  cloud: prod\n").replace(
        "  application-credential:\n    id: 0123abcd\n    secret: { env: HEATSCALER_CONFIG_TEST_SECRET }\n",
        "",
    );
    let searched = super::validate::clouds_yaml_search_path();
    if searched.iter().any(|p| p.is_file()) || std::env::var_os("OS_CLIENT_CONFIG_FILE").is_some() {
        eprintln!("this machine has a clouds.yaml ({searched:?}): nothing to check");
        return;
    }
    assert_error(&text, "openstack.cloud", "no clouds.yaml found");
    // An explicit file that exists is enough.
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("clouds.yaml");
    std::fs::write(&file, "clouds: {prod: {}}\n").unwrap();
    with_secret();
    parse(&text.replace("  cloud: prod\n", &format!("  cloud: prod\n  clouds-yaml: {}\n", file.display())), "t", None)
        .unwrap();
}

#[test]
fn two_groups_on_the_same_heat_resource_are_refused() {
    let group = &VALID[VALID.find("  - name: workers").unwrap()..];
    let text = format!("{VALID}{}", group.replace("name: workers", "name: others"));
    assert_error(&text, "node-groups[1].backend.resource", "already the group of node-groups[0]");
    // Another resource of the same stack is another group.
    with_secret();
    parse(
        &format!(
            "{VALID}{}",
            group.replace("name: workers", "name: others").replace("resource: kube_minions", "resource: gpu_minions")
        ),
        "t",
        None,
    )
    .unwrap();
}

#[test]
fn errors_name_the_line_of_their_key() {
    let line = |needle: &str| VALID.lines().position(|l| l.contains(needle)).unwrap() + 1;
    // The validator's errors had no line at all.
    let text = VALID.replace("min-size: 1", "min-size: 11");
    assert_error(&text, "node-groups[0].min-size", &format!("(line {})", line("min-size")));
    assert_error(
        &VALID.replace("max-size: 10", "max-size: 4000000000"),
        "node-groups[0].max-size",
        &format!("(line {})", line("max-size")),
    );
}

#[test]
fn a_trust_replaces_the_project_scope() {
    let password = |scope: &str| {
        VALID.replace(
            "  application-credential:\n    id: 0123abcd\n    secret: { env: HEATSCALER_CONFIG_TEST_SECRET }\n",
            &format!(
                "  password:\n    username: trustee\n    password: {{ env: HEATSCALER_CONFIG_TEST_SECRET }}\n{scope}"
            ),
        )
    };
    let trust = password("    trust-id: 0a1b2c\n");
    with_secret();
    let accepted = parse(&trust, "test.yaml", None).map(|c| c.openstack.unwrap().password.unwrap().trust_id);
    assert_eq!(accepted.ok().flatten().as_deref(), Some("0a1b2c"));
    let both = password("    trust-id: 0a1b2c\n    project-name: k8s\n");
    assert_error(&both, "openstack.password.trust-id", "drop `project-id`/`project-name`");
    assert_error(&password(""), "openstack.password", "`trust-id`");
}

#[test]
fn direct_kubelet_access_requires_a_ca_bundle() {
    let text = format!("{VALID}pod-resize:\n  metrics:\n    kubelet: direct\n");
    assert_error(&text, "pod-resize.metrics.kubelet-ca-file", "required with `kubelet: direct`");
    with_secret();
    let ok = format!("{text}    kubelet-ca-file: /etc/kubernetes/pki/ca.crt\n");
    let c = parse(&ok, "test.yaml", None).unwrap();
    assert_eq!(c.pod_resize.metrics.kubelet, KubeletAccess::Direct);
    assert_error(&format!("{VALID}pod-resize:\n  metrics:\n    kubelet: insecure\n"), "pod-resize.metrics.kubelet", "");
}

#[test]
fn mesh_metrics_names_the_key_and_line_of_a_wrong_value() {
    with_secret();
    let ok = format!("{VALID}mesh-metrics:\n  prometheus-url: http://prometheus.istio-system:9090\n  mesh: linkerd\n");
    let c = parse(&ok, "t", None).unwrap().mesh_metrics.unwrap();
    assert_eq!(c.mesh, MeshKind::Linkerd);
    assert_eq!(c.window, Duration::from_secs(300));
    assert_eq!(c.pod_label, "pod");
    let lines = VALID.lines().count();
    let at = |key: &str, value: &str| {
        format!("{VALID}mesh-metrics:\n  prometheus-url: http://prom:9090\n  {key}: {value}\n")
    };
    // Serde's errors and the validator's both name the key and its line.
    let errors = errors_of(&at("mesh", "consul"));
    assert_eq!(errors[0].path, "mesh-metrics.mesh");
    assert!(errors[0].problem.contains(&format!("(line {})", lines + 3)), "{errors:?}");
    let errors = errors_of(&at("window", "0s"));
    assert_eq!(errors[0].path, "mesh-metrics.window");
    assert!(errors[0].problem.contains(&format!("(line {})", lines + 3)), "{errors:?}");
    assert_error(&at("pod-label", "pod-name"), "mesh-metrics.pod-label", "not a Prometheus label name");
    assert_error(&at("window", "3d"), "mesh-metrics.window", "longest accepted, 1day");
    assert_error(&at("ca-bundle", "/nonexistent/ca.pem"), "mesh-metrics.ca-bundle", "does not exist");
    assert_error(
        &at("bearer-token", "{ env: HEATSCALER_CONFIG_TEST_UNSET }"),
        "mesh-metrics.bearer-token",
        "HEATSCALER_CONFIG_TEST_UNSET is not set",
    );
    assert_error(
        &format!("{VALID}mesh-metrics:\n  prometheus-url: ftp://prom\n"),
        "mesh-metrics.prometheus-url",
        "not http or https",
    );
    // A token in the URL is refused, and never echoed.
    let errors = errors_of(&format!("{VALID}mesh-metrics:\n  prometheus-url: https://u:Hunter2Token@prom/\n"));
    assert_eq!(errors[0].path, "mesh-metrics.prometheus-url");
    assert!(!format!("{errors:?}").contains("Hunter2Token"), "{errors:?}");
}

/// The token is a secret: it is sent only over TLS, never to a plain-http Prometheus.
#[test]
fn mesh_metrics_sends_a_bearer_token_only_over_https() {
    with_secret();
    let with_token = |url: &str| {
        format!(
            "{VALID}mesh-metrics:\n  prometheus-url: {url}\n  bearer-token: {{ env: HEATSCALER_CONFIG_TEST_SECRET }}\n"
        )
    };
    assert_error(&with_token("http://prom:9090"), "mesh-metrics.bearer-token", "clear text");
    let c = parse(&with_token("https://prom:9090"), "t", None).unwrap().mesh_metrics.unwrap();
    assert!(c.bearer_token.is_some());
    // Without a token, plain http stays allowed (an in-cluster Prometheus often has no TLS).
    assert!(parse(&format!("{VALID}mesh-metrics:\n  prometheus-url: http://prom:9090\n"), "t", None).is_ok());
}

#[test]
fn placement_advisor_is_read_and_its_problems_name_key_and_line() {
    with_secret();
    let mesh = "mesh-metrics:\n  prometheus-url: http://prom:9090\n";
    let c =
        parse(&format!("{VALID}{mesh}placement-advisor:\n  mode: recommend\n  raise-after: 2m\n"), "t", None).unwrap();
    assert_eq!(c.placement_advisor.mode, AdvisorMode::Recommend);
    assert_eq!(c.planner_policy().placement.raise_after, Duration::from_secs(120));
    let lines = VALID.lines().count();
    let errors = errors_of(&format!("{VALID}{mesh}placement-advisor:\n  mode: recommend\n  affinity-weight: 0\n"));
    assert_eq!(errors[0].path, "placement-advisor.affinity-weight");
    assert!(errors[0].problem.contains(&format!("(line {})", lines + 5)), "{errors:?}");
    assert_error(
        &format!("{VALID}placement-advisor:\n  mode: apply\n"),
        "placement-advisor.mode",
        "needs a mesh-metrics",
    );
    assert_error(&format!("{VALID}placement-advisor:\n  mode: always\n"), "placement-advisor.mode", "unknown variant");
    assert_error(&format!("{VALID}placement-advisor:\n  window: 30d\n"), "placement-advisor.window", "7days");
}

#[test]
fn the_admission_webhook_section_is_read_and_each_wrong_key_named_with_its_line() {
    with_secret();
    let dir = tempfile::tempdir().unwrap();
    for name in ["tls.crt", "tls.key"] {
        std::fs::write(dir.path().join(name), "x\n").unwrap();
    }
    let section = format!(
        "admission-webhook:\n  cert-file: {}\n  key-file: {}\n",
        dir.path().join("tls.crt").display(),
        dir.path().join("tls.key").display()
    );
    let c = parse(&format!("{VALID}{section}"), "test.yaml", None).unwrap();
    let w = c.admission_webhook.expect("the section");
    assert_eq!(w.listen, "127.0.0.1:9443".parse().unwrap(), "loopback unless told");
    assert!(parse(VALID, "test.yaml", None).unwrap().admission_webhook.is_none(), "off without the section");
    let text = format!("{VALID}{section}  listne: 0.0.0.0:9443\n");
    let line = text.lines().position(|l| l.contains("listne")).unwrap() + 1;
    assert_error(&text, "admission-webhook.listne", &format!("(line {line})"));
    assert_error(
        &format!("{VALID}{section}").replace("  key-file", "  ca-file"),
        "admission-webhook.key-file",
        "with cert-file",
    );
    assert_error(
        &format!("{VALID}{section}").replace("tls.key", "missing.key"),
        "admission-webhook.key-file",
        "does not exist",
    );
    assert_error(
        &format!("{VALID}{section}pod-resize:\n  enabled: false\n"),
        "admission-webhook",
        "pod-resize.enabled",
    );
    // Operator's files without their CA: served, not registered (registered
    // by hand, as before the daemon could); told to register, the CA is needed.
    assert!(!w.registers(), "cert-file without ca-file: registered by hand");
    assert_error(&format!("{VALID}{section}  register: true\n"), "admission-webhook.register", "ca-file");
}

#[test]
fn an_empty_admission_webhook_section_generates_its_certificate_and_registers() {
    with_secret();
    let c = parse(&format!("{VALID}admission-webhook: {{}}\n"), "test.yaml", None).unwrap();
    let w = c.admission_webhook.expect("the section");
    assert!(w.given_certificate().is_none() && w.registers());
    assert_eq!(w.state_directory, std::path::Path::new("/var/lib/heatscaler"), "systemd's StateDirectory=heatscaler");
    assert_eq!((w.certificate_validity.get().as_secs(), w.renew_before.get().as_secs()), (90 * 86400, 30 * 86400));
    assert!(
        !parse(&format!("{VALID}admission-webhook: {{register: false}}\n"), "t.yaml", None)
            .unwrap()
            .admission_webhook
            .unwrap()
            .registers()
    );
    let text = format!("{VALID}admission-webhook:\n  certificate-validity: 1h\n  renew-before: 2h\n");
    let line = text.lines().position(|l| l.contains("renew-before")).unwrap() + 1;
    assert_error(&text, "admission-webhook.renew-before", "shorter than certificate-validity");
    assert_error(&text, "admission-webhook.renew-before", &format!("(line {line})"));
    assert_error(
        &format!("{VALID}admission-webhook:\n  service: {{namespace: heatscaler, name: Web_Hook}}\n"),
        "admission-webhook.service.name",
        "DNS label",
    );
    assert_error(
        &format!("{VALID}admission-webhook:\n  ca-file: /etc/ca.crt\n"),
        "admission-webhook.ca-file",
        "only goes with",
    );
}
