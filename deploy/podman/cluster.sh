#!/usr/bin/env bash
# make cluster-containers / make cluster-containers-stop: the services as
# containers of the inpaint:dev image (make image) on a podman network, as
# deploy/local/cluster.sh runs them as processes: 2 gateways sharing Redis
# (Debian's redis-server, AOF on a volume), 2 workers both gateways balance
# over, 1 segmentation, 1 mask service. Each container runs as user 10001
# with a read-only root filesystem (a tmpfs on /tmp), no capabilities and
# no privilege escalation, configured only by the manifests' environment
# variables. They find each other by container name on the network; each
# port is published on 127.0.0.1 at the same number.
#
#   deploy/podman/cluster.sh start   (ports from CLUSTER_PORT, default 51050)
#   deploy/podman/cluster.sh stop
#   deploy/podman/cluster.sh kill NAME      SIGKILL one container (redis,
#                                           gateway-PORT, worker-PORT, mask, ...)
#   deploy/podman/cluster.sh restart NAME   start it again as it was
#
# CLUSTER_IMAGE and CLUSTER_REDIS_IMAGE name the images (default
# localhost/inpaint:dev and localhost/inpaint-redis:dev); CLUSTER_METRICS=0
# leaves the metrics endpoints off. INPAINT_JOB_RECLAIM_SECS and RUST_LOG
# are passed on when set.
set -euo pipefail
cd "$(dirname "$0")/../.."
export CONTAINERS_CONF=${CONTAINERS_CONF:-$PWD/deploy/podman/containers.conf}
state=target/cluster-containers/state
image=${CLUSTER_IMAGE:-localhost/inpaint:dev}
redis_image=${CLUSTER_REDIS_IMAGE:-localhost/inpaint-redis:dev}

stop() {
  [ -f "$state" ] || { echo "no cluster running"; return 0; }
  local prefix
  prefix=$(cat "$state")
  podman ps -aq --filter "label=inpaint.cluster=$prefix" | xargs -r podman rm -f -t 2 >/dev/null
  podman volume rm -f "$prefix-redis-data" >/dev/null 2>&1 || true
  podman network rm -f "$prefix" >/dev/null 2>&1 || true
  rm -f "$state"
  echo "cluster stopped"
}

# Runs container NAME of IMAGE (the rest: podman run options, then "--",
# then the command's arguments).
run() {
  local name=$1 img=$2
  shift 2
  local options=()
  while [ "$1" != "--" ]; do options+=("$1"); shift; done
  shift
  podman run -d --name "$prefix-$name" --hostname "$name" --network "$prefix" \
    --label "inpaint.cluster=$prefix" \
    --read-only --cap-drop=all --security-opt no-new-privileges \
    "${options[@]}" "$img" "$@" >/dev/null
}

# SIGKILLs NAME, as a crash would; the container stays, to be restarted.
kill_one() {
  prefix=$(cat "$state")
  podman kill -s KILL "$prefix-$1" >/dev/null
  echo "$1 killed"
}

# Starts NAME again as it was created (same options, same volume).
restart_one() {
  prefix=$(cat "$state")
  podman start "$prefix-$1" >/dev/null
  echo "$1 restarted"
}

# Waits until something answers on 127.0.0.1:PORT.
wait_port() {
  for _ in $(seq 1 300); do
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
    sleep 0.1
  done
  echo "nothing listens on port $1; see podman logs $prefix-..." >&2
  return 1
}

