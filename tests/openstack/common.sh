# Shared by install.sh, up.sh and down.sh: where the software lives.
# shellcheck shell=bash
OPENSTACK_VENV=${HEATSCALER_OPENSTACK_VENV:-${XDG_CACHE_HOME:-$HOME/.cache}/heatscaler/openstack-venv}
# Debian's rabbitmq-server wrapper insists on running as the `rabbitmq` user;
# the scripts under /usr/lib/rabbitmq/bin run as whoever calls them.
RABBITMQ_SBIN=${HEATSCALER_RABBITMQ_BIN:-/usr/lib/rabbitmq/bin}
