#!/usr/bin/env python3
"""Our mask operators against OpenCV's on the same 4096x4096 mask, one run,
one thread each (cv2.setNumThreads(1); ours are single-threaded).

Prints one line per operator and radius:
  op=NAME radius=R ours_ms=X opencv_ms=Y ratio=X/Y [agree=FRACTION]
Both sides write dilate, erode, threshold and blur results into an existing
buffer (OpenCV: dst=), so neither pays for fresh pages.
`agree` is the fraction of pixels where our dilate/erode (Euclidean disc)
equals OpenCV's with MORPH_ELLIPSE (2r+1); the two discs differ at the rim.
"""
import argparse
import subprocess
import time
from pathlib import Path

import cv2
import numpy as np

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
    ap.add_argument("--out", default=str(ROOT / "bench" / "out" / "mask"))
    args = ap.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    cv2.setNumThreads(1)
    radii = [int(r) for r in args.radii.split(",")]

    m = make_mask()
    cv2.imwrite(str(out / "mask.png"), m)
    cmd = [str(ROOT / "target" / "release" / "examples" / "mask_bench"), str(out / "mask.png"), str(out),
           str(args.repeats), *map(str, radii)]
    ours = {}
    for line in subprocess.run(cmd, check=True, capture_output=True, text=True).stdout.splitlines():
        f = dict(kv.split("=", 1) for kv in line.split())
        ours[(f["op"], int(f["radius"]))] = float(f["ours_ms"])

    def report(op, radius, ref_ms, agree=None):
        mine = ours[(op, radius)]
        extra = f" agree={agree:.5f}" if agree is not None else ""
        print(f"op={op} radius={radius} ours_ms={mine:.3f} opencv_ms={ref_ms:.3f} ratio={mine / ref_ms:.3f}{extra}")

    dst = np.empty_like(m)
    for r in radii:
        kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * r + 1, 2 * r + 1))
        for op, fn in (("dilate", cv2.dilate), ("erode", cv2.erode)):
            ref = fn(m, kernel)
            ms = best_ms(lambda: fn(m, kernel, dst=dst), args.repeats)
            mine = np.fromfile(out / f"{op}_{r}.bin", np.uint8).reshape(m.shape)
            report(op, r, ms, float(np.mean(mine == ref)))
        ksize = 2 * r + 1
        report("gaussian", r, best_ms(lambda: cv2.GaussianBlur(m, (ksize, ksize), 0, dst=dst), args.repeats))
    report("threshold", 0, best_ms(lambda: cv2.threshold(m, 127, 255, cv2.THRESH_BINARY, dst=dst), args.repeats))
    report("components", 0, best_ms(lambda: cv2.connectedComponentsWithStats(m, connectivity=8), args.repeats))


if __name__ == "__main__":
    main()
