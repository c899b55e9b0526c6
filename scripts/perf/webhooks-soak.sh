#!/usr/bin/env bash
# A soak of the webhook dispatcher (docs/PERFORMANCE.md, "Webhooks soak"):
# ENDPOINTS endpoints subscribed to every event type, of which SLOW answer
# after 3 s, HANGING after 15 s (past the 10 s limit) and FAILING with 500,
# while a driver edits links at RATE edits a second for DURATION. Every
# minute: the control plane's RSS and CPU, deliveries pending, delivered and
# failed totals, and the healthy endpoints' lag (event logged → arrival).
# At the end, drift is flagged: RSS growing from the first to the last
# quarter, or pending deliveries growing without bound.
#
#   cargo build --release -p ricochet-control
#   scripts/perf/webhooks-soak.sh [OUT_DIR]
#
# Settings (environment): DURATION=1800 (seconds), RATE=20, ENDPOINTS=40,
# SLOW=3, HANGING=1, FAILING=4, LINKS=200, RETRY_DELAYS='["10s", "30s", "2m"]'
# (the failing endpoints' deliveries go dead after 2 min 40 s, so the backlog
# reaches its steady state early in the run; with the default 1m/5m/30m it
# would still be growing at 30 minutes).
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$REPO"
OUT=${1:-/tmp/ricochet-webhooks-soak}
DURATION=${DURATION:-1800}
RATE=${RATE:-20}
ENDPOINTS=${ENDPOINTS:-40}
SLOW=${SLOW:-3}
HANGING=${HANGING:-1}
FAILING=${FAILING:-4}
LINKS=${LINKS:-200}
RETRY_DELAYS=${RETRY_DELAYS:-'["10s", "30s", "2m"]'}

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
metric() { # NAME
    curl -s "$CONTROL/metrics" | awk -v name="$1" '$1 == name { print $2; exit }'
}

[[ -x target/release/ricochet-control ]] || die "build first: cargo build --release -p ricochet-control"
rm -rf "$OUT"
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
PIDS=()
cleanup() { for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done; wait 2>/dev/null || true; }
trap cleanup EXIT

CONTROL_ENV=(RICOCHET_CONTROL_STORAGE__DATA_DIR="$OUT/control" RICOCHET_CONTROL_LINKS__DEFAULT_DOMAIN=localhost
    RICOCHET_CONTROL_WEBHOOKS__ALLOW_PRIVATE=true RICOCHET_CONTROL_WEBHOOKS__MAX_ENDPOINTS="$ENDPOINTS"
    RICOCHET_CONTROL_WEBHOOKS__RETRY_DELAYS="$RETRY_DELAYS"
    RICOCHET_CONTROL_RATE_LIMIT__REQUESTS_PER_SECOND=100000 RICOCHET_CONTROL_RATE_LIMIT__BURST=100000)
KEY=$(env "${CONTROL_ENV[@]}" target/release/ricochet-control keys create --name soak --scope admin 2>/dev/null |
    grep -o 'rk_[A-Za-z0-9_]*' | head -1)
[[ -n $KEY ]] || die "no admin key"
PORT=$(free_port)
CONTROL=http://127.0.0.1:$PORT
env "${CONTROL_ENV[@]}" RICOCHET_CONTROL_SERVER__LISTEN="127.0.0.1:$PORT" \
    target/release/ricochet-control >"$OUT/control.log" 2>&1 &
CONTROL_PID=$!
PIDS+=("$CONTROL_PID")
wait_status "$CONTROL/healthz" 200 || die "the control plane did not start, see $OUT/control.log"
RECEIVER_PORT=$(free_port)
RECEIVER=http://127.0.0.1:$RECEIVER_PORT
python3 scripts/perf/webhook-receiver.py "127.0.0.1:$RECEIVER_PORT" >"$OUT/receiver.log" 2>&1 &
PIDS+=($!)
wait_status "$RECEIVER/stats" 200 || die "the receiver did not start"

api() { # METHOD PATH [BODY]
    curl -s -X "$1" "$CONTROL$2" -H "Authorization: Bearer $KEY" -H 'Content-Type: application/json' ${3:+-d "$3"}
}
log "creating $ENDPOINTS endpoints ($SLOW slow, $HANGING hanging, $FAILING failing) and $LINKS links"
for i in $(seq 1 "$ENDPOINTS"); do
    if ((i <= SLOW)); then path=slow; elif ((i <= SLOW + HANGING)); then path=hang
    elif ((i <= SLOW + HANGING + FAILING)); then path=fail; else path=hook; fi
    api POST /api/v1/webhooks "{\"url\": \"$RECEIVER/$path/$i\", \"events\": [\"*\"]}" >/dev/null
