#!/usr/bin/env bash
# Side-by-side comparison of the redirect engine with nginx serving the same
# links through a `map` and `return 301` (docs/PERFORMANCE.md, "Redirect
# throughput and latency vs nginx").
#
#   scripts/perf/compare-nginx.sh                      # 1M links, 3 rounds of 15 s runs
#   LINKS=10000 DURATION=3s ROUNDS=1 WARMUP=1s scripts/perf/compare-nginx.sh   # smoke run
#
# What it does:
#   1. installs wrk and nginx (Debian packages) if missing, builds the engine;
#   2. generates LINKS random 7-character codes with 60-byte URLs on domain
#      localhost (scripts/perf/gen-links.py) and imports them into an engine
#      store (`ricochet-engine import`);
#   3. measures each server's RSS with no links (the baseline for bytes per
#      link), then the engine's start-up to /readyz 200 STARTUP_RUNS times;
#   4. starts the targets, each pinned to SERVER_CPU with one worker:
#        engine-noclicks  ricochet-engine --workers 1, clicks.enabled = false
#                         (nginx counts no clicks either)
#        nginx            one worker, `map $uri $target` + `return 301` (nginx-map.sh)
#        engine           (optional) clicks on, kept in the engine's embedded store
#        engine-ship      (optional) clicks on, windows shipped to a ricochet-control
#                         process on CLIENT_CPU, as engines following a control
#                         plane do (TARGETS="engine engine-ship" CLICKS=0 SETTLE=30
#                         compares the two)
#   5. runs wrk pinned to CLIENT_CPU (-t1 -cCONNECTIONS -dDURATION --latency),
#      keep-alive, a random code per request (random-code.lua), then pipelined
#      with DEPTH requests per batch (the same script), alternating targets,
#      ROUNDS rounds; each run records req/s, p50/p99, the server's CPU time
#      (utime + stime from /proc/PID/stat, so µs of CPU per request), the
#      other load on the server's CPU, and RSS;
#   6. with CLICKS=1 (the default), then measures the engine as configured by
#      default, clicks on, alone: CLICK_ROUNDS (default 1) plain and pipelined
#      runs. Click work continues after a run (the last window is written 2 s
#      after it ends, minutes roll up 20 s after they end), so its CPU time is
#      read again CLICK_SETTLE s (default 40) after the run, once the engine is
#      idle, waiting up to CLICK_IDLE_WAIT s (default 180). Clicks captured and
#      dropped after each run go to click-counters.txt; /metrics are saved.
#      With INTERLEAVE=1, the clicks-on engine instead runs in every round
#      right after the other targets (all servers up at once; the idle ones
#      only poll), ROUNDS rounds, so a slow or fast phase of a shared machine
#      falls on both engines alike.
#   7. prints medians over the rounds as markdown and writes them, with every
#      raw counter and wrk output, to WORK_DIR/run-nginx-DATE/.
# Each run waits until the machine is quiet (see QUIET_MAX in lib.sh). Other
# settings: see scripts/perf/lib.sh. TARGETS overrides the list of targets;
# STARTUP_RUNS (default 3) the start-up measurements.
set -euo pipefail

# shellcheck source=scripts/perf/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

read -r -a TARGETS <<<"${TARGETS:-engine-noclicks nginx}"
STARTUP_RUNS=${STARTUP_RUNS:-3}
CLICKS=${CLICKS:-1}
CLICK_ROUNDS=${CLICK_ROUNDS:-1}
INTERLEAVE=${INTERLEAVE:-0}

need_tools wrk nginx taskset curl python3
((CLIENT_CPU != SERVER_CPU)) || die "SERVER_CPU and CLIENT_CPU must differ"
new_run_dir nginx
trap stop_all EXIT
trap 'exit 130' INT TERM

build_engine
pin_self
make_links
import_links

# Memory baselines: each server with no links.
CLICK_TARGETS=()
[[ $CLICKS == 1 ]] && CLICK_TARGETS=(engine)
for name in "${TARGETS[@]}" "${CLICK_TARGETS[@]}"; do measure_empty "$name"; done

