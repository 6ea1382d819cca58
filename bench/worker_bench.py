#!/usr/bin/env python3
"""The worker's engines against references, one run. Every figure is one
line of key=value pairs:

 (a) quality inside the holes, smooth and textured cases apart:
     bench=quality case=.. kind=smooth|textured engine=.. psnr=.. ssim=..
     for our telea and patchmatch and OpenCV's Telea and Navier-Stokes;
 (b) time of our Telea vs OpenCV's Telea (single thread each):
     bench=telea_time case=.. ours_ms=.. ref_ms=.. ratio=..
 (c) the ONNX engine in Rust (pre-processing, session, post-processing) vs
     Python onnxruntime with numpy doing the same, same model and inputs:
     bench=onnx case=.. ours_ms=.. ref_ms=.. ratio=.. max_abs_diff=..
 (d) throughput of the batching queue, 32 concurrent crops:
     bench=throughput batch=1|4|16 crops_per_s=.. speedup_vs_1=..
"""
import subprocess
import time
from pathlib import Path

import cv2
import numpy as np
import onnxruntime as ort

ROOT = Path(__file__).resolve().parent.parent
PHOTOS = ROOT / "models" / "cache" / "photos"
OUT = ROOT / "bench" / "out" / "worker"
BIN = ROOT / "target" / "release" / "examples" / "worker_bench"
MODELS = ROOT / "models" / "worker-models.toml"
REPEATS = 3


def box(shape, x, y, w, h):
    m = np.zeros(shape[:2], np.uint8)
    m[y:y + h, x:x + w] = 255
    return m


def cases():
    astro = cv2.imread(str(PHOTOS / "astronaut.png"))
    chelsea = cv2.imread(str(PHOTOS / "chelsea.png"))
    coffee = cv2.imread(str(PHOTOS / "coffee.png"))
    camera = cv2.imread(str(PHOTOS / "camera.png"))
    return [
        ("astronaut_backdrop", "smooth", astro, box(astro.shape, 330, 20, 32, 32)),
        ("camera_sky", "smooth", camera, box(camera.shape, 300, 40, 40, 40)),
        ("chelsea_fur", "textured", chelsea, box(chelsea.shape, 40, 200, 40, 40)),
        ("coffee_table", "textured", coffee, box(coffee.shape, 450, 330, 40, 40)),
        ("astronaut_flag", "textured", astro, box(astro.shape, 20, 150, 40, 40)),
    ]


def psnr(a, b, mask):
    d = a[mask > 0].astype(np.float64) - b[mask > 0].astype(np.float64)
    mse = float(np.mean(d * d))
    return float("inf") if mse == 0 else 10 * np.log10(255 * 255 / mse)


def ssim(a, b, mask):
    """Mean SSIM (Wang et al. 2004, Gaussian window sigma 1.5, grey) over the hole."""
    x = cv2.cvtColor(a, cv2.COLOR_BGR2GRAY).astype(np.float64)
    y = cv2.cvtColor(b, cv2.COLOR_BGR2GRAY).astype(np.float64)
    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
    blur = lambda v: cv2.GaussianBlur(v, (11, 11), 1.5)
    mx, my = blur(x), blur(y)
    vx, vy, cxy = blur(x * x) - mx * mx, blur(y * y) - my * my, blur(x * y) - mx * my
    s = ((2 * mx * my + c1) * (2 * cxy + c2)) / ((mx * mx + my * my + c1) * (vx + vy + c2))
    return float(s[mask > 0].mean())


def best_ms(fn):
    fn()
    best = float("inf")
    for _ in range(REPEATS):
        t0 = time.perf_counter()
        fn()
        best = min(best, (time.perf_counter() - t0) * 1e3)
    return best


def run(*args):
    return subprocess.run([str(BIN), *map(str, args)], check=True, capture_output=True, text=True).stdout


def fields(line):
    return dict(kv.split("=", 1) for kv in line.split())


