#!/usr/bin/env bash
# One Kubernetes node on this machine, joined to a control plane of testbed/cluster.sh,
# so the operator's image runs in a pod from deploy/operator.yaml, unchanged.
#
#   testbed/node.sh prepare            make the pods' bridge (idempotent); print its address,
#                                      the one the control plane must listen on
#   testbed/node.sh up DIR             on the control plane in DIR (its scheduler binds the
#                                      pods): start containerd, the kubelet and kube-proxy;
#                                      wait for the Node to be Ready. State and logs in
#                                      DIR/node, DIR/logs
#   testbed/node.sh down DIR           stop all of that, remove the pods, their mounts and
#                                      cgroups, the bridge, the iptables rules; restore the
#                                      sysctls the kubelet and kube-proxy changed
#
# In order (testbed/image.sh puts the operator's image on the node):
#   NAUTHERA_TESTBED_ADDRESS="$(testbed/node.sh prepare)" testbed/cluster.sh up DIR
#   testbed/node.sh up DIR && testbed/image.sh DIR
#   ...
#   testbed/node.sh down DIR && testbed/cluster.sh down DIR
#
# Needs root. Pod traffic never leaves this machine: pods get no default route (only the
# pod subnet and the service range via the bridge), IP forwarding stays as it was (off
# here), and a FORWARD rule rejects whatever comes from the bridge bound elsewhere.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
# shellcheck source=versions.sh
source "$here/versions.sh"

cache="${NAUTHERA_TESTBED_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/nauthera-testbed}"
kube_dir="$cache/kubernetes-v$KUBERNETES_VERSION"
# crictl is built here, not in cluster.sh's bin/ (that one is its own).
tools_dir="$kube_dir/node-tools"
CRI_TOOLS_VERSION="1.37.0"   # sigs.k8s.io/cri-tools: crictl, to remove pods through the CRI

# The pods' network, named once. 10.96.0.0/24 is cluster.sh's service range.
bridge="nauthera0"
pod_subnet="10.88.0.0/24"
bridge_address="10.88.0.1"
service_range="10.96.0.0/24"
# The Node's name is its address: the API server reaches a kubelet by the Node's Hostname
# address first, and a name would be looked up in DNS (off this machine) or /etc/hosts.
node_name="$bridge_address"
cgroup_root="/nauthera-testbed"   # the kubelet's pods' cgroups, under every v1 hierarchy
chain="NAUTHERA-NODE-FORWARD"     # our FORWARD rules, in a chain of their own
pause_image="localhost/nauthera-testbed/pause:1"
# Set by the kubelet (kernel tunables), kube-proxy and the CNI bridge plugin: recorded
# before the first start and restored by `down`.
sysctls=(kernel.panic kernel.panic_on_oops vm.overcommit_memory vm.panic_on_oom
  kernel.keys.root_maxkeys kernel.keys.root_maxbytes net.ipv4.conf.all.route_localnet
  net.ipv4.ip_forward net.netfilter.nf_conntrack_max)

say() { printf '    %s\n' "$*" >&2; }
die() { printf 'testbed: %s\n' "$*" >&2; exit 1; }

need_root() { [ "$(id -u)" = 0 ] || die "node.sh needs root (containerd, the kubelet and iptables)"; }

# --- what the node needs on this machine ---------------------------------------------

