#!/usr/bin/env bash
# perf.sh: flashsale against a bare Redis, in one run on one machine.
#
# Starts a throwaway redis-server and measures, RUNS times, every row of
# issue 11's table, each ratio from one run, with min/median/max:
#   - redis-benchmark -c 100 at -P 1 and -P 16 on the seed's naive purchase
#     script (GET, DECR, RPUSH, PUBLISH: reconstructed from the seed
#     README's description, keys stock + buyers, reply {1, remaining}), and
#     on purchase.lua alone (SCRIPT LOAD, EVALSHA with the real keys);
#   - 'flashsale serve' + 'flashsale bench' on the same workloads, and the
#     sold-out path against a TLV server that does nothing
#     (scripts/tlvbaseline);
#   - Redis CPU per sale: the Redis process's user+sys CPU (INFO cpu) over
#     a load divided by the units it sold (bench measures its own load,
#     before its closing check); the seed's script runs before and after
#     flashsale's two runs, and its figure is the mean of the two;
#   - the open loop at 10,000 requests/s, and 10,000 connections.
# Everything runs on loopback, is bounded in count and time, and is cleaned
# up on exit.
#
#   scripts/perf.sh                 # RUNS=3 N=200000
#   RUNS=5 N=400000 scripts/perf.sh
#   scripts/perf.sh --help          # this text
#
# With hey on $PATH (go install github.com/rakyll/hey@v0.1.5) it also
# measures the HTTP path: the seed's hey line against 'flashsale serve',
# against the TLV path on the same workload, and against a bare net/http
# handler that does nothing (scripts/httpbaseline, the HTTP ceiling here).
# HN sets hey's -n (default 50000); HTTP=0 skips it.
#
# Needs: go, redis-server, redis-benchmark, redis-cli (Debian: redis-server,
# redis-tools). Numbers from a noisy 2-core machine swing by ±20% between
# runs: compare ratios from the same run, not absolute figures.
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
help_if_asked "$@"

RUNS=${RUNS:-3}
N=${N:-200000}
RP=${REDIS_PORT:-6399}
FP=${FLASHSALE_PORT:-8099}
need go redis-server redis-benchmark redis-cli
ports_free "REDIS_PORT / FLASHSALE_PORT" "$RP" "$FP" $((FP + 1)) $((FP + 2)) $((FP + 3))
use_tmp
# 10,000 client connections need file descriptors on both sides.
raise_fd_limit
build_flashsale
export REDIS_ADDR="127.0.0.1:$RP"

redis-server --port "$RP" --bind 127.0.0.1 --save '' --appendonly no \
  --maxclients 20000 --dir "$tmp" --logfile "$tmp/redis.log" &
pids+=($!)
wait_redis "$RP"

# serve PORT: a fresh 'flashsale serve' on PORT; sets SERVED to its pid.
serve() {
  "$FS" serve --listen "127.0.0.1:$1" --log-level warn --log-format json \
    --max-conns 20000 2>>"$tmp/serve.log" &
  SERVED=$!
  pids+=($SERVED)
  wait_port "$1"
}
serve "$FP"

# load NAME: SCRIPT LOAD of the engine's script NAME as the engine loads
# it (scripts/luasrc: its libraries included); prints its SHA.
go build -o "$tmp/luasrc" ./scripts/luasrc
load() { "$tmp/luasrc" "$1" | redis-cli -p "$RP" -x SCRIPT LOAD; }
SHA=$(load purchase)
# The seed's naive script: KEYS[1] stock, KEYS[2] buyers; ARGV[1] user,
# ARGV[2] product id.
SEED_SHA=$(redis-cli -p "$RP" SCRIPT LOAD "$(cat <<'LUA'
local stock = tonumber(redis.call('GET', KEYS[1]) or '0')
if stock <= 0 then return {0, 0} end
local remaining = redis.call('DECR', KEYS[1])
redis.call('RPUSH', KEYS[2], ARGV[1])
redis.call('PUBLISH', 'flashsale_events', cjson.encode({product_id = ARGV[2],
  buyer = ARGV[1], remaining = remaining, timestamp = redis.call('TIME')[1]}))
return {1, remaining}
LUA
)")

