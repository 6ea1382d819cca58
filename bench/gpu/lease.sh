#!/usr/bin/env bash
# The device side of a GPU lease (see pack.sh), in two calls of under 600 s:
#   bash bench/gpu/lease.sh build   unpacks .gpu/ and builds the full-size
#     random-weight SD 1.5-shaped pipelines with tiny_sd.py --full (the
#     plain fp16 export, and inpaint-ort: ONNX Runtime's SD recipe) while
#     the libraries unpack;
#   bash bench/gpu/lease.sh bench   runs bench/gpu/sd.sh on them
#     (SD_GPU_QUICK=1 first: the fused pipeline and the unfused one
#     step-batched side by side, and nothing else).
# Everything lives under target/gpu-lease, which stays between the calls
# of one warm lease. No argument: both, one after the other.
set -u
cd "$(dirname "$0")/../.."
t0=$(date +%s)
log() { echo "[$(( $(date +%s) - t0 ))s] $*"; }
G=$PWD/target/gpu-lease
phase=${1:-all}
if [ "$phase" = build ] || [ "$phase" = all ]; then
  rm -f $G/build.rc
  mkdir -p $G/lib $G/bin $G/site
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target $G/site .gpu/diffusers-*.whl
  mkdir -p models/fixtures/tiny-sd/inpaint && tar -C models/fixtures/tiny-sd/inpaint -xJf .gpu/tok.tar.xz
  ( PYTHONPATH=$G/site timeout 540 python3 models/build/tiny_sd.py --full $G/sd-full --device cuda > $G/build.log 2>&1
    echo $? > $G/build.rc ) &
  xz -dc .gpu/cuda90.so.xz > $G/lib/libonnxruntime_providers_cuda.so
  xz -dc .gpu/ort.so.xz > $G/lib/libonnxruntime.so.1.31.1
  cp .gpu/libonnxruntime_providers_shared.so $G/lib/
  ln -sf libonnxruntime.so.1.31.1 $G/lib/libonnxruntime.so
  for b in sd_bench sd_batch_bench; do xz -dc .gpu/$b.xz > $G/bin/$b; chmod +x $G/bin/$b; done
  log "libraries unpacked"
  while [ ! -f $G/build.rc ]; do sleep 2; done
  log "pipelines built, status $(cat $G/build.rc)"
  grep '^bench=\|^fused\|skipped' $G/build.log
  if [ "$(cat $G/build.rc)" != 0 ]; then tail -40 $G/build.log; exit 1; fi
fi
if [ "$phase" = bench ] || [ "$phase" = all ]; then
  SD_FULL=$G/sd-full ORT_GPU_DIR=$G/lib SD_BENCH=$G/bin/sd_bench SD_BATCH_BENCH=$G/bin/sd_batch_bench \
    bash bench/gpu/sd.sh
fi
log done
