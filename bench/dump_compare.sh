#!/usr/bin/env bash
# DUMP and RESTORE of one stream, redis-server against runnel-server (--threads 1, --fsync
# POLICY), in one run: the same ENTRIES entries (one field, an 8-byte value) and a group with
# 1,000 pending entries, then DUMP it and RESTORE the payload under a new key, each REPS times;
# the medians, as entries per second.
#   bench/dump_compare.sh [ENTRIES] [REPS] [POLICY]        (default 1000000 5 everysec)
set -euo pipefail
cd "$(dirname "$0")/.."
source bench/lib.sh
entries=${1:-1000000}
reps=${2:-5}
policy=${3:-everysec}
cmake --build build --target runnel-server >/dev/null
rport=$(free_port)
rdir=$(mktemp -d /tmp/runnel-dump-bench.XXXXXX)
redis-server --port "$rport" --bind 127.0.0.1 --save '' --appendonly no --dir "$rdir" --logfile "$rdir/log" &
rpid=$!
start_runnel build/broker/runnel-server "$policy"
trap 'kill $rpid 2>/dev/null; stop_server; rm -rf "$rdir"' EXIT
wait_port "$rport"
/usr/bin/python3 - "$rport" "$port" "$entries" "$reps" <<'PY'
import socket, sys, time, statistics
rport, nport, entries, reps = map(int, sys.argv[1:5])
def conn(port):
    s = socket.create_connection(("127.0.0.1", port)); return s, s.makefile("rb")
def cmd(*a):
    out = b"*%d\r\n" % len(a)
    for x in a:
        x = x.encode() if isinstance(x, str) else x
        out += b"$%d\r\n%s\r\n" % (len(x), x)
    return out
def read(f):
    line = f.readline()
    t = line[:1]
    if t == b"$":
        n = int(line[1:])
        return None if n < 0 else f.read(n + 2)[:-2]
    if t == b"*":
        return [read(f) for _ in range(int(line[1:]))]
    return line.strip()
def call(c, *a):
    c[0].sendall(cmd(*a)); return read(c[1])
for name, port in (("redis-server", rport), ("runnel-server", nport)):
    c = conn(port)
    for start in range(1, entries + 1, 10000):
        batch = b"".join(cmd("XADD", "s", "%d-0" % i, "f", "%08d" % i) for i in range(start, min(start + 10000, entries + 1)))
        c[0].sendall(batch)
        for _ in range(start, min(start + 10000, entries + 1)): read(c[1])
    call(c, "XGROUP", "CREATE", "s", "g", "0")
    call(c, "XREADGROUP", "GROUP", "g", "c", "COUNT", "1000", "STREAMS", "s", ">")
    dumps, restores = [], []
    for r in range(reps):
        t = time.perf_counter(); payload = call(c, "DUMP", "s"); dumps.append(time.perf_counter() - t)
        t = time.perf_counter(); ok = call(c, "RESTORE", "r%d" % r, "0", payload); restores.append(time.perf_counter() - t)
        assert ok == b"+OK", ok
        call(c, "DEL", "r%d" % r)
    d, rs = statistics.median(dumps), statistics.median(restores)
    print("%s: payload %d bytes; DUMP %.3f s (%.0f entries/s), RESTORE %.3f s (%.0f entries/s)"
          % (name, len(payload), d, entries / d, rs, entries / rs))
PY
