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
    for t in ["test/resource-group.yaml", "test/autoscaling-group.yaml", "test/slow-update.yaml", "test/minion.yaml"] {
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
        (list, json, yaml, dry, scale, bad)
    })
    .await
    .unwrap();
    let ((ok, list, _), json, yaml, (dry_ok, dry, _), (scale_ok, scale, _), (bad_ok, bad, _)) = listing;
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
    assert!(list.contains("group workers") && list.contains("CREATE_COMPLETE") && list.contains("desired 2"), "{list}");
    assert!(dry_ok && dry.contains("dry run: group workers: 2 -> 1 member(s), deleting 0"), "{dry}");
    assert!(scale_ok && scale.contains("UPDATE_COMPLETE; 3 member(s)"), "{scale}");
    assert!(!bad_ok && bad.contains("no member named 9"), "{bad}");
    // The dry run sent nothing: member 0 is still there.
    let backend = Backend::new(heat, rg_group("workers", &name));
    assert_eq!(names(&backend.read().await.unwrap()), ["0", "1", "2"].map(String::from).to_vec());
}
