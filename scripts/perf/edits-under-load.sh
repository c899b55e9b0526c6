#!/usr/bin/env bash
# Redirect throughput of an engine while it applies edits (docs/PERFORMANCE.md,
# "Redirects while applying edits"): the control plane receives EDIT_RATE
# PATCHes per second, publishes them over Redis, and the engine applies each
# one (fjall batch + table update) while wrk loads it.
#
#   scripts/perf/edits-under-load.sh                    # 1M links, 1,000 edits/s, 3 rounds
#   LINKS=10000 DURATION=3s ROUNDS=1 WARMUP=1s scripts/perf/edits-under-load.sh   # smoke run
#
# Layout: the engine (one worker, clicks off) pinned to SERVER_CPU; wrk, the
# control plane, redis-server and the edit generator (edit-load.py) share
# CLIENT_CPU. The engine loads its LINKS links from the control plane's
# change log at start (catch-up), then follows the Redis bus only.
# Targets, in alternation over ROUNDS rounds and both wrk modes (plain and
# pipelined, as in compare-nginx.sh):
#   engine          no edits
#   engine+edits    the same engine process while EDIT_RATE edits/s are made
# The ratio of the two is the figure; the engine's CPU per request shows what
# an edit costs it. The edit generator's achieved rate and the versions the
# engine applied during each run are printed and kept in the run directory.
# Other settings: see lib.sh (the client CPU is busy by design here, so
# CLIENT_OTHER_MAX defaults to 100).
set -euo pipefail

# shellcheck source=scripts/perf/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

EDIT_RATE=${EDIT_RATE:-1000}
EDIT_LINKS=${EDIT_LINKS:-1000}
CLIENT_OTHER_MAX=${CLIENT_OTHER_MAX:-100}
QUIET_MAX=${QUIET_MAX_EDITS:-40}

need_tools wrk taskset curl python3 redis-server
((CLIENT_CPU != SERVER_CPU)) || die "SERVER_CPU and CLIENT_CPU must differ"
new_run_dir edits
REDIS_PID=
CONTROL_PID=
EDITOR_PID=
cleanup() {
    stop_all
    [[ -n $CONTROL_PID ]] && kill "$CONTROL_PID" 2>/dev/null
    [[ -n $REDIS_PID ]] && kill "$REDIS_PID" 2>/dev/null
    [[ -n $EDITOR_PID ]] && kill "$EDITOR_PID" 2>/dev/null
    true
}
trap cleanup EXIT
trap 'exit 130' INT TERM

if [[ $SKIP_BUILD != 1 ]]; then
    log "building ricochet-control and ricochet-engine (release)"
    (cd "$REPO" && cargo build --release -p ricochet-control -p ricochet-engine --quiet)
fi
mkdir -p "$RUN_DIR/bin"
cp "$REPO/target/release/ricochet-engine" "$REPO/target/release/ricochet-control" "$RUN_DIR/bin/"
ENGINE_BIN=$RUN_DIR/bin/ricochet-engine
CONTROL_BIN=$RUN_DIR/bin/ricochet-control
pin_self
make_links

# The control plane's store: LINKS links imported while it is stopped.
CONTROL_DATA=$RUN_DIR/control-data
log "importing $LINKS links into the control plane's store"
"$CONTROL_BIN" --data-dir "$CONTROL_DATA" import "$LINKS_CSV" >"$RUN_DIR/control-import.txt" 2>&1
TOKEN=$("$CONTROL_BIN" --data-dir "$CONTROL_DATA" cluster-token 2>/dev/null)
KEY=$("$CONTROL_BIN" --data-dir "$CONTROL_DATA" keys create --name perf --scope admin 2>/dev/null)

REDIS_PORT=$(free_port)
taskset -c "$CLIENT_CPU" redis-server --port "$REDIS_PORT" --save '' --appendonly no \
    >"$RUN_DIR/redis.log" 2>&1 &
REDIS_PID=$!
API_PORT=$(free_port)
taskset -c "$CLIENT_CPU" env RICOCHET_CONTROL_RATE_LIMIT__REQUESTS_PER_SECOND=1000000 \
    RICOCHET_CONTROL_RATE_LIMIT__BURST=1000000 \
    "$CONTROL_BIN" --data-dir "$CONTROL_DATA" --listen "127.0.0.1:$API_PORT" \
    --bus "redis://127.0.0.1:$REDIS_PORT/" >"$RUN_DIR/control.log" 2>&1 &
CONTROL_PID=$!
wait_status "http://127.0.0.1:$API_PORT/api/v1/openapi.json" 200 60 || die "control plane not up, see $RUN_DIR/control.log"

