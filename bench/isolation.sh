#!/usr/bin/env bash
# Isolation, side by side: an "online" stream's round-trip latency (1,000 XADD + XREAD per
# second) without and with a pipelined XADD flood on another stream (bench/isolation.py),
# for Runnel at --threads 1 and 2 and for redis-server, all with fsync everysec.
#   bench/isolation.sh [SECONDS]      (per phase; default 10)
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh

seconds=${1:-10}
work=$(mktemp -d "${BENCH_DIR:-/tmp}/runnel-isolation-XXXXXX")
pid=
cleanup() { [ -n "$pid" ] && kill "$pid" 2>/dev/null; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT

run() { # name, then the server's command line (its port is $port)
  local name=$1; shift
  "$@" >"$work/$name.log" 2>&1 &
  pid=$!
  wait_port "$port"
  local out
  out=$(/usr/bin/python3 bench/isolation.py "$port" "$seconds")
  kill "$pid"; wait "$pid" 2>/dev/null || true; pid=
  /usr/bin/python3 - "$name" "$out" <<'PY'
import json, sys
name, r = sys.argv[1], json.loads(sys.argv[2])
q, f = r["quiet"], r["flooded"]
print("| %s | %d | %d | %d | %d | %.1f | %s |" % (name, q["p50_us"], q["p99_us"], f["p50_us"], f["p99_us"],
      f["p99_us"] / q["p99_us"], r["placement"]))
PY
}

printf '| server | quiet p50 µs | quiet p99 µs | flooded p50 µs | flooded p99 µs | p99 ratio | placement |\n'
printf '| --- | ---: | ---: | ---: | ---: | ---: | --- |\n'
port=$(free_port)
run "runnel --threads 1" ./build/broker/runnel-server --port "$port" --dir "$work/r1" --threads 1 --loglevel warning
port=$(free_port)
run "runnel --threads 2" ./build/broker/runnel-server --port "$port" --dir "$work/r2" --threads 2 --loglevel warning
port=$(free_port)
mkdir -p "$work/redis"
run "redis 7.0" redis-server --port "$port" --bind 127.0.0.1 --save '' --appendonly yes --appendfsync everysec \
  --dir "$work/redis" --loglevel warning
printf '\n%s s per phase, %s cores; the flood is redis-benchmark -c 8 -P 64 XADD on another stream\n' "$seconds" "$(nproc)"
