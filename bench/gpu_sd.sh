#!/usr/bin/env bash
# On a GPU machine, from the repository root: Stable Diffusion on CUDA.
#  1. builds a full-size SD 1.5-shaped inpainting pipeline with random
#     weights (fp16) with models/build/tiny_sd.py --full (needs torch,
#     diffusers, transformers, onnx there), unless SD_FULL already holds one;
#  2. times our pipeline on it at 512x512 (steps per second, and the share
#     of each step spent outside the UNet's session runs);
#  3. runs the tiny fixture pipeline on CUDA against the Python reference
#     loop on the CPU (agreement).
#  4. step-level batching of 1, 4 and 16 concurrent requests on it.
# Needs onnxruntime-gpu's libraries in ORT_GPU_DIR (bench/gpu_libs.sh) and
# the sd_bench and sd_batch_bench examples built with --features cuda
# (SD_BENCH, SD_BATCH_BENCH). key=value lines.
set -euo pipefail
cd "$(dirname "$0")/.."
lib=${ORT_GPU_DIR:-models/cache/onnxruntime-gpu}
bin=${SD_BENCH:-target/release/examples/sd_bench}
full=${SD_FULL:-/tmp/sd-full}
sp=$(python3 -c 'import site; print(site.getsitepackages()[0])')
export LD_LIBRARY_PATH=$lib:$(ls -d "$sp"/nvidia/*/lib 2>/dev/null | tr '\n' ':')${LD_LIBRARY_PATH:-}
export ORT_DYLIB_PATH=$lib/libonnxruntime.so
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader
if [ ! -f "$full/inpaint/unet/model.onnx" ]; then
  python3 models/build/tiny_sd.py --full "$full" --device cuda >/dev/null
fi
work=$(mktemp -d)
python3 - "$work" <<'PY'
import sys, numpy as np
out, size = sys.argv[1], 512
y, x = np.mgrid[0:size, 0:size]
img = np.stack([128 + 100 * np.sin(x / 9), 128 + 90 * np.cos(y / 7), 60 + x * 0.35], -1)
np.clip(np.rint(img), 0, 255).astype(np.uint8).tofile(f"{out}/image.rgb")
m = np.zeros((size, size), np.uint8); m[128:384, 170:426] = 255; m.tofile(f"{out}/mask.gray")
PY
for case in "DPM++ 2M|karras" "Euler a|normal" "DDIM|normal"; do
  sampler=${case%|*}; schedule=${case#*|}
  status=0
  line=$("$bin" "$full/inpaint" "$work/image.rgb" "$work/mask.gray" 512 "$sampler" "$schedule" 20 5 "$work/o" cuda) || status=$?
  echo "bench=sd_gpu model=sd15-shaped-fp16 size=512 steps=20 sampler=${sampler// /_} schedule=$schedule $line"
  [ "$status" = 0 ] || echo "error: sd_bench $sampler exit status $status"
done
# Step-level batching at 512x512, 50 steps: 1, 4, 16 concurrent requests.
"${SD_BATCH_BENCH:-target/release/examples/sd_batch_bench}" "$full/inpaint" 512 50 cuda \
  || echo "error: sd_batch_bench failed"
# The tiny pipeline on CUDA (f32 graphs) against the CPU reference loop.
SD_BENCH_DEVICE=cuda BIN="$bin" python3 bench/sd_bench.py || echo "error: tiny pipeline check failed"
