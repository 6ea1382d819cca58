#!/usr/bin/env bash
# On a GPU machine, from the repository root, after bench/gpu/libs.sh: the
# segmentation models and the worker's batching queue on CUDA, then the same
# on this machine's CPU as the side-by-side reference. key=value lines.
set -euo pipefail
cd "$(dirname "$0")/../.."
lib=${ORT_GPU_DIR:-models/cache/onnxruntime-gpu}
sp=$(python3 -c 'import site; print(site.getsitepackages()[0])')
export LD_LIBRARY_PATH=$lib:$(ls -d "$sp"/nvidia/*/lib 2>/dev/null | tr '\n' ':')${LD_LIBRARY_PATH:-}
export ORT_DYLIB_PATH=$lib/libonnxruntime.so
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader
cases="--case coffee.png=365,290 --case astronaut.png=220,120 --case chelsea.png=200,150"
for device in cuda cpu; do
  # seg_bench prints the device each session really got.
  target/release/examples/seg_bench --models models/cache --device $device --repeats 10 $cases
done
tmp=$(mktemp -d)
python3 - "$tmp" <<'PY'
import sys, cv2, numpy as np
out = sys.argv[1]
photo = cv2.imread("models/cache/photos/astronaut.png")
for side in (256, 512):
    cv2.imwrite(f"{out}/crop{side}.png", cv2.resize(photo, (side, side), interpolation=cv2.INTER_AREA))
    hole = np.zeros((side, side), np.uint8)
    a, b = side * 35 // 100, side * 65 // 100
    hole[a:b, a:b] = 255
    cv2.imwrite(f"{out}/hole{side}.png", hole)
PY
for device in cuda cpu; do
  for side in 512 256; do
    # DEVICE=cuda requires the GPU: a figure is never a silent CPU fallback.
    # A crash is reported and the other runs go on (one CUDA run here
    # segfaulted once at process exit, after printing its figures).
    status=0
    DEVICE=$device target/release/examples/worker_bench throughput models/worker-models.toml pushpull \
      "$tmp/crop$side.png" "$tmp/hole$side.png" $((65536 / side)) 1 4 16 >"$tmp/out" || status=$?
    sed "s/^/device=$device side=$side /" "$tmp/out"
    [ "$status" = 0 ] || echo "error: worker_bench device=$device side=$side exit status $status"
  done
done
