//! The dependency arrows the compiler cannot check (docs/architecture.md):
//! the compiler refuses a `use` of a crate that is not a dependency, but not
//! a dependency added to the wrong Cargo.toml. `cargo tree` (normal
//! dependencies, features resolved as a build of that package would) shows
//! what each crate really links.

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;

/// Packages that do I/O or speak to Kubernetes or OpenStack: none may be
/// under the core, whose functions must stay pure.
const RUNTIME_AND_CLIENTS: &[&str] = &[
    "tokio",
    "kube",
    "kube-client",
    "kube-runtime",
    "kube-core",
    "k8s-openapi",
    "reqwest",
    "hyper",
    "hyper-util",
    "axum",
    "osauth",
];

/// What only the simulator needs: a daemon built without it links none.
/// (flate2 is not among them: the OpenStack client brings it through
/// reqwest's gzip support, whatever the simulator does.)
const SIMULATOR_ONLY: &[&str] = &["heatscaler-sim", "good_lp", "microlp", "plotters", "csv", "indicatif"];

/// Every package in the normal-dependency closure of `package` built with
/// `features` (extra `cargo tree` arguments).
fn closure(package: &str, features: &[&str]) -> BTreeSet<String> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let out = Command::new(cargo)
        .current_dir(root)
        .args(["tree", "--locked", "--offline", "-e", "normal", "--prefix", "none", "--format", "{p}", "-p", package])
        .args(features)
        .output()
        .expect("run cargo tree");
    assert!(out.status.success(), "cargo tree -p {package} {features:?}: {}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8(out.stdout).unwrap();
    let packages: BTreeSet<String> =
        text.lines().filter_map(|l| l.split_whitespace().next()).map(str::to_string).collect();
    assert!(packages.contains(package), "cargo tree -p {package} printed no tree:\n{text}");
    packages
}

fn assert_none_of(package: &str, features: &[&str], closure: &BTreeSet<String>, forbidden: &[&str]) {
    let found: Vec<&&str> = forbidden.iter().filter(|p| closure.contains(**p)).collect();
    assert!(
        found.is_empty(),
        "{package} {features:?} depends on {found:?}: see `cargo tree -p {package} {} -e normal -i {}`",
        features.join(" "),
        found[0]
    );
}

#[test]
fn the_core_is_pure() {
    let core = closure("heatscaler-core", &[]);
    assert_none_of("heatscaler-core", &[], &core, RUNTIME_AND_CLIENTS);
    assert_none_of("heatscaler-core", &[], &core, SIMULATOR_ONLY);
    for ours in ["heatscaler-daemon", "heatscaler-sim", "kubesim"] {
        assert!(!core.contains(ours), "heatscaler-core depends on {ours}");
    }
}

#[test]
fn the_simulator_builds_on_the_core_alone() {
    let sim = closure("heatscaler-sim", &[]);
    assert!(sim.contains("heatscaler-core"));
    assert_none_of("heatscaler-sim", &[], &sim, &["heatscaler-daemon", "kubesim"]);
    assert_none_of("heatscaler-sim", &[], &sim, RUNTIME_AND_CLIENTS);
}

#[test]
fn the_daemon_without_the_simulator_links_none_of_it() {
    let lean = closure("heatscaler", &["--no-default-features"]);
    assert!(lean.contains("heatscaler-daemon") && lean.contains("heatscaler-core"));
    assert_none_of("heatscaler", &["--no-default-features"], &lean, SIMULATOR_ONLY);
    assert!(!lean.contains("kubesim"), "kubesim is for tests only");
    // The same query sees them in the default build: the check above can fail.
    let full = closure("heatscaler", &[]);
    for package in SIMULATOR_ONLY {
        assert!(full.contains(*package), "the default build has the simulator, so {package}");
    }
}
