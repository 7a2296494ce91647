#!/usr/bin/env bash
# Start-up and cold reads, side by side with redis-server (appendonly yes):
#  1. both servers take ENTRIES entries across 1,000 streams (XADD s:<n> * f v, pipelined);
#  2. both stop and start again: the time from start to the first PONG (Redis answers
#     -LOADING while it replays its AOF; Runnel loads before it listens);
#  3. on the restarted servers, XRANGE s:<random> - + COUNT 1000: Runnel's tail cache is
#     empty after a restart, so every read comes from the segment files.
#   bench/startup.sh [--quick]          (--quick: 1,000,000 entries instead of 10,000,000)
set -euo pipefail
cd "$(dirname "$0")/.."

entries=10000000
[ "${1:-}" = "--quick" ] && entries=1000000

. bench/lib.sh
pong() { [ "$(redis-cli -p "$1" ping 2>/dev/null)" = PONG ]; }
now_ms() { date +%s%3N; }

work=$(mktemp -d "${BENCH_DIR:-/tmp}/runnel-startup-XXXXXX")
pids=()
cleanup() { kill "${pids[@]}" 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT
mkdir -p "$work/redis"
runnel_port=$(free_port)
redis_port=$(free_port)

start_runnel() {
  ./build/broker/runnel-server --port "$runnel_port" --dir "$work/runnel" --fsync no \
    --loglevel notice >>"$work/runnel.log" 2>&1 &
  runnel_pid=$!
}
start_redis() {
  redis-server --port "$redis_port" --bind 127.0.0.1 --save '' --appendonly yes --appendfsync no \
    --dir "$work/redis" --loglevel notice >>"$work/redis.log" 2>&1 &
  redis_pid=$!
}
# Milliseconds from now until `port` answers PONG (at most 10 minutes).
time_to_pong() {
  local port=$1 start
  start=$(now_ms)
  for _ in $(seq 60000); do pong "$port" && break; sleep 0.01; done
  echo $(($(now_ms) - start))
}

start_runnel; start_redis
time_to_pong "$runnel_port" >/dev/null; time_to_pong "$redis_port" >/dev/null
for port in "$runnel_port" "$redis_port"; do
  redis-benchmark -p "$port" -n "$entries" -r 1000 -P 64 -c 50 -q XADD 's:__rand_int__' '*' f v >/dev/null
done
keys_r=$(redis-cli -p "$runnel_port" dbsize); keys_d=$(redis-cli -p "$redis_port" dbsize)
redis-cli -p "$redis_port" shutdown >/dev/null 2>&1 || true
kill "$runnel_pid"; wait "$runnel_pid" "$redis_pid" 2>/dev/null || true
sync
disk_r=$(du -sm "$work/runnel" | cut -f1); disk_d=$(du -sm "$work/redis" | cut -f1)

start_runnel; t_r=$(time_to_pong "$runnel_port")
start_redis; t_d=$(time_to_pong "$redis_port")
pids=("$runnel_pid" "$redis_pid")

printf '| measure | runnel | redis | runnel / redis |\n| --- | ---: | ---: | ---: |\n'
printf '| start-up to first PONG, ms (%s entries, %s/%s streams) | %s | %s | %.2f |\n' \
  "$entries" "$keys_r" "$keys_d" "$t_r" "$t_d" "$(awk -v a="$t_r" -v b="$t_d" 'BEGIN{print a/b}')"
printf '| on disk, MiB | %s | %s | %.2f |\n' "$disk_r" "$disk_d" "$(awk -v a="$disk_r" -v b="$disk_d" 'BEGIN{print a/b}')"
rss_r=$(awk '/VmRSS/{print $2}' "/proc/$runnel_pid/status"); rss_d=$(awk '/VmRSS/{print $2}' "/proc/$redis_pid/status")
printf '| RSS after start-up, KiB | %s | %s | %.2f |\n' "$rss_r" "$rss_d" "$(awk -v a="$rss_r" -v b="$rss_d" 'BEGIN{print a/b}')"
read_rps() {
  redis-benchmark -p "$1" -n 20000 -r 1000 -c 50 -P 1 -q --csv XRANGE 's:__rand_int__' - + COUNT 1000 2>/dev/null |
    tail -1 | cut -d, -f2 | tr -d '"'
}
x_r=$(read_rps "$runnel_port"); x_d=$(read_rps "$redis_port")
printf '| XRANGE COUNT 1000 (cold for Runnel), requests/s | %.0f | %.0f | %.2f |\n' "$x_r" "$x_d" \
  "$(awk -v a="$x_r" -v b="$x_d" 'BEGIN{print a/b}')"
printf '\n%s cores; Runnel log: %s\n' "$(nproc)" "$(grep -o 'Loaded.*' "$work/runnel.log" | tail -1)"
