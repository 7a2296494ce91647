#!/usr/bin/python3
"""Runnel against redis-server, side by side, with runnel-bench (./dev bench).

  bench/compare.py [--quick] [--threads N] [--reps N] [--duration S] [--out DIR]
                   [--only TEXT] [--fsync no|everysec|always]

For each durability (Runnel --fsync no / everysec / always against Redis appendonly no /
appendfsync everysec / appendfsync always), both servers start fresh on free loopback ports.
Every workload then runs against both, interleaved (Runnel, Redis, Redis, Runnel, ...), REPS
times; the table has the medians. The servers are emptied (FLUSHALL) between runs, and their
RSS is sampled after each.

Writes DIR/latest.md (the table), DIR/latest.json (every run) and DIR/latest.svg (gnuplot);
with --threads N other than 1, latest-threadsN.md, .json and .svg.
"""
import argparse
import datetime
import json
import os
import platform
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SERVER = os.path.join(ROOT, "build", "broker", "runnel-server")
BENCH = os.path.join(ROOT, "build", "bench", "runnel-bench")

DURABILITIES = [
    ("no", ["--fsync", "no"], ["--appendonly", "no"]),
    ("everysec", ["--fsync", "everysec"], ["--appendonly", "yes", "--appendfsync", "everysec"]),
    ("always", ["--fsync", "always"], ["--appendonly", "yes", "--appendfsync", "always"]),
]


def workloads(prefill):
    """(row, runnel-bench arguments, kind). kind "ops": more ops/s is better; "latency": a
    lower p99 is better (the ratio is Redis's p99 over Runnel's)."""
    return [
        ("produce: XADD -c 50 -P 1", ["produce", "-c", "50", "-P", "1"], "ops"),
        ("produce: XADD -c 50 -P 16", ["produce", "-c", "50", "-P", "16"], "ops"),
        ("produce: XADD -c 50 -P 16, 64 streams", ["produce", "-c", "50", "-P", "16", "--streams", "64"], "ops"),
        ("consume: 4 consumers, COUNT 100 + XACK", ["consume", "--consumers", "4", "--prefill", str(prefill)], "ops"),
        ("fanout: 4 groups read every entry", ["fanout", "--groups", "4", "--prefill", str(prefill)], "ops"),
        ("latency: XADD to XREADGROUP BLOCK at 10k/s (p99)", ["latency", "--rate", "10000"], "latency"),
        ("isolation: online p99 under a flood", ["isolation"], "isolation"),
        ("pubsub: 1 publisher, 1 subscriber (delivered/s)", ["pubsub", "--subscribers", "1"], "ops"),
        ("pubsub: 1 publisher, 100 subscribers (delivered/s)", ["pubsub", "--subscribers", "100"], "ops"),
        ("strings: SET + GET -c 50 -P 1", ["strings", "-c", "50", "-P", "1"], "ops"),
        ("strings: SET + GET -c 50 -P 16", ["strings", "-c", "50", "-P", "16"], "ops"),
    ]


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def command(port, *args, timeout=30):
    """Sends one command over RESP and returns the raw reply (enough for PING and FLUSHALL)."""
    wire = "*%d\r\n" % len(args) + "".join("$%d\r\n%s\r\n" % (len(a), a) for a in args)
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(wire.encode())
        return s.recv(65536).decode(errors="replace")


def wait_ready(port, process, seconds=60):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError("the server on port %d exited (%s)" % (port, process.returncode))
        try:
            if command(port, "PING", timeout=1).startswith("+PONG"):
                return
        except OSError:
            pass
        time.sleep(0.05)
    raise RuntimeError("the server on port %d did not answer PING within %d s" % (port, seconds))


def rss_kib(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


class Server:
    def __init__(self, name, argv, port, log):
        self.name, self.port = name, port
        self.process = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT)
        self.peak_rss = 0
        wait_ready(port, self.process)

    def sample(self):
        self.peak_rss = max(self.peak_rss, rss_kib(self.process.pid))

    def stop(self):
        self.process.terminate()
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def run_bench(port, args, duration):
    argv = [BENCH] + args + ["-p", str(port), "-d", str(duration), "--json", "-q"]
    timeout = duration * 4 + 60
    done = subprocess.run(argv, capture_output=True, text=True, timeout=timeout)
    if done.returncode != 0:
        raise RuntimeError("%s failed: %s" % (" ".join(argv), done.stderr.strip()))
    return json.loads(done.stdout)


def phase(result, name=None):
    for p in result["phases"]:
        if name is None or p["name"] == name:
            return p
    raise KeyError(name)


