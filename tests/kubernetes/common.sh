# Shared by install.sh, up.sh, down.sh and pin.sh: the pinned versions and where
# the binaries live. The one place a version is written; gomod/go.mod is
# generated from it by pin.sh and install.sh refuses a go.mod that disagrees.
# shellcheck shell=bash

# Kubernetes: kube-apiserver, kube-scheduler, kube-controller-manager, kubectl.
KUBERNETES_VERSION=1.35.4
# etcd: the version k8s.io/kubernetes v1.35.4's own go.mod requires
# (go.etcd.io/etcd/server/v3 v3.6.5). Kubernetes 1.35 tests against 3.6.6, which
# the module proxy here does not serve; building the version already in the
# Kubernetes module graph means one module graph and one build for everything.
ETCD_VERSION=3.6.5

# Every Kubernetes staging module (k8s.io/api, k8s.io/client-go, ...) is
# published as v0.X.Y for Kubernetes v1.X.Y.
KUBERNETES_STAGING_VERSION=0.${KUBERNETES_VERSION#1.}

# The commands built, as Go package paths; all in one `go build`.
KUBERNETES_COMMANDS=(
    k8s.io/kubernetes/cmd/kube-apiserver
    k8s.io/kubernetes/cmd/kube-controller-manager
    k8s.io/kubernetes/cmd/kube-scheduler
    k8s.io/kubernetes/cmd/kubectl
    go.etcd.io/etcd/server/v3
)

HEATSCALER_CACHE=${HEATSCALER_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/heatscaler}
KUBERNETES_HOME=${HEATSCALER_KUBERNETES_HOME:-$HEATSCALER_CACHE/kubernetes/$KUBERNETES_VERSION}
KUBERNETES_BIN=$KUBERNETES_HOME/bin

# The binaries up.sh needs, by their file names in $KUBERNETES_BIN
# (`go build` names etcd's main package after its module directory: v3).
KUBERNETES_BINARIES=(kube-apiserver kube-controller-manager kube-scheduler kubectl etcd)
