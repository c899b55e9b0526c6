#!/usr/bin/env bash
# Side-by-side comparison of HTTP stacks doing the redirect engine's job
# (docs/PERFORMANCE.md, "Choice of HTTP stack"): the engine's own connection
# loop (httparse on a tokio current-thread runtime) against bare servers in
# benches/stacks/ that load the same links into a HashMap and answer
# `GET /{code}` with 301 + Location:
#   may-minihttp  may_minihttp, one may worker
#   hyper         hyper 1.x http1, tokio current_thread, pipeline_flush(true)
#   actix-web     actix-web, one worker
#   engine-noclicks  ricochet-engine --workers 1 with clicks off (the stacks
#                 count no clicks either); add `engine` to TARGETS for clicks on
#
#   scripts/perf/compare-stacks.sh
#   LINKS=10000 DURATION=3s ROUNDS=1 WARMUP=1s scripts/perf/compare-stacks.sh   # smoke run
#
# Same load and measurements as compare-nginx.sh (see there and lib.sh):
# every server pinned to SERVER_CPU, wrk to CLIENT_CPU, keep-alive random codes,
# then pipelined depth DEPTH, alternating targets over ROUNDS rounds, server
# CPU µs per request from /proc/PID/stat. Results in WORK_DIR/run-stacks-DATE/.
set -euo pipefail

# shellcheck source=scripts/perf/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

read -r -a TARGETS <<<"${TARGETS:-engine-noclicks may-minihttp hyper actix-web}"
STACKS_DIR=$REPO/benches/stacks

need_tools wrk taskset curl python3
((CLIENT_CPU != SERVER_CPU)) || die "SERVER_CPU and CLIENT_CPU must differ"
new_run_dir stacks
trap stop_all EXIT
trap 'exit 130' INT TERM

build_engine
if [[ $SKIP_BUILD != 1 ]]; then
    log "building benches/stacks (release)"
    CARGO_TARGET_DIR=$STACKS_DIR/target cargo build --release --quiet \
        --manifest-path "$STACKS_DIR/Cargo.toml"
fi
# Copied like the engine, so a rebuild during the run changes nothing.
for stack in may-minihttp hyper actix-web; do
    cp "$STACKS_DIR/target/release/stack-$stack" "$RUN_DIR/bin/"
done
STACKS_BIN=$RUN_DIR/bin
pin_self
make_links
import_links

for name in "${TARGETS[@]}"; do measure_empty "$name"; done
for name in "${TARGETS[@]}"; do
    start_target "$name" full
    check_redirect "$name"
    IDLE_RSS[$name]=$(rss_kb "${MEASURED_PID[$name]}")
done

run_rounds "${TARGETS[@]}"

memory_header
for name in "${TARGETS[@]}"; do memory_row "$name"; done
for name in $PROFILE; do profile_target "$name"; done
stop_all

{
    echo "## HTTP stacks, $(date -I)"
    echo
    echo "$LINKS links, wrk -t1 -c$CONNECTIONS -d$DURATION, pipelined depth $DEPTH, server on CPU $SERVER_CPU, wrk on CPU $CLIENT_CPU; medians of $ROUNDS rounds."
    echo
    summarize
} | tee "$RUN_DIR/summary.md"
log "raw results in $RUN_DIR"
