#!/usr/bin/env bash
# make cluster / make cluster-stop: the services as separate release
# processes on one machine, as on Kubernetes: 2 gateways sharing a
# redis-server (AOF, appendfsync everysec, in a temporary folder), 2 workers
# that both gateways balance over, 1 segmentation, 1 mask service, all on
# loopback, configured with the manifests' environment variables.
#
#   deploy/local/cluster.sh start   (ports from CLUSTER_PORT, default 51050)
#   deploy/local/cluster.sh stop
#   deploy/local/cluster.sh kill NAME      SIGKILL one process (redis,
#                                          gateway-PORT, worker-PORT, mask, ...)
#   deploy/local/cluster.sh restart NAME   start it again as it was started
#
# CLUSTER_BIN names the binaries' folder (default target/release).
#
# CLUSTER_METRICS=0 leaves the metrics endpoints off; CLUSTER_OTLP=URL
# sends every service's traces there (make bench-cluster uses both).
#
# The state (pids, logs, Redis data) is in the folder named by
# target/cluster/state; `stop` ends every process and removes it.
set -euo pipefail
cd "$(dirname "$0")/../.."
state=target/cluster/state
bin=${CLUSTER_BIN:-target/release}

stop() {
  [ -f "$state" ] || { echo "no cluster running"; return 0; }
  dir=$(cat "$state")
  for pidfile in "$dir"/*.pid; do
    [ -f "$pidfile" ] && kill "$(cat "$pidfile")" 2>/dev/null || true
  done
  sleep 1
  for pidfile in "$dir"/*.pid; do
    [ -f "$pidfile" ] && kill -9 "$(cat "$pidfile")" 2>/dev/null || true
  done
  rm -rf "$dir" "$state"
  echo "cluster stopped"
}

# Runs NAME as a background process with its log and pid in the folder.
run() {
  local name=$1
  shift
  printf '%q ' "$@" >"$dir/$name.cmd"
  "$@" >>"$dir/$name.log" 2>&1 &
  echo $! >"$dir/$name.pid"
}

# SIGKILLs NAME, as a crash would.
kill_one() {
  dir=$(cat "$state")
  [ -f "$dir/$1.pid" ] || { echo "no process $1 in $dir"; exit 1; }
  kill -9 "$(cat "$dir/$1.pid")" 2>/dev/null || true
  echo "$1 killed"
}

# Starts NAME again with the command line it was started with.
restart_one() {
  dir=$(cat "$state")
  [ -f "$dir/$1.cmd" ] || { echo "no process $1 in $dir"; exit 1; }
  # exec: the pid recorded is the process itself, which `stop` can end.
  (eval "exec $(cat "$dir/$1.cmd")") >>"$dir/$1.log" 2>&1 &
  echo $! >"$dir/$1.pid"
  echo "$1 restarted"
}

# Waits until something listens on 127.0.0.1:PORT.
wait_port() {
  for _ in $(seq 1 300); do
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
    sleep 0.1
  done
  echo "nothing listens on port $1; logs in $dir" >&2
  return 1
}

start() {
  [ -f "$state" ] && { echo "a cluster is running (deploy/local/cluster.sh stop)"; exit 1; }
  for b in inpaint-gateway inpaint-segmentation inpaint-mask inpaint-worker; do
    [ -x "$bin/$b" ] || { echo "missing $bin/$b: cargo build --release"; exit 1; }
  done
  command -v redis-server >/dev/null || { echo "redis-server is not installed"; exit 1; }
  local p=${CLUSTER_PORT:-51050}
  local redis=$p seg=$((p + 1)) mask=$((p + 2)) w1=$((p + 3)) w2=$((p + 4)) g1=$((p + 5)) g2=$((p + 6))
  dir=$(mktemp -d /tmp/inpaint-cluster.XXXXXX)
  mkdir -p "$(dirname "$state")"
  echo "$dir" >"$state"
  run redis redis-server --port "$redis" --bind 127.0.0.1 --dir "$dir" \
    --appendonly yes --appendfsync everysec --save ""
  export INPAINT_LOG_FORMAT=json RUST_LOG=${RUST_LOG:-info}
  [ -n "${CLUSTER_OTLP:-}" ] && export INPAINT_OTLP_ENDPOINT=$CLUSTER_OTLP
  # Metrics on each service's port + 100 (CLUSTER_METRICS=0: none).
  metrics() { [ "${CLUSTER_METRICS:-1}" = 0 ] && echo "" || echo "127.0.0.1:$(($1 + 100))"; }
  run segmentation env INPAINT_LISTEN=127.0.0.1:$seg INPAINT_ORT_THREADS=2 \
    INPAINT_METRICS_LISTEN=$(metrics $seg) "$bin/inpaint-segmentation"
  run mask env INPAINT_LISTEN=127.0.0.1:$mask \
    INPAINT_METRICS_LISTEN=$(metrics $mask) "$bin/inpaint-mask"
  for w in $w1 $w2; do
    run "worker-$w" env INPAINT_LISTEN=127.0.0.1:$w INPAINT_WORKER_MODELS=models/worker-models.toml \
      INPAINT_METRICS_LISTEN=$(metrics $w) "$bin/inpaint-worker"
  done
  for g in $g1 $g2; do
    run "gateway-$g" env INPAINT_LISTEN=127.0.0.1:$g \
      INPAINT_METRICS_LISTEN=$(metrics $g) \
      INPAINT_SEGMENTATION_URL=http://127.0.0.1:$seg INPAINT_MASK_URL=http://127.0.0.1:$mask \
      INPAINT_WORKER_URL=http://127.0.0.1:$w1,http://127.0.0.1:$w2 \
      INPAINT_REDIS_URL=redis://127.0.0.1:$redis INPAINT_REPLICA=gateway-$g \
      "$bin/inpaint-gateway"
  done
  for port in $redis $seg $mask $w1 $w2 $g1 $g2; do wait_port "$port"; done
  echo "cluster up in $dir: gateways http://127.0.0.1:$g1 and http://127.0.0.1:$g2 (redis $redis, segmentation $seg, mask $mask, workers $w1 $w2; metrics on each port + 100)"
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  kill) kill_one "$2" ;;
  restart) restart_one "$2" ;;
  *) echo "usage: $0 start|stop|kill NAME|restart NAME"; exit 2 ;;
esac
