# lib.sh: what scripts/perf.sh and scripts/perf-cluster.sh share. Source it
# from the script's own directory:
#
#   . "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
#
# Sourcing it changes to the repository root and defines the helpers below;
# messages name the script that sourced it.
#
#   help_if_asked "$@"      -h or --help: print the script's header comment, exit 0
#   need TOOL...            exit 1 unless every TOOL is on $PATH
#   ports_free HINT PORT... exit 1 if a loopback PORT is taken (HINT: the
#                           variables that move them)
#   use_tmp                 $tmp, a temporary directory, and $pids, the
#                           background processes to kill: both are cleaned
#                           up on exit
#   raise_fd_limit          as many file descriptors as the shell may have
#   build_flashsale         builds flashsale into $tmp and sets $FS to it
#   wait_redis PORT         waits (5 s at most) for a redis-server to answer
#   wait_port PORT          waits (5 s at most) for a loopback PORT to accept
#   redis_cpu PORT          that redis-server's user+sys CPU seconds so far
#   field NAME              the first number named NAME in the JSON on stdin
# shellcheck shell=bash

cd "$(dirname "${BASH_SOURCE[0]}")/.."
me=${0##*/}

help_if_asked() {
  case "${1:-}" in
  -h | --help)
    awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"
    exit 0
    ;;
  esac
}

need() {
  local tool
  for tool in "$@"; do
    command -v "$tool" >/dev/null || { echo "$me: $tool is missing" >&2; exit 1; }
  done
}

ports_free() {
  local hint=$1 port
  shift
  for port in "$@"; do
    if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
      echo "$me: port $port is taken (set $hint)" >&2
      exit 1
    fi
  done
}

use_tmp() {
  tmp=$(mktemp -d)
  pids=()
  trap cleanup EXIT
}

cleanup() {
  local p
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$tmp"
}

raise_fd_limit() {
  ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
}

build_flashsale() {
  go build -o "$tmp/flashsale" .
  FS="$tmp/flashsale"
}

wait_redis() {
  for _ in $(seq 100); do redis-cli -p "$1" ping >/dev/null 2>&1 && return; sleep 0.05; done
}

wait_port() {
  for _ in $(seq 100); do (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return; sleep 0.05; done
}

redis_cpu() {
  redis-cli -p "$1" INFO cpu | tr -d '\r' | awk -F: '/^used_cpu_(user|sys):/ { s += $2 } END { printf "%.6f", s }'
}

field() { grep -o "\"$1\":[0-9.]*" | head -1 | cut -d: -f2; }
