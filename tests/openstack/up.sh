#!/usr/bin/env bash
# Starts a private OpenStack for tests and developers in DIR: RabbitMQ (user-level
# node), Keystone and the Heat API (uWSGI), heat-engine; SQLite databases; all on
# 127.0.0.1 with free ports picked now, so parallel runs in different DIRs never collide.
#
#   tests/openstack/up.sh DIR      # idempotent: an instance already running in DIR is kept
#   . DIR/env                      # OS_CLOUD/OS_CLIENT_CONFIG_FILE for `openstack stack list`
#   tests/openstack/down.sh DIR
#
# Knobs (environment):
#   HEATSCALER_OS_TOKEN_EXPIRATION  Keystone token lifetime in seconds (default 3600)
#   HEATSCALER_OS_DEBUG=1           debug logging of Keystone and Heat (DIR/log/)
#   HEATSCALER_OS_HEAT_DB=postgresql  Heat's database on a PostgreSQL server (Debian's
#                                   postgresql-15, run as the `postgres` user on a free
#                                   port) instead of SQLite, as deployments run it
# Exit status 3: the software is not installed (run tests/openstack/install.sh).
set -euo pipefail
# Descriptors the caller left open are not the services': a `flock` lock held
# around a test run (fd 3) would otherwise be held by every service for as long
# as it lives, and a service that outlives its test blocked every other run.
for fd in 3 4 5 6 7 8 9; do eval "exec $fd>&-"; done

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=common.sh
. "$here/common.sh"

