#!/usr/bin/env bash
# Loading an RDB file: redis-server starting from it, against runnel-import sending its streams
# to a fresh runnel-server (2 threads, --fsync POLICY) as RESTOREs. The file is made here:
# STREAMS streams of ENTRIES/STREAMS entries each (one field, an 8-byte value), and one group
# with 1,000 entries pending per stream.
#   bench/import_compare.sh [ENTRIES] [STREAMS] [POLICY]      (default 10000000 100 everysec)
set -euo pipefail
cd "$(dirname "$0")/.."
source bench/lib.sh
entries=${1:-10000000}
streams=${2:-100}
policy=${3:-everysec}
cmake --build build --target runnel-server runnel-import >/dev/null
work=$(mktemp -d /tmp/runnel-import-bench.XXXXXX)
trap 'rm -rf "$work"' EXIT

# The file: redis-server fills the streams (pipelined), then SAVEs.
rport=$(free_port)
redis-server --port "$rport" --bind 127.0.0.1 --save '' --appendonly no --dir "$work" \
  --logfile "$work/fill.log" &
rpid=$!
wait_port "$rport"
/usr/bin/python3 - "$rport" "$entries" "$streams" <<'PY'
import socket, sys
port, entries, streams = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
s = socket.create_connection(("127.0.0.1", port))
def cmd(*a):
    out = b"*%d\r\n" % len(a)
    for x in a:
        x = x.encode() if isinstance(x, str) else x
        out += b"$%d\r\n%s\r\n" % (len(x), x)
    return out
per = entries // streams
sent = 0
for k in range(streams):
    batch = []
    for i in range(1, per + 1):
        batch.append(cmd("XADD", "s%d" % k, "%d-0" % i, "f", "%08d" % i))
        if len(batch) == 10000:
            s.sendall(b"".join(batch)); sent += len(batch); batch = []
    batch.append(cmd("XGROUP", "CREATE", "s%d" % k, "g", "0"))
    batch.append(cmd("XREADGROUP", "GROUP", "g", "c", "COUNT", "1000", "STREAMS", "s%d" % k, ">"))
    s.sendall(b"".join(batch)); sent += len(batch)
# Every reply read (each starts with one line; XREADGROUP's are many lines, counted by '\r\n').
s.sendall(cmd("PING"))
buf = b""
while not buf.endswith(b"+PONG\r\n"):
    buf = buf[-16:] + s.recv(1 << 20)
PY
redis-cli -p "$rport" SAVE >/dev/null
kill "$rpid"; wait "$rpid" 2>/dev/null || true
size=$(stat -c %s "$work/dump.rdb")

# Redis loading it: the time its log gives for "DB loaded from disk".
redis-server --port "$rport" --bind 127.0.0.1 --save '' --appendonly no --dir "$work" \
  --logfile "$work/load.log" &
rpid=$!
wait_port "$rport"
for _ in $(seq 600); do grep -q 'DB loaded from disk' "$work/load.log" && break; sleep 0.1; done
redis_s=$(sed -n 's/.*DB loaded from disk: \([0-9.]*\) seconds.*/\1/p' "$work/load.log")
kill "$rpid"; wait "$rpid" 2>/dev/null || true

# Runnel: runnel-import into a fresh server.
dir="$work/runnel"
port=$(free_port)
build/broker/runnel-server --port "$port" --dir "$dir" --fsync "$policy" --threads 2 --loglevel warning \
  >/dev/null 2>&1 &
pid=$!
wait_port "$port"
out=$(build/broker/runnel-import "$work/dump.rdb" -p "$port")
echo "$out"
runnel_rate=$(echo "$out" | sed -n 's/.*: \([0-9]*\) entries\/s$/\1/p')
disk=$(du -sb "$dir" | cut -f1)
kill "$pid"; wait "$pid" 2>/dev/null || true

redis_rate=$(awk -v e="$entries" -v s="$redis_s" 'BEGIN{printf "%.0f", e/s}')
echo "RDB file: $entries entries in $streams streams, $size bytes"
echo "redis-server loads it in ${redis_s} s: $redis_rate entries/s"
echo "runnel-import ($policy): $runnel_rate entries/s ($(ratio "$runnel_rate" "$redis_rate") of redis-server), $disk bytes on disk"
