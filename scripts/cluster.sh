#!/usr/bin/env bash
# Runs a real local Switchboard cluster from Debian packages: redis-server, N gateways, a worker, nginx and Prometheus.
#
#   scripts/cluster.sh start     start everything on free loopback ports, print the URLs, write the state file
#   scripts/cluster.sh stop      SIGTERM everything the state file names (gateways drain first), wait, clean up
#   scripts/cluster.sh status    show which recorded processes are alive
#   scripts/cluster.sh restart-gateway N   SIGTERM gateway N (it drains), start it again on its port, wait for /readyz
#   scripts/cluster.sh install   apt-get install the missing Debian packages (as root), or say what to install
#
# Environment:
#   SWITCHBOARD_CLUSTER_DIR       state, configs, data and logs (default: ${TMPDIR:-/tmp}/switchboard-cluster-$UID)
#   SWITCHBOARD_CLUSTER_GATEWAYS  number of gateways (default 3)
#   SWITCHBOARD_CLUSTER_WORKERS   number of versioning workers (default 1; 0 runs none)
#   SWITCHBOARD_CLUSTER_SCRAPE    Prometheus scrape interval (default 1s: the cluster test waits on it)
#   SWITCHBOARD_CLUSTER_GRACE     gateway --shutdown-grace in seconds (default 10: stop stays quick)
#   SWITCHBOARD_CLUSTER_INSTALL   1: install missing packages even when not root (through sudo); 0: never install
#   SWITCHBOARD_TOKEN_HMAC_SECRET / SWITCHBOARD_API_KEY  used when set; otherwise random ones are generated
#
# Everything listens on 127.0.0.1 only and on ports the kernel hands out as free, so it never collides with
# services on standard ports (a system redis on 6379, an nginx on 80, a Prometheus on 9090). Nothing is
# daemonized: every process is a child started here, its PID recorded in $SWITCHBOARD_CLUSTER_DIR/state.env.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CLUSTER_DIR="${SWITCHBOARD_CLUSTER_DIR:-${TMPDIR:-/tmp}/switchboard-cluster-$(id -u)}"
STATE="$CLUSTER_DIR/state.env"
GATEWAYS="${SWITCHBOARD_CLUSTER_GATEWAYS:-3}"
WORKERS="${SWITCHBOARD_CLUSTER_WORKERS:-1}"
SCRAPE_INTERVAL="${SWITCHBOARD_CLUSTER_SCRAPE:-1s}"
GRACE="${SWITCHBOARD_CLUSTER_GRACE:-10}"
CLI="$ROOT/packages/server/bin/switchboard.js"
CONFIG_FILE="$ROOT/deploy/switchboard.yaml"

# Bounded waits (seconds). A piece that is not ready in time fails the start, which then stops what it started.
READY_TIMEOUT=30
STOP_TIMEOUT=$((GRACE + 10))

# Debian package per binary. nginx and prometheus live in /usr/sbin and /usr/bin.
PACKAGES=(redis-server nginx prometheus)

log() { printf 'cluster: %s\n' "$*" >&2; }
die() {
  log "error: $*"
  exit 1
}

# --- finding and installing the binaries -------------------------------------------------------------------

# Prints the path of a binary, also looking in the sbin directories a non-root PATH often lacks.
find_bin() {
  local name="$1" dir
  if command -v "$name" >/dev/null 2>&1; then
    command -v "$name"
    return 0
  fi
  for dir in /usr/sbin /usr/local/sbin /sbin; do
    if [ -x "$dir/$name" ]; then
      echo "$dir/$name"
      return 0
    fi
  done
  return 1
}

missing_packages() {
  local missing=()
  find_bin redis-server >/dev/null || missing+=(redis-server)
  find_bin nginx >/dev/null || missing+=(nginx)
  find_bin prometheus >/dev/null || missing+=(prometheus)
  echo "${missing[@]+"${missing[@]}"}"
}

