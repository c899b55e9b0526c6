# shellcheck shell=bash
# Shared by compare-nginx.sh and compare-stacks.sh (sourced, not run): the
# settings, the links data, starting and stopping the servers under test, one
# wrk run with the server's CPU time from /proc/PID/stat, and the summary.
#
# Settings (environment):
#   LINKS=1000000     links generated and loaded into every server
#   DURATION=15s      length of each measured wrk run
#   ROUNDS=3          measured rounds; each round runs every target once per mode
#   WARMUP=3s         one unrecorded run per target and mode before round 1
#   CONNECTIONS=64    wrk connections (one wrk thread)
#   DEPTH=16          requests per pipelined batch
#   SERVER_CPU=0 CLIENT_CPU=1   taskset CPUs of the server and of wrk
#   QUIET_MAX=25      a run starts only when no compiler (rustc, cargo, cc, ld)
#                     runs and the whole machine was at most this busy (% of all
#                     CPUs, over 2 s); otherwise it waits (QUIET_WAIT=3600 s at
#                     most, then runs and marks the run as disturbed)
#   OTHER_MAX=5       a run is disturbed when more than this % of the server's
#                     or of wrk's CPU went to other processes during the load
#                     (a build started mid-run); it is run again, RETRIES=2
#                     times at most, then kept and marked as disturbed
#   WORK_DIR=/tmp/ricochet-perf   generated data and run directories
#   PROFILE=          targets to profile with `perf record -g`, each in one
#                     extra, unrecorded pipelined run at the end (e.g.
#                     PROFILE="engine-noclicks engine")
#   SKIP_BUILD=1      use the binaries already built
#   CLIENT_OTHER_MAX  as OTHER_MAX, for wrk's CPU only (default OTHER_MAX)
#   BEFORE_LOAD, AFTER_LOAD   functions called (with target and mode) just
#                     before wrk starts and just after it ends
#   SETTLE=0          seconds to wait after a run before waiting for the
#                     server to be idle (work that starts late is counted)

PERF_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$PERF_DIR/../.." && pwd)

LINKS=${LINKS:-1000000}
DURATION=${DURATION:-15s}
ROUNDS=${ROUNDS:-3}
WARMUP=${WARMUP:-3s}
CONNECTIONS=${CONNECTIONS:-64}
DEPTH=${DEPTH:-16}
SERVER_CPU=${SERVER_CPU:-0}
CLIENT_CPU=${CLIENT_CPU:-1}
QUIET_MAX=${QUIET_MAX:-25}
QUIET_WAIT=${QUIET_WAIT:-3600}
OTHER_MAX=${OTHER_MAX:-5}
RETRIES=${RETRIES:-2}
WORK_DIR=${WORK_DIR:-/tmp/ricochet-perf}
PROFILE=${PROFILE:-}
SKIP_BUILD=${SKIP_BUILD:-0}

CLK_TCK=$(getconf CLK_TCK)

# Per-target state, filled by start_target.
declare -A TARGET_PID=()     # the process we started (nginx: its master)
declare -A MEASURED_PID=()   # the process whose CPU and RSS are measured (nginx: its worker)
declare -A TARGET_URL=()     # base URL of the redirect listener
declare -A STARTUP_S=()      # seconds from launch to ready
declare -A ADMIN_URL=()      # engine only
declare -A CONTROL_URL=()    # engine-ship: the control plane it ships clicks to

log() { printf '[%(%H:%M:%S)T] %s\n' -1 "$*" >&2; }
die() { log "error: $*"; exit 1; }

