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

# rustfmt and clippy are rustup components a toolchain may lack. Without one the
# suite says so, loudly, at the step and again at the end, and runs the tests anyway.
not_checked=()
missing() { # component, what is not checked
    echo "tests/run.sh: $1 is not installed (rustup component add $1): $2 NOT checked" >&2
    not_checked+=("$2 ($1 missing)")
}

step "cargo fmt --check"
if cargo fmt --version >/dev/null 2>&1; then
    cargo fmt --all -- --check
else
    missing rustfmt "formatting"
fi

step "cargo clippy -D warnings"
if cargo clippy --version >/dev/null 2>&1; then
    cargo clippy --workspace --all-targets --locked -- -D warnings
    # The binary as installed: without the simulator (docs/decisions.md).
    cargo clippy -p heatscaler --no-default-features --all-targets --locked -- -D warnings
else
    missing clippy "lints"
fi

step "cargo test"
cargo test --workspace --locked

step "the binary without the simulator"
cargo test -p heatscaler --no-default-features --locked --test standalone

step "the Debian package: build and check its contents and unit (tools/check-deb.sh)"
tools/check-deb.sh

step "the real VPA recommender's harness (tools/vpa-replay, docs/peers.md)"
tools/vpa-replay/run.sh test

step "done"
if [ ${#not_checked[@]} -gt 0 ]; then
    printf 'tests/run.sh: the tests passed, but NOT checked: %s\n' "${not_checked[@]}" >&2
fi
