//! heatscaler against a real Keystone + Heat (tests/openstack/up.sh; see
//! tests/support/openstack.rs for how it is started and stopped).

use std::io::Write;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use crate::support::{self, create_stack, openstack, test_stack, unique_name};
use heatscaler_core::model::MemberStatus;
use heatscaler_daemon::cloud::group::{Backend, GroupError, NodeGroupBackend};
use heatscaler_daemon::cloud::heat::{HeatClient, NewStack};
use heatscaler_daemon::cloud::{Cloud, CloudError};
use heatscaler_daemon::config::{BackendConfig, BackendKind, NodeGroupConfig, NodeMapping, NodeMappingKind};
use serde_json::json;

const SETTLE: Duration = Duration::from_secs(180);

// ------------------------------------------------------------------ log capture

/// Every log line of this test binary, at TRACE for every target (heatscaler,
/// osauth through `log`, reqwest, hyper), so a test can assert no secret leaks.
fn logs() -> &'static Arc<Mutex<Vec<u8>>> {
    static LOGS: OnceLock<Arc<Mutex<Vec<u8>>>> = OnceLock::new();
    LOGS.get_or_init(|| {
        let buffer = Arc::new(Mutex::new(Vec::new()));
        let writer = buffer.clone();
        tracing_subscriber::fmt()
            .with_max_level(tracing::Level::TRACE)
            .with_writer(move || Capture(writer.clone()))
            .with_ansi(false)
            .try_init()
            .expect("install the log capture");
        buffer
    })
}

struct Capture(Arc<Mutex<Vec<u8>>>);
impl Write for Capture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn captured() -> String {
    String::from_utf8_lossy(&logs().lock().unwrap()).into_owned()
}

async fn heat() -> HeatClient {
    logs();
    openstack().heat().await
}

// ---------------------------------------------------------------- groups config

fn rg_group(name: &str, stack: &str) -> NodeGroupConfig {
    NodeGroupConfig {
        name: name.into(),
        stack: stack.into(),
        backend: BackendConfig {
            kind: BackendKind::ResourceGroup,
            resource: "kube_minions".into(),
            count_parameter: Some("number_of_minions".into()),
            removal_parameter: Some("minions_to_remove".into()),
            desired_capacity_parameter: None,
            scale_up_policy: None,
            scale_down_policy: None,
        },
        min_size: 0,
        max_size: 10,
        node_mapping: NodeMapping { by: NodeMappingKind::ProviderId, label: None },
        node_template: None,
        priority: 0,
        price_per_hour: None,
    }
}

fn asg_group(name: &str, stack: &str, by_signal: bool) -> NodeGroupConfig {
    let mut g = rg_group(name, stack);
    g.backend = BackendConfig {
        kind: BackendKind::AutoscalingGroup,
        resource: "minions".into(),
        count_parameter: None,
        removal_parameter: None,
        desired_capacity_parameter: (!by_signal).then(|| "minion_count".into()),
        scale_up_policy: by_signal.then(|| "scale_up".into()),
        scale_down_policy: by_signal.then(|| "scale_down".into()),
    };
    g
}

fn names(snapshot: &heatscaler_daemon::cloud::group::GroupSnapshot) -> Vec<String> {
    let mut n: Vec<String> = snapshot.members.iter().map(|m| m.name.clone()).collect();
    n.sort();
    n
}

// ----------------------------------------------------------------- authentication

#[tokio::test]
async fn authenticates_by_password_application_credential_and_clouds_yaml() {
    logs();
    let os = openstack();
    for (how, config) in [
        ("password", os.password_config()),
        ("application credential", os.app_credential_config()),
        ("clouds.yaml password", os.clouds_yaml_config("heatscaler")),
        ("clouds.yaml application credential", os.clouds_yaml_config("heatscaler-appcred")),
    ] {
        let cloud = Cloud::connect(&config).await.unwrap_or_else(|e| panic!("{how}: {e}"));
        let heat_url = cloud.endpoint("orchestration").await.unwrap();
        assert_eq!(heat_url.as_str(), os.var("HEATSCALER_OS_HEAT_URL"), "{how}: Heat endpoint from the catalog");
        // An authenticated Heat call: the unknown stack is reported as such, not as 401.
        let e = HeatClient::new(cloud).show_stack("no-such-stack", false).await.unwrap_err();
        assert!(matches!(e, CloudError::NotFound { .. }), "{how}: {e}");
    }
}

/// clouds.yaml entries that name the user or the domains by id, as the
/// `openstack` CLI (openstacksdk) accepts them: `user_domain_id: default` is
/// the Default domain's id, not a domain name (issue 20: it was sent as one,
/// and Keystone answered 401).
#[tokio::test]
async fn clouds_yaml_domains_and_user_by_id_authenticate_as_with_the_openstack_cli() {
    logs();
    let os = openstack();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("clouds.yaml");
    let user_id = os.var("HEATSCALER_OS_USER_ID");
    let text = format!(
        "clouds:\n\
         \x20 by-domain-id:\n\
         \x20   auth: {{auth_url: '{url}', username: '{user}', password: '{pw}', project_name: '{project}',\n\
         \x20          user_domain_id: default, project_domain_id: default}}\n\
         \x20   region_name: RegionOne\n\
         \x20 by-user-id:\n\
         \x20   auth: {{auth_url: '{url}', user_id: '{user_id}', password: '{pw}', project_id: '{project_id}'}}\n\
         \x20   region_name: RegionOne\n",
        url = os.auth_url(),
        user = os.var("HEATSCALER_OS_USERNAME"),
        pw = os.var("HEATSCALER_OS_PASSWORD"),
        project = os.var("HEATSCALER_OS_PROJECT_NAME"),
        project_id = os.var("HEATSCALER_OS_PROJECT_ID"),
    );
    std::fs::write(&path, text).unwrap();
    for cloud in ["by-domain-id", "by-user-id"] {
        let mut config = os.clouds_yaml_config(cloud);
        config.clouds_yaml = Some(path.clone());
        let cloud_ = Cloud::connect(&config).await.unwrap_or_else(|e| panic!("{cloud}: {e}"));
        let e = HeatClient::new(cloud_).show_stack("no-such-stack", false).await.unwrap_err();
        assert!(matches!(e, CloudError::NotFound { .. }), "{cloud}: {e}");
    }
}

/// A Keystone token (POST /v3/auth/tokens) for `auth`, as the harness's admin or tenant user.
async fn keystone_token(http: &reqwest::Client, auth_url: &str, auth: serde_json::Value) -> String {
    let r = http.post(format!("{auth_url}/auth/tokens")).json(&json!({ "auth": auth })).send().await.unwrap();
    assert!(r.status().is_success(), "token: {}", r.status());
    r.headers()["x-subject-token"].to_str().unwrap().to_string()
}

