//! deploy/Containerfile, checked as far as this machine allows (no container
//! engine here): multi-stage, the final stage distroless and non-root with the
//! uid the shipped Deployment runs as, the Rust image at the workspace's
//! `rust-version`, the build the packages use (--locked --no-default-features),
//! and the entrypoint where the manifests and the unit expect the binary.

const CONTAINERFILE: &str = include_str!("../../deploy/Containerfile");
const DEPLOYMENT: &str = include_str!("../../config/kubernetes/deployment.yaml");
const CARGO_TOML: &str = include_str!("../../Cargo.toml");

#[test]
fn the_image_is_multi_stage_distroless_and_non_root_as_the_deployment_expects() {
    let froms: Vec<&str> = CONTAINERFILE.lines().filter(|l| l.starts_with("FROM ")).collect();
    assert_eq!(froms.len(), 2, "a build stage and a runtime stage: {froms:?}");
    let rust_version = CARGO_TOML
        .lines()
        .find_map(|l| l.strip_prefix("rust-version = \""))
        .and_then(|v| v.strip_suffix('"'))
        .expect("rust-version in Cargo.toml");
    assert!(
        froms[0].contains(&format!("rust:{rust_version}-")),
        "build image at rust-version {rust_version}: {}",
        froms[0]
    );
    assert!(froms[1].contains("distroless") && froms[1].ends_with(":nonroot"), "{}", froms[1]);
    assert!(CONTAINERFILE.contains("cargo build --release --locked --no-default-features"));
    // The runtime stage's user is the Deployment's runAsUser.
    let uid =
        DEPLOYMENT.lines().find_map(|l| l.trim().strip_prefix("runAsUser: ")).expect("runAsUser in deployment.yaml");
    let runtime = &CONTAINERFILE[CONTAINERFILE.find(froms[1]).unwrap()..];
    assert!(runtime.contains(&format!("USER {uid}:{uid}")), "non-root as uid {uid}");
    assert!(!runtime.contains("USER root") && !runtime.contains("USER 0"));
    assert!(runtime.contains(r#"ENTRYPOINT ["/usr/local/bin/heatscaler"]"#));
    // The Deployment passes arguments only: the entrypoint is the binary.
    assert!(DEPLOYMENT.contains("args: [--config, /etc/heatscaler/heatscaler.yaml, run"));
    assert!(!DEPLOYMENT.contains("command:"));
}
