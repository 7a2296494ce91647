#!/usr/bin/env bash
# Start-up time after a kill -9 under --fsync always: the time to replay the write-ahead log.
#   bench/crash_start.sh [seconds of load before the kill] [other runnel-server binary]
# Loads a server with runnel-bench (produce -c 50 -P 16 over 64 streams), kills it with
# kill -9, and starts it again on the data dir it left, measuring the time to the first PONG
# and the server's own "Loaded ... in N ms". With a second binary, both start on copies of
# the same crashed data dir, so the two replay the same logs.
set -euo pipefail
cd "$(dirname "$0")/.."
source bench/lib.sh
seconds=${1:-2.5}
other=${2:-}
server=build/broker/runnel-server
work=$(mktemp -d /tmp/runnel-crash-start.XXXXXX)
trap 'rm -rf "$work"' EXIT
port=$(free_port)
"$server" --port "$port" --dir "$work/data" --threads 1 --fsync always --loglevel warning >"$work/load.log" 2>&1 &
pid=$!
wait_port "$port"
build/bench/runnel-bench produce -c 50 -P 16 --streams 64 -p "$port" -d $((${seconds%.*} + 2)) -q >/dev/null 2>&1 &
bench=$!
sleep "$seconds"
kill -9 "$pid"
wait "$pid" 2>/dev/null || true
wait "$bench" 2>/dev/null || true
echo "write-ahead log left by the kill: $(du -sh "$work/data/wal" | cut -f1) in $(ls "$work/data/wal" | wc -l) file(s)"
start_one() { # name binary
  cp -a "$work/data" "$work/$1"
  local p
  p=$(free_port)
  local t0
  t0=$(date +%s%N)
  "$2" --port "$p" --dir "$work/$1" --threads 1 --fsync always >"$work/$1.log" 2>&1 &
  local started=$!
  for _ in $(seq 12000); do [ "$(redis-cli -p "$p" ping 2>/dev/null)" = PONG ] && break; sleep 0.01; done
  local t1
  t1=$(date +%s%N)
  echo "$1: PONG after $(((t1 - t0) / 1000000)) ms; $(grep -o 'Loaded.*in [0-9]* ms' "$work/$1.log")"
  kill "$started"
  wait "$started" 2>/dev/null || true
}
start_one this "$server"
if [ -n "$other" ]; then start_one other "$other"; fi
