#!/usr/bin/env bash
# Console page times over a workspace of 1,000,000 links (docs/PERFORMANCE.md,
# "Console pages"): imports generated links into a fresh control store, serves
# it, signs in through the console's form and times each page 30 times with
# curl (p50 and max of the whole request, on loopback).
#   scripts/perf/console-pages.sh [links] [work dir]
set -euo pipefail
cd "$(dirname "$0")/../.."
links=${1:-1000000}
work=${2:-/tmp/ricochet-console-perf}
port=18081
cargo build --release -q -p ricochet-control --bin ricochet-control -p ricochet-benches --bin import-data
rm -rf "$work" && mkdir -p "$work"
target/release/import-data --links "$links" --output "$work/links.csv"
sed -i 's/^go\.example,/localhost,/' "$work/links.csv"
target/release/ricochet-control --data-dir "$work/data" import "$work/links.csv"
RICOCHET_CONTROL_DOMAINS__VERIFICATION=none \
  target/release/ricochet-control --data-dir "$work/data" --listen 127.0.0.1:$port > "$work/serve.log" 2>&1 &
server=$!
trap 'kill $server 2>/dev/null || true' EXIT
base=http://127.0.0.1:$port
for _ in $(seq 1 100); do curl -sf -o /dev/null $base/healthz && break; sleep 0.1; done
password=$(sed -n 's/^  password //p' "$work/serve.log")
curl -s -c "$work/cookies" -o /dev/null $base/console/sign-in \
  --data-urlencode email=owner@ricochet.local --data-urlencode "password=$password" -d next=/console/links
middle=$((links / 2))
cursor=$(curl -s -b "$work/cookies" $base/console/links | grep -o 'cursor=[^"&]*' | head -1)
measure() {
  for _ in $(seq 1 30); do
    curl -s -b "$work/cookies" -o /dev/null -w '%{http_code} %{time_total}\n' "$base$1"
  done | sort -k2 -n | awk -v page="$1" '
    $1 != 200 { bad = $1 } { t[NR] = $2 }
    END { if (bad) { printf "%-46s answered %s\n", page, bad; exit 1 }
          printf "%-46s p50 %6.1f ms  max %6.1f ms\n", page, t[int(NR/2)] * 1000, t[NR] * 1000 }'
}
for page in "/console/links" "/console/links?sort=code" "/console/links?$cursor" \
  "/console/links?q=no-such-text" "/console/links?tag=spring" "/console/links?q=catalog/999" \
  "/console/links/$middle" "/console/links/$middle/edit" "/console/links/$middle/qr?format=png&size=512" \
  "/console/analytics" "/console/domains" "/console/members" "/console/settings"; do
  measure "$page"
done
