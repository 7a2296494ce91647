#!/usr/bin/python3
"""Isolation: the latency of a low-rate "online" stream while a "batch" stream is flooded.

  bench/isolation.py PORT [SECONDS]

The online client makes 1,000 round trips a second for SECONDS (default 10): XADD to
"online", then XREAD of what it added. It reports p50 and p99 of each round trip, first with
no other load, then while redis-benchmark floods "batch" with pipelined XADDs from 8
connections. Prints one line of JSON.
"""
import json
import subprocess
import sys
import time

import redis


def percentile(values, p):
    values = sorted(values)
    return values[min(len(values) - 1, int(len(values) * p / 100))]


def online_run(port, seconds):
    r = redis.Redis(port=port)
    r.delete("online")
    samples = []
    last = b"0-0"
    period = 0.001
    start = time.perf_counter()
    for i in range(int(seconds * 1000)):
        due = start + i * period
        now = time.perf_counter()
        if now < due:
            time.sleep(due - now)
        t0 = time.perf_counter()
        entry_id = r.xadd("online", {"i": i})
        got = r.xread({"online": last}, count=1)
        assert got and got[0][1][0][0] == entry_id
        samples.append((time.perf_counter() - t0) * 1e6)
        last = entry_id
    return {"p50_us": round(percentile(samples, 50)), "p99_us": round(percentile(samples, 99)),
            "round_trips": len(samples)}


def shard_keys(r):
    """Runnel's INFO shards as [keys per shard], or None (Redis has no such section)."""
    info = r.info("shards")
    shards = sorted((k for k in info if k.startswith("shard")), key=lambda k: int(k[5:]))
    return [int(info[k]["keys"]) for k in shards] or None


def batch_key(port):
    """A key for the flood on another shard than "online", when the server has shards."""
    r = redis.Redis(port=port)
    r.xadd("online", {"i": "-1"})
    before = shard_keys(r)
    if not before or len(before) < 2:
        return "batch", "one shard"
    online_shard = None
    for n in range(64):
        key = "batch%d" % n
        r.xadd(key, {"f": "v"})
        after = shard_keys(r)
        moved = [i for i in range(len(after)) if after[i] != before[i]][0]
        r.delete(key)
        if online_shard is None:
            r.delete("online")
            mid = shard_keys(r)
            online_shard = [i for i in range(len(mid)) if mid[i] != before[i]][0]
            r.xadd("online", {"i": "-1"})
        if moved != online_shard:
            return key, "online on shard %d, %s on shard %d" % (online_shard, key, moved)
    return "batch", "same shard"


def main():
    port = int(sys.argv[1])
    seconds = float(sys.argv[2]) if len(sys.argv) > 2 else 10
    flood_key, placement = batch_key(port)
    quiet = online_run(port, seconds)
    flood = subprocess.Popen(
        ["redis-benchmark", "-p", str(port), "-c", "8", "-P", "64", "-n", "100000000", "-q",
         "XADD", flood_key, "MAXLEN", "~", "100000", "*", "f", "v"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        time.sleep(1)
        loaded = online_run(port, seconds)
    finally:
        flood.terminate()
        flood.wait()
    print(json.dumps({"placement": placement, "quiet": quiet, "flooded": loaded}))


if __name__ == "__main__":
    main()
