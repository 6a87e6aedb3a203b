//! The simulator's modules import each other without a cycle (issue 13): the
//! inputs, then the world, then the components acting on it, then the engine
//! that wires them (crates/sim/src/lib.rs). The compiler accepts cycles
//! between the modules of one crate, so this test reads every `crate::…` and
//! `super::…` path — in `use` items and inline — resolves it to the file
//! that defines it (through `pub use` re-exports), and checks that neither
//! the graph of the crate's top-level modules nor that of its files has a
//! cycle. A child module may use its parent; a parent declaring or
//! re-exporting its children is not a dependency. Test code is left out.
//!
//! A line scanner, not a Rust parser: `syn` with the features it would need
//! rebuilds every proc-macro of the workspace, and the code it reads is
//! rustfmt'd (one `use` item ends at its `;`).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

type ModPath = Vec<String>;

/// Every module of the crate whose `src/` is `src`, by path (the root is `[]`).
fn modules(src: &Path) -> BTreeMap<ModPath, PathBuf> {
    fn walk(dir: &Path, src: &Path, out: &mut BTreeMap<ModPath, PathBuf>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                walk(&path, src, out);
            } else if path.extension().is_some_and(|e| e == "rs") {
                let rel = path.strip_prefix(src).unwrap().with_extension("");
                let mut segs: ModPath = rel.iter().map(|s| s.to_string_lossy().into_owned()).collect();
                if segs.last().is_some_and(|s| s == "mod") {
                    segs.pop();
                }
                if segs == ["lib"] || segs == ["main"] {
                    segs.clear();
                }
                out.insert(segs, path);
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(src, src, &mut out);
    out
}

/// `text` without comments and string literals, and without test code: what
/// follows a `#[cfg(test)]` inline module (test modules close their file),
/// and `#[cfg(test)] mod x;` declarations, whose names are returned.
fn code(text: &str) -> (String, Vec<String>) {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '/' if chars.peek() == Some(&'/') => {
                for c in chars.by_ref() {
                    if c == '\n' {
                        out.push('\n');
                        break;
                    }
                }
            }
            '/' if chars.peek() == Some(&'*') => {
                chars.next();
                let mut last = ' ';
                for c in chars.by_ref() {
                    if last == '*' && c == '/' {
                        break;
                    }
                    last = c;
                }
            }
            '"' => {
                let mut escaped = false;
                for c in chars.by_ref() {
                    if c == '"' && !escaped {
                        break;
                    }
                    escaped = c == '\\' && !escaped;
                }
                out.push_str("\"\"");
            }
            _ => out.push(c),
        }
    }
    let mut kept = String::new();
    let mut test_modules = Vec::new();
    let mut lines = out.lines().peekable();
    while let Some(line) = lines.next() {
        if line.trim() == "#[cfg(test)]"
            && let Some(next) = lines.peek()
        {
            let decl = next.trim().trim_start_matches("pub ").trim_start_matches("pub(crate) ");
            if let Some(name) = decl.strip_prefix("mod ").and_then(|d| d.strip_suffix(';')) {
                test_modules.push(name.trim().to_string());
                lines.next();
                continue;
            }
            if decl.starts_with("mod ") && decl.ends_with('{') {
                break;
            }
        }
        kept.push_str(line);
        kept.push('\n');
    }
    (kept, test_modules)
}

