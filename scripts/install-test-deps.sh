#!/usr/bin/env bash
# Installs the tools Ricochet's tests need when they are missing:
# curl (a real HTTP client for the end-to-end tests) and redis-server (the
# update bus in the propagation tests; each test starts its own on a free port).
set -euo pipefail

need=()
# Each entry: command:package
for pair in curl:curl redis-server:redis-server; do
  cmd=${pair%%:*}; pkg=${pair#*:}
  command -v "$cmd" >/dev/null 2>&1 || need+=("$pkg")
done
if [ ${#need[@]} -gt 0 ]; then
  echo "==> installing ${need[*]}"
  sudo_cmd=""
  [ "$(id -u)" -ne 0 ] && sudo_cmd="sudo"
  $sudo_cmd apt-get update -qq || true
  DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq "${need[@]}"
fi
