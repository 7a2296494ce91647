#!/usr/bin/env python3
"""What hostile or careless clients cost the server, Runnel against redis-server in the same run.

  bench/hostile.py [--runnel PATH] [--threads N]

Three measures, each on a fresh server of each kind:
  bulk:   4 connections each declare a 536870000-byte argument and send 20 KB of it;
          the server's RSS before and after.
  slow:   a stream of 20,000 entries of 1 KB; 10 connections each pipeline 100
          `XRANGE big - +` and read nothing; RSS at its peak, and PING on a fresh connection
          (p50, p99, max of up to 200, 10 ms apart, within 60 s; one unanswered in 10 s counts
          as 10 s).
  idle:   5,000 connections that send nothing; RSS per connection.
  big:    one XADD of a 500 MB value; the peak RSS (VmHWM) and the RSS once it is written,
          and after an XRANGE reads it back.
Plain sockets only (no client library). Needs `ulimit -n` above 5,100.
`--only NAME` runs one measure.
"""
import argparse
import os
import shutil
import socket
import subprocess
import tempfile
import time

from compare import ROOT, free_port, rss_kib  # compare.py, beside this script


def call(sock, *args):
    sock.sendall(("*%d\r\n" % len(args) + "".join("$%d\r\n%s\r\n" % (len(a), a) for a in args)).encode())


class Server:
    def __init__(self, kind, runnel, threads):
        self.port = free_port()
        self.dir = tempfile.mkdtemp(prefix="runnel-hostile-")
        if kind == "runnel":
            argv = [runnel, "--port", str(self.port), "--dir", self.dir, "--threads", str(threads),
                    "--maxclients", "9000", "--loglevel", "warning"]
        else:
            argv = ["redis-server", "--port", str(self.port), "--dir", self.dir, "--save", "", "--appendonly", "no",
                    "--maxclients", "9000"]
        self.process = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        for _ in range(500):
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1) as s:
                    s.sendall(b"PING\r\n")
                    if s.recv(64).startswith(b"+PONG"):
                        return
            except OSError:
                pass
            time.sleep(0.02)
        raise SystemExit("%s did not start" % kind)

    def rss(self):
        return rss_kib(self.process.pid)

    def peak_rss(self):
        with open("/proc/%d/status" % self.process.pid) as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
        return -1

    def stop(self):
        self.process.kill()
        self.process.wait()
        shutil.rmtree(self.dir, ignore_errors=True)


def bulk(server):
    before = server.rss()
    socks = []
    for _ in range(4):
        s = socket.create_connection(("127.0.0.1", server.port))
        s.sendall(b"*3\r\n$4\r\nECHO\r\n$536870000\r\n" + b"x" * 20000)
        socks.append(s)
    time.sleep(2)
    after = server.rss()
    for s in socks:
        s.close()
    return "RSS %d -> %d KiB with 4 declared 512 MB arguments" % (before, after)


def slow(server):
    c = socket.create_connection(("127.0.0.1", server.port))
    value = "v" * 1000
    for _ in range(20):
        for _ in range(1000):
            call(c, "XADD", "big", "*", "f", value)
        got = b""
        while got.count(b"\r\n") < 2000:
            got += c.recv(1 << 16)
    before = server.rss()
    request = b"*4\r\n$6\r\nXRANGE\r\n$3\r\nbig\r\n$1\r\n-\r\n$1\r\n+\r\n" * 100
    readers = []
    for _ in range(10):
        s = socket.create_connection(("127.0.0.1", server.port))
        s.sendall(request)
        readers.append(s)
    latencies, peak, unanswered = [], before, 0
    deadline = time.monotonic() + 60
    while len(latencies) < 200 and time.monotonic() < deadline:
        start = time.perf_counter()
        try:
            with socket.create_connection(("127.0.0.1", server.port), timeout=10) as p:
                p.sendall(b"PING\r\n")
                p.recv(16)
        except OSError:
            unanswered += 1  # counted as 10 s
        latencies.append((time.perf_counter() - start) * 1000)
        peak = max(peak, server.rss())
        time.sleep(0.01)
    for s in readers:
        s.close()
    latencies.sort()
    n = len(latencies)
    return ("RSS %d -> peak %d MiB; PING on a fresh connection (%d sent in at most 60 s, %d unanswered "
            "within 10 s) p50 %.2f ms, p99 %.1f ms, max %.1f ms") % (
        before // 1024, peak // 1024, n, unanswered, latencies[n // 2], latencies[min(n - 1, n * 99 // 100)],
        latencies[-1])


def idle(server, count=5000):
    time.sleep(0.5)
    before = server.rss()
    socks = [socket.create_connection(("127.0.0.1", server.port)) for _ in range(count)]
    socks[-1].sendall(b"PING\r\n")
    socks[-1].recv(16)
    time.sleep(2)
    after = server.rss()
    for s in socks:
        s.close()
    return "%.0f bytes per idle connection (%d connections)" % ((after - before) * 1024 / count, count)


def big(server, size=500 * 1000 * 1000):
    before = server.rss()
    s = socket.create_connection(("127.0.0.1", server.port))
    s.sendall(b"*5\r\n$4\r\nXADD\r\n$3\r\nbig\r\n$1\r\n*\r\n$1\r\nf\r\n$%d\r\n" % size)
    chunk = b"v" * (1 << 20)
    for _ in range(size // len(chunk)):
        s.sendall(chunk)
    s.sendall(b"v" * (size % len(chunk)) + b"\r\n")
    s.settimeout(60)
    s.recv(64)
    time.sleep(2)
    after = server.rss()
    call(s, "XRANGE", "big", "-", "+")
    got = 0
    while got < size:
        data = s.recv(1 << 20)
        if not data:
            break
        got += len(data)
    time.sleep(1)
    read = server.rss()
    s.close()
    return "a %d MB entry: RSS %d MiB before, peak %d MiB, %d MiB once written, %d MiB after reading it" % (
        size // 1000000, before // 1024, server.peak_rss() // 1024, after // 1024, read // 1024)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runnel", default=os.path.join(ROOT, "build", "broker", "runnel-server"))
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--only", choices=("bulk", "slow", "idle", "big"))
    args = parser.parse_args()
    for name, measure in (("bulk", bulk), ("slow", slow), ("idle", idle), ("big", big)):
        if args.only and name != args.only:
            continue
        for kind in ("runnel", "redis"):
            server = Server(kind, args.runnel, args.threads)
            try:
                print("%-5s %-7s %s" % (name, kind, measure(server)), flush=True)
            finally:
                server.stop()


if __name__ == "__main__":
    main()
