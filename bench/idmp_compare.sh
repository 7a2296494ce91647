#!/usr/bin/env bash
# XADD with and without IDMP (Redis 8.6, runnel-bench produce --idmp), interleaved REPS times,
# each run on a fresh runnel-server: what idempotent producers cost a producer.
#   bench/idmp_compare.sh POLICY REPS [-- more runnel-bench produce args]
set -euo pipefail
cd "$(dirname "$0")/.."
source bench/lib.sh
run_modes "$1" "$2" produce "plain=" "idmp=--idmp" "${@:3}"
