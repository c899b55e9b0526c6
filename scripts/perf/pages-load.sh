#!/usr/bin/env bash
# Link-in-bio pages against redirects in one engine holding 1,000,000 links
# and 100,000 pages (docs/PERFORMANCE.md, "Pages"): pipelined runs of
# redirects (302), page answers (200 with a 6,000-byte document, as is and
# gzipped for a browser's Accept-Encoding) and page revalidations (304,
# If-None-Match of the page's ETag), in rotating order, ROUNDS times; the
# server's CPU per request from /proc.
#
# `page-store` writes the engine's data directory and the key files; the
# engine (one worker, CPU 0, default settings: clicks captured) serves them
# without a control plane; the load tester runs on CPU 1.
#
#   cargo build --release -p ricochet-engine -p ricochet-loadtest -p ricochet-benches --bin page-store
#   scripts/perf/pages-load.sh [OUT_DIR]
#
# Settings (environment): LINKS=1000000, PAGES=100000, ROUNDS=3,
# DURATION=15s, DEPTH=16, ENGINE=target/release/ricochet-engine. With
# PAGES=0 the engine imports the links itself (`ricochet-engine import`),
# so a build from before pages (which cannot read page-store's records)
# can be compared on redirects:
#   PAGES=0 ENGINE=/tmp/before/target/release/ricochet-engine scripts/perf/pages-load.sh /tmp/before-run
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$REPO"
OUT=${1:-/tmp/ricochet-pages-load}
LINKS=${LINKS:-1000000}
PAGES=${PAGES:-100000}
ROUNDS=${ROUNDS:-3}
DURATION=${DURATION:-15s}
DEPTH=${DEPTH:-16}
ENGINE=${ENGINE:-target/release/ricochet-engine}

log() { printf '[%(%H:%M:%S)T] %s\n' -1 "$*" >&2; }
die() { log "error: $*"; exit 1; }
free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}
wait_status() { # URL STATUS [HOST]
    for _ in $(seq 1 600); do
        [[ $(curl -s -o /dev/null -w '%{http_code}' -H "Host: ${3:-localhost}" "$1" || true) == "$2" ]] && return 0
        sleep 0.5
    done
    return 1
}

for binary in "$ENGINE" target/release/ricochet-loadtest target/release/page-store; do
    [[ -x $binary ]] || die "build first: $binary (see the header of this script)"
done
rm -rf "$OUT"
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
ENGINE_PID=
cleanup() { [[ -n $ENGINE_PID ]] && kill "$ENGINE_PID" 2>/dev/null; wait 2>/dev/null || true; }
trap cleanup EXIT

log "writing $LINKS links and $PAGES pages"
target/release/page-store --links "$LINKS" --pages "$PAGES" --data-dir "$OUT/seed" --keys-dir "$OUT" \
    >"$OUT/page-store.log" 2>&1 || die "page-store failed, see $OUT/page-store.log"
if ((PAGES == 0)); then
    rm -rf "$OUT/seed"
    "$ENGINE" --data-dir "$OUT/engine" import "$OUT/links.csv" --quiet >"$OUT/import.log" 2>&1 ||
        die "import failed, see $OUT/import.log"
else
    mv "$OUT/seed" "$OUT/engine"
fi

PORT=$(free_port)
ADMIN=$(free_port)
taskset -c 0 "$ENGINE" --data-dir "$OUT/engine" --listen "127.0.0.1:$PORT" --admin-listen "127.0.0.1:$ADMIN" \
    --workers 1 --default-domain go.example run >"$OUT/engine.log" 2>&1 &
ENGINE_PID=$!
wait_status "http://127.0.0.1:$ADMIN/readyz" 200 || die "the engine is not ready, see $OUT/engine.log"
FIRST_LINK=$(head -1 "$OUT/links.csv" | cut -d, -f2)
FIRST_PAGE=$(head -1 "$OUT/pages.csv" | cut -d, -f2)
wait_status "http://127.0.0.1:$PORT/$FIRST_LINK" 302 go.example || die "the engine does not serve the links"
KINDS=(redirect)
if [[ $(curl -s -o /dev/null -w '%{http_code}' -H 'Host: go.example' "http://127.0.0.1:$PORT/$FIRST_PAGE") == 200 ]]; then
    KINDS=(redirect page_200 page_200_gzip page_304)
    ETAG=$(curl -sI -H 'Host: go.example' "http://127.0.0.1:$PORT/$FIRST_PAGE" | awk -F': ' 'tolower($1) == "etag" { print $2 }' | tr -d '\r')
    [[ -n $ETAG ]] || die "pages answer without an ETag"
else
    log "this engine does not serve pages: redirects only"
fi
log "engine RSS: $(awk '/VmRSS/ { print $2 " kB" }' /proc/$ENGINE_PID/status)"

RESULTS=$OUT/results.tsv
printf 'round\tkind\treq_per_s\tp50_ms\tp99_ms\tserver_us_per_req\terrors\n' >"$RESULTS"
for round in $(seq 1 "$ROUNDS"); do
    # Rotate the order so no kind always runs first.
    order=("${KINDS[@]:round % ${#KINDS[@]}}" "${KINDS[@]:0:round % ${#KINDS[@]}}")
    for kind in "${order[@]}"; do
        case $kind in
            redirect) args=(--keys "$OUT/links.csv") ;;
            page_200) args=(--keys "$OUT/pages.csv") ;;
            page_200_gzip) args=(--keys "$OUT/pages.csv" --header "Accept-Encoding: gzip, deflate, br, zstd") ;;
            page_304) args=(--keys "$OUT/pages-304.csv" --header "If-None-Match: $ETAG") ;;
        esac
        log "round $round: $kind"
        taskset -c 1 target/release/ricochet-loadtest run "http://127.0.0.1:$PORT" "${args[@]}" \
            --depth "$DEPTH" -c 64 -d "$DURATION" --warmup 2s --cpus 1 --pid "$ENGINE_PID" \
            --json --out none -q >"$OUT/run-$round-$kind.json"
        python3 - "$OUT/run-$round-$kind.json" "$round" "$kind" >>"$RESULTS" <<'EOF'
import json, sys
report = json.load(open(sys.argv[1]))
run = report["runs"][0] if "runs" in report else report
print("\t".join(str(x) for x in [sys.argv[2], sys.argv[3], round(run["throughput"]),
    run["latency_ms"]["p50"], run["latency_ms"]["p99"],
    round((run.get("server") or {}).get("cpu_per_request_us", 0), 3), run.get("error_total", 0)]))
EOF
    done
done
log "engine RSS: $(awk '/VmRSS/ { print $2 " kB" }' /proc/$ENGINE_PID/status)"
column -t "$RESULTS"