# The links to edit, created through the API (their ids are needed to PATCH).
log "creating $EDIT_LINKS links to edit"
python3 - "$API_PORT" "$KEY" "$EDIT_LINKS" "$RUN_DIR/edit-ids.txt" <<'PY'
import http.client, json, sys
port, key, count, out = int(sys.argv[1]), sys.argv[2], int(sys.argv[3]), sys.argv[4]
api = http.client.HTTPConnection("127.0.0.1", port)
headers = {"Authorization": "Bearer " + key, "Content-Type": "application/json"}
ids = []
for start in range(0, count, 1000):
    body = [{"url": f"https://www.example.com/edit/{i}"} for i in range(start, min(count, start + 1000))]
    api.request("POST", "/api/v1/links/bulk", json.dumps(body), headers)
    response = api.getresponse()
    result = json.loads(response.read())
    assert response.status == 200 and result["failed"] == 0, result
    ids += [str(item["link"]["id"]) for item in result["items"]]
    last_code = result["items"][-1]["link"]["code"]
open(out, "w").write("\n".join(ids) + "\n")
open(out + ".last-code", "w").write(last_code)
PY

# The engine, following the control plane; it catches up on the whole log.
ADMIN_PORT=$(free_port)
ENGINE_PORT=$(free_port)
mkdir -p "$RUN_DIR/servers/engine"
started=$(now_s)
taskset -c "$SERVER_CPU" env RICOCHET_ENGINE_CLICKS__ENABLED=false "$ENGINE_BIN" \
    --data-dir "$RUN_DIR/servers/engine/data" --listen "127.0.0.1:$ENGINE_PORT" \
    --admin-listen "127.0.0.1:$ADMIN_PORT" --workers 1 --default-domain localhost \
    --control-url "http://127.0.0.1:$API_PORT" --bus "redis://127.0.0.1:$REDIS_PORT/" \
    --cluster-token "$TOKEN" run >"$RUN_DIR/servers/engine/server.log" 2>&1 &
TARGET_PID[engine]=$!
# The last change of the log is the last link created above: once it is
# served, the engine has caught up.
wait_status "http://127.0.0.1:$ENGINE_PORT/$(cat "$RUN_DIR/edit-ids.txt.last-code")" 302 600 ||
    die "engine did not catch up, see $RUN_DIR/servers/engine"
log "engine serving $LINKS links $(awk -v a="$started" -v b="$(now_s)" 'BEGIN { printf "%.1f", b - a }') s after its start (catch-up over HTTP)"
for name in engine engine+edits; do
    TARGET_URL[$name]=http://127.0.0.1:$ENGINE_PORT
    MEASURED_PID[$name]=${TARGET_PID[engine]}
    ADMIN_URL[$name]=http://127.0.0.1:$ADMIN_PORT
done

applied_version() {
    curl -s "http://127.0.0.1:$ADMIN_PORT/metrics" | awk '/^ricochet_engine_last_applied_version/ { print $2 }'
}
VERSION_BEFORE=0
start_edits() {
    VERSION_BEFORE=$(applied_version)
    if [[ $1 == engine+edits ]]; then
        taskset -c "$CLIENT_CPU" python3 "$PERF_DIR/edit-load.py" "$API_PORT" "$KEY" \
            "$RUN_DIR/edit-ids.txt" "$EDIT_RATE" 86400 8 >"$RUN_DIR/edits.out" 2>&1 &
        EDITOR_PID=$!
        sleep 1 # the edit stream is steady before wrk starts
    fi
}
stop_edits() {
    local line=
    if [[ -n $EDITOR_PID ]]; then
        kill -TERM "$EDITOR_PID" 2>/dev/null || true
        wait "$EDITOR_PID" || true
        EDITOR_PID=
        line=$(cat "$RUN_DIR/edits.out")
    fi
    sleep 0.5
    local applied=$(($(applied_version) - VERSION_BEFORE))
    log "$1 $2 $3: versions applied by the engine during the run: $applied ${line:+(generator: $line)}"
    printf '%s\t%s\t%s\t%s\t%s\n' "$1" "$2" "$3" "$applied" "$line" >>"$RUN_DIR/edits.tsv"
}
BEFORE_LOAD=start_edits
AFTER_LOAD=stop_edits

run_rounds engine engine+edits

{
    echo "## Redirects while applying $EDIT_RATE edits/s, $(date -I)"
    echo
    echo "$LINKS links, wrk -t1 -c$CONNECTIONS -d$DURATION, pipelined depth $DEPTH, engine on CPU $SERVER_CPU; wrk, control plane, redis-server and the edit generator on CPU $CLIENT_CPU; medians of $ROUNDS rounds."
    echo
    summarize
    echo
    echo "Versions applied by the engine during each run (target, mode, round, versions, generator):"
    echo
    sed 's/^/    /' "$RUN_DIR/edits.tsv"
} | tee "$RUN_DIR/summary.md"
log "raw results in $RUN_DIR"
