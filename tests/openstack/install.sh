#!/usr/bin/env bash
# Installs the software tests/openstack/up.sh runs: RabbitMQ (Debian package; its
# system service is never used) and a Python virtualenv with Keystone, Heat and uWSGI.
#
# Idempotent: a second run checks and returns in about a second. The virtualenv
# lives at $HEATSCALER_OPENSTACK_VENV (default: ~/.cache/heatscaler/openstack-venv),
# the same default up.sh uses.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=common.sh
. "$here/common.sh"

start=$(date +%s)

# --- RabbitMQ: the Debian package, for its binaries only. ---------------------
if [ ! -x "$RABBITMQ_SBIN/rabbitmq-server" ]; then
    sudo=""
    [ "$(id -u)" -eq 0 ] || sudo="sudo"
    echo "install.sh: installing rabbitmq-server (apt-get)"
    # Keep the package's postinst from starting the system-wide broker: up.sh runs
    # its own node as the invoking user, and a system broker would hold port 5672.
    policy=/usr/sbin/policy-rc.d
    created_policy=""
    if [ ! -e "$policy" ]; then
        printf '#!/bin/sh\nexit 101\n' | $sudo tee "$policy" >/dev/null
        $sudo chmod +x "$policy"
        created_policy=1
    fi
    trap '[ -z "$created_policy" ] || $sudo rm -f "$policy"' EXIT
    if ! $sudo apt-get install -y --no-install-recommends rabbitmq-server >/tmp/heatscaler-apt.log 2>&1; then
        $sudo apt-get update >>/tmp/heatscaler-apt.log 2>&1
        $sudo apt-get install -y --no-install-recommends rabbitmq-server >>/tmp/heatscaler-apt.log 2>&1 || {
            tail -20 /tmp/heatscaler-apt.log >&2
            echo "install.sh: apt-get install rabbitmq-server failed (log: /tmp/heatscaler-apt.log)" >&2
            exit 1
        }
    fi
    # Some images start it anyway (no policy-rc.d support); stop the system node.
    $sudo service rabbitmq-server stop >/dev/null 2>&1 || true
fi

# --- PostgreSQL: the Debian package, for the test that runs Heat on a database
# server (up.sh with HEATSCALER_OS_HEAT_DB=postgresql); its system service is not used.
if ! ls /usr/lib/postgresql/*/bin/postgres >/dev/null 2>&1; then
    sudo=""
    [ "$(id -u)" -eq 0 ] || sudo="sudo"
    echo "install.sh: installing postgresql (apt-get)"
    { $sudo apt-get install -y --no-install-recommends postgresql >/tmp/heatscaler-apt.log 2>&1 ||
        { $sudo apt-get update >>/tmp/heatscaler-apt.log 2>&1 &&
            $sudo apt-get install -y --no-install-recommends postgresql >>/tmp/heatscaler-apt.log 2>&1; }; } || {
        tail -20 /tmp/heatscaler-apt.log >&2
        echo "install.sh: apt-get install postgresql failed (log: /tmp/heatscaler-apt.log)" >&2
        exit 1
    }
    $sudo service postgresql stop >/dev/null 2>&1 || true
fi

# --- Keystone, Heat, uWSGI: one virtualenv, pinned. ---------------------------
stamp="$OPENSTACK_VENV/.heatscaler-installed"
want=$( (cat "$here/requirements.txt"; [ ! -f "$here/constraints.txt" ] || cat "$here/constraints.txt"; python3 --version) | sha256sum | cut -d' ' -f1)
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
    echo "install.sh: creating virtualenv $OPENSTACK_VENV"
    python3 -m venv --clear "$OPENSTACK_VENV"
    "$OPENSTACK_VENV/bin/pip" install --quiet --upgrade pip
    constraints=()
    [ -f "$here/constraints.txt" ] && constraints=(-c "$here/constraints.txt")
    "$OPENSTACK_VENV/bin/pip" install --quiet --disable-pip-version-check "${constraints[@]}" -r "$here/requirements.txt"
    echo "$want" >"$stamp"
fi

# The SQLite shim (see sqlite_shim.py), loaded at interpreter start through a .pth line.
site=$("$OPENSTACK_VENV/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
cp "$here/sqlite_shim.py" "$site/heatscaler_sqlite_shim.py"
echo "import heatscaler_sqlite_shim" >"$site/heatscaler_sqlite_shim.pth"

for bin in keystone-manage heat-manage heat-engine uwsgi; do
    [ -x "$OPENSTACK_VENV/bin/$bin" ] || { echo "install.sh: $bin missing from $OPENSTACK_VENV" >&2; exit 1; }
done
echo "install.sh: OpenStack test software ready in $(( $(date +%s) - start ))s (venv: $OPENSTACK_VENV, rabbitmq: $RABBITMQ_SBIN)"
