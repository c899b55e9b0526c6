#!/usr/bin/env bash
# Clicks off and on, alternated, one open-loop run each per round
# (docs/PERFORMANCE.md, "Click capture and the tail"): one engine worker on
# CPU 0, the load tester on CPU 1, LINKS links, RATES requests/s, ROUNDS
# rounds. Prints p99 / p99.9 from each request's intended send (latency_ms)
# and from its actual send (service_ms), the send lag and dropped clicks.
#   cargo build --release -p ricochet-engine -p ricochet-loadtest
#   scripts/perf/clicks-tail-pairs.sh [OUT_DIR]
# Settings (environment): LINKS=200000 RATES="30000 50000" ROUNDS=3 DURATION=12s
set -euo pipefail
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
R=$REPO/target/release
OUT=${1:-/tmp/ricochet-clicks-tail-pairs}
LINKS=${LINKS:-200000}; RATES=${RATES:-30000 50000}; ROUNDS=${ROUNDS:-3}; DURATION=${DURATION:-12s}
[[ -x $R/ricochet-engine && -x $R/ricochet-loadtest ]] || { echo "build first: cargo build --release" >&2; exit 1; }
rm -rf "$OUT"; mkdir -p "$OUT"; cd "$OUT"
python3 - "$LINKS" <<'PY'
import random, string, sys
r = random.Random(1)
with open("links.csv", "w") as f:
    for _ in range(int(sys.argv[1])):
        c = "".join(r.choice(string.ascii_letters + string.digits) for _ in range(8))
        f.write(f",{c},https://www.example.com/articles/{c}\n")
PY
"$R/ricochet-engine" --data-dir data0 import links.csv --quiet
"$R/ricochet-loadtest" stalls --cpus 0,1 --duration 5s 2>/dev/null | tail -1
one() { # CLICKS(on|off) RATE TAG
    rm -rf "data-$3"; cp -r data0 "data-$3"
    [[ $1 == on ]] && enabled=true || enabled=false
    RICOCHET_ENGINE_CLICKS__ENABLED=$enabled taskset -c 0 "$R/ricochet-engine" --data-dir "data-$3" \
        --listen 127.0.0.1:18181 --admin-listen 127.0.0.1:18182 --workers 1 >"engine-$3.log" 2>&1 &
    local engine=$!
    for _ in $(seq 100); do curl -sf -o /dev/null http://127.0.0.1:18182/readyz && break; sleep 0.2; done
    taskset -c 1 "$R/ricochet-loadtest" run http://127.0.0.1:18181 --keys links.csv --rate "$2" \
        -d "$DURATION" --warmup 2s -c 64 --cpus 1 --json --out none >"run-$3.json" 2>"run-$3.err" || true
    dropped=$(curl -s http://127.0.0.1:18182/metrics | awk '$1 == "ricochet_clicks_dropped_total" { print $2 }')
    kill "$engine"; wait "$engine" 2>/dev/null || true
    python3 - "run-$3.json" "$3" "${dropped:--}" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))["runs"][0]
l, s, g = r["latency_ms"], r["service_ms"], r["send_lag_ms"]
print("%-22s intended %6.2f / %6.2f   actual %6.2f / %6.2f   send lag p99 %5.2f   gen %3.0f %%   dropped %s"
      % (sys.argv[2], l["p99"], l["p999"], s["p99"], s["p999"], g["p99"], 100 * r["generator"]["busy"], sys.argv[3]))
PY
}
for round in $(seq "$ROUNDS"); do
    for rate in $RATES; do
        for clicks in off on; do one "$clicks" "$rate" "clicks-$clicks-$rate-r$round"; done
    done
done
