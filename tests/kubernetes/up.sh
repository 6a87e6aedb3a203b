#!/usr/bin/env bash
# Starts a private Kubernetes control plane in DIR, on 127.0.0.1 with free ports
# picked now (several may run at once, one per test): etcd, kube-apiserver,
# kube-controller-manager, kube-scheduler — the binaries tests/kubernetes/install.sh
# built — configured the way a default (kubeadm) cluster runs them:
#   TLS everywhere (one CA in DIR/pki), authentication by client certificate and
#   service-account tokens, --authorization-mode=Node,RBAC, the default admission
#   plugins plus NodeRestriction, 1.35's default feature gates (in-place pod resize
#   is GA), the controller-manager's default controllers (deployment, replicaset,
#   daemonset, disruption, garbage collector, node lifecycle with taint-based
#   eviction, pod GC, ...) with per-controller service-account credentials.
# Then it applies config/crd/, config/kubernetes/namespace.yaml and rbac.yaml as
# shipped and writes:
#   DIR/admin.kubeconfig        system:masters (client certificate)
#   DIR/heatscaler.kubeconfig   the heatscaler ServiceAccount (TokenRequest, 1 year)
#   DIR/env                     ports, paths, KUBECONFIG; `. DIR/env`
#   DIR/pki/kubelet-serving.{crt,key}  for emulated kubelets (crates/kubelet-emu)
#   DIR/log/audit.log           the API server's audit log of heatscaler's own requests
#                               (metadata only): a test fails on any 403 in it
# There are no nodes: kubelets are emulated by the tests (crates/kubelet-emu).
#
#   tests/kubernetes/up.sh DIR     # idempotent: a control plane already running in DIR is kept
#   tests/kubernetes/down.sh DIR
#
# Knobs (environment; unset = a default cluster's value):
#   HEATSCALER_K8S_NODE_MONITOR_PERIOD        controller-manager --node-monitor-period (5s)
#   HEATSCALER_K8S_NODE_MONITOR_GRACE_PERIOD  --node-monitor-grace-period (50s): Ready→Unknown
#   HEATSCALER_K8S_NODE_STARTUP_GRACE_PERIOD  --node-startup-grace-period (1m0s)
#   HEATSCALER_K8S_TOLERATION_SECONDS         apiserver --default-not-ready/unreachable-toleration-seconds
#                                             (300): how long pods stay on an unreachable node
#                                             before taint-based eviction
#   HEATSCALER_K8S_NODE_NET                   where emulated nodes' addresses come from (198.18.0.0/15)
#   HEATSCALER_K8S_VERBOSITY                  --v of every component (0)
#   HEATSCALER_K8S_START_TIMEOUT              seconds each component may take to be healthy (90)
# Exit status 3: the binaries are not installed (run tests/kubernetes/install.sh).
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)
# shellcheck source=common.sh
. "$here/common.sh"

