#!/usr/bin/env bash
# Runs Ricochet's whole test suite: formatting, lints, and every test.
# Installs what the tests need when it is missing (Debian packages via apt-get).
set -euo pipefail
cd "$(dirname "$0")"

scripts/install-test-deps.sh

echo "==> cargo fmt --check"
cargo fmt --all --check
echo "==> cargo clippy"
cargo clippy --workspace --all-targets -- -D warnings
echo "==> tests"
if cargo nextest --version >/dev/null 2>&1; then
  cargo nextest run --workspace --all-features --no-fail-fast
  cargo test --workspace --doc --quiet
else
  cargo test --workspace --all-features --no-fail-fast
fi
echo "==> all tests passed"