install_packages() {
  local missing
  missing="$(missing_packages)"
  [ -z "$missing" ] && return 0
  local hint="sudo apt-get install -y --no-install-recommends $missing"
  if [ "${SWITCHBOARD_CLUSTER_INSTALL:-}" = 0 ]; then
    die "missing packages: $missing (SWITCHBOARD_CLUSTER_INSTALL=0 forbids installing here). Install them with: $hint"
  fi
  local sudo=""
  if [ "$(id -u)" -ne 0 ]; then
    if [ "${SWITCHBOARD_CLUSTER_INSTALL:-}" != 1 ] || ! command -v sudo >/dev/null 2>&1; then
      die "missing packages: $missing. Install them with: $hint (or rerun with SWITCHBOARD_CLUSTER_INSTALL=1 to let this script use sudo)"
    fi
    sudo="sudo"
  fi
  command -v apt-get >/dev/null 2>&1 || die "missing packages: $missing, and apt-get is not available to install them"
  log "installing $missing"
  # Debian's nginx and prometheus packages start a system daemon on ports 80 and 9090 after installing. This
  # cluster runs its own instances on free ports, so forbid those starts (exit 101 is policy-rc.d's "not
  # allowed"), unless the machine already has a policy in place.
  local policy=/usr/sbin/policy-rc.d created_policy=""
  if [ ! -e "$policy" ]; then
    $sudo sh -c "printf '#!/bin/sh\nexit 101\n' > $policy && chmod 755 $policy"
    created_policy=1
  fi
  local status=0 packages
  read -r -a packages <<<"$missing"
  {
    $sudo env DEBIAN_FRONTEND=noninteractive apt-get update -qq &&
      # --no-install-recommends: prometheus recommends prometheus-node-exporter, another daemon we do not want.
      $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${packages[@]}" >/dev/null
  } || status=$?
  if [ -n "$created_policy" ]; then $sudo rm -f "$policy"; fi
  [ "$status" -eq 0 ] || die "apt-get install $missing failed (exit $status)"
  missing="$(missing_packages)"
  [ -z "$missing" ] || die "still missing after apt-get install: $missing"
}

# --- small helpers -----------------------------------------------------------------------------------------

# Prints N distinct free TCP ports on 127.0.0.1: all are held open at once so none repeats.
free_ports() {
  node -e '
    const net = require("node:net");
    const n = Number(process.argv[1]);
    const servers = [];
    const next = () => {
      if (servers.length === n) {
        console.log(servers.map((s) => s.address().port).join(" "));
        servers.forEach((s) => s.close());
        return;
      }
      const s = net.createServer();
      s.listen(0, "127.0.0.1", () => { servers.push(s); next(); });
    };
    next();
  ' "$1"
}

random_hex() { od -An -N16 -tx1 /dev/urandom | tr -d ' \n'; }

# HTTP status code of a GET (000 when nothing answers). curl when present, node otherwise.
http_code() {
  if command -v curl >/dev/null 2>&1; then
    curl -s -o /dev/null -w '%{http_code}' --max-time 2 "$1" || true
  else
    node -e '
      const req = require("node:http").get(process.argv[1], { timeout: 2000 }, (res) => { console.log(res.statusCode); res.resume(); });
      req.on("error", () => console.log("000"));
      req.on("timeout", () => { req.destroy(); });
    ' "$1"
  fi
}

# A process that exited stays a zombie until its parent (init, once this script has returned) reaps it, which
# some container inits do only now and then: a zombie counts as gone.
alive() {
  [ -n "${1:-}" ] && kill -0 "$1" 2>/dev/null || return 1
  local state
  state="$(ps -o stat= -p "$1" 2>/dev/null || true)"
  [[ "$state" != Z* ]]
}

# The command line of a PID, so that stop never signals a process that merely reuses a recorded PID.
cmdline_of() {
  if [ -r "/proc/$1/cmdline" ]; then tr '\0' ' ' <"/proc/$1/cmdline"; else ps -o args= -p "$1" 2>/dev/null || true; fi
}

owned() {
  local pid="$1" marker="$2"
  alive "$pid" && cmdline_of "$pid" | grep -qF -- "$marker"
}

# One KEY=value per line, no quoting: the markers and values are chosen without spaces, so the file can be
# sourced by a shell and read by a test alike.
record() { printf '%s=%s\n' "$1" "$2" >>"$STATE"; }

# Waits until `check` succeeds; fails early when the process died, showing the end of its log.
wait_until() {
  local what="$1" pid="$2" logfile="$3" check="$4" deadline=$((SECONDS + READY_TIMEOUT))
  until eval "$check"; do
    if ! alive "$pid"; then
      log "$what exited during start; last lines of $logfile:"
      tail -n 20 "$logfile" >&2 || true
      return 1
    fi
    if [ "$SECONDS" -ge "$deadline" ]; then
      log "$what not ready after ${READY_TIMEOUT}s; last lines of $logfile:"
      tail -n 20 "$logfile" >&2 || true
      return 1
    fi
    sleep 0.2
  done
}

# --- start -------------------------------------------------------------------------------------------------

