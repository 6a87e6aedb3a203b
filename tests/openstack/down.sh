#!/usr/bin/env bash
# Stops what tests/openstack/up.sh started in DIR. Leaves DIR's files (logs) in place.
set -uo pipefail
[ $# -eq 1 ] || { echo "usage: $0 DIR" >&2; exit 2; }
DIR=$1
[ -d "$DIR/run" ] || exit 0

# Heat first (it talks to the others), epmd last (RabbitMQ deregisters from it).
order="heat-engine heat-api keystone rabbitmq epmd postgres"
for name in $order; do
    pidfile="$DIR/run/$name.pid"
    [ -s "$pidfile" ] || continue
    # Each service leads its own process group (setsid in up.sh): signal the group.
    kill -TERM -- "-$(cat "$pidfile")" 2>/dev/null || true
done
deadline=$((SECONDS + 15))
for name in $order; do
    pidfile="$DIR/run/$name.pid"
    [ -s "$pidfile" ] || continue
    pid=$(cat "$pidfile")
    while kill -0 -- "-$pid" 2>/dev/null && [ $SECONDS -lt $deadline ]; do sleep 0.1; done
    kill -KILL -- "-$pid" 2>/dev/null || true
    rm -f "$pidfile"
done
# Heat's PostgreSQL data, when up.sh made one (HEATSCALER_OS_HEAT_DB=postgresql).
if [ -s "$DIR/run/postgres.dir" ]; then
    case $(cat "$DIR/run/postgres.dir") in /tmp/heatscaler-pg-*) rm -rf "$(cat "$DIR/run/postgres.dir")" ;; esac
    rm -f "$DIR/run/postgres.dir"
fi
echo "down.sh: stopped OpenStack in $DIR"
