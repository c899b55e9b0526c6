#!/usr/bin/env bash
# Peak memory of an engine with click capture under uniform 1M-link traffic,
# with the click window cap (clicks.max_window_rows) on and off: runs the
# config/loadtest/clicks-memory.toml suite and, every 0.5 s, reads each
# engine's peak RSS (VmHWM in /proc/PID/status) and its click window gauges
# (ricochet_click_window_memory_bytes, _rows, _splits_total on /metrics).
# Prints one line per target at the end.
#
#   cargo build --release -p ricochet-engine -p ricochet-loadtest
#   scripts/perf/click-memory.sh [OUT_DIR] [-- extra ricochet-loadtest compare options]
#
# Settings (environment): SUITE (default config/loadtest/clicks-memory.toml).
# A quiet machine matters for the latency columns the loadtest also prints,
# not much for memory; say in any report if it was not quiet.
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$REPO"
OUT=${1:-/tmp/ricochet-click-memory}
shift $(( $# > 0 ? 1 : 0 ))
[[ ${1:-} == -- ]] && shift
SUITE=${SUITE:-config/loadtest/clicks-memory.toml}
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
SAMPLES="$OUT/samples.tsv"
: >"$SAMPLES"

metric() { # metric NAME METRICS_TEXT
    awk -v name="$1" '$1 == name { print $2; exit }' <<<"$2"
}

# One line per engine of the suite: target, pid, VmHWM kB, VmRSS kB, window bytes, rows, splits.
sample() {
    local pid cmdline target admin status hwm rss metrics
    for pid in $(pgrep -x ricochet-engine || true); do
        cmdline=$(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null) || continue
        [[ $cmdline == *"$OUT/work/"* && $cmdline == *"--listen"* ]] || continue
        target=${cmdline#*"$OUT/work/"}
        target=${target%%/*}
        admin=$(grep -o -- '--admin-listen [^ ]*' <<<"$cmdline" | cut -d' ' -f2)
        status=$(cat "/proc/$pid/status" 2>/dev/null) || continue
        hwm=$(awk '/^VmHWM:/ { print $2 }' <<<"$status")
        rss=$(awk '/^VmRSS:/ { print $2 }' <<<"$status")
        metrics=$(curl -s --max-time 1 "http://$admin/metrics" || true)
        printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$target" "$pid" "$hwm" "$rss" \
            "$(metric ricochet_click_window_memory_bytes "$metrics")" \
            "$(metric ricochet_click_window_rows "$metrics")" \
            "$(metric ricochet_click_window_splits_total "$metrics")" >>"$SAMPLES"
    done
}

target/release/ricochet-loadtest compare "$SUITE" --out "$OUT" "$@" &
LOADTEST=$!
while kill -0 "$LOADTEST" 2>/dev/null; do
    sample
    sleep 0.5
done
wait "$LOADTEST" || echo "warning: the loadtest ended with an error" >&2

echo
echo "target     peak RSS (VmHWM)   largest RSS sample   click windows (max estimate)   max open rows   parts split"
awk -F'\t' '
    { if ($3 > hwm[$1]) hwm[$1] = $3; if ($4 > rss[$1]) rss[$1] = $4
      if ($5 > win[$1]) win[$1] = $5; if ($6 > rows[$1]) rows[$1] = $6
      if ($7 > splits[$1]) splits[$1] = $7; seen[$1] = 1 }
    END { for (t in seen) printf "%-10s %10.0f MB %16.0f MB %25.0f MB %18d %13d\n",
              t, hwm[t] / 1024, rss[t] / 1024, win[t] / 1048576, rows[t], splits[t] }
' "$SAMPLES"
echo "(samples: $SAMPLES; loadtest report: $OUT)"
