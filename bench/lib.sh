# Helpers shared by the bench scripts (sourced, not run).

free_port() { /usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
# Waits (at most 10 s) until `port` answers PONG.
wait_port() { for _ in $(seq 200); do [ "$(redis-cli -p "$1" ping 2>/dev/null)" = PONG ] && return 0; sleep 0.05; done; return 1; }
median() { sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN{print a/b}'; }
# Requests per second of one redis-benchmark run: rps PORT ARGS... ($requests requests).
rps() {
  local port=$1; shift
  redis-benchmark -p "$port" -n "$requests" -q --csv "$@" 2>/dev/null | tail -1 | cut -d, -f2 | tr -d '"'
}
# Sets reps, requests and threads from [--quick] [--threads N].
parse_bench_args() {
  reps=3
  requests=1000000
  threads=1
  while [ $# -gt 0 ]; do
    case "$1" in
      --quick) reps=1; requests=200000 ;;
      --threads) threads=$2; shift ;;
      *) echo "usage: $0 [--quick] [--threads N]" >&2; exit 2 ;;
    esac
    shift
  done
}
# Starts runnel-server BINARY under fsync POLICY at --threads 1 on a fresh data dir, and
# waits for it; sets port, pid and dir. stop_server ends it and removes the dir.
start_runnel() {
  dir=$(mktemp -d /tmp/runnel-bench.XXXXXX)
  port=$(free_port)
  "$1" --port "$port" --dir "$dir" --fsync "$2" --threads 1 --loglevel warning >/dev/null 2>&1 &
  pid=$!
  wait_port "$port"
}
stop_server() { kill "$pid"; wait "$pid" 2>/dev/null || true; rm -rf "$dir"; }
# Runs runnel-bench WORKLOAD, REPS times interleaved, once per mode, each run on a fresh
# runnel-server (start_runnel). A mode is "name=extra args" ("plain=" for none); the args
# after -- go to every run. Prints each run, then each mode's median ops/s and its ratio to
# the first mode's.
#   run_modes POLICY REPS WORKLOAD "plain=" "claim=--claim 30000" [-- common args]
run_modes() {
  local policy=$1 reps=$2 workload=$3
  shift 3
  local modes=()
  while [ $# -gt 0 ] && [ "$1" != "--" ]; do modes+=("$1"); shift; done
  [ "${1:-}" = "--" ] && shift
  declare -A medians_in=()
  local mode name ops
  for _ in $(seq "$reps"); do
    for mode in "${modes[@]}"; do
      name=${mode%%=*}
      start_runnel build/broker/runnel-server "$policy"
      # shellcheck disable=SC2086 # a mode's args split on spaces
      ops=$(build/bench/runnel-bench "$workload" ${mode#*=} "$@" -p "$port" -d 3 --json -q 2>/dev/null |
        /usr/bin/python3 -c 'import json,sys; print(json.load(sys.stdin)["phases"][-1]["ops_per_sec"])')
      stop_server
      echo "$name $ops"
      medians_in[$name]+="$ops"$'\n'
    done
  done
  local first m
  first=$(printf '%s' "${medians_in[${modes[0]%%=*}]}" | median)
  for mode in "${modes[@]}"; do
    name=${mode%%=*}
    m=$(printf '%s' "${medians_in[$name]}" | median)
    echo "median $name: $m ops/s ($(ratio "$m" "$first") of ${modes[0]%%=*})"
  done
}
