#!/usr/bin/env bash
# Fetches ONNX Runtime's GPU build (PyPI onnxruntime-gpu 1.31.1, CUDA 13)
# into models/cache/onnxruntime-gpu/, and builds the two benchmark binaries
# with the `cuda` feature. The CUDA user libraries (cuDNN 9, cuBLAS, ...)
# must come from the GPU machine (PyPI nvidia-* wheels, see
# ../shared/MODELS.md); bench/gpu/run.sh finds them next to PyTorch.
set -euo pipefail
cd "$(dirname "$0")/../.."
out=models/cache/onnxruntime-gpu
mkdir -p "$out"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
python3 -m pip download --quiet --no-deps --only-binary=:all: --python-version 3.11 \
  --platform manylinux_2_28_x86_64 -d "$tmp" onnxruntime-gpu==1.31.1
python3 - "$tmp"/*.whl "$out" <<'PY'
import sys, zipfile
wheel, out = sys.argv[1], sys.argv[2]
with zipfile.ZipFile(wheel) as zf:
    for name in ("libonnxruntime.so.1.31.1", "libonnxruntime_providers_cuda.so",
                 "libonnxruntime_providers_shared.so"):
        with open(f"{out}/{name}", "wb") as f:
            f.write(zf.read(f"onnxruntime/capi/{name}"))
PY
ln -sf libonnxruntime.so.1.31.1 "$out/libonnxruntime.so"
ln -sf libonnxruntime.so.1.31.1 "$out/libonnxruntime.so.1"
cargo build --release --quiet -p inpaint-segmentation --features cuda --example seg_bench
cargo build --release --quiet -p inpaint-worker --features cuda --example worker_bench
cargo build --release --quiet -p inpaint-worker --features cuda --example sd_bench --example sd_batch_bench
echo "ready: run bench/gpu/run.sh on the GPU machine (needs $out, models/cache, target/release/examples)"
