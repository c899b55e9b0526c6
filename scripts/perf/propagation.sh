#!/usr/bin/env bash
# Measures the control plane's figures with Redis on loopback: propagation
# latency from the API's 2xx to an engine serving the new target (EDITS edits),
# links created per second through bulk calls, and a CSV import of LINKS links.
# Usage: scripts/perf/propagation.sh   (env: EDITS=10000 LINKS=1000000)
set -euo pipefail
cd "$(dirname "$0")/../.."
EDITS=${EDITS:-10000}
LINKS=${LINKS:-1000000}
command -v redis-server >/dev/null || scripts/install-test-deps.sh
cargo build --release -q -p ricochet-control -p ricochet-engine
work=$(mktemp -d /tmp/ricochet-propagation.XXXX)
trap 'kill $(jobs -p) 2>/dev/null || true; redis-cli -p 16390 shutdown nosave >/dev/null 2>&1 || true' EXIT
redis-server --port 16390 --save '' --appendonly no --daemonize yes --pidfile "$work/redis.pid" --logfile "$work/redis.log"
bin=target/release
token=$($bin/ricochet-control --data-dir "$work/control" cluster-token 2>/dev/null)
key=$($bin/ricochet-control --data-dir "$work/control" keys create --name perf --scope admin 2>/dev/null)
export RICOCHET_CONTROL_RATE_LIMIT__REQUESTS_PER_SECOND=1000000 RICOCHET_CONTROL_RATE_LIMIT__BURST=1000000
$bin/ricochet-control --data-dir "$work/control" --listen 127.0.0.1:16391 --bus redis://127.0.0.1:16390/ >"$work/control.log" 2>&1 &
sleep 1
$bin/ricochet-engine --data-dir "$work/engine" --listen 127.0.0.1:16392 --admin-listen 127.0.0.1:16393 \
  --control-url http://127.0.0.1:16391 --bus redis://127.0.0.1:16390/ --cluster-token "$token" --workers 1 >"$work/engine.log" 2>&1 &
until curl -sf http://127.0.0.1:16393/readyz >/dev/null; do sleep 0.1; done

echo "== propagation latency ($EDITS edits, Redis on loopback)"
python3 scripts/perf/edit-latency.py 16391 16392 "$key" "$EDITS"

echo "== bulk create (20 calls x 1000 links)"
python3 - "$key" <<'PY'
import http.client, json, sys, time
api = http.client.HTTPConnection("127.0.0.1", 16391)
headers = {"Authorization": "Bearer " + sys.argv[1], "Content-Type": "application/json"}
bodies = [json.dumps([{"url": f"https://www.example.com/landing/{b}/{i}?utm_source=bulk"} for i in range(1000)]) for b in range(20)]
started = time.perf_counter()
for body in bodies:
    api.request("POST", "/api/v1/links/bulk", body, headers)
    response = api.getresponse(); result = json.loads(response.read())
    assert response.status == 200 and result["created"] == 1000, result
elapsed = time.perf_counter() - started
print(f"20000 links in {elapsed:.2f}s: {20000 / elapsed:.0f} links/s")
PY

echo "== import of $LINKS links from CSV (control plane stopped)"
kill %1 2>/dev/null || true; sleep 1
python3 scripts/perf/gen-links.py "$LINKS" "$work/links.csv" "$work/codes.txt"
time $bin/ricochet-control --data-dir "$work/import" import "$work/links.csv"
