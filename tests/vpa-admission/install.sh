#!/usr/bin/env bash
# Builds VPA's admission controller (k8s.io/autoscaler/vertical-pod-autoscaler
# v1.8.1, pkg/admission-controller, upstream's code unchanged) from its Go
# module into
#   ${HEATSCALER_CACHE:-~/.cache/heatscaler}/vpa/<version>/bin/admission-controller
# for the end-to-end scenarios where a recreated pod must come back with
# heatscaler's recommendation (tests/openstack/unified.rs): heatscaler ships
# no admission controller, it relies on VPA's (docs/pod-resizing.md).
#
# go.mod / go.sum here are VPA v1.8.1's own (same requirements and excludes,
# so the build is the one upstream releases), under another module name
# because `go install pkg@version` refuses a module with exclude directives.
# A second run finds the stamp and returns at once.
#
# Knobs: HEATSCALER_CACHE, HEATSCALER_BUILD_NICE (default 0), GOMODCACHE, GOPROXY.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
VPA_VERSION=1.8.1
home=${HEATSCALER_CACHE:-$HOME/.cache/heatscaler}/vpa/$VPA_VERSION
bin=$home/bin/admission-controller
log() { echo "vpa-admission/install.sh: $*"; }

command -v go >/dev/null || { echo "vpa-admission/install.sh: go is not installed" >&2; exit 1; }
grep -q "^	k8s.io/autoscaler/vertical-pod-autoscaler v$VPA_VERSION " "$here/go.mod" ||
    { echo "vpa-admission/install.sh: go.mod does not pin VPA v$VPA_VERSION" >&2; exit 1; }
key=$( (cat "$here/go.mod" "$here/go.sum"; go version) | sha256sum | cut -d' ' -f1)
if [ "$(cat "$home/stamp" 2>/dev/null)" = "$key" ] && [ -x "$bin" ]; then
    log "VPA admission controller v$VPA_VERSION already built: $bin"
    exit 0
fi
mkdir -p "$home/bin"
exec 9>"$home/.install.lock"
flock 9
start=$(date +%s)
tmp=$(mktemp "$home/bin/.admission-controller.XXXXXX")
(cd "$here" && nice -n "${HEATSCALER_BUILD_NICE:-0}" go build -mod=readonly -trimpath -ldflags "-s -w" -o "$tmp" \
    k8s.io/autoscaler/vertical-pod-autoscaler/pkg/admission-controller)
mv "$tmp" "$bin"
echo "$key" > "$home/stamp"
log "built $bin in $(( $(date +%s) - start )) s"
