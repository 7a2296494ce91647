#!/usr/bin/env bash
# XADD with and without IDMP (Redis 8.6), on one runnel-server per run (--threads 1, a fresh
# data dir), interleaved REPS times: what idempotent producers cost a producer.
#   bench/idmp_compare.sh POLICY REPS [-- more runnel-bench produce args]
set -euo pipefail
cd "$(dirname "$0")/.."
source bench/lib.sh
policy=$1 reps=$2
shift 2
[ "${1:-}" = "--" ] && shift
declare -A results=([plain]="" [idmp]="")
for _ in $(seq "$reps"); do
  for mode in plain idmp; do
    extra=()
    [ "$mode" = idmp ] && extra=(--idmp)
    start_runnel build/broker/runnel-server "$policy"
    ops=$(build/bench/runnel-bench produce "${extra[@]}" "$@" -p "$port" -d 3 --json -q 2>/dev/null |
      /usr/bin/python3 -c 'import json,sys; print(json.load(sys.stdin)["phases"][-1]["ops_per_sec"])')
    echo "$mode $ops"
    results[$mode]+="$ops"$'\n'
    stop_server
  done
done
plain=$(printf '%s' "${results[plain]}" | median)
for mode in plain idmp; do
  m=$(printf '%s' "${results[$mode]}" | median)
  echo "median $mode: $m XADDs/s ($(ratio "$m" "$plain") of plain)"
done