# Installs the Debian packages that provide missing commands.
need_tools() {
    local missing=() tool package
    for tool in "$@"; do
        command -v "$tool" >/dev/null 2>&1 && continue
        case $tool in
            wrk) package=wrk ;;
            nginx) package=nginx-light ;;
            taskset) package=util-linux ;;
            curl) package=curl ;;
            python3) package=python3 ;;
            perf) package=linux-perf ;;
            *) die "do not know which package provides $tool" ;;
        esac
        missing+=("$package")
    done
    [[ ${#missing[@]} -eq 0 ]] && return 0
    local sudo=()
    [[ $(id -u) -ne 0 ]] && sudo=(sudo)
    log "installing ${missing[*]}"
    "${sudo[@]}" apt-get update -qq
    DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq "${missing[@]}" >/dev/null
}

# A free TCP port on 127.0.0.1 (the kernel picks it).
free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

now_s() { date +%s.%N; }

# Generates (once per LINKS) the links CSV and the codes file; sets LINKS_CSV,
# CODES_TXT, EMPTY_CSV and PROBE_CODE (a code that must answer 301).
make_links() {
    local dir="$WORK_DIR/links-$LINKS"
    mkdir -p "$dir"
    if [[ ! -s $dir/codes.txt ]]; then
        log "generating $LINKS links in $dir"
        python3 "$PERF_DIR/gen-links.py" "$LINKS" "$dir/links.csv.tmp" "$dir/codes.txt.tmp"
        mv "$dir/links.csv.tmp" "$dir/links.csv"
        mv "$dir/codes.txt.tmp" "$dir/codes.txt"
    fi
    LINKS_CSV=$dir/links.csv
    CODES_TXT=$dir/codes.txt
    EMPTY_CSV=$dir/empty.csv
    echo "domain,code,url,status" >"$EMPTY_CSV"
    PROBE_CODE=$(head -n 1 "$CODES_TXT")
    PROBE_URL=$(awk -F, -v code="$PROBE_CODE" '$2 == code { print $3; exit }' "$LINKS_CSV")
}

# Builds the engine and copies the binary into the run directory, so a rebuild
# during the run cannot change what is measured. Sets ENGINE_BIN.
build_engine() {
    if [[ $SKIP_BUILD != 1 ]]; then
        log "building ricochet-engine and ricochet-control (release)"
        (cd "$REPO" && cargo build --release -p ricochet-engine -p ricochet-control --quiet)
    fi
    mkdir -p "$RUN_DIR/bin"
    cp "$REPO/target/release/ricochet-engine" "$RUN_DIR/bin/ricochet-engine"
    cp "$REPO/target/release/ricochet-control" "$RUN_DIR/bin/ricochet-control"
    ENGINE_BIN=$RUN_DIR/bin/ricochet-engine
    CONTROL_BIN=$RUN_DIR/bin/ricochet-control
}

# Imports LINKS_CSV into a fresh engine store, the template every engine
# target copies. Sets ENGINE_DATA.
import_links() {
    ENGINE_DATA=$RUN_DIR/engine-data
    rm -rf "$ENGINE_DATA"
    log "importing $LINKS links into $ENGINE_DATA"
    "$ENGINE_BIN" --data-dir "$ENGINE_DATA" import "$LINKS_CSV" --quiet | tee "$RUN_DIR/import.txt" >&2
}

cpu_ticks() { # utime + stime of a process, all threads, in clock ticks
    local stat
    stat=$(<"/proc/$1/stat")
    stat=${stat##*) }
    awk '{ print $12 + $13 }' <<<"$stat"
}

rss_kb() { awk '/^VmRSS:/ { print $2 }' "/proc/$1/status"; }

# "busy total steal" ticks of one CPU line of /proc/stat ("cpu" for all CPUs).
cpu_counters() {
    awk -v cpu="$1" '$1 == cpu {
        busy = $2 + $3 + $4 + $7 + $8; total = busy + $5 + $6 + $9
        print busy, total, $9 }' /proc/stat
}

# Waits until the machine is quiet: no compiler running and at most
# QUIET_MAX % busy over 2 s. Sets DISTURBED=1 if it gave up waiting.
wait_quiet() {
    local waited=0 b0 t0 s0 b1 t1 s1 busy compilers
    DISTURBED=0
    while true; do
        compilers=$(ps -eo comm= | grep -cxE 'rustc|cargo|clippy-driver|cc1|cc1plus|ld|ld.lld|rust-lld|cc|c\+\+' || true)
        read -r b0 t0 s0 < <(cpu_counters cpu)
        sleep 2
        read -r b1 t1 s1 < <(cpu_counters cpu)
        busy=$(((b1 - b0) * 100 / (t1 - t0 > 0 ? t1 - t0 : 1)))
        if ((busy <= QUIET_MAX && compilers == 0)); then
            return 0
        fi
        if ((waited >= QUIET_WAIT)); then
            log "machine still ${busy}% busy after ${waited}s: measuring anyway (marked disturbed)"
            DISTURBED=1
            return 0
        fi
        if ((waited % 60 == 0)); then
            log "machine ${busy}% busy, $compilers compiler processes, waiting; top: $(ps -eo pcpu=,comm= --sort=-pcpu | head -n 3 | tr -s ' ' | paste -sd ';')"
        fi
        sleep 8
        waited=$((waited + 10))
    done
}

# Polls URL until it answers STATUS (10 ms steps, TIMEOUT s at most).
wait_status() {
    local url=$1 status=$2 timeout=${3:-120} deadline code
    deadline=$(($(date +%s) + timeout))
    while (($(date +%s) < deadline)); do
        code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 1 "$url" || true)
        [[ $code == "$status" ]] && return 0
        sleep 0.01
    done
    return 1
}

# Starts target NAME pinned to SERVER_CPU, loaded with the links ("full") or
# with none ("empty", the memory baseline), and waits until it is ready.
start_target() {
    local name=$1 load=${2:-full} port dir started csv
    port=$(free_port)
    dir="$RUN_DIR/servers/$name-$load"
    rm -rf "$dir"
    mkdir -p "$dir"
    csv=$LINKS_CSV
    [[ $load == empty ]] && csv=$EMPTY_CSV
    TARGET_URL[$name]=http://127.0.0.1:$port
    case $name in
        engine | engine-noclicks | engine-ship)
            local admin env=() sync=()
            admin=$(free_port)
            ADMIN_URL[$name]=http://127.0.0.1:$admin
            [[ $load == full ]] && cp -a "$ENGINE_DATA" "$dir/data"
            [[ $name == engine-noclicks ]] && env=(RICOCHET_ENGINE_CLICKS__ENABLED=false)
            if [[ $name == engine-ship ]]; then
                # Clicks shipped to a control plane (its own process, on the
                # client's CPU, as it would run on another host). It holds no
                # links, so the engine keeps the imported ones.
                local control_port
                control_port=$(free_port)
                taskset -c "$CLIENT_CPU" env RICOCHET_CONTROL_SERVER__LISTEN="127.0.0.1:$control_port" \
                    RICOCHET_CONTROL_SERVER__WORKERS=1 RICOCHET_CONTROL_STORAGE__DATA_DIR="$dir/control" \
                    RICOCHET_CONTROL_BUS__CLUSTER_TOKEN=perf-cluster-token "$CONTROL_BIN" \
                    >"$dir/control.log" 2>&1 &
                TARGET_PID[$name-control]=$!
                wait_status "http://127.0.0.1:$control_port/healthz" 200 ||
                    die "the control plane of $name did not start, see $dir/control.log"
                CONTROL_URL[$name]=http://127.0.0.1:$control_port
                sync=(--control-url "http://127.0.0.1:$control_port" --cluster-token perf-cluster-token)
                env=(RICOCHET_ENGINE_SYNC__POLL_INTERVAL=1h)
            fi
            started=$(now_s)
            taskset -c "$SERVER_CPU" env "${env[@]}" "$ENGINE_BIN" --data-dir "$dir/data" \
                --listen "127.0.0.1:$port" --admin-listen "127.0.0.1:$admin" "${sync[@]}" \
                --workers 1 --default-domain localhost run >"$dir/server.log" 2>&1 &
            TARGET_PID[$name]=$!
            MEASURED_PID[$name]=$!
            wait_status "${ADMIN_URL[$name]}/readyz" 200 || die "$name not ready, see $dir/server.log"
            ;;
        nginx)
            "$PERF_DIR/nginx-map.sh" "$csv" "$dir" "$port" "$SERVER_CPU" 2>/dev/null
            started=$(now_s)
            taskset -c "$SERVER_CPU" nginx -p "$dir" -e "$dir/error.log" -c "$dir/nginx.conf" \
                >"$dir/server.log" 2>&1 &
            TARGET_PID[$name]=$!
            ;;
        may-minihttp | hyper | actix-web)
            started=$(now_s)
            taskset -c "$SERVER_CPU" "$STACKS_BIN/stack-$name" "127.0.0.1:$port" "$csv" \
                >"$dir/server.log" 2>&1 &
            TARGET_PID[$name]=$!
            MEASURED_PID[$name]=$!
            ;;
        *) die "unknown target $name" ;;
    esac
    # Ready means serving the links: the probe code answers 301 (404 when empty).
    local expect=301
    [[ $load == empty ]] && expect=404
    wait_status "${TARGET_URL[$name]}/$PROBE_CODE" "$expect" 300 ||
        die "$name does not answer $expect, see $dir"
    STARTUP_S[$name]=$(awk -v a="$started" -v b="$(now_s)" 'BEGIN { printf "%.2f", b - a }')
    if [[ $name == nginx ]]; then
        MEASURED_PID[$name]=$(pgrep -P "${TARGET_PID[$name]}" | head -n 1)
        [[ -n ${MEASURED_PID[$name]} ]] || die "no nginx worker"
    fi
    log "$name ($load) ready in ${STARTUP_S[$name]}s on ${TARGET_URL[$name]}, pid ${MEASURED_PID[$name]}, RSS $(rss_kb "${MEASURED_PID[$name]}") kB"
}