/// Magnum's masters hold a Keystone trust: a trustee user, its password, and a
/// trust from the cluster's owner delegating the member role on the project.
/// heatscaler logs in as the trustee scoped to the trust (clouds.yaml
/// `trust_id` with the trustee by id, and the `trust-id` setting with it by
/// name), reads the owner's stack through Heat, logs in again the same way
/// when asked to renew, and grows the group (a stack update) through the
/// trust; a trust that does not exist is Keystone's refusal.
#[tokio::test]
async fn a_keystone_trust_reads_the_trustors_stack_and_logs_in_again() {
    logs();
    let os = openstack();
    let heat = heat().await;
    let name = unique_name("trust");
    create_stack(&heat, &test_stack(&name, "resource-group.yaml", json!({"number_of_minions": 1}))).await;

    let http = reqwest::Client::new();
    let url = os.auth_url();
    let admin = keystone_token(
        &http,
        url,
        json!({"identity": {"methods": ["password"], "password": {"user": {"name": "admin",
            "domain": {"name": "Default"}, "password": os.var("HEATSCALER_OS_ADMIN_PASSWORD")}}},
            "scope": {"project": {"name": "admin", "domain": {"name": "Default"}}}}),
    )
    .await;
    let trustee_name = unique_name("trustee");
    let trustee_password = format!("trustee-{}", std::process::id());
    let r = http
        .post(format!("{url}/users"))
        .header("x-auth-token", &admin)
        .json(&json!({"user": {"name": trustee_name, "password": trustee_password, "domain_id": "default"}}))
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success(), "create the trustee: {}", r.status());
    let trustee_id = r.json::<serde_json::Value>().await.unwrap()["user"]["id"].as_str().unwrap().to_string();

    let trustor = keystone_token(
        &http,
        url,
        json!({"identity": {"methods": ["password"], "password": {"user": {"id": os.var("HEATSCALER_OS_USER_ID"),
            "password": os.var("HEATSCALER_OS_PASSWORD")}}},
            "scope": {"project": {"id": os.var("HEATSCALER_OS_PROJECT_ID")}}}),
    )
    .await;
    let r = http
        .post(format!("{url}/OS-TRUST/trusts"))
        .header("x-auth-token", &trustor)
        .json(&json!({"trust": {"trustor_user_id": os.var("HEATSCALER_OS_USER_ID"), "trustee_user_id": trustee_id,
            "project_id": os.var("HEATSCALER_OS_PROJECT_ID"), "impersonation": true, "roles": [{"name": "member"}]}}))
        .send()
        .await
        .unwrap();
    let status = r.status();
    let trust: serde_json::Value = r.json().await.unwrap();
    assert!(status.is_success(), "create the trust: {status} {trust}");
    let trust_id = trust["trust"]["id"].as_str().unwrap().to_string();

    let dir = tempfile::tempdir().unwrap();
    let clouds = dir.path().join("clouds.yaml");
    let cloud_entry = |trust: &str| {
        format!(
            "  {trust}:\n    auth: {{auth_url: '{url}', user_id: '{trustee_id}', password: '{trustee_password}', \
             trust_id: '{trust}'}}\n    region_name: RegionOne\n"
        )
    };
    std::fs::write(&clouds, format!("clouds:\n{}{}", cloud_entry(&trust_id), cloud_entry("no-such-trust"))).unwrap();
    let password_file = dir.path().join("trustee-password");
    std::fs::write(&password_file, &trustee_password).unwrap();

    let mut by_clouds_yaml = os.clouds_yaml_config(&trust_id);
    by_clouds_yaml.clouds_yaml = Some(clouds.clone());
    let mut by_setting = os.password_config_for(&trustee_name);
    let pw = by_setting.password.as_mut().unwrap();
    (pw.password, pw.project_name, pw.trust_id) =
        (heatscaler_daemon::config::SecretSource::File(password_file), None, Some(trust_id.clone()));
    let mut trusted = None;
    for (how, config) in [("clouds.yaml trust_id", by_clouds_yaml), ("trust-id setting", by_setting)] {
        let cloud = Cloud::connect(&config).await.unwrap_or_else(|e| panic!("{how}: {e}"));
        trusted = Some(cloud.clone());
        assert_eq!(cloud.endpoint("orchestration").await.unwrap().as_str(), os.var("HEATSCALER_OS_HEAT_URL"), "{how}");
        let heat = HeatClient::new(cloud.clone());
        let stack = heat.show_stack(&name, false).await.unwrap_or_else(|e| panic!("{how}: {e}"));
        assert_eq!(stack.stack_status, "CREATE_COMPLETE", "{how}");
        cloud.reauthenticate().await.unwrap_or_else(|e| panic!("{how}: log in again: {e}"));
        heat.show_stack(&name, false).await.unwrap_or_else(|e| panic!("{how}: after logging in again: {e}"));
    }
    // Scaling is a stack update by the trustee, which Heat accepts with the delegated role.
    let backend = Backend::new(HeatClient::new(trusted.unwrap()), rg_group("workers", &name));
    backend.grow_to(2).await.unwrap_or_else(|e| panic!("grow through the trust: {e}"));
    let grown = backend.wait_settled(SETTLE).await.unwrap();
    assert_eq!(grown.stack_status, "UPDATE_COMPLETE", "{}", grown.stack_status_reason);
    assert_eq!(grown.desired, 2);

    let mut unknown = os.clouds_yaml_config("no-such-trust");
    unknown.clouds_yaml = Some(clouds);
    let e = Cloud::connect(&unknown).await.unwrap_err();
    assert!(matches!(e, CloudError::AuthFailed { .. } | CloudError::Keystone { .. }), "{e}");
    assert!(!e.to_string().contains(&trustee_password), "{e}");
}

