#!/usr/bin/env bash
# The SDK's throughput figures (docs/client.md): XADD at C connections with P in flight each,
# through runnel-bench's own lean connection, the SDK's Client, the SDK's Producer (fed by
# P awaiting senders, and by one loop with a window of sends), and hiredis, each against a fresh server, interleaved, REPS times; prints medians and ratios.
#   bench/sdk_compare.sh [SERVER] [C] [P] [REPS] [SECONDS]
# SERVER is runnel (runnel-server --threads 1, --fsync everysec) or redis (redis-server,
# no persistence). Needs a build with libhiredis-dev (./dev bench installs it).
set -euo pipefail
cd "$(dirname "$0")/.."
source bench/lib.sh
server=${1:-runnel} c=${2:-50} p=${3:-16} reps=${4:-3} seconds=${5:-4}
declare -A results
modes=(runnel-bench sdk producer producer-window hiredis)
for _ in $(seq "$reps"); do
  for mode in "${modes[@]}"; do
    dir=$(mktemp -d /tmp/runnel-sdkbench.XXXXXX)
    port=$(free_port)
    if [ "$server" = runnel ]; then
      build/broker/runnel-server --port "$port" --dir "$dir" --threads 1 --loglevel warning >/dev/null 2>&1 &
    else
      redis-server --port "$port" --dir "$dir" --save '' --appendonly no >/dev/null 2>&1 &
    fi
    pid=$!
    wait_port "$port"
    if [ "$mode" = runnel-bench ]; then
      ops=$(build/bench/runnel-bench produce -c "$c" -P "$p" -p "$port" -d "$seconds" --json -q |
        /usr/bin/python3 -c 'import json,sys; print(round(json.load(sys.stdin)["phases"][-1]["ops_per_sec"]))')
    else
      ops=$(build/bench/runnel-sdk-bench "$mode" -c "$c" -P "$p" -p "$port" -d "$seconds" | sed 's/.*ops_per_sec=//')
    fi
    echo "$mode $ops"
    results[$mode]+="$ops"$'\n'
    kill "$pid"; wait "$pid" 2>/dev/null || true
    rm -rf "$dir"
  done
done
base=$(printf '%s' "${results[runnel-bench]}" | median)
echo "medians against $server, -c $c -P $p ($reps x ${seconds} s):"
for mode in "${modes[@]}"; do
  m=$(printf '%s' "${results[$mode]}" | median)
  echo "  $mode $m ops/s ($(ratio "$m" "$base") of runnel-bench)"
done