start_redis() {
  local port="$1" bin pid
  bin="$(find_bin redis-server)"
  mkdir -p "$CLUSTER_DIR/redis"
  # No persistence: the cluster is throwaway. Loopback only, protected mode stays on.
  "$bin" --port "$port" --bind 127.0.0.1 --save '' --appendonly no --dir "$CLUSTER_DIR/redis" \
    </dev/null >"$CLUSTER_DIR/logs/redis.log" 2>&1 &
  pid=$!
  record REDIS_PID "$pid"
  # redis-server rewrites its process title to "redis-server 127.0.0.1:<port>".
  record REDIS_MATCH "127.0.0.1:$port"
  record REDIS_PORT "$port"
  wait_until redis-server "$pid" "$CLUSTER_DIR/logs/redis.log" "redis_ping $port"
}

redis_ping() {
  if command -v redis-cli >/dev/null 2>&1; then
    [ "$(redis-cli -h 127.0.0.1 -p "$1" ping 2>/dev/null)" = PONG ]
  else
    (exec 3<>"/dev/tcp/127.0.0.1/$1" && printf 'PING\r\n' >&3 && head -c 5 <&3 | grep -q PONG) 2>/dev/null
  fi
}

# Gateways and the worker get secrets, Redis and the config file through SWITCHBOARD_* variables (the way
# containers get them) and their port and name as flags, which also mark their command lines for `stop`.
start_switchboard() {
  local key="$1" role="$2" port="$3" name="$4" redis_url="$5" pid logfile="$CLUSTER_DIR/logs/$4.log"
  SWITCHBOARD_REDIS_URL="$redis_url" \
    SWITCHBOARD_TOKEN_HMAC_SECRET="$TOKEN_SECRET" \
    SWITCHBOARD_API_KEY="$API_KEY" \
    SWITCHBOARD_CONFIG="$CONFIG_FILE" \
    SWITCHBOARD_SHUTDOWN_GRACE="$GRACE" \
    node "$CLI" "$role" --host=127.0.0.1 --port="$port" --node-name="$name" \
    </dev/null >"$logfile" 2>&1 &
  pid=$!
  record "${key}_PID" "$pid"
  record "${key}_MATCH" "--port=$port"
  record "${key}_PORT" "$port"
  record "${key}_NAME" "$name"
  echo "$pid"
}

write_nginx_conf() {
  local port="$1"
  shift
  local dir="$CLUSTER_DIR/nginx" servers="" p user_line=""
  mkdir -p "$dir/temp/client_body" "$dir/temp/proxy" "$dir/temp/fastcgi" "$dir/temp/uwsgi" "$dir/temp/scgi"
  for p in "$@"; do
    servers+="    server 127.0.0.1:$p max_fails=2 fail_timeout=2s;"$'\n'
  done
  # As root, nginx would run its workers as "nobody", who cannot write the temp dirs made here.
  if [ "$(id -u)" -eq 0 ]; then user_line="user root;"; fi
  cat >"$dir/nginx.conf" <<EOF
# Generated by scripts/cluster.sh for a local cluster; deploy/nginx.conf is the same balancer for containers.
$user_line
worker_processes 1;
pid $dir/nginx.pid;
error_log $dir/error.log warn;
events {
  worker_connections 4096;
}
http {
  access_log $dir/access.log;
  # Every path nginx would otherwise take from its compiled-in defaults under /var/lib/nginx.
  client_body_temp_path $dir/temp/client_body;
  proxy_temp_path $dir/temp/proxy;
  fastcgi_temp_path $dir/temp/fastcgi;
  uwsgi_temp_path $dir/temp/uwsgi;
  scgi_temp_path $dir/temp/scgi;

  map \$http_upgrade \$connection_upgrade {
    default upgrade;
    ''      '';
  }

  upstream switchboard_gateways {
    # WebSockets are long-lived: balance on open connections, not on arrivals.
    least_conn;
$servers    keepalive 16;
  }

  server {
    listen 127.0.0.1:$port;
    client_max_body_size 1m;

    location / {
      proxy_pass http://switchboard_gateways;
      proxy_http_version 1.1;
      proxy_set_header Upgrade \$http_upgrade;
      proxy_set_header Connection \$connection_upgrade;
      proxy_set_header Host \$host;
      proxy_set_header X-Forwarded-For \$proxy_add_x_forwarded_for;
      # Must outlast the server's 25 s ping interval; a WebSocket is otherwise idle between pings.
      proxy_read_timeout 1h;
      proxy_send_timeout 1h;
      proxy_buffering off;
      # A draining gateway answers 503 to new upgrades: try the next one.
      proxy_next_upstream error timeout http_502 http_503;
      proxy_next_upstream_tries 3;
    }
  }
}
EOF
}