/// No credential in heatscaler's configuration: the cloud comes from the
/// environment as openstacksdk resolves it — `OS_CLOUD` naming an entry of
/// the clouds.yaml on the search path with its password in `secure.yaml`
/// (and domains by id), else the `OS_*` variables (password with domain ids,
/// or an application credential). `heatscaler groups` lists the stack each time.
#[tokio::test]
async fn os_cloud_and_os_variables_authenticate_as_openstacksdk_resolves_them() {
    let heat = heat().await;
    let os = openstack();
    let name = unique_name("env");
    create_stack(&heat, &test_stack(&name, "resource-group.yaml", json!({"number_of_minions": 1}))).await;
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().to_path_buf();
    let config = home.join("heatscaler.yaml");
    std::fs::write(
        &config,
        format!(
            "openstack: {{region: RegionOne}}\nnode-groups:\n  - name: workers\n    stack: {name}\n    backend:\n      kind: resource-group\n      resource: kube_minions\n      count-parameter: number_of_minions\n      removal-parameter: minions_to_remove\n    min-size: 0\n    max-size: 5\n"
        ),
    )
    .unwrap();
    let openstack_dir = home.join(".config/openstack");
    std::fs::create_dir_all(&openstack_dir).unwrap();
    let (url, user, pw) = (os.auth_url(), os.var("HEATSCALER_OS_USERNAME"), os.var("HEATSCALER_OS_PASSWORD"));
    let project = os.var("HEATSCALER_OS_PROJECT_NAME");
    std::fs::write(
        openstack_dir.join("clouds.yaml"),
        format!(
            "clouds:\n  mine:\n    auth: {{auth_url: '{url}', username: '{user}', project_name: '{project}', \
             user_domain_id: default, project_domain_id: default}}\n    region_name: RegionOne\n"
        ),
    )
    .unwrap();
    std::fs::write(openstack_dir.join("secure.yaml"), format!("clouds:\n  mine:\n    auth: {{password: '{pw}'}}\n"))
        .unwrap();
    let vars = |pairs: &[(&str, &str)]| pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect::<Vec<_>>();
    let cases = [
        ("OS_CLOUD + clouds.yaml + secure.yaml", vars(&[("OS_CLOUD", "mine")])),
        (
            "OS_* password, domains by id",
            vars(&[
                ("OS_AUTH_URL", url),
                ("OS_USERNAME", user),
                ("OS_PASSWORD", pw),
                ("OS_PROJECT_NAME", project),
                ("OS_USER_DOMAIN_ID", "default"),
                ("OS_PROJECT_DOMAIN_ID", "default"),
                ("OS_REGION_NAME", "RegionOne"),
            ]),
        ),
        (
            "OS_* application credential",
            vars(&[
                ("OS_AUTH_URL", url),
                ("OS_AUTH_TYPE", "v3applicationcredential"),
                ("OS_APPLICATION_CREDENTIAL_ID", os.var("HEATSCALER_OS_APP_CRED_ID")),
                ("OS_APPLICATION_CREDENTIAL_SECRET", os.var("HEATSCALER_OS_APP_CRED_SECRET")),
            ]),
        ),
        ("nothing", Vec::new()),
    ];
    let results = tokio::task::spawn_blocking(move || {
        let mut out = Vec::new();
        for (how, env) in cases {
            let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_heatscaler"));
            cmd.arg("--config").arg(&config).arg("groups");
            for (k, _) in std::env::vars().filter(|(k, _)| k.starts_with("OS_")) {
                cmd.env_remove(k);
            }
            let output = cmd
                .envs(env)
                .env("HOME", &home)
                .env("KUBECONFIG", home.join("no-such-kubeconfig"))
                .env_remove("KUBERNETES_SERVICE_HOST")
                .current_dir(&home)
                .output()
                .unwrap();
            let text =
                format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
            out.push((how, output.status.success(), text));
        }
        out
    })
    .await
    .unwrap();
    for (how, ok, text) in &results {
        if *how == "nothing" {
            assert!(!ok && text.contains("OS_CLOUD") && text.contains("OS_AUTH_URL"), "{how}: {text}");
        } else {
            assert!(*ok && text.contains("group workers") && text.contains("desired 1"), "{how}: {text}");
        }
        for secret in os.secrets() {
            assert!(!text.contains(&secret), "{how}: a secret in the output");
        }
    }
}

#[tokio::test]
async fn wrong_password_names_keystone() {
    logs();
    let os = openstack();
    let mut config = os.password_config();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("pw"), "not-the-password").unwrap();
    config.password.as_mut().unwrap().password = heatscaler_daemon::config::SecretSource::File(dir.path().join("pw"));
    let e = Cloud::connect(&config).await.unwrap_err();
    assert!(matches!(e, CloudError::AuthFailed { status: 401, .. }), "{e}");
    let text = e.to_string();
    assert!(text.contains(os.auth_url()) && text.contains("rejected the credentials"), "{text}");
}

#[tokio::test]
async fn unreachable_keystone_names_its_url() {
    logs();
    let os = openstack();
    let mut config = os.password_config();
    // A port nothing listens on: bind one, then close it.
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let url = format!("http://127.0.0.1:{port}/v3");
    config.auth_url = Some(url.clone());
    let e = Cloud::connect(&config).await.unwrap_err();
    assert!(matches!(e, CloudError::KeystoneUnreachable { .. }), "{e}");
    assert!(e.to_string().contains(&url), "{e}");
}

#[tokio::test]
async fn unreadable_ca_bundle_is_named() {
    logs();
    let mut config = openstack().password_config();
    config.ca_bundle = Some("/nonexistent/ca.pem".into());
    let e = Cloud::connect(&config).await.unwrap_err();
    assert!(matches!(e, CloudError::Config(_)) && e.to_string().contains("/nonexistent/ca.pem"), "{e}");
}

#[tokio::test]
async fn unknown_stack_names_the_stack_and_the_group() {
    let heat = heat().await;
    let backend = Backend::new(heat, rg_group("workers", "no-such-stack-xyz"));
    let e = backend.read().await.unwrap_err();
    let text = e.to_string();
    assert!(matches!(&e, GroupError::Cloud { source: CloudError::NotFound { .. }, .. }), "{text}");
    assert!(text.contains("workers") && text.contains("no-such-stack-xyz"), "{text}");
}

#[tokio::test]
async fn template_error_carries_heats_message() {
    let heat = heat().await;
    let broken = NewStack {
        name: unique_name("broken"),
        template: "heat_template_version: 2018-08-31\nresources:\n  x:\n    type: OS::Nope::Minion\n".into(),
        ..Default::default()
    };
    let e = heat.validate_template(&broken).await.unwrap_err();
    assert!(matches!(e, CloudError::BadRequest { .. }), "{e}");
    assert!(e.to_string().contains("OS::Nope::Minion"), "Heat's message names the bad type: {e}");
    let e = heat.create_stack(&broken).await.unwrap_err();
    assert!(matches!(e, CloudError::BadRequest { .. }) && e.to_string().contains("create stack"), "{e}");
}

// -------------------------------------------------------------------- templates

#[tokio::test]
async fn every_template_validates_with_heat() {
    let heat = heat().await;
    let root = support::repo_root().join("heat-templates");
    let read = |p: &str| std::fs::read_to_string(root.join(p)).unwrap_or_else(|e| panic!("{p}: {e}"));
    // Test templates, with the Nova-less environment the tests use.
    for t in [
        "test/resource-group.yaml",
        "test/autoscaling-group.yaml",
        "test/slow-update.yaml",
        "test/minion.yaml",
        "test/resource-group-unwired.yaml",
    ] {
        let mut new = test_stack("validate", t.trim_start_matches("test/"), json!({}));
        new.template = read(t);
        heat.validate_template(&new).await.unwrap_or_else(|e| panic!("{t}: {e}"));
    }
    // Production templates, as an operator deploys them (minion.yaml beside each
    // group template). Heat refuses to validate Nova and Neutron resources without
    // those services in the catalog, so they are stubbed: this checks parameters,
    // functions, conditions and nesting, not the server's properties.
    let stubs = heatscaler_core::yaml::parse_value(&read("test/no-nova.env.yaml")).unwrap();
    for t in ["resource-group.yaml", "autoscaling-group.yaml", "minion.yaml"] {
        let new = NewStack {
            name: "validate".into(),
            template: read(t),
            files: vec![("minion.yaml".into(), read("minion.yaml"))],
            environment: Some(stubs.clone()),
            ..Default::default()
        };
        let v = heat.validate_template(&new).await.unwrap_or_else(|e| panic!("heat-templates/{t}: {e}"));
        assert!(v.get("Parameters").is_some(), "{t}: {v}");
    }
}