# Engine start-up with LINKS links: launch to /readyz 200, page cache warm.
printf 'run\tstartup_s\trss_kb\n' >"$RUN_DIR/startup.tsv"
for ((run = 1; run <= STARTUP_RUNS; run++)); do
    start_target engine full
    printf '%s\t%s\t%s\n' "$run" "${STARTUP_S[engine]}" "$(rss_kb "${MEASURED_PID[engine]}")" \
        >>"$RUN_DIR/startup.tsv"
    stop_target engine
done

# Clicks counted and dropped after each run of the clicks-on engine, cumulative.
click_counters() {
    curl -s "${ADMIN_URL[$1]}/metrics" | grep -E '^ricochet_clicks_(captured|dropped)_total' |
        sed "s/^/$2 $3 /" >>"$RUN_DIR/click-counters.txt" || true
}
# One run of NAME; the clicks-on engine's CPU is read again once it is idle.
measured_run() {
    if [[ $1 == engine ]]; then
        AFTER_LOAD=click_counters SETTLE=${CLICK_SETTLE:-40} IDLE_WAIT=${CLICK_IDLE_WAIT:-180} \
            run_wrk "$@"
    else
        run_wrk "$@"
    fi
}

# The measured servers, all up at once (idle ones use no CPU).
ROUND_TARGETS=("${TARGETS[@]}")
[[ $CLICKS == 1 && $INTERLEAVE == 1 ]] && ROUND_TARGETS+=(engine)
for name in "${ROUND_TARGETS[@]}"; do
    start_target "$name" full
    check_redirect "$name"
    IDLE_RSS[$name]=$(rss_kb "${MEASURED_PID[$name]}")
done

ROUND_RUNNER=measured_run run_rounds "${ROUND_TARGETS[@]}"

memory_header
for name in "${TARGETS[@]}"; do memory_row "$name"; done
for name in $PROFILE; do
    if [[ $name != engine ]]; then profile_target "$name"; fi
done
save_metrics() {
    if [[ -n ${ADMIN_URL[$1]:-} ]]; then
        curl -s "${ADMIN_URL[$1]}/metrics" >"$RUN_DIR/metrics-$1.txt" || true
    fi
}
for name in "${TARGETS[@]}"; do save_metrics "$name"; done
if [[ $CLICKS == 1 && $INTERLEAVE == 1 ]]; then
    cat "$RUN_DIR/click-counters.txt" >&2
    memory_row engine
    save_metrics engine
    grep -E '^ricochet_click' "$RUN_DIR/metrics-engine.txt" >&2 || true
fi
stop_all

# The engine as configured by default (clicks on), alone: its click work goes
# on after each run and would disturb the other targets.
if [[ $CLICKS == 1 && $INTERLEAVE != 1 ]]; then
    start_target engine full
    check_redirect engine
    IDLE_RSS[engine]=$(rss_kb "${MEASURED_PID[engine]}")
    for ((round = 1; round <= CLICK_ROUNDS; round++)); do
        for mode in plain pipelined; do measured_run engine "$mode" "$round"; done
    done
    cat "$RUN_DIR/click-counters.txt" >&2
    memory_row engine
    save_metrics engine
    grep -E '^ricochet_click' "$RUN_DIR/metrics-engine.txt" >&2 || true
    if [[ " $PROFILE " == *" engine "* ]]; then profile_target engine; fi
    stop_target engine
fi

{
    echo "## Redirects vs nginx, $(date -I)"
    echo
    echo "$LINKS links, wrk -t1 -c$CONNECTIONS -d$DURATION, pipelined depth $DEPTH, server on CPU $SERVER_CPU, wrk on CPU $CLIENT_CPU; medians of $ROUNDS rounds."
    echo
    summarize
    echo
    echo "Engine start-up to /readyz 200 with $LINKS links (s): $(awk 'NR > 1 { printf "%s ", $2 }' "$RUN_DIR/startup.tsv")"
} | tee "$RUN_DIR/summary.md"
log "raw results in $RUN_DIR"