start_nginx() {
  local port="$1" bin pid dir="$CLUSTER_DIR/nginx"
  bin="$(find_bin nginx)"
  "$bin" -t -q -p "$dir" -e "$dir/error.log" -c "$dir/nginx.conf" >"$CLUSTER_DIR/logs/nginx.log" 2>&1 ||
    die "nginx rejected $dir/nginx.conf: $(cat "$CLUSTER_DIR/logs/nginx.log")"
  # daemon off: nginx stays our child, so its PID is known and nothing is left behind in a pid file only.
  "$bin" -p "$dir" -e "$dir/error.log" -c "$dir/nginx.conf" -g 'daemon off;' \
    </dev/null >>"$CLUSTER_DIR/logs/nginx.log" 2>&1 &
  pid=$!
  record NGINX_PID "$pid"
  record NGINX_MATCH "$dir/nginx.conf"
  record NGINX_PORT "$port"
  wait_until nginx "$pid" "$dir/error.log" "[ \"\$(http_code http://127.0.0.1:$port/healthz)\" = 200 ]"
}

write_prometheus_conf() {
  local dir="$CLUSTER_DIR/prometheus" gateway_targets="" worker_targets="" i port_var
  mkdir -p "$dir/data"
  for i in $(seq 1 "$GATEWAYS"); do
    port_var="GATEWAY${i}_PORT"
    gateway_targets+="      - targets: ['127.0.0.1:${!port_var}']"$'\n'"        labels: { node: gateway-$i }"$'\n'
  done
  for i in $(seq 1 "$WORKERS"); do
    port_var="WORKER${i}_PORT"
    worker_targets+="      - targets: ['127.0.0.1:${!port_var}']"$'\n'"        labels: { node: worker-$i }"$'\n'
  done
  # An empty list is "[]" in YAML, not nothing.
  [ -n "$worker_targets" ] || worker_targets="      []"$'\n'
  cat >"$dir/prometheus.yml" <<EOF
# Generated by scripts/cluster.sh; the job names match deploy/prometheus.yml so the Grafana dashboard fits both.
global:
  scrape_interval: $SCRAPE_INTERVAL
  evaluation_interval: $SCRAPE_INTERVAL
scrape_configs:
  - job_name: switchboard-gateway
    metrics_path: /metrics
    static_configs:
$gateway_targets  - job_name: switchboard-worker
    metrics_path: /metrics
    static_configs:
$worker_targets
EOF
}

start_prometheus() {
  local port="$1" bin pid dir="$CLUSTER_DIR/prometheus"
  bin="$(find_bin prometheus)"
  "$bin" --config.file="$dir/prometheus.yml" --storage.tsdb.path="$dir/data" \
    --storage.tsdb.retention.time=1d --web.listen-address="127.0.0.1:$port" \
    </dev/null >"$CLUSTER_DIR/logs/prometheus.log" 2>&1 &
  pid=$!
  record PROMETHEUS_PID "$pid"
  record PROMETHEUS_MATCH "--config.file=$dir/prometheus.yml"
  record PROMETHEUS_PORT "$port"
  wait_until prometheus "$pid" "$CLUSTER_DIR/logs/prometheus.log" "[ \"\$(http_code http://127.0.0.1:$port/-/ready)\" = 200 ]"
}

