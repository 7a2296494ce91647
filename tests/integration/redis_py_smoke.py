"""redis-py against a running server: connect with and without a password, PING, XADD and
XRANGE, in RESP2 and (where redis-py supports it) RESP3. Usage: redis_py_smoke.py PORT [PASSWORD]"""
import sys
import threading
import time

import redis

port = int(sys.argv[1])
password = sys.argv[2] if len(sys.argv) > 2 else None

if password:
    try:
        redis.Redis(port=port).ping()
        raise SystemExit("PING without a password should have failed")
    except redis.exceptions.AuthenticationError:
        pass
    try:
        redis.Redis(port=port, password="wrong").ping()
        raise SystemExit("a wrong password should have failed")
    except redis.exceptions.ResponseError as e:
        assert "WRONGPASS" in str(e), e

r = redis.Redis(port=port, password=password, decode_responses=True)
assert r.ping() is True
first = r.xadd("orders", {"sku": "a1", "qty": "2"})
second = r.xadd("orders", {"sku": "b7", "qty": "1"}, id="*")
entries = r.xrange("orders", "-", "+")
assert [e[0] for e in entries] == [first, second], entries
assert entries[0][1] == {"sku": "a1", "qty": "2"}, entries
assert r.xlen("orders") == 2
assert [e[0] for e in r.xrevrange("orders", "+", "-", count=1)] == [second]
assert r.type("orders") == "stream"
assert r.exists("orders") == 1
assert r.delete("orders") == 1
info = r.info()
assert "redis_version" in info, info

# XREAD BLOCK, woken by an XADD from another connection.
other = redis.Redis(port=port, password=password, decode_responses=True)
got = {}
reader = threading.Thread(target=lambda: got.update(v=other.xread({"events": "$"}, block=10000)))
reader.start()
for _ in range(500):  # bounded: at most 5 s until the reader is blocked
    if r.info("clients")["blocked_clients"] == 1:
        break
    time.sleep(0.01)
else:
    raise SystemExit("the reader never blocked")
event_id = r.xadd("events", {"kind": "signup"})
reader.join(timeout=10)
assert not reader.is_alive(), "XREAD BLOCK was not woken"
assert got["v"] == [["events", [(event_id, {"kind": "signup"})]]], got

# XTRIM, exact and approximate.
for i in range(10):
    r.xadd("trimmed", {"i": str(i)}, id="%d-1" % (i + 1))
assert r.xtrim("trimmed", maxlen=3, approximate=False) == 7
assert [e[0] for e in r.xrange("trimmed")] == ["8-1", "9-1", "10-1"]
assert r.xtrim("trimmed", minid="10-1", approximate=False) == 2
assert r.xlen("trimmed") == 1
assert r.xtrim("trimmed", maxlen=0, approximate=True) == 1  # the whole node can go
assert r.exists("trimmed") == 1 and r.xlen("trimmed") == 0
# pipeline() sends MULTI/EXEC by default; keys on different shards.
with r.pipeline() as p:
    for key in ("tx:a", "tx:b", "tx:c", "tx:d"):
        p.xadd(key, {"n": "1"}, id="1-1")
    p.xlen("tx:a")
    replies = p.execute()
assert replies == ["1-1"] * 4 + [1], replies
# WATCH: a change from another connection makes the transaction fail.
with r.pipeline() as p:
    p.watch("tx:a")
    other.xadd("tx:a", {"n": "2"}, id="2-1")
    p.multi()
    p.xlen("tx:a")
    try:
        p.execute()
        raise SystemExit("EXEC ran although a watched key changed")
    except redis.WatchError:
        pass

# Pub/Sub: redis-py's pubsub() object, channels and patterns, across connections (and shards).
ps = other.pubsub()
ps.subscribe("alerts")
ps.psubscribe("metrics.*")
confirmations = []
for _ in range(500):  # bounded: the two confirmations, within 5 s
    m = ps.get_message(timeout=0.01)
    if m is not None:
        confirmations.append((m["type"], m["channel"]))
    if len(confirmations) == 2:
        break
assert confirmations == [("subscribe", "alerts"), ("psubscribe", "metrics.*")], confirmations
assert r.publish("alerts", "disk full") == 1
assert r.publish("metrics.cpu", "93") == 1
assert r.pubsub_numsub("alerts") == [("alerts", 1)]
assert r.pubsub_numpat() == 1
received = []
for _ in range(500):
    m = ps.get_message(timeout=0.01)
    if m is not None:
        received.append((m["type"], m["channel"], m["data"]))
    if len(received) == 2:
        break
assert received == [("message", "alerts", "disk full"), ("pmessage", "metrics.cpu", "93")], received
ps.close()
print("redis-py OK")
