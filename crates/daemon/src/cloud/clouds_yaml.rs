//! Credentials as openstacksdk (the `openstack` CLI) resolves them: an entry
//! of `clouds.yaml`, or the `OS_*` environment variables.
//!
//! `clouds.yaml` is the file named by the `clouds-yaml` setting, else
//! `$OS_CLIENT_CONFIG_FILE`, else the first of `./clouds.yaml`,
//! `~/.config/openstack/clouds.yaml`, `/etc/openstack/clouds.yaml`. The
//! entry's values from `secure.yaml` (`$OS_CLIENT_SECURE_FILE`, else the same
//! search) are merged over it, and a `profile` takes its defaults from
//! `clouds-public.yaml`. Read here rather than through osauth's loader,
//! which keeps only the keys it knows and so silently dropped
//! `user_domain_id` and `project_domain_id`.
//!
//! Either way the entry is read into [`CloudEntry`] and authenticated like an
//! explicit configuration, so TLS and timeouts are the same for all.

use std::path::{Path, PathBuf};

use secrecy::SecretString;
use serde::Deserialize;

use super::CloudError;

/// One `clouds:` entry, with only the keys heatscaler uses.
#[derive(Deserialize)]
pub(crate) struct CloudEntry {
    #[serde(default)]
    pub auth: AuthSection,
    #[serde(default)]
    pub auth_type: Option<String>,
    #[serde(default)]
    pub region_name: Option<String>,
    #[serde(default)]
    pub interface: Option<String>,
    #[serde(default)]
    pub cacert: Option<String>,
    #[serde(default)]
    pub verify: Option<serde_json::Value>,
}

#[derive(Default, Deserialize)]
pub(crate) struct AuthSection {
    pub auth_url: Option<String>,
    pub username: Option<String>,
    pub user_id: Option<String>,
    pub password: Option<SecretString>,
    pub user_domain_name: Option<String>,
    pub user_domain_id: Option<String>,
    pub project_name: Option<String>,
    pub project_id: Option<String>,
    pub project_domain_name: Option<String>,
    pub project_domain_id: Option<String>,
    pub application_credential_id: Option<String>,
    pub application_credential_name: Option<String>,
    pub application_credential_secret: Option<SecretString>,
    /// A Keystone trust (Magnum's): the password login is scoped to it instead of a project.
    pub trust_id: Option<String>,
}

/// Where the OpenStack tools look for `file`: the working directory,
/// `~/.config/openstack/`, `/etc/openstack/`.
fn search(file: &str) -> Option<PathBuf> {
    let home = std::env::var_os("HOME").map(|h| Path::new(&h).join(".config/openstack").join(file));
    [Some(PathBuf::from(file)), home, Some(Path::new("/etc/openstack").join(file))]
        .into_iter()
        .flatten()
        .find(|p| p.is_file())
}

const SEARCHED: &str = "./, ~/.config/openstack/, /etc/openstack/";

fn read(path: &Path) -> Result<serde_json::Value, CloudError> {
    let text = crate::files::read_text_bounded(path, crate::files::MAX_DOCUMENT_BYTES)
        .map_err(|e| CloudError::Config(format!("cannot read {}: {e}", path.display())))?;
    heatscaler_core::yaml::parse_value(&text)
        .map_err(|e| CloudError::Config(format!("{} is not valid YAML: {e}", path.display())))
}

/// `over`'s values replace `base`'s, mapping by mapping.
fn merge(base: &mut serde_json::Value, over: serde_json::Value) {
    match (base, over) {
        (serde_json::Value::Object(b), serde_json::Value::Object(o)) => {
            for (k, v) in o {
                merge(b.entry(k).or_insert(serde_json::Value::Null), v);
            }
        }
        (b, o) => *b = o,
    }
}

