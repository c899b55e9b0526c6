#!/usr/bin/env bash
# Redirect throughput with ENDPOINTS webhook endpoints subscribed to
# link.clicked against none, and what the deliveries cost: their number,
# bytes, and lag (docs/PERFORMANCE.md, "Webhooks under load").
#
# One control plane (the links' source, the click store the engine ships its
# windows to, and the webhook dispatcher) and one receiver
# (scripts/perf/webhook-receiver.py) run on the generator's CPU at nice 10,
# as they would on other hosts; one engine with one worker on CPU 0 syncs
# its links from the control plane and ships its click windows to it. Each
# round runs the same load twice, endpoints disabled and enabled (PATCH
# enabled, alternating which goes first); with them disabled, no click event
# is made at all. After each run the script waits for the run's windows to
# become events and every delivery to finish, then reads the receiver's
# counts and lags (from each event's created_at to its arrival).
#
#   cargo build --release -p ricochet-engine -p ricochet-control -p ricochet-loadtest
#   scripts/perf/webhooks-load.sh [OUT_DIR]
#
# Settings (environment): LINKS=100000, ENDPOINTS=100, ROUNDS=3,
# DURATION=15s, DEPTH=16 (pipelined, closed loop), POPULARITY=uniform.
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$REPO"
OUT=${1:-/tmp/ricochet-webhooks-load}
LINKS=${LINKS:-100000}
ENDPOINTS=${ENDPOINTS:-100}
ROUNDS=${ROUNDS:-3}
DURATION=${DURATION:-15s}
DEPTH=${DEPTH:-16}
POPULARITY=${POPULARITY:-uniform}
TOKEN=perf-cluster-token

log() { printf '[%(%H:%M:%S)T] %s\n' -1 "$*" >&2; }
die() { log "error: $*"; exit 1; }
free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}
wait_status() { # URL STATUS
    for _ in $(seq 1 600); do
        [[ $(curl -s -o /dev/null -w '%{http_code}' "$1" || true) == "$2" ]] && return 0
        sleep 0.5
    done
    return 1
}
metric() { # NAME URL
    curl -s "$2/metrics" | awk -v name="$1" '$1 == name { print $2; exit }'
}

for binary in ricochet-engine ricochet-control ricochet-loadtest; do
    [[ -x target/release/$binary ]] || die "build first: cargo build --release -p $binary"
done
rm -rf "$OUT"
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
PIDS=()
cleanup() { for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done; wait 2>/dev/null || true; }
trap cleanup EXIT

log "generating $LINKS links"
python3 scripts/perf/gen-links.py "$LINKS" "$OUT/links.csv" "$OUT/codes.txt" --domain localhost
CONTROL_DIR=$OUT/control
CONTROL_ENV=(RICOCHET_CONTROL_STORAGE__DATA_DIR="$CONTROL_DIR" RICOCHET_CONTROL_LINKS__DEFAULT_DOMAIN=localhost
    RICOCHET_CONTROL_BUS__CLUSTER_TOKEN=$TOKEN RICOCHET_CONTROL_WEBHOOKS__ALLOW_PRIVATE=true
    RICOCHET_CONTROL_WEBHOOKS__MAX_ENDPOINTS="$ENDPOINTS" RICOCHET_CONTROL_SERVER__WORKERS=1)
env "${CONTROL_ENV[@]}" target/release/ricochet-control import "$OUT/links.csv" >"$OUT/import.log" 2>&1 ||
    die "import failed, see $OUT/import.log"
KEY=$(env "${CONTROL_ENV[@]}" target/release/ricochet-control keys create --name perf --scope admin 2>/dev/null |
    grep -o 'rk_[A-Za-z0-9_]*' | head -1)
[[ -n $KEY ]] || die "no admin key"

CONTROL_PORT=$(free_port)
CONTROL=http://127.0.0.1:$CONTROL_PORT
taskset -c 1 nice -n 10 env "${CONTROL_ENV[@]}" RICOCHET_CONTROL_SERVER__LISTEN="127.0.0.1:$CONTROL_PORT" \
    target/release/ricochet-control >"$OUT/control.log" 2>&1 &
PIDS+=($!)
wait_status "$CONTROL/healthz" 200 || die "the control plane did not start, see $OUT/control.log"
RECEIVER_PORT=$(free_port)
RECEIVER=http://127.0.0.1:$RECEIVER_PORT
taskset -c 1 nice -n 10 python3 scripts/perf/webhook-receiver.py "127.0.0.1:$RECEIVER_PORT" >"$OUT/receiver.log" 2>&1 &
PIDS+=($!)
wait_status "$RECEIVER/stats" 200 || die "the receiver did not start"

