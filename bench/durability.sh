#!/usr/bin/env bash
# XADD throughput with durability on, side by side: runnel-server --fsync P against
# redis-server --appendonly yes --appendfsync P, for P in always, everysec and no, with
# redis-benchmark at -P 1 and -P 16 (50 clients). Runs interleave (Runnel, Redis, ...) REPS
# times; the table shows medians and the Runnel/Redis ratio.
#   bench/durability.sh [--quick] [--threads N]
# Data dirs are made under $BENCH_DIR (default: a temp dir on the disk that holds /tmp).
set -euo pipefail
cd "$(dirname "$0")/.."

. bench/lib.sh
parse_bench_args "$@"

work=$(mktemp -d "${BENCH_DIR:-/tmp}/runnel-bench-XXXXXX")
pids=()
cleanup() { kill "${pids[@]}" 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT

# Starts both servers with policy $1 on fresh dirs; sets runnel_port, redis_port.
start_pair() {
  local policy=$1
  rm -rf "$work/runnel" "$work/redis"
  mkdir -p "$work/redis"
  runnel_port=$(free_port)
  ./build/broker/runnel-server --port "$runnel_port" --dir "$work/runnel" --threads "$threads" \
    --fsync "$policy" --loglevel warning >>"$work/runnel.log" 2>&1 &
  pids+=($!)
  redis_port=$(free_port)
  redis-server --port "$redis_port" --bind 127.0.0.1 --save '' --appendonly yes \
    --appendfsync "$policy" --dir "$work/redis" --loglevel warning >>"$work/redis.log" 2>&1 &
  pids+=($!)
  wait_port "$runnel_port" && wait_port "$redis_port"
}
stop_pair() { kill "${pids[@]}" 2>/dev/null || true; wait 2>/dev/null || true; pids=(); }

mkdir -p bench/results
raw="bench/results/durability-$(date +%Y%m%d-%H%M%S).csv"
printf '| workload | fsync | runnel ops/s | redis ops/s | runnel / redis |\n| --- | --- | ---: | ---: | ---: |\n'
for policy in always everysec no; do
  start_pair "$policy"
  for pipeline in 1 16; do
    r_runs=(); d_runs=()
    for _ in $(seq "$reps"); do
      r_runs+=("$(rps "$runnel_port" -P "$pipeline" -c 50 XADD s '*' f v)")
      d_runs+=("$(rps "$redis_port" -P "$pipeline" -c 50 XADD s '*' f v)")
    done
    r=$(printf '%s\n' "${r_runs[@]}" | median)
    d=$(printf '%s\n' "${d_runs[@]}" | median)
    echo "XADD -P $pipeline,$policy,runnel,${r_runs[*]},redis,${d_runs[*]}" >>"$raw"
    printf '| XADD -P %s | %s | %.0f | %.0f | %.2f |\n' "$pipeline" "$policy" "$r" "$d" \
      "$(awk -v a="$r" -v b="$d" 'BEGIN{print a/b}')"
  done
  stop_pair
done
printf '\nrunnel --threads %s, %s requests x %s reps, %s cores, data dirs on %s\n' \
  "$threads" "$requests" "$reps" "$(nproc)" "$(df --output=source,fstype "$work" | tail -1)"