/// The paths a `use` tree names, each with the name it binds:
/// `a::{b, c::{d as e}}` → `a::b` (b), `a::c::d` (e).
fn expand(prefix: &[String], tree: &str, out: &mut Vec<(ModPath, String)>) {
    let tree = tree.trim();
    if let Some(open) = tree.find('{')
        && tree.ends_with('}')
    {
        let mut base = prefix.to_vec();
        base.extend(tree[..open].split("::").map(str::trim).filter(|s| !s.is_empty()).map(String::from));
        let inner = &tree[open + 1..tree.len() - 1];
        let (mut depth, mut start) = (0, 0);
        for (i, c) in inner.char_indices() {
            match c {
                '{' => depth += 1,
                '}' => depth -= 1,
                ',' if depth == 0 => {
                    expand(&base, &inner[start..i], out);
                    start = i + 1;
                }
                _ => {}
            }
        }
        expand(&base, &inner[start..], out);
        return;
    }
    let (tree, alias) = match tree.split_once(" as ") {
        Some((tree, alias)) => (tree, Some(alias.trim())),
        None => (tree, None),
    };
    let mut path = prefix.to_vec();
    path.extend(tree.split("::").map(str::trim).filter(|s| !s.is_empty()).map(String::from));
    if let Some(last) = path.last() {
        let name = alias.unwrap_or(last).to_string();
        out.push((path, name));
    }
}

/// Every path in `code` that starts at `crate` or `super` (or `self`, in a
/// `use` item): the `use` items' trees, expanded, and inline paths.
fn paths(code: &str) -> Vec<ModPath> {
    let mut out = Vec::new();
    let mut rest = code;
    while let Some(at) = find_word(rest, "use") {
        let after = &rest[at + 3..];
        let Some(end) = after.find(';') else { break };
        let mut trees = Vec::new();
        expand(&[], &after[..end], &mut trees);
        out.extend(trees.into_iter().map(|(path, _)| path));
        rest = &after[end..];
    }
    for root in ["crate::", "super::"] {
        let mut from = 0;
        while let Some(at) = code[from..].find(root).map(|i| from + i) {
            from = at + root.len();
            if at > 0 && code[..at].ends_with(|c: char| c.is_alphanumeric() || c == '_' || c == ':') {
                continue;
            }
            let len =
                code[at..].find(|c: char| !(c.is_alphanumeric() || c == '_' || c == ':')).unwrap_or(code.len() - at);
            out.push(code[at..at + len].split("::").filter(|s| !s.is_empty()).map(String::from).collect());
        }
    }
    out.retain(|p| matches!(p[0].as_str(), "crate" | "super" | "self"));
    out
}

/// Where `word` next stands alone in `text`.
fn find_word(text: &str, word: &str) -> Option<usize> {
    let ident = |c: char| c.is_alphanumeric() || c == '_';
    let mut from = 0;
    while let Some(at) = text[from..].find(word).map(|i| from + i) {
        let before = text[..at].chars().next_back();
        let after = text[at + word.len()..].chars().next();
        if !before.is_some_and(ident) && after.is_some_and(char::is_whitespace) {
            return Some(at);
        }
        from = at + word.len();
    }
    None
}

/// The crate's module graph: each module and the modules it uses (itself
/// and its descendants left out), test modules left out.
struct Crate {
    edges: BTreeMap<ModPath, BTreeSet<ModPath>>,
}

impl Crate {
    fn read(src: &Path) -> Self {
        let modules = modules(src);
        let mut code_of = BTreeMap::new();
        let mut tests = BTreeSet::new();
        for (m, file) in &modules {
            let (text, test_modules) = code(&std::fs::read_to_string(file).unwrap());
            for t in test_modules {
                let mut child = m.clone();
                child.push(t);
                tests.insert(child);
            }
            code_of.insert(m.clone(), text);
        }
        // `pub use` re-exports: (module, name) → the path it stands for.
        let mut reexports: BTreeMap<(ModPath, String), ModPath> = BTreeMap::new();
        for (m, text) in &code_of {
            let mut rest = text.as_str();
            while let Some(at) = rest.find("pub use ") {
                let after = &rest[at + 8..];
                let Some(end) = after.find(';') else { break };
                let mut trees = Vec::new();
                expand(&[], &after[..end], &mut trees);
                for (path, name) in trees {
                    reexports.insert((m.clone(), name), path);
                }
                rest = &after[end..];
            }
        }
        let mut edges = BTreeMap::new();
        for (m, text) in &code_of {
            if tests.iter().any(|t| m.starts_with(t)) {
                continue;
            }
            let deps: BTreeSet<ModPath> = paths(text)
                .iter()
                .filter_map(|p| resolve(&modules, &reexports, m, p, 0))
                .filter(|d| !d.starts_with(m))
                .collect();
            edges.insert(m.clone(), deps);
        }
        Crate { edges }
    }