// --------------------------------------------------------------- ResourceGroup

#[tokio::test]
async fn resource_group_grows_and_removes_named_members_in_one_update() {
    let heat = heat().await;
    let name = unique_name("rg");
    create_stack(&heat, &test_stack(&name, "resource-group.yaml", json!({"number_of_minions": 2}))).await;
    let backend = Backend::new(heat.clone(), rg_group("workers", &name));

    let before = backend.read().await.unwrap();
    assert_eq!((before.desired, names(&before)), (2, vec!["0".to_string(), "1".to_string()]));
    assert!(before.members.iter().all(|m| m.server_id.is_some() && m.status == MemberStatus::Complete));
    // node-mapping by node-name reads each member's `node_name` output.
    let mut by_name = rg_group("workers", &name);
    by_name.node_mapping = NodeMapping { by: NodeMappingKind::NodeName, label: None };
    let named = Backend::new(heat.clone(), by_name).read().await.unwrap();
    for m in &named.members {
        let node = m.node_name.as_deref().unwrap_or_else(|| panic!("member {} has no node_name", m.name));
        assert!(node.starts_with(&format!("rg-minion-{}-", m.name)), "{node}");
    }

    backend.grow_to(4).await.unwrap();
    let grown = backend.wait_settled(SETTLE).await.unwrap();
    assert_eq!(grown.stack_status, "UPDATE_COMPLETE", "{}", grown.stack_status_reason);
    assert_eq!((grown.desired, names(&grown)), (4, ["0", "1", "2", "3"].map(String::from).to_vec()));
    let server = |s: &heatscaler_daemon::cloud::group::GroupSnapshot, m: &str| s.member(m).unwrap().server_id.clone();

    // Two members that are not the highest-numbered, in one stack update.
    let plan = backend.remove(&["0".to_string(), "2".to_string()]).await.unwrap();
    assert_eq!(plan.to, 2);
    let shrunk = backend.wait_settled(SETTLE).await.unwrap();
    assert_eq!(shrunk.stack_status, "UPDATE_COMPLETE", "{}", shrunk.stack_status_reason);
    assert_eq!((shrunk.desired, names(&shrunk)), (2, vec!["1".to_string(), "3".to_string()]));
    // The survivors are the same minions, not replacements.
    assert_eq!(server(&shrunk, "1"), server(&grown, "1"));
    assert_eq!(server(&shrunk, "3"), server(&grown, "3"));

    // Successive removals: the parameter keeps earlier names, so growing again
    // never brings back 0 or 2 and never deletes a survivor.
    backend.remove(&["3".to_string()]).await.unwrap();
    let again = backend.wait_settled(SETTLE).await.unwrap();
    assert_eq!(names(&again), vec!["1".to_string()]);
    let stack = heat.show_stack(&name, false).await.unwrap();
    assert_eq!(stack.parameter("minions_to_remove").as_deref(), Some("0,2,3"));
    backend.grow_to(3).await.unwrap();
    let regrown = backend.wait_settled(SETTLE).await.unwrap();
    assert_eq!(names(&regrown), ["1", "4", "5"].map(String::from).to_vec());
    assert_eq!(server(&regrown, "1"), server(&grown, "1"));

    // A group resource the stack does not have is a layout error that names it.
    let mut wrong = rg_group("workers", &name);
    wrong.backend.resource = "kube_masters".into();
    let e = Backend::new(heat.clone(), wrong).read().await.unwrap_err();
    assert!(matches!(&e, GroupError::Layout { .. }) && e.to_string().contains("no resource named kube_masters"), "{e}");
}

/// Replaces the stack's template (an operator's `openstack stack update --existing -t`).
async fn replace_template(heat: &HeatClient, stack: &heatscaler_daemon::cloud::heat::StackRef, template: &str) {
    let new = test_stack("unused", template, json!({}));
    let url = format!("{}/stacks/{}/{}", heat.cloud().endpoint("orchestration").await.unwrap(), stack.name, stack.id);
    let body = json!({"template": new.template, "files": {"minion.yaml": new.files[0].1}});
    heat.cloud()
        .call("replace template", reqwest::Method::PATCH, &url.parse().unwrap(), Some(&body), false)
        .await
        .unwrap();
    let done = heat.wait_settled(stack, SETTLE).await.unwrap();
    assert_eq!(done.stack_status, "UPDATE_COMPLETE", "{:?}", done.stack_status_reason);
}

/// The bug: a removal parameter declared but not used by
/// `removal_policies` made Heat delete member 2 when member 0 was asked for.
/// Heat is asked (by preview) whether the parameter steers the removal, before
/// the first removal and again after every template change.
#[tokio::test]
async fn resource_group_refuses_to_remove_when_the_removal_parameter_is_not_wired() {
    let heat = heat().await;
    let name = unique_name("unwired");
    let stack =
        create_stack(&heat, &test_stack(&name, "resource-group-unwired.yaml", json!({"number_of_minions": 3}))).await;
    let backend = Backend::new(heat.clone(), rg_group("workers", &name));
    let all = ["0", "1", "2"].map(String::from).to_vec();

    let e = backend.remove(&["0".to_string()]).await.unwrap_err();
    let text = e.to_string();
    assert!(matches!(e, GroupError::NotWired { .. }), "{text}");
    for needed in ["group workers", "minions_to_remove", "kube_minions", "removal_policies"] {
        assert!(text.contains(needed), "the refusal names {needed}: {text}");
    }
    let after = backend.wait_settled(SETTLE).await.unwrap();
    assert_eq!(names(&after), all, "nothing was sent to Heat");
    assert_eq!(after.stack_status, "CREATE_COMPLETE");

    // Fixed by the operator: the same backend checks again and removes exactly member 0.
    replace_template(&heat, &stack, "resource-group.yaml").await;
    backend.remove(&["0".to_string()]).await.unwrap();
    let removed = backend.wait_settled(SETTLE).await.unwrap();
    assert_eq!(names(&removed), ["1", "2"].map(String::from).to_vec(), "{}", removed.stack_status_reason);

    // Broken again by a template change: the earlier confirmation no longer counts.
    replace_template(&heat, &stack, "resource-group-unwired.yaml").await;
    let e = backend.remove(&["1".to_string()]).await.unwrap_err();
    assert!(matches!(e, GroupError::NotWired { .. }), "{e}");
    assert_eq!(names(&backend.wait_settled(SETTLE).await.unwrap()), ["1", "2"].map(String::from).to_vec());
}