/// Finds cloud `name` (see the module documentation); `path` overrides the search.
pub(crate) fn load(name: &str, path: Option<&Path>) -> Result<CloudEntry, CloudError> {
    let env_path = std::env::var_os("OS_CLIENT_CONFIG_FILE").map(PathBuf::from);
    let clouds = path
        .map(Path::to_path_buf)
        .or(env_path)
        .or_else(|| search("clouds.yaml"))
        .ok_or_else(|| CloudError::Config(format!("cloud '{name}': no clouds.yaml in {SEARCHED}")))?;
    let mut entry = read(&clouds)?
        .get("clouds")
        .and_then(|c| c.get(name))
        .cloned()
        .ok_or_else(|| CloudError::Config(format!("{} has no cloud named '{name}'", clouds.display())))?;
    let secure = std::env::var_os("OS_CLIENT_SECURE_FILE").map(PathBuf::from).or_else(|| search("secure.yaml"));
    if let Some(secure) = secure
        && let Some(values) = read(&secure)?.get("clouds").and_then(|c| c.get(name)).cloned()
    {
        merge(&mut entry, values);
    }
    if let Some(profile) = entry.get("profile").and_then(|p| p.as_str()).map(str::to_string) {
        let public = search("clouds-public.yaml").ok_or_else(|| {
            CloudError::Config(format!("cloud '{name}' uses profile '{profile}' but there is no clouds-public.yaml"))
        })?;
        let mut base = read(&public)?
            .get("public-clouds")
            .and_then(|c| c.get(&profile))
            .cloned()
            .ok_or_else(|| CloudError::Config(format!("{} has no profile '{profile}'", public.display())))?;
        merge(&mut base, entry);
        entry = base;
    }
    // Not serde_json::from_value's message: it may quote a value, and values here are secrets.
    serde_json::from_value(entry).map_err(|_| {
        CloudError::Config(format!(
            "cloud '{name}' in clouds.yaml has a key of the wrong type (auth values must be strings)"
        ))
    })
}

/// The cloud the `OS_*` variables describe (openstacksdk's `envvars` cloud),
/// if `OS_AUTH_URL` is set.
pub(crate) fn from_env() -> Option<CloudEntry> {
    let var = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
    let auth_url = var("OS_AUTH_URL")?;
    let secret = |k: &str| var(k).map(SecretString::from);
    Some(CloudEntry {
        auth: AuthSection {
            auth_url: Some(auth_url),
            username: var("OS_USERNAME"),
            user_id: var("OS_USER_ID"),
            password: secret("OS_PASSWORD"),
            user_domain_name: var("OS_USER_DOMAIN_NAME"),
            user_domain_id: var("OS_USER_DOMAIN_ID"),
            project_name: var("OS_PROJECT_NAME").or_else(|| var("OS_TENANT_NAME")),
            project_id: var("OS_PROJECT_ID").or_else(|| var("OS_TENANT_ID")),
            project_domain_name: var("OS_PROJECT_DOMAIN_NAME"),
            project_domain_id: var("OS_PROJECT_DOMAIN_ID"),
            application_credential_id: var("OS_APPLICATION_CREDENTIAL_ID"),
            application_credential_name: var("OS_APPLICATION_CREDENTIAL_NAME"),
            application_credential_secret: secret("OS_APPLICATION_CREDENTIAL_SECRET"),
            trust_id: var("OS_TRUST_ID"),
        },
        auth_type: var("OS_AUTH_TYPE"),
        region_name: var("OS_REGION_NAME"),
        interface: var("OS_INTERFACE"),
        cacert: var("OS_CACERT"),
        verify: None,
    })
}

/// The cloud the environment names, as openstacksdk picks it: `OS_CLOUD`,
/// else the `OS_*` variables. `Err` names both when neither is set.
pub(crate) fn from_environment(path: Option<&Path>) -> Result<(String, CloudEntry), CloudError> {
    if let Some(name) = std::env::var("OS_CLOUD").ok().filter(|v| !v.is_empty()) {
        let entry = load(&name, path)?;
        return Ok((name, entry));
    }
    from_env().map(|e| ("envvars (the OS_* environment variables)".to_string(), e)).ok_or_else(|| {
        CloudError::Config(
            "no authentication: the openstack section sets neither `cloud` nor `auth-url`, and neither OS_CLOUD nor \
             OS_AUTH_URL is set in the environment"
                .into(),
        )
    })
}
