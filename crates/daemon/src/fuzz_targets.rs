//! Fuzzing of the daemon's parsers of untrusted input (`heatscaler_core::fuzz`):
//! the configuration loader, clouds.yaml, kubeconfig, Heat's API answers and
//! the Kubernetes objects and kubelet answers the observers convert. The
//! corpus is `tests/fuzz-corpus/<target>/`.

use std::path::{Path, PathBuf};

use heatscaler_core::fuzz;
use heatscaler_core::model::Timestamp;

fn corpus_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fuzz-corpus")
}

fn target(name: &str, parse: impl FnMut(&[u8])) {
    fuzz::run(name, &fuzz::corpus(&corpus_root(), name), parse);
}

/// Runs `read` on each input written to a file (for loaders that take a path).
fn file_target(name: &str, read: impl Fn(&Path)) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("input");
    target(name, |input| {
        std::fs::write(&path, input).unwrap();
        read(&path);
    });
}

#[test]
fn fuzz_config_loader() {
    file_target("config", |p| {
        let _ = crate::config::load(p);
    });
}

#[test]
fn fuzz_clouds_yaml_loader() {
    file_target("clouds-yaml", |p| {
        let _ = crate::cloud::clouds_yaml::load("prod", Some(p));
    });
}

#[test]
fn fuzz_kubeconfig_reader() {
    file_target("kubeconfig", |p| {
        let _ = crate::config::kubeconfig::read(p);
    });
}

#[test]
fn fuzz_heat_stack_answer() {
    use crate::cloud::heat::{Stack, parse_status};
    #[derive(serde::Deserialize)]
    struct Body {
        stack: Stack,
    }
    target("heat-stack", |input| {
        if let Ok(b) = serde_json::from_slice::<Body>(input) {
            let s = b.stack;
            let _ = (s.reference(), s.in_progress(), s.parameter("number_of_minions"), s.output("a"));
            let _ = parse_status(&s.stack_status);
        }
    });
}

#[test]
fn fuzz_heat_resources_answer() {
    use crate::cloud::heat::Resource;
    #[derive(serde::Deserialize)]
    struct Body {
        resources: Vec<Resource>,
    }
    target("heat-resources", |input| {
        if let Ok(b) = serde_json::from_slice::<Body>(input) {
            for r in &b.resources {
                let _ = (r.stack(), r.nested_stack(), r.in_progress(), r.physical_id());
                let _ = crate::cloud::heat::parse_status(&r.resource_status);
            }
        }
    });
}

#[test]
fn fuzz_kubernetes_pod() {
    target("kube-pod", |input| {
        if let Ok(p) = serde_json::from_slice::<k8s_openapi::api::core::v1::Pod>(input) {
            let _ = crate::observe::convert::pod(&p);
        }
        // As the pod watch decodes it.
        if let Ok(p) = serde_json::from_slice::<crate::observe::slim::Pod>(input) {
            let _ = crate::observe::convert::pod(&p.into_api());
        }
    });
}

#[test]
fn fuzz_kubernetes_node() {
    target("kube-node", |input| {
        if let Ok(n) = serde_json::from_slice::<k8s_openapi::api::core::v1::Node>(input) {
            let _ = crate::observe::convert::node(&n);
        }
        if let Ok(n) = serde_json::from_slice::<crate::observe::slim::Node>(input) {
            let _ = crate::observe::convert::node(&n.into_api());
        }
    });
}

#[test]
fn fuzz_kubernetes_pdb() {
    target("kube-pdb", |input| {
        if let Ok(p) = serde_json::from_slice::<k8s_openapi::api::policy::v1::PodDisruptionBudget>(input) {
            let _ = crate::observe::convert::pdb(&p);
        }
    });
}

#[test]
fn fuzz_kubelet_summary() {
    target("kubelet-summary", |input| {
        if let Ok(s) = crate::usage::summary::parse(input) {
            let _ = s.readings();
        }
    });
}

#[test]
fn fuzz_kubelet_cadvisor() {
    target("kubelet-cadvisor", |input| {
        let _ = crate::usage::cadvisor::parse(input, Timestamp::now());
    });
}
