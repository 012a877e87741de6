#!/usr/bin/env bash
# perf-cluster.sh: one hot product vs the same product over K shards, on a
# local 3-master Redis Cluster, in one run on one machine.
#
# Starts three cluster-enabled redis-servers (no replicas) and joins them
# with redis-cli --cluster create, starts one 'flashsale serve' on the
# cluster, then for each layout (one product; one product over K shards)
# inits N units with no per-customer limit beyond 1 and unique customers
# (success-heavy: every request sells one unit) and runs the same
# 'flashsale bench' load (-n N, -c C), then the sharded layout again with
# K times the connections (each shard then sees the concurrency the single
# product saw). For each it prints the throughput, the ratio
# sharded/single, and per master the Redis CPU (INFO cpu, used_cpu_user +
# used_cpu_sys, over bench's load as bench reports it) and the scripts it ran
# and the sales it made (INFO commandstats: cmdstat_evalsha calls, and
# cmdstat_xadd calls, one per sale; concurrent purchases of one product or
# shard merge into one script call, so the two differ), so that the cost
# of one purchase on its node and the split of the load across nodes can
# be read off even where this machine's two cores cannot show the speed-up.
# Everything runs on loopback, is bounded in count and time, and is cleaned
# up on exit.
#
#   scripts/perf-cluster.sh              # K=3 N=60000 C=100
#   K=6 N=100000 scripts/perf-cluster.sh
#   scripts/perf-cluster.sh --help       # this text
#
# Needs: go, redis-server, redis-cli.
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
help_if_asked "$@"

K=${K:-3}
N=${N:-60000}
C=${C:-100}
BASE=${CLUSTER_PORT:-7301}
FP=${FLASHSALE_PORT:-8199}
ports=("$BASE" $((BASE + 1)) $((BASE + 2)))
need go redis-server redis-cli
ports_free "CLUSTER_PORT / FLASHSALE_PORT" "${ports[@]}" $((BASE + 10000)) $((BASE + 10001)) $((BASE + 10002)) "$FP"
use_tmp
raise_fd_limit
build_flashsale
for p in "${ports[@]}"; do
  mkdir -p "$tmp/$p"
  redis-server --port "$p" --bind 127.0.0.1 --cluster-enabled yes --cluster-config-file "$tmp/$p/nodes.conf" \
    --save '' --appendonly no --dir "$tmp/$p" --logfile "$tmp/$p/redis.log" &
  pids+=($!)
done
for p in "${ports[@]}"; do wait_redis "$p"; done
redis-cli --cluster create "${ports[@]/#/127.0.0.1:}" --cluster-yes >"$tmp/create.log"
for _ in $(seq 200); do
  ok=0
  for p in "${ports[@]}"; do redis-cli -p "$p" cluster info | grep -q 'cluster_state:ok' && ok=$((ok + 1)); done
  [ "$ok" = 3 ] && break
  sleep 0.1
done
export FLASHSALE_REDIS_CLUSTER="127.0.0.1:${ports[0]}"

"$FS" serve --listen "127.0.0.1:$FP" --log-level warn >"$tmp/serve.log" 2>&1 &
pids+=($!)
for _ in $(seq 100); do "$FS" ping --addr "127.0.0.1:$FP" >/dev/null 2>&1 && break; sleep 0.1; done

# calls PORT: scripts the node ran (evalsha calls that did not fail).
calls() {
  redis-cli -p "$1" info commandstats | tr -d '\r' |
    awk -F'[=,:]' '/^cmdstat_evalsha:/ {for (i = 2; i < NF; i += 2) v[$i] = $(i + 1); n = v["calls"] - v["failed_calls"]} END {print n + 0}'
}
# sales PORT: sales the node made (XADD calls: one per sale, merged or not).
sales() { redis-cli -p "$1" info commandstats | tr -d '\r' | awk -F'[=,:]' '/^cmdstat_xadd:/ {print $3; f = 1} END {if (!f) print 0}'; }

