#!/usr/bin/env bash
# A real Kubernetes control plane for the tests, built from the k8s.io/kubernetes Go
# module and go.etcd.io/etcd/server/v3, started on this machine and stopped again.
#
#   testbed/cluster.sh build           build (or find cached) etcd, kube-apiserver,
#                                      kube-controller-manager, kube-scheduler, kubectl and
#                                      helm; print their folders
#   testbed/cluster.sh build-node      the same for a node's kubelet and kube-proxy
#   testbed/cluster.sh up DIR          start etcd, the API server, the controller-manager and
#                                      the scheduler, state and logs in DIR; DIR/kubeconfig is
#                                      cluster-admin, DIR/env exports NAUTHERA_E2E_KUBECONFIG,
#                                      _KUBECTL, _HELM
#   testbed/cluster.sh down DIR        stop what `up DIR` started; leaves nothing running
#
# The version is testbed/versions.sh's; NAUTHERA_KUBERNETES_VERSION=1.34.4 picks another.
# Builds go to NAUTHERA_TESTBED_CACHE (default ~/.cache/nauthera-testbed), one folder per
# version, and use Go's own module and build caches: a warm run builds nothing.
# The API server listens on 127.0.0.1 (NAUTHERA_TESTBED_ADDRESS for another local address).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
# shellcheck source=versions.sh
source "$here/versions.sh"

cache="${NAUTHERA_TESTBED_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/nauthera-testbed}"
kube_dir="$cache/kubernetes-v$KUBERNETES_VERSION"
etcd_dir="$cache/etcd-v$ETCD_VERSION"
helm_dir="$cache/helm-v$HELM_VERSION"
address="${NAUTHERA_TESTBED_ADDRESS:-127.0.0.1}"
control_plane=(kube-apiserver kube-controller-manager kube-scheduler kubectl)

say() { printf '    %s\n' "$*" >&2; }
die() { printf 'testbed: %s\n' "$*" >&2; exit 1; }

need_go() {
  command -v go >/dev/null || die "Go 1.26 or later is needed to build Kubernetes and etcd (https://go.dev/dl)"
}

# Runs "$@" holding the build cache's lock (two test runs building at once would corrupt
# it), in a subshell: the daemons started later never inherit it.
locked() {
  mkdir -p "$cache"
  (
    if command -v flock >/dev/null; then
      flock -w 3600 9 || die "another build into $cache has held its lock for an hour"
    fi
    "$@"
  ) 9>"$cache/.lock"
}

# A module requiring k8s.io/kubernetes at the version, with its staging modules (required
# at v0.0.0, which is never published) replaced by their published v0.<minor>.<patch>.
kubernetes_module() {
  local module="$1" upstream
  mkdir -p "$module"
  upstream="$(cd "$module" && GOFLAGS=-mod=mod go mod download -json "k8s.io/kubernetes@v$KUBERNETES_VERSION" |
    sed -n 's/^[[:space:]]*"GoMod": "\(.*\)",*$/\1/p')"
  [ -f "$upstream" ] || die "k8s.io/kubernetes v$KUBERNETES_VERSION: no go.mod from the module proxy"
  {
    echo "module nauthera.io/testbed/kubernetes"
    echo
    sed -n 's/^go \(.*\)$/go \1/p' "$upstream"
    echo
    echo "require k8s.io/kubernetes v$KUBERNETES_VERSION"
    echo
    echo "replace ("
    awk -v v="v0.${KUBERNETES_VERSION#1.}" '
      /^replace \(/ { inside = 1; next }
      inside && /^\)/ { inside = 0 }
      inside && $1 ~ /^k8s\.io\// && $1 !~ /sample-/ { printf "\t%s => %s %s\n", $1, $1, v }
    ' "$upstream"
    echo ")"
  } >"$module/go.mod.tmp"
  # Whole or not at all: a half-written go.mod would be taken for a good one next time.
  mv "$module/go.mod.tmp" "$module/go.mod"
}

