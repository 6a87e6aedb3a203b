#!/usr/bin/env bash
# Builds the Debian package (tools/build-deb.sh, debug profile: it reuses the
# test suite's build) and checks what an operator gets from it:
#   - control fields (dpkg-deb -I): name, architecture, dependencies found by
#     dpkg-shlibdeps, the configuration as a conffile;
#   - contents (dpkg-deb -c): the binary in /usr/bin, the unit, the example
#     configuration in /etc, every man page gzipped, the completions, the
#     manifests and the kubeconfig script;
#   - the maintainer scripts reload systemd but neither enable nor start the
#     service (the example configuration names no real stack);
#   - the installed tree: the binary runs and is the one without the
#     simulator, the unit names /usr/bin only, and `systemd-analyze verify`
#     accepts it with the package's man page (its Documentation=man:heatscaler(8)).
# Exits non-zero on the first problem, naming it. (cargo-deb warns that the
# dev profile is meant for releases only; the check uses it anyway so that it
# adds seconds, not a release build, to tests/run.sh. Releases: build-deb.sh.)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

fail() { echo "check-deb: $*" >&2; exit 1; }

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
deb=$(tools/build-deb.sh --profile dev --output "$work/out")
[ -f "$deb" ] || fail "no package built"
echo "check-deb: $deb"

info=$(dpkg-deb -I "$deb")
field() { dpkg-deb -f "$deb" "$1"; }
[ "$(field Package)" = heatscaler ] || fail "Package is $(field Package)"
[ "$(field Architecture)" = "$(dpkg --print-architecture)" ] || fail "Architecture is $(field Architecture)"
[ "$(field Section)" = admin ] || fail "Section is $(field Section)"
field Depends | grep -q 'libc6' || fail "Depends lacks libc6 (dpkg-shlibdeps): $(field Depends)"
dpkg-deb --ctrl-tarfile "$deb" | tar -xO ./conffiles | grep -qx /etc/heatscaler/heatscaler.yaml \
    || fail "/etc/heatscaler/heatscaler.yaml is not a conffile"
echo "$info" | grep -q 'postinst' || fail "no postinst (systemd daemon-reload)"

contents=$(dpkg-deb -c "$deb" | awk '{print $6}')
has() { grep -qx "$1" <<<"$contents" || fail "the package lacks $1"; }
has ./usr/bin/heatscaler
has ./etc/heatscaler/heatscaler.yaml
has ./usr/share/doc/heatscaler/examples/heatscaler.yaml
unit=$(grep -E '^\./(usr/)?lib/systemd/system/heatscaler\.service$' <<<"$contents") || fail "the package lacks the unit"
has ./usr/share/man/man8/heatscaler.8.gz
has ./usr/share/man/man8/heatscaler-run.8.gz
has ./usr/share/man/man8/heatscaler-check-config.8.gz
has ./usr/share/bash-completion/completions/heatscaler
has ./usr/share/zsh/vendor-completions/_heatscaler
has ./usr/share/fish/vendor_completions.d/heatscaler.fish
has ./usr/share/heatscaler/systemd/heatscaler-kubeconfig.sh
has ./usr/share/heatscaler/kubernetes/rbac.yaml
has ./usr/share/heatscaler/kubernetes/kubelet-direct/rbac.yaml
if grep -q '\.8$' <<<"$contents"; then fail "a man page is not gzipped"; fi

mkdir "$work/ctrl"
dpkg-deb -e "$deb" "$work/ctrl"
# debhelper's fragments with enable/start off: an upgrade re-enables only a
# unit the administrator had enabled (was-enabled) and try-restarts only a
# running one; a fresh install neither enables nor starts it.
if grep -Eq 'deb-systemd-invoke (start|restart) ' "$work/ctrl"/* 2>/dev/null; then
    fail "the maintainer scripts start the service"
fi
if grep -q 'deb-systemd-helper enable' "$work/ctrl/postinst" && ! grep -q 'was-enabled' "$work/ctrl/postinst"; then
    fail "postinst enables the service unconditionally"
fi
grep -q 'daemon-reload' "$work/ctrl/postinst" || fail "postinst does not reload systemd"

root="$work/root"
dpkg-deb -x "$deb" "$root"
version=$("$root/usr/bin/heatscaler" --version) || fail "the binary does not run"
grep -q '^heatscaler ' <<<"$version" || fail "unexpected --version: $version"
simulate=$("$root/usr/bin/heatscaler" simulate 2>&1 || true)
grep -q 'without the simulator' <<<"$simulate" \
    || fail "the packaged binary has the simulator (built with default features?)"
grep -q /usr/local "$root/$unit" && fail "the unit names /usr/local"
gzip -t "$root"/usr/share/man/man8/*.gz || fail "a man page is not valid gzip"
zcat "$root/usr/share/man/man8/heatscaler.8.gz" | grep -q '^\.TH' || fail "heatscaler.8 is not a man page"

if command -v systemd-analyze >/dev/null; then
    # verify checks that every Exec*= program exists and that man finds
    # Documentation=man:heatscaler(8): the package's own tree provides both.
    sed "s|/usr/bin/heatscaler|$root/usr/bin/heatscaler|g" "$root/$unit" >"$work/heatscaler.service"
    out=$(MANPATH="$root/usr/share/man" systemd-analyze verify "$work/heatscaler.service" 2>&1) \
        || fail "systemd-analyze verify failed: $out"
    [ -z "$out" ] || fail "systemd-analyze verify complained: $out"
    echo "check-deb: systemd-analyze verify: clean"
else
    echo "check-deb: systemd-analyze not found: the unit was NOT verified" >&2
fi
echo "check-deb: ok ($(du -h "$deb" | cut -f1), $(wc -l <<<"$contents") paths)"