start() {
  [ -f "$state" ] && { echo "a cluster is running (deploy/podman/cluster.sh stop)"; exit 1; }
  for img in "$image" "$redis_image"; do
    podman image exists "$img" || { echo "missing image $img: make image"; exit 1; }
  done
  local p=${CLUSTER_PORT:-51050}
  local redis=$p seg=$((p + 1)) mask=$((p + 2)) w1=$((p + 3)) w2=$((p + 4)) g1=$((p + 5)) g2=$((p + 6))
  prefix=inpaint-$p
  mkdir -p "$(dirname "$state")"
  echo "$prefix" >"$state"
  podman network create "$prefix" >/dev/null
  podman volume create "$prefix-redis-data" >/dev/null
  # Published on the same port number on 127.0.0.1 (with the metrics
  # port + 100 when on).
  publish() {
    echo "-p 127.0.0.1:$1:$1"
    [ "${CLUSTER_METRICS:-1}" = 0 ] || echo "-p 127.0.0.1:$(($1 + 100)):$(($1 + 100))"
  }
  metrics() { [ "${CLUSTER_METRICS:-1}" = 0 ] && echo "" || echo "0.0.0.0:$(($1 + 100))"; }
  common=(-e INPAINT_LOG_FORMAT=json -e "RUST_LOG=${RUST_LOG:-info}")
  [ -n "${INPAINT_JOB_RECLAIM_SECS:-}" ] && common+=(-e "INPAINT_JOB_RECLAIM_SECS=$INPAINT_JOB_RECLAIM_SECS")

  run redis "$redis_image" -p "127.0.0.1:$redis:$redis" -v "$prefix-redis-data:/data:U" -- \
    --port "$redis" --dir /data --appendonly yes --appendfsync everysec --save ""
  # shellcheck disable=SC2046 # publish prints whole options
  run segmentation "$image" $(publish "$seg") "${common[@]}" \
    -e "INPAINT_LISTEN=0.0.0.0:$seg" -e INPAINT_ORT_THREADS=2 \
    -e "INPAINT_METRICS_LISTEN=$(metrics "$seg")" -- inpaint-segmentation
  # shellcheck disable=SC2046
  run mask "$image" $(publish "$mask") "${common[@]}" \
    -e "INPAINT_LISTEN=0.0.0.0:$mask" -e "INPAINT_METRICS_LISTEN=$(metrics "$mask")" -- inpaint-mask
  for w in $w1 $w2; do
    # shellcheck disable=SC2046
    run "worker-$w" "$image" $(publish "$w") "${common[@]}" \
      -e "INPAINT_LISTEN=0.0.0.0:$w" -e INPAINT_WORKER_MODELS=/opt/inpaint/models/worker-models.toml \
      -e "INPAINT_METRICS_LISTEN=$(metrics "$w")" -- inpaint-worker
  done
  # The gateways need their job store at start (on Kubernetes they would
  # restart until it answers).
  for _ in $(seq 1 100); do
    podman exec "$prefix-redis" redis-cli -p "$redis" ping 2>/dev/null | grep -q PONG && break
    sleep 0.1
  done
  for g in $g1 $g2; do
    # shellcheck disable=SC2046
    run "gateway-$g" "$image" $(publish "$g") "${common[@]}" \
      -e "INPAINT_LISTEN=0.0.0.0:$g" -e "INPAINT_METRICS_LISTEN=$(metrics "$g")" \
      -e "INPAINT_SEGMENTATION_URL=http://$prefix-segmentation:$seg" \
      -e "INPAINT_MASK_URL=http://$prefix-mask:$mask" \
      -e "INPAINT_WORKER_URL=http://$prefix-worker-$w1:$w1,http://$prefix-worker-$w2:$w2" \
      -e "INPAINT_REDIS_URL=redis://$prefix-redis:$redis" -e "INPAINT_REPLICA=gateway-$g" \
      -- inpaint-gateway
  done
  for port in $redis $seg $mask $w1 $w2 $g1 $g2; do wait_port "$port"; done
  echo "cluster up as containers $prefix-*: gateways http://127.0.0.1:$g1 and http://127.0.0.1:$g2 (redis $redis, segmentation $seg, mask $mask, workers $w1 $w2; metrics on each port + 100)"
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  kill) kill_one "$2" ;;
  restart) restart_one "$2" ;;
  *) echo "usage: $0 start|stop|kill NAME|restart NAME"; exit 2 ;;
esac
