#!/usr/bin/env bash
# XADD spread over 64 streams (redis-benchmark -r 64 XADD s:<n> * f v), side by side: Runnel at
# --threads 1 and 2 against redis-server, all with fsync everysec. Also reports the CPU time
# that redis-benchmark itself used, since it shares the machine's cores with the server.
#   bench/spread.sh [--quick]
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh
parse_bench_args "$@"

work=$(mktemp -d "${BENCH_DIR:-/tmp}/runnel-spread-XXXXXX")
pid=
cleanup() { [ -n "$pid" ] && kill "$pid" 2>/dev/null; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT

# One redis-benchmark run: prints "ops/s cpu-seconds" (user + system of redis-benchmark).
measure() { # port, pipeline
  local out
  out=$( { /usr/bin/time -f 'CPU %U %S' redis-benchmark -p "$1" -n "$requests" -r 64 -c 50 -P "$2" -q --csv \
    XADD 's:__rand_int__' '*' f v; } 2>&1 )
  local rps cpu
  rps=$(echo "$out" | grep -v '^CPU' | tail -1 | cut -d, -f2 | tr -d '"')
  cpu=$(echo "$out" | awk '/^CPU/{print $2 + $3}')
  echo "$rps $cpu"
}

printf '| server | pipeline | ops/s | redis-benchmark CPU s |\n| --- | ---: | ---: | ---: |\n'
for server in "runnel --threads 1" "runnel --threads 2" "redis 7.0"; do
  port=$(free_port)
  rm -rf "$work/data"; mkdir -p "$work/data"
  case "$server" in
    runnel*) ./build/broker/runnel-server --port "$port" --dir "$work/data" --threads "${server##* }" \
               --loglevel warning >"$work/log" 2>&1 & ;;
    redis*) redis-server --port "$port" --bind 127.0.0.1 --save '' --appendonly yes --appendfsync everysec \
              --dir "$work/data" --loglevel warning >"$work/log" 2>&1 & ;;
  esac
  pid=$!
  wait_port "$port"
  for p in 1 16; do
    read -r rps cpu < <(measure "$port" "$p")
    printf '| %s | %s | %.0f | %s |\n' "$server" "$p" "$rps" "$cpu"
  done
  kill "$pid"; wait "$pid" 2>/dev/null || true; pid=
done
printf '\n%s requests per run, %s cores\n' "$requests" "$(nproc)"