# PURCHASE: one purchase of PRODUCT (replace it) as the engine sends one
# alone with no request id, no rate limit and no admission: purchase.lua's
# lone form (engine.MergeSpec.Lone), its 5 keys, then the product id, the
# event channel, a random customer, quantity 1.
PURCHASE=(EVALSHA "$SHA" 5)
for k in stock buyers meta holders orders; do
  PURCHASE+=("product:{PRODUCT}:$k")
done
PURCHASE+=(PRODUCT flashsale_events 'u:__rand_int__' 1)

# rcpu: the Redis process's user+sys CPU seconds so far.
rcpu() { redis_cpu "$RP"; }
# us_per CPU0 CPU1 UNITS: microseconds of Redis CPU per unit.
us_per() { awk -v a="$1" -v b="$2" -v n="$3" 'BEGIN { printf "%.2f", (b - a) * 1e6 / n }'; }
stock_of() { redis-cli -p "$RP" GET "product:{$1}:stock"; }
# rbcpu SEED|REAL PRODUCT PIPELINE: redis-benchmark on the seed's script or
# on purchase.lua (one purchase per call) with random users; sets RBRPS and
# RBCPU (µs of Redis CPU per sale).
rbcpu() {
  local c0 c1 s0 s1 p="product:{$2}:" cmd
  if [ "$1" = SEED ]; then
    cmd=(EVALSHA "$SEED_SHA" 2 "${p}stock" "${p}buyers" 'u:__rand_int__' "$2")
  else
    cmd=("${PURCHASE[@]/PRODUCT/$2}")
  fi
  s0=$(stock_of "$2"); c0=$(rcpu)
  RBRPS=$(redis-benchmark -p "$RP" -c 100 -n "$N" -P "$3" -r 100000000 -q "${cmd[@]}" |
    tr '\r' '\n' | grep -o '[0-9.]* requests per second' | tail -1 | cut -d' ' -f1)
  c1=$(rcpu); s1=$(stock_of "$2")
  RBCPU=$(us_per "$c0" "$c1" $((s0 - s1)))
}

# fs ARGS...: flashsale bench's JSON report (against $FP unless --addr).
# --allow-errors: a failed request is in the report's "errors", and must
# not abort the whole harness (bench exits 1 on one otherwise). bench
# reports the Redis CPU its load cost (redis_cpu.us_per_unit), read from
# INFO cpu before the load and after it, before its closing check.
fs() { "$FS" bench --addr "127.0.0.1:$FP" --json --allow-errors "$@"; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }
rss_mb() { awk '/VmHWM/ { printf "%.0f", $2 / 1024 }' "/proc/$1/status"; }
# stats VALUES...: min median max
stats() { printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 } END { printf "min %s  median %s  max %s", v[1], v[int((NR + 1) / 2)], v[NR] }'; }
median() { printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }

# The TLV ceiling: a server that answers SOLD_OUT to every frame and does
# nothing else (scripts/tlvbaseline).
go build -o "$tmp/tlvbaseline" ./scripts/tlvbaseline
"$tmp/tlvbaseline" -listen "127.0.0.1:$((FP + 3))" 2>>"$tmp/tlvbaseline.log" &
pids+=($!)
wait_port $((FP + 3))

