#!/usr/bin/env bash
# The whole test suite, from a fresh clone on a Debian machine with a Rust toolchain:
# installs what the tests need (RabbitMQ, a Keystone + Heat virtualenv, systemd-analyze),
# then checks formatting and lints and runs every test. CI runs exactly this (.ci/run).
#
# Tests that need OpenStack start their own Keystone + Heat on loopback and stop it
# when they end; nothing is left running (tests/support/openstack.rs). The test
# binaries and what each needs: docs/architecture.md.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

step() { printf '\n== %s (%s)\n' "$1" "$(date +%T)"; }

step "install test dependencies"
tests/install-deps.sh

step "cargo fmt --check"
cargo fmt --all -- --check

step "cargo clippy -D warnings"
cargo clippy --workspace --all-targets --locked -- -D warnings
# The binary as installed: without the simulator (docs/decisions.md).
cargo clippy -p heatscaler --no-default-features --all-targets --locked -- -D warnings

step "cargo test"
cargo test --workspace --locked

step "the binary without the simulator"
cargo test -p heatscaler --no-default-features --locked --test standalone

step "the real VPA recommender's harness (tools/vpa-replay, docs/peers.md)"
tools/vpa-replay/run.sh test

step "done"
