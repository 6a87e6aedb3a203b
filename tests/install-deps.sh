#!/usr/bin/env bash
# Installs everything the test suite needs beyond the Rust toolchain. Idempotent.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"

# systemd-analyze, to verify config/systemd/heatscaler.service (tests/standalone/systemd_unit.rs).
if ! command -v systemd-analyze >/dev/null; then
    echo "install-deps: installing systemd (for systemd-analyze)"
    $sudo apt-get install -y --no-install-recommends systemd >/tmp/heatscaler-apt-systemd.log 2>&1 || {
        $sudo apt-get update >>/tmp/heatscaler-apt-systemd.log 2>&1
        $sudo apt-get install -y --no-install-recommends systemd >>/tmp/heatscaler-apt-systemd.log 2>&1
    }
fi

# Debian's prometheus package: promtool, to check deploy/prometheus-rules.yaml
# (tests/daemon/dashboards.rs), and the server the mesh tests start to scrape the
# test mesh's exporter (tests/support/mesh.rs; bookworm ships 2.42).
if ! command -v promtool >/dev/null || ! [ -x /usr/bin/prometheus ]; then
    echo "install-deps: installing prometheus (promtool, and the server for the mesh tests)"
    $sudo apt-get install -y --no-install-recommends prometheus >/tmp/heatscaler-apt-prometheus.log 2>&1 || {
        $sudo apt-get update >>/tmp/heatscaler-apt-prometheus.log 2>&1
        $sudo apt-get install -y --no-install-recommends prometheus >>/tmp/heatscaler-apt-prometheus.log 2>&1
    }
fi

# dpkg-dev (dpkg-shlibdeps, for the package's Depends) and the pinned cargo-deb, for
# tools/check-deb.sh. cargo-deb is built once into a cache (a few minutes cold, < 1 s warm).
if ! command -v dpkg-shlibdeps >/dev/null; then
    echo "install-deps: installing dpkg-dev (for dpkg-shlibdeps)"
    $sudo apt-get install -y --no-install-recommends dpkg-dev >/tmp/heatscaler-apt-dpkg-dev.log 2>&1 || {
        $sudo apt-get update >>/tmp/heatscaler-apt-dpkg-dev.log 2>&1
        $sudo apt-get install -y --no-install-recommends dpkg-dev >>/tmp/heatscaler-apt-dpkg-dev.log 2>&1
    }
fi
tools/install-cargo-deb.sh >/dev/null

# RabbitMQ + Keystone + Heat (the tests in tests/openstack/).
tests/openstack/install.sh

# Kubernetes 1.35 control plane + etcd, built from their Go modules into a cache
# (tests/kubernetes/main.rs and the end-to-end tests in tests/openstack/). ~9 min cold, <1 s warm.
tests/kubernetes/install.sh

# VPA's admission controller v1.8.1, built unchanged from its Go module into a cache (the
# end-to-end scenario where a recreated pod comes back at its recommendation, tests/openstack/unified.rs).
tests/vpa-admission/install.sh
