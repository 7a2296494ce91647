#!/usr/bin/env bash
# Many one-entry streams under a small open files limit, Runnel against redis-server.
#   [RUNNEL_SERVER=path] bench/many_streams.sh [streams, default 1000000] [fsync policy, default no]
# Makes the streams with redis-cli --pipe (XADD s:<i> 1-1 f v) under `ulimit -n 1024`,
# then restarts the server on its data dir and reads every stream back with XRANGE
# (redis-py, pipelines of 10,000). Prints the time to make them, RSS, disk, start-up time
# and how many streams did not come back whole; then the same for redis-server (no
# persistence; SAVE, then a start from the RDB). A million streams take about 12 GB of disk
# and 10 minutes here.
set -euo pipefail
cd "$(dirname "$0")/.."
source bench/lib.sh
streams=${1:-1000000}
policy=${2:-no}
server=${RUNNEL_SERVER:-build/broker/runnel-server}  # another binary to compare with
work=$(mktemp -d /tmp/runnel-many.XXXXXX)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$work"' EXIT
/usr/bin/python3 - "$streams" >"$work/xadds" <<'PY'
import sys
out = sys.stdout.buffer
for i in range(int(sys.argv[1])):
    k = b"s:%d" % i
    out.write(b"*5\r\n$4\r\nXADD\r\n$%d\r\n%s\r\n$3\r\n1-1\r\n$1\r\nf\r\n$1\r\nv\r\n" % (len(k), k))
PY
now() { date +%s.%N; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN{printf "%.1f", b-a}'; }
rss_kib() { awk '/VmRSS/ {print $2}' "/proc/$1/status"; }
read_back() { # port: streams that did not come back as one entry 1-1
  /usr/bin/python3 - "$1" "$streams" <<'PY'
import sys, redis
r = redis.Redis(port=int(sys.argv[1]))
n, bad = int(sys.argv[2]), 0
p = r.pipeline(transaction=False)
for i in range(n):
    p.xrange("s:%d" % i)
    if i % 10000 == 9999 or i == n - 1:
        bad += sum(1 for x in p.execute() if len(x) != 1 or x[0][0] != b"1-1")
print(bad)
PY
}
start_runnel() { # log: starts under ulimit -n 1024, sets pid and port
  port=$(free_port)
  (ulimit -n 1024; exec "$server" --port "$port" --dir "$work/data" --fsync "$policy" --threads 2 >"$work/$1" 2>&1) &
  pid=$!
  for _ in $(seq 6000); do grep -q "ready:" "$work/$1" 2>/dev/null && return 0; sleep 0.1; done
  return 1
}
echo "Runnel, $streams streams, --fsync $policy, ulimit -n 1024, --threads 2"
start_runnel first.log
t=$(now); redis-cli -p "$port" --pipe <"$work/xadds" | tail -1
echo "  made in $(since "$t") s; RSS $(rss_kib "$pid") KiB"
redis-cli -p "$port" info persistence | grep -E "storage_(streams|open_files|files_reopened)" | sed 's/^/  /'
redis-cli -p "$port" shutdown >/dev/null || true
wait "$pid" 2>/dev/null || true
echo "  disk: $(du -sk "$work/data" | cut -f1) KiB"
sync; echo 3 >/proc/sys/vm/drop_caches 2>/dev/null || true  # a cold start, where allowed
t=$(now); start_runnel second.log
echo "  start-up: $(since "$t") s ($(grep -o 'Loaded.*ms' "$work/second.log")); RSS $(rss_kib "$pid") KiB"
echo "  streams not read back whole: $(read_back "$port")"
redis-cli -p "$port" shutdown >/dev/null || true
wait "$pid" 2>/dev/null || true
rm -rf "$work/data"
echo "redis-server, $streams streams"
port=$(free_port)
redis-server --port "$port" --dir "$work" --save "" --appendonly no >"$work/redis.log" 2>&1 &
pid=$!
wait_port "$port"
t=$(now); redis-cli -p "$port" --pipe <"$work/xadds" | tail -1
echo "  made in $(since "$t") s; RSS $(rss_kib "$pid") KiB"
redis-cli -p "$port" save >/dev/null
redis-cli -p "$port" shutdown nosave >/dev/null || true
wait "$pid" 2>/dev/null || true
echo "  RDB: $(du -sk "$work/dump.rdb" | cut -f1) KiB"
t=$(now)
redis-server --port "$port" --dir "$work" --appendonly no >"$work/redis2.log" 2>&1 &
pid=$!
for _ in $(seq 6000); do [ "$(redis-cli -p "$port" xlen "s:$((streams - 1))" 2>/dev/null)" = 1 ] && break; sleep 0.05; done
echo "  start-up: $(since "$t") s; RSS $(rss_kib "$pid") KiB"
echo "  streams not read back whole: $(read_back "$port")"
redis-cli -p "$port" shutdown nosave >/dev/null || true
wait "$pid" 2>/dev/null || true
