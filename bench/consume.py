"""Consume throughput and PEL memory of one RESP server (runnel-server or redis-server).
Pre-fills N entries (one field, 16-byte value), then C consumer processes in one group run
XREADGROUP COUNT 100 + XACK until the stream is drained; prints entries/s. Then a second
group reads every entry without acknowledging, and the RSS growth per pending entry is
printed. Usage: consume.py PORT PID [entries] [consumers]"""
import multiprocessing
import subprocess
import sys
import time

import redis

port, pid = int(sys.argv[1]), int(sys.argv[2])
entries = int(sys.argv[3]) if len(sys.argv) > 3 else 1_000_000
consumers = int(sys.argv[4]) if len(sys.argv) > 4 else 4


def rss():
    with open("/proc/%d/status" % pid) as f:
        return next(int(line.split()[1]) * 1024 for line in f if line.startswith("VmRSS"))


def consume(index, group, ack):
    r = redis.Redis(port=port)
    got = 0
    while True:
        reply = r.xreadgroup(group, "c%d" % index, {"s": ">"}, count=100)
        if not reply:
            return got
        ids = [entry_id for entry_id, _ in reply[0][1]]
        if ack:
            r.xack("s", group, *ids)
        got += len(ids)


r = redis.Redis(port=port)
r.delete("s")
subprocess.run(["redis-benchmark", "-p", str(port), "-n", str(entries), "-P", "64", "-c", "4", "-q",
                "XADD", "s", "*", "f", "0123456789abcdef"], check=True, capture_output=True)
assert r.xlen("s") == entries
r.xgroup_create("s", "work", id="0")
start = time.time()
with multiprocessing.Pool(consumers) as pool:
    done = sum(pool.starmap(consume, [(i, "work", True) for i in range(consumers)]))
elapsed = time.time() - start
assert done == entries, done
assert r.xpending("s", "work")["pending"] == 0
r.xgroup_create("s", "hold", id="0")
before = rss()
held = consume(0, "hold", False)
assert held == entries
print("consume_entries_per_s=%.0f pel_bytes_per_entry=%.1f" % (entries / elapsed, (rss() - before) / entries))
