//! A real Keystone + Heat for integration tests (`tests/openstack/up.sh`).
//!
//! Contract, for any test binary that includes this module:
//! - `HEATSCALER_TEST_OPENSTACK=DIR`: use the OpenStack already running in DIR
//!   (started by hand with `tests/openstack/up.sh DIR`); it is left running.
//! - otherwise the first call to [`openstack()`] runs `up.sh` into a fresh temp
//!   directory, once per test binary, and a watchdog process stops it (down.sh)
//!   and deletes the directory as soon as the test binary exits — normally, by
//!   panic or killed. `HEATSCALER_TEST_OPENSTACK_KEEP=1` keeps the directory (logs).
//! - The software must be installed (`tests/openstack/install.sh`); if it is
//!   not, the tests fail saying so. They are never skipped.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU32, Ordering};

use heatscaler_daemon::cloud::Cloud;
use heatscaler_daemon::cloud::heat::{HeatClient, NewStack, StackRef};
use heatscaler_daemon::config::{ApplicationCredential, OpenStackConfig, PasswordAuth, SecretSource};

pub struct TestOpenStack {
    pub dir: PathBuf,
    env: BTreeMap<String, String>,
    secrets: PathBuf,
}

static OPENSTACK: OnceLock<TestOpenStack> = OnceLock::new();

pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The OpenStack of this test binary, started on first use.
pub fn openstack() -> &'static TestOpenStack {
    OPENSTACK.get_or_init(|| {
        let dir = match std::env::var_os("HEATSCALER_TEST_OPENSTACK") {
            Some(dir) => PathBuf::from(dir),
            None => start(&[]),
        };
        load(dir)
    })
}

/// An OpenStack of its own, for a test that breaks it (kills heat-engine):
/// the shared one stays untouched. Stopped like the shared one.
pub fn private_openstack() -> TestOpenStack {
    load(start(&[]))
}

/// An OpenStack of its own whose Heat keeps its database on a PostgreSQL
/// server, as deployments run it (`HEATSCALER_OS_HEAT_DB=postgresql`).
pub fn private_openstack_on_postgresql() -> TestOpenStack {
    load(start(&[("HEATSCALER_OS_HEAT_DB", "postgresql")]))
}

fn load(dir: PathBuf) -> TestOpenStack {
    {
        let env_file = dir.join("env");
        let text = std::fs::read_to_string(&env_file).unwrap_or_else(|e| {
            panic!(
                "{}: {e}; is an OpenStack running there (tests/openstack/up.sh {})?",
                env_file.display(),
                dir.display()
            )
        });
        let env = text
            .lines()
            .filter_map(|l| l.strip_prefix("export "))
            .filter_map(|l| l.split_once('='))
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        // Secret files for SecretSource::File, removed with the watchdog like the OpenStack.
        let secrets = tempfile::Builder::new().prefix("heatscaler-test-secrets-").tempdir().unwrap().keep();
        watchdog(None, &secrets);
        let os = TestOpenStack { dir, env, secrets };
        std::fs::write(os.secrets.join("password"), os.var("HEATSCALER_OS_PASSWORD")).unwrap();
        std::fs::write(os.secrets.join("app-cred-secret"), os.var("HEATSCALER_OS_APP_CRED_SECRET")).unwrap();
        os
    }
}

