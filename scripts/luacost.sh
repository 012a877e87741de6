#!/usr/bin/env bash
# luacost.sh: what the purchase script costs Redis, in instructions.
#
# Runs redis-server under valgrind's callgrind and counts the instructions
# Redis executes inside EVALSHA (evalGenericCommand: the script, its nested
# commands and its reply) per call, or per sale for merged calls. Unlike
# CPU time on a shared machine the count does not move between runs, so
# an A/B of a Lua change shows differences of 1%. Each row warms up first
# (hashes past their small encodings), then counts LN calls from zero.
# Rows:
#   - lone: one call at a time of the seed's naive script, and of
#     purchase.lua's lone form (engine.MergeSpec.Lone) on a product with a
#     per-user limit of 1 (the default), without and with a hold;
#   - merged: calls of M purchases in the compact form
#     (engine.MergeSpec.Compact), per sale: a plain sale, a reservation,
#     and a sale with a request id;
#   - join: a new customer's join of a waiting room that is open and
#     admits 1 a second (room_join.lua), per call;
#   - all Redis, not only EVALSHA (reading and parsing commands, writing
#     replies), per sale: the seed's script pipelined 16 deep, as
#     redis-benchmark -P 16 sends it, against merged calls, which pay that
#     once per call.
# The ratios are the issues' cost targets, in instructions instead of CPU
# time (which also weighs cache misses and the machine's neighbours).
#
#   scripts/luacost.sh                  # LN=2000 M=32
#   SCRIPT=/tmp/old.lua scripts/luacost.sh   # the same rows for another purchase.lua
#   scripts/luacost.sh --help           # this text
#
# SCRIPT is a composed purchase script (go run ./scripts/luasrc purchase);
# default: this tree's. Needs: go, redis-server, redis-cli, redis-benchmark,
# valgrind (Debian: valgrind). Takes about a minute.
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
help_if_asked "$@"

LN=${LN:-2000}
M=${M:-32}
RP=${REDIS_PORT:-6397}
need go redis-server redis-cli redis-benchmark valgrind callgrind_control
ports_free "REDIS_PORT" "$RP"
use_tmp
if [ -z "${SCRIPT:-}" ]; then
  SCRIPT=$tmp/purchase.lua
  go run ./scripts/luasrc purchase >"$SCRIPT"
fi
go run ./scripts/luasrc room_set >"$tmp/room_set.lua"
go run ./scripts/luasrc room_join >"$tmp/room_join.lua"
SEED="local stock = tonumber(redis.call('GET', KEYS[1]) or '0')
if stock <= 0 then return {0, 0} end
local remaining = redis.call('DECR', KEYS[1])
redis.call('RPUSH', KEYS[2], ARGV[1])
redis.call('PUBLISH', 'flashsale_events', cjson.encode({product_id = ARGV[2],
  buyer = ARGV[1], remaining = remaining, timestamp = redis.call('TIME')[1]}))
return {1, remaining}"