#[tokio::test]
async fn no_update_is_sent_while_the_stack_is_updating() {
    let heat = heat().await;
    let name = unique_name("busy");
    let stack = create_stack(&heat, &test_stack(&name, "slow-update.yaml", json!({"number_of_minions": 2}))).await;
    let backend = Backend::new(heat.clone(), rg_group("workers", &name));

    // Someone else's update that keeps Heat busy for a while.
    let mut slow = serde_json::Map::new();
    slow.insert("slow_value".into(), json!("changed"));
    heat.update_parameters(&stack, &slow).await.unwrap();
    let during = backend.read().await.unwrap();
    assert!(during.busy, "stack should be busy: {}", during.stack_status);

    let e = backend.grow_to(3).await.unwrap_err();
    // Refused by heatscaler itself (not Heat's 409): nothing was sent.
    assert!(matches!(e, GroupError::StackBusy { .. }), "{e}");
    let snapshot = backend.read().await.unwrap();
    if snapshot.busy {
        let plan = heatscaler_daemon::cloud::group::SizeChange {
            group: "workers".into(),
            from: 2,
            to: 3,
            victims: vec![],
            change: heatscaler_daemon::cloud::group::HeatChange::SetParameters(
                [("number_of_minions".to_string(), json!(3))].into_iter().collect(),
            ),
        };
        // Even a plan made earlier is not sent while Heat works.
        assert!(matches!(backend.apply(&plan).await.unwrap_err(), GroupError::StackBusy { .. }));
    }
    let settled = backend.wait_settled(SETTLE).await.unwrap();
    assert_eq!(settled.stack_status, "UPDATE_COMPLETE", "{}", settled.stack_status_reason);
    assert_eq!(settled.desired, 2, "the refused growth never reached Heat");
    assert_eq!(heat.show_stack(&name, false).await.unwrap().parameter("number_of_minions").as_deref(), Some("2"));
}

// ----------------------------------------------------------- AutoScalingGroup

#[tokio::test]
async fn autoscaling_group_by_signal_deletes_the_predicted_member() {
    let heat = heat().await;
    let name = unique_name("asg-signal");
    create_stack(&heat, &test_stack(&name, "autoscaling-group.yaml", json!({"minion_count": 2}))).await;
    let backend = Backend::new(heat.clone(), asg_group("gpu", &name, true));
    let start = backend.read().await.unwrap();
    assert_eq!(start.desired, 2);

    // Heat orders by creation time in whole seconds: make the new member younger.
    wait_next_second().await;
    backend.grow_to(3).await.unwrap();
    let grown = backend.wait_settled(SETTLE).await.unwrap();
    assert_eq!((grown.desired, grown.members.len()), (3, 3));
    let newest = grown.members.iter().find(|m| start.member(&m.name).is_none()).unwrap().name.clone();

    let predicted = backend.predicted_victims(&grown, 1).unwrap();
    assert_eq!(predicted.len(), 1);
    assert_ne!(predicted[0], newest, "Heat removes the oldest, not the newest");
    let plan = backend.plan_scale(&grown, 2).unwrap();
    assert_eq!(plan.victims, predicted);
    backend.apply(&plan).await.unwrap();
    let shrunk = backend.wait_settled(SETTLE).await.unwrap();
    let deleted: Vec<String> = names(&grown).into_iter().filter(|n| shrunk.member(n).is_none()).collect();
    assert_eq!(deleted, predicted, "the member Heat deleted is the one predicted");
    assert_eq!(shrunk.members.len(), 2);
}

#[tokio::test]
async fn autoscaling_group_removes_exactly_the_chosen_newest_member() {
    let heat = heat().await;
    let name = unique_name("asg-exact");
    create_stack(&heat, &test_stack(&name, "autoscaling-group.yaml", json!({"minion_count": 2}))).await;
    let backend = Backend::new(heat.clone(), asg_group("gpu", &name, false));
    let start = backend.read().await.unwrap();
    wait_next_second().await;
    backend.grow_to(3).await.unwrap();
    let grown = backend.wait_settled(SETTLE).await.unwrap();
    let newest = grown.members.iter().find(|m| start.member(&m.name).is_none()).unwrap().name.clone();
    // Heat alone would pick an older member.
    assert_ne!(backend.predicted_victims(&grown, 1).unwrap(), vec![newest.clone()]);

    let plan = backend.remove(std::slice::from_ref(&newest)).await.unwrap();
    assert_eq!(plan.victims, vec![newest.clone()]);
    let shrunk = backend.wait_settled(SETTLE).await.unwrap();
    assert_eq!(shrunk.stack_status, "UPDATE_COMPLETE", "{}", shrunk.stack_status_reason);
    assert_eq!(names(&shrunk), names(&start), "exactly the newest member was removed");
    assert_eq!(shrunk.desired, 2);
}

// ------------------------------------------------------------------- tokens

#[tokio::test]
async fn a_token_revoked_mid_run_is_replaced() {
    logs();
    let os = openstack();
    // The spare user: revoking its tokens disturbs no other test.
    let cloud = Cloud::connect(&os.password_config_for(os.var("HEATSCALER_OS_SPARE_USERNAME"))).await.unwrap();
    let heat = HeatClient::new(cloud);
    let e = heat.show_stack("no-such-stack", false).await.unwrap_err();
    assert!(e.is_not_found(), "{e}");

    os.revoke_tokens(os.var("HEATSCALER_OS_SPARE_USER_ID")).await;
    // Keystone compares whole seconds: a token issued in the second of the
    // revocation counts as revoked too, so let that second pass.
    wait_next_second().await;

    let before = captured().matches("token rejected (HTTP 401)").count();
    let e = heat.show_stack("no-such-stack", false).await.unwrap_err();
    assert!(e.is_not_found(), "the call succeeds with a new token: {e}");
    assert!(
        captured().matches("token rejected (HTTP 401)").count() > before,
        "the revoked token was used and replaced"
    );
}

// ------------------------------------------------------------------ secrets

#[tokio::test]
async fn no_secret_in_any_log_line() {
    logs();
    let os = openstack();
    // Exercise every path that handles a secret: both credentials, clouds.yaml,
    // a rejected password, Heat calls.
    for config in [os.password_config(), os.app_credential_config(), os.clouds_yaml_config("heatscaler-appcred")] {
        let heat = HeatClient::new(Cloud::connect(&config).await.unwrap());
        let _ = heat.show_stack("no-such-stack", false).await;
    }
    let mut bad = os.clouds_yaml_config("heatscaler");
    bad.clouds_yaml = None;
    bad.cloud = None;
    bad.auth_url = Some(os.auth_url().into());
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("pw"), "wrong-password-4711").unwrap();
    bad.password = os.password_config().password.map(|mut p| {
        p.password = heatscaler_daemon::config::SecretSource::File(dir.path().join("pw"));
        p
    });
    let _ = Cloud::connect(&bad).await.unwrap_err();

    let logs = captured();
    // The capture really holds TRACE lines of every crate on the path.
    for target in ["heatscaler_daemon::cloud", "osauth::identity", "reqwest::connect", "hyper_util::client"] {
        assert!(logs.contains(target), "no log line of {target} captured");
    }
    for secret in os.secrets().iter().map(String::as_str).chain(["wrong-password-4711"]) {
        if let Some(line) = logs.lines().find(|l| l.contains(secret)) {
            panic!("a secret appears in a log line: {line}");
        }
    }
    // Fernet tokens (Keystone's) start with the Fernet version byte: "gAAAAA".
    if let Some(line) = logs.lines().find(|l| l.contains("gAAAAA")) {
        panic!("a token appears in a log line: {line}");
    }
}