packages() {
  local want=() p
  command -v containerd >/dev/null || want+=(containerd)
  command -v runc >/dev/null || want+=(runc)
  [ -x /usr/lib/cni/bridge ] || want+=(containernetworking-plugins)
  command -v iptables >/dev/null || want+=(iptables)
  command -v gcc >/dev/null || want+=(gcc libc6-dev)
  for p in openssl curl; do command -v "$p" >/dev/null || want+=("$p"); done
  [ ${#want[@]} -eq 0 ] && return
  say "installing ${want[*]}"
  DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${want[@]}" >/dev/null ||
    { apt-get update >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${want[@]}" >/dev/null; }
}

build_tools() {
  local module
  if [ ! -x "$tools_dir/bin/crictl" ]; then
    command -v go >/dev/null || die "Go is needed to build crictl"
    say "building crictl v$CRI_TOOLS_VERSION (once)"
    module="$tools_dir/crictl"
    mkdir -p "$module" "$tools_dir/bin"
    [ -f "$module/go.mod" ] || (cd "$module" && go mod init nauthera.io/testbed/crictl >/dev/null 2>&1)
    (cd "$module" && go get -tool "sigs.k8s.io/cri-tools/cmd/crictl@v$CRI_TOOLS_VERSION" >/dev/null 2>&1) ||
      (cd "$module" && go get -tool "sigs.k8s.io/cri-tools/cmd/crictl@v$CRI_TOOLS_VERSION")
    (cd "$module" && go build -trimpath -ldflags=-s -o "$tools_dir/bin/" sigs.k8s.io/cri-tools/cmd/crictl)
  fi
}

# --- the bridge, before the control plane binds its address ----------------------------

prepare() {
  command -v ip >/dev/null || die "ip (iproute2) is needed"
  if ! ip link show "$bridge" >/dev/null 2>&1; then
    ip link add "$bridge" type bridge
  fi
  ip addr show dev "$bridge" | grep -q "inet $bridge_address/" ||
    ip addr add "$bridge_address/${pod_subnet#*/}" dev "$bridge"
  # No IPv6 on the pods' link (pods would still get link-local addresses).
  sysctl -q -w "net.ipv6.conf.$bridge.disable_ipv6=1" 2>/dev/null || true
  ip link set "$bridge" up
  echo "$bridge_address"
}

# --- helpers in cluster.sh's style -----------------------------------------------------

start() { # DIR name command...
  local dir="$1" name="$2"
  shift 2
  setsid "$@" >"$dir/logs/$name.log" 2>&1 </dev/null &
  echo "$!" >"$dir/pids/$name"
}

alive() { [ -f "$1/pids/$2" ] && kill -0 "$(cat "$1/pids/$2")" 2>/dev/null; }

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

stop() { # DIR name: TERM, then KILL after 10 s
  local dir="$1" name="$2" pid
  [ -f "$dir/pids/$name" ] || return 0
  pid="$(cat "$dir/pids/$name")"
  kill -TERM "$pid" 2>/dev/null || true
  for _ in $(seq 1 40); do kill -0 "$pid" 2>/dev/null || break; sleep 0.25; done
  kill -KILL "$pid" 2>/dev/null || true
  rm -f "$dir/pids/$name"
}

# A client certificate signed by the control plane's CA, and a kubeconfig using it.
client() { # DIR name subject
  local dir="$1" name="$2" subject="$3" pki="$1/pki" server
  server="$(sed -n 's/.*server: "\([^"]*\)".*/\1/p' "$dir/kubeconfig")"
  [ -n "$server" ] || die "no server in $dir/kubeconfig"
  openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$pki/$name.key" 2>/dev/null
  openssl req -new -key "$pki/$name.key" -subj "$subject" -out "$pki/$name.csr" 2>/dev/null
  printf 'extendedKeyUsage=clientAuth\n' >"$pki/$name.ext"
  openssl x509 -req -in "$pki/$name.csr" -CA "$pki/ca.crt" -CAkey "$pki/ca.key" -CAcreateserial \
    -days 7 -extfile "$pki/$name.ext" -out "$pki/$name.crt" 2>/dev/null
  cat >"$dir/node/$name.kubeconfig" <<YAML
apiVersion: v1
kind: Config
clusters:
  - name: testbed
    cluster: {server: "$server", certificate-authority: "$pki/ca.crt"}
users:
  - name: $name
    user: {client-certificate: "$pki/$name.crt", client-key: "$pki/$name.key"}
contexts:
  - name: testbed
    context: {cluster: testbed, user: $name}
current-context: testbed
YAML
}

# --- configuration, all of it under DIR/node -------------------------------------------

containerd_config() {
  local node="$1"
  mkdir -p "$node/containerd/root" "$node/containerd/state" "$node/cni" "$node/cni-ipam"
  # Its own root, state, socket and runc root: a system containerd (if any) is never
  # touched. restrict_oom_score_adj: root here lacks CAP_SYS_RESOURCE, so a negative
  # oom_score_adj would fail every sandbox. Network namespaces under the state dir, so
  # `down` finds them under DIR.
  cat >"$node/containerd.toml" <<TOML
version = 2
root = "$node/containerd/root"
state = "$node/containerd/state"
disabled_plugins = ["io.containerd.snapshotter.v1.btrfs",
  "io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.devmapper",
  "io.containerd.snapshotter.v1.aufs", "io.containerd.internal.v1.opt"]

[grpc]
  address = "$node/containerd.sock"
[ttrpc]
  address = "$node/containerd.ttrpc.sock"
[debug]
  address = ""
[metrics]
  address = ""

[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "$pause_image"
  restrict_oom_score_adj = true
  netns_mounts_under_state_dir = true
  stream_server_address = "127.0.0.1"
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = false
        Root = "$node/runc"
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = "$node/cni"
    max_conf_num = 1
TOML
  # Bridge without isGateway: the bridge keeps prepare's address, the plugin does not
  # turn on IP forwarding, and pods get no default route: only the pod subnet (on the
  # link) and the service range via the bridge (kube-proxy DNATs it to this host).
  # host-local keeps its leases under DIR; portmap for hostPorts (it does nothing for a
  # pod without any).
  cat >"$node/cni/10-nauthera.conflist" <<JSON
{
  "cniVersion": "0.4.0",
  "name": "nauthera-testbed",
  "plugins": [
    {
      "type": "bridge",
      "bridge": "$bridge",
      "isGateway": false,
      "ipMasq": false,
      "hairpinMode": true,
      "ipam": {
        "type": "host-local",
        "dataDir": "$node/cni-ipam",
        "ranges": [[{"subnet": "$pod_subnet", "gateway": "$bridge_address"}]],
        "routes": [{"dst": "$service_range", "gw": "$bridge_address"}]
      }
    },
    {"type": "portmap", "capabilities": {"portMappings": true}}
  ]
}
JSON
}

kubelet_config() {
  local dir="$1" node="$1/node"
  # cgroupfs and failCgroupV1: this machine has cgroups v1, which the kubelet refuses
  # since 1.35 unless told. Swap: allowed. Only our CA's client certificates (the API
  # server's kubelet client is system:masters) may call it, so AlwaysAllow is enough.
  # Its iptables "hint" chains and localnet rule are for other components (kube-proxy
  # repeats the rule where it needs it): not made. No static pods, no cluster DNS (pods warn MissingClusterDNS; the operator needs
  # none). Eviction and image GC thresholds out of reach: a busy disk must not evict the
  # operator or collect the imported images, which no registry could bring back.
  cat >"$node/kubelet.yaml" <<YAML
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
address: "$bridge_address"
port: 10250
readOnlyPort: 0
healthzBindAddress: "127.0.0.1"
healthzPort: 10248
cgroupDriver: cgroupfs
cgroupRoot: "$cgroup_root"
failCgroupV1: false
failSwapOn: false
containerRuntimeEndpoint: "unix://$node/containerd.sock"
podLogsDirectory: "$node/pod-logs"
authentication:
  anonymous: {enabled: false}
  webhook: {enabled: false}
  x509: {clientCAFile: "$dir/pki/ca.crt"}
authorization:
  mode: AlwaysAllow
clusterDomain: cluster.local
clusterDNS: []
resolvConf: /etc/resolv.conf
evictionHard: {memory.available: "100Mi", nodefs.available: "1%", imagefs.available: "1%"}
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
serializeImagePulls: false
makeIPTablesUtilChains: false
YAML
  # iptables mode; clusterCIDR tells pod traffic from other traffic. No localhost
  # NodePorts (they need route_localnet), NodePorts only on the bridge, and the
  # conntrack tunables left as they are (0: do not set).
  cat >"$node/kube-proxy.yaml" <<YAML
apiVersion: kubeproxy.config.k8s.io/v1alpha1
kind: KubeProxyConfiguration
mode: iptables
clusterCIDR: "$pod_subnet"
hostnameOverride: "$node_name"
bindAddress: "$bridge_address"
healthzBindAddress: "127.0.0.1:10256"
metricsBindAddress: "127.0.0.1:10249"
nodePortAddresses: ["$bridge_address/32"]
iptables: {localhostNodePorts: false}
conntrack: {maxPerCore: 0, min: 0, tcpEstablishedTimeout: 0s, tcpCloseWaitTimeout: 0s}
clientConnection: {kubeconfig: "$node/kube-proxy.kubeconfig"}
YAML
}

pause_image_archive() { # node: the sandbox image, a static program in an empty rootfs
  local node="$1" rootfs="$1/pause-rootfs"
  rm -rf "$rootfs"
  mkdir -p "$rootfs"
  gcc -static -s -O2 -o "$rootfs/pause" "$here/node/pause.c"
  python3 "$here/node/archive.py" "$rootfs" "$pause_image" "$node/pause.tar" \
    --user 65535:65535 --entrypoint '["/pause"]'
}

# The FORWARD rule, first in FORWARD: from the bridge, only back onto the bridge.
# Traffic to this host is not forwarded (INPUT), so it passes.
safety_rules() {
  iptables -w -N "$chain" 2>/dev/null || iptables -w -F "$chain"
  iptables -w -A "$chain" -i "$bridge" -o "$bridge" -s "$pod_subnet" -d "$pod_subnet" -j RETURN
  iptables -w -A "$chain" -i "$bridge" -j REJECT --reject-with icmp-net-prohibited
  ensure_first
  # No IPv6 on the bridge, and none may leave from it either.
  ip6tables -w -C FORWARD -i "$bridge" -j REJECT 2>/dev/null || ip6tables -w -I FORWARD 1 -i "$bridge" -j REJECT
}

# kube-proxy inserts its own jumps at the top of FORWARD: ours goes back in front.
ensure_first() {
  while iptables -w -D FORWARD -j "$chain" 2>/dev/null; do :; done
  iptables -w -I FORWARD 1 -j "$chain"
}

record_sysctls() {
  local file="$1/node/sysctls.before" s
  [ -f "$file" ] && return   # a second `up` must not record what the first one set
  for s in "${sysctls[@]}"; do
    [ -e "/proc/sys/${s//.//}" ] && printf '%s=%s\n' "$s" "$(sysctl -n "$s")"
  done >"$file.new"
  mv "$file.new" "$file"
}

restore_sysctls() {
  local file="$1/node/sysctls.before" line now
  [ -f "$file" ] || return 0
  while IFS= read -r line; do
    now="$(sysctl -n "${line%%=*}" 2>/dev/null || true)"
    [ "$now" = "${line#*=}" ] && continue
    sysctl -q -w "$line" >/dev/null && say "restored ${line%%=*} (${now} -> ${line#*=})"
  done <"$file"
  rm -f "$file"
}

node_ready() {
  [ "$("$kube_dir/bin/kubectl" --kubeconfig "$1/kubeconfig" get node "$node_name" \
    -o 'jsonpath={.status.conditions[?(@.type=="Ready")].status}')" = True ]
}

# The kubelet wants its cgroupRoot in every hierarchy before it starts. A new v1 cpuset
# cgroup has no CPUs and no memory nodes: it gets its parent's.
make_cgroup_root() {
  local h
  for h in /sys/fs/cgroup/*/; do
    [ "$h" = /sys/fs/cgroup/unified/ ] && continue   # the hybrid v2 mount: not the kubelet's
    mkdir -p "$h${cgroup_root#/}"
  done
  if [ -d /sys/fs/cgroup/cpuset ]; then
    cat /sys/fs/cgroup/cpuset/cpuset.cpus >"/sys/fs/cgroup/cpuset$cgroup_root/cpuset.cpus"
    cat /sys/fs/cgroup/cpuset/cpuset.mems >"/sys/fs/cgroup/cpuset$cgroup_root/cpuset.mems"
  fi
}

proxy_synced() { iptables -w -t nat -S KUBE-SERVICES | grep -q 'default/kubernetes:https'; }

up() {
  local dir="${1:?usage: node.sh up DIR}"
  dir="$(cd "$dir" && pwd)"
  if [ ! -f "$dir/kubeconfig" ] || [ ! -f "$dir/pki/ca.key" ]; then
    die "no control plane in $dir: run testbed/cluster.sh up $dir first"
  fi
  grep -q "server: \"https://$bridge_address:" "$dir/kubeconfig" ||
    die "the control plane in $dir does not listen on $bridge_address: start it with NAUTHERA_TESTBED_ADDRESS=\"\$(testbed/node.sh prepare)\""
  # cluster.sh's scheduler binds the pods to this node: without it none would ever start.
  alive "$dir" kube-scheduler ||
    die "no kube-scheduler runs for the control plane in $dir: start it with a testbed/cluster.sh that does"
  # Machine-wide state (iptables chains, ports 10250/10248, the bridge): one node only,
  # and never beside a kubelet or kube-proxy this script did not start.
  local other
  for other in kubelet kube-proxy; do
    if pgrep -x "$other" >/dev/null && ! grep -qsx "$(pgrep -x "$other" | head -n1)" "$dir/pids/$other"; then
      die "a $other this testbed did not start runs on this machine: node.sh would disturb it"
    fi
  done
  [ "$(stat -fc %T /sys/fs/cgroup)" != cgroup2fs ] ||
    die "this machine has cgroups v2 only: node.sh sets up the kubelet for cgroups v1 (cgroupfs)"
  local node="$dir/node" kube="$kube_dir/bin" started=$SECONDS
  packages
  "$here/cluster.sh" build-node >/dev/null
  build_tools
  prepare >/dev/null
  mkdir -p "$node" "$dir/logs" "$dir/pids"
  # A start that fails half-way leaves nothing running.
  # (The bridge stays: the control plane listens on it.)
  trap 'stop_node "$dir"' EXIT
  record_sysctls "$dir"
  record_outside "$dir"
  safety_rules

  containerd_config "$node"
  if ! alive "$dir" containerd; then
    start "$dir" containerd containerd --config "$node/containerd.toml"
  fi
  local ctr=(ctr --address "$node/containerd.sock" -n k8s.io)
  await "$dir" containerd 30 "${ctr[@]}" version
  pause_image_archive "$node"
  "${ctr[@]}" images import "$node/pause.tar" >/dev/null

  client "$dir" kubelet "/O=system:nodes/CN=system:node:$node_name"
  client "$dir" kube-proxy "/CN=system:kube-proxy"
  kubelet_config "$dir"
  mkdir -p "$node/kubelet" "$node/pod-logs"
  make_cgroup_root
  if ! alive "$dir" kubelet; then
    start "$dir" kubelet "$kube/kubelet" --config "$node/kubelet.yaml" \
      --kubeconfig "$node/kubelet.kubeconfig" --root-dir "$node/kubelet" \
      --hostname-override "$node_name" --node-ip "$bridge_address" --v 1
  fi
  if ! alive "$dir" kube-proxy; then
    start "$dir" kube-proxy "$kube/kube-proxy" --config "$node/kube-proxy.yaml"
  fi
  await "$dir" kubelet 120 node_ready "$dir"
  # kube-proxy's first sync writes KUBE-SERVICES for the `kubernetes` Service.
  await "$dir" kube-proxy 60 proxy_synced
  ensure_first
  trap - EXIT
  say "node $node_name Ready in $((SECONDS - started)) s (pods on $pod_subnet, logs: $dir/logs)"
}

# The kubelet's own chains, should one have made them (makeIPTablesUtilChains: false).
kubelet_chains() {
  local t ipt
  for ipt in iptables ip6tables; do
    while "$ipt" -w -D INPUT -j KUBE-FIREWALL 2>/dev/null; do :; done
    while "$ipt" -w -D OUTPUT -j KUBE-FIREWALL 2>/dev/null; do :; done
    if "$ipt" -w -F KUBE-FIREWALL 2>/dev/null; then "$ipt" -w -X KUBE-FIREWALL; fi
    for t in mangle nat filter; do "$ipt" -w -t "$t" -X KUBE-KUBELET-CANARY 2>/dev/null || true; done
    "$ipt" -w -t mangle -X KUBE-IPTABLES-HINT 2>/dev/null || true
  done
}

# Folders outside DIR that containerd (shim sockets) and libcni (its cache) make where
# they please: removed by `down` when `up` made them and they are empty again.
outside=(/run/containerd/s /run/containerd /var/lib/cni/results /var/lib/cni)

record_outside() {
  local file="$1/node/outside.made" d
  [ -f "$file" ] && return
  for d in "${outside[@]}"; do [ -e "$d" ] || echo "$d"; done >"$file"
}

remove_outside() {
  local file="$1/node/outside.made" d
  [ -f "$file" ] || return 0
  while IFS= read -r d; do rmdir "$d" 2>/dev/null || true; done <"$file"
  rm -f "$file"
}

# Everything `up` started and made, but the bridge.
stop_node() {
  local dir="$1" node
  dir="$(cd "$dir" && pwd)"
  node="$dir/node"
  local crictl=("$tools_dir/bin/crictl" --runtime-endpoint "unix://$node/containerd.sock" --timeout 30s)
  # The kubelet first, so it restarts nothing; then every pod through the CRI while
  # containerd runs: that is CNI DEL (veth, lease, netns) and the shims' exit.
  stop "$dir" kubelet
  if alive "$dir" containerd && [ -x "${crictl[0]}" ]; then
    local pods=()
    mapfile -t pods < <("${crictl[@]}" pods -q 2>/dev/null || true)
    [ ${#pods[@]} -eq 0 ] || "${crictl[@]}" stopp "${pods[@]}" >/dev/null 2>&1 || true
    "${crictl[@]}" rmp -a -f >/dev/null 2>&1 || true
  fi
  stop "$dir" kube-proxy
  stop "$dir" containerd
  # Should a pod not have been removed: its processes are those in our cgroupRoot, and
  # its shim (which outlives containerd) names our socket.
  local pid
  for pid in $(find "/sys/fs/cgroup/pids$cgroup_root" -name cgroup.procs -exec cat {} + 2>/dev/null || true) \
    $(pgrep -f -- "-address $node/containerd.sock" || true); do
    kill -KILL "$pid" 2>/dev/null || true
  done
  # kube-proxy's chains (KUBE-*, in every mode it has), then ours and portmap's.
  if [ -x "$kube_dir/bin/kube-proxy" ]; then
    "$kube_dir/bin/kube-proxy" --cleanup >>"$dir/logs/kube-proxy-cleanup.log" 2>&1 || true
  fi
  kubelet_chains
  while iptables -w -D FORWARD -j "$chain" 2>/dev/null; do :; done
  if iptables -w -F "$chain" 2>/dev/null; then iptables -w -X "$chain"; fi
  while ip6tables -w -D FORWARD -i "$bridge" -j REJECT 2>/dev/null; do :; done
  local c
  for c in CNI-HOSTPORT-DNAT CNI-HOSTPORT-SETMARK CNI-HOSTPORT-MASQ; do
    # portmap's, made only for a pod with a hostPort; removed only if it holds nothing.
    if iptables -w -t nat -S "$c" >/dev/null 2>&1 && [ "$(iptables -w -t nat -S "$c" | wc -l)" -le 1 ]; then
      while iptables -w -t nat -D PREROUTING -m addrtype --dst-type LOCAL -j "$c" 2>/dev/null; do :; done
      while iptables -w -t nat -D OUTPUT -m addrtype --dst-type LOCAL -j "$c" 2>/dev/null; do :; done
      while iptables -w -t nat -D POSTROUTING -j "$c" 2>/dev/null; do :; done
      iptables -w -t nat -X "$c" 2>/dev/null || true
    fi
  done
  # Whatever the kubelet and containerd mounted under DIR (volumes, rootfs, netns, shm):
  # deepest first.
  local m
  while read -r m; do
    umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null || true
  done < <(findmnt -rn -o TARGET | awk -v d="$dir/" 'index($0, d) == 1' | sort -r)
  # The pods' cgroups (cgroupRoot), leaves first, in every hierarchy.
  local h
  for h in /sys/fs/cgroup/*/; do
    [ -d "$h${cgroup_root#/}" ] || continue
    find "$h${cgroup_root#/}" -depth -type d -exec rmdir {} + 2>/dev/null || true
  done
  [ -d "$node" ] || return 0
  remove_outside "$dir"
  restore_sysctls "$dir"
}

down() {
  local dir="${1:?usage: node.sh down DIR}"
  [ -d "$dir" ] && stop_node "$dir"
  ip link del "$bridge" 2>/dev/null || true
}

case "${1:-}" in
  prepare) need_root; prepare ;;
  up) need_root; up "${2:-}" ;;
  down) need_root; down "${2:-}" ;;
  *) sed -n '2,23p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2 ;;
esac