# True while PID exists and is not a zombie waiting to be reaped.
# Shell builtins only: wait_file calls it every 5 ms during a run.
is_running() {
    local stat
    { read -r stat <"/proc/$1/stat"; } 2>/dev/null || return 1
    stat=${stat##*) }
    [[ -n $stat && ${stat:0:1} != Z ]]
}

# Stops NAME with SIGTERM; SIGKILL if it has not exited after STOP_WAIT s
# (default 60: the engine drains its click windows on the way out).
stop_target() {
    local name=$1 pid=${TARGET_PID[$1]:-} waited=0
    [[ -n $pid ]] || return 0
    kill -TERM "$pid" 2>/dev/null || true
    while is_running "$pid" && ((waited < ${STOP_WAIT:-60} * 10)); do
        nap 0.1
        waited=$((waited + 1))
    done
    if is_running "$pid"; then
        log "$name (pid $pid) still running ${STOP_WAIT:-60} s after SIGTERM: killing it"
        kill -KILL "$pid" 2>/dev/null || true
    else
        log "$name stopped in $((waited / 10)).$((waited % 10)) s"
    fi
    wait "$pid" 2>/dev/null || true
    unset "TARGET_PID[$name]"
    if [[ -n ${TARGET_PID[$name-control]:-} ]]; then stop_target "$name-control"; fi
}

stop_all() {
    local name
    for name in "${!TARGET_PID[@]}"; do stop_target "$name"; done
}

# Checks that a target redirects the probe code to its URL.
check_redirect() {
    local name=$1 headers
    headers=$(curl -s -D - -o /dev/null "${TARGET_URL[$name]}/$PROBE_CODE")
    grep -q '^HTTP/1.1 301' <<<"$headers" || die "$name: probe is not a 301: $headers"
    grep -qi "^location: $PROBE_URL" <<<"$headers" || die "$name: wrong Location: $headers"
}

# Sleeps without forking (a read that times out on a pipe nobody writes).
exec {SLEEP_FD}<> <(:)
nap() { read -r -t "$1" -u "$SLEEP_FD" _ || true; }

# Waits (IDLE_WAIT s at most, default 30) until PID used at most one clock
# tick of CPU in a second: the engine's click actor may still be working off a
# run. Sets STILL_BUSY=1 if it gave up.
wait_server_idle() {
    local pid=$1 limit=${IDLE_WAIT:-30} before after waited=0
    STILL_BUSY=0
    while ((waited < limit)); do
        before=$(cpu_ticks "$pid")
        nap 1
        after=$(cpu_ticks "$pid")
        ((after - before <= 1)) && return 0
        waited=$((waited + 1))
    done
    STILL_BUSY=1
    log "pid $pid still busy after $limit s"
}

# Waits until FILE exists or process PID is gone.
wait_file() {
    while [[ ! -e $1 ]] && is_running "$2"; do nap 0.005; done
}

# One wrk run against NAME in MODE (plain | pipelined) for DURATION; appends a
# row to $RUN_DIR/runs.tsv unless ROUND is "warmup". Columns are raw counters;
# summarize turns them into rates. The server's CPU time and the CPU counters
# are read when wrk starts loading and when it stops (wrk's Lua script marks
# both), then again once the server is idle (after SETTLE s, if set): work the
# run left behind (click windows, rollups) is counted too, as "deferred".
# AFTER_LOAD, if set, is called with NAME MODE ROUND when the load ends.
run_wrk() {
    local attempt
    if [[ ! $3 =~ ^[0-9]+$ ]]; then # warm-up or profile: never repeated
        run_wrk_once "$@"
        return 0
    fi
    for ((attempt = 0; attempt <= RETRIES; attempt++)); do
        run_wrk_once "$@"
        ((DISTURBED == 0)) && return 0
        ((attempt < RETRIES)) && log "other load during the run: running it again"
    done
    log "still disturbed after $RETRIES retries: keeping the run, marked disturbed"
    record_run
}

run_wrk_once() {
    local name=$1 mode=$2 round=$3 duration=${4:-$DURATION}
    local pid=${MEASURED_PID[$name]} depth=1
    [[ $mode == pipelined ]] && depth=$DEPTH
    local out="$RUN_DIR/wrk/$name-$mode-$round.txt" mark="$RUN_DIR/wrk/mark"
    mkdir -p "$RUN_DIR/wrk"
    wait_quiet
    wait_server_idle "$pid"
    if [[ -n ${BEFORE_LOAD:-} ]]; then "$BEFORE_LOAD" "$name" "$mode"; fi
    rm -f "$mark.start" "$mark.end"
    WRK_MARK=$mark DEPTH=$depth taskset -c "$CLIENT_CPU" wrk -t1 -c"$CONNECTIONS" -d"$duration" --latency \
        -s "$PERF_DIR/random-code.lua" "${TARGET_URL[$name]}" -- "$CODES_TXT" localhost >"$out" 2>&1 &
    local wrk_pid=$! ticks0 ticks1 ticks2 s0 s1 c0 c1 w0 w1
    wait_file "$mark.start" "$wrk_pid"
    ticks0=$(cpu_ticks "$pid")
    w0=$(cpu_ticks "$wrk_pid" 2>/dev/null || echo 0)
    read -r -a s0 < <(cpu_counters "cpu$SERVER_CPU")
    read -r -a c0 < <(cpu_counters "cpu$CLIENT_CPU")
    wait_file "$mark.end" "$wrk_pid"
    ticks1=$(cpu_ticks "$pid")
    w1=$(cpu_ticks "$wrk_pid" 2>/dev/null || echo "$w0")
    read -r -a s1 < <(cpu_counters "cpu$SERVER_CPU")
    read -r -a c1 < <(cpu_counters "cpu$CLIENT_CPU")
    wait "$wrk_pid" || log "wrk failed, see $out"
    if [[ -n ${AFTER_LOAD:-} ]]; then "$AFTER_LOAD" "$name" "$mode" "$round"; fi
    # SETTLE s first, for work that starts a while after the load (the last
    # click window closes 2 s after it ends; minutes roll up 20 s after).
    if ((${SETTLE:-0} > 0)); then nap "$SETTLE"; fi
    wait_server_idle "$pid"
    ticks2=$(cpu_ticks "$pid")
    local result
    result=$(grep '^RESULT' "$out" | sed 's/^RESULT //') || die "no RESULT line in $out"
    # key=value pairs to shell variables r_requests, r_duration_us, ...
    local pair r_requests r_duration_us r_p50_us r_p75_us r_p90_us r_p99_us r_max_us
    local r_connect_errors r_read_errors r_write_errors r_timeouts r_status_errors
    for pair in $result; do printf -v "r_${pair%%=*}" '%s' "${pair#*=}"; done
    local errors=$((r_connect_errors + r_read_errors + r_write_errors + r_timeouts))
    # Other processes' share of each CPU during the load (steal counts as
    # busy: a task's own CPU time includes what the hypervisor stole).
    local server_other client_other
    server_other=$(((s1[0] + s1[2] - s0[0] - s0[2] - (ticks1 - ticks0)) * 100 / (s1[1] - s0[1] > 0 ? s1[1] - s0[1] : 1)))
    client_other=$(((c1[0] + c1[2] - c0[0] - c0[2] - (w1 - w0)) * 100 / (c1[1] - c0[1] > 0 ? c1[1] - c0[1] : 1)))
    if ((server_other > OTHER_MAX || client_other > ${CLIENT_OTHER_MAX:-$OTHER_MAX})); then
        log "other load: ${server_other}% of the server's CPU, ${client_other}% of wrk's"
        DISTURBED=1
    fi
    ROW=$(printf '%s\t' "$name" "$mode" "$round" "$r_requests" "$r_duration_us" "$r_p50_us" \
        "$r_p99_us" "$r_max_us" "$errors" "$r_status_errors" "$((ticks1 - ticks0))" \
        "$((ticks2 - ticks1))" "$((s1[0] - s0[0]))" "$((s1[1] - s0[1]))" "$((s1[2] - s0[2]))" \
        "$((c1[0] - c0[0]))" "$((c1[1] - c0[1]))" "$(rss_kb "$pid")" "$DISTURBED" "$STILL_BUSY" \
        "$((w1 - w0))")
    ROW=${ROW%$'\t'}
    ROUND=$round
    ((DISTURBED == 0)) && record_run
    local row=$ROW
    awk -F'\t' -v hz="$CLK_TCK" -v cpu="$SERVER_CPU" '{
        rps = $4 / ($5 / 1e6); during = $11 / hz; after = $12 / hz
        printf "%-16s %-9s %-6s %9.0f req/s  p50 %6.0f us  p99 %6.0f us  server CPU %5.1f%%  %6.2f us/req (%.2f deferred)  CPU%d other %4.1f%%  client CPU %5.1f%%  errors %d non-3xx %d\n",
            $1, $2, $3, rps, $6, $7, 100 * during / ($5 / 1e6), 1e6 * (during + after) / $4,
            1e6 * after / $4, cpu, 100 * ($13 + $15 - $11) / $14, 100 * $16 / $17, $9, $10 }' \
        <<<"$row" >&2
}

