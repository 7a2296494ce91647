#!/usr/bin/env bash
# A stream much larger than memory's budget: writes GIB GiB of 1 KB entries into one stream
# with --cache-bytes 64 MiB, then reads 1000-entry ranges at 200 points spread over the whole
# stream and checks each, and reports the server's RSS before and after (the issue's bound:
# 4 GiB with a 64 MiB cache stays under 300 MiB).
#   bench/big_stream.sh [GIB]     (default 4)
set -euo pipefail
cd "$(dirname "$0")/.."

gib=${1:-4}
value=$(head -c 1000 /dev/zero | tr '\0' 'v')
entries=$((gib * 1024 * 1024 * 1024 / 1040))

. bench/lib.sh
work=$(mktemp -d "${BENCH_DIR:-/tmp}/runnel-big-XXXXXX")
port=$(free_port)
./build/broker/runnel-server --port "$port" --dir "$work/data" --fsync everysec --cache-bytes 67108864 \
  --loglevel warning >"$work/runnel.log" 2>&1 &
pid=$!
cleanup() { kill "$pid" 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT
for _ in $(seq 100); do [ "$(redis-cli -p "$port" ping 2>/dev/null)" = PONG ] && break; sleep 0.05; done

start=$(date +%s)
redis-benchmark -p "$port" -n "$entries" -P 64 -c 8 -q XADD big '*' f "$value" >/dev/null
elapsed=$(($(date +%s) - start))
rss() { awk '/VmRSS/{print $2}' "/proc/$pid/status"; }
echo "entries: $(redis-cli -p "$port" xlen big) in ${elapsed} s"
echo "on disk: $(du -sh "$work/data" | cut -f1); $(redis-cli -p "$port" info persistence | grep -E 'storage_(segments|cache_bytes)' | tr -d '\r' | tr '\n' ' ')"
echo "RSS after writing: $(rss) KiB"
/usr/bin/python3 - "$port" <<'EOF'
import random, sys, time, redis
r = redis.Redis(port=int(sys.argv[1]))
first = r.xrange("big", count=1)[0][0].decode()
last = r.xrevrange("big", count=1)[0][0].decode()
lo, hi = int(first.split("-")[0]), int(last.split("-")[0])
random.seed(7)
points = [lo + (hi - lo) * i // 199 for i in range(200)]
random.shuffle(points)
t = time.time()
got = 0
for ms in points:
    entries = r.xrange("big", min=str(ms), count=1000)
    assert entries, ms
    assert all(len(fields[b"f"]) == 1000 for _, fields in entries)
    ids = [tuple(map(int, i.decode().split("-"))) for i, _ in entries]
    assert ids == sorted(ids) and ids[0][0] >= ms
    got += len(entries)
dt = time.time() - t
print(f"XRANGE COUNT 1000 at 200 points over {first}..{last}: {got} entries in {dt:.2f} s "
      f"({200 / dt:.0f} ranges/s, {got / dt / 1e6:.2f} M entries/s, cold cache)")
EOF
echo "RSS after reading: $(rss) KiB"