def quality_and_telea_time():
    OUT.mkdir(parents=True, exist_ok=True)
    all_cases = cases()
    for name, _, img, mask in all_cases:
        damaged = img.copy()
        damaged[mask > 0] = 0
        cv2.imwrite(str(OUT / f"{name}.image.png"), damaged)
        cv2.imwrite(str(OUT / f"{name}.mask.png"), mask)
    ours_ms = {}
    for line in run("quality", OUT, REPEATS, *[c[0] for c in all_cases]).splitlines():
        f = fields(line)
        ours_ms[(f["engine"], f["case"])] = float(f["ms"])
    cv2.setNumThreads(1)
    for name, kind, img, mask in all_cases:
        damaged = img.copy()
        damaged[mask > 0] = 0
        results = {e: cv2.imread(str(OUT / f"{name}.{e}.png")) for e in ("telea", "patchmatch")}
        results["opencv_telea"] = cv2.inpaint(damaged, mask, 5, cv2.INPAINT_TELEA)
        results["opencv_ns"] = cv2.inpaint(damaged, mask, 5, cv2.INPAINT_NS)
        for engine, out in results.items():
            print(f"bench=quality case={name} kind={kind} engine={engine} "
                  f"psnr={psnr(img, out, mask):.2f} ssim={ssim(img, out, mask):.4f}")
        ref = best_ms(lambda: cv2.inpaint(damaged, mask, 5, cv2.INPAINT_TELEA))
        mine = ours_ms[("telea", name)]
        print(f"bench=telea_time case={name} ours_ms={mine:.3f} ref_ms={ref:.3f} ratio={mine / ref:.3f}")
        print(f"bench=patchmatch_time case={name} ours_ms={ours_ms[('patchmatch', name)]:.3f}")


def onnx_vs_python():
    model = ROOT / "models" / "cache" / "pushpull" / "pushpull_lama.onnx"
    session = ort.InferenceSession(str(model), providers=["CPUExecutionProvider"])
    astro = cv2.imread(str(PHOTOS / "astronaut.png"))
    for name, size in (("crop_256", 256), ("crop_512", 512)):
        img = cv2.resize(astro, (size, size), interpolation=cv2.INTER_AREA)
        mask = box(img.shape, size // 3, size // 3, size // 4, size // 4)
        cv2.imwrite(str(OUT / f"{name}.rgb.png"), img)
        cv2.imwrite(str(OUT / f"{name}.hole.png"), mask)
        rgb = img[:, :, ::-1]

        def python_engine():
            x = np.ascontiguousarray(rgb.transpose(2, 0, 1)[None], dtype=np.float32) / 255.0
            m = (mask > 0).astype(np.float32)[None, None]
            y = session.run(None, {"image": x, "mask": m})[0][0]
            out = np.clip(np.round(y.transpose(1, 2, 0) * 255.0), 0, 255).astype(np.uint8)
            out[mask == 0] = rgb[mask == 0]
            return out

        ref = best_ms(python_engine)
        expected = python_engine()
        line = run("onnx", MODELS, "pushpull", OUT / f"{name}.rgb.png", OUT / f"{name}.hole.png", REPEATS,
                   OUT / f"{name}.onnx.png")
        mine = float(fields(line)["ms"])
        ours = cv2.imread(str(OUT / f"{name}.onnx.png"))[:, :, ::-1]
        diff = int(np.abs(ours.astype(int) - expected.astype(int)).max())
        print(f"bench=onnx case={name} ours_ms={mine:.3f} ref_ms={ref:.3f} ratio={mine / ref:.3f} "
              f"max_abs_diff={diff}")


def throughput():
    line_out = run("throughput", MODELS, "pushpull", OUT / "crop_256.rgb.png", OUT / "crop_256.hole.png", 32,
                   1, 4, 16)
    base = None
    for line in line_out.splitlines():
        f = fields(line)
        rate = float(f["crops_per_s"])
        base = base or rate
        print(f"bench=throughput batch={f['batch']} crops={f['crops']} batches_run={f['batches_run']} "
              f"crops_per_s={rate:.2f} speedup_vs_1={rate / base:.2f}")


if __name__ == "__main__":
    quality_and_telea_time()
    onnx_vs_python()
    throughput()