# The cost of reservations and of the waiting room (issues 19, 20 and 21),
# RUNS times, each ratio from one run:
#   - lone: one call in flight (redis-benchmark -c 1 -P 1, LN calls) on a
#     Redis nothing else talks to (the server is stopped meanwhile: its
#     sweeper's calls would count too), INFO commandstats usec_per_call of
#     EVALSHA after CONFIG RESETSTAT: the seed's script, a purchase of a
#     product without a hold (plain), one with --hold 10m (a reservation),
#     a waiting-room join (a new customer) and a poll (a customer waiting);
#   - merged: Redis CPU per sale of 'flashsale bench -P 16', as the plain
#     figure below, on the same product without and with --hold 10m, in
#     the order sale, reservation, reservation, sale (each figure the mean
#     of its two runs, so that a drift of the machine's speed during the
#     four cancels out of the ratio);
#   - loaded: Redis CPU per call (INFO cpu) of redis-benchmark -c 100 -P 16
#     on purchase.lua alone (one purchase a call), join and poll.
LN=${LN:-20000}
JOIN_SHA=$(load room_join)
POLL_SHA=$(load room_poll)
# roomcmd SHA PRODUCT USERS ARGS...: a room script's call on PRODUCT's
# room keys for a random customer of USERS (redis-benchmark's -r).
roomcmd() {
  local sha=$1 p="product:{$2}:"
  if [ "$sha" = "$JOIN_SHA" ]; then # room_join.lua takes only the keys it uses
    ROOMCMD=(EVALSHA "$sha" 4 "${p}stock" "${p}room" "${p}room:tickets" "${p}room:line" "${@:3}")
    return
  fi
  ROOMCMD=(EVALSHA "$sha" 6 "${p}stock" "${p}meta" "${p}room" "${p}room:tickets" "${p}room:line"
    "${p}room:admitted" "${@:3}")
}
# room PRODUCT RATE: PRODUCT afresh with a room open now, admitting RATE a
# second (room_set, as 'admin room' does).
ROOMSET_SHA=$(load room_set)
room() {
  local p="product:{$1}:"
  "$FS" admin init --force --per-user-limit 0 "$1" 1000000000000 >/dev/null
  redis-cli -p "$RP" EVALSHA "$ROOMSET_SHA" 6 "${p}stock" "${p}meta" "${p}room" "${p}room:tickets" \
    "${p}room:line" "${p}room:admitted" '' "$2" flashsale_control "$1" >/dev/null
}
# lone CMD...: usec_per_call of LN calls of EVALSHA CMD, one in flight;
# every one must succeed. Customers are drawn from 2e9 (a per-user limit of
# 1 then refuses about one in 10 runs of 20,000 calls a repeat customer).
lone() {
  local stats
  redis-cli -p "$RP" CONFIG RESETSTAT >/dev/null
  redis-benchmark -p "$RP" -c 1 -n "$LN" -r 2000000000 -q "$@" >/dev/null
  stats=$(redis-cli -p "$RP" INFO commandstats | tr -d '\r' | grep '^cmdstat_evalsha:')
  case "$stats" in *failed_calls=0*) ;; *) echo "perf.sh: failed calls: $stats" >&2 ;; esac
  echo "$stats" | grep -o 'usec_per_call=[0-9.]*' | cut -d= -f2
}
# loaded USERS CMD...: µs of Redis CPU per call of 4 LN calls of CMD,
# redis-benchmark -c 100 -P 16, customers from USERS.
loaded() {
  local c0 c1 n=$((4 * LN)) r=$1
  shift
  c0=$(rcpu)
  redis-benchmark -p "$RP" -c 100 -P 16 -n "$n" -r "$r" -q "$@" >/dev/null
  c1=$(rcpu)
  us_per "$c0" "$c1" "$n"
}
# per_sold: µs of Redis CPU per unit taken from stock in bench's JSON
# report on stdin (its us_per_unit counts SUCCESS answers only, not
# RESERVED ones; units_sold counts both).
per_sold() {
  local out
  out=$(cat)
  awk -v s="$(echo "$out" | field seconds)" -v n="$(echo "$out" | field units_sold)" \
    'BEGIN { printf "%.2f", s * 1e6 / n }'
}
declare -a L_SEED L_PLAIN L_HOLD L_JOIN L_POLL M_PLAIN M_HOLD B_PLAIN B_JOIN B_POLL
declare -a R_LONE R_MERGED R_BASE R_JOIN R_POLL
echo "flashsale costs: RUNS=$RUNS LN=$LN N=$N"
for run in $(seq "$RUNS"); do
  kill "$SERVED"; wait "$SERVED" 2>/dev/null || true
  "$FS" admin init --force --per-user-limit 0 lone-seed 1000000000000 >/dev/null
  # The default features: a per-user limit of 1 (every customer is new).
  "$FS" admin init --force lone-plain 1000000000000 >/dev/null
  "$FS" admin init --force --hold 10m lone-hold 1000000000000 >/dev/null
  room lone-join 1
  room lone-poll 1
  L_SEED+=("$(lone EVALSHA "$SEED_SHA" 2 'product:{lone-seed}:stock' 'product:{lone-seed}:buyers' 'u:__rand_int__' lone-seed)")
  L_PLAIN+=("$(lone "${PURCHASE[@]/PRODUCT/lone-plain}")")
  L_HOLD+=("$(lone "${PURCHASE[@]/PRODUCT/lone-hold}")")
  for p in plain hold; do
    sold=$((1000000000000 - $(stock_of "lone-$p")))
    [ "$sold" = "$LN" ] || echo "perf.sh: lone-$p sold $sold of $LN" >&2
  done
  roomcmd "$JOIN_SHA" lone-join 'u:__rand_int__' 1 n0
  L_JOIN+=("$(lone "${ROOMCMD[@]}")")
  # The customers who poll joined first (1,000 of them, with nonce n0);
  # at 1 admission a second nearly all of them are waiting.
  roomcmd "$JOIN_SHA" lone-poll 'u:__rand_int__' 1 n0
  redis-benchmark -p "$RP" -c 50 -P 16 -n 20000 -r 1000 -q "${ROOMCMD[@]}" >/dev/null
  roomcmd "$POLL_SHA" lone-poll 'u:__rand_int__' n0 a0 120000
  L_POLL+=("$(lone "${ROOMCMD[@]}")")
  serve "$FP"

  # Merged, and loaded: through the server, then redis-benchmark.
  # Sale, reservation, reservation, sale (ABBA): a machine that slows
  # down or speeds up during the run weighs on both alike.
  m1=$(fs -n "$N" -c 100 -P 16 --init 1000000 | per_sold)
  h1=$(fs -n "$N" -c 100 -P 16 --init 1000000 --hold 10m | per_sold)
  h2=$(fs -n "$N" -c 100 -P 16 --init 1000000 --hold 10m | per_sold)
  m2=$(fs -n "$N" -c 100 -P 16 --init 1000000 | per_sold)
  M_PLAIN+=("$(awk -v a="$m1" -v b="$m2" 'BEGIN { printf "%.2f", (a + b) / 2 }')")
  M_HOLD+=("$(awk -v a="$h1" -v b="$h2" 'BEGIN { printf "%.2f", (a + b) / 2 }')")
  "$FS" admin init --force --per-user-limit 0 load-plain 1000000000000 >/dev/null
  B_PLAIN+=("$(loaded 100000000 "${PURCHASE[@]/PRODUCT/load-plain}")")
  room load-join 1
  roomcmd "$JOIN_SHA" load-join 'u:__rand_int__' 1 n0
  B_JOIN+=("$(loaded 100000000 "${ROOMCMD[@]}")")
  roomcmd "$POLL_SHA" lone-poll 'u:__rand_int__' n0 a0 120000
  B_POLL+=("$(loaded 1000 "${ROOMCMD[@]}")")

  R_BASE+=("$(ratio "${L_PLAIN[-1]}" "${L_SEED[-1]}")")
  R_LONE+=("$(ratio "${L_HOLD[-1]}" "${L_PLAIN[-1]}")")
  R_MERGED+=("$(ratio "${M_HOLD[-1]}" "${M_PLAIN[-1]}")")
  R_JOIN+=("$(ratio "${L_JOIN[-1]}" "${L_PLAIN[-1]}")")
  R_POLL+=("$(ratio "${L_POLL[-1]}" "${L_PLAIN[-1]}")")
  printf '%-4s lone us/call: seed %s, purchase %s, reservation %s, join %s, poll %s\n' "$run" \
    "${L_SEED[-1]}" "${L_PLAIN[-1]}" "${L_HOLD[-1]}" "${L_JOIN[-1]}" "${L_POLL[-1]}"
  printf '%-4s merged us/sale -P 16: sale %s, reservation %s; loaded us/call: purchase %s, join %s, poll %s\n' "$run" \
    "${M_PLAIN[-1]}" "${M_HOLD[-1]}" "${B_PLAIN[-1]}" "${B_JOIN[-1]}" "${B_POLL[-1]}"
