"""make bench-photos: a 48-megapixel JPEG (8000x6000, faces pasted at a few
places on a scaled-up photo) with every face pixelated, end to end: our
command (`inpaint run --faces --engine pixelate`, the whole cluster in one
process) against a Python reference doing the same work with Pillow
(decode, encode at quality 90, our default) and OpenCV (YuNet at 640 on the
longer side, as ours; each face box pixelated in blocks of 1/8 of its
longer side, as ours). Each side runs in its own process, timed and its
peak resident memory read from wait4(); the median of REPEATS runs.

Prints `bench=photos case=.. size=.. ours_ms=.. ref_ms=.. ratio=..
ours_peak_mib=.. ref_peak_mib=.. faces_ours=.. faces_ref=.. box_iou=..`
(box_iou: mean best IoU of our faces against the reference's).
"""
import json
import os
import re
import statistics
import subprocess
import sys
import time
from pathlib import Path

from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "bench" / "out" / "photos"
PHOTOS = ROOT / "models" / "cache" / "photos"
BIN = ROOT / "target" / "release" / "inpaint"
REPEATS = int(os.environ.get("REPEATS", "3"))

REFERENCE = r'''
import json, sys
import cv2, numpy as np
from PIL import Image
src, dst, model = sys.argv[1:4]
photo = np.asarray(Image.open(src).convert("RGB"))
h, w = photo.shape[:2]
scale = 640 / max(w, h)
small = cv2.resize(photo, (round(w * scale), round(h * scale)), interpolation=cv2.INTER_AREA)
detector = cv2.FaceDetectorYN.create(model, "", (small.shape[1], small.shape[0]), 0.6, 0.3)
_, faces = detector.detect(cv2.cvtColor(small, cv2.COLOR_RGB2BGR))
out = photo.copy()
boxes = []
for f in faces if faces is not None else []:
    x, y, bw, bh = (int(round(v / scale)) for v in f[:4])
    x, y = max(x, 0), max(y, 0)
    bw, bh = min(bw, w - x), min(bh, h - y)
    boxes.append([x, y, bw, bh])
    block = max(-(-max(bw, bh) // 8), 4)
    for by in range(y, y + bh, block):
        for bx in range(x, x + bw, block):
            cell = out[by:min(by + block, y + bh), bx:min(bx + block, x + bw)]
            cell[:] = photo[by:by + block, bx:bx + block].reshape(-1, 3).mean(0)
Image.fromarray(out).save(dst, quality=90)
print(json.dumps(boxes))
'''


def make_photo(path: Path):
    """8000x6000: coffee scaled up, Zidane and the bus photo at twice their
    size and the astronaut as is pasted on it (faces of 100-370 pixels)."""
    if path.exists():
        return
    canvas = Image.open(PHOTOS / "coffee.png").convert("RGB").resize((8000, 6000), Image.BICUBIC)
    for name, scale, at in [("zidane.jpg", 2, (400, 300)), ("bus.jpg", 2, (4500, 3200)),
                            ("astronaut.png", 1, (3300, 4800))]:
        piece = Image.open(PHOTOS / name).convert("RGB")
        canvas.paste(piece.resize((piece.width * scale, piece.height * scale), Image.BICUBIC), at)
    canvas.save(path, quality=92)


def measured(cmd):
    """(wall ms, peak RSS MiB, stdout) of one process."""
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    stdout = proc.stdout.read()
    _, status, usage = os.wait4(proc.pid, 0)
    wall = (time.perf_counter() - start) * 1e3
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"failed: {' '.join(map(str, cmd))}")
    return wall, usage.ru_maxrss / 1024, stdout


def iou(a, b):
    ix = max(0, min(a[0] + a[2], b[0] + b[2]) - max(a[0], b[0]))
    iy = max(0, min(a[1] + a[3], b[1] + b[3]) - max(a[1], b[1]))
    inter = ix * iy
    return inter / (a[2] * a[3] + b[2] * b[3] - inter) if inter else 0.0


def median_run(cmd):
    runs = [measured(cmd) for _ in range(REPEATS)]
    return statistics.median(r[0] for r in runs), max(r[1] for r in runs), runs[-1][2]


def main():
    OUT.mkdir(parents=True, exist_ok=True)
    photo = OUT / "photo48.jpg"
    make_photo(photo)
    ours_ms, ours_peak, ours_out = median_run(
        [str(BIN), "run", str(photo), "--faces", "--engine", "pixelate", "-o", str(OUT / "ours.jpg")])
    ours_faces = [[int(v) for v in m] for m in
                  re.findall(r"region face score=\S+ box=(\d+),(\d+) (\d+)x(\d+)", ours_out)]
    model = ROOT / "models" / "cache" / "yunet" / "face_detection_yunet_2023mar.onnx"
    ref_ms, ref_peak, ref_out = median_run(
        [sys.executable, "-c", REFERENCE, str(photo), str(OUT / "reference.jpg"), str(model)])
    ref_faces = json.loads(ref_out.strip().splitlines()[-1])
    agreement = statistics.mean(max((iou(a, b) for b in ref_faces), default=0.0) for a in ours_faces) \
        if ours_faces else 0.0
    print(f"bench=photos case=48mp-faces-pixelate size=8000x6000 ours_ms={ours_ms:.0f} ref_ms={ref_ms:.0f} "
          f"ratio={ours_ms / ref_ms:.2f} ours_peak_mib={ours_peak:.0f} ref_peak_mib={ref_peak:.0f} "
          f"faces_ours={len(ours_faces)} faces_ref={len(ref_faces)} box_iou={agreement:.3f}")


if __name__ == "__main__":
    main()
