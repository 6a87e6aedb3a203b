//! The binary built without the simulator (`cargo test --no-default-features
//! --test standalone`), as installed on masters: `simulate` and `bench` are
//! still commands, and say how to get a build that has them.

use std::process::Command;

#[test]
fn simulate_and_bench_say_how_to_get_the_simulator() {
    for command in [&["simulate", "scenarios/php-apache.yaml", "--json"][..], &["bench", "--only", "memory"]] {
        let out = Command::new(env!("CARGO_BIN_EXE_heatscaler")).args(command).output().expect("run heatscaler");
        assert_eq!(out.status.code(), Some(1), "{command:?}");
        assert!(out.stdout.is_empty());
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains("built without the simulator"), "{stderr}");
        assert!(stderr.contains("--features simulator"), "{stderr}");
    }
}
