"""redis-py against a running server: connect with and without a password, PING, XADD and
XRANGE, in RESP2 and (where redis-py supports it) RESP3. Usage: redis_py_smoke.py PORT [PASSWORD]"""
import sys

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
print("redis-py OK")
