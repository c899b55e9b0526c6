#!/usr/bin/env bash
# Does one abusive client raise the other clients' latency, with the
# per-client limits ([server.clients]) off and on? (docs/PERFORMANCE.md,
# "One abusive client and the others' p99"; docs/ARCHITECTURE.md,
# "Per-client limits".)
#
#   scripts/perf/client-limits.sh                              # 3 rounds of 15 s runs
#   LINKS=10000 DURATION_S=3 ROUNDS=1 QUIET_WAIT=0 scripts/perf/client-limits.sh   # smoke run
#
# Layout: two engines (one worker each, clicks off, the same LINKS links),
# one with the limits off and one with them on, both pinned to SERVER_CPU
# (the idle one only waits). Both generators are ricochet-loadtest, pinned
# to CLIENT_CPU:
#   measuring  an open loop of RATE req/s over CONNECTIONS keep-alive
#              connections from CLIENTS addresses (127.0.1.1, 127.0.1.2, …,
#              `--source`, connections taking them in turn): the other
#              clients, each well under the limits, whose p50, p99 and p99.9
#              (from when each request should have left) are the figures;
#   abuser     a closed loop from 127.0.0.2 (Linux's loopback answers all
#              of 127.0.0.0/8): ABUSER_CONNECTIONS connections,
#              ABUSER_DEPTH requests pipelined on each, as fast as the engine
#              answers, reconnecting at once when it is closed. It starts
#              ABUSER_LEAD s before the measuring run and ends after it. It
#              runs at nice ABUSER_NICE, so on the shared CPU it never delays
#              the measuring generator's own sends (it still takes all the CPU
#              the measuring one leaves).
# Scenarios, in alternation over ROUNDS rounds:
#   baseline          limits off, no abuser
#   baseline+limits   limits on, no abuser (what the limits cost a client)
#   abuser            limits off, the abuser flooding
#   abuser+limits     limits on, the abuser flooding
# The limits when on (each measuring client must stay under them):
# LIMIT_CONNECTIONS open connections per client, LIMIT_RPS requests per
# second with a burst of LIMIT_BURST.
# Prints medians as markdown and "abuser+limits p99 / baseline p99" (the
# issue asks for at most 2); everything raw goes to WORK_DIR/run-clients-DATE/.
# Each run waits for a quiet machine first (QUIET_MAX, QUIET_WAIT: lib.sh).
set -euo pipefail

# Before lib.sh, whose defaults are wrk's.
LINKS=${LINKS:-100000}
DURATION_S=${DURATION_S:-15}
RATE=${RATE:-10000}
CONNECTIONS=${CONNECTIONS:-32}
CLIENTS=${CLIENTS:-16}
ABUSER_CONNECTIONS=${ABUSER_CONNECTIONS:-256}
ABUSER_DEPTH=${ABUSER_DEPTH:-16}
ABUSER_LEAD=${ABUSER_LEAD:-2}
ABUSER_NICE=${ABUSER_NICE:-10}
LIMIT_CONNECTIONS=${LIMIT_CONNECTIONS:-8}
LIMIT_RPS=${LIMIT_RPS:-2000}
LIMIT_BURST=${LIMIT_BURST:-200}
# Both generators share the client CPU by design.
CLIENT_OTHER_MAX=${CLIENT_OTHER_MAX:-100}

# shellcheck source=scripts/perf/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

((CLIENTS >= 1 && CLIENTS <= 254)) || die "CLIENTS must be 1 to 254"
SOURCES=$(seq -f '127.0.1.%g' 1 "$CLIENTS" | paste -sd ,)

need_tools taskset curl python3
((CLIENT_CPU != SERVER_CPU)) || die "SERVER_CPU and CLIENT_CPU must differ"
ip -o addr show lo 2>/dev/null | grep -q '127.0.0.1/8' ||
    log "warning: lo is not 127.0.0.1/8; binding 127.0.0.2 may fail"
new_run_dir clients
ABUSER_PID=
cleanup() {
    [[ -n $ABUSER_PID ]] && kill "$ABUSER_PID" 2>/dev/null
    stop_all
    true
}
trap cleanup EXIT
trap 'exit 130' INT TERM

if [[ $SKIP_BUILD != 1 ]]; then
    log "building ricochet-engine and ricochet-loadtest (release)"
    (cd "$REPO" && cargo build --release -p ricochet-engine -p ricochet-loadtest --quiet)
