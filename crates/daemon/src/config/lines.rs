//! The line of a key path (`node-groups[1].backend.resource`) in the
//! configuration text, so every error — serde's, which points at the
//! enclosing map for a missing key, and the validator's, which has no
//! position at all — names the line to fix.
//!
//! A scan of block-style YAML (what the documented files use): keys by their
//! column, sequence items by their dash. A path it cannot follow (flow style,
//! anchors) has no line rather than a wrong one.

struct Line<'a> {
    no: usize,
    /// Column of the first character (a dash counts).
    indent: usize,
    dash: bool,
    /// Column of the key (after `- ` on an item's first line).
    key_col: usize,
    /// The text from the key on.
    content: &'a str,
}

enum Segment<'a> {
    Key(&'a str),
    Index(usize),
}

fn segments(path: &str) -> Option<Vec<Segment<'_>>> {
    let mut out = Vec::new();
    for part in path.split('.') {
        let (key, mut rest) = part.split_once('[').map_or((part, ""), |(k, r)| (k, r));
        if !key.is_empty() {
            out.push(Segment::Key(key));
        }
        while !rest.is_empty() {
            let (n, after) = rest.split_once(']')?;
            out.push(Segment::Index(n.parse().ok()?));
            rest = after.strip_prefix('[').unwrap_or(after);
        }
    }
    Some(out)
}

fn lines(text: &str) -> Vec<Line<'_>> {
    text.lines()
        .enumerate()
        .filter_map(|(i, raw)| {
            let trimmed = raw.trim_start_matches(' ');
            if trimmed.is_empty() || trimmed.starts_with('#') || trimmed.starts_with("---") {
                return None;
            }
            let indent = raw.len() - trimmed.len();
            let (dash, key_col, content) = match trimmed.strip_prefix("- ") {
                Some(rest) => {
                    let rest_trimmed = rest.trim_start_matches(' ');
                    (true, indent + 2 + (rest.len() - rest_trimmed.len()), rest_trimmed)
                }
                None => (false, indent, trimmed),
            };
            Some(Line { no: i + 1, indent, dash, key_col, content })
        })
        .collect()
}

/// The 1-based line of `path`, when the scan can follow it.
pub(super) fn line_of(text: &str, path: &str) -> Option<usize> {
    let lines = lines(text);
    let (mut lo, mut hi) = (0, lines.len());
    let mut found = None;
    for segment in segments(path)? {
        let first = lines.get(lo).filter(|_| lo < hi)?;
        match segment {
            Segment::Key(key) => {
                let col = first.key_col;
                let i = (lo..hi).find(|&i| {
                    let l = &lines[i];
                    l.key_col == col && l.content.strip_prefix(key).is_some_and(|r| r.starts_with(':'))
                })?;
                found = Some(lines[i].no);
                // The key's block: deeper lines, and a sequence at the key's own column.
                let end = (i + 1..hi)
                    .find(|&j| lines[j].indent < col || (lines[j].indent == col && !lines[j].dash))
                    .unwrap_or(hi);
                (lo, hi) = (i + 1, end);
            }
            Segment::Index(n) => {
                if !first.dash {
                    return None;
                }
                let col = first.indent;
                let i = (lo..hi).filter(|&i| lines[i].dash && lines[i].indent == col).nth(n)?;
                found = Some(lines[i].no);
                let end = (i + 1..hi).find(|&j| lines[j].indent <= col).unwrap_or(hi);
                (lo, hi) = (i, end);
                // The item's own keys start on its dash line.
            }
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::line_of;

    const TEXT: &str = "# comment
kubernetes:
  access: kubeconfig
node-groups:
  - name: a
    stack: s
    backend:
      kind: resource-group
      resource: r
    min-size: 1
  - name: b
    backend: {kind: resource-group}
    max-size: 3
daemon:
  debounce: 10s
list:
- x: 1
- x: 2
";

    #[test]
    fn key_paths_find_their_lines() {
        assert_eq!(line_of(TEXT, "kubernetes.access"), Some(3));
        assert_eq!(line_of(TEXT, "node-groups[0]"), Some(5));
        assert_eq!(line_of(TEXT, "node-groups[0].name"), Some(5));
        assert_eq!(line_of(TEXT, "node-groups[0].backend.resource"), Some(9));
        assert_eq!(line_of(TEXT, "node-groups[0].min-size"), Some(10));
        assert_eq!(line_of(TEXT, "node-groups[1].max-size"), Some(13));
        assert_eq!(line_of(TEXT, "daemon.debounce"), Some(15));
        assert_eq!(line_of(TEXT, "list[1].x"), Some(18));
        // Not there, or inside a flow map: no line rather than a wrong one.
        assert_eq!(line_of(TEXT, "node-groups[1].backend.kind"), None);
        assert_eq!(line_of(TEXT, "node-groups[2]"), None);
        assert_eq!(line_of(TEXT, "daemon.resync-interval"), None);
    }
}
