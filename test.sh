#!/usr/bin/env bash
# Every test of the repository, as CI runs it: formatting, lints, then all test suites,
# the end-to-end suites and the scale harness (100 clients) against a real Kubernetes.
# Needs the Rust toolchain, Node.js 20+ and npm (for the real OpenID provider the
# operator's driver is tested against) and Go (to build Kubernetes and etcd, cached in
# ~/.cache/nauthera-testbed); as root on Debian it installs Glewlwyd, the second
# provider, and openssl with apt-get.
#
# The cluster: by default testbed/cluster.sh builds and starts a control plane (the
# Kubernetes version of testbed/versions.sh, or NAUTHERA_KUBERNETES_VERSION) and, as
# root, testbed/node.sh a node running the operator's image (testbed/image.sh) in a pod;
# both are stopped on exit. NAUTHERA_TESTBED_NODE=off leaves the node out;
# NAUTHERA_E2E_KUBECONFIG=PATH runs the suites on that cluster instead;
# NAUTHERA_TESTBED=off (not in CI) runs without one, the suites saying they skip.
set -euo pipefail
cd "$(dirname "$0")"
# One clean build, nothing kept for the next: incremental caches double the disk used.
export CARGO_INCREMENTAL="${CARGO_INCREMENTAL:-0}"

echo "==> cargo fmt --check"
cargo fmt --all -- --check

echo "==> cargo clippy (warnings are errors)"
cargo clippy --workspace --all-targets --locked -- -D warnings

echo "==> the test OpenID provider (oidc-provider, pinned in operator/tests/provider/package-lock.json)"
npm ci --prefix operator/tests/provider --no-audit --no-fund --loglevel=error

echo "==> the second test provider (Glewlwyd, from Debian's packages)"
if ! command -v glewlwyd >/dev/null || ! command -v sqlite3 >/dev/null; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
      glewlwyd sqlite3 openssl curl >/dev/null
  else
    echo "    not installed, and this is not root with apt-get: its tests will say they are skipped"
    echo "    (sudo apt-get install glewlwyd sqlite3 to run them)"
  fi
fi

if [ -z "${NAUTHERA_E2E_KUBECONFIG:-}" ] && [ "${NAUTHERA_TESTBED:-on}" = off ] && [ -z "${CI:-}" ]; then
  echo "==> NAUTHERA_TESTBED=off: the end-to-end suites (operator/tests/e2e*.rs, tui/tests/e2e.rs)"
  echo "    and the scale harness pass without running"
elif [ -z "${NAUTHERA_E2E_KUBECONFIG:-}" ]; then
  testbed="$(mktemp -d "${TMPDIR:-/tmp}/nauthera-testbed.XXXXXX")"
  node=""
  stop_testbed() {
    if [ -n "$node" ]; then testbed/node.sh down "$testbed" || true; fi
    testbed/cluster.sh down "$testbed" || true
    rm -rf "$testbed"
  }
  trap stop_testbed EXIT
  # The in-cluster tier (a node running the operator's image in a pod) needs root.
  if [ "$(id -u)" = 0 ] && [ "${NAUTHERA_TESTBED_NODE:-on}" != off ]; then node=on; fi
  if [ -n "$node" ] && [ "$(stat -fc %T /sys/fs/cgroup)" = cgroup2fs ]; then
    echo "    cgroups v2 only here: testbed/node.sh sets up cgroups v1, so no node this time"
    node=""
  fi
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    missing=()
    for tool in openssl socat nsenter; do command -v "$tool" >/dev/null || missing+=("$tool"); done
    if [ ${#missing[@]} -gt 0 ]; then
      packages=("${missing[@]/nsenter/util-linux}")
      apt-get update -qq
      DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${packages[@]}" >/dev/null
    fi
  fi
  started=$SECONDS
  if [ -n "$node" ]; then
    echo "==> a one-node Kubernetes cluster (testbed/cluster.sh, testbed/node.sh), the operator's image in a pod"
    address="$(testbed/node.sh prepare)"
    NAUTHERA_TESTBED_ADDRESS="$address" testbed/cluster.sh up "$testbed"
    echo "    the control plane took $((SECONDS - started)) s to build (if not cached) and start"
    started=$SECONDS
    testbed/node.sh up "$testbed"
    echo "    the node took $((SECONDS - started)) s to build (if not cached) and start"
    started=$SECONDS
    cargo build --release --locked -p nauthera-operator
    NAUTHERA_OPERATOR_BINARY=target/release/nauthera-operator testbed/image.sh "$testbed"
    echo "    the operator's image took $((SECONDS - started)) s to build and import"
    export NAUTHERA_E2E_NODE="$testbed"
  else
    echo "==> a real Kubernetes control plane on loopback (testbed/cluster.sh); the in-cluster tier"
    echo "    (operator/tests/e2e_pod.rs) needs root and is skipped"
    testbed/cluster.sh up "$testbed"
    echo "    the control plane took $((SECONDS - started)) s to build (if not cached) and start"
  fi
  # shellcheck source=/dev/null
  source "$testbed/env"
  # As root (and in CI) everything the suites need is here: one that would skip fails
  # instead.
  if [ -n "${CI:-}" ] || { [ -n "$node" ] && command -v glewlwyd >/dev/null; }; then
    export NAUTHERA_E2E_REQUIRED=1
  fi
fi
if [ -n "${NAUTHERA_E2E_KUBECONFIG:-}" ]; then
  export NAUTHERA_SCALE_CLIENTS="${NAUTHERA_SCALE_CLIENTS:-100}"
  export NAUTHERA_SCALE_QUIET="${NAUTHERA_SCALE_QUIET:-20}"
  export NAUTHERA_FLOOR_CLIENTS="${NAUTHERA_FLOOR_CLIENTS:-100}"
  echo "==> the end-to-end suites and the scale harness ($NAUTHERA_SCALE_CLIENTS clients) run on"
  echo "    $NAUTHERA_E2E_KUBECONFIG"
fi

echo "==> cargo test"
started=$SECONDS
cargo test --workspace --locked
echo "==> every suite passed in $((SECONDS - started)) s"
if [ -n "${NAUTHERA_E2E_KUBECONFIG:-}" ] && [ -f target/scale-report.md ]; then
  echo "==> the scale harness on this run's cluster (target/scale-report.md):"
  cat target/scale-report.md
fi