def figures(result, kind):
    """The row's numbers from one run: {"ops", "p99", ...}."""
    if kind == "isolation":
        quiet, flooded, flood = phase(result, "online quiet"), phase(result, "online flooded"), phase(result, "flood")
        return {"ops": flood["ops_per_sec"], "p99": flooded["latency_us"]["p99"],
                "quiet_p99": quiet["latency_us"]["p99"], "p50": flooded["latency_us"]["p50"]}
    p = phase(result)
    return {"ops": p["ops_per_sec"], "p99": p["latency_us"]["p99"], "p50": p["latency_us"]["p50"]}


def median(runs, field):
    return statistics.median(r[field] for r in runs)


def machine():
    cpu = "unknown CPU"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    mem = 0
    with open("/proc/meminfo") as f:
        mem = int(f.readline().split()[1]) // (1024 * 1024)
    redis = subprocess.run(["redis-server", "--version"], capture_output=True, text=True).stdout.split()
    version = next((w[2:] for w in redis if w.startswith("v=")), "?")
    commit = subprocess.run(["git", "-C", ROOT, "rev-parse", "--short", "HEAD"], capture_output=True,
                            text=True).stdout.strip() or "?"
    return {"cpu": cpu, "cores": os.cpu_count(), "memory_gib": mem, "kernel": platform.release(),
            "redis": version, "commit": commit}


def write_outputs(out_dir, rows, rss, info, settings):
    os.makedirs(out_dir, exist_ok=True)
    base = "latest" if settings["threads"] == 1 else "latest-threads%d" % settings["threads"]
    lines = []
    lines.append("# Runnel against Redis %s, side by side\n" % info["redis"])
    lines.append("Measured %s on %s (%d cores, %d GiB, Linux %s), commit %s, with runnel-bench: Runnel "
                 "`--threads %d`, %d interleaved repetitions of %s s per workload, medians. "
                 "Reproduce with `./dev bench%s`.\n" % (
                     settings["date"], info["cpu"], info["cores"], info["memory_gib"], info["kernel"], info["commit"],
                     settings["threads"], settings["reps"], settings["duration"],
                     (" --threads %d" % settings["threads"]) if settings["threads"] != 1 else ""))
    lines.append("Ratio: Runnel's ops/s over Redis's; for the latency rows, Redis's p99 over Runnel's. "
                 "Above 1, Runnel is ahead. For isolation, ops/s is the flood's, p99 the online stream's "
                 "under the flood (its p99 alone in brackets).\n")
    lines.append("| workload | fsync | Runnel ops/s | Redis ops/s | ratio | Runnel p99 µs | Redis p99 µs |")
    lines.append("| --- | --- | ---: | ---: | ---: | ---: | ---: |")
    for row in rows:
        r, d = row["runnel"], row["redis"]
        if row["kind"] == "ops":
            ratio = r["ops"] / d["ops"] if d["ops"] else 0
        else:
            ratio = d["p99"] / r["p99"] if r["p99"] else 0
        row["ratio"] = ratio
        p99r, p99d = "%.0f" % r["p99"], "%.0f" % d["p99"]
        if row["kind"] == "isolation":
            p99r += " (%.0f)" % r["quiet_p99"]
            p99d += " (%.0f)" % d["quiet_p99"]
        lines.append("| %s | %s | %s | %s | %.2f | %s | %s |" % (
            row["name"], row["fsync"], "{:,.0f}".format(r["ops"]), "{:,.0f}".format(d["ops"]), ratio, p99r, p99d))
    lines.append("")
    lines.append("Peak RSS after a workload (KiB):\n")
    lines.append("| fsync | Runnel | Redis |")
    lines.append("| --- | ---: | ---: |")
    for fsync, (r, d) in rss.items():
        lines.append("| %s | {:,} | {:,} |".format(r, d) % fsync)
    lines.append("")
    with open(os.path.join(out_dir, base + ".md"), "w") as f:
        f.write("\n".join(lines))
    with open(os.path.join(out_dir, base + ".json"), "w") as f:
        json.dump({"machine": info, "settings": settings, "rows": rows, "rss_kib": rss}, f, indent=1)
    chart(out_dir, rows, base, settings["threads"])
    return base