# Appends the last run (ROW) to runs.tsv, unless it was a warm-up or profile.
record_run() {
    if [[ $ROUND =~ ^[0-9]+$ ]]; then printf '%s\n' "$ROW" >>"$RUN_DIR/runs.tsv"; fi
}

runs_header() {
    printf 'target\tmode\tround\trequests\tduration_us\tp50_us\tp99_us\tmax_us\terrors\tnon_3xx\tserver_ticks\tdeferred_ticks\tserver_cpu_busy\tserver_cpu_total\tserver_cpu_steal\tclient_cpu_busy\tclient_cpu_total\trss_kb\tdisturbed\tstill_busy\twrk_ticks\n' \
        >"$RUN_DIR/runs.tsv"
}

# Warm-up, then ROUNDS rounds: in each, every mode, every target in turn
# (engine, nginx, engine, nginx, ...), so drift hits all targets alike.
# ROUND_RUNNER names the function that runs one (default run_wrk).
run_rounds() {
    local name mode round run=${ROUND_RUNNER:-run_wrk}
    runs_header
    for name in "$@"; do
        for mode in plain pipelined; do "$run" "$name" "$mode" warmup "$WARMUP"; done
    done
    for ((round = 1; round <= ROUNDS; round++)); do
        for mode in plain pipelined; do
            for name in "$@"; do "$run" "$name" "$mode" "$round"; done
        done
    done
}

