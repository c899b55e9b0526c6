#!/usr/bin/env bash
# Per-thread CPU time and run-queue wait (from /proc/PID/task/*/schedstat)
# of a running process over an interval: how long each thread waited for a
# CPU while runnable, the scheduling delay behind a latency tail.
#   scripts/perf/schedstat.sh PID SECONDS
set -euo pipefail
pid=$1; seconds=$2
snapshot() {
  for task in /proc/"$pid"/task/*; do
    [ -r "$task/schedstat" ] || continue
    printf '%s %s %s\n' "$(basename "$task")" "$(tr ' ' '_' < "$task/comm")" "$(cat "$task/schedstat")"
  done | sort
}
before=$(snapshot); sleep "$seconds"; after=$(snapshot)
join <(echo "$before") <(echo "$after") | awk -v s="$seconds" '
  BEGIN { printf "%-28s %12s %14s %12s %14s\n", "thread", "cpu ms", "run wait ms", "timeslices", "wait/slice us" }
  { cpu = ($7 - $3) / 1e6; wait = ($8 - $4) / 1e6; slices = $9 - $5
    if (cpu == 0 && wait == 0) next
    printf "%-28s %12.1f %14.1f %12d %14.1f\n", $2, cpu, wait, slices, slices ? wait * 1000 / slices : 0 }'