[ $# -eq 1 ] || { echo "usage: $0 DIR" >&2; exit 2; }
mkdir -p "$1"
DIR=$(cd "$1" && pwd)
start_ns=$(date +%s%N)

for need in "$OPENSTACK_VENV/bin/uwsgi" "$OPENSTACK_VENV/bin/heat-engine" "$OPENSTACK_VENV/bin/keystone-manage" \
    "$RABBITMQ_SBIN/rabbitmq-server"; do
    if [ ! -x "$need" ]; then
        echo "up.sh: $need is missing: the OpenStack test software is not installed; run tests/openstack/install.sh" >&2
        exit 3
    fi
done

# --- Already running? -----------------------------------------------------------
all_alive() {
    local f
    for f in epmd rabbitmq keystone heat-api heat-engine; do
        [ -s "$DIR/run/$f.pid" ] && kill -0 "$(cat "$DIR/run/$f.pid")" 2>/dev/null || return 1
    done
}
if [ -s "$DIR/env" ] && all_alive; then
    echo "up.sh: already running in $DIR (environment: $DIR/env)"
    exit 0
fi
# Leftovers of a stopped or half-started instance: start clean.
"$here/down.sh" "$DIR" >/dev/null 2>&1 || true
rm -rf "$DIR/run" "$DIR/log" "$DIR/keystone" "$DIR/heat" "$DIR/rabbitmq" "$DIR/env" "$DIR/clouds.yaml" "$DIR/state.json"
mkdir -p "$DIR/run" "$DIR/log" "$DIR/keystone" "$DIR/heat/lock" "$DIR/rabbitmq/home" "$DIR/rabbitmq/mnesia"
chmod 700 "$DIR"

# If this script fails half-way, leave nothing running.
trap 'status=$?; if [ $status -ne 0 ]; then echo "up.sh: failed; logs in $DIR/log" >&2; "$here/down.sh" "$DIR" >/dev/null 2>&1 || true; fi' EXIT

# --- Ports and secrets -------------------------------------------------------------
# Bind all at once to port 0 so the kernel hands out distinct free ports.
read -r EPMD_PORT AMQP_PORT DIST_PORT KEYSTONE_PORT HEAT_PORT PG_PORT < <(python3 -c '
import socket
socks = [socket.socket() for _ in range(6)]
for s in socks: s.bind(("127.0.0.1", 0))
print(*[s.getsockname()[1] for s in socks])')
secret() { python3 -c 'import secrets; print(secrets.token_hex(16))'; }
ADMIN_PASSWORD=$(secret)
HEAT_SERVICE_PASSWORD=$(secret)
HEAT_DOMAIN_ADMIN_PASSWORD=$(secret)
TENANT_PASSWORD=$(secret)
RABBIT_PASSWORD=$(secret)
AUTH_ENCRYPTION_KEY=$(secret)
TOKEN_EXPIRATION=${HEATSCALER_OS_TOKEN_EXPIRATION:-3600}
DEBUG=$([ "${HEATSCALER_OS_DEBUG:-0}" = 1 ] && echo true || echo false)
KEYSTONE_URL="http://127.0.0.1:$KEYSTONE_PORT"
HEAT_URL="http://127.0.0.1:$HEAT_PORT"
NODE="heatscaler-$(basename "$DIR" | tr -c 'a-zA-Z0-9\n' '-')-$$@localhost"

# Each service runs in its own session (setsid), so down.sh can stop it with all its children.
spawn() { # name command...
    local name=$1
    shift
    setsid "$@" >"$DIR/log/$name.log" 2>&1 </dev/null &
    echo $! >"$DIR/run/$name.pid"
}
wait_for() { # what seconds command...
    local what=$1 seconds=$2
    shift 2
    local deadline=$((SECONDS + seconds))
    until "$@" >/dev/null 2>&1; do
        if [ $SECONDS -ge $deadline ]; then
            echo "up.sh: $what not ready after ${seconds}s" >&2
            exit 1
        fi
        sleep 0.2
    done
}
port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
http_ok() { curl -sf -o /dev/null --max-time 2 "$1"; }
http_answers() { [ "$(curl -s -o /dev/null -w '%{http_code}' --max-time 2 "$1")" != 000 ]; }

# --- RabbitMQ: a user-level node with its own epmd, node name, ports and data. -------
cat >"$DIR/rabbitmq/rabbitmq.conf" <<CONF
listeners.tcp.1 = 127.0.0.1:$AMQP_PORT
default_user = heat
default_pass = $RABBIT_PASSWORD
loopback_users = none
log.console = true
log.file = false
CONF
echo '[].' >"$DIR/rabbitmq/enabled_plugins"
: >"$DIR/rabbitmq/rabbitmq-env.conf"
export ERL_EPMD_PORT=$EPMD_PORT ERL_EPMD_ADDRESS=127.0.0.1
epmd=$(command -v epmd || ls /usr/lib/erlang/erts-*/bin/epmd | head -1)
spawn epmd "$epmd" -port "$EPMD_PORT" -address 127.0.0.1
wait_for "epmd" 10 port_open "$EPMD_PORT"
spawn rabbitmq env HOME="$DIR/rabbitmq/home" \
    RABBITMQ_NODENAME="$NODE" RABBITMQ_NODE_IP_ADDRESS=127.0.0.1 RABBITMQ_NODE_PORT="$AMQP_PORT" \
    RABBITMQ_DIST_PORT="$DIST_PORT" RABBITMQ_CONFIG_FILE="$DIR/rabbitmq/rabbitmq.conf" \
    RABBITMQ_CONF_ENV_FILE="$DIR/rabbitmq/rabbitmq-env.conf" \
    RABBITMQ_ENABLED_PLUGINS_FILE="$DIR/rabbitmq/enabled_plugins" RABBITMQ_MNESIA_BASE="$DIR/rabbitmq/mnesia" \
    RABBITMQ_LOG_BASE="$DIR/log" RABBITMQ_PID_FILE="$DIR/run/rabbitmq-erl.pid" RABBITMQ_LOGS=- \
    "$RABBITMQ_SBIN/rabbitmq-server"

# --- Keystone ------------------------------------------------------------------------
cat >"$DIR/keystone/keystone.conf" <<CONF
[DEFAULT]
debug = $DEBUG
[database]
connection = sqlite:///$DIR/keystone/keystone.db
[token]
provider = fernet
expiration = $TOKEN_EXPIRATION
[fernet_tokens]
key_repository = $DIR/keystone/fernet-keys
[fernet_receipts]
key_repository = $DIR/keystone/fernet-receipts
[credential]
key_repository = $DIR/keystone/credential-keys
[identity]
# The lowest bcrypt cost: a test Keystone hashes passwords on every token request.
password_hash_rounds = 4
# An in-process cache: without it every token validation costs Keystone ~0.5 s of
# SQL. One uWSGI worker (below) keeps the cache coherent, so a revoked token or
# role stops working at once, as with a shared memcached in production.
[cache]
enabled = true
backend = dogpile.cache.memory
CONF
# --- Heat's database: SQLite, or a PostgreSQL server of this instance -----------------
HEAT_DB_URL="sqlite:///$DIR/heat/heat.db"
if [ "${HEATSCALER_OS_HEAT_DB:-sqlite}" = postgresql ]; then
    pg_bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)
    [ -x "$pg_bin/postgres" ] || { echo "up.sh: PostgreSQL is not installed (Debian: postgresql)" >&2; exit 3; }
    "$OPENSTACK_VENV/bin/python" -c 'import psycopg2' 2>/dev/null ||
        { echo "up.sh: psycopg2 is missing from $OPENSTACK_VENV (run tests/openstack/install.sh)" >&2; exit 3; }
    # PostgreSQL refuses to run as root, and DIR is private to us: its data lives beside DIR.
    PG_DIR=$(mktemp -d /tmp/heatscaler-pg-XXXXXX)
    echo "$PG_DIR" >"$DIR/run/postgres.dir"
    as_pg=()
    if [ "$(id -u)" = 0 ]; then
        chown postgres: "$PG_DIR"
        as_pg=(runuser -u postgres --)
    fi
    "${as_pg[@]}" "$pg_bin/initdb" -D "$PG_DIR/data" -U heat -A trust >"$DIR/log/postgres-init.log" 2>&1
    spawn postgres "${as_pg[@]}" "$pg_bin/postgres" -D "$PG_DIR/data" -k "$PG_DIR" -p "$PG_PORT" \
        -c listen_addresses=127.0.0.1 -c fsync=off
    wait_for "PostgreSQL" 60 "${as_pg[@]}" "$pg_bin/pg_isready" -h 127.0.0.1 -p "$PG_PORT"
    "${as_pg[@]}" "$pg_bin/createdb" -h 127.0.0.1 -p "$PG_PORT" -U heat heat
    HEAT_DB_URL="postgresql+psycopg2://heat@127.0.0.1:$PG_PORT/heat"
fi

# --- Heat ----------------------------------------------------------------------------
cat >"$DIR/heat/heat.conf" <<CONF
[DEFAULT]
debug = $DEBUG
host = $(basename "$DIR")-$$
transport_url = rabbit://heat:$RABBIT_PASSWORD@127.0.0.1:$AMQP_PORT/
auth_encryption_key = $AUTH_ENCRYPTION_KEY
stack_user_domain_name = heat
stack_domain_admin = heat_domain_admin
stack_domain_admin_password = $HEAT_DOMAIN_ADMIN_PASSWORD
region_name_for_services = RegionOne
num_engine_workers = 1
[database]
connection = $HEAT_DB_URL
[paste_deploy]
api_paste_config = $OPENSTACK_VENV/etc/heat/api-paste.ini
[oslo_concurrency]
lock_path = $DIR/heat/lock
[oslo_messaging_notifications]
driver = noop
[keystone_authtoken]
www_authenticate_uri = $KEYSTONE_URL/v3
auth_url = $KEYSTONE_URL
auth_type = password
username = heat
password = $HEAT_SERVICE_PASSWORD
project_name = service
user_domain_name = Default
project_domain_name = Default
# Validate every token with Keystone: a revoked token must stop working at once.
token_cache_time = -1
[trustee]
auth_type = password
auth_url = $KEYSTONE_URL
username = heat
password = $HEAT_SERVICE_PASSWORD
user_domain_name = Default
[clients_keystone]
auth_uri = $KEYSTONE_URL
[ec2authtoken]
auth_uri = $KEYSTONE_URL/v3
CONF
chmod 600 "$DIR/keystone/keystone.conf" "$DIR/heat/heat.conf" "$DIR/rabbitmq/rabbitmq.conf"

ksm="$OPENSTACK_VENV/bin/keystone-manage --config-file $DIR/keystone/keystone.conf"
# Heat's schema is independent of Keystone's: migrate both at once.
"$OPENSTACK_VENV/bin/heat-manage" --config-file "$DIR/heat/heat.conf" db_sync >"$DIR/log/heat-db-sync.log" 2>&1 &
heat_sync=$!
$ksm db_sync >"$DIR/log/keystone-setup.log" 2>&1
$ksm fernet_setup --keystone-user "$(id -un)" --keystone-group "$(id -gn)" >>"$DIR/log/keystone-setup.log" 2>&1
$ksm credential_setup --keystone-user "$(id -un)" --keystone-group "$(id -gn)" >>"$DIR/log/keystone-setup.log" 2>&1
$ksm bootstrap --bootstrap-password "$ADMIN_PASSWORD" --bootstrap-region-id RegionOne \
    --bootstrap-admin-url "$KEYSTONE_URL/v3" --bootstrap-internal-url "$KEYSTONE_URL/v3" \
    --bootstrap-public-url "$KEYSTONE_URL/v3" >>"$DIR/log/keystone-setup.log" 2>&1

# uWSGI's --http-socket does not keep connections alive; "Connection: close" tells
# clients so, instead of letting them reuse a socket uWSGI is about to drop.
uwsgi_common=(--master --enable-threads --need-app --die-on-term --buffer-size 65535
    --add-header "Connection: close" --disable-logging)
# Keystone and Heat share one SQLite file each between threads: see sqlite_shim.py.
serialize=HEATSCALER_SQLITE_SERIALIZE=1
spawn keystone env "$serialize" OS_KEYSTONE_CONFIG_DIR="$DIR/keystone" \
    "$OPENSTACK_VENV/bin/uwsgi" --http-socket "127.0.0.1:$KEYSTONE_PORT" \
    --module keystone.wsgi.api:application --processes 1 --threads 4 "${uwsgi_common[@]}"
wait_for "Keystone" 60 http_ok "$KEYSTONE_URL/v3"

export KEYSTONE_URL HEAT_URL ADMIN_PASSWORD HEAT_SERVICE_PASSWORD HEAT_DOMAIN_ADMIN_PASSWORD TENANT_PASSWORD
export TENANT_PROJECT=heatscaler TENANT_USER=heatscaler
"$OPENSTACK_VENV/bin/python" "$here/bootstrap.py" keystone "$DIR" >"$DIR/log/bootstrap.log" 2>&1 || {
    cat "$DIR/log/bootstrap.log" >&2
    exit 1
}

wait "$heat_sync" || { tail -20 "$DIR/log/heat-db-sync.log" >&2; exit 1; }
wait_for "RabbitMQ" 60 port_open "$AMQP_PORT"
spawn heat-api env "$serialize" "$OPENSTACK_VENV/bin/uwsgi" --http-socket "127.0.0.1:$HEAT_PORT" \
    --module heat.wsgi.api:application --pyargv "--config-file $DIR/heat/heat.conf" --processes 2 "${uwsgi_common[@]}"
spawn heat-engine env "$serialize" "$OPENSTACK_VENV/bin/heat-engine" --config-file "$DIR/heat/heat.conf"
wait_for "Heat API" 60 http_answers "$HEAT_URL/"
"$OPENSTACK_VENV/bin/python" "$here/bootstrap.py" wait-heat "$DIR" >>"$DIR/log/bootstrap.log" 2>&1 || {
    tail -5 "$DIR/log/bootstrap.log" >&2
    exit 1
}

# --- What clients need -----------------------------------------------------------------
state() { python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))[sys.argv[2]])' "$DIR/state.json" "$1"; }
PROJECT_ID=$(state project_id)
USER_ID=$(state user_id)
APP_CRED_ID=$(state app_cred_id)
APP_CRED_SECRET=$(state app_cred_secret)
umask 077
cat >"$DIR/env" <<ENV
# Written by tests/openstack/up.sh. Source it for the OpenStack CLI:  . $DIR/env
export OS_CLIENT_CONFIG_FILE=$DIR/clouds.yaml
export OS_CLOUD=heatscaler
export HEATSCALER_OS_DIR=$DIR
export HEATSCALER_OS_AUTH_URL=$KEYSTONE_URL/v3
export HEATSCALER_OS_KEYSTONE_URL=$KEYSTONE_URL
export HEATSCALER_OS_HEAT_URL=$HEAT_URL/v1/$PROJECT_ID
export HEATSCALER_OS_REGION=RegionOne
export HEATSCALER_OS_TOKEN_EXPIRATION=$TOKEN_EXPIRATION
export HEATSCALER_OS_PROJECT_NAME=$TENANT_PROJECT
export HEATSCALER_OS_PROJECT_ID=$PROJECT_ID
export HEATSCALER_OS_USERNAME=$TENANT_USER
export HEATSCALER_OS_USER_ID=$USER_ID
export HEATSCALER_OS_SPARE_USERNAME=$TENANT_USER-spare
export HEATSCALER_OS_SPARE_USER_ID=$(state spare_user_id)
export HEATSCALER_OS_PASSWORD=$TENANT_PASSWORD
export HEATSCALER_OS_APP_CRED_ID=$APP_CRED_ID
export HEATSCALER_OS_APP_CRED_NAME=heatscaler
export HEATSCALER_OS_APP_CRED_SECRET=$APP_CRED_SECRET
export HEATSCALER_OS_ADMIN_PASSWORD=$ADMIN_PASSWORD
ENV
cat >"$DIR/clouds.yaml" <<YAML
# Written by tests/openstack/up.sh.
clouds:
  heatscaler:            # the non-admin tenant user, by password
    auth:
      auth_url: $KEYSTONE_URL/v3
      username: $TENANT_USER
      password: $TENANT_PASSWORD
      project_name: $TENANT_PROJECT
      user_domain_name: Default
      project_domain_name: Default
    region_name: RegionOne
    interface: public
    identity_api_version: 3
  heatscaler-appcred:    # the same user's application credential
    auth_type: v3applicationcredential
    auth:
      auth_url: $KEYSTONE_URL/v3
      application_credential_id: $APP_CRED_ID
      application_credential_secret: $APP_CRED_SECRET
    region_name: RegionOne
    interface: public
    identity_api_version: 3
  admin:
    auth:
      auth_url: $KEYSTONE_URL/v3
      username: admin
      password: $ADMIN_PASSWORD
      project_name: admin
      user_domain_name: Default
      project_domain_name: Default
    region_name: RegionOne
    identity_api_version: 3
YAML
elapsed_ms=$((($(date +%s%N) - start_ns) / 1000000))
cat <<MSG
up.sh: OpenStack running in $DIR (started in ${elapsed_ms} ms)
  Keystone  $KEYSTONE_URL/v3   (token lifetime ${TOKEN_EXPIRATION}s)
  Heat      $HEAT_URL/v1/$PROJECT_ID
  RabbitMQ  127.0.0.1:$AMQP_PORT (node $NODE)
  project '$TENANT_PROJECT', user '$TENANT_USER' (member, heat_stack_owner), application credential 'heatscaler'
  environment: $DIR/env   clouds.yaml: $DIR/clouds.yaml   logs: $DIR/log/
  stop with: $here/down.sh $DIR
MSG