    /// The graph of top-level modules (the root left out).
    fn top_level(&self) -> BTreeMap<ModPath, BTreeSet<ModPath>> {
        let mut graph: BTreeMap<ModPath, BTreeSet<ModPath>> = BTreeMap::new();
        for (m, deps) in &self.edges {
            let Some(top) = m.first() else { continue };
            let entry = graph.entry(vec![top.clone()]).or_default();
            for d in deps.iter().filter_map(|d| d.first()).filter(|d| *d != top) {
                entry.insert(vec![d.clone()]);
            }
        }
        graph
    }

    /// The graph of files (modules), the root left out.
    fn files(&self) -> BTreeMap<ModPath, BTreeSet<ModPath>> {
        self.edges
            .iter()
            .filter(|(m, _)| !m.is_empty())
            .map(|(m, deps)| (m.clone(), deps.iter().filter(|d| !d.is_empty()).cloned().collect()))
            .collect()
    }
}

/// The module `path`, used in module `from`, names (or names an item of):
/// `crate::`, `super::` and `self::` paths, and, for the targets of `pub use`
/// items, paths relative to the re-exporting module. Re-exports are followed
/// to where the item is defined.
fn resolve(
    modules: &BTreeMap<ModPath, PathBuf>,
    reexports: &BTreeMap<(ModPath, String), ModPath>,
    from: &ModPath,
    path: &ModPath,
    hops: usize,
) -> Option<ModPath> {
    let mut at: ModPath = Vec::new();
    let mut segs = path.as_slice();
    match segs.first().map(String::as_str) {
        Some("crate") => segs = &segs[1..],
        Some("super" | "self") => {
            at = from.clone();
            while let Some(first) = segs.first() {
                match first.as_str() {
                    "super" => {
                        at.pop()?;
                    }
                    "self" => {}
                    _ => break,
                }
                segs = &segs[1..];
            }
        }
        // A re-export of a child (`pub use child::Name`) or of another crate.
        _ => at = from.clone(),
    }
    for (i, seg) in segs.iter().enumerate() {
        let mut next = at.clone();
        next.push(seg.clone());
        if modules.contains_key(&next) {
            at = next;
            continue;
        }
        if let Some(target) = reexports.get(&(at.clone(), seg.clone()))
            && hops < 8
        {
            let mut rest = target.clone();
            rest.extend(segs[i + 1..].iter().cloned());
            return resolve(modules, reexports, &at, &rest, hops + 1);
        }
        break;
    }
    Some(at)
}

/// The strongly connected components of more than one module (Tarjan).
fn cycles(graph: &BTreeMap<ModPath, BTreeSet<ModPath>>) -> Vec<Vec<String>> {
    struct State<'g> {
        graph: &'g BTreeMap<ModPath, BTreeSet<ModPath>>,
        index: BTreeMap<&'g ModPath, usize>,
        low: BTreeMap<&'g ModPath, usize>,
        stack: Vec<&'g ModPath>,
        found: Vec<Vec<String>>,
    }
    fn visit<'g>(s: &mut State<'g>, v: &'g ModPath) {
        let i = s.index.len();
        s.index.insert(v, i);
        s.low.insert(v, i);
        s.stack.push(v);
        for w in s.graph.get(v).into_iter().flatten() {
            let Some((w, _)) = s.graph.get_key_value(w) else { continue };
            if !s.index.contains_key(w) {
                visit(s, w);
                let low = s.low[v].min(s.low[w]);
                s.low.insert(v, low);
            } else if s.stack.contains(&w) {
                let low = s.low[v].min(s.index[w]);
                s.low.insert(v, low);
            }
        }
        if s.low[v] == s.index[v] {
            let at = s.stack.iter().position(|x| *x == v).unwrap();
            let component: Vec<String> = s.stack.drain(at..).map(|m| m.join("::")).collect();
            if component.len() > 1 {
                s.found.push(component);
            }
        }
    }
    let mut s = State { graph, index: BTreeMap::new(), low: BTreeMap::new(), stack: Vec::new(), found: Vec::new() };
    for v in graph.keys() {
        if !s.index.contains_key(v) {
            visit(&mut s, v);
        }
    }
    s.found
}