# product KIND: the keys of product p as purchase.lua's callers name them
# (engine.KeysFor), its meta as 'admin init' writes what the script reads.
P="product:{p}:"
product() {
  redis-cli -p "$RP" SET "${P}stock" 1000000000000 >/dev/null
  redis-cli -p "$RP" HSET "${P}meta" initial 1000000000000 limit 1 epoch e1 records hash >/dev/null
  if [ "$1" = hold ]; then redis-cli -p "$RP" HSET "${P}meta" hold 600000 >/dev/null; fi
  if [ "$1" = room ]; then # open now, 1 admission a second, as 'admin room' sets it
    redis-cli -p "$RP" EVALSHA "$(redis-cli -p "$RP" -x SCRIPT LOAD <"$tmp/room_set.lua")" 6 "${P}stock" "${P}meta" \
      "${P}room" "${P}room:tickets" "${P}room:line" "${P}room:admitted" '' 1 flashsale_control p >/dev/null
  fi
  return 0
}
# command KIND SHA SEED_SHA: sets CMD, one call of KIND, random customers.
command() {
  local k
  case "$1" in
  seed | seed-all) CMD=(EVALSHA "$3" 2 "${P}stock" "${P}buyers" 'u:__rand_int__' p) ;;
  join)
    CMD=(EVALSHA "$(redis-cli -p "$RP" -x SCRIPT LOAD <"$tmp/room_join.lua")" 4 "${P}stock" "${P}room" "${P}room:tickets" \
      "${P}room:line" 'u:__rand_int__' 1 n0)
    ;;
  lone | lone-hold)
    CMD=(EVALSHA "$2" 5)
    for k in stock buyers meta holders orders; do CMD+=("$P$k"); done
    CMD+=(p flashsale_events 'u:__rand_int__' 1)
    ;;
  *) # merged, merged-hold, merged-rid: the compact form
    CMD=(EVALSHA "$2" 11)
    for k in stock buyers meta holders orders released requests:0 requests:1 holds reservations room:admitted; do
      CMD+=("$P$k")
    done
    CMD+=(p 86400000 flashsale_events 0 0 flashsale_control)
    for i in $(seq "$M"); do
      if [ "$1" = merged-rid ]; then CMD+=("u$i:__rand_int__" 1 "r$i:__rand_int__" ''); else CMD+=("u$i:__rand_int__" 1 '' ''); fi
    done
    CMD+=("${P}req:" 1)
    ;;
  esac
}
# count KIND: instructions per call (per sale when merged) of KIND, inside
# EVALSHA, or in all of Redis for KIND *-all.
count() {
  local out=$tmp/callgrind.out vp sha seed stats per=1 pipe=1
  local scope=(--collect-atstart=no --toggle-collect=evalGenericCommand)
  # All of Redis: instrumented from the warm-up's end. The seed's calls
  # pipelined 16 deep, as redis-benchmark -P 16; merged calls 2 deep, as
  # the engine's batcher sends them on a connection.
  case "$1" in seed-all) scope=(--instr-atstart=no) pipe=16 ;; merged-all) scope=(--instr-atstart=no) pipe=2 ;; esac
  rm -f "$out"*
  valgrind --tool=callgrind --callgrind-out-file="$out" \
    "${scope[@]}" redis-server --port "$RP" --bind 127.0.0.1 \
    --save '' --appendonly no >"$tmp/valgrind.log" 2>&1 &
  vp=$!
  for _ in $(seq 200); do redis-cli -p "$RP" PING >/dev/null 2>&1 && break; sleep 0.1; done
  sha=$(redis-cli -p "$RP" -x SCRIPT LOAD <"$SCRIPT")
  seed=$(redis-cli -p "$RP" SCRIPT LOAD "$SEED")
  case "$1" in *hold) product hold ;; join) product room ;; *) product plain ;; esac
  command "$1" "$sha" "$seed"
  case "$1" in merged*) per=$M ;; esac
  redis-benchmark -p "$RP" -c 1 -n $((LN / per + 200)) -r 2000000000 -q "${CMD[@]}" >/dev/null
  if [ "$pipe" -gt 1 ]; then callgrind_control -i on "$vp" >/dev/null 2>&1; fi
  callgrind_control -z "$vp" >/dev/null 2>&1
  redis-benchmark -p "$RP" -c 1 -P "$pipe" -n $((LN / per)) -r 2000000000 -q "${CMD[@]}" >/dev/null
  if [ "$pipe" -gt 1 ]; then callgrind_control -i off "$vp" >/dev/null 2>&1; fi
  stats=$(redis-cli -p "$RP" INFO commandstats | tr -d '\r' | grep '^cmdstat_evalsha:')
  redis-cli -p "$RP" SHUTDOWN NOSAVE >/dev/null 2>&1 || true
  wait "$vp" || true
  case "$stats" in
  *failed_calls=0*) ;;
  *) echo "luacost.sh: $1: the calls failed ($stats)" >&2; echo 0; return ;;
  esac
  awk -v n=$((LN / per * per)) '/^totals:/ { printf "%.0f", $2 / n }' "$out"
}
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }

echo "luacost.sh: LN=$LN M=$M, $(redis-server --version | grep -o 'v=[0-9.]*'), $SCRIPT"
declare -A IR
for kind in seed lone lone-hold merged merged-hold merged-rid join seed-all merged-all; do
  IR[$kind]=$(count "$kind")
  printf '  %-12s %8s instructions per %s\n' "$kind" "${IR[$kind]}" "$(case $kind in merged*) echo sale ;; *) echo call ;; esac)"
done
echo "  lone purchase / seed script        $(ratio "${IR[lone]}" "${IR[seed]}")   (issue 21: <= 2)"
echo "  lone reservation / lone purchase   $(ratio "${IR[lone-hold]}" "${IR[lone]}")   (issue 19: <= 1.25)"
echo "  merged reservation / merged sale   $(ratio "${IR[merged-hold]}" "${IR[merged]}")   (issue 19: <= 1.25)"
echo "  merged sale / seed script, all Redis $(ratio "${IR[merged-all]}" "${IR[seed-all]}")   (issue 21: <= 1; the seed pipelined 16 deep)"
echo "  merged request id / seed script    $(ratio "${IR[merged-rid]}" "${IR[seed]}")   (issue 21: <= 1.5)"
echo "  join / lone purchase               $(ratio "${IR[join]}" "${IR[lone]}")   (issue 20: < 1)"
