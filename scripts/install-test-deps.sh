#!/usr/bin/env bash
# Installs the tools Ricochet's tests need when they are missing:
# curl (a real HTTP client for the end-to-end tests), redis-server (the
# update bus in the propagation tests; each test starts its own on a free port),
# pebble and pebble-challtestsrv (a test ACME CA and a DNS server whose records
# are set over HTTP: domain verification and certificate issuance tests),
# chromium and chromedriver (Debian's chromium-driver: the web console's
# browser tests drive headless Chromium over WebDriver, see
# control/src/test_util/browser.rs),
# and a Python venv with openapi-spec-validator and schemathesis (the control
# plane's OpenAPI document is validated and fuzzed with them; see
# control/tests/openapi.rs) and aiosmtpd (a real SMTP server that receives
# invitation mail in control/tests/invitation_mail.rs). The venv is RICOCHET_TEST_VENV, by default
# ~/.cache/ricochet-test-venv, shared by every checkout; a present one is kept.
set -euo pipefail

need=()
# Each entry: command:package
for pair in curl:curl redis-server:redis-server python3:python3 pebble:pebble pebble-challtestsrv:pebble \
            chromium:chromium chromedriver:chromium-driver; do
  cmd=${pair%%:*}; pkg=${pair#*:}
  command -v "$cmd" >/dev/null 2>&1 || need+=("$pkg")
done
python3 -c 'import venv, ensurepip' >/dev/null 2>&1 || need+=(python3-venv)
if [ ${#need[@]} -gt 0 ]; then
  echo "==> installing ${need[*]}"
  sudo_cmd=""
  [ "$(id -u)" -ne 0 ] && sudo_cmd="sudo"
  $sudo_cmd apt-get update -qq || true
  DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq "${need[@]}"
fi

venv=${RICOCHET_TEST_VENV:-$HOME/.cache/ricochet-test-venv}
python_tools=(openapi-spec-validator schemathesis aiosmtpd)
missing=()
for tool in "${python_tools[@]}"; do
  [ -x "$venv/bin/$tool" ] || missing+=("$tool")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "==> installing ${missing[*]} into $venv"
  [ -x "$venv/bin/pip" ] || python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check "${python_tools[@]}"
fi
