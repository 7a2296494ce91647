#!/usr/bin/env bash
# Memory per stream entry: N entries of one field with a 16-byte value, added to runnel-server
# and redis-server (persistence off); reports RSS and INFO used_memory growth per entry.
#   bench/memory.sh [entries]     (default 1000000)
set -euo pipefail
cd "$(dirname "$0")/.."
n=${1:-1000000}
. bench/lib.sh
wait_port() { for _ in $(seq 100); do redis-cli -p "$1" ping >/dev/null 2>&1 && return 0; sleep 0.05; done; return 1; }
work=$(mktemp -d)
rp=$(free_port); dp=$(free_port)
./build/broker/runnel-server --port "$rp" --dir "$work/runnel" --threads 1 --loglevel warning &
rpid=$!
redis-server --port "$dp" --bind 127.0.0.1 --save '' --appendonly no --dir "$work" --loglevel warning >/dev/null &
dpid=$!
trap 'kill $rpid $dpid 2>/dev/null; wait 2>/dev/null; rm -rf "$work"' EXIT
wait_port "$rp" && wait_port "$dp"
rss() { awk '/VmRSS/{print $2*1024}' "/proc/$1/status"; }
used() { redis-cli -p "$1" info memory | tr -d '\r' | awk -F: '/^used_memory:/{print $2}'; }
printf '| server | RSS bytes/entry | used_memory bytes/entry |\n| --- | ---: | ---: |\n'
for side in "runnel $rp $rpid" "redis $dp $dpid"; do
  set -- $side
  r0=$(rss "$3"); u0=$(used "$2")
  redis-benchmark -p "$2" -n "$n" -P 64 -c 4 -q XADD s '*' f 0123456789abcdef >/dev/null 2>&1
  [ "$(redis-cli -p "$2" xlen s)" = "$n" ] || { echo "$1: XLEN is not $n" >&2; exit 1; }
  r1=$(rss "$3"); u1=$(used "$2")
  printf '| %s | %.1f | %.1f |\n' "$1" "$(awk -v a="$r1" -v b="$r0" -v n="$n" 'BEGIN{print (a-b)/n}')" \
    "$(awk -v a="$u1" -v b="$u0" -v n="$n" 'BEGIN{print (a-b)/n}')"
done
