#!/usr/bin/env bash
# Packs what a GPU lease needs into .gpu/ (git-ignored), within the lease's
# 64 MiB upload: onnxruntime-gpu 1.31.1's libraries with only the sm_90
# (H100/H200) cubins kept (fatbin_keep_arch.py; xz: 284 MB -> 51 MB), the
# sd_bench and sd_batch_bench examples built with --features cuda
# (stripped, xz), the diffusers wheel that models/build/tiny_sd.py --full
# needs there (the GPU machine has torch, transformers and onnx, no
# diffusers), and the CLIP tokenizer files. The repository's tracked files
# (about 47 MB) travel too, so run the lease from a checkout holding only
# what the lease reads:
#   git switch --orphan gpu-lease
#   git checkout main -- bench/gpu models/build/tiny_sd.py && git commit -m lease
#   (ignore target/, models/, out/, clients/, bench/out/ in .git/info/exclude)
#   device runs: bash bench/gpu/lease.sh build, then bash bench/gpu/lease.sh bench
#   (carrying .gpu in the first; under 600 s each)
# then `git switch -f main` and delete the branch.
set -euo pipefail
cd "$(dirname "$0")/../.."
out=.gpu
cache=models/cache/onnxruntime-gpu-wheel
mkdir -p "$out" "$cache"
if [ ! -f "$cache"/onnxruntime_gpu-1.31.1-*.whl ]; then
  python3 -m pip download --quiet --no-deps --only-binary=:all: --python-version 3.11 \
    --platform manylinux_2_28_x86_64 -d "$cache" onnxruntime-gpu==1.31.1
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
unzip -q -o -j "$cache"/onnxruntime_gpu-1.31.1-*.whl -d "$tmp" \
  onnxruntime/capi/libonnxruntime.so.1.31.1 onnxruntime/capi/libonnxruntime_providers_cuda.so \
  onnxruntime/capi/libonnxruntime_providers_shared.so
python3 bench/gpu/fatbin_keep_arch.py "$tmp/libonnxruntime_providers_cuda.so" 90 "$tmp/cuda90.so"
xz -9 -T1 -c "$tmp/cuda90.so" > "$out/cuda90.so.xz"
xz -9 -T2 -c "$tmp/libonnxruntime.so.1.31.1" > "$out/ort.so.xz"
cp "$tmp/libonnxruntime_providers_shared.so" "$out/"
cargo build --release --quiet -p inpaint-worker --features cuda --example sd_bench --example sd_batch_bench
for b in sd_bench sd_batch_bench; do
  strip -o "$tmp/$b" "target/release/examples/$b"
  xz -9 -c "$tmp/$b" > "$out/$b.xz"
done
python3 -m pip download --quiet --no-deps --only-binary=:all: -d "$out" diffusers==0.31.0
tar -C models/fixtures/tiny-sd/inpaint -cJf "$out/tok.tar.xz" tokenizer
du -cb "$out"/* | tail -1 | awk '{printf "packed %.1f MiB of the 64 MiB upload\n", $1 / 2^20}'
