"""A work queue on one consumer group, with redis-py, as a service would run it: 3 producers
add 100,000 jobs; 4 consumer processes read, process and acknowledge them; one consumer is
killed (SIGKILL) mid-way, and the survivors reclaim its pending jobs with XAUTOCLAIM.
With "claim", the consumers use nothing but XREADGROUP ... CLAIM 500 (Redis 8.4): idle jobs
come first in each read, no XAUTOCLAIM loop; 20,000 jobs.
Checks: every job was processed at least once, nothing is left pending, the group read every
entry, and every job was acknowledged (acknowledging them all again acknowledges nothing);
with "claim", also that the victim's jobs came back through CLAIM (delivered before).
Usage: work_queue.py PORT WORKDIR [claim]"""
import os
import signal
import sys
import threading
import time
import traceback

import redis

PORT, WORKDIR = int(sys.argv[1]), sys.argv[2]
CLAIM = len(sys.argv) > 3 and sys.argv[3] == "claim"
JOBS, PRODUCERS, CONSUMERS = (20_000 if CLAIM else 100_000), 3, 4
DEADLINE = time.time() + 240  # every loop below is bounded by this


def client():
    return redis.Redis(port=PORT, decode_responses=True)


def consumer(name):
    r = client()
    log = open(os.path.join(WORKDIR, name + ".log"), "a", buffering=1)
    cursor = "0-0"
    idle_rounds = 0
    redelivered = open(os.path.join(WORKDIR, name + ".again"), "a", buffering=1)
    if CLAIM:
        r.set_response_callback("XREADGROUP", lambda response, **options: response)
    while time.time() < DEADLINE:
        batch = []
        if CLAIM:
            # Jobs idle for half a second (a dead consumer's) come first, then new ones.
            got = r.execute_command("XREADGROUP", "GROUP", "workers", name, "COUNT", 100, "CLAIM", 500,
                                    "BLOCK", 100, "STREAMS", "jobs", ">")
            for _, entries in got or []:
                for entry_id, _, idle, deliveries in entries:
                    batch.append(entry_id)
                    if deliveries > 0:
                        redelivered.write(entry_id + "\n")
        else:
            got = r.xreadgroup("workers", name, {"jobs": ">"}, count=100, block=100)
            for _, entries in got or []:
                batch += [entry_id for entry_id, _ in entries]
            # Jobs a dead consumer left pending for over half a second are ours now.
            cursor, claimed = r.xautoclaim("jobs", "workers", name, 500, cursor, count=100)[:2]
            batch += [entry_id for entry_id, _ in claimed]
        if batch:
            idle_rounds = 0
            log.write("".join(entry_id + "\n" for entry_id in batch))  # "processed"
            if name == "victim":
                time.sleep(0.05)  # slow enough to die with jobs in hand
            r.xack("jobs", "workers", *batch)
        else:
            idle_rounds += 1
            done = os.path.exists(os.path.join(WORKDIR, "produced"))
            if done and idle_rounds > 20 and r.xpending("jobs", "workers")["pending"] == 0:
                return


def producer(index, ids):
    r = client()
    pipe = r.pipeline(transaction=False)
    for n in range(index, JOBS, PRODUCERS):
        pipe.xadd("jobs", {"job": str(n)})
        if len(pipe) == 500:
            ids += pipe.execute()
    ids += pipe.execute()


r = client()
r.delete("jobs")
r.xgroup_create("jobs", "workers", id="$", mkstream=True)
names = ["victim"] + ["worker%d" % i for i in range(1, CONSUMERS)]
pids = {}
for name in names:
    pid = os.fork()
    if pid == 0:
        status = 0
        try:
            consumer(name)
        except BaseException:
            traceback.print_exc()
            status = 1
        finally:
            os._exit(status)
    pids[name] = pid

produced = []
threads = [threading.Thread(target=producer, args=(i, produced)) for i in range(PRODUCERS)]
for t in threads:
    t.start()
# Kill the victim once it has processed some jobs (bounded wait).
victim_log = os.path.join(WORKDIR, "victim.log")
while time.time() < DEADLINE:
    if os.path.exists(victim_log) and os.path.getsize(victim_log) > 2_000:
        break
    if os.waitpid(pids["victim"], os.WNOHANG)[0] != 0:
        raise SystemExit("the victim consumer died before it was killed")
    time.sleep(0.01)
os.kill(pids["victim"], signal.SIGKILL)
os.waitpid(pids["victim"], 0)
for t in threads:
    t.join()
open(os.path.join(WORKDIR, "produced"), "w").close()
for name in names[1:]:
    _, status = os.waitpid(pids[name], 0)
    assert status == 0, "consumer %s failed" % name

assert len(produced) == JOBS == len(set(produced)), len(produced)
processed = set()
for name in names:
    with open(os.path.join(WORKDIR, name + ".log")) as f:
        processed.update(line.strip() for line in f if line.strip())
missing = set(produced) - processed
assert not missing, "%d jobs never processed" % len(missing)
summary = r.xpending("jobs", "workers")
assert summary["pending"] == 0, summary
group = r.xinfo_groups("jobs")[0]
assert group["entries-read"] == JOBS and group["lag"] == 0, group
again = sum(r.xack("jobs", "workers", *produced[i:i + 1000]) for i in range(0, JOBS, 1000))
assert again == 0, again
if CLAIM:
    came_back = set()
    for name in names[1:]:
        with open(os.path.join(WORKDIR, name + ".again")) as f:
            came_back.update(line.strip() for line in f if line.strip())
    with open(victim_log) as f:
        victim_jobs = set(line.strip() for line in f if line.strip())
    # (A slow survivor's jobs may come back too; the victim's must.)
    assert came_back & victim_jobs, "none of the killed consumer's jobs came back through CLAIM"
print("work queue OK: %d jobs, victim killed with %d processed" %
      (JOBS, sum(1 for _ in open(victim_log))))
