#!/usr/bin/env bash
# Builds the Kubernetes control plane the tests run (kube-apiserver,
# kube-controller-manager, kube-scheduler, kubectl) and etcd from their Go
# modules, at the versions pinned in common.sh / gomod/, into
#   ${HEATSCALER_CACHE:-~/.cache/heatscaler}/kubernetes/<version>/bin
#
# One `go build` for all five commands, so the packages they share (client-go,
# apimachinery, apiserver, etcd's client, gRPC...) are compiled once. The build
# goes to a temporary directory that is renamed into place only when complete:
# an interrupted build never leaves a half cache. A second run finds the stamp
# and returns in well under a second.
#
# Knobs (environment):
#   HEATSCALER_CACHE                 cache root (default ~/.cache/heatscaler)
#   HEATSCALER_KUBERNETES_HOME       the install directory itself (default $HEATSCALER_CACHE/kubernetes/<version>)
#   HEATSCALER_BUILD_NICE            niceness of the Go build (default 0)
#   HEATSCALER_KUBERNETES_GOCACHE    Go build cache to keep (default: a temporary one, removed after)
#   GOMODCACHE, GOPROXY              as for any Go build (the modules, ~600 MB, stay in GOMODCACHE)
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=common.sh
. "$here/common.sh"

start=$(date +%s)
log() { echo "install.sh: $*"; }
die() { echo "install.sh: $*" >&2; exit 1; }

command -v go >/dev/null || die "go is not installed (the Kubernetes control plane is built from source with it)"

# The pins in gomod/ must be the ones common.sh names (pin.sh writes both).
grep -q "^require k8s.io/kubernetes v$KUBERNETES_VERSION\b" "$here/gomod/go.mod" ||
    die "gomod/go.mod does not pin k8s.io/kubernetes v$KUBERNETES_VERSION (common.sh); run tests/kubernetes/pin.sh"
grep -q "go.etcd.io/etcd/server/v3 v$ETCD_VERSION\b" "$here/gomod/go.mod" ||
    die "gomod/go.mod does not pin go.etcd.io/etcd/server/v3 v$ETCD_VERSION (common.sh); run tests/kubernetes/pin.sh"

# What the cache holds is a function of these: a change of any rebuilds.
ldflags="-s -w"
for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    ldflags+=" -X $pkg.gitVersion=v$KUBERNETES_VERSION -X $pkg.gitMajor=1"
    ldflags+=" -X $pkg.gitMinor=$(echo "$KUBERNETES_VERSION" | cut -d. -f2) -X $pkg.gitTreeState=clean"
done
key=$( (cat "$here/gomod/go.mod" "$here/gomod/go.sum"; go version; echo "$ldflags"; printf '%s\n' "${KUBERNETES_COMMANDS[@]}") |
    sha256sum | cut -d' ' -f1)

installed() {
    [ "$(cat "$KUBERNETES_HOME/stamp" 2>/dev/null)" = "$key" ] || return 1
    local b
    for b in "${KUBERNETES_BINARIES[@]}"; do [ -x "$KUBERNETES_BIN/$b" ] || return 1; done
}
if installed; then
    log "Kubernetes v$KUBERNETES_VERSION and etcd v$ETCD_VERSION already built in $KUBERNETES_BIN"
    exit 0
fi

# One build at a time per cache (parallel CI jobs, or a test and a developer).
parent=$(dirname "$KUBERNETES_HOME")
mkdir -p "$parent"
exec 9>"$parent/.install.lock"
flock 9
if installed; then
    log "Kubernetes v$KUBERNETES_VERSION built by a concurrent install.sh in $KUBERNETES_BIN"
    exit 0
fi

tmp=$(mktemp -d "$parent/.build-$KUBERNETES_VERSION.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
mkdir "$tmp/src" "$tmp/bin"
cp "$here/gomod/go.mod" "$here/gomod/go.sum" "$tmp/src/"
cd "$tmp/src"

log "building ${KUBERNETES_BINARIES[*]} (Kubernetes v$KUBERNETES_VERSION, etcd v$ETCD_VERSION); about 10 min on 2 cores when nothing is cached"
# The compiled packages (~3 GB) are only worth keeping until the binaries are:
# a private build cache goes with the temp dir unless one is asked for.
export GOCACHE=${HEATSCALER_KUBERNETES_GOCACHE:-$tmp/gocache}
# CGO off, as Kubernetes builds its release binaries: no C toolchain needed.
# -mod=readonly: go.mod and go.sum are pinned; a missing checksum is an error, not a lookup.
if ! CGO_ENABLED=0 nice -n "${HEATSCALER_BUILD_NICE:-0}" go build -mod=readonly -trimpath -ldflags "$ldflags" \
    -o "$tmp/bin/" "${KUBERNETES_COMMANDS[@]}" >"$tmp/build.log" 2>&1; then
    # Say which component could not be fetched or built, with Go's own error.
    echo "install.sh: the build failed; per component:" >&2
    for pkg in "${KUBERNETES_COMMANDS[@]}"; do
        errors=$(go list -mod=readonly -e -deps -f '{{if .Error}}{{.ImportPath}}: {{.Error}}{{end}}' "$pkg" 2>&1 | grep -v '^$' | head -5 || true)
        if [ -n "$errors" ]; then
            printf '  %s: cannot be fetched or loaded:\n%s\n' "$pkg" "$(sed 's/^/    /' <<<"$errors")" >&2
        elif grep -q "^# $pkg\b\|^$pkg" "$tmp/build.log"; then
            printf '  %s: failed to compile (see below)\n' "$pkg" >&2
        else
            printf '  %s: no error of its own\n' "$pkg" >&2
        fi
    done
    echo "install.sh: last lines of the go build output:" >&2
    tail -30 "$tmp/build.log" >&2
    cp "$tmp/build.log" "$parent/build-$KUBERNETES_VERSION.failed.log" 2>/dev/null || true
    die "building Kubernetes v$KUBERNETES_VERSION failed (full log: $parent/build-$KUBERNETES_VERSION.failed.log)"
fi
# go build names a main package after its import path's last element, or the one
# before a major-version suffix: etcd's server/v3 becomes "server".
mv "$tmp/bin/server" "$tmp/bin/etcd"
for b in "${KUBERNETES_BINARIES[@]}"; do
    [ -x "$tmp/bin/$b" ] || die "the build did not produce $b"
done
"$tmp/bin/kube-apiserver" --version | grep -q "v$KUBERNETES_VERSION" || die "kube-apiserver --version does not say v$KUBERNETES_VERSION"
echo "$key" >"$tmp/stamp"
chmod 755 "$tmp"
rm -rf "$tmp/src" "$tmp/gocache"

# Into place: the old directory (a stale build) moves aside first, so the
# final name only ever holds a complete build.
if [ -e "$KUBERNETES_HOME" ]; then
    mv "$KUBERNETES_HOME" "$tmp.old"
fi
mv "$tmp" "$KUBERNETES_HOME"
rm -rf "$tmp.old"
trap - EXIT
log "built Kubernetes v$KUBERNETES_VERSION and etcd v$ETCD_VERSION in $(( $(date +%s) - start ))s into $KUBERNETES_BIN ($(du -sh "$KUBERNETES_BIN" | cut -f1))"
