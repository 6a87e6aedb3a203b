//! `heatscaler config from-ca`: a cluster-autoscaler (Magnum) Deployment's
//! flags become a configuration `check-config` accepts once its stack is
//! named, and every flag is accounted for — converted (named in the YAML) or
//! listed on stderr with why.

use std::process::Command;

const DEPLOYMENT: &str = r#"apiVersion: apps/v1
kind: Deployment
metadata: {name: cluster-autoscaler, namespace: kube-system}
spec:
  template:
    spec:
      containers:
        - name: cluster-autoscaler
          image: registry.k8s.io/autoscaling/cluster-autoscaler:v1.30.0
          command: [./cluster-autoscaler]
          args:
            - --cloud-provider=magnum
            - --cloud-config=/config/cloud-config
            - --nodes=1:10:default-worker
            - --scale-down-unneeded-time=5m
            - --scale-down-unready-time=30m
            - --scale-down-utilization-threshold=0.6
            - --scale-down-delay-after-add
            - 15m
            - --max-graceful-termination-sec=600
            - --expander=least-waste
            - --cores-total=0:320
            - --max-node-provision-time=20m
            - --balance-similar-node-groups
            - --balancing-ignore-label=example.com/rack
            - --balancing-ignore-label=example.com/pdu
            - --max-total-unready-percentage=33
            - --ok-total-unready-count=5
            - --v=4
            - --leader-elect=false
            - --frobnicate=1
"#;

#[test]
fn a_cluster_autoscaler_deployment_becomes_a_configuration_and_no_flag_is_dropped_silently() {
    let dir = tempfile::tempdir().unwrap();
    let ca = dir.path().join("ca.yaml");
    std::fs::write(&ca, DEPLOYMENT).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_heatscaler")).args(["config", "from-ca"]).arg(&ca).output().unwrap();
    let (stdout, stderr) = (String::from_utf8(out.stdout).unwrap(), String::from_utf8(out.stderr).unwrap());
    assert!(out.status.success(), "{stderr}");

    let config = heatscaler_core::yaml::parse_value(&stdout).unwrap_or_else(|e| panic!("not YAML ({e}):\n{stdout}"));
    assert_eq!(config["scale-down"]["unneeded-time"], "5m");
    assert_eq!(config["scale-down"]["unready-time"], "30m");
    assert_eq!(config["scale-down"]["utilization-threshold"], 0.6);
    assert_eq!(config["scale-down"]["delay-after-add"], "15m", "a flag and its value as two words");
    assert_eq!(config["scale-down"]["max-graceful-termination"], "600s");
    assert_eq!(config["scale-up"]["expander"], "least-waste");
    assert_eq!(config["scale-up"]["max-node-provision-time"], "20m");
    assert_eq!(config["cluster-limits"]["max-cores-total"], 320);
    assert_eq!(config["leader-election"]["enabled"], false);
    assert_eq!(config["scale-up"]["balance-similar-node-groups"], true);
    assert_eq!(
        config["scale-up"]["balancing-ignore-labels"],
        serde_json::json!(["example.com/rack", "example.com/pdu"])
    );
    assert_eq!(config["cluster-limits"]["max-total-unready-percentage"], 33);
    assert_eq!(config["cluster-limits"]["ok-total-unready-count"], 5);
    let group = &config["node-groups"][0];
    assert_eq!(
        (group["name"].as_str(), group["min-size"].as_u64(), group["max-size"].as_u64()),
        (Some("default-worker"), Some(1), Some(10))
    );

    // Every flag: named in the YAML or listed as not converted.
    for word in DEPLOYMENT.lines().filter_map(|l| l.trim().strip_prefix("- --")) {
        let flag = word.split('=').next().unwrap();
        assert!(
            stdout.contains(&format!("# --{flag}")) || stderr.contains(&format!("--{flag}:")),
            "--{flag} dropped silently\n{stdout}\n{stderr}"
        );
    }
    for unconverted in ["frobnicate", "cloud-config"] {
        assert!(stderr.contains(&format!("--{unconverted}:")), "{stderr}");
    }

    // With the stack named and credentials in the environment, check-config accepts it.
    let config = dir.path().join("heatscaler.yaml");
    std::fs::write(&config, stdout.replace("stack: SET-ME", "stack: k8s-prod")).unwrap();
    let check = Command::new(env!("CARGO_BIN_EXE_heatscaler"))
        .arg("--config")
        .arg(&config)
        .arg("check-config")
        .env("OS_AUTH_URL", "https://keystone.example:5000/v3")
        .output()
        .unwrap();
    assert!(check.status.success(), "{}", String::from_utf8_lossy(&check.stderr));
}
