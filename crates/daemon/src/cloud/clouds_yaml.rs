//! Credentials from `clouds.yaml`, the file every OpenStack tool reads.
//!
//! Without an explicit path, osauth finds the file where the OpenStack tools
//! look (`./clouds.yaml`, `~/.config/openstack/`, `/etc/openstack/`) and merges
//! `secure.yaml` and `clouds-public.yaml` profiles; `$OS_CLIENT_CONFIG_FILE`,
//! which openstacksdk also honours, or the `clouds-yaml` setting name one file.
//! Either way the entry is read into [`CloudEntry`] and authenticated like an
//! explicit configuration, so TLS and timeouts are the same for both.

use std::path::Path;

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
}

/// Finds cloud `name`: in `path` if given, else in `$OS_CLIENT_CONFIG_FILE`, else
/// on osauth's search path.
pub(crate) fn load(name: &str, path: Option<&Path>) -> Result<CloudEntry, CloudError> {
    let env_path = std::env::var_os("OS_CLIENT_CONFIG_FILE").map(std::path::PathBuf::from);
    let value = match path.or(env_path.as_deref()) {
        Some(path) => {
            let text = crate::files::read_text_bounded(path, crate::files::MAX_DOCUMENT_BYTES)
                .map_err(|e| CloudError::Config(format!("cannot read {}: {e}", path.display())))?;
            let root = heatscaler_core::yaml::parse_value(&text)
                .map_err(|e| CloudError::Config(format!("{} is not valid YAML: {e}", path.display())))?;
            root.get("clouds")
                .and_then(|c| c.get(name))
                .cloned()
                .ok_or_else(|| CloudError::Config(format!("{} has no cloud named '{name}'", path.display())))?
        }
        None => {
            let found = osauth::CloudConfig::from_config(name).map_err(|e| {
                CloudError::Config(format!(
                    "cloud '{name}' from clouds.yaml (./, ~/.config/openstack/, /etc/openstack/): {}",
                    e
                ))
            })?;
            serde_json::to_value(found).map_err(|e| CloudError::Config(format!("cloud '{name}': {e}")))?
        }
    };
    // Not serde_json::from_value's message: it may quote a value, and values here are secrets.
    serde_json::from_value(value).map_err(|_| {
        CloudError::Config(format!(
            "cloud '{name}' in clouds.yaml has a key of the wrong type (auth values must be strings)"
        ))
    })
}
