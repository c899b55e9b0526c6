#!/usr/bin/env bash
# Installs the tools Ricochet's tests need when they are missing. Nothing is
# needed beyond Rust today; redis-server joins with the control plane's tests.
set -euo pipefail

need=()
# Each entry: command package
for pair in "curl curl"; do
  cmd=${pair% *}; pkg=${pair#* }
  command -v "$cmd" >/dev/null 2>&1 || need+=("$pkg")
done
if [ ${#need[@]} -gt 0 ]; then
  echo "==> installing ${need[*]}"
  sudo_cmd=""
  [ "$(id -u)" -ne 0 ] && sudo_cmd="sudo"
  $sudo_cmd apt-get update -qq || true
  $sudo_cmd apt-get install -y -qq "${need[@]}"
fi