done
for i in $(seq 1 "$LINKS"); do
    api POST /api/v1/links "{\"url\": \"https://example.com/$i\", \"code\": \"soak$i\"}" >/dev/null
done
curl -s -o /dev/null "$RECEIVER/reset"

log "editing links at $RATE/s for $DURATION s"
python3 - "$CONTROL" "$KEY" "$RATE" "$DURATION" "$LINKS" >"$OUT/driver.log" 2>&1 <<'EOF' &
import json, sys, time, urllib.request
base, key, rate, duration, links = sys.argv[1], sys.argv[2], float(sys.argv[3]), float(sys.argv[4]), int(sys.argv[5])
ids = [l["id"] for l in json.load(urllib.request.urlopen(urllib.request.Request(
    base + "/api/v1/links?limit=1000", headers={"Authorization": "Bearer " + key})))["links"]]
start, sent, failed = time.time(), 0, 0
while time.time() - start < duration:
    due = start + sent / rate
    if due > time.time():
        time.sleep(due - time.time())
    body = json.dumps({"title": "edit %d" % sent}).encode()
    request = urllib.request.Request(base + "/api/v1/links/%d" % ids[sent % len(ids)], data=body, method="PATCH",
        headers={"Authorization": "Bearer " + key, "Content-Type": "application/json"})
    try:
        urllib.request.urlopen(request).read()
    except Exception as error:
        failed += 1
    sent += 1
print(json.dumps({"sent": sent, "failed": failed}))
EOF
DRIVER=$!
PIDS+=("$DRIVER")

SAMPLES=$OUT/samples.tsv
printf 'minute\trss_kb\tcpu_s\tpending\tdelivered\tfailed_attempts\treceived\tlag_p99_ms\tslow\tfailed\thung\n' >"$SAMPLES"
ticks() { awk '{ print $14 + $15 }' "/proc/$CONTROL_PID/stat"; }
HZ=$(getconf CLK_TCK)
minute=0
while kill -0 "$DRIVER" 2>/dev/null || ((minute == 0)); do
    sleep 60
    minute=$((minute + 1))
    stats=$(curl -s "$RECEIVER/stats")
    curl -s -o /dev/null "$RECEIVER/reset"
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$minute" \
        "$(awk '/VmRSS/ { print $2 }' /proc/$CONTROL_PID/status)" \
        "$(awk -v t="$(ticks)" -v hz="$HZ" 'BEGIN { printf "%.1f", t / hz }')" \
        "$(metric ricochet_control_webhook_deliveries_pending)" \
        "$(metric ricochet_control_webhook_delivered_total)" \
        "$(metric ricochet_control_webhook_failed_attempts_total)" \
        "$(python3 -c 'import json,sys; s=json.loads(sys.argv[1]); print("\t".join(str(s[k]) for k in ("deliveries","lag_ms_p99","slow","failed","hung")))' "$stats")" \
        >>"$SAMPLES"
    log "$(tail -1 "$SAMPLES")"
done
log "driver: $(cat "$OUT/driver.log")"
column -t "$SAMPLES"
python3 - "$SAMPLES" <<'EOF'
import csv, sys
rows = list(csv.DictReader(open(sys.argv[1]), delimiter="\t"))
quarter = max(1, len(rows) // 4)
mean = lambda rs, k: sum(float(r[k] or 0) for r in rs) / len(rs)
first, last = rows[:quarter], rows[-quarter:]
rss = (mean(first, "rss_kb"), mean(last, "rss_kb"))
pending = (mean(first, "pending"), mean(last, "pending"))
lag = (mean(first, "lag_p99_ms"), mean(last, "lag_p99_ms"))
print("RSS first/last quarter: %.0f / %.0f kB (%+.1f %%)" % (rss[0], rss[1], 100 * (rss[1] / rss[0] - 1)))
print("pending first/last quarter: %.0f / %.0f" % pending)
print("healthy endpoints' lag p99 first/last quarter: %.0f / %.0f ms" % lag)
flags = []
if rss[1] > rss[0] * 1.2:
    flags.append("memory grew by more than 20 %")
if pending[1] > max(100, 2 * pending[0]):
    flags.append("the backlog grew")
if lag[1] > max(2000, 2 * lag[0]):
    flags.append("lag grew")
print("drift: " + ("; ".join(flags) if flags else "none"))
EOF
