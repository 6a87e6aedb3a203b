//! The one place that knows which YAML crate we use.
//!
//! `serde_yaml` is deprecated; `serde_norway` is its maintained fork. Everything
//! else calls these functions, so swapping the crate touches this file only.

use serde::de::DeserializeOwned;

/// A YAML syntax or shape error, with the line and column where the parser saw it.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct YamlError {
    /// Human-readable description, including the location when known.
    pub message: String,
    /// 1-based line of the error, when the parser reported one.
    pub line: Option<usize>,
}

/// Parses `text` into a generic value tree, for callers that walk the document
/// themselves (for example to report the key path of a typed error).
pub fn parse_value(text: &str) -> Result<serde_json::Value, YamlError> {
    from_str(text)
}

/// Deserializes `T` from YAML text.
pub fn from_str<T: DeserializeOwned>(text: &str) -> Result<T, YamlError> {
    serde_norway::from_str(text).map_err(|e| YamlError { line: e.location().map(|l| l.line()), message: e.to_string() })
}

/// Deserializes `T` from YAML text and reports the key path of a typed error
/// (`node-groups[0].min-size: invalid type ...`), which serde alone loses.
pub fn from_str_with_path<T: DeserializeOwned>(text: &str) -> Result<T, PathError> {
    let de = serde_norway::Deserializer::from_str(text);
    serde_path_to_error::deserialize(de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        let message = strip_location(&inner.to_string(), &path);
        PathError {
            path: if path == "." { String::new() } else { path },
            line: inner.location().map(|l| l.line()),
            message,
        }
    })
}

/// A typed deserialization error at a key path.
#[derive(Debug, thiserror::Error)]
#[error("{path}: {message}")]
pub struct PathError {
    /// Dotted key path, `a.b[2].c`; empty for the document root.
    pub path: String,
    /// 1-based line, when known.
    pub line: Option<usize>,
    /// What is wrong, without the location suffix serde_norway adds.
    pub message: String,
}

/// Serializes a value as YAML (used for `check-config --print`, where secrets
/// are already redacted by their type).
pub fn to_string<T: serde::Serialize>(value: &T) -> Result<String, YamlError> {
    serde_norway::to_string(value).map_err(|e| YamlError { line: None, message: e.to_string() })
}

/// serde_norway decorates messages with the path it saw and " at line L column
/// C"; the caller reports both separately.
fn strip_location(message: &str, path: &str) -> String {
    let message = message.strip_prefix(&format!("{path}: ")).unwrap_or(message);
    match message.rfind(" at line ") {
        Some(i) => message[..i].to_string(),
        None => message.to_string(),
    }
}
