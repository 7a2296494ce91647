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
