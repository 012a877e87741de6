#!/usr/bin/env bash
# tails.sh: open-loop latency tails of 'flashsale serve' on loopback.
#
# Measures p50, p99 and p99.9 of purchases sent at a fixed rate (open
# loop: a slow answer does not slow the sending) at 1,000, 2,000 and
# 5,000 a second, RUNS times each, with 'flashsale bench --rate' over TLV
# and with vegeta (an independent client) over HTTP, in two placements:
#   - shared: Redis, the server and the load generator float over all
#     cores, as the scheduler likes;
#   - pinned: Redis alone on the last core, the server and the load
#     generator on the others (taskset), so the tail that scheduling on
#     shared cores adds shows as the difference;
#   - floor: as pinned, against a TLV server that does nothing but answer
#     SOLD_OUT (scripts/tlvbaseline): the tail of the machine and the load
#     generator themselves, which no server can go below.
# Every sale is of a product with stock that does not run out, a random
# customer each, no per-customer limit. Bounded: D seconds a point.
#
#   scripts/tails.sh                # RUNS=3 D=10s
#   RUNS=1 D=5s RATES="2000" scripts/tails.sh
#   scripts/tails.sh --help         # this text
#
# Needs: go, redis-server, redis-cli, taskset; vegeta on $PATH for the
# HTTP rows (go install github.com/tsenart/vegeta/v12@v12.13.0).
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
help_if_asked "$@"

RUNS=${RUNS:-3}
D=${D:-10s}
RATES=${RATES:-1000 2000 5000}
RP=${REDIS_PORT:-6398}
FP=${FLASHSALE_PORT:-8098}
need go redis-server redis-cli taskset
ports_free "REDIS_PORT / FLASHSALE_PORT (and the next port)" "$RP" "$FP" $((FP + 1))
use_tmp
raise_fd_limit
build_flashsale
go build -o "$tmp/tlvbaseline" ./scripts/tlvbaseline
export REDIS_ADDR="127.0.0.1:$RP"
last=$(($(nproc) - 1))
rest="0-$((last > 0 ? last - 1 : 0))"

# start PLACEMENT: Redis and serve, pinned or not; sets RPID, SPID.
start() {
  local redis=() server=()
  if [ "$1" = pinned ] && [ "$last" -gt 0 ]; then
    redis=(taskset -c "$last")
    server=(taskset -c "$rest")
  fi
  "${redis[@]}" redis-server --port "$RP" --bind 127.0.0.1 --save '' --appendonly no \
    --dir "$tmp" --logfile "$tmp/redis.log" &
  RPID=$!
  pids+=($RPID)
  wait_redis "$RP"
  "${server[@]}" "$FS" serve --listen "127.0.0.1:$FP" --log-level warn 2>>"$tmp/serve.log" &
  SPID=$!
  pids+=($SPID)
  wait_port "$FP"
  LOAD=("${server[@]}")
}
stop() { kill "$SPID" "$RPID"; wait "$SPID" "$RPID" 2>/dev/null || true; }

# ms MICROSECONDS
ms() { awk -v u="$1" 'BEGIN { printf "%.2f", u / 1000 }'; }
# tlv RATE [PORT]: "p50 p99 p99.9" in ms from bench (against serve, or
# the server on PORT).
tlv() {
  local out
  out=$("${LOAD[@]}" "$FS" bench --addr "127.0.0.1:${2:-$FP}" --json --allow-errors --rate "$1" --duration "$D" \
    -c 100 --init 1000000000 --per-user-limit 0 2>/dev/null)
  echo "$(ms "$(echo "$out" | field p50)") $(ms "$(echo "$out" | field p99)") $(ms "$(echo "$out" | field p99_9)")"
}
# http RATE: "p50 p99 p99.9" in ms from vegeta (a fresh customer per request).
http() {
  "$FS" admin init --force --per-user-limit 0 tails 1000000000 >/dev/null
  "${LOAD[@]}" vegeta attack -format json -targets "$tmp/targets" -rate "$1" -duration "$D" >"$tmp/v.bin"
  vegeta report -type json <"$tmp/v.bin" >"$tmp/v.json"
  local codes
  codes=$(grep -o '"status_codes":{[^}]*}' "$tmp/v.json")
  case "$codes" in *'"200"'*) ;; *) echo "tails.sh: vegeta saw $codes" >&2 ;; esac
  awk -v j="$(cat "$tmp/v.json")" 'BEGIN {
    match(j, /"50th":[0-9]+/); p50 = substr(j, RSTART + 7, RLENGTH - 7)
    match(j, /"99th":[0-9]+/); p99 = substr(j, RSTART + 7, RLENGTH - 7)
    printf "%.2f %.2f", p50 / 1e6, p99 / 1e6 }'
  # vegeta's report has no p99.9: read it from the results.
  vegeta encode -to csv <"$tmp/v.bin" | awk -F, '{ print $3 }' | sort -n |
    awk '{ v[NR] = $1 } END { printf " %.2f\n", v[int(NR * 0.999)] / 1e6 }'
}

# vegeta's targets, made once: JSON targets want the body base64, one per
# customer (2,000 of them, no per-customer limit).
for i in $(seq 2000); do
  printf '{"method":"POST","url":"http://127.0.0.1:%s/v1/purchase","body":"%s"}\n' "$FP" \
    "$(printf '{"product_id":"tails","user_id":"v%s"}' "$i" | base64 -w0)"
done >"$tmp/targets"

echo "tails.sh: RUNS=$RUNS D=$D, $(nproc) cores, $(redis-server --version | grep -o 'v=[0-9.]*'); ms p50 p99 p99.9"
printf '%-8s %-6s %-6s %s\n' placement client rate "runs (p50 p99 p99.9 each)"
for placement in shared pinned; do
  start "$placement"
  for rate in $RATES; do
    row=""
    for _ in $(seq "$RUNS"); do row="$row  $(tlv "$rate")"; done
    printf '%-8s %-6s %-6s %s\n' "$placement" tlv "$rate" "$row"
    if command -v vegeta >/dev/null; then
      row=""
      for _ in $(seq "$RUNS"); do row="$row  $(http "$rate")"; done
      printf '%-8s %-6s %-6s %s\n' "$placement" http "$rate" "$row"
    fi
  done
  if [ "$placement" = pinned ]; then
    "${LOAD[@]}" "$tmp/tlvbaseline" -listen "127.0.0.1:$((FP + 1))" 2>>"$tmp/tlvbaseline.log" &
    BPID=$!
    pids+=($BPID)
    wait_port $((FP + 1))
    for rate in $RATES; do
      row=""
      for _ in $(seq "$RUNS"); do row="$row  $(tlv "$rate" $((FP + 1)))"; done
      printf '%-8s %-6s %-6s %s\n' floor tlv "$rate" "$row"
    done
    kill "$BPID"
    wait "$BPID" 2>/dev/null || true
  fi
  stop
done