# A node uses CPU when idle too (its cron, the cluster bus, the server's
# keep-alive PINGs); its rate over 2 s of nothing is taken off each run's
# figure as "net", so that the cost of a sale is a sale's.
declare -A idle
for p in "${ports[@]}"; do idle[$p]=$(redis_cpu "$p"); done
sleep 2
for p in "${ports[@]}"; do idle[$p]=$(awk -v a="${idle[$p]}" -v b="$(redis_cpu "$p")" 'BEGIN {printf "%.6f", (b - a) / 2}'); done

# run NAME CONNS INIT-ARGS...: init the product, bench it with CONNS
# connections, print its line. The CPU per node is what bench read from
# INFO cpu around its load (before its closing check).
run() {
  local name=$1 conns=$2; shift 2
  "$FS" admin init --force "$@" >/dev/null
  declare -A k0 s0
  for p in "${ports[@]}"; do k0[$p]=$(calls "$p"); s0[$p]=$(sales "$p"); done
  local out
  out=$("$FS" bench --addr "127.0.0.1:$FP" --json --allow-errors --product "$name" -n "$N" -c "$conns" --users 0)
  local tput sold secs
  tput=$(field throughput <<<"$out")
  secs=$(field duration_s <<<"$out")
  sold=$(grep -o '"SUCCESS":[0-9]*' <<<"$out" | cut -d: -f2)
  printf '%-22s %9.0f purchases/s  %6s sold  (-c %s)\n' "$name" "$tput" "${sold:-0}" "$conns"
  local total=0
  for p in "${ports[@]}"; do
    local dc dk ds
    dc=$(grep -o "\"addr\":\"[^\"]*:$p\",\"seconds\":[0-9.]*" <<<"$out" | cut -d: -f4)
    dk=$(( $(calls "$p") - ${k0[$p]} ))
    ds=$(( $(sales "$p") - ${s0[$p]} ))
    awk -v p="$p" -v dc="${dc:-0}" -v dk="$dk" -v ds="$ds" -v sold="${sold:-1}" -v net="$(awk -v c="${dc:-0}" -v i="${idle[$p]}" -v t="$secs" 'BEGIN {print c - i * t}')" 'BEGIN {
      printf "  master :%s  cpu %6.3fs  sales %7d (%5.1f%% of all)  scripts %7d (%4.1f sales each)  cpu/sale %5.1fus, net of idle %5.1fus\n",
        p, dc, ds, 100 * ds / (sold > 0 ? sold : 1), dk, (dk > 0 ? ds / dk : 0), (ds > 0 ? 1e6 * dc / ds : 0), (ds > 0 ? 1e6 * net / ds : 0) }'
    total=$(awk -v a="$total" -v b="${dc:-0}" 'BEGIN {print a + b}')
  done
  # Every node also receives every sale's event (a PUBLISH is broadcast
  # over the cluster bus), so the whole cluster's CPU per sale is the
  # figure that compares layouts.
  awk -v t="$total" -v sold="${sold:-0}" 'BEGIN {
    printf "  all masters  cpu %6.3fs  cpu/sale %5.1fus\n", t, (sold > 0 ? 1e6 * t / sold : 0) }'
  echo "$tput" >"$tmp/$name.tput"
}

echo "flashsale on a 3-master cluster: one product vs one product over K=$K shards, -n $N -c $C, unique customers"
run single "$C" "single" "$N"
run sharded "$C" "sharded" "$N" --shards "$K"
awk -v a="$(cat "$tmp/single.tput")" -v b="$(cat "$tmp/sharded.tput")" \
  'BEGIN {printf "ratio sharded/single: %.2f (same client load, same run)\n", b / a}'
# With the same client load each shard sees 1/K of the concurrent
# purchases, so fewer merge into one script call and a sale costs its node
# more. K times the connections give each shard the concurrency the single
# product had: the cost of a sale on its node at equal merging.
run sharded-kc $((C * K)) "sharded-kc" "$N" --shards "$K"
"$FS" admin verify single sharded sharded-kc