ENGINE_PORT=$(free_port)
ADMIN_PORT=$(free_port)
taskset -c 0 target/release/ricochet-engine --data-dir "$OUT/engine" --listen "127.0.0.1:$ENGINE_PORT" \
    --admin-listen "127.0.0.1:$ADMIN_PORT" --control-url "$CONTROL" --cluster-token "$TOKEN" \
    --workers 1 --default-domain localhost run >"$OUT/engine.log" 2>&1 &
ENGINE_PID=$!
PIDS+=("$ENGINE_PID")
wait_status "http://127.0.0.1:$ADMIN_PORT/readyz" 200 || die "the engine is not ready, see $OUT/engine.log"
PROBE=$(head -1 "$OUT/codes.txt")
wait_status "http://127.0.0.1:$ENGINE_PORT/$PROBE" 301 || die "the engine does not serve the links"

log "creating $ENDPOINTS endpoints subscribed to link.clicked"
ENDPOINT_IDS=()
for i in $(seq 1 "$ENDPOINTS"); do
    id=$(curl -s -X POST "$CONTROL/api/v1/webhooks" -H "Authorization: Bearer $KEY" \
        -H 'Content-Type: application/json' \
        -d "{\"url\": \"$RECEIVER/hook/$i\", \"events\": [\"link.clicked\"]}" |
        python3 -c 'import json, sys; print(json.load(sys.stdin)["id"])')
    ENDPOINT_IDS+=("$id")
done
set_endpoints() { # true|false
    for id in "${ENDPOINT_IDS[@]}"; do
        curl -s -o /dev/null -X PATCH "$CONTROL/api/v1/webhooks/$id" -H "Authorization: Bearer $KEY" \
            -H 'Content-Type: application/json' -d "{\"enabled\": $1}"
    done
}
# Waits until the last run's windows were made into events (they settle
# 20 s after they end) and no delivery is pending.
drain() {
    sleep 25
    for _ in $(seq 1 600); do
        [[ $(metric ricochet_control_webhook_deliveries_pending "$CONTROL") == 0 ]] && return 0
        sleep 1
    done
    log "warning: deliveries still pending"
}

RESULTS=$OUT/results.tsv
printf 'round\tendpoints\treq_per_s\tp99_ms\tserver_us_per_req\tdeliveries\tevents\tbytes\tlink_entries\tlag_p50_ms\tlag_p99_ms\tlag_max_ms\n' >"$RESULTS"
for round in $(seq 1 "$ROUNDS"); do
    if ((round % 2)); then order=(false true); else order=(true false); fi
    for enabled in "${order[@]}"; do
        set_endpoints "$enabled"
        drain
        curl -s -o /dev/null "$RECEIVER/reset"
        log "round $round, endpoints enabled: $enabled"
        taskset -c 1 target/release/ricochet-loadtest run "http://127.0.0.1:$ENGINE_PORT" \
            --keys "$OUT/codes.txt" --host localhost --popularity "$POPULARITY" --depth "$DEPTH" \
            -c 64 -d "$DURATION" --warmup 2s --cpus 1 --pid "$ENGINE_PID" --json --out none -q \
            >"$OUT/run-$round-$enabled.json"
        drain
        stats=$(curl -s "$RECEIVER/stats")
        python3 - "$OUT/run-$round-$enabled.json" "$round" "$enabled" "$stats" >>"$RESULTS" <<'EOF'
import json, sys
report = json.load(open(sys.argv[1]))
run = report["runs"][0] if "runs" in report else report
stats = json.loads(sys.argv[4])
print("\t".join(str(x) for x in [sys.argv[2], "on" if sys.argv[3] == "true" else "off",
    round(run["throughput"]), run["latency_ms"]["p99"],
    round((run.get("server") or {}).get("cpu_per_request_us", 0), 2),
    stats["deliveries"], stats["distinct_events"], stats["bytes"], stats["link_entries"],
    stats["lag_ms_p50"], stats["lag_ms_p99"], stats["lag_ms_max"]]))
EOF
    done
done
column -t "$RESULTS"
log "control plane: $(metric ricochet_control_webhook_delivered_total "$CONTROL") delivered," \
    "$(metric ricochet_control_webhook_failed_attempts_total "$CONTROL") failed attempts"
