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
    check_nesting(text)?;
    serde_norway::from_str(text)
        .map_err(|e| YamlError { line: e.location().map(|l| l.line()), message: hide_values(&e.to_string()) })
}

/// Deserializes `T` from YAML text and reports the key path of a typed error
/// (`node-groups[0].min-size: invalid type ...`), which serde alone loses.
pub fn from_str_with_path<T: DeserializeOwned>(text: &str) -> Result<T, PathError> {
    check_nesting(text).map_err(|e| PathError { path: String::new(), line: e.line, message: e.message })?;
    let de = serde_norway::Deserializer::from_str(text);
    serde_path_to_error::deserialize(de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        let message = hide_values(&strip_location(&inner.to_string(), &path));
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
    serde_norway::to_string(value).map_err(|e| YamlError { line: None, message: hide_values(&e.to_string()) })
}

/// Deepest nesting of flow collections (`[`, `{`) accepted. The YAML parser
/// takes time quadratic in this depth (100,000 levels: minutes of CPU); no
/// file we read needs more than a handful.
pub const MAX_FLOW_DEPTH: usize = 64;

/// Refuses text whose flow collections nest deeper than [`MAX_FLOW_DEPTH`],
/// before the parser sees it. A cheap lexical scan: quoted scalars and
/// comments are skipped; brackets inside plain or block scalars may count, which
/// can only make a pathological file fail earlier.
fn check_nesting(text: &str) -> Result<(), YamlError> {
    #[derive(PartialEq)]
    enum In {
        Plain,
        Single,
        Double,
    }
    let mut state = In::Plain;
    let mut depth = 0usize;
    let mut line = 1usize;
    let mut prev = '\n';
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c == '\n' {
            line += 1;
        }
        let at_token_start = prev.is_whitespace() || matches!(prev, '[' | '{' | ',' | ':');
        match state {
            In::Plain => match c {
                '[' | '{' => {
                    depth += 1;
                    if depth > MAX_FLOW_DEPTH {
                        return Err(YamlError {
                            message: format!(
                                "collections nested deeper than {MAX_FLOW_DEPTH} levels (line {line}); no setting needs that"
                            ),
                            line: Some(line),
                        });
                    }
                }
                ']' | '}' => depth = depth.saturating_sub(1),
                '\'' if at_token_start => state = In::Single,
                '"' if at_token_start => state = In::Double,
                '#' if prev.is_whitespace() => {
                    // A comment runs to the end of the line.
                    for c in chars.by_ref() {
                        if c == '\n' {
                            line += 1;
                            break;
                        }
                    }
                    prev = '\n';
                    continue;
                }
                _ => {}
            },
            In::Single if c == '\'' => state = In::Plain,
            // The escaped character cannot close the scalar.
            In::Double if c == '\\' && chars.next() == Some('\n') => line += 1,
            In::Double if c == '"' => state = In::Plain,
            _ => {}
        }
        prev = c;
    }
    Ok(())
}

/// Removes the values serde quotes in its messages (`invalid type: string
/// "hunter2", expected ...`). A value written where a secret's *source* was
/// expected is the secret itself, and these messages reach logs, alerts and
/// webhook bodies; the key path and line already say where to look.
pub fn hide_values(message: &str) -> String {
    const QUOTED: [&str; 2] = ["string \"", "character `"];
    let mut out = String::with_capacity(message.len());
    let mut rest = message;
    loop {
        let Some((at, prefix)) = QUOTED.iter().filter_map(|p| rest.find(p).map(|i| (i, *p))).min_by_key(|(i, _)| *i)
        else {
            out.push_str(rest);
            return out;
        };
        let close = prefix.chars().last().expect("prefix ends with its quote");
        out.push_str(&rest[..at]);
        out.push_str(if close == '"' { "a string (value not shown)" } else { "a character (value not shown)" });
        let body = &rest[at + prefix.len()..];
        // The value is Debug-escaped: `\"` does not close it.
        let mut escaped = false;
        let mut end = body.len();
        for (i, c) in body.char_indices() {
            match c {
                _ if escaped => escaped = false,
                '\\' => escaped = true,
                c if c == close => {
                    end = i + c.len_utf8();
                    break;
                }
                _ => {}
            }
        }
        rest = &body[end..];
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoted_values_are_hidden_from_messages() {
        let m = hide_values(r#"invalid type: string "Hunter2\"x", expected struct S"#);
        assert_eq!(m, "invalid type: a string (value not shown), expected struct S");
        let e = from_str::<std::collections::BTreeMap<String, u32>>("a: InlineHunter2Secret").unwrap_err();
        assert!(!e.message.contains("Hunter2"), "{}", e.message);
        let e = from_str_with_path::<std::collections::BTreeMap<String, u32>>("a: InlineHunter2Secret").unwrap_err();
        assert!(!e.message.contains("Hunter2"), "{}", e.message);
        assert_eq!(e.path, "a");
    }

    #[test]
    fn deep_flow_nesting_is_refused_quickly_with_its_line() {
        let deep = format!("x: 1\na: {}{}", "[".repeat(100_000), "]".repeat(100_000));
        let started = std::time::Instant::now();
        let e = parse_value(&deep).unwrap_err();
        assert!(e.message.contains("nested deeper than 64"), "{}", e.message);
        assert_eq!(e.line, Some(2));
        assert!(started.elapsed() < std::time::Duration::from_secs(5), "took {:?}", started.elapsed());
        // Brackets in quoted scalars and comments do not count; normal nesting passes.
        let fine = format!(
            "a: '{}'\nb: \"{}\" # {}\nc: [[1, {{d: [2]}}]]\n",
            "[".repeat(100),
            "{".repeat(100),
            "[".repeat(100)
        );
        parse_value(&fine).unwrap();
    }
}