[ $# -eq 1 ] || { echo "usage: $0 DIR" >&2; exit 2; }
mkdir -p "$1"
DIR=$(cd "$1" && pwd)
start_ns=$(date +%s%N)

for b in "${KUBERNETES_BINARIES[@]}"; do
    if [ ! -x "$KUBERNETES_BIN/$b" ]; then
        echo "up.sh: $KUBERNETES_BIN/$b is missing: Kubernetes is not installed; run tests/kubernetes/install.sh" >&2
        exit 3
    fi
done
command -v openssl >/dev/null || { echo "up.sh: openssl is needed for the certificates" >&2; exit 1; }

COMPONENTS="etcd kube-apiserver kube-controller-manager kube-scheduler"

# --- Node addresses -------------------------------------------------------------------
# The API server's node proxy (how heatscaler reads kubelet stats) refuses any
# address that is not global unicast — 127/8 gives "address not allowed" — so
# emulated nodes live in 198.18.0.0/15 (reserved for benchmarking, RFC 2544),
# routed to the loopback interface: traffic to it never leaves the machine.
# One route for every control plane on the machine; it needs root once per boot.
NODE_NET=${HEATSCALER_K8S_NODE_NET:-198.18.0.0/15}
if ! ip route show table local "$NODE_NET" 2>/dev/null | grep -q "^local"; then
    sudo=""
    [ "$(id -u)" -eq 0 ] || sudo="sudo -n"
    if ! err=$($sudo ip route add local "$NODE_NET" dev lo 2>&1) && ! ip route show table local "$NODE_NET" | grep -q "^local"; then
        echo "up.sh: cannot route $NODE_NET to the loopback for the emulated nodes: $err" >&2
        echo "up.sh: run once (as root): ip route add local $NODE_NET dev lo" >&2
        exit 1
    fi
fi

# --- Already running? -----------------------------------------------------------
all_alive() {
    local c
    for c in $COMPONENTS; do
        [ -s "$DIR/run/$c.pid" ] && kill -0 "$(cat "$DIR/run/$c.pid")" 2>/dev/null || return 1
    done
}
if [ -s "$DIR/env" ] && all_alive; then
    echo "up.sh: already running in $DIR (environment: $DIR/env)"
    exit 0
fi
# Leftovers of a stopped or half-started control plane: start clean.
"$here/down.sh" "$DIR" >/dev/null 2>&1 || true
rm -rf "$DIR/run" "$DIR/log" "$DIR/pki" "$DIR/etcd-data" "$DIR/env" "$DIR"/*.kubeconfig
mkdir -p "$DIR/run" "$DIR/log" "$DIR/pki" "$DIR/etcd-data"
chmod 700 "$DIR" "$DIR/etcd-data"

# If this script fails half-way, leave nothing running.
trap 'status=$?; if [ $status -ne 0 ]; then echo "up.sh: failed; logs in $DIR/log" >&2; "$here/down.sh" "$DIR" >/dev/null 2>&1 || true; fi' EXIT

# --- Ports -------------------------------------------------------------------------
# Bound all at once to port 0 so the kernel hands out distinct free ports.
read -r ETCD_PORT ETCD_PEER_PORT APISERVER_PORT KCM_PORT SCHEDULER_PORT < <(python3 -c '
import socket
socks = [socket.socket() for _ in range(5)]
for s in socks: s.bind(("127.0.0.1", 0))
print(*[s.getsockname()[1] for s in socks])')
SERVER="https://127.0.0.1:$APISERVER_PORT"

# --- Certificates: one CA, as kubeadm lays them out (fewer files) ------------------
PKI=$DIR/pki
ossl() { openssl "$@" >>"$DIR/log/pki.log" 2>&1 || { tail -5 "$DIR/log/pki.log" >&2; echo "up.sh: openssl $1 failed" >&2; exit 1; }; }
ossl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 3650 \
    -subj "/CN=heatscaler-test-ca" -keyout "$PKI/ca.key" -out "$PKI/ca.crt" \
    -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign,digitalSignature"
# cert NAME SUBJECT USAGE [SANs]
cert() {
    local name=$1 subject=$2 usage=$3 sans=${4:-}
    local ext="$PKI/$name.ext"
    {
        echo "basicConstraints=critical,CA:FALSE"
        echo "keyUsage=critical,digitalSignature,keyEncipherment"
        echo "extendedKeyUsage=$usage"
        [ -z "$sans" ] || echo "subjectAltName=$sans"
    } >"$ext"
    ossl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "$subject" \
        -keyout "$PKI/$name.key" -out "$PKI/$name.csr"
    ossl x509 -req -in "$PKI/$name.csr" -CA "$PKI/ca.crt" -CAkey "$PKI/ca.key" -CAcreateserial \
        -days 3650 -extfile "$ext" -out "$PKI/$name.crt"
    rm -f "$PKI/$name.csr" "$ext"
}
cert etcd-server "/CN=etcd" serverAuth,clientAuth "IP:127.0.0.1,DNS:localhost"
cert apiserver-etcd-client "/CN=kube-apiserver-etcd-client" clientAuth
cert apiserver "/CN=kube-apiserver" serverAuth \
    "IP:127.0.0.1,IP:10.96.0.1,DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local"
cert apiserver-kubelet-client "/CN=kube-apiserver-kubelet-client" clientAuth
cert admin "/O=system:masters/CN=kubernetes-admin" clientAuth
cert controller-manager "/CN=system:kube-controller-manager" clientAuth
cert scheduler "/CN=system:kube-scheduler" clientAuth
# The aggregation layer's front proxy has its own CA, as in kubeadm; without it
# every delegating component logs a missing requestheader CA bundle.
ossl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 3650 \
    -subj "/CN=heatscaler-test-front-proxy-ca" -keyout "$PKI/front-proxy-ca.key" -out "$PKI/front-proxy-ca.crt" \
    -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign,digitalSignature"
ossl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "/CN=front-proxy-client" \
    -keyout "$PKI/front-proxy-client.key" -out "$PKI/front-proxy-client.csr"
printf 'basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\nextendedKeyUsage=clientAuth\n' >"$PKI/fp.ext"
ossl x509 -req -in "$PKI/front-proxy-client.csr" -CA "$PKI/front-proxy-ca.crt" -CAkey "$PKI/front-proxy-ca.key" \
    -CAcreateserial -days 3650 -extfile "$PKI/fp.ext" -out "$PKI/front-proxy-client.crt"
rm -f "$PKI/front-proxy-client.csr" "$PKI/fp.ext"
# The emulated kubelets' endpoint (the API server does not verify it: no --kubelet-certificate-authority).
cert kubelet-serving "/CN=kubelet-emu" serverAuth "IP:127.0.0.1,DNS:localhost"
ossl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$PKI/sa.key"
ossl pkey -in "$PKI/sa.key" -pubout -out "$PKI/sa.pub"
chmod 600 "$PKI"/*.key

# kubeconfig FILE USER CERT-NAME
kubeconfig() {
    local file=$1 user=$2 name=$3
    cat >"$file" <<YAML
apiVersion: v1
kind: Config
clusters:
- name: heatscaler-test
  cluster:
    server: $SERVER
    certificate-authority-data: $(base64 -w0 <"$PKI/ca.crt")
users:
- name: $user
  user:
    client-certificate-data: $(base64 -w0 <"$PKI/$name.crt")
    client-key-data: $(base64 -w0 <"$PKI/$name.key")
contexts:
- name: $user@heatscaler-test
  context: {cluster: heatscaler-test, user: $user}
current-context: $user@heatscaler-test
YAML
    chmod 600 "$file"
}
kubeconfig "$DIR/admin.kubeconfig" kubernetes-admin admin
kubeconfig "$DIR/controller-manager.kubeconfig" system:kube-controller-manager controller-manager
kubeconfig "$DIR/scheduler.kubeconfig" system:kube-scheduler scheduler

# --- Processes ---------------------------------------------------------------------
V=${HEATSCALER_K8S_VERBOSITY:-0}
TIMEOUT=${HEATSCALER_K8S_START_TIMEOUT:-90}
# Each component runs in its own session (setsid), so down.sh can stop it with
# all its children, and is started from a subshell that exits at once, so it is
# not this script's child: a component that stops is reaped by init instead of
# lingering as a zombie that down.sh (run from this script on failure) would wait for.
spawn() { # name command...
    local name=$1
    shift
    (
        setsid "$@" >"$DIR/log/$name.log" 2>&1 </dev/null &
        echo $! >"$DIR/run/$name.pid"
    )
}
# wait_healthy NAME URL [curl args...]: polls until 200 "ok", or fails with the log tail.
wait_healthy() {
    local name=$1 url=$2
    shift 2
    local deadline=$((SECONDS + TIMEOUT)) body=""
    until body=$(curl -sf --max-time 2 "$@" "$url" 2>/dev/null) && [ "$body" = ok ]; do
        if ! kill -0 "$(cat "$DIR/run/$name.pid")" 2>/dev/null; then
            echo "up.sh: $name exited while starting; last lines of $DIR/log/$name.log:" >&2
            tail -25 "$DIR/log/$name.log" >&2
            exit 1
        fi
        if [ $SECONDS -ge $deadline ]; then
            echo "up.sh: $name not healthy at $url after ${TIMEOUT}s; last lines of $DIR/log/$name.log:" >&2
            tail -25 "$DIR/log/$name.log" >&2
            exit 1
        fi
        sleep 0.2
    done
}

# etcd: TLS with client certificates, as kubeadm's. --unsafe-no-fsync: the data
# is thrown away with DIR, and fsync on a shared CI disk costs seconds per write burst.
spawn etcd "$KUBERNETES_BIN/etcd" --name default --data-dir "$DIR/etcd-data" \
    --listen-client-urls "https://127.0.0.1:$ETCD_PORT" --advertise-client-urls "https://127.0.0.1:$ETCD_PORT" \
    --listen-peer-urls "http://127.0.0.1:$ETCD_PEER_PORT" --initial-advertise-peer-urls "http://127.0.0.1:$ETCD_PEER_PORT" \
    --initial-cluster "default=http://127.0.0.1:$ETCD_PEER_PORT" \
    --cert-file "$PKI/etcd-server.crt" --key-file "$PKI/etcd-server.key" \
    --client-cert-auth --trusted-ca-file "$PKI/ca.crt" \
    --unsafe-no-fsync --log-level warn
etcd_curl=(--cacert "$PKI/ca.crt" --cert "$PKI/apiserver-etcd-client.crt" --key "$PKI/apiserver-etcd-client.key")
wait_etcd() {
    local deadline=$((SECONDS + TIMEOUT))
    until curl -sf --max-time 2 "${etcd_curl[@]}" "https://127.0.0.1:$ETCD_PORT/health" 2>/dev/null | grep -q '"health":"true"'; do
        if ! kill -0 "$(cat "$DIR/run/etcd.pid")" 2>/dev/null || [ $SECONDS -ge $deadline ]; then
            echo "up.sh: etcd not healthy after ${TIMEOUT}s; last lines of $DIR/log/etcd.log:" >&2
            tail -25 "$DIR/log/etcd.log" >&2
            exit 1
        fi
        sleep 0.2
    done
}
wait_etcd

# Every request of heatscaler's ServiceAccount is audited (metadata: verb, URI,
# response code), so a test can fail on a 403 whatever the daemon logged.
cat >"$DIR/run/audit-policy.yaml" <<'YAML'
apiVersion: audit.k8s.io/v1
kind: Policy
omitStages: [RequestReceived]
rules:
  - level: Metadata
    users: ["system:serviceaccount:heatscaler:heatscaler"]
  - level: None
YAML

TOLERATION=${HEATSCALER_K8S_TOLERATION_SECONDS:-300}
# --endpoint-reconciler-type=none: the `kubernetes` Service's endpoint would be
# 127.0.0.1, which Endpoints validation refuses (loopback); nothing in these
# tests reaches the API server through the Service.
spawn kube-apiserver "$KUBERNETES_BIN/kube-apiserver" --v="$V" \
    --bind-address=127.0.0.1 --secure-port="$APISERVER_PORT" --advertise-address=127.0.0.1 \
    --tls-cert-file="$PKI/apiserver.crt" --tls-private-key-file="$PKI/apiserver.key" \
    --client-ca-file="$PKI/ca.crt" \
    --etcd-servers="https://127.0.0.1:$ETCD_PORT" --etcd-cafile="$PKI/ca.crt" \
    --etcd-certfile="$PKI/apiserver-etcd-client.crt" --etcd-keyfile="$PKI/apiserver-etcd-client.key" \
    --authorization-mode=Node,RBAC --enable-admission-plugins=NodeRestriction \
    --allow-privileged=true \
    --service-account-issuer=https://kubernetes.default.svc.cluster.local \
    --service-account-key-file="$PKI/sa.pub" --service-account-signing-key-file="$PKI/sa.key" \
    --service-cluster-ip-range=10.96.0.0/12 \
    --kubelet-client-certificate="$PKI/apiserver-kubelet-client.crt" \
    --kubelet-client-key="$PKI/apiserver-kubelet-client.key" \
    --kubelet-preferred-address-types=InternalIP \
    --default-not-ready-toleration-seconds="$TOLERATION" --default-unreachable-toleration-seconds="$TOLERATION" \
    --requestheader-client-ca-file="$PKI/front-proxy-ca.crt" --requestheader-allowed-names=front-proxy-client \
    --requestheader-username-headers=X-Remote-User --requestheader-group-headers=X-Remote-Group \
    --requestheader-extra-headers-prefix=X-Remote-Extra- \
    --proxy-client-cert-file="$PKI/front-proxy-client.crt" --proxy-client-key-file="$PKI/front-proxy-client.key" \
    --endpoint-reconciler-type=none \
    --audit-policy-file="$DIR/run/audit-policy.yaml" --audit-log-path="$DIR/log/audit.log" --audit-log-format=json
wait_healthy kube-apiserver "$SERVER/readyz" --cacert "$PKI/ca.crt"

kubectl=("$KUBERNETES_BIN/kubectl" --kubeconfig "$DIR/admin.kubeconfig")
common_flags=(--v="$V" --bind-address=127.0.0.1)
spawn kube-controller-manager "$KUBERNETES_BIN/kube-controller-manager" "${common_flags[@]}" \
    --secure-port="$KCM_PORT" --cert-dir="$DIR/run/kcm-certs" \
    --kubeconfig="$DIR/controller-manager.kubeconfig" \
    --authentication-kubeconfig="$DIR/controller-manager.kubeconfig" \
    --authorization-kubeconfig="$DIR/controller-manager.kubeconfig" \
    --client-ca-file="$PKI/ca.crt" --root-ca-file="$PKI/ca.crt" \
    --requestheader-client-ca-file="$PKI/front-proxy-ca.crt" \
    --cluster-signing-cert-file="$PKI/ca.crt" --cluster-signing-key-file="$PKI/ca.key" \
    --service-account-private-key-file="$PKI/sa.key" --use-service-account-credentials=true \
    --controllers='*,bootstrapsigner,tokencleaner' \
    --node-monitor-period="${HEATSCALER_K8S_NODE_MONITOR_PERIOD:-5s}" \
    --node-monitor-grace-period="${HEATSCALER_K8S_NODE_MONITOR_GRACE_PERIOD:-50s}" \
    --node-startup-grace-period="${HEATSCALER_K8S_NODE_STARTUP_GRACE_PERIOD:-1m0s}"
spawn kube-scheduler "$KUBERNETES_BIN/kube-scheduler" "${common_flags[@]}" \
    --secure-port="$SCHEDULER_PORT" --cert-dir="$DIR/run/scheduler-certs" \
    --kubeconfig="$DIR/scheduler.kubeconfig" \
    --authentication-kubeconfig="$DIR/scheduler.kubeconfig" \
    --authorization-kubeconfig="$DIR/scheduler.kubeconfig"
wait_healthy kube-controller-manager "https://127.0.0.1:$KCM_PORT/healthz" -k
wait_healthy kube-scheduler "https://127.0.0.1:$SCHEDULER_PORT/readyz" -k

# --- heatscaler's objects, as shipped -------------------------------------------------
apply_log=$DIR/log/apply.log
"${kubectl[@]}" apply -f "$repo/config/crd/" >"$apply_log" 2>&1 || { cat "$apply_log" >&2; exit 1; }
# `kubectl wait` gives up at once (".status.conditions accessor error: <nil>")
# on a CRD the apiextensions controller has not given any condition yet, so it
# is retried, in short waits, until the same deadline.
deadline=$((SECONDS + TIMEOUT))
until "${kubectl[@]}" wait --for condition=established --timeout=5s crd --all >>"$apply_log" 2>&1; do
    if [ $SECONDS -ge $deadline ]; then
        echo "up.sh: the CRDs were not established in ${TIMEOUT}s" >&2
        cat "$apply_log" >&2
        exit 1
    fi
    sleep 0.5
done
"${kubectl[@]}" apply -f "$repo/config/kubernetes/namespace.yaml" -f "$repo/config/kubernetes/rbac.yaml" >>"$apply_log" 2>&1 ||
    { cat "$apply_log" >&2; exit 1; }

# The controllers are working once the service-account controller has made
# `default` in `default` (pods cannot be created in a namespace before it).
deadline=$((SECONDS + TIMEOUT))
until "${kubectl[@]}" -n default get serviceaccount default >/dev/null 2>&1; do
    if [ $SECONDS -ge $deadline ]; then
        echo "up.sh: the controller-manager made no default ServiceAccount in ${TIMEOUT}s; last lines of its log:" >&2
        tail -25 "$DIR/log/kube-controller-manager.log" >&2
        exit 1
    fi
    sleep 0.2
done

# heatscaler's identity: a token of its ServiceAccount (TokenRequest), one year.
token=$("${kubectl[@]}" -n heatscaler create token heatscaler --duration=8760h 2>>"$apply_log") ||
    { tail -5 "$apply_log" >&2; echo "up.sh: TokenRequest for heatscaler failed" >&2; exit 1; }
umask 077
cat >"$DIR/heatscaler.kubeconfig" <<YAML
apiVersion: v1
kind: Config
clusters:
- name: heatscaler-test
  cluster:
    server: $SERVER
    certificate-authority-data: $(base64 -w0 <"$PKI/ca.crt")
users:
- name: heatscaler
  user:
    token: $token
contexts:
- name: heatscaler@heatscaler-test
  context: {cluster: heatscaler-test, user: heatscaler, namespace: heatscaler}
current-context: heatscaler@heatscaler-test
YAML

cat >"$DIR/env" <<ENV
# Written by tests/kubernetes/up.sh. Source it for kubectl:  . $DIR/env
export KUBECONFIG=$DIR/admin.kubeconfig
export PATH=$KUBERNETES_BIN:\$PATH
export HEATSCALER_K8S_DIR=$DIR
export HEATSCALER_K8S_SERVER=$SERVER
export HEATSCALER_K8S_VERSION=$KUBERNETES_VERSION
export HEATSCALER_K8S_BIN=$KUBERNETES_BIN
export HEATSCALER_K8S_ETCD_PORT=$ETCD_PORT
export HEATSCALER_K8S_CONTROLLER_MANAGER_PORT=$KCM_PORT
export HEATSCALER_K8S_SCHEDULER_PORT=$SCHEDULER_PORT
export HEATSCALER_K8S_ADMIN_KUBECONFIG=$DIR/admin.kubeconfig
export HEATSCALER_K8S_HEATSCALER_KUBECONFIG=$DIR/heatscaler.kubeconfig
export HEATSCALER_K8S_KUBELET_CERT=$PKI/kubelet-serving.crt
export HEATSCALER_K8S_KUBELET_KEY=$PKI/kubelet-serving.key
export HEATSCALER_K8S_NODE_NET=$NODE_NET
export HEATSCALER_K8S_NODE_MONITOR_GRACE_PERIOD=${HEATSCALER_K8S_NODE_MONITOR_GRACE_PERIOD:-50s}
export HEATSCALER_K8S_TOLERATION_SECONDS=$TOLERATION
export HEATSCALER_K8S_AUDIT_LOG=$DIR/log/audit.log
ENV
elapsed_ms=$((($(date +%s%N) - start_ns) / 1000000))
cat <<MSG
up.sh: Kubernetes v$KUBERNETES_VERSION running in $DIR (started in ${elapsed_ms} ms)
  API server  $SERVER   (etcd 127.0.0.1:$ETCD_PORT, controller-manager :$KCM_PORT, scheduler :$SCHEDULER_PORT)
  kubeconfigs $DIR/admin.kubeconfig (system:masters), $DIR/heatscaler.kubeconfig (ServiceAccount heatscaler/heatscaler)
  environment $DIR/env   logs: $DIR/log/   no nodes: add emulated kubelets (crates/kubelet-emu)
  stop with:  $here/down.sh $DIR
MSG