done
echo
echo "Costs over $RUNS runs (Redis CPU; ratios of each run's own pair):"
echo "  lone purchase / seed script              $(stats "${R_BASE[@]}")   (issue 21: <= 2)"
echo "  lone reservation / lone purchase         $(stats "${R_LONE[@]}")   (issue 19: <= 1.25)"
echo "  merged reservation / merged sale, -P 16  $(stats "${R_MERGED[@]}")   (issue 19: <= 1.25)"
echo "  lone join / lone purchase                $(stats "${R_JOIN[@]}")   (issue 20: < 1)"
echo "  lone poll / lone purchase                $(stats "${R_POLL[@]}")   (issue 20: < 1)"
echo "  lone us/call: seed                       $(stats "${L_SEED[@]}")"
echo "  lone us/call: purchase                   $(stats "${L_PLAIN[@]}")"
echo "  lone us/call: reservation                $(stats "${L_HOLD[@]}")"
echo "  lone us/call: join                       $(stats "${L_JOIN[@]}")"
echo "  lone us/call: poll                       $(stats "${L_POLL[@]}")"
echo "  merged us/sale -P 16: sale               $(stats "${M_PLAIN[@]}")"
echo "  merged us/sale -P 16: reservation        $(stats "${M_HOLD[@]}")"
echo "  loaded us/call -c 100 -P 16: purchase    $(stats "${B_PLAIN[@]}")   (purchase.lua alone, one purchase a call)"
echo "  loaded us/call -c 100 -P 16: join        $(stats "${B_JOIN[@]}")"
echo "  loaded us/call -c 100 -P 16: poll        $(stats "${B_POLL[@]}")"
if [ "${ONLY:-}" = costs ]; then
  exit 0
