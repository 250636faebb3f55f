#!/bin/sh
# Starts one Redis Cluster node under its stable DNS name, after pointing nodes.conf at its peers' current addresses.
#
# A node reaches its peers at the IPs its nodes.conf remembers, and a rescheduled pod comes back with a new IP. One
# moved pod is found again through gossip, but after every pod has moved (a whole-cluster restart) no node can reach
# any other. So each node announces its DNS name (cluster-announce-hostname, which nodes.conf records for every peer)
# and, before starting, replaces each peer's remembered IP with what that name resolves to now.
#
# Environment: REDIS_CLUSTER_HOSTNAME (required) this node's stable DNS name; REDIS_CLUSTER_ANNOUNCE_IP the IP peers
# and clients should use (the pod IP; unset: Redis learns it from its peers); REDIS_PORT (6379);
# REDIS_CLUSTER_BUS_PORT (16379); REDIS_DATA_DIR (/data). Arguments are passed on to redis-server.
set -eu

: "${REDIS_CLUSTER_HOSTNAME:?set REDIS_CLUSTER_HOSTNAME to this node's stable DNS name}"
port="${REDIS_PORT:-6379}"
bus_port="${REDIS_CLUSTER_BUS_PORT:-16379}"
dir="${REDIS_DATA_DIR:-/data}"
conf="$dir/nodes.conf"

log() { echo "redis-cluster-node: $*" >&2; }

# The IPv4 address a name resolves to now, or nothing.
resolve() {
  case "$1" in
    *[!0-9.]*) getent hosts "$1" 2>/dev/null | awk '{ print $1; exit }' || true ;;
    *) echo "$1" ;;
  esac
}

if [ -s "$conf" ]; then
  # nodes.conf lines: <id> <ip>:<port>@<bus-port>[,<hostname>[,<key>=<value>...]] <flags> ...; the last is "vars ...".
  map="$dir/nodes.conf.addresses"
  : > "$map"
  for host in $(awk '$1 != "vars" { n = split($2, a, ","); if (n > 1 && a[2] != "" && index(a[2], "=") == 0) print a[2] }' "$conf" | sort -u); do
    ip=$(resolve "$host")
    if [ -n "$ip" ]; then echo "$host $ip" >> "$map"; else log "$host does not resolve yet; keeping its old address"; fi
  done
  awk '
    NR == FNR { ip[$1] = $2; next }
    $1 != "vars" {
      n = split($2, a, ",")
      if (n > 1 && (a[2] in ip)) {
        at = index(a[1], "@")
        hostport = substr(a[1], 1, at - 1)
        colon = 0
        for (i = length(hostport); i > 0; i--) if (substr(hostport, i, 1) == ":") { colon = i; break }
        old = substr(hostport, 1, colon - 1)
        if (old != ip[a[2]]) {
          printf "redis-cluster-node: %s moved from %s to %s\n", a[2], old, ip[a[2]] > "/dev/stderr"
          $2 = ip[a[2]] substr($2, colon)
        }
      }
    }
    { print }
  ' "$map" "$conf" > "$conf.new"
  mv "$conf.new" "$conf"
  rm -f "$map"
fi

if [ -n "${REDIS_CLUSTER_ANNOUNCE_IP:-}" ]; then set -- --cluster-announce-ip "$REDIS_CLUSTER_ANNOUNCE_IP" "$@"; fi
exec redis-server \
  --port "$port" \
  --dir "$dir" \
  --cluster-enabled yes \
  --cluster-config-file "$conf" \
  --cluster-port "$bus_port" \
  --cluster-announce-hostname "$REDIS_CLUSTER_HOSTNAME" \
  "$@"
