#!/usr/bin/env bash
# vpa-replay: the real VPA recommender (Go module pinned in go.mod) replayed on a CSV.
#
#   tools/vpa-replay/run.sh gentd26-compare [OUTDIR] [--heatscaler BIN | --sim SIM.json]
#                                           [--peer PEER.csv] [--peer-closed PEER.csv] [--every 1m]
#       the whole GenTD26 comparison (docs/peers.md): convert the bundled trace as the
#       simulator does and replay it through VPA's recommender (open loop); run the
#       vpa-defaults peer's loop with VPA's recommender deciding (closed loop), and with
#       --heatscaler (runs `BIN simulate --json`) or --sim hold its totals against the
#       simulator's; with --peer/--peer-closed compare the peer's own series with VPA's
#   tools/vpa-replay/run.sh replay|gentd26|compare|frontier|version ARGS...
#       build if needed, then run that subcommand (README.md)
#   tools/vpa-replay/run.sh build     build if needed; print the binary's path
#   tools/vpa-replay/run.sh test      the short tests (`go test -short`), for CI
#
# The binary is built once per VPA version and source hash into
#   ${HEATSCALER_CACHE:-$HOME/.cache/heatscaler}/vpa-replay/<vpa-version>-<hash>/vpa-replay
# (built in a temporary directory, then renamed into place), under `nice -n 15`.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
cache_root="${HEATSCALER_CACHE:-$HOME/.cache/heatscaler}/vpa-replay"
module=k8s.io/autoscaler/vertical-pod-autoscaler

fail() {
	echo "run.sh: $*" >&2
	exit 1
}

# step NAME COMMAND...: runs COMMAND; on failure names the step and its exit code.
step() {
	local name="$1"
	shift
	local rc=0
	"$@" || rc=$?
	if [ "$rc" -ne 0 ]; then
		fail "step '$name' failed (exit $rc): $*"
	fi
}

vpa_version() {
	awk -v m="$module" '$1 == m { print $2; exit } $1 == "require" && $2 == m { print $3; exit }' "$here/go.mod"
}

# The cache key: the VPA version, and a hash of go.mod, go.sum, the non-test
# sources and the Go toolchain's version.
build_key() {
	local v h
	v="$(vpa_version)"
	[ -n "$v" ] || fail "step 'read go.mod' failed: no $module requirement in $here/go.mod"
	command -v go >/dev/null || fail "step 'find go' failed: no go command on PATH (Go 1.26 is needed)"
	h="$( (
		cd "$here"
		go version
		cat go.mod go.sum
		for f in $(ls -- *.go | grep -v '_test\.go$' | LC_ALL=C sort); do
			echo "== $f"
			cat "$f"
		done
	) | sha256sum | cut -c1-16)"
	echo "$v-$h"
}

build() {
	local key dir tmp
	key="$(build_key)"
	dir="$cache_root/$key"
	if [ -x "$dir/vpa-replay" ]; then
		echo "$dir/vpa-replay"
		return
	fi
	step "create cache directory $cache_root" mkdir -p "$cache_root"
	tmp="$(mktemp -d "$cache_root/.build-$key.XXXXXX")"
	chmod 755 "$tmp"
	echo "run.sh: building vpa-replay ($module $key) into $dir" >&2
	local rc=0
	(cd "$here" && GOFLAGS="-mod=readonly -buildvcs=false" nice -n 15 go build -trimpath -o "$tmp/vpa-replay" .) || rc=$?
	if [ "$rc" -ne 0 ]; then
		rm -rf "$tmp"
		fail "step 'go build' failed (exit $rc) in $here"
	fi
	if ! mv -T "$tmp" "$dir" 2>/dev/null; then
		rm -rf "$tmp" # another build got there first
		[ -x "$dir/vpa-replay" ] || fail "step 'install into cache' failed: cannot rename $tmp to $dir"
	fi
	echo "$dir/vpa-replay"
}

