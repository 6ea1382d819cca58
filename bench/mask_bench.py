#!/usr/bin/env python3
"""Our mask operators against OpenCV's on the same 4096x4096 mask (or, with
--kernels resize, our RGB resize against cv2.resize on the same photo-like
images), one run, one thread each (cv2.setNumThreads(1); ours are
single-threaded).

Prints one line per operator and radius, with how far the two outputs
agree beside the times:
  op=NAME radius=R work=same|approx|different ours_ms=X opencv_ms=Y ratio=X/Y
      agree=FRACTION max_diff=D mean_diff=M
`agree` is the fraction of equal pixels, `max_diff`/`mean_diff` the largest
and mean absolute difference in grey levels. Threshold writes into an
existing buffer on both sides (OpenCV: dst=); dilate, erode and the blur
allocate their output on both sides. work=approx: ours is a different
computation of the same thing (the disc is Euclidean where OpenCV's
MORPH_ELLIPSE is a digitised ellipse; beyond radius 12 our Gaussian is a
3-box cascade, OpenCV's an exact kernel). work=different: components
(ours: boxes and pixel counts; OpenCV: also the full label image and
centroids), compared on the components' count and their boxes.
"""
import argparse
import subprocess
import time
from pathlib import Path

import cv2
import numpy as np

import same_core

ROOT = Path(__file__).resolve().parent.parent
SIZE = 4096


def make_mask(seed=0):
    rng = np.random.default_rng(seed)
    m = np.zeros((SIZE, SIZE), np.uint8)
    for _ in range(300):
        centre = (int(rng.integers(0, SIZE)), int(rng.integers(0, SIZE)))
        cv2.circle(m, centre, int(rng.integers(5, 150)), 255, -1)
    for _ in range(200):
        p0 = (int(rng.integers(0, SIZE)), int(rng.integers(0, SIZE)))
        p1 = (int(rng.integers(0, SIZE)), int(rng.integers(0, SIZE)))
        cv2.line(m, p0, p1, 255, int(rng.integers(1, 12)))
    return m


# Resize cases (op, source size, destination size), as in the example.
RESIZES = [
    ("resize_up", (1024, 768), (2048, 1536)),
    ("resize_down", (1024, 768), (512, 384)),
    ("resize_photo_to_640", (4000, 3000), (640, 480)),
]


def make_photo(w, h, seed=1):
    """A photo-like RGB image: smooth gradients, edges and grain."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    base = np.stack([128 + 100 * np.sin(x / 97 + c) * np.cos(y / 61 - c) for c in range(3)], axis=-1)
    base[(x // 200 + y // 150) % 2 == 0] *= 0.6
    grain = rng.normal(0, 12, size=(h, w, 3))
    return np.clip(base + grain, 0, 255).astype(np.uint8)


def best_ms(fn, repeats):
    fn()  # warm-up, untimed (ours does the same)
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        best = min(best, (time.perf_counter() - t0) * 1e3)
    return best


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--radii", default="4,16,64")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--kernels", choices=["mask", "resize"], default="mask",
                    help="mask: the mask operators (make bench-mask); resize: the RGB resize (make bench-resize)")
    ap.add_argument("--out", default=str(ROOT / "bench" / "out" / "mask"))
    args = ap.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    cv2.setNumThreads(1)
    core = same_core.pin()
    radii = [int(r) for r in args.radii.split(",")]

    m = make_mask()
    cv2.imwrite(str(out / "mask.png"), m)
    photos = {size: make_photo(*size) for size in {src for _, src, _ in RESIZES}}
    for (w, h), photo in photos.items():
        photo.tofile(out / f"photo_{w}x{h}.rgb")
    resizes = [(op, dst, photos[src]) for op, src, dst in RESIZES]
    cmd = [str(ROOT / "target" / "release" / "examples" / "mask_bench"), str(out / "mask.png"), str(out),
           str(args.repeats), *map(str, radii)]
    ours = {}
    for line in subprocess.run(cmd, check=True, capture_output=True, text=True).stdout.splitlines():
        f = dict(kv.split("=", 1) for kv in line.split())
        if "kernels" in f:
            # Which instruction set our kernels picked at run time.
            # OpenCV's line: baseline features, then *dispatched ones.
            features = cv2.getCPUFeaturesLine().replace(" ", ",")
            print(f"kernels={f['kernels']} opencv_cpu_features={features} core={core}")
            continue
        ours[(f["op"], int(f["radius"]))] = float(f["ours_ms"])

    def report(op, radius, ref_ms, work, mine=None, ref=None, extra=""):
        ms = ours[(op, radius)]
        agreement = ""
        if mine is not None:
            d = np.abs(mine.astype(np.int16) - ref.astype(np.int16))
            agreement = f" agree={np.mean(d == 0):.5f} max_diff={int(d.max())} mean_diff={d.mean():.4f}"
        print(f"op={op} radius={radius} work={work} ours_ms={ms:.3f} opencv_ms={ref_ms:.3f} "
              f"ratio={ms / ref_ms:.3f}{agreement}{extra}")

    def ours_bin(name):
        return np.fromfile(out / f"{name}.bin", np.uint8).reshape(m.shape)

    if args.kernels == "resize":
        for op, (dw, dh), photo in resizes:
            # OpenCV's own choice for each direction, as ours: INTER_LINEAR
            # to grow, INTER_AREA to shrink.
            interp = cv2.INTER_LINEAR if dw > photo.shape[1] else cv2.INTER_AREA
            ref = cv2.resize(photo, (dw, dh), interpolation=interp)
            ms = best_ms(lambda: cv2.resize(photo, (dw, dh), interpolation=interp), args.repeats)
            mine = np.fromfile(out / f"{op}_0.bin", np.uint8).reshape(ref.shape)
            report(op, 0, ms, "approx", mine, ref)
        return
    dst = np.empty_like(m)
    for r in radii:
        kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * r + 1, 2 * r + 1))
        for op, fn in (("dilate", cv2.dilate), ("erode", cv2.erode)):
            ref = fn(m, kernel)
            ms = best_ms(lambda: fn(m, kernel), args.repeats)
            report(op, r, ms, "approx", ours_bin(f"{op}_{r}"), ref)
        ksize = 2 * r + 1
        ref = cv2.GaussianBlur(m, (ksize, ksize), 0)
        ms = best_ms(lambda: cv2.GaussianBlur(m, (ksize, ksize), 0), args.repeats)
        report("gaussian", r, ms, "same" if r <= 12 else "approx", ours_bin(f"gaussian_{r}"), ref)
    ref = cv2.threshold(m, 127, 255, cv2.THRESH_BINARY)[1]
    ms = best_ms(lambda: cv2.threshold(m, 127, 255, cv2.THRESH_BINARY, dst=dst), args.repeats)
    report("threshold", 0, ms, "same", ours_bin("threshold_0"), ref)
    n, _, stats, _ = cv2.connectedComponentsWithStats(m, connectivity=8)
    ms = best_ms(lambda: cv2.connectedComponentsWithStats(m, connectivity=8), args.repeats)
    theirs = {tuple(int(v) for v in row) for row in stats[1:, :5]}
    lines = (out / "components_0.txt").read_text().split("\n")
    mine = {tuple(int(v) for v in line.split()) for line in lines if line}
    report("components", 0, ms, "different",
           extra=f" count_ours={len(mine)} count_opencv={n - 1} same_boxes_and_areas={len(mine & theirs) / max(len(theirs), 1):.5f}")


if __name__ == "__main__":
    main()
