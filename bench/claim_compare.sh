#!/usr/bin/env bash
# A work queue's read loop three ways, on one runnel-server per run (--threads 1, a fresh
# data dir), interleaved REPS times: plain XREADGROUP, XREADGROUP ... CLAIM MS (Redis 8.4), and
# XAUTOCLAIM ... MS sent with each XREADGROUP (the way without CLAIM). Nothing is idle that
# long here, so this is what the visibility timeout costs a healthy queue.
#   bench/claim_compare.sh POLICY REPS [MS] [-- more runnel-bench consume args]
set -euo pipefail
cd "$(dirname "$0")/.."
source bench/lib.sh
policy=$1 reps=$2 ms=${3:-30000}
shift 3 || true
[ "${1:-}" = "--" ] && shift
declare -A results=([plain]="" [claim]="" [autoclaim]="")
for _ in $(seq "$reps"); do
  for mode in plain claim autoclaim; do
    extra=()
    [ "$mode" = claim ] && extra=(--claim "$ms")
    [ "$mode" = autoclaim ] && extra=(--autoclaim "$ms")
    start_runnel build/broker/runnel-server "$policy"
    ops=$(build/bench/runnel-bench consume "${extra[@]}" "$@" -p "$port" -d 3 --json -q 2>/dev/null |
      /usr/bin/python3 -c 'import json,sys; print(json.load(sys.stdin)["phases"][-1]["ops_per_sec"])')
    echo "$mode $ops"
    results[$mode]+="$ops"$'\n'
    stop_server
  done
done
plain=$(printf '%s' "${results[plain]}" | median)
for mode in plain claim autoclaim; do
  m=$(printf '%s' "${results[$mode]}" | median)
  echo "median $mode: $m entries/s ($(ratio "$m" "$plain") of plain)"
done
