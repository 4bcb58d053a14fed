# shellcheck shell=bash disable=SC2034
# The versions the testbed builds: sourced by testbed/cluster.sh, the one place they are named.
# Every Kubernetes binary comes from the k8s.io/kubernetes Go module at this release.
KUBERNETES_VERSION="${NAUTHERA_KUBERNETES_VERSION:-1.37.2}"   # CI's: the newest tested
KUBERNETES_OLDEST="1.34.4"                                     # the oldest tested (README)
ETCD_VERSION="3.7.3"                                           # go.etcd.io/etcd/server/v3
HELM_VERSION="4.3.2"                                           # helm.sh/helm/v4