build_kubernetes() {
  local binaries=("$@") missing=() b
  for b in "${binaries[@]}"; do [ -x "$kube_dir/bin/$b" ] || missing+=("$b"); done
  [ ${#missing[@]} -eq 0 ] && return
  need_go
  say "building ${missing[*]} v$KUBERNETES_VERSION from the k8s.io/kubernetes module (minutes, once)"
  local module="$kube_dir/module" packages=()
  [ -f "$module/go.mod" ] || kubernetes_module "$module"
  for b in "${missing[@]}"; do packages+=("k8s.io/kubernetes/cmd/$b@v$KUBERNETES_VERSION"); done
  (cd "$module" && go get -tool "${packages[@]}" >/dev/null 2>&1) ||
    (cd "$module" && go get -tool "${packages[@]}")
  mkdir -p "$kube_dir/bin"
  local started=$SECONDS
  # Stamped as Kubernetes' own release builds are, so `kubectl version` and /version say it.
  local minor="${KUBERNETES_VERSION#*.}" stamp=() package
  minor="${minor%%.*}"
  for package in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    stamp+=("-X $package.gitVersion=v$KUBERNETES_VERSION" "-X $package.gitMajor=1"
      "-X $package.gitMinor=$minor" "-X $package.gitTreeState=clean"
      "-X $package.buildDate=1970-01-01T00:00:00Z")
  done
  (cd "$module" && go build -trimpath -ldflags="-s ${stamp[*]}" -o "$kube_dir/bin/" "${packages[@]%@*}")
  say "built in $((SECONDS - started)) s"
}

build_etcd() {
  [ -x "$etcd_dir/bin/etcd" ] && return
  need_go
  say "building etcd v$ETCD_VERSION from go.etcd.io/etcd/server/v3 (a minute, once)"
  local module="$etcd_dir/module"
  mkdir -p "$module" "$etcd_dir/bin"
  [ -f "$module/go.mod" ] || (cd "$module" && go mod init nauthera.io/testbed/etcd >/dev/null 2>&1)
  (cd "$module" && go get -tool "go.etcd.io/etcd/server/v3@v$ETCD_VERSION" >/dev/null 2>&1) ||
    (cd "$module" && go get -tool "go.etcd.io/etcd/server/v3@v$ETCD_VERSION")
  (cd "$module" && go build -trimpath -ldflags=-s -o "$etcd_dir/bin/etcd" go.etcd.io/etcd/server/v3)
}

build_helm() {
  [ -x "$helm_dir/bin/helm" ] && return
  need_go
  say "building helm v$HELM_VERSION from helm.sh/helm/v4 (a minute or two, once)"
  local module="$helm_dir/module"
  mkdir -p "$module" "$helm_dir/bin"
  [ -f "$module/go.mod" ] || (cd "$module" && go mod init nauthera.io/testbed/helm >/dev/null 2>&1)
  (cd "$module" && go get -tool "helm.sh/helm/v4/cmd/helm@v$HELM_VERSION" >/dev/null 2>&1) ||
    (cd "$module" && go get -tool "helm.sh/helm/v4/cmd/helm@v$HELM_VERSION")
  (cd "$module" && go build -trimpath -ldflags="-s -X helm.sh/helm/v4/internal/version.version=v$HELM_VERSION" \
    -o "$helm_dir/bin/helm" helm.sh/helm/v4/cmd/helm)
}

build() {
  local tool
  for tool in python3 curl; do
    command -v "$tool" >/dev/null || die "$tool is needed (apt-get install $tool)"
  done
  build_helm
  build_etcd
  build_kubernetes "${control_plane[@]}"
}

free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# Certificates for one run: a CA, the API server's serving certificate, client
# certificates for the tests (system:masters), the controller-manager and the scheduler,
# and the service-account signing key.
certificates() {
  local pki="$1"
  command -v openssl >/dev/null || die "openssl is needed (apt-get install openssl)"
  mkdir -p "$pki"
  (
    cd "$pki"
    ec() { openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1" 2>/dev/null; }
    ec ca.key
    openssl req -x509 -new -key ca.key -subj "/CN=nauthera-testbed-ca" -days 7 -out ca.crt 2>/dev/null
    sign() { # name subject [extensions]
      ec "$1.key"
      openssl req -new -key "$1.key" -subj "$2" -out "$1.csr" 2>/dev/null
      printf '%s\n' "${3:-extendedKeyUsage=clientAuth}" >"$1.ext"
      openssl x509 -req -in "$1.csr" -CA ca.crt -CAkey ca.key -CAcreateserial -days 7 \
        -extfile "$1.ext" -out "$1.crt" 2>/dev/null
    }
    sign apiserver "/CN=kube-apiserver" "subjectAltName=IP:127.0.0.1,IP:$address,IP:10.96.0.1,DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local
extendedKeyUsage=serverAuth"
    sign admin "/O=system:masters/CN=nauthera-testbed-admin"
    sign controller-manager "/CN=system:kube-controller-manager"
    sign kube-scheduler "/CN=system:kube-scheduler"
    sign apiserver-kubelet-client "/O=system:masters/CN=kube-apiserver-kubelet-client"
    openssl genrsa -out service-account.key 2048 2>/dev/null
    openssl rsa -in service-account.key -pubout -out service-account.pub 2>/dev/null
  )
}

kubeconfig() { # file server user
  local pki
  pki="$(dirname "$1")/pki"
  cat >"$1" <<YAML
apiVersion: v1
kind: Config
clusters:
  - name: testbed
    cluster: {server: "$2", certificate-authority: "$pki/ca.crt"}
users:
  - name: $3
    user: {client-certificate: "$pki/$3.crt", client-key: "$pki/$3.key"}
contexts:
  - name: testbed
    context: {cluster: testbed, user: $3}
current-context: testbed
YAML
}

start() { # DIR name command...
  local dir="$1" name="$2"
  shift 2
  setsid "$@" >"$dir/logs/$name.log" 2>&1 </dev/null &
  echo "$!" >"$dir/pids/$name"
}

alive() { kill -0 "$(cat "$1/pids/$2")" 2>/dev/null; }

# Waits up to $3 seconds for `$4...` to succeed while process $2 of DIR $1 lives.
await() {
  local dir="$1" name="$2" seconds="$3"
  shift 3
  local deadline=$((SECONDS + seconds))
  until "$@" >/dev/null 2>&1; do
    alive "$dir" "$name" || { tail -n 30 "$dir/logs/$name.log" >&2; die "$name exited (log: $dir/logs/$name.log)"; }
    [ $SECONDS -lt $deadline ] || { tail -n 30 "$dir/logs/$name.log" >&2; die "$name not ready after $seconds s"; }
    sleep 0.5
  done
}

up() {
  local dir="${1:?usage: cluster.sh up DIR}"
  mkdir -p "$dir"
  dir="$(cd "$dir" && pwd)"
  locked build
  mkdir -p "$dir/logs" "$dir/pids"
  # A start that fails half-way leaves nothing running.
  trap 'down "$dir"' EXIT
  local started=$SECONDS kube="$kube_dir/bin" pki="$dir/pki"
  certificates "$pki"
  local etcd_port etcd_peer api_port
  etcd_port="$(free_port)" etcd_peer="$(free_port)" api_port="$(free_port)"

  start "$dir" etcd "$etcd_dir/bin/etcd" --name testbed --data-dir "$dir/etcd" \
    --listen-client-urls "http://127.0.0.1:$etcd_port" --advertise-client-urls "http://127.0.0.1:$etcd_port" \
    --listen-peer-urls "http://127.0.0.1:$etcd_peer" --initial-advertise-peer-urls "http://127.0.0.1:$etcd_peer" \
    --initial-cluster "testbed=http://127.0.0.1:$etcd_peer" --unsafe-no-fsync --log-level warn
  await "$dir" etcd 30 curl -fsS "http://127.0.0.1:$etcd_port/health"

  local reconciler=()
  # The `kubernetes` Service cannot point at loopback; on loopback nothing in the
  # cluster needs it.
  case "$address" in 127.*) reconciler=(--endpoint-reconciler-type none) ;; esac
  start "$dir" kube-apiserver "$kube/kube-apiserver" "${reconciler[@]}" \
    --etcd-servers "http://127.0.0.1:$etcd_port" \
    --bind-address "$address" --advertise-address "$address" --secure-port "$api_port" \
    --tls-cert-file "$pki/apiserver.crt" --tls-private-key-file "$pki/apiserver.key" \
    --client-ca-file "$pki/ca.crt" \
    --kubelet-client-certificate "$pki/apiserver-kubelet-client.crt" \
    --kubelet-client-key "$pki/apiserver-kubelet-client.key" \
    --service-account-issuer https://kubernetes.default.svc.cluster.local \
    --service-account-key-file "$pki/service-account.pub" \
    --service-account-signing-key-file "$pki/service-account.key" \
    --service-cluster-ip-range 10.96.0.0/24 \
    --authorization-mode Node,RBAC --allow-privileged=true \
    --cert-dir "$pki/generated"

  local server="https://$address:$api_port"
  kubeconfig "$dir/kubeconfig" "$server" admin
  kubeconfig "$dir/controller-manager.kubeconfig" "$server" controller-manager
  kubeconfig "$dir/kube-scheduler.kubeconfig" "$server" kube-scheduler
  await "$dir" kube-apiserver 120 "$kube/kubectl" --kubeconfig "$dir/kubeconfig" get --raw /readyz

  start "$dir" kube-controller-manager "$kube/kube-controller-manager" \
    --kubeconfig "$dir/controller-manager.kubeconfig" \
    --authentication-kubeconfig "$dir/controller-manager.kubeconfig" \
    --authorization-kubeconfig "$dir/controller-manager.kubeconfig" \
    --service-account-private-key-file "$pki/service-account.key" \
    --root-ca-file "$pki/ca.crt" --use-service-account-credentials \
    --cluster-signing-cert-file "$pki/ca.crt" --cluster-signing-key-file "$pki/ca.key" \
    --leader-elect=false --secure-port 0
  # The service-account controller making `default` shows the controllers run.
  await "$dir" kube-controller-manager 120 \
    "$kube/kubectl" --kubeconfig "$dir/kubeconfig" -n default get serviceaccount default

  # Binds pods to nodes (testbed/node.sh's); with none, it waits. Its HTTPS port only on
  # loopback, for /readyz (its informers synced): without an authentication or
  # authorization kubeconfig it serves the health paths to anyone and nothing else.
  local scheduler_port
  scheduler_port="$(free_port)"
  start "$dir" kube-scheduler "$kube/kube-scheduler" \
    --kubeconfig "$dir/kube-scheduler.kubeconfig" \
    --bind-address 127.0.0.1 --secure-port "$scheduler_port" --cert-dir "$pki/generated" \
    --leader-elect=false
  await "$dir" kube-scheduler 120 curl -fsSk "https://127.0.0.1:$scheduler_port/readyz"

  cat >"$dir/env" <<ENV
export NAUTHERA_E2E_KUBECONFIG="$dir/kubeconfig"
export NAUTHERA_E2E_KUBECTL="$kube/kubectl"
export NAUTHERA_E2E_HELM="$helm_dir/bin/helm"
ENV
  trap - EXIT
  say "Kubernetes v$KUBERNETES_VERSION at $server, up in $((SECONDS - started)) s (logs: $dir/logs)"
}

down() {
  local dir="${1:?usage: cluster.sh down DIR}" name pid
  [ -d "$dir/pids" ] || return 0
  for name in kube-scheduler kube-controller-manager kube-apiserver etcd; do
    [ -f "$dir/pids/$name" ] || continue
    pid="$(cat "$dir/pids/$name")"
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 1 40); do kill -0 "$pid" 2>/dev/null || break; sleep 0.25; done
    kill -KILL "$pid" 2>/dev/null || true
    rm -f "$dir/pids/$name"
  done
}

case "${1:-}" in
  build) locked build; echo "$kube_dir/bin $etcd_dir/bin $helm_dir/bin" ;;
  build-node) locked build_kubernetes kubelet kube-proxy; echo "$kube_dir/bin" ;;
  up) up "${2:-}" ;;
  down) down "${2:-}" ;;
  *) sed -n '2,17p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2 ;;
esac
