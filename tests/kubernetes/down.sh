#!/usr/bin/env bash
# Stops what tests/kubernetes/up.sh started in DIR (and an emulator a test
# harness recorded in DIR/run). Leaves DIR's files (logs) in place. Safe to
# call twice, or on a DIR where nothing runs.
set -uo pipefail
[ $# -eq 1 ] || { echo "usage: $0 DIR" >&2; exit 2; }
DIR=$1
[ -d "$DIR/run" ] || exit 0

# Clients first, etcd last (the API server writes to it until it stops).
order="kubelet-emu kube-scheduler kube-controller-manager kube-apiserver etcd"
for name in $order; do
    pidfile="$DIR/run/$name.pid"
    [ -s "$pidfile" ] || continue
    # Each component leads its own session (setsid in up.sh): signal the group.
    kill -TERM -- "-$(cat "$pidfile")" 2>/dev/null || kill -TERM "$(cat "$pidfile")" 2>/dev/null || true
done
deadline=$((SECONDS + 15))
for name in $order; do
    pidfile="$DIR/run/$name.pid"
    [ -s "$pidfile" ] || continue
    pid=$(cat "$pidfile")
    while { kill -0 -- "-$pid" 2>/dev/null || kill -0 "$pid" 2>/dev/null; } && [ $SECONDS -lt $deadline ]; do
        sleep 0.1
    done
    kill -KILL -- "-$pid" 2>/dev/null || kill -KILL "$pid" 2>/dev/null || true
    rm -f "$pidfile"
done
echo "down.sh: stopped Kubernetes in $DIR"
