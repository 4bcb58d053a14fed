#!/usr/bin/env bash
# Every test of the repository, as CI runs it: formatting, lints, then all test suites.
# Needs the Rust toolchain, Node.js 20+ and npm (for the real OpenID provider the
# operator's driver is tested against); as root on Debian it installs Glewlwyd, the
# second provider, with apt-get.
# The end-to-end suite against a real cluster runs only when NAUTHERA_E2E_KUBECONFIG is set.
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

if [ -z "${NAUTHERA_E2E_KUBECONFIG:-}" ]; then
  echo "==> NAUTHERA_E2E_KUBECONFIG is not set: the end-to-end suites (operator/tests/e2e*.rs,"
  echo "    tui/tests/e2e.rs) and the scale benchmarks pass without running (set it to a"
  echo "    kubeconfig of a real cluster to run them)"
fi

echo "==> cargo test"
cargo test --workspace --locked
