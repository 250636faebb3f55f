#!/bin/sh
# Makes the listed Redis nodes one Redis Cluster, and is safe to run again at any time:
# - every node empty and alone: creates the cluster (redis-cli --cluster create, REDIS_CLUSTER_REPLICAS per primary);
# - a cluster exists and some nodes are empty and alone (a pod that lost its volume): forgets the failed nodes they
#   replace and adds each as a replica of the primary with the fewest;
# - the cluster exists with every node in it: changes nothing;
# - anything else (a creation cut short, slots missing): changes nothing, says what it found and fails.
# It first waits until every node resolves and answers, and at the end until every node reports cluster_state:ok.
#
# Environment: REDIS_CLUSTER_NODES (required) host:port of every node, space-separated; REDIS_CLUSTER_REPLICAS (1);
# REDIS_CLUSTER_TIMEOUT (600) seconds to wait for the nodes, then for the cluster to settle. IPv4 only.
set -eu

: "${REDIS_CLUSTER_NODES:?set REDIS_CLUSTER_NODES to host:port of every node}"
replicas="${REDIS_CLUSTER_REPLICAS:-1}"
timeout_s="${REDIS_CLUSTER_TIMEOUT:-600}"
deadline=$(( $(date +%s) + timeout_s ))

log() { echo "redis-cluster-bootstrap: $*" >&2; }
fail() { log "$*"; exit 1; }
in_time() { [ "$(date +%s)" -lt "$deadline" ]; }

resolve() {
  case "$1" in
    *[!0-9.]*) getent hosts "$1" 2>/dev/null | awk '{ print $1; exit }' || true ;;
    *) echo "$1" ;;
  esac
}

# redis-cli against ip:port; a node that does not answer within 5 s counts as not answering.
cli() { addr="$1"; shift; timeout 5 redis-cli -h "${addr%:*}" -p "${addr##*:}" "$@" 2>/dev/null | tr -d '\r'; }
info_field() { cli "$1" CLUSTER INFO | awk -F: -v k="$2" '$1 == k { print $2 }'; }

# 1. Every node resolves and answers PING. Names are resolved here because CLUSTER MEET takes IPs.
while :; do
  addrs=""
  missing=""
  for node in $REDIS_CLUSTER_NODES; do
    ip=$(resolve "${node%:*}")
    if [ -n "$ip" ] && [ "$(cli "$ip:${node##*:}" PING)" = "PONG" ]; then
      addrs="$addrs $ip:${node##*:}"
    else
      missing="$missing $node"
    fi
  done
  [ -z "$missing" ] && break
  in_time || fail "gave up after ${timeout_s} s: no answer from$missing"
  log "waiting for$missing"
  sleep 2
done

# 2. What each node is: empty and alone, in a cluster that serves every slot, or something else.
fresh=""
member=""
odd=""
for addr in $addrs; do
  known=$(info_field "$addr" cluster_known_nodes)
  assigned=$(info_field "$addr" cluster_slots_assigned)
  if [ "$known" = 1 ] && [ "$assigned" = 0 ]; then
    fresh="$fresh $addr"
  elif [ "$known" -gt 1 ] 2>/dev/null && [ "$assigned" = 16384 ]; then
    member="$member $addr"
  else
    odd="$odd $addr(known_nodes=$known,slots_assigned=$assigned)"
  fi
done
seed=""
for addr in $member; do seed="$addr" && break; done
[ -z "$odd" ] || fail "left as found: nodes neither empty nor in a complete cluster:$odd; inspect with redis-cli --cluster check, repair with redis-cli --cluster fix"

# Nodes of the cluster that are none of the listed ones and have failed: the nodes that empty ones replace. Every
# listed node answered above, so no node forgotten here is merely restarting. CLUSTER FORGET must reach every node
# within 60 s, or gossip brings the forgotten node back.
live_ids=""
for addr in $addrs; do live_ids="$live_ids $(cli "$addr" CLUSTER MYID)"; done
forget_gone() {
  gone=$(cli "$1" CLUSTER NODES | awk -v live="$live_ids" '
    BEGIN { n = split(live, l, " "); for (i = 1; i <= n; i++) ok[l[i]] = 1 }
    !($1 in ok) && $3 ~ /(^|,)fail(,|$)/ { print $1 }')
  for id in $gone; do
    log "forgetting failed node $id"
    for addr in $addrs; do cli "$addr" CLUSTER FORGET "$id" > /dev/null; done
  done
}

if [ -z "$member" ]; then
  log "creating a cluster of$addrs with $replicas replica(s) per primary"
  # shellcheck disable=SC2086
  redis-cli --cluster create $addrs --cluster-replicas "$replicas" --cluster-yes >&2
elif [ -n "$fresh" ]; then
  forget_gone "$seed"
  for addr in $fresh; do
    log "adding empty node $addr as a replica"
    redis-cli --cluster add-node "$addr" "$seed" --cluster-slave >&2
  done
else
  log "the cluster exists with every node in it; nothing to add"
fi

# 3. Every node sees the cluster whole: state ok, exactly the listed nodes, none failing, every node without slots
# a replica (a new replica shows as a primary without slots until its role has spread).
count=$(echo $addrs | wc -w)
while :; do
  pending=""
  for addr in $addrs; do
    state=$(info_field "$addr" cluster_state)
    known=$(info_field "$addr" cluster_known_nodes)
    unsettled=$(cli "$addr" CLUSTER NODES | awk '$3 ~ /fail|handshake|noaddr/ || ($3 ~ /master/ && NF < 9) { n++ } END { print n + 0 }')
    [ "$state" = ok ] && [ "$known" = "$count" ] && [ "$unsettled" = 0 ] ||
      pending="$pending $addr(state=$state,known_nodes=$known,unsettled_nodes=$unsettled)"
  done
  [ -z "$pending" ] && break
  in_time || fail "gave up after ${timeout_s} s: not settled:$pending"
  # A replaced node may be marked failed only now.
  [ -z "$seed" ] || forget_gone "$seed"
  sleep 1
done
log "cluster ok: $count nodes"