fi
echo

declare -a S_SUCC S_PIPE R_NULL P99 P999 CONN_RATIO RSS CPU_SEED CPU_REAL CPU_FS CPU_RID CPU_RATIO CPU_RID_RATIO
echo "flashsale perf: RUNS=$RUNS N=$N, $(nproc) cores, $(redis-server --version | grep -o 'v=[0-9.]*')"
printf '%-4s %-34s %12s %12s %7s\n' run workload flashsale against ratio
for run in $(seq "$RUNS"); do
  "$FS" admin init --force --per-user-limit 0 rb-seed 1000000000000 >/dev/null
  "$FS" admin init --force --per-user-limit 0 rb-real 1000000000000 >/dev/null
  rbcpu SEED rb-seed 1; seed_p1=$RBRPS
  rbcpu SEED rb-seed 16; seed_p16=$RBRPS; CPU_SEED+=("$RBCPU")
  rbcpu REAL rb-real 16; CPU_REAL+=("$RBCPU")

  succ=$(fs -n "$N" -c 100 --init 1000000 --per-user-limit 0 | field throughput)
  out=$(fs -n $((N * 2)) -c 100 -P 16 --init 1000000) # the default features: a per-user limit of 1
  pipe=$(echo "$out" | field throughput); CPU_FS+=("$(echo "$out" | field us_per_unit)")
  out=$(fs -n $((N * 2)) -c 100 -P 16 --init 1000000 --per-user-limit 1 --request-ids)
  CPU_RID+=("$(echo "$out" | field us_per_unit)")
  # The seed's script once more, after flashsale's runs: its figure is the
  # mean of the two, so a drift of the machine's speed during them cancels
  # out of the ratios (seed, flashsale, flashsale with request ids, seed).
  seed1=${CPU_SEED[-1]}
  rbcpu SEED rb-seed 16
  CPU_SEED[-1]=$(awk -v a="$seed1" -v b="$RBCPU" 'BEGIN { printf "%.2f", (a + b) / 2 }')
  sold=$(fs -n "$N" -c 100 --init 100 | field throughput)
  null=$(fs --addr "127.0.0.1:$((FP + 3))" -n "$N" -c 100 | field throughput)
  open=$(fs --rate 10000 --duration 10s -c 100 --init 1000000)
  # 10,000 connections against a fresh server, so its peak RSS is theirs.
  serve $((FP + 1))
  many=$(fs --addr "127.0.0.1:$((FP + 1))" -n "$N" -c 10000 --init 100 | field throughput)
  rss=$(rss_mb "$SERVED")
  kill "$SERVED"

  S_SUCC+=("$(ratio "$succ" "$seed_p1")")
  S_PIPE+=("$(ratio "$pipe" "$seed_p16")")
  R_NULL+=("$(ratio "$sold" "$null")")
  P99+=("$(echo "$open" | field p99 | awk '{ printf "%.2f", $1 / 1000 }')")
  P999+=("$(echo "$open" | field p99_9 | awk '{ printf "%.2f", $1 / 1000 }')")
  CONN_RATIO+=("$(ratio "$many" "$sold")")
  RSS+=("$rss")
  CPU_RATIO+=("$(ratio "${CPU_FS[-1]}" "${CPU_SEED[-1]}")")
  CPU_RID_RATIO+=("$(ratio "${CPU_RID[-1]}" "${CPU_SEED[-1]}")")

  printf '%-4s %-34s %12.0f %12.0f %7s  (the seed script, redis-benchmark)\n' "$run" "success heavy, -P 1" "$succ" "$seed_p1" "${S_SUCC[-1]}"
  printf '%-4s %-34s %12.0f %12.0f %7s  (the seed script, redis-benchmark)\n' "$run" "pipelined, -P 16" "$pipe" "$seed_p16" "${S_PIPE[-1]}"
  printf '%-4s %-34s %12.0f %12.0f %7s  (a TLV server that does nothing)\n' "$run" "sold-out heavy, -P 1" "$sold" "$null" "${R_NULL[-1]}"
  printf '%-4s %-34s seed %s, purchase.lua alone %s, flashsale %s, +request_id limit 1 %s\n' "$run" "Redis CPU us/sale, -P 16" \
    "${CPU_SEED[-1]}" "${CPU_REAL[-1]}" "${CPU_FS[-1]}" "${CPU_RID[-1]}"
  printf '%-4s %-34s p99 %s ms, p99.9 %s ms\n' "$run" "open loop 10000/s for 10s" "${P99[-1]}" "${P999[-1]}"
  printf '%-4s %-34s %12.0f req/s (%s of -c 100), server RSS peak %s MB\n' "$run" "10,000 connections" "$many" "${CONN_RATIO[-1]}" "${RSS[-1]}"
