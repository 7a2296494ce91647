#!/usr/bin/python3
"""Two ./dev bench runs side by side: bench/diff.py BEFORE.json AFTER.json

For each row and durability: Runnel's median before and after, and the ratio to Redis
measured in the same run before and after (Redis runs interleaved with Runnel, so the ratio
carries less of the machine's drift than the raw figure). The noise column is the spread of
Runnel's repetitions in the before run, (max - min) / median: a change smaller than that is
not a change. For latency rows the figure is the p99 in µs (lower is better); for isolation,
the online stream's p99 under the flood.
"""
import json
import statistics
import sys


def figure(row, run):
    return run["p99"] if row["kind"] in ("latency", "isolation") else run["ops"]


def main():
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    before, after = (json.load(open(p)) for p in sys.argv[1:])
    rows_after = {(r["name"], r["fsync"]): r for r in after["rows"]}
    print("| workload | fsync | before | after | after/before | noise | ratio before | ratio after |")
    print("| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    for row in before["rows"]:
        other = rows_after.get((row["name"], row["fsync"]))
        if other is None or not row["runs"]["runnel"]:
            continue
        runs = [figure(row, r) for r in row["runs"]["runnel"]]
        b, a = figure(row, row["runnel"]), figure(other, other["runnel"])
        noise = (max(runs) - min(runs)) / statistics.median(runs) if runs else 0
        unit = " µs" if row["kind"] != "ops" else ""
        print("| %s | %s | %s%s | %s%s | %.2f | %.0f%% | %.2f | %.2f |" % (
            row["name"], row["fsync"], f"{b:,.0f}", unit, f"{a:,.0f}", unit, a / b if b else 0,
            100 * noise, row["ratio"], other["ratio"]))


if __name__ == "__main__":
    main()
