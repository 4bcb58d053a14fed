#!/usr/bin/env bash
# Every test of the repository, as CI runs it: formatting, lints, then all test suites.
# Needs the Rust toolchain, Node.js 20+ and npm (for the real OpenID provider the
# operator's driver is tested against).
# The end-to-end suite against a real cluster runs only when NAUTHERA_E2E_KUBECONFIG is set.
set -euo pipefail
cd "$(dirname "$0")"

echo "==> cargo fmt --check"
cargo fmt --all -- --check

echo "==> cargo clippy (warnings are errors)"
cargo clippy --workspace --all-targets --locked -- -D warnings

echo "==> the test OpenID provider (oidc-provider, pinned in operator/tests/provider/package-lock.json)"
npm ci --prefix operator/tests/provider --no-audit --no-fund --loglevel=error

echo "==> cargo test"
cargo test --workspace --locked