done

# The issue's 9 µs for a sale with request_id and limit 1 was set on a
# machine where the seed's script cost 6 µs; here it is scaled by the
# seed's cost measured in the same runs.
seed_med=$(median "${CPU_SEED[@]}")
rid_target=$(awk -v s="$seed_med" 'BEGIN { printf "%.1f", s * 9 / 6 }')
echo
echo "Summary over $RUNS runs (targets from issue 11):"
echo "  Redis CPU us/sale, flashsale -P 16      $(stats "${CPU_FS[@]}")   (target <= the seed's: $seed_med)"
echo "  Redis CPU per sale, flashsale / seed    $(stats "${CPU_RATIO[@]}")   (target <= 1, each run's own pair)"
echo "  Redis CPU us/sale, request_id, limit 1  $(stats "${CPU_RID[@]}")   (target <= 9 where the seed costs 6: $rid_target here)"
echo "  request_id, limit 1 / seed              $(stats "${CPU_RID_RATIO[@]}")   (issue 21: <= 1.5, each run's own pair)"
echo "  Redis CPU us/sale, seed script -P 16    $(stats "${CPU_SEED[@]}")"
echo "  Redis CPU us/sale, purchase.lua -P 16   $(stats "${CPU_REAL[@]}")   (redis-benchmark, one purchase per call)"
echo "  success heavy -P 1 / seed script -P 1   $(stats "${S_SUCC[@]}")   (target >= 0.8)"
echo "  pipelined -P 16 / seed script -P 16     $(stats "${S_PIPE[@]}")   (target >= 0.8)"
echo "  sold-out heavy / do-nothing TLV server  $(stats "${R_NULL[@]}")   (target >= 0.9)"
echo "  open loop 10k/s p99 (ms)                $(stats "${P99[@]}")   (target <= 1)"
echo "  open loop 10k/s p99.9 (ms)              $(stats "${P999[@]}")   (target <= 5)"
echo "  10k connections / -c 100 throughput     $(stats "${CONN_RATIO[@]}")   (target >= 0.5)"
echo "  server RSS peak at 10k connections (MB) $(stats "${RSS[@]}")   (target <= 150)"
# HTTP: the seed's hey line (one user, per-user limit off, 100 units: mostly
# SOLD_OUT), the same with stock that never runs out, the TLV path on the
# sold-out workload, and a bare net/http handler.
HN=${HN:-50000}
if [ "${HTTP:-1}" != 0 ] && command -v hey >/dev/null; then
  go build -o "$tmp/httpbaseline" ./scripts/httpbaseline
  "$tmp/httpbaseline" -listen "127.0.0.1:$((FP + 2))" 2>>"$tmp/baseline.log" &
  pids+=($!)
  wait_port $((FP + 2))
  # heyrps URL: hey's requests/s for the seed's line with -n $HN; checks
  # that every answer was a 200 or a 409.
  heyrps() {
    local out
    out=$(hey -n "$HN" -c 100 -m POST -d '{"product_id":"test","user_id":"user"}' "$1")
    if echo "$out" | grep -E '^\s+\[[0-9]+\]' | grep -vqE '\[(200|409)\]'; then
      echo "perf.sh: hey against $1 got other statuses:" >&2
      echo "$out" | grep -A5 'Status code' >&2
    fi
    echo "$out" | awk '/Requests\/sec/ { print $2 }'
  }
  declare -a H_TLV H_BASE H_SUCC_BASE
  echo
  printf '%-4s %-34s %12s %12s %7s\n' run "HTTP workload (hey -c 100)" flashsale against ratio
  for run in $(seq "$RUNS"); do
    "$FS" admin init --force --per-user-limit 0 test 100 >/dev/null
    http_sold=$(heyrps "http://127.0.0.1:$FP/")
    "$FS" admin verify test >/dev/null || echo "perf.sh: verify test failed after hey" >&2
    "$FS" admin init --force --per-user-limit 0 test 1000000000000 >/dev/null
    http_succ=$(heyrps "http://127.0.0.1:$FP/")
    tlv_sold=$(fs -n "$HN" -c 100 --init 100 | field throughput)
    base=$(heyrps "http://127.0.0.1:$((FP + 2))/")
    H_TLV+=("$(ratio "$http_sold" "$tlv_sold")")
    H_BASE+=("$(ratio "$http_sold" "$base")")
    H_SUCC_BASE+=("$(ratio "$http_succ" "$base")")
    printf '%-4s %-34s %12.0f %12.0f %7s\n' "$run" "seed hey line / TLV bench" "$http_sold" "$tlv_sold" "${H_TLV[-1]}"
    printf '%-4s %-34s %12.0f %12.0f %7s\n' "$run" "seed hey line / bare net/http" "$http_sold" "$base" "${H_BASE[-1]}"
    printf '%-4s %-34s %12.0f %12.0f %7s\n' "$run" "success heavy / bare net/http" "$http_succ" "$base" "${H_SUCC_BASE[-1]}"
  done
  echo
  echo "HTTP summary over $RUNS runs:"
  echo "  seed hey line / TLV bench, sold-out     $(stats "${H_TLV[@]}")"
  echo "  seed hey line / bare net/http handler   $(stats "${H_BASE[@]}")"
  echo "  success heavy / bare net/http handler   $(stats "${H_SUCC_BASE[@]}")"
elif [ "${HTTP:-1}" != 0 ]; then
  echo
  echo "HTTP: skipped (no hey on \$PATH: go install github.com/rakyll/hey@v0.1.5)"
fi

echo
echo "Codec (go test ./wire -bench, allocs/op target 0):"
go test ./wire -run '^$' -bench 'ReaderNext|AppendResponse|DecodePurchase|CodecRoundTrip' -benchmem |
  grep -E '^Benchmark' | awk '{ printf "  %-40s %10s ns/op %6s allocs/op\n", $1, $3, $(NF-1) }'