cmd_start() {
  if [ -f "$STATE" ] && any_alive; then
    die "a cluster is already running (state in $STATE); run '$0 stop' first"
  fi
  install_packages
  [[ "$GATEWAYS" =~ ^[1-9][0-9]*$ ]] || die "SWITCHBOARD_CLUSTER_GATEWAYS must be a positive number, got '$GATEWAYS'"
  [[ "$WORKERS" =~ ^[0-9]+$ ]] || die "SWITCHBOARD_CLUSTER_WORKERS must be a number, got '$WORKERS'"
  if [ ! -f "$ROOT/packages/server/dist/main.js" ]; then
    log "building (npx tsc -b): packages/server/dist is missing"
    (cd "$ROOT" && npx tsc -b)
  fi

  rm -rf "$CLUSTER_DIR"
  mkdir -p "$CLUSTER_DIR/logs"
  chmod 700 "$CLUSTER_DIR"
  : >"$STATE"
  chmod 600 "$STATE"
  # A failed start leaves nothing running: stop whatever was recorded so far.
  trap 'status=$?; if [ $status -ne 0 ]; then log "start failed; stopping what was started"; cmd_stop || true; fi' EXIT

  TOKEN_SECRET="${SWITCHBOARD_TOKEN_HMAC_SECRET:-$(random_hex)}"
  API_KEY="${SWITCHBOARD_API_KEY:-$(random_hex)}"
  record CLUSTER_DIR "$CLUSTER_DIR"
  record TOKEN_HMAC_SECRET "$TOKEN_SECRET"
  record API_KEY "$API_KEY"
  record GATEWAYS "$GATEWAYS"
  record WORKERS "$WORKERS"

  local ports i
  read -r -a ports <<<"$(free_ports $((GATEWAYS + WORKERS + 3)))"
  local redis_port="${ports[0]}" nginx_port="${ports[1]}" prometheus_port="${ports[2]}"
  local gateway_ports=("${ports[@]:3:$GATEWAYS}") worker_ports=("${ports[@]:$((3 + GATEWAYS))}")

  log "redis-server on 127.0.0.1:$redis_port"
  start_redis "$redis_port"
  local redis_url="redis://127.0.0.1:$redis_port"

  # Gateways and the worker start in parallel, then each is waited for.
  local pids=()
  for i in $(seq 1 "$GATEWAYS"); do
    pids+=("$(start_switchboard "GATEWAY$i" gateway "${gateway_ports[$((i - 1))]}" "gateway-$i" "$redis_url")")
    eval "GATEWAY${i}_PORT=${gateway_ports[$((i - 1))]}"
  done
  local worker_pids=()
  for i in $(seq 1 "$WORKERS"); do
    worker_pids+=("$(start_switchboard "WORKER$i" worker "${worker_ports[$((i - 1))]}" "worker-$i" "$redis_url")")
    eval "WORKER${i}_PORT=${worker_ports[$((i - 1))]}"
  done
  for i in $(seq 1 "$GATEWAYS"); do
    wait_until "gateway-$i" "${pids[$((i - 1))]}" "$CLUSTER_DIR/logs/gateway-$i.log" \
      "[ \"\$(http_code http://127.0.0.1:${gateway_ports[$((i - 1))]}/readyz)\" = 200 ]"
    log "gateway-$i on 127.0.0.1:${gateway_ports[$((i - 1))]}"
  done
  for i in $(seq 1 "$WORKERS"); do
    wait_until "worker-$i" "${worker_pids[$((i - 1))]}" "$CLUSTER_DIR/logs/worker-$i.log" \
      "[ \"\$(http_code http://127.0.0.1:${worker_ports[$((i - 1))]}/readyz)\" = 200 ]"
    log "worker-$i on 127.0.0.1:${worker_ports[$((i - 1))]}"
  done

  write_nginx_conf "$nginx_port" "${gateway_ports[@]}"
  start_nginx "$nginx_port"
  log "nginx on 127.0.0.1:$nginx_port"

  write_prometheus_conf
  start_prometheus "$prometheus_port"
  log "prometheus on 127.0.0.1:$prometheus_port"

  record URL_WEBSOCKET "ws://127.0.0.1:$nginx_port/connection/websocket"
  record URL_HTTP "http://127.0.0.1:$nginx_port"
  record URL_PROMETHEUS "http://127.0.0.1:$prometheus_port"
  trap - EXIT

  cat <<EOF
Switchboard cluster running ($GATEWAYS gateways, $WORKERS worker(s)), state in $STATE
  WebSocket   ws://127.0.0.1:$nginx_port/connection/websocket   (through nginx)
  HTTP API    http://127.0.0.1:$nginx_port/api/<method>        (X-API-Key: see API_KEY in the state file)
  Prometheus  http://127.0.0.1:$prometheus_port
  Redis       redis://127.0.0.1:$redis_port
EOF
  for i in $(seq 1 "$GATEWAYS"); do
    echo "  gateway-$i   http://127.0.0.1:${gateway_ports[$((i - 1))]}   (/metrics /healthz /readyz)"
  done
  for i in $(seq 1 "$WORKERS"); do
    echo "  worker-$i    http://127.0.0.1:${worker_ports[$((i - 1))]}   (/metrics /healthz /readyz)"
  done
  echo "  logs        $CLUSTER_DIR/logs"
  echo "Stop it with: $0 stop"
}

# --- stop --------------------------------------------------------------------------------------------------

