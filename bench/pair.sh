#!/usr/bin/env bash
# Two runnel-server binaries, old and new, alternating in one run: for a change on a hot
# path, where the VM's noise between runs is larger than the change.
#   bench/pair.sh OLD_BINARY POLICY REPS -- runnel-bench workload args (without -p, -d)
# e.g. bench/pair.sh /tmp/old/build/broker/runnel-server always 4 -- produce -c 50 -P 16
# Each run is a fresh server (--threads 1, a new data dir) and 3 s of load; prints each run's
# ops/s and p99, then the medians and new/old.
set -euo pipefail
cd "$(dirname "$0")/.."
source bench/lib.sh
old=$1 policy=$2 reps=$3
shift 4
declare -A results=([old]="" [new]="")
for _ in $(seq "$reps"); do
  for which in old new; do
    bin=build/broker/runnel-server
    [ "$which" = old ] && bin=$old
    dir=$(mktemp -d /tmp/runnel-pair.XXXXXX)
    port=$(free_port)
    "$bin" --port "$port" --dir "$dir" --fsync "$policy" --threads 1 --loglevel warning >/dev/null 2>&1 &
    pid=$!
    wait_port "$port"
    line=$(build/bench/runnel-bench "$@" -p "$port" -d 3 --json -q 2>/dev/null |
      /usr/bin/python3 -c 'import json,sys; p=json.load(sys.stdin)["phases"][-1]; print(p["ops_per_sec"], p["latency_us"]["p99"])')
    echo "$which $line"
    results[$which]+="${line%% *}"$'\n'
    kill "$pid"; wait "$pid" 2>/dev/null || true
    rm -rf "$dir"
  done
done
o=$(printf '%s' "${results[old]}" | median)
n=$(printf '%s' "${results[new]}" | median)
echo "median ops/s: old $o, new $n, new/old $(ratio "$n" "$o")"
