#!/bin/sh
# One member of a Redis Sentinel set, every member known by a stable DNS name (sentinels resolve and announce names,
# replicas announce theirs), so a rescheduled pod with a new IP is the same member.
#
#   redis-sentinel.sh redis [redis-server arguments]     a data node
#   redis-sentinel.sh sentinel [redis-server arguments]  a sentinel
#
# A data node asks the sentinels which node is the primary (the answer with the highest config epoch wins) and starts
# as its replica, or as the primary when that is itself. Only when no sentinel answers within SENTINEL_WAIT_SECONDS
# does the first of REDIS_NODES start as the primary and the others as its replicas: after a failover, a restarted
# set must not hand the primary back to a node that lacks the newest writes.
# A sentinel starts from the config it saved (its view of the set, kept on its volume). The first time, it monitors
# the primary the other sentinels name, or the first of REDIS_NODES when none answers.
#
# Environment: REDIS_HOST (required) this member's stable DNS name; REDIS_NODES (required) host:port of every data
# node, the first primary first; REDIS_SENTINELS (required) host:port of every sentinel; REDIS_PORT (6379) or
# SENTINEL_PORT (26379) to listen on; REDIS_DATA_DIR (/data); SENTINEL_MASTER_NAME (switchboard); SENTINEL_QUORUM (2);
# SENTINEL_DOWN_AFTER_MS (5000); SENTINEL_FAILOVER_TIMEOUT_MS (60000); SENTINEL_WAIT_SECONDS (30).
set -eu

role="${1:?usage: redis-sentinel.sh redis|sentinel [redis-server arguments]}"
shift
: "${REDIS_HOST:?set REDIS_HOST to this member's stable DNS name}"
: "${REDIS_NODES:?set REDIS_NODES to host:port of every data node, the first primary first}"
: "${REDIS_SENTINELS:?set REDIS_SENTINELS to host:port of every sentinel}"
master="${SENTINEL_MASTER_NAME:-switchboard}"
dir="${REDIS_DATA_DIR:-/data}"

log() { echo "redis-sentinel ($role): $*" >&2; }

first_node() { for node in $REDIS_NODES; do echo "$node" && return; done; }

# host:port of the primary as the sentinels that answer see it, the highest config epoch winning; nothing if none does.
primary_from_sentinels() {
  best=""
  best_epoch=-1
  for sentinel in $REDIS_SENTINELS; do
    # SENTINEL MASTER replies with field and value on alternate lines. A sentinel that does not answer within 3 s
    # (or does not know the master yet) gives no line.
    line=$(timeout 3 redis-cli -h "${sentinel%:*}" -p "${sentinel##*:}" SENTINEL MASTER "$master" 2>/dev/null | tr -d '\r' |
      awk 'NR % 2 == 1 { key = $0; next } key == "ip" { ip = $0 } key == "port" { port = $0 } key == "config-epoch" { epoch = $0 }
        END { if (ip != "" && port != "") print ip, port, (epoch == "" ? 0 : epoch) }') || true
    [ -n "$line" ] || continue
    read -r host port epoch <<REPLY
$line
REPLY
    if [ "$epoch" -gt "$best_epoch" ]; then
      best="$host:$port"
      best_epoch="$epoch"
    fi
  done
  echo "$best"
}

case "$role" in
  redis)
    port="${REDIS_PORT:-6379}"
    wait_until=$(( $(date +%s) + ${SENTINEL_WAIT_SECONDS:-30} ))
    primary=$(primary_from_sentinels)
    while [ -z "$primary" ] && [ "$(date +%s)" -lt "$wait_until" ]; do
      sleep 1
      primary=$(primary_from_sentinels)
    done
    if [ -z "$primary" ]; then
      primary=$(first_node)
      log "no sentinel answered; $primary is the primary"
    fi
    if [ "$primary" = "$REDIS_HOST:$port" ]; then
      log "starting as the primary"
    else
      log "starting as a replica of $primary"
      set -- --replicaof "${primary%:*}" "${primary##*:}" "$@"
    fi
    exec redis-server --port "$port" --dir "$dir" --replica-announce-ip "$REDIS_HOST" --replica-announce-port "$port" "$@"
    ;;
  sentinel)
    port="${SENTINEL_PORT:-26379}"
    conf="$dir/sentinel.conf"
    if [ ! -s "$conf" ]; then
      primary=$(primary_from_sentinels)
      [ -n "$primary" ] || primary=$(first_node)
      log "first start: monitoring $primary as $master"
      cat > "$conf.new" <<CONF
port $port
dir $dir
sentinel resolve-hostnames yes
sentinel announce-hostnames yes
sentinel announce-ip $REDIS_HOST
sentinel announce-port $port
sentinel monitor $master ${primary%:*} ${primary##*:} ${SENTINEL_QUORUM:-2}
sentinel down-after-milliseconds $master ${SENTINEL_DOWN_AFTER_MS:-5000}
sentinel failover-timeout $master ${SENTINEL_FAILOVER_TIMEOUT_MS:-60000}
sentinel parallel-syncs $master 1
CONF
      mv "$conf.new" "$conf"
    fi
    exec redis-server "$conf" --sentinel "$@"
    ;;
  *)
    log "unknown role; expected redis or sentinel"
    exit 2
    ;;
esac