# Gateways first, so their clients get close code 3001 through nginx; Redis last, after everyone using it.
STOP_ORDER() {
  local i
  for i in $(seq 1 "${GATEWAYS:-0}"); do echo "GATEWAY$i"; done
  for i in $(seq 1 "${WORKERS:-0}"); do echo "WORKER$i"; done
  echo NGINX PROMETHEUS REDIS
}

load_state() {
  [ -f "$STATE" ] || return 1
  local key value
  while IFS='=' read -r key value; do
    [[ "$key" =~ ^[A-Z0-9_]+$ ]] && printf -v "$key" '%s' "$value"
  done <"$STATE"
}

any_alive() {
  load_state || return 1
  local key pid_var match_var
  for key in $(STOP_ORDER); do
    pid_var="${key}_PID" match_var="${key}_MATCH"
    if owned "${!pid_var:-}" "${!match_var:-}"; then return 0; fi
  done
  return 1
}

# SIGTERM, then wait up to the timeout; SIGKILL only what is still there after it.
stop_one() {
  local key="$1" pid_var="${1}_PID" match_var="${1}_MATCH" pid deadline
  pid="${!pid_var:-}"
  owned "$pid" "${!match_var:-}" || return 0
  kill -TERM "$pid" 2>/dev/null || return 0
  deadline=$((SECONDS + STOP_TIMEOUT))
  while alive "$pid"; do
    if [ "$SECONDS" -ge "$deadline" ]; then
      log "$key (pid $pid) still running ${STOP_TIMEOUT}s after SIGTERM; killing it"
      kill -KILL "$pid" 2>/dev/null || true
      break
    fi
    sleep 0.1
  done
  log "stopped $key (pid $pid)"
}

cmd_stop() {
  if ! load_state; then
    log "no state file at $STATE: nothing to stop"
    return 0
  fi
  local key gateway_pids=()
  # Gateways drain in parallel (each spreads its disconnects over half its grace period), then the rest in order.
  for key in $(STOP_ORDER); do
    if [[ "$key" == GATEWAY* ]]; then
      stop_one "$key" &
      gateway_pids+=($!)
    fi
  done
  for pid in "${gateway_pids[@]+"${gateway_pids[@]}"}"; do wait "$pid" || true; done
  for key in $(STOP_ORDER); do
    [[ "$key" == GATEWAY* ]] || stop_one "$key"
  done
  rm -f "$STATE"
}

cmd_status() {
  if ! load_state; then
    echo "not running (no state file at $STATE)"
    return 1
  fi
  local key pid_var match_var port_var running=0
  for key in $(STOP_ORDER); do
    pid_var="${key}_PID" match_var="${key}_MATCH" port_var="${key}_PORT"
    if owned "${!pid_var:-}" "${!match_var:-}"; then
      echo "$key pid ${!pid_var} port ${!port_var:-?}: running"
      running=1
    else
      echo "$key: not running"
    fi
  done
  [ "$running" -eq 1 ]
}

# One step of a rolling restart: the gateway drains (readiness 503, clients closed with 3001 and reconnecting
# through nginx to the others), then comes back on the same port with the same settings.
cmd_restart_gateway() {
  local i="${1:-}" pid port port_var
  [[ "$i" =~ ^[1-9][0-9]*$ ]] || die "usage: $0 restart-gateway N (a gateway number)"
  load_state || die "no cluster is running (no state file at $STATE)"
  port_var="GATEWAY${i}_PORT"
  port="${!port_var:-}"
  [ -n "$port" ] || die "this cluster has no gateway $i"
  TOKEN_SECRET="$TOKEN_HMAC_SECRET"
  stop_one "GATEWAY$i"
  pid="$(start_switchboard "GATEWAY$i" gateway "$port" "gateway-$i" "redis://127.0.0.1:$REDIS_PORT")"
  wait_until "gateway-$i" "$pid" "$CLUSTER_DIR/logs/gateway-$i.log" "[ \"\$(http_code http://127.0.0.1:$port/readyz)\" = 200 ]"
  log "restarted gateway-$i on 127.0.0.1:$port"
}

case "${1:-}" in
  start) cmd_start ;;
  restart-gateway) cmd_restart_gateway "${2:-}" ;;
  stop) cmd_stop ;;
  status) cmd_status ;;
  install) install_packages && log "present: ${PACKAGES[*]}" ;;
  *)
    echo "usage: $0 start|stop|status|install|restart-gateway N" >&2
    exit 2
    ;;
esac
