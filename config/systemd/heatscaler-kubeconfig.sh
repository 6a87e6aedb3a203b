#!/bin/sh
# Gives the systemd-run daemon its own least-privilege identity instead of
# the cluster-admin /etc/kubernetes/admin.conf: the `heatscaler`
# ServiceAccount of config/kubernetes/rbac.yaml (the ClusterRole of exactly
# the calls the daemon makes, the leader Lease's Role), a token for it, and
# a kubeconfig holding that token, written 0600 for LoadCredential=.
#
#   heatscaler-kubeconfig.sh [--admin-kubeconfig FILE] [--manifests DIR] [--output FILE]
#
# Defaults: /etc/kubernetes/admin.conf (used here only, once), the
# config/kubernetes/ next to this script, /etc/heatscaler/credentials/kubeconfig.
# Idempotent: run again to re-apply the RBAC; the token is kept. To revoke
# the identity: kubectl -n heatscaler delete secret heatscaler-token.
#
# The token is a ServiceAccount token Secret: it does not expire (a daemon
# has no one to renew a TokenRequest token for it) and is revoked by
# deleting the Secret.
set -eu

admin=/etc/kubernetes/admin.conf
manifests=$(cd "$(dirname "$0")/../kubernetes" 2>/dev/null && pwd || true)
output=/etc/heatscaler/credentials/kubeconfig
kubectl=${KUBECTL:-kubectl}
while [ $# -gt 0 ]; do
    case $1 in
        --admin-kubeconfig) admin=$2; shift 2 ;;
        --manifests) manifests=$2; shift 2 ;;
        --output) output=$2; shift 2 ;;
        -h|--help) sed -n '2,18p' "$0"; exit 0 ;;
        *) echo "heatscaler-kubeconfig.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
    esac
done
for f in "$admin" "$manifests/namespace.yaml" "$manifests/rbac.yaml"; do
    [ -r "$f" ] || { echo "heatscaler-kubeconfig.sh: cannot read $f" >&2; exit 1; }
done

k() { "$kubectl" --kubeconfig "$admin" "$@"; }

k apply -f "$manifests/namespace.yaml" -f "$manifests/rbac.yaml" >/dev/null
k apply -f - >/dev/null <<YAML
apiVersion: v1
kind: Secret
metadata:
  name: heatscaler-token
  namespace: heatscaler
  annotations:
    kubernetes.io/service-account.name: heatscaler
  labels:
    app.kubernetes.io/name: heatscaler
type: kubernetes.io/service-account-token
YAML

# The token controller fills the Secret in.
tries=0
until token=$(k -n heatscaler get secret heatscaler-token -o 'jsonpath={.data.token}') && [ -n "$token" ]; do
    tries=$((tries + 1))
    if [ $tries -ge 60 ]; then
        echo "heatscaler-kubeconfig.sh: the token controller filled no token into heatscaler/heatscaler-token in 30 s" >&2
        exit 1
    fi
    sleep 0.5
done
ca=$(k -n heatscaler get secret heatscaler-token -o 'jsonpath={.data.ca\.crt}')
server=$(k config view --raw --minify -o 'jsonpath={.clusters[0].cluster.server}')
token=$(printf '%s' "$token" | base64 -d)

# Written beside the target and renamed: the daemon never reads half a file.
umask 077
mkdir -p "$(dirname "$output")"
tmp="$output.tmp.$$"
trap 'rm -f "$tmp"' EXIT
cat >"$tmp" <<YAML
apiVersion: v1
kind: Config
clusters:
- name: cluster
  cluster:
    server: $server
    certificate-authority-data: $ca
users:
- name: heatscaler
  user:
    token: $token
contexts:
- name: heatscaler
  context: {cluster: cluster, user: heatscaler, namespace: heatscaler}
current-context: heatscaler
YAML
mv "$tmp" "$output"
trap - EXIT
echo "wrote $output: ServiceAccount heatscaler/heatscaler, bound to ClusterRole heatscaler"