fn show(graph: &BTreeMap<ModPath, BTreeSet<ModPath>>) -> String {
    graph
        .iter()
        .map(|(m, deps)| {
            let deps: Vec<String> = deps.iter().map(|d| d.join("::")).collect();
            format!("  {} -> {}\n", m.join("::"), deps.join(", "))
        })
        .collect()
}

#[test]
fn the_simulator_modules_import_each_other_without_a_cycle() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("crates/sim/src");
    let sim = Crate::read(&src);
    let top = sim.top_level();
    assert!(top.len() > 10 && top.values().filter(|d| !d.is_empty()).count() > 5, "read the crate:\n{}", show(&top));
    assert_eq!(cycles(&top), Vec::<Vec<String>>::new(), "cycles between top-level modules:\n{}", show(&top));
    let files = sim.files();
    assert_eq!(cycles(&files), Vec::<Vec<String>>::new(), "cycles between files:\n{}", show(&files));
    // The shape: components act on the world, which knows none of them.
    let world = vec!["world".to_string()];
    assert!(top[&vec!["engine".to_string()]].contains(&world), "{}", show(&top));
    for component in ["autoscaler", "controllers", "generators", "replay", "scheduler", "recorder"] {
        assert!(!top[&world].contains(&vec![component.to_string()]), "the world uses {component}:\n{}", show(&top));
    }
}

/// The check finds a cycle through `super::`, a re-export and an inline
/// path, and none that comments, strings, test code or a parent's own
/// children would make.
#[test]
fn the_module_graph_check_finds_cycles() {
    let dir = tempfile::tempdir().unwrap();
    let write = |path: &str, text: &str| {
        let file = dir.path().join(path);
        std::fs::create_dir_all(file.parent().unwrap()).unwrap();
        std::fs::write(file, text).unwrap();
    };
    write("lib.rs", "mod a;\nmod b;\nmod c;\npub use c::Thing;\n");
    write("a/mod.rs", "mod inner;\npub use inner::Inner;\nuse crate::b::{self, B as Bee};\npub fn f() {}\n");
    write("a/inner.rs", "use super::super::Thing;\npub struct Inner;\n");
    write(
        "b.rs",
        "pub struct B;\nfn g() {\n    crate::a::f();\n}\n#[cfg(test)]\nmod tests {\n    use crate::c::Other;\n}\n",
    );
    write(
        "c.rs",
        "// use crate::b::B;\npub struct Thing;\nconst S: &str = \"crate::b::B\";\n#[cfg(test)]\nmod tests;\n",
    );
    write("c/tests.rs", "use crate::a::Inner;\n");
    let graph = Crate::read(dir.path());
    let sorted = |mut found: Vec<Vec<String>>| {
        found.iter_mut().for_each(|c| c.sort());
        found
    };
    let top = graph.top_level();
    assert_eq!(sorted(cycles(&top)), vec![vec!["a".to_string(), "b".to_string()]], "{}", show(&top));
    assert!(
        top[&vec!["a".to_string()]].contains(&vec!["c".to_string()]),
        "through the root's re-export:\n{}",
        show(&top)
    );
    assert!(top[&vec!["c".to_string()]].is_empty(), "comments, strings and tests are not imports:\n{}", show(&top));
    let files = graph.files();
    assert_eq!(sorted(cycles(&files)), vec![vec!["a".to_string(), "b".to_string()]], "{}", show(&files));
    assert_eq!(files[&vec!["a".to_string(), "inner".to_string()]], BTreeSet::from([vec!["c".to_string()]]));
}