fi
mkdir -p "$RUN_DIR/bin"
cp "$REPO/target/release/ricochet-engine" "$REPO/target/release/ricochet-loadtest" "$RUN_DIR/bin/"
ENGINE_BIN=$RUN_DIR/bin/ricochet-engine
LOADTEST_BIN=$RUN_DIR/bin/ricochet-loadtest
pin_self
make_links
import_links

# Starts engine NAME (limits "off" or "on") pinned to SERVER_CPU.
start_engine() {
    local name=$1 limits=$2 port admin dir env=(RICOCHET_ENGINE_CLICKS__ENABLED=false)
    port=$(free_port)
    admin=$(free_port)
    dir="$RUN_DIR/servers/$name"
    mkdir -p "$dir"
    cp -a "$ENGINE_DATA" "$dir/data"
    if [[ $limits == on ]]; then
        env+=(RICOCHET_ENGINE_SERVER__CLIENTS__MAX_CONNECTIONS="$LIMIT_CONNECTIONS"
            RICOCHET_ENGINE_SERVER__CLIENTS__REQUESTS_PER_SECOND="$LIMIT_RPS"
            RICOCHET_ENGINE_SERVER__CLIENTS__BURST="$LIMIT_BURST")
    fi
    taskset -c "$SERVER_CPU" env "${env[@]}" "$ENGINE_BIN" --data-dir "$dir/data" \
        --listen "127.0.0.1:$port" --admin-listen "127.0.0.1:$admin" \
        --workers 1 --default-domain localhost run >"$dir/server.log" 2>&1 &
    TARGET_PID[$name]=$!
    MEASURED_PID[$name]=$!
    TARGET_URL[$name]=http://127.0.0.1:$port
    ADMIN_URL[$name]=http://127.0.0.1:$admin
    wait_status "${ADMIN_URL[$name]}/readyz" 200 || die "$name not ready, see $dir/server.log"
    check_redirect "$name"
    log "$name ready on ${TARGET_URL[$name]} (limits $limits), pid ${MEASURED_PID[$name]}"
}

start_engine engine-off off
start_engine engine-on on

printf 'scenario\tround\tdisturbed\tp50_ms\tp99_ms\tp999_ms\tthroughput\terrors\tnon_3xx\tserver_cpu_per_request_us\tabuser_answered_per_s\tabuser_429\tabuser_errors\trefused_connections\tlimited_requests\n' \
    >"$RUN_DIR/runs.tsv"

# The engine's per-client counters, as "refused limited".
client_counters() {
    curl -s "${ADMIN_URL[$1]}/metrics" | awk '
        /^ricochet_engine_client_connections_refused_total / { refused = $2 }
        /^ricochet_engine_client_requests_limited_total / { limited = $2 }
        END { print refused + 0, limited + 0 }'
}

# One measured run of SCENARIO in ROUND.
measure() {
    local scenario=$1 round=$2 engine abuser=0 out
    case $scenario in
        baseline) engine=engine-off ;;
        baseline+limits) engine=engine-on ;;
        abuser) engine=engine-off abuser=1 ;;
        abuser+limits) engine=engine-on abuser=1 ;;
    esac
    wait_quiet
    out="$RUN_DIR/$scenario-$round"
    local url=${TARGET_URL[$engine]} before after
    read -r -a before < <(client_counters "$engine")
    if ((abuser)); then
        taskset -c "$CLIENT_CPU" nice -n "$ABUSER_NICE" "$LOADTEST_BIN" run "$url" \
            --keys "$LINKS_CSV" --source 127.0.0.2 \
            --connections "$ABUSER_CONNECTIONS" --depth "$ABUSER_DEPTH" \
            --duration "$((DURATION_S + 2 * ABUSER_LEAD))s" \
            --json --out none --quiet >"$out-abuser.json" 2>"$out-abuser.log" &
        ABUSER_PID=$!
        nap "$ABUSER_LEAD"
    fi
    local flooding=""
    ((abuser)) && flooding=", the abuser flooding from 127.0.0.2"
    log "$scenario, round $round: $RATE req/s from $CLIENTS clients against $engine$flooding"
    taskset -c "$CLIENT_CPU" "$LOADTEST_BIN" run "$url" --keys "$LINKS_CSV" --source "$SOURCES" \
        --rate "$RATE" --connections "$CONNECTIONS" --duration "${DURATION_S}s" \
        --pid "${MEASURED_PID[$engine]}" --json --out none --quiet >"$out.json" 2>"$out.log"
    if ((abuser)); then
        wait "$ABUSER_PID" || log "the abuser exited with an error, see $out-abuser.log"
        ABUSER_PID=
    fi
    read -r -a after < <(client_counters "$engine")
    python3 - "$out" "$scenario" "$round" "$DISTURBED" "$abuser" \
        "$((after[0] - before[0]))" "$((after[1] - before[1]))" >>"$RUN_DIR/runs.tsv" <<'PY'
