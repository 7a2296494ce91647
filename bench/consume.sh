#!/usr/bin/env bash
# Consume throughput and PEL memory, runnel-server against redis-server (persistence off).
#   bench/consume.sh [entries] [consumers] [threads]
set -euo pipefail
cd "$(dirname "$0")/.."
n=${1:-1000000}; c=${2:-4}; threads=${3:-1}
. bench/lib.sh
wait_port() { for _ in $(seq 100); do redis-cli -p "$1" ping >/dev/null 2>&1 && return 0; sleep 0.05; done; return 1; }
work=$(mktemp -d)
rp=$(free_port); dp=$(free_port)
./build/broker/runnel-server --port "$rp" --dir "$work/runnel" --threads "$threads" --loglevel warning &
rpid=$!
redis-server --port "$dp" --bind 127.0.0.1 --save '' --appendonly no --dir "$work" --loglevel warning >/dev/null &
dpid=$!
trap 'kill $rpid $dpid 2>/dev/null; wait 2>/dev/null; rm -rf "$work"' EXIT
wait_port "$rp" && wait_port "$dp"
echo "runnel (--threads $threads): $(/usr/bin/python3 bench/consume.py "$rp" "$rpid" "$n" "$c")"
echo "redis:               $(/usr/bin/python3 bench/consume.py "$dp" "$dpid" "$n" "$c")"
