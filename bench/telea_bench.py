#!/usr/bin/env python3
"""Our Telea against OpenCV's cv2.inpaint(..., INPAINT_TELEA), one run.

Makes cases from the real photos in models/cache/photos (holes in smooth and
textured areas, thin scratches, a face-sized box, squares of 64 and 128 px
on three photos), runs our engine (release
build, single thread) and OpenCV (cv2.setNumThreads(1)) on the same image
and mask with the same radius, and prints one key=value line per case:
  case=.. ours_ms=.. opencv_ms=.. ratio=.. ours_psnr=.. opencv_psnr=..
ratio = ours_ms / opencv_ms; PSNR in dB over the hole against the original.
"""
import argparse
import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np

import same_core

ROOT = Path(__file__).resolve().parent.parent
PHOTOS = ROOT / "models" / "cache" / "photos"


def box(shape, x, y, w, h):
    m = np.zeros(shape[:2], np.uint8)
    m[y:y + h, x:x + w] = 255
    return m


def scratches(shape, seed, count=12, thickness=3):
    rng = np.random.default_rng(seed)
    m = np.zeros(shape[:2], np.uint8)
    h, w = shape[:2]
    for _ in range(count):
        p0 = (int(rng.integers(0, w)), int(rng.integers(0, h)))
        p1 = (int(rng.integers(0, w)), int(rng.integers(0, h)))
        cv2.line(m, p0, p1, 255, thickness)
    return m


def cases():
    astro = cv2.imread(str(PHOTOS / "astronaut.png"))
    coffee = cv2.imread(str(PHOTOS / "coffee.png"))
    chelsea = cv2.imread(str(PHOTOS / "chelsea.png"))
    camera = cv2.imread(str(PHOTOS / "camera.png"))  # grey, loaded as 3 equal channels
    return {
        # Smooth backdrop left of the rocket.
        "astronaut_smooth_box": (astro, box(astro.shape, 330, 20, 24, 24)),
        "astronaut_backdrop_32": (astro, box(astro.shape, 330, 20, 32, 32)),
        "astronaut_face_box": (astro, box(astro.shape, 178, 63, 90, 113)),
        "astronaut_scratches": (astro, scratches(astro.shape, 1)),
        "coffee_scratches": (coffee, scratches(coffee.shape, 2)),
        "chelsea_textured_box": (chelsea, box(chelsea.shape, 40, 200, 40, 40)),
        "chelsea_scratches": (chelsea, scratches(chelsea.shape, 3)),
        "camera_sky_box": (camera, box(camera.shape, 300, 40, 40, 40)),
        "camera_scratches": (camera, scratches(camera.shape, 4, thickness=5)),
        # Large square holes: 64 and 128 px on three photos.
        "astronaut_square_64": (astro, box(astro.shape, 300, 300, 64, 64)),
        "astronaut_square_128": (astro, box(astro.shape, 280, 260, 128, 128)),
        "chelsea_square_64": (chelsea, box(chelsea.shape, 200, 120, 64, 64)),
        "chelsea_square_128": (chelsea, box(chelsea.shape, 150, 100, 128, 128)),
        "coffee_square_64": (coffee, box(coffee.shape, 250, 150, 64, 64)),
        "coffee_square_128": (coffee, box(coffee.shape, 200, 120, 128, 128)),
    }


def psnr_in(a, b, mask):
    sel = mask > 0
    d = a[sel].astype(np.float64) - b[sel].astype(np.float64)
    mse = float(np.mean(d * d))
    return float("inf") if mse == 0 else 10 * np.log10(255 * 255 / mse)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--radius", type=int, default=5)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--out", default=str(ROOT / "bench" / "out" / "telea"))
    args = ap.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    cv2.setNumThreads(1)
    core = same_core.pin()

    all_cases = cases()
    for name, (img, mask) in all_cases.items():
        # Both engines get the same damaged pixels (hole blacked out).
        damaged = img.copy()
        damaged[mask > 0] = 0
        cv2.imwrite(str(out / f"{name}.image.png"), damaged)
        cv2.imwrite(str(out / f"{name}.mask.png"), mask)

    bench = [str(ROOT / "target" / "release" / "examples" / "telea_bench"), str(out),
             str(args.radius), str(args.repeats), *all_cases]
    ours = {}
    for line in subprocess.run(bench, check=True, capture_output=True, text=True).stdout.splitlines():
        fields = dict(kv.split("=", 1) for kv in line.split())
        ours[fields["case"]] = float(fields["ours_ms"])

    ratios = []
    for name, (img, mask) in all_cases.items():
        damaged = img.copy()
        damaged[mask > 0] = 0
        best = float("inf")
        for _ in range(args.repeats):
            t0 = time.perf_counter()
            ref = cv2.inpaint(damaged, mask, args.radius, cv2.INPAINT_TELEA)
            best = min(best, (time.perf_counter() - t0) * 1e3)
        mine = cv2.imread(str(out / f"{name}.ours.png"))
        ratio = ours[name] / best
        ratios.append(ratio)
        print(f"case={name} holes_px={int((mask > 0).sum())} ours_ms={ours[name]:.3f} opencv_ms={best:.3f} "
              f"ratio={ratio:.3f} ours_psnr={psnr_in(img, mine, mask):.2f} "
              f"opencv_psnr={psnr_in(img, ref, mask):.2f}")
    geo = float(np.exp(np.mean(np.log(ratios))))
    print(f"summary=telea radius={args.radius} cases={len(ratios)} geomean_ratio={geo:.3f} core={core}")


if __name__ == "__main__":
    sys.exit(main())
