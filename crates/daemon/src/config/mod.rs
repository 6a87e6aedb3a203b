//! Typed configuration and its validation.
//!
//! Loading is two passes. Serde does the shape (unknown keys, wrong types, bad
//! durations or quantities) and `serde_path_to_error` keeps the key path of the
//! first such error. Then [`validate`] checks what serde cannot: cross-field
//! rules (min ≤ max), references between sections, and that secrets resolve.
//! Every error is a [`ConfigError`] naming the key path, so an operator reading
//! `node-groups[1].max-size: ...` knows which line to fix.

pub mod kubeconfig;
mod lines;
mod schema;
mod secret;
mod validate;

use std::path::{Path, PathBuf};

pub use schema::*;
pub use secret::{SecretError, SecretSource};

/// The policy sections and value types of the file, defined with the planner
/// that reads them (`heatscaler_core::policy`) and part of the file's schema here.
pub use heatscaler_core::policy::{
    AdvisorMode, ClusterLimits, Duration, Expander, Fraction, NodeTemplate, PlacementAdvisorPolicy, Quantity,
    RecommenderSettings, ScaleDownPolicy, ScaleUpPolicy, TaintConfig, UpdaterSettings,
};

/// One thing wrong with a configuration, at a key path.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}{problem}", if path.is_empty() { String::new() } else { format!("{path}: ") })]
pub struct ConfigError {
    /// Dotted key path (`scale-down.unneeded-time`, `node-groups[0].min-size`).
    pub path: String,
    /// What is wrong and, where it helps, what would be right.
    pub problem: String,
}

impl ConfigError {
    pub fn new(path: impl Into<String>, problem: impl Into<String>) -> Self {
        Self { path: path.into(), problem: problem.into() }
    }
}

/// Everything wrong with a configuration file (at least one).
#[derive(Debug, thiserror::Error)]
#[error("invalid configuration {}:\n{}", source_name, errors.iter().map(|e| format!("  - {e}")).collect::<Vec<_>>().join("\n"))]
pub struct ConfigErrors {
    pub source_name: String,
    pub errors: Vec<ConfigError>,
}

impl ConfigErrors {
    fn one(source_name: &str, error: ConfigError) -> Self {
        Self { source_name: source_name.to_string(), errors: vec![error] }
    }
}

/// Reads and validates a configuration file.
pub fn load(path: &Path) -> Result<Config, ConfigErrors> {
    let name = path.display().to_string();
    let text = crate::files::read_text_bounded(path, crate::files::MAX_DOCUMENT_BYTES)
        .map_err(|e| ConfigErrors::one(&name, ConfigError::new("", format!("cannot read file: {e}"))))?;
    parse(&text, &name, path.parent())
}

/// Reads and validates a configuration file for a command that does not use
/// `section` (`groups` sends no alerts): problems under it do not stop the
/// command and are returned beside the configuration to be shown as warnings.
pub fn load_without(path: &Path, section: &str) -> Result<(Config, Option<ConfigErrors>), ConfigErrors> {
    let name = path.display().to_string();
    let text = std::fs::read_to_string(path)
        .map_err(|e| ConfigErrors::one(&name, ConfigError::new("", format!("cannot read file: {e}"))))?;
    let mut config: Config = heatscaler_core::yaml::from_str_with_path(&text).map_err(|e| {
        let problem = match e.line {
            Some(line) => format!("{} (line {line})", e.message),
            None => e.message,
        };
        ConfigErrors::one(&name, ConfigError::new(e.path, problem))
    })?;
    if let Some(base) = path.parent() {
        config.resolve_relative_paths(base);
    }
    let under = |e: &ConfigError| {
        e.path == section || e.path.starts_with(&format!("{section}.")) || e.path.starts_with(&format!("{section}["))
    };
    let (ignored, errors): (Vec<_>, Vec<_>) = validate::validate(&config).into_iter().partition(under);
    if !errors.is_empty() {
        return Err(ConfigErrors { source_name: name, errors });
    }
    let ignored = (!ignored.is_empty()).then_some(ConfigErrors { source_name: name, errors: ignored });
    Ok((config, ignored))
}

/// Parses and validates configuration text. `base` resolves relative paths in
/// the file (CA bundles, secret files) against the file's own directory.
pub fn parse(text: &str, source_name: &str, base: Option<&Path>) -> Result<Config, ConfigErrors> {
    if is_empty_document(text) {
        // Every section has defaults, so an empty document would be a valid
        // configuration without node groups or alert sinks. It is what a
        // config-management tool leaves while it rewrites the file, and a
        // reload of it would silently stop scaling: refused everywhere.
        return Err(ConfigErrors::one(
            source_name,
            ConfigError::new(
                "",
                "the file has no settings (empty, only comments, or `null`): refusing it, as a file being rewritten looks like this; write at least one section",
            ),
        ));
    }
    let mut config: Config = heatscaler_core::yaml::from_str_with_path(text).map_err(|e| {
        // The key's own line when the path leads to it: serde's is the
        // enclosing map's for a missing key.
        let problem = match lines::line_of(text, &e.path).or(e.line) {
            Some(line) => format!("{} (line {line})", e.message),
            None => e.message,
        };
        ConfigErrors::one(source_name, ConfigError::new(e.path, problem))
    })?;
    if let Some(base) = base {
        config.resolve_relative_paths(base);
    }
    let mut errors = validate::validate(&config);
    for e in &mut errors {
        if let Some(line) = lines::line_of(text, &e.path) {
            e.problem = format!("{} (line {line})", e.problem);
        }
    }
    if errors.is_empty() { Ok(config) } else { Err(ConfigErrors { source_name: source_name.to_string(), errors }) }
}

/// No YAML content at all: nothing, whitespace, comments, document markers or `null`.
fn is_empty_document(text: &str) -> bool {
    matches!(heatscaler_core::yaml::parse_value(text), Ok(serde_json::Value::Null))
}

impl Config {
    /// What the planner is told: the policy sections, the control-plane
    /// labels, and the pod level's updater when both switches are on.
    pub fn planner_policy(&self) -> heatscaler_core::planner::Policy {
        use heatscaler_core::planner::{Policy, ResizePolicy, Tuning};
        Policy {
            scale_up: self.scale_up.clone(),
            scale_down: self.scale_down.clone(),
            limits: self.cluster_limits.clone(),
            control_plane_labels: self.kubernetes.control_plane_labels.clone(),
            seed: 0,
            tuning: Tuning::default(),
            resize: ResizePolicy {
                enabled: self.pod_resize.enabled && self.pod_resize.updater.enabled,
                updater: self.pod_resize.updater.clone(),
            },
            placement: self.placement_advisor.clone(),
        }
    }
}

/// The default search path for the daemon's configuration file.
pub fn default_path() -> PathBuf {
    PathBuf::from("/etc/heatscaler/heatscaler.yaml")
}

#[cfg(test)]
mod tests;
