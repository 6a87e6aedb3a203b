#!/usr/bin/env bash
# Records `simulate --json` (and stderr, exit code, plots) of every bundled scenario and of
# the trace replays the docs cite, so two builds can be compared byte for byte:
#
#   tools/record-simulations.sh OLD/target/release/heatscaler /tmp/before
#   tools/record-simulations.sh target/release/heatscaler /tmp/after
#   diff -r /tmp/before /tmp/after          # no output: no behaviour change
#
# The only wall-clock figure in the JSON, the LP solver's `lp_seconds`, is masked; everything
# else is deterministic. Run from a checkout's root (it reads scenarios/ there). Needs python3.
set -uo pipefail
BIN=$1 OUT=$2
mkdir -p "$OUT"
mask() { python3 -c '
import json, sys
def m(o):
    if isinstance(o, dict):
        return {k: ("<wall time, masked>" if k == "lp_seconds" else m(v)) for k, v in o.items()}
    if isinstance(o, list):
        return [m(x) for x in o]
    return o
text = sys.stdin.read()
print(json.dumps(m(json.loads(text)), indent=2) if text.strip() else "", end="")'; }
run() { # name, simulate arguments...
    local name=$1
    shift
    "$BIN" simulate "$@" --json 2>"$OUT/$name.stderr" | mask >"$OUT/$name.json"
    echo "exit ${PIPESTATUS[0]}" >>"$OUT/$name.stderr"
}
run embedded-default
for f in scenarios/*.yaml; do
    run "$(basename "$f" .yaml)" "$f"
done
T=scenarios/traces/alibaba-gpu-v2023
G=scenarios/traces/alibaba-gentd26/pod_memory_util_anon.part-a.csv.gz
run openb-last30 --trace alibaba-openb:$T/openb_pod_list_default.csv \
    --node-groups alibaba-openb:$T/openb_node_list_all_node.csv --from 10310960s --to 12902960s \
    --plot "$OUT/openb-last30.svg"
run openb-before30 --trace alibaba-openb:$T/openb_pod_list_default.csv \
    --node-groups alibaba-openb:$T/openb_node_list_all_node.csv --from 7718960s --to 10310960s
run gentd26-all --trace alibaba-gentd26:$G
run gentd26-even --trace alibaba-gentd26:$G --containers even
run gentd26-odd --trace alibaba-gentd26:$G --containers odd
# docs/unified.md: heatscaler as installed (its webhook on), without its webhook, its node level
# alone, and CA + VPA.
U=heatscaler,heatscaler-no-webhook,heatscaler-node-level,ca-defaults
run gentd26-unified-all --trace alibaba-gentd26:$G --policy $U
run gentd26-unified-even --trace alibaba-gentd26:$G --containers even --policy $U
run gentd26-unified-odd --trace alibaba-gentd26:$G --containers odd --policy $U
run diurnal-week-plot scenarios/diurnal-week.yaml --plot "$OUT/diurnal-week.svg"