import json, sys
out, scenario, round_, disturbed, abuser, refused, limited = sys.argv[1:]
run = json.load(open(f"{out}.json"))["runs"][0]
lat = run["latency_ms"]
non_3xx = sum(n for status, n in run["statuses"].items() if not status.startswith("3"))
server = run.get("server") or {}
answered = too_many = errors = 0
if abuser == "1":
    a = json.load(open(f"{out}-abuser.json"))["runs"][0]
    answered, too_many, errors = a["throughput"], a["statuses"].get("429", 0), a["error_total"]
print("\t".join(str(x) for x in (
    scenario, round_, disturbed, lat["p50"], lat["p99"], lat["p999"], round(run["throughput"]),
    run["error_total"], non_3xx, round(server.get("cpu_per_request_us", 0), 2),
    round(answered), too_many, errors, refused, limited)))
PY
    log "  p50 p99 p99.9 (ms), connections refused, requests limited: $(tail -n 1 "$RUN_DIR/runs.tsv" | cut -f 4-6,14,15 | tr '\t' ' ')"
}

SCENARIOS=(baseline baseline+limits abuser abuser+limits)
for ((round = 1; round <= ROUNDS; round++)); do
    for scenario in "${SCENARIOS[@]}"; do measure "$scenario" "$round"; done
done
for name in engine-off engine-on; do
    curl -s "${ADMIN_URL[$name]}/metrics" >"$RUN_DIR/metrics-$name.txt" || true
done
stop_all

{
    echo "## One abusive client and the others' p99, $(date -I)"
    echo
    echo "$LINKS links; engine: one worker on CPU $SERVER_CPU, clicks off. Measuring: open loop $RATE req/s, $CONNECTIONS connections from $CLIENTS addresses (127.0.1.1–$CLIENTS). Abuser: closed loop, $ABUSER_CONNECTIONS connections × depth $ABUSER_DEPTH from 127.0.0.2 (nice $ABUSER_NICE). Both generators on CPU $CLIENT_CPU. Limits on: max_connections $LIMIT_CONNECTIONS, requests_per_second $LIMIT_RPS, burst $LIMIT_BURST. ${DURATION_S} s runs, medians of $ROUNDS rounds."
    echo
    python3 - "$RUN_DIR/runs.tsv" <<'PY'
import csv, statistics, sys
rows = list(csv.DictReader(open(sys.argv[1]), delimiter="\t"))
med = statistics.median
print("| scenario | p50 | p99 | p99.9 | req/s | errors, non-3xx | server µs/request | abuser answers/s | abuser 429s | connections refused | requests limited | rounds |")
print("|---|---|---|---|---|---|---|---|---|---|---|---|")
p99 = {}
for scenario in dict.fromkeys(r["scenario"] for r in rows):
    runs = [r for r in rows if r["scenario"] == scenario]
    m = lambda key: med(float(r[key]) for r in runs)
    p99[scenario] = m("p99_ms")
    disturbed = sum(int(r["disturbed"]) for r in runs)
    print(f"| {scenario} | {m('p50_ms'):.2f} ms | {m('p99_ms'):.2f} ms | {m('p999_ms'):.2f} ms | "
          f"{m('throughput'):,.0f} | {sum(int(r['errors']) for r in runs)}, {sum(int(r['non_3xx']) for r in runs)} | "
          f"{m('server_cpu_per_request_us'):.2f} | {m('abuser_answered_per_s'):,.0f} | {m('abuser_429'):,.0f} | "
          f"{m('refused_connections'):,.0f} | {m('limited_requests'):,.0f} | {len(runs)}"
          + (f" ({disturbed} disturbed)" if disturbed else "") + " |")
print()
base = p99.get("baseline") or float("nan")
for scenario in ("abuser", "abuser+limits"):
    if scenario in p99:
        print(f"- {scenario} p99 / baseline p99 = {p99[scenario] / base:.2f}")
PY
} | tee "$RUN_DIR/summary.md"
log "raw results in $RUN_DIR"
