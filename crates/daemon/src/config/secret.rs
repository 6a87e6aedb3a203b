//! Secrets in the configuration: where to read them, never the value itself.
//!
//! A password written inline in a YAML file ends up in backups, tickets and
//! `ps` output of editors, so the file only says *where* the secret lives: a
//! file, an environment variable, or a systemd credential (`LoadCredential=`).
//! Resolved values are `SecretString`, whose `Debug` prints `[REDACTED]`.

use std::path::PathBuf;

use secrecy::SecretString;
use serde::{Deserialize, Serialize};

/// Where a secret is read from: exactly one of `{ file: PATH }`,
/// `{ env: VAR }` or `{ systemd-credential: NAME }`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(into = "SecretSourceKeys")]
pub enum SecretSource {
    /// A file whose content (trailing newline removed) is the secret.
    File(PathBuf),
    /// An environment variable of the daemon.
    Env(String),
    /// A systemd credential: `$CREDENTIALS_DIRECTORY/<name>`, set up with `LoadCredential=`.
    SystemdCredential(String),
}

/// The YAML form: a map with one key. (Written by hand because YAML libraries
/// disagree on how an externally tagged enum looks; this form is unambiguous.)
#[derive(Deserialize, Serialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
struct SecretSourceKeys {
    #[serde(skip_serializing_if = "Option::is_none")]
    file: Option<PathBuf>,
    #[serde(skip_serializing_if = "Option::is_none")]
    env: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    systemd_credential: Option<String>,
}

impl From<SecretSource> for SecretSourceKeys {
    fn from(s: SecretSource) -> Self {
        let mut k = Self { file: None, env: None, systemd_credential: None };
        match s {
            SecretSource::File(p) => k.file = Some(p),
            SecretSource::Env(v) => k.env = Some(v),
            SecretSource::SystemdCredential(c) => k.systemd_credential = Some(c),
        }
        k
    }
}

impl TryFrom<SecretSourceKeys> for SecretSource {
    type Error = String;
    fn try_from(k: SecretSourceKeys) -> Result<Self, String> {
        match (k.file, k.env, k.systemd_credential) {
            (Some(p), None, None) => Ok(Self::File(p)),
            (None, Some(v), None) => Ok(Self::Env(v)),
            (None, None, Some(c)) => Ok(Self::SystemdCredential(c)),
            _ => Err("give exactly one of `file`, `env` or `systemd-credential`".into()),
        }
    }
}

/// The error for anything but a map: what was written is likely the secret
/// itself, so it is named by its kind only, never quoted.
const INLINE: &str = "a secret is never written in the file: give `{ file: PATH }`, `{ env: VAR }` or `{ systemd-credential: NAME }` (the value given is not shown)";

impl<'de> Deserialize<'de> for SecretSource {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        use serde::de::{self, Error as _};

        struct Source;
        /// Every scalar or sequence is refused with [`INLINE`]; serde's own
        /// `invalid type: string "..."` would quote it.
        fn inline<E: de::Error>() -> Result<SecretSource, E> {
            Err(E::custom(INLINE))
        }
        impl<'de> de::Visitor<'de> for Source {
            type Value = SecretSource;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a map with one of `file`, `env` or `systemd-credential`")
            }
            fn visit_map<A: de::MapAccess<'de>>(self, map: A) -> Result<SecretSource, A::Error> {
                let keys = SecretSourceKeys::deserialize(de::value::MapAccessDeserializer::new(map))?;
                SecretSource::try_from(keys).map_err(A::Error::custom)
            }
            fn visit_str<E: de::Error>(self, _: &str) -> Result<SecretSource, E> {
                inline()
            }
            fn visit_bytes<E: de::Error>(self, _: &[u8]) -> Result<SecretSource, E> {
                inline()
            }
            fn visit_i64<E: de::Error>(self, _: i64) -> Result<SecretSource, E> {
                inline()
            }
            fn visit_u64<E: de::Error>(self, _: u64) -> Result<SecretSource, E> {
                inline()
            }
            fn visit_f64<E: de::Error>(self, _: f64) -> Result<SecretSource, E> {
                inline()
            }
            fn visit_bool<E: de::Error>(self, _: bool) -> Result<SecretSource, E> {
                inline()
            }
            fn visit_unit<E: de::Error>(self) -> Result<SecretSource, E> {
                Err(E::custom("is empty: give `{ file: PATH }`, `{ env: VAR }` or `{ systemd-credential: NAME }`"))
            }
            fn visit_seq<A: de::SeqAccess<'de>>(self, _: A) -> Result<SecretSource, A::Error> {
                inline()
            }
        }
        d.deserialize_any(Source)
    }
}

/// Why a secret could not be read. Never contains the secret.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SecretError {
    #[error("secret file {0} cannot be read: {1}")]
    File(PathBuf, String),
    #[error("secret file {0} is empty")]
    EmptyFile(PathBuf),
    #[error("environment variable {0} is not set")]
    EnvMissing(String),
    #[error("environment variable {0} is empty")]
    EnvEmpty(String),
    #[error(
        "systemd credential {0} is unavailable: CREDENTIALS_DIRECTORY is not set (add LoadCredential= to the unit)"
    )]
    NoCredentialsDirectory(String),
}

impl SecretSource {
    /// Reads the secret now. Called at start-up and on reload, so a missing
    /// secret is reported by `check-config` before the daemon depends on it.
    pub fn resolve(&self) -> Result<SecretString, SecretError> {
        match self {
            SecretSource::File(path) => read_file(path),
            SecretSource::Env(var) => match std::env::var(var) {
                Ok(v) if v.is_empty() => Err(SecretError::EnvEmpty(var.clone())),
                Ok(v) => Ok(SecretString::from(v)),
                Err(_) => Err(SecretError::EnvMissing(var.clone())),
            },
            SecretSource::SystemdCredential(name) => {
                let dir = std::env::var_os("CREDENTIALS_DIRECTORY")
                    .ok_or_else(|| SecretError::NoCredentialsDirectory(name.clone()))?;
                read_file(&PathBuf::from(dir).join(name))
            }
        }
    }
}

fn read_file(path: &std::path::Path) -> Result<SecretString, SecretError> {
    let text = crate::files::read_text_bounded(path, crate::files::MAX_SECRET_BYTES)
        .map_err(|e| SecretError::File(path.to_path_buf(), e.to_string()))?;
    let trimmed = text.trim_end_matches(['\n', '\r']);
    if trimmed.is_empty() {
        return Err(SecretError::EmptyFile(path.to_path_buf()));
    }
    Ok(SecretString::from(trimmed.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use secrecy::ExposeSecret;

    #[test]
    fn file_secret_drops_trailing_newline_and_debug_redacts() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("s");
        std::fs::write(&p, "hunter2\n").unwrap();
        let s = SecretSource::File(p).resolve().unwrap();
        assert_eq!(s.expose_secret(), "hunter2");
        assert!(!format!("{s:?}").contains("hunter2"));
    }

    #[test]
    fn missing_sources_name_what_is_missing() {
        let e = SecretSource::Env("HEATSCALER_TEST_SURELY_UNSET".into()).resolve().unwrap_err();
        assert_eq!(e, SecretError::EnvMissing("HEATSCALER_TEST_SURELY_UNSET".into()));
        let e = SecretSource::File("/nonexistent/secret".into()).resolve().unwrap_err();
        assert!(e.to_string().contains("/nonexistent/secret"));
    }
}