fn start(env: &[(&str, &str)]) -> PathBuf {
    let scripts = repo_root().join("tests/openstack");
    let dir = tempfile::Builder::new().prefix("heatscaler-openstack-").tempdir().unwrap().keep();
    watchdog(Some(&scripts.join("down.sh")), &dir);
    let started = std::time::Instant::now();
    let out = Command::new(scripts.join("up.sh"))
        .arg(&dir)
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .output()
        .expect("run up.sh");
    if out.status.code() == Some(3) {
        panic!(
            "the OpenStack test software is not installed: run tests/openstack/install.sh (CI runs it)\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    if !out.status.success() {
        panic!(
            "tests/openstack/up.sh {} failed ({}):\n{}\n{}",
            dir.display(),
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    eprintln!("test OpenStack up in {:.1?} in {}", started.elapsed(), dir.display());
    dir
}

/// A process outside this one's process group that waits for this test binary
/// to exit, however it exits, then stops the OpenStack. Never waited for: it
/// outlives this process by design (and is reaped by init then).
#[allow(clippy::zombie_processes)]
fn watchdog(down: Option<&Path>, dir: &Path) {
    let keep = down.is_some() && std::env::var("HEATSCALER_TEST_OPENSTACK_KEEP").is_ok_and(|v| v == "1");
    let down = down.map(Path::to_path_buf).unwrap_or_else(|| "true".into());
    let script =
        r#"while kill -0 "$1" 2>/dev/null; do sleep 0.5; done; "$2" "$3" >/dev/null 2>&1; [ "$4" = 1 ] || rm -rf "$3""#;
    Command::new("bash")
        .arg("-c")
        .arg(script)
        .arg("heatscaler-openstack-watchdog")
        .arg(std::process::id().to_string())
        .arg(&down)
        .arg(dir)
        .arg(if keep { "1" } else { "0" })
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .process_group(0)
        .spawn()
        .expect("start the OpenStack watchdog");
}

impl TestOpenStack {
    pub fn var(&self, key: &str) -> &str {
        self.env.get(key).unwrap_or_else(|| panic!("{key} missing from {}/env", self.dir.display()))
    }

    pub fn auth_url(&self) -> &str {
        self.var("HEATSCALER_OS_AUTH_URL")
    }

    pub fn clouds_yaml(&self) -> PathBuf {
        self.dir.join("clouds.yaml")
    }

    /// Values that must never appear in a log line.
    pub fn secrets(&self) -> Vec<String> {
        ["HEATSCALER_OS_PASSWORD", "HEATSCALER_OS_APP_CRED_SECRET", "HEATSCALER_OS_ADMIN_PASSWORD"]
            .iter()
            .map(|k| self.var(k).to_string())
            .collect()
    }

    fn base_config(&self) -> OpenStackConfig {
        OpenStackConfig {
            auth_url: Some(self.auth_url().to_string()),
            region: Some(self.var("HEATSCALER_OS_REGION").to_string()),
            request_timeout: heatscaler_daemon::config::Duration::from_secs(30),
            stack_update_timeout: heatscaler_daemon::config::Duration::from_secs(300),
            ..Default::default()
        }
    }

    pub fn password_config_for(&self, username: &str) -> OpenStackConfig {
        OpenStackConfig {
            password: Some(PasswordAuth {
                username: username.to_string(),
                user_domain_name: "Default".into(),
                password: SecretSource::File(self.secrets.join("password")),
                project_id: None,
                project_name: Some(self.var("HEATSCALER_OS_PROJECT_NAME").to_string()),
                project_domain_name: "Default".into(),
                trust_id: None,
            }),
            ..self.base_config()
        }
    }

    /// The tenant user, by password.
    pub fn password_config(&self) -> OpenStackConfig {
        self.password_config_for(self.var("HEATSCALER_OS_USERNAME"))
    }

    pub fn app_credential_config(&self) -> OpenStackConfig {
        OpenStackConfig {
            application_credential: Some(ApplicationCredential {
                id: Some(self.var("HEATSCALER_OS_APP_CRED_ID").to_string()),
                name: None,
                user_id: None,
                username: None,
                user_domain_name: None,
                secret: SecretSource::File(self.secrets.join("app-cred-secret")),
            }),
            ..self.base_config()
        }
    }

    /// An entry of the clouds.yaml up.sh wrote (`heatscaler`, `heatscaler-appcred`).
    pub fn clouds_yaml_config(&self, cloud: &str) -> OpenStackConfig {
        OpenStackConfig {
            cloud: Some(cloud.to_string()),
            clouds_yaml: Some(self.clouds_yaml()),
            request_timeout: heatscaler_daemon::config::Duration::from_secs(30),
            stack_update_timeout: heatscaler_daemon::config::Duration::from_secs(300),
            ..Default::default()
        }
    }

    /// Kills heat-engine (SIGKILL to its whole session: the master and its
    /// workers), as a crash does, mid-work.
    pub fn kill_heat_engine(&self) {
        let pid = std::fs::read_to_string(self.dir.join("run/heat-engine.pid")).unwrap();
        let status = Command::new("kill").arg("-KILL").arg("--").arg(format!("-{}", pid.trim())).status().unwrap();
        assert!(status.success(), "kill heat-engine");
    }

    /// Starts heat-engine again as up.sh does (down.sh stops it through the same pid file).
    pub fn start_heat_engine(&self) {
        let scripts = repo_root().join("tests/openstack");
        let script = r#". "$1/common.sh"; setsid env HEATSCALER_SQLITE_SERIALIZE=1 "$OPENSTACK_VENV/bin/heat-engine" --config-file "$2/heat/heat.conf" >>"$2/log/heat-engine.log" 2>&1 </dev/null & echo $! >"$2/run/heat-engine.pid""#;
        let status =
            Command::new("bash").arg("-c").arg(script).arg("restart").arg(&scripts).arg(&self.dir).status().unwrap();
        assert!(status.success(), "start heat-engine");
    }

    pub async fn heat(&self) -> HeatClient {
        HeatClient::new(Cloud::connect(&self.password_config()).await.expect("authenticate the tenant user"))
    }

    /// Revokes every token of a user, as an admin would (Keystone's
    /// `DELETE /v3/users/{id}/tokens`).
    pub async fn revoke_tokens(&self, user_id: &str) {
        let http = reqwest::Client::new();
        let auth = serde_json::json!({"auth": {
            "identity": {"methods": ["password"], "password": {"user": {
                "name": "admin", "domain": {"name": "Default"}, "password": self.var("HEATSCALER_OS_ADMIN_PASSWORD")}}},
            "scope": {"project": {"name": "admin", "domain": {"name": "Default"}}}}});
        let r = http.post(format!("{}/auth/tokens", self.auth_url())).json(&auth).send().await.unwrap();
        assert!(r.status().is_success(), "admin token: {}", r.status());
        let token = r.headers()["x-subject-token"].to_str().unwrap().to_string();
        let r = http
            .delete(format!("{}/users/{user_id}/tokens", self.auth_url()))
            .header("x-auth-token", token)
            .send()
            .await
            .unwrap();
        assert!(r.status().is_success(), "revoke tokens of {user_id}: {}", r.status());
    }
}

/// A stack name unique within this run.
pub fn unique_name(prefix: &str) -> String {
    static N: AtomicU32 = AtomicU32::new(0);
    format!("{prefix}-{}-{}", std::process::id(), N.fetch_add(1, Ordering::Relaxed))
}

/// A test template from heat-templates/test/ with the Nova-less environment and
/// `Heatscaler::Minion` bound to the test minion.
pub fn test_stack(name: &str, template: &str, parameters: serde_json::Value) -> NewStack {
    let dir = repo_root().join("heat-templates/test");
    let read = |f: &str| std::fs::read_to_string(dir.join(f)).unwrap_or_else(|e| panic!("{f}: {e}"));
    let mut environment = heatscaler_core::yaml::parse_value(&read("no-nova.env.yaml")).unwrap();
    environment["resource_registry"]["Heatscaler::Minion"] = "minion.yaml".into();
    NewStack {
        name: name.to_string(),
        template: read(template),
        files: vec![("minion.yaml".into(), read("minion.yaml"))],
        environment: Some(environment),
        parameters: parameters.as_object().cloned().unwrap_or_default(),
        timeout_mins: Some(10),
    }
}

/// Creates a stack and waits until Heat has created it.
pub async fn create_stack(heat: &HeatClient, new: &NewStack) -> StackRef {
    let stack = heat.create_stack(new).await.unwrap_or_else(|e| panic!("{e}"));
    let done = heat.wait_settled(&stack, std::time::Duration::from_secs(180)).await.unwrap();
    assert_eq!(done.stack_status, "CREATE_COMPLETE", "{}: {:?}", new.name, done.stack_status_reason);
    stack
}
