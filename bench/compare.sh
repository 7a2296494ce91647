#!/usr/bin/env bash
# Side-by-side comparison of runnel-server and redis-server with redis-benchmark.
# Both servers run on free loopback ports with the same durability: Runnel's default
# (--fsync everysec, segment files) against Redis with appendonly yes, appendfsync everysec.
# Each workload runs interleaved (Runnel, Redis, Runnel, Redis, ...) REPS times, and the
# median is reported.
#   bench/compare.sh [--quick] [--threads N]
# Output: a Markdown table on stdout; raw CSV lines in bench/results/raw-<date>.csv.
set -euo pipefail
cd "$(dirname "$0")/.."

. bench/lib.sh
parse_bench_args "$@"

work=$(mktemp -d)
runnel_port=$(free_port)
./build/broker/runnel-server --port "$runnel_port" --dir "$work/runnel" --threads "$threads" \
  --loglevel warning >"$work/runnel.log" 2>&1 &
runnel_pid=$!
redis_port=$(free_port)
redis-server --port "$redis_port" --bind 127.0.0.1 --save '' --appendonly yes --appendfsync everysec --dir "$work" \
  --loglevel warning >"$work/redis.log" 2>&1 &
redis_pid=$!
cleanup() { kill "$runnel_pid" "$redis_pid" 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT
wait_port "$runnel_port" && wait_port "$redis_port"

mkdir -p bench/results
raw="bench/results/raw-$(date +%Y%m%d-%H%M%S).csv"

# name | redis-benchmark arguments (after -p PORT)
workloads=(
  "PING -P 16|-t ping_mbulk -P 16 -c 50"
  "PING -P 1|-t ping_mbulk -P 1 -c 50"
  "XADD -P 1|-P 1 -c 50 XADD s * f v"
  "XADD -P 16|-P 16 -c 50 XADD s * f v"
  "XRANGE COUNT 10 -P 1|-P 1 -c 50 XRANGE s - + COUNT 10"
  "XRANGE COUNT 10 -P 16|-P 16 -c 50 XRANGE s - + COUNT 10"
)

printf '| workload | runnel ops/s | redis ops/s | runnel / redis |\n| --- | ---: | ---: | ---: |\n'
for w in "${workloads[@]}"; do
  name=${w%%|*}
  read -r -a args <<<"${w#*|}"
  r_runs=(); d_runs=()
  for _ in $(seq "$reps"); do
    r_runs+=("$(rps "$runnel_port" "${args[@]}")")
    d_runs+=("$(rps "$redis_port" "${args[@]}")")
  done
  r=$(printf '%s\n' "${r_runs[@]}" | median)
  d=$(printf '%s\n' "${d_runs[@]}" | median)
  echo "$name,runnel,${r_runs[*]},redis,${d_runs[*]}" >>"$raw"
  printf '| %s | %.0f | %.0f | %.2f |\n' "$name" "$r" "$d" "$(awk -v a="$r" -v b="$d" 'BEGIN{print a/b}')"
done
printf '\nrunnel --threads %s, %s requests x %s reps, %s; RSS after: runnel %s KiB, redis %s KiB\n' \
  "$threads" "$requests" "$reps" "$(nproc) cores" \
  "$(awk '/VmRSS/{print $2}' /proc/$runnel_pid/status)" "$(awk '/VmRSS/{print $2}' /proc/$redis_pid/status)"