gentd26_compare() {
	local out="" peer="" peer_closed="" sim="" heatscaler="" every="1m"
	while [ $# -gt 0 ]; do
		case "$1" in
		--peer) peer="$2"; shift 2 ;;
		--peer-closed) peer_closed="$2"; shift 2 ;;
		--sim) sim="$2"; shift 2 ;;
		--heatscaler) heatscaler="$2"; shift 2 ;;
		--every) every="$2"; shift 2 ;;
		-*) fail "gentd26-compare: unknown option $1" ;;
		*) out="$1"; shift ;;
		esac
	done
	out="${out:-$repo/target/vpa-replay}"
	local trace="$repo/scenarios/traces/alibaba-gentd26/pod_memory_util_anon.part-a.csv.gz"
	[ -f "$trace" ] || fail "step 'find trace' failed: $trace is missing"
	step "create output directory $out" mkdir -p "$out"
	local bin
	bin="$(build)" || exit 1
	echo "run.sh: VPA $("$bin" version); outputs in $out" >&2
	if [ -n "$heatscaler" ]; then
		[ -x "$heatscaler" ] || fail "step 'find heatscaler' failed: $heatscaler is not an executable"
		sim="$out/simulate.json"
		echo "run.sh: heatscaler simulate --trace alibaba-gentd26:... --json > $sim" >&2
		step "run the simulator (heatscaler simulate --json)" \
			bash -c "nice -n 15 '$heatscaler' simulate --trace 'alibaba-gentd26:$trace' --json > '$sim'"
	fi
	step "convert the GenTD26 trace (vpa-replay gentd26)" \
		"$bin" gentd26 -o "$out/gentd26-input.csv" "$trace"
	step "replay through VPA's recommender (vpa-replay replay)" \
		"$bin" replay -q -every "$every" -o "$out/vpa.csv" "$out/gentd26-input.csv"
	local check=()
	[ -z "$sim" ] || check=(-check-sim "$sim")
	step "the peer's closed loop with VPA's recommender (vpa-replay gentd26 -closed-loop)" \
		"$bin" gentd26 -closed-loop -recs "$out/vpa-closed.csv" -totals "$out/totals.json" "${check[@]}" \
		-o "$out/gentd26-closed-input.csv" "$trace"
	if [ -n "$peer" ]; then
		[ -f "$peer" ] || fail "step 'read the peer's series' failed: $peer is missing"
		step "compare the peer with VPA, open loop (vpa-replay compare)" \
			"$bin" compare -evict-request 17179869184 -diffs "$out/diffs.csv" "$out/vpa.csv" "$peer" | tee "$out/comparison.txt"
	fi
	if [ -n "$peer_closed" ]; then
		[ -f "$peer_closed" ] || fail "step 'read the peer's closed-loop series' failed: $peer_closed is missing"
		step "compare the peer with VPA, closed loop (vpa-replay compare)" \
			"$bin" compare -diffs "$out/diffs-closed.csv" "$out/vpa-closed.csv" "$peer_closed" | tee "$out/comparison-closed.txt"
	fi
	if [ -z "$peer$peer_closed" ]; then
		echo "run.sh: no --peer series: VPA's recommendations are in $out/vpa.csv (open loop) and $out/vpa-closed.csv (closed loop); docs/peers.md says how to get the peer's" >&2
	fi
}

cmd="${1:-}"
[ -n "$cmd" ] || { sed -n '2,/^set -euo/p' "$0" | grep '^#' | sed 's/^# \{0,1\}//'; exit 2; }
shift
case "$cmd" in
build) build ;;
test)
	command -v go >/dev/null || fail "step 'find go' failed: no go command on PATH"
	step "go test -short" bash -c "cd '$here' && GOFLAGS='-mod=readonly -buildvcs=false' nice -n 15 go test -short -count=1 ./..."
	;;
gentd26-compare) gentd26_compare "$@" ;;
replay | gentd26 | compare | frontier | version)
	bin="$(build)" || exit 1
	exec "$bin" "$cmd" "$@"
	;;
*) fail "unknown command '$cmd' (build, test, gentd26-compare, replay, gentd26, compare, frontier, version)" ;;
esac
