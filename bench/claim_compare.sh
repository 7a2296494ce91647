#!/usr/bin/env bash
# A work queue's read loop three ways (runnel-bench consume), interleaved REPS times, each run
# on a fresh runnel-server: plain XREADGROUP, XREADGROUP ... CLAIM MS (Redis 8.4), and an
# XAUTOCLAIM ... MS sent with each XREADGROUP (the way without CLAIM). Nothing is idle that
# long here, so this is what the visibility timeout costs a healthy queue.
#   bench/claim_compare.sh POLICY REPS [MS] [-- more runnel-bench consume args]
set -euo pipefail
cd "$(dirname "$0")/.."
source bench/lib.sh
policy=$1 reps=$2 ms=30000
shift 2
if [ $# -gt 0 ] && [ "$1" != "--" ]; then ms=$1; shift; fi
run_modes "$policy" "$reps" consume "plain=" "claim=--claim $ms" "autoclaim=--autoclaim $ms" "$@"