def chart(out_dir, rows, base, threads):
    """latest.svg: the ratio of every workload, one bar per durability."""
    if shutil.which("gnuplot") is None:
        print("compare: gnuplot is not installed; no chart", file=sys.stderr)
        return
    names = []
    for row in rows:
        if row["name"] not in names:
            names.append(row["name"])
    data = os.path.join(out_dir, base + ".dat")
    with open(data, "w") as f:
        for name in names:
            ratios = [next((r["ratio"] for r in rows if r["name"] == name and r["fsync"] == fsync), 0)
                      for fsync, _, _ in DURABILITIES]
            label = name.split(":")[0] + (" 64" if "64 streams" in name else "") + \
                (" -P1" if name.endswith("-P 1") else " -P16" if name.endswith("-P 16") else "")
            f.write('"%s" %s\n' % (label, " ".join("%.3f" % x for x in ratios)))
    script = """
set terminal svg size 1000,480 dynamic font 'sans,12'
set output '%s'
set title 'Runnel (--threads %d) / Redis 7.0 (above 1: Runnel ahead)'
set style data histograms
set style histogram clustered gap 1
set style fill solid 0.85 border -1
set boxwidth 0.9
set yrange [0:*]
set grid ytics
set key top left
set xtics rotate by -20
plot '%s' using 2:xtic(1) title 'fsync no', '' using 3 title 'everysec', '' using 4 title 'always', 1 with lines lw 2 lc rgb 'black' title 'Redis'
""" % (os.path.join(out_dir, base + ".svg"), threads, data)
    subprocess.run(["gnuplot"], input=script, text=True, check=True)
    os.unlink(data)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="one repetition of short runs (under 3 minutes)")
    parser.add_argument("--threads", type=int, default=1, help="Runnel's --threads")
    parser.add_argument("--reps", type=int, help="repetitions (default 3; 1 with --quick)")
    parser.add_argument("--duration", type=float, help="seconds per run (default 4; 1.5 with --quick)")
    parser.add_argument("--out", default=os.path.join(ROOT, "bench", "results"), help="where the results go")
    parser.add_argument("--only", help="run only the workloads whose row contains this text")
    parser.add_argument("--fsync", choices=[d[0] for d in DURABILITIES], action="append",
                        help="run only this durability (may be repeated)")
    args = parser.parse_args()
    reps = args.reps or (1 if args.quick else 3)
    duration = args.duration or (1.5 if args.quick else 4)
    prefill = 300000 if args.quick else 1000000
    settings = {"threads": args.threads, "reps": reps, "duration": duration, "prefill": prefill,
                "date": datetime.datetime.now().strftime("%Y-%m-%d %H:%M")}
    info = machine()
    chosen = [w for w in workloads(prefill) if not args.only or args.only in w[0]]
    rows, rss = [], {}
    work = tempfile.mkdtemp(prefix="runnel-compare-", dir=os.environ.get("BENCH_DIR", "/tmp"))
    started = time.monotonic()
    try:
        for fsync, runnel_flags, redis_flags in DURABILITIES:
            if args.fsync and fsync not in args.fsync:
                continue
            os.makedirs(os.path.join(work, fsync, "redis"))
            log = open(os.path.join(work, fsync + ".log"), "w")
            rport, dport = free_port(), free_port()
            servers = {}
            try:
                servers["runnel"] = Server("runnel", [SERVER, "--port", str(rport), "--dir",
                                                      os.path.join(work, fsync, "runnel"), "--threads",
                                                      str(args.threads), "--loglevel", "warning"] + runnel_flags,
                                           rport, log)
                servers["redis"] = Server("redis", ["redis-server", "--port", str(dport), "--bind", "127.0.0.1",
                                                    "--save", "", "--dir", os.path.join(work, fsync, "redis"),
                                                    "--loglevel", "warning"] + redis_flags, dport, log)
                for name, bench_args, kind in chosen:
                    runs = {"runnel": [], "redis": []}
                    for rep in range(reps):
                        order = ["runnel", "redis"] if rep % 2 == 0 else ["redis", "runnel"]
                        for who in order:
                            server = servers[who]
                            try:
                                result = run_bench(server.port, bench_args, duration)
                            except RuntimeError as e:
                                raise RuntimeError("%s (%s, fsync %s, repetition %d)" % (e, who, fsync, rep + 1))
                            server.sample()
                            command(server.port, "FLUSHALL", timeout=120)
                            runs[who].append(figures(result, kind))
                    row = {"name": name, "fsync": fsync, "kind": kind, "runs": runs,
                           "runnel": {k: median(runs["runnel"], k) for k in runs["runnel"][0]},
                           "redis": {k: median(runs["redis"], k) for k in runs["redis"][0]}}
                    rows.append(row)
                    print("%-52s %-8s runnel %12.0f ops/s p99 %8.0f us | redis %12.0f ops/s p99 %8.0f us" % (
                        name, fsync, row["runnel"]["ops"], row["runnel"]["p99"], row["redis"]["ops"],
                        row["redis"]["p99"]), file=sys.stderr, flush=True)
                rss[fsync] = (servers["runnel"].peak_rss, servers["redis"].peak_rss)
            finally:
                for server in servers.values():
                    server.stop()
                log.close()
    finally:
        shutil.rmtree(work, ignore_errors=True)
    settings["seconds"] = round(time.monotonic() - started)
    base = write_outputs(args.out, rows, rss, info, settings)
    with open(os.path.join(args.out, base + ".md")) as f:
        print(f.read())
    print("compare: %d s; wrote %s/%s.md, .json, .svg" % (settings["seconds"], args.out, base), file=sys.stderr)


if __name__ == "__main__":
    main()