async fn wait_next_second() {
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap();
    let rest = Duration::from_secs(1) - Duration::from_nanos(now.subsec_nanos() as u64);
    tokio::time::sleep(rest + Duration::from_millis(50)).await;
}

// ---------------------------------------------------------------------- CLI

#[tokio::test]
async fn groups_command_lists_and_scales_through_the_backend() {
    let heat = heat().await;
    let os = openstack();
    let name = unique_name("cli");
    create_stack(&heat, &test_stack(&name, "resource-group.yaml", json!({"number_of_minions": 2}))).await;
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("heatscaler.yaml");
    std::fs::write(
        &config,
        format!(
            "openstack:\n  cloud: heatscaler\n  region: RegionOne\nnode-groups:\n  - name: workers\n    stack: {name}\n    backend:\n      kind: resource-group\n      resource: kube_minions\n      count-parameter: number_of_minions\n      removal-parameter: minions_to_remove\n    min-size: 0\n    max-size: 5\n"
        ),
    )
    .unwrap();
    // No clouds-yaml setting: found where the OpenStack tools look, ~/.config/openstack/.
    std::fs::create_dir_all(dir.path().join(".config/openstack")).unwrap();
    std::fs::copy(os.clouds_yaml(), dir.path().join(".config/openstack/clouds.yaml")).unwrap();
    let home = dir.path().to_path_buf();
    let run = move |args: &[&str]| {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_heatscaler"))
            .arg("--config")
            .arg(&config)
            .arg("groups")
            .args(args)
            .env("KUBECONFIG", home.join("no-such-kubeconfig"))
            .env("HOME", &home)
            .env_remove("OS_CLIENT_CONFIG_FILE")
            .current_dir(&home)
            .env_remove("KUBERNETES_SERVICE_HOST")
            .output()
            .unwrap();
        let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
        (out.status.success(), text, String::from_utf8_lossy(&out.stdout).into_owned())
    };
    let listing = tokio::task::spawn_blocking(move || {
        let list = run(&[]);
        let json = run(&["-o", "json"]);
        let yaml = run(&["-o", "yaml"]);
        let dry = run(&["remove", "workers", "0", "--dry-run"]);
        let scale = run(&["scale", "workers", "--to", "3"]);
        let bad = run(&["remove", "workers", "9"]);
        let removed = run(&["remove", "workers", "1"]);
        (list, json, yaml, dry, scale, bad, removed)
    })
    .await
    .unwrap();
    let ((ok, list, _), json, yaml, (dry_ok, dry, _), (scale_ok, scale, _), (bad_ok, bad, _), (removed_ok, removed, _)) =
        listing;
    // -o json / yaml: the document alone on stdout (the Kubernetes note goes to stderr).
    for (format, (ok, all, stdout)) in [("json", json), ("yaml", yaml)] {
        assert!(ok, "{format}: {all}");
        let doc = heatscaler_core::yaml::parse_value(&stdout).unwrap_or_else(|e| panic!("{format} ({e}): {stdout}"));
        assert_eq!(doc[0]["group"], "workers", "{format}: {doc}");
        assert_eq!(doc[0]["desired"], 2, "{format}: {doc}");
        assert_eq!(doc[0]["stack-status"], "CREATE_COMPLETE", "{format}: {doc}");
        assert_eq!(doc[0]["members"].as_array().map(Vec::len), Some(2), "{format}: {doc}");
        assert!(doc[0]["members"][0]["node"].is_null(), "no Kubernetes, no node: {doc}");
    }
    assert!(ok, "{list}");
    assert!(list.contains("Kubernetes is not reachable"), "{list}");
    // Said once, in heatscaler's words: no kube-rs ERROR line beside it.
    assert!(!list.contains("kube_client") && !list.contains("ERROR"), "{list}");
    // The removal is confirmed against what Heat did.
    assert!(removed_ok && removed.contains("removed exactly 1"), "{removed}");
    assert!(list.contains("group workers") && list.contains("CREATE_COMPLETE") && list.contains("desired 2"), "{list}");
    assert!(dry_ok && dry.contains("dry run: group workers: 2 -> 1 member(s), deleting 0"), "{dry}");
    assert!(scale_ok && scale.contains("UPDATE_COMPLETE; 3 member(s)"), "{scale}");
    assert!(!bad_ok && bad.contains("no member named 9"), "{bad}");
    // The dry run sent nothing: member 0 is still there; member 1 went.
    let backend = Backend::new(heat, rg_group("workers", &name));
    assert_eq!(names(&backend.read().await.unwrap()), ["0", "2"].map(String::from).to_vec());
}

// ------------------------------------------------------- removal confirmation

