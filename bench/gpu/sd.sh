#!/usr/bin/env bash
# On a GPU machine, from the repository root: Stable Diffusion on CUDA.
#  1. builds a full-size SD 1.5-shaped inpainting pipeline with random
#     weights (fp16) with models/build/tiny_sd.py --full (needs torch,
#     diffusers, transformers, onnx there), unless SD_FULL already holds one;
#     that script also times the same UNet in PyTorch (the reference);
#  2. times our pipeline on it at 512x512, 20 steps (steps per second, and
#     the share of each step spent outside the UNet's session runs), with
#     cuDNN's exhaustive convolution search (ONNX Runtime's default), the
#     heuristic one, and channels-last convolutions;
#  3. step-level batching of 1, 4 and 16 concurrent requests at 512x512,
#     50 steps, with the heuristic and the exhaustive search;
#  4. where the fixtures are here, the tiny pipeline on CUDA (f32 graphs)
#     against the Python reference loop on the CPU (agreement).
# First of all, should the lease end early: the same pipeline with its UNet
# as ONNX Runtime's SD recipe makes it (fp32 export with the classic
# attention, every CUDA fusion: MultiHeadAttention, GroupNorm, NhwcConv,
# BiasSplitGelu; then fp16), which tiny_sd.py --full writes to
# SD_FULL/inpaint-ort on CUDA: alone and step-batched, 50 steps.
# Needs onnxruntime-gpu's libraries in ORT_GPU_DIR (bench/gpu/libs.sh) and
# the sd_bench and sd_batch_bench examples built with --features cuda
# (SD_BENCH, SD_BATCH_BENCH). key=value lines, each with the card's name.
set -uo pipefail
cd "$(dirname "$0")/../.."
lib=${ORT_GPU_DIR:-models/cache/onnxruntime-gpu}
bin=${SD_BENCH:-target/release/examples/sd_bench}
batch_bin=${SD_BATCH_BENCH:-target/release/examples/sd_batch_bench}
full=${SD_FULL:-/tmp/sd-full}
# The CUDA user libraries (cuDNN, cuBLAS, ...) of the nvidia-* wheels
# beside PyTorch, wherever each wheel puts its lib folder.
cuda_libs=$(python3 - <<'PY'
import pathlib, site
dirs = {str(p.parent) for sp in site.getsitepackages() for p in pathlib.Path(sp, "nvidia").glob("**/lib*.so*")}
print(":".join(sorted(dirs)))
PY
)
export LD_LIBRARY_PATH=$lib:$cuda_libs:${LD_LIBRARY_PATH:-}
export ORT_DYLIB_PATH=$lib/libonnxruntime.so
export CUDA_MODULE_LOADING=LAZY
gpu=$(nvidia-smi --query-gpu=name --format=csv,noheader | head -1 | tr ' ' '_')
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader
if [ ! -f "$full/inpaint/unet/model.onnx" ]; then
  python3 models/build/tiny_sd.py --full "$full" --device cuda | grep '^bench='
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
# One model load per variant; each line says the variant and the model
# ($pipe and $model, set before each group: unfused, the plain fp16
# export; ort-fused, ONNX Runtime's recipe).
sd() {
  local variant=$1 samplers=$2 schedules=$3
  shift 3
  env "$@" timeout 240 "$bin" "$pipe" "$work/image.rgb" "$work/mask.gray" 512 \
    "$samplers" "$schedules" 20 5 "$work/o" cuda \
    | sed "s/^/bench=sd_gpu gpu=$gpu model=sd15-shaped-fp16-$model size=512 steps=20 variant=$variant /" \
    || echo "error: sd_bench variant=$variant exit status ${PIPESTATUS[0]}"
}
# Step-level batching at 512x512, 50 steps: 1, 4, 16 concurrent requests.
batched() {
  INPAINT_CUDA_CONV_SEARCH=$1 timeout 300 "$batch_bin" "$pipe" 512 50 cuda \
    | sed "s/^/gpu=$gpu model=$model conv_search=$1 /" \
    || echo "error: sd_batch_bench conv_search=$1 exit status ${PIPESTATUS[0]}"
}
# The most telling first, should the lease end early.
if [ -f "$full/inpaint-ort/unet/model.onnx" ]; then
  pipe=$full/inpaint-ort model=ort-fused
  sd heuristic "DPM++ 2M,Euler a" "karras,normal" INPAINT_CUDA_CONV_SEARCH=heuristic
  batched heuristic
else
  echo "error: no $full/inpaint-ort (tiny_sd.py --full needs onnxruntime's Python package for it)"
fi
pipe=$full/inpaint model=unfused
batched heuristic  # side by side with the fused run above
# SD_GPU_QUICK=1: stop here, for a lease with little device time left (the
# rest was measured on 2026-11-30: bench/results/gpu-h200-2026-11-30.txt).
if [ "${SD_GPU_QUICK:-0}" = 1 ]; then exit 0; fi
sd exhaustive "DPM++ 2M,Euler a,DDIM" "karras,normal,normal" INPAINT_CUDA_CONV_SEARCH=exhaustive
sd heuristic "DPM++ 2M" karras INPAINT_CUDA_CONV_SEARCH=heuristic
sd nhwc "DPM++ 2M" karras INPAINT_CUDA_CONV_SEARCH=exhaustive INPAINT_CUDA_NHWC=1
batched exhaustive
# The tiny pipeline on CUDA (f32 graphs) against the CPU reference loop.
if [ -f models/fixtures/tiny-sd/reference.json ]; then
  SD_BENCH_DEVICE=cuda BIN="$bin" python3 bench/sd_bench.py | sed "s/^/gpu=$gpu /" \
    || echo "error: tiny pipeline check failed"
fi