# One extra pipelined run of PROFILE's target under `perf record -g`; writes
# the flat profile to $RUN_DIR/profile-NAME.txt.
profile_target() {
    local name=$1 pid=${MEASURED_PID[$1]}
    need_tools perf
    log "profiling $name (pipelined, not recorded)"
    local data="$RUN_DIR/perf-$name.data"
    taskset -c "$CLIENT_CPU" perf record -g -F 999 -p "$pid" -o "$data" -- sleep 30 \
        >"$RUN_DIR/perf-record-$name.log" 2>&1 &
    local perf_pid=$!
    sleep 1
    run_wrk "$name" pipelined profile 10s
    wait "$perf_pid" || true
    perf report -i "$data" --no-children --sort symbol --stdio 2>/dev/null |
        grep -v '^$' | head -n 200 >"$RUN_DIR/profile-$name.txt" || true
    perf report -i "$data" --no-children --sort symbol --stdio -g none 2>/dev/null |
        grep -E '^ +[0-9]' | sed 's/[ -]*$//' | head -n 30 >"$RUN_DIR/profile-$name-flat.txt" || true
    log "top symbols of $name:"
    head -n 15 "$RUN_DIR/profile-$name-flat.txt" >&2 || true
}

# Medians over rounds, as a markdown table, from runs.tsv and memory.tsv.
summarize() {
    python3 - "$RUN_DIR" "$CLK_TCK" "$LINKS" <<'PY'
import csv, statistics, sys
run_dir, hz, links = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
rows = list(csv.DictReader(open(f"{run_dir}/runs.tsv"), delimiter="\t"))
order = []
for row in rows:
    key = (row["target"], row["mode"])
    if key not in order:
        order.append(key)
med = statistics.median

def fmt(x, digits=0):
    return f"{x:,.{digits}f}"

print("| target | mode | req/s (median) | req/s (min–max) | p50 | p99 | server CPU | CPU µs/request (min–max) | client CPU | other load on server CPU | errors, non-3xx | rounds |")
print("|---|---|---|---|---|---|---|---|---|---|---|---|")
for target, mode in order:
    runs = [r for r in rows if r["target"] == target and r["mode"] == mode]
    rps = [int(r["requests"]) / (int(r["duration_us"]) / 1e6) for r in runs]
    cpu_s = [int(r["server_ticks"]) / hz for r in runs]
    deferred_s = [int(r["deferred_ticks"]) / hz for r in runs]
    us_per = [1e6 * (c + d) / int(r["requests"]) for c, d, r in zip(cpu_s, deferred_s, runs)]
    us_deferred = [1e6 * d / int(r["requests"]) for d, r in zip(deferred_s, runs)]
    util = [100 * c / (int(r["duration_us"]) / 1e6) for c, r in zip(cpu_s, runs)]
    client = [100 * int(r["client_cpu_busy"]) / max(1, int(r["client_cpu_total"])) for r in runs]
    # Time the server CPU spent on anything but the server. Steal counts as
    # busy: a task's own CPU time includes what the hypervisor stole from it.
    other = [100 * (int(r["server_cpu_busy"]) + int(r["server_cpu_steal"]) - int(r["server_ticks"]))
             / max(1, int(r["server_cpu_total"])) for r in runs]
    p50 = [float(r["p50_us"]) for r in runs]
    p99 = [float(r["p99_us"]) for r in runs]
    errors = sum(int(r["errors"]) for r in runs)
    non3xx = sum(int(r["non_3xx"]) for r in runs)
    disturbed = sum(int(r["disturbed"]) for r in runs)
    still_busy = sum(int(r["still_busy"]) for r in runs)
    note = f"{len(runs)}" + (f" ({disturbed} disturbed)" if disturbed else "") + (
        f" (server still busy when CPU was read after {still_busy})" if still_busy else "")
    print(f"| {target} | {mode} | {fmt(med(rps))} | {fmt(min(rps))}–{fmt(max(rps))} | "
          f"{fmt(med(p50))} µs | {fmt(med(p99))} µs | {fmt(med(util), 1)} % | "
          f"{fmt(med(us_per), 2)} ({fmt(min(us_per), 2)}–{fmt(max(us_per), 2)})"
          + (f", {fmt(med(us_deferred), 2)} after the run" if max(us_deferred) > 0.005 else "")
          + f" | {fmt(med(client), 1)} % | "
          f"{fmt(med(other), 1)} % | {errors}, {non3xx} | {note} |")

try:
    mem = list(csv.DictReader(open(f"{run_dir}/memory.tsv"), delimiter="\t"))
except FileNotFoundError:
    mem = []
if mem:
    print()
    print(f"| target | RSS, no links | RSS, {links:,} links, idle | RSS after the runs | bytes/link (idle) | bytes/link (after runs) | start-up |")
    print("|---|---|---|---|---|---|---|")
    for m in mem:
        empty, idle, after = (int(m[k]) for k in ("empty_kb", "idle_kb", "after_kb"))
        print(f"| {m['target']} | {empty / 1024:,.1f} MiB | {idle / 1024:,.1f} MiB | {after / 1024:,.1f} MiB | "
              f"{(idle - empty) * 1024 / links:,.1f} | {(after - empty) * 1024 / links:,.1f} | {m['startup_s']} s |")
PY
}