/// After each removal update the actuator checks which members left. Here an
/// operator removes another member by hand while heatscaler's removal is
/// under way (the stack idle in between): the first removal is confirmed,
/// the second is not, and the group is held with a critical alert and a
/// record on the nodes involved. The actuator runs against the real Heat and
/// a kubesim API server holding the minions' nodes.
#[tokio::test]
async fn a_removal_that_took_another_member_holds_the_group() {
    use heatscaler_core::model::Timestamp;
    use heatscaler_core::planner::Action;
    use heatscaler_core::planner::action::{MemberRemoval, RemovalCause, RemoveMembers, ScaleUp};
    use heatscaler_daemon::act::{Actuator, MISMATCH_ANNOTATION, MISMATCH_GROUP_ANNOTATION, Outcome};
    use heatscaler_daemon::alerts::capture::capturing_dispatcher;
    use heatscaler_daemon::alerts::{Reason, Severity};
    use k8s_openapi::api::core::v1::Node;
    use kubesim::{KubeSim, NodeSpec, Options};

    let heat = heat().await;
    let name = unique_name("confirm");
    create_stack(&heat, &test_stack(&name, "resource-group.yaml", json!({"number_of_minions": 4}))).await;
    let backend = Arc::new(Backend::new(heat.clone(), rg_group("workers", &name)));
    let start = backend.read().await.unwrap();

    let sim = KubeSim::start(Options::fast()).await.unwrap();
    for m in &start.members {
        let id = m.server_id.clone().unwrap();
        sim.add_node(NodeSpec::new(&format!("n-{}", m.name)).provider_id(&format!("openstack:///{id}"))).unwrap();
    }
    let metrics = Arc::new(heatscaler_daemon::telemetry::Metrics::new());
    let (alerts, events) = capturing_dispatcher(metrics.clone());
    let client = sim.kube_client_without_retries().unwrap();
    let poke = heatscaler_daemon::observe::HeatPoke::default();
    let actuator = Actuator::new(client, vec![backend.clone()], alerts, metrics, poke, false);

    let now = Timestamp::now();
    let remove = |member: &str, from: u32| {
        Action::RemoveMembers(RemoveMembers {
            group: "workers".into(),
            expected_desired: from,
            new_desired: from - 1,
            members: vec![MemberRemoval {
                member: member.into(),
                node: Some(format!("n-{member}")),
                cause: RemovalCause::Drained { drained: now },
            }],
            requested_at: now,
        })
    };

    // 1. Member 0 goes, exactly: confirmed, nothing held.
    mark_drained(&sim, &actuator, "0", now).await;
    let outcome = actuator.execute(&remove("0", 4), now).await;
    assert!(matches!(outcome, Outcome::Done(_)), "{outcome:?}");
    backend.wait_settled(SETTLE).await.unwrap();
    assert!(actuator.confirm_removals().await.is_empty());
    assert!(events.0.lock().unwrap().iter().all(|e| e.reason != Reason::RemovalMismatch));

    // 2. Member 1 goes, and an operator removes member 2 by hand right after.
    mark_drained(&sim, &actuator, "1", now).await;
    let outcome = actuator.execute(&remove("1", 3), now).await;
    assert!(matches!(outcome, Outcome::Done(_)), "{outcome:?}");
    backend.wait_settled(SETTLE).await.unwrap();
    let by_hand = Backend::new(heat.clone(), rg_group("workers", &name));
    by_hand.remove(&["2".to_string()]).await.unwrap();
    assert_eq!(names(&by_hand.wait_settled(SETTLE).await.unwrap()), vec!["3".to_string()]);

    let outcomes = actuator.confirm_removals().await;
    assert_eq!(outcomes.len(), 1, "{outcomes:?}");
    tokio::time::sleep(Duration::from_millis(200)).await;
    let captured = events.0.lock().unwrap().clone();
    let alert = captured.iter().find(|e| e.reason == Reason::RemovalMismatch).expect("a RemovalMismatch alert");
    assert_eq!(alert.severity, Severity::Critical);
    assert_eq!(alert.fields["unexpectedly_removed"], "2", "{alert:?}");
    assert_eq!(alert.fields["chosen"], "1", "{alert:?}");
    // Recorded on the node of the member that should not have gone.
    let n2 = sim.get::<Node>(None, "n-2").unwrap();
    let annotations = n2.metadata.annotations.unwrap_or_default();
    assert!(annotations[MISMATCH_ANNOTATION].contains("removed 2"), "{annotations:?}");
    assert_eq!(annotations[MISMATCH_GROUP_ANNOTATION], "workers");

    // Held: nothing more is sent to this group.
    let grow = Action::ScaleUp(ScaleUp {
        group: "workers".into(),
        expected_desired: 1,
        new_desired: 2,
        pod_count: 1,
        pods: vec![],
        expander: heatscaler_core::policy::Expander::LeastWaste,
    });
    let outcome = actuator.execute(&grow, now).await;
    assert!(matches!(&outcome, Outcome::Skipped(why) if why.contains("held")), "{outcome:?}");
    assert_eq!(backend.read().await.unwrap().desired, 1, "the held group was not grown");
}

/// Writes a drained removal record of member `member` onto node `n-<member>`, as the actuator does.
async fn mark_drained(
    sim: &kubesim::KubeSimHandle,
    actuator: &heatscaler_daemon::act::Actuator,
    member: &str,
    now: heatscaler_core::model::Timestamp,
) {
    use heatscaler_core::planner::protocol::{self, NodePatch, Phase, RemovalKind, RemovalRecord};
    let node = sim.get::<k8s_openapi::api::core::v1::Node>(None, &format!("n-{member}")).unwrap();
    let record = RemovalRecord {
        phase: Phase::Drained,
        kind: RemovalKind::Drain,
        started: now,
        drained: Some(now),
        requested: None,
        group: "workers".into(),
        member: member.into(),
        cordoned_before: false,
    };
    let patch = NodePatch {
        set_annotations: record.to_annotations(),
        add_taint: Some(protocol::removal_taint(now)),
        unschedulable: Some(true),
        ..NodePatch::default()
    };
    actuator.kube().patch_node(&node, &patch).await.unwrap();
}

// ------------------------------------------------------------- stuck stacks

/// heat-engine is killed 2 s into an 8-second stack update and comes back:
/// Heat's convergence engine never finishes nor fails that update (the stack
/// stays UPDATE_IN_PROGRESS). Past the stack-update timeout the actuator
/// raises StackStuck and updates the stack with its own template and
/// parameters, and Heat finishes it: no person involved. Runs on an
/// OpenStack of its own, so killing its engine disturbs no other test.
#[tokio::test]
async fn a_stack_left_in_progress_by_a_dead_heat_engine_is_alerted_and_recovered() {
    use heatscaler_daemon::act::{Actuator, Outcome};
    use heatscaler_daemon::alerts::capture::capturing_dispatcher;
    use heatscaler_daemon::alerts::{Reason, Severity};
    use std::time::Instant;

    logs();
    let os = tokio::task::spawn_blocking(support::private_openstack).await.unwrap();
    let heat = os.heat().await;
    let name = unique_name("stuck");
    let stack = create_stack(&heat, &test_stack(&name, "slow-update.yaml", json!({"number_of_minions": 1}))).await;
    let backend = Arc::new(Backend::new(heat.clone(), rg_group("workers", &name)));

    let mut slow = serde_json::Map::new();
    slow.insert("slow_value".into(), json!("changed"));
    heat.update_parameters(&stack, &slow).await.unwrap();
    tokio::time::sleep(Duration::from_secs(2)).await;
    os.kill_heat_engine();
    os.start_heat_engine();
    // Long past the 8 s the update needed: Heat did not finish it, nor fail it.
    tokio::time::sleep(Duration::from_secs(25)).await;
    let stuck = heat.show_stack(&name, false).await.unwrap();
    assert_eq!(stuck.stack_status, "UPDATE_IN_PROGRESS", "{:?}", stuck.stack_status_reason);
    // A daemon started now (a restart during the stuck update) counts from
    // when Heat began the update, as its `updated_time` says, not from its own
    // first read: otherwise StackStuck comes a whole timeout late after every
    // restart (the chaos soak saw 4 minutes for a 2-minute timeout).
    let observer = heatscaler_daemon::observe::HeatObserver::start(
        vec![backend.clone()],
        Duration::from_secs(2),
        Arc::new(heatscaler_daemon::telemetry::Metrics::new()),
        heatscaler_daemon::observe::Changes::new(),
    );
    tokio::time::timeout(Duration::from_secs(30), observer.wait_synced()).await.expect("the group is read");
    let busy_for = observer.busy_since()["workers"].elapsed();
    assert!(busy_for >= Duration::from_secs(25), "a new poller counts the stuck update as busy for {busy_for:?}");
    drop(observer);

    let sim = kubesim::KubeSim::start(kubesim::Options::fast()).await.unwrap();
    let metrics = Arc::new(heatscaler_daemon::telemetry::Metrics::new());
    let (alerts, events) = capturing_dispatcher(metrics.clone());
    let client = sim.kube_client_without_retries().unwrap();
    let poke = heatscaler_daemon::observe::HeatPoke::default();
    let actuator = Actuator::new(client, vec![backend.clone()], alerts, metrics, poke, false);

    let busy: std::collections::BTreeMap<String, Instant> =
        [("workers".to_string(), Instant::now() - Duration::from_secs(30))].into_iter().collect();
    // Within the timeout: nothing is done.
    assert!(actuator.handle_stuck_stacks(&busy, Duration::from_secs(60), Instant::now()).await.is_empty());
    // Past it: alerted and recovered.
    let outcomes = actuator.handle_stuck_stacks(&busy, Duration::from_secs(10), Instant::now()).await;
    assert!(matches!(&outcomes[..], [Outcome::Done(_)]), "{outcomes:?}");
    tokio::time::sleep(Duration::from_millis(200)).await;
    let captured = events.0.lock().unwrap().clone();
    let alert = captured.iter().find(|e| e.reason == Reason::StackStuck).expect("a StackStuck alert");
    assert_eq!(alert.severity, Severity::Critical);
    assert_eq!(alert.fields["status"], "UPDATE_IN_PROGRESS");
    assert!(alert.fields["recovery"].contains("stack update --existing"), "{alert:?}");
    // At most once per timeout: asked again at once, nothing is sent.
    assert!(actuator.handle_stuck_stacks(&busy, Duration::from_secs(10), Instant::now()).await.is_empty());

    let done = heat.wait_settled(&stack, SETTLE).await.unwrap();
    assert_eq!(done.stack_status, "UPDATE_COMPLETE", "{:?}", done.stack_status_reason);
    assert_eq!(done.parameter("slow_value").as_deref(), Some("changed"));
    assert_eq!(backend.read().await.unwrap().members.len(), 1, "the group is as it was");
    // A stale report of the busy stack sends nothing to a stack that is done.
    let late = Instant::now() + Duration::from_secs(11);
    let outcomes = actuator.handle_stuck_stacks(&busy, Duration::from_secs(10), late).await;
    assert!(matches!(&outcomes[..], [Outcome::Skipped(why)] if why.contains("no longer busy")), "{outcomes:?}");
}

