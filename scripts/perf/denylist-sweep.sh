#!/usr/bin/env bash
# How long blocking and unblocking a host takes over a store of 1,000,000
# links (docs/PERFORMANCE.md, "Denylist sweeps"): imports generated links, one
# in a hundred pointing to promo.bad-host.example, serves the store, then
# times the API calls that list and unlist a host (each sweeps every link and
# rewrites the ones whose verdict changed) with curl.
#   scripts/perf/denylist-sweep.sh [links] [work dir]
set -euo pipefail
cd "$(dirname "$0")/../.."
links=${1:-1000000}
work=${2:-/tmp/ricochet-denylist-perf}
port=18082
cargo build --release -q -p ricochet-control --bin ricochet-control -p ricochet-benches --bin import-data
rm -rf "$work" && mkdir -p "$work"
target/release/import-data --links "$links" --output "$work/links.csv"
sed -i -e 's/^go\.example,/localhost,/' -e '0~100s|https://shop\.example\.com/|https://promo.bad-host.example/|' "$work/links.csv"
target/release/ricochet-control --data-dir "$work/data" import "$work/links.csv" > /dev/null
RICOCHET_CONTROL_DOMAINS__VERIFICATION=none \
  target/release/ricochet-control --data-dir "$work/data" --listen 127.0.0.1:$port > "$work/serve.log" 2>&1 &
server=$!
trap 'kill $server 2>/dev/null || true' EXIT
base=http://127.0.0.1:$port
for _ in $(seq 1 300); do curl -sf -o /dev/null $base/healthz && break; sleep 0.1; done
key=$(grep -o 'rk_[A-Za-z0-9_]*' "$work/serve.log" | head -1)
# The start-up sweep reads every link once; wait for it to finish.
for _ in $(seq 1 600); do
  curl -s $base/metrics | grep -q '^ricochet_control_denylist_sweeps_total [1-9]' && break; sleep 0.1
done
call() {
  curl -s -o "$work/answer.json" -w '%{http_code} %{time_total}' -H "Authorization: Bearer $key" \
    -H 'Content-Type: application/json' "$@"
}
report() {
  read -r status seconds <<< "$2"
  printf '%-52s %s %7.2f s  %s\n' "$1" "$status" "$seconds" "$(head -c 160 "$work/answer.json")"
}
report "block a host of no link (sweep only)" "$(call -X POST $base/api/v1/denylist -d '{"host":"nothing.example"}')"
report "block promo.bad-host.example (1% of links)" "$(call -X POST $base/api/v1/denylist -d '{"host":"bad-host.example","reason":"test"}')"
report "unblock it" "$(call -X DELETE $base/api/v1/denylist/bad-host.example)"
report "block shop.example.com (99% of links)" "$(call -X POST $base/api/v1/denylist -d '{"host":"shop.example.com"}')"
report "unblock it" "$(call -X DELETE $base/api/v1/denylist/shop.example.com)"
ps -o rss= -p $server | awk '{printf "control plane RSS after: %.0f MB\n", $1 / 1024}'