# Memory baseline: RSS of NAME started with no links (sets EMPTY_RSS[NAME]).
declare -A EMPTY_RSS=() IDLE_RSS=()
measure_empty() {
    local name=$1
    start_target "$name" empty
    sleep 1
    EMPTY_RSS[$name]=$(rss_kb "${MEASURED_PID[$name]}")
    stop_target "$name"
}

memory_header() {
    printf 'target\tempty_kb\tidle_kb\tafter_kb\tstartup_s\n' >"$RUN_DIR/memory.tsv"
}

memory_row() {
    local name=$1
    printf '%s\t%s\t%s\t%s\t%s\n' "$name" "${EMPTY_RSS[$name]}" "${IDLE_RSS[$name]}" \
        "$(rss_kb "${MEASURED_PID[$name]}")" "${STARTUP_S[$name]}" >>"$RUN_DIR/memory.tsv"
}

# Moves this script (and what it starts without its own taskset) to
# CLIENT_CPU, off the server's CPU. Called after the builds.
pin_self() { taskset -cp "$CLIENT_CPU" $$ >/dev/null; }

# Creates RUN_DIR and records the machine and settings in it.
new_run_dir() {
    RUN_DIR="$WORK_DIR/run-$1-$(date +%Y%m%d-%H%M%S)"
    mkdir -p "$RUN_DIR"
    {
        echo "date: $(date -Iseconds)"
        echo "host: $(uname -srm), $(nproc) CPUs, $(awk -F': ' '/model name/ { print $2; exit }' /proc/cpuinfo)"
        echo "settings: LINKS=$LINKS DURATION=$DURATION ROUNDS=$ROUNDS WARMUP=$WARMUP CONNECTIONS=$CONNECTIONS DEPTH=$DEPTH SERVER_CPU=$SERVER_CPU CLIENT_CPU=$CLIENT_CPU"
        echo "wrk: $(wrk -v 2>&1 | head -n 1)"
        echo "nginx: $(nginx -v 2>&1)"
        echo "git: $(git -C "$REPO" rev-parse --short HEAD 2>/dev/null)$(git -C "$REPO" diff --quiet 2>/dev/null || echo ' (uncommitted changes)')"
    } >"$RUN_DIR/machine.txt"
    log "run directory: $RUN_DIR"
}