// ------------------------------------------------------------ Heat on PostgreSQL

/// Deployments run Heat on MariaDB or PostgreSQL; the shared test Heat uses
/// SQLite, serialised (tests/openstack/sqlite_shim.py), which hides what
/// concurrent updates do to a real database server. Here Heat runs on
/// Debian's PostgreSQL and two groups are updated at once — a ResourceGroup
/// removing named members and an AutoScalingGroup removing its newest member
/// exactly — as the daemon does when several groups shrink in one pass.
#[tokio::test]
async fn exact_removals_from_two_groups_at_once_on_heat_with_postgresql() {
    logs();
    let os = tokio::task::spawn_blocking(support::private_openstack_on_postgresql).await.unwrap();
    let conf = std::fs::read_to_string(os.dir.join("heat/heat.conf")).unwrap();
    assert!(conf.contains("connection = postgresql+psycopg2://"), "Heat is on PostgreSQL");
    let heat = os.heat().await;
    let (rg, asg) = (unique_name("pg-rg"), unique_name("pg-asg"));
    let (rg_new, asg_new) = (
        test_stack(&rg, "resource-group.yaml", json!({"number_of_minions": 4})),
        test_stack(&asg, "autoscaling-group.yaml", json!({"minion_count": 2})),
    );
    tokio::join!(create_stack(&heat, &rg_new), create_stack(&heat, &asg_new));
    let workers = Backend::new(heat.clone(), rg_group("workers", &rg));
    let gpu = Backend::new(heat.clone(), asg_group("gpu", &asg, false));
    let start = gpu.read().await.unwrap();
    wait_next_second().await;
    gpu.grow_to(3).await.unwrap();
    let grown = gpu.wait_settled(SETTLE).await.unwrap();
    let newest = grown.members.iter().find(|m| start.member(&m.name).is_none()).unwrap().name.clone();

    let (rg_victims, asg_victims) = (["0".to_string(), "2".to_string()], [newest.clone()]);
    let (r1, r2) = tokio::join!(workers.remove(&rg_victims), gpu.remove(&asg_victims));
    r1.unwrap();
    r2.unwrap();
    let (w, g) = tokio::join!(workers.wait_settled(SETTLE), gpu.wait_settled(SETTLE));
    let (w, g) = (w.unwrap(), g.unwrap());
    assert_eq!(w.stack_status, "UPDATE_COMPLETE", "{}", w.stack_status_reason);
    assert_eq!(g.stack_status, "UPDATE_COMPLETE", "{}", g.stack_status_reason);
    assert_eq!(names(&w), ["1", "3"].map(String::from).to_vec());
    assert_eq!(names(&g), names(&start), "exactly the newest member left");
}

/// `heatscaler groups check` validates every group against Heat: here a
/// correct group, one whose removal parameter Heat ignores and one naming a
/// stack that does not exist (Kubernetes unreachable: the mapping is reported
/// unchecked). `check-config` alone says `valid` for all three.
#[tokio::test]
async fn groups_check_finds_what_check_config_cannot() {
    let heat = heat().await;
    let os = openstack();
    let (good, unwired) = (unique_name("check-good"), unique_name("check-unwired"));
    let (g, u) = (
        test_stack(&good, "resource-group.yaml", json!({"number_of_minions": 1})),
        test_stack(&unwired, "resource-group-unwired.yaml", json!({"number_of_minions": 1})),
    );
    tokio::join!(create_stack(&heat, &g), create_stack(&heat, &u));
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("heatscaler.yaml");
    let group = |name: &str, stack: &str| {
        format!(
            "  - name: {name}\n    stack: {stack}\n    backend:\n      kind: resource-group\n      resource: kube_minions\n      count-parameter: number_of_minions\n      removal-parameter: minions_to_remove\n    min-size: 0\n    max-size: 5\n"
        )
    };
    let text = format!(
        "openstack:\n  cloud: heatscaler\n  clouds-yaml: {}\nnode-groups:\n{}{}{}",
        os.clouds_yaml().display(),
        group("good", &good),
        group("unwired", &unwired),
        group("missing", "no-such-stack-for-check")
    );
    std::fs::write(&config, text).unwrap();
    let home = dir.path().to_path_buf();
    let run = move |args: &[&str]| {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_heatscaler"))
            .arg("--config")
            .arg(&config)
            .args(args)
            .env("KUBECONFIG", home.join("no-such-kubeconfig"))
            .env("HOME", &home)
            .env_remove("KUBERNETES_SERVICE_HOST")
            .output()
            .unwrap();
        let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
        (out.status.success(), text)
    };
    let ((offline_ok, offline), (ok, text)) =
        tokio::task::spawn_blocking(move || (run(&["check-config"]), run(&["groups", "check"]))).await.unwrap();
    assert!(offline_ok && offline.contains("valid"), "{offline}");
    assert!(!ok, "{text}");
    let lines = |group: &str| text.lines().filter(|l| l.starts_with(&format!("group {group}:"))).collect::<Vec<_>>();
    assert!(lines("good").iter().all(|l| l.contains("Kubernetes is not reachable")), "{text}");
    assert!(lines("unwired").iter().any(|l| l.contains("not wired") && l.contains("removal_policies")), "{text}");
    assert!(lines("missing").iter().any(|l| l.contains("no-such-stack-for-check")), "{text}");
}
