#!/usr/bin/env python3
"""Makes the demo's input: a sample photo with thin scratches and specks
drawn over it, as an old print scanned for restoration, and the mask of
what was drawn (what a retoucher paints over the damage). Deterministic.

Usage: demo_photo.py PHOTO OUT_DAMAGED.png OUT_MASK.png
"""
import math
import random
import sys
from pathlib import Path

from PIL import Image, ImageDraw

photo, out, out_mask = sys.argv[1], sys.argv[2], sys.argv[3]
for path in (out, out_mask):
    Path(path).parent.mkdir(parents=True, exist_ok=True)
img = Image.open(photo).convert("RGB")
w, h = img.size
mask = Image.new("L", img.size, 0)
draw, mdraw = ImageDraw.Draw(img), ImageDraw.Draw(mask)
rng = random.Random(7)
for _ in range(9):
    # A gently curving scratch across the print.
    x, y = rng.uniform(0, w), rng.uniform(0, h)
    angle, width = rng.uniform(0, math.pi), rng.choice([1, 2, 2, 3])
    points = []
    for _ in range(40):
        points.append((x, y))
        angle += rng.uniform(-0.08, 0.08)
        x, y = x + 9 * math.cos(angle), y + 9 * math.sin(angle)
    tone = rng.choice([(245, 245, 240), (30, 28, 25)])
    draw.line(points, fill=tone, width=width)
    mdraw.line(points, fill=255, width=width + 2)
for _ in range(60):
    # Dust specks.
    x, y, r = rng.uniform(0, w), rng.uniform(0, h), rng.uniform(1, 2.5)
    draw.ellipse((x - r, y - r, x + r, y + r), fill=(250, 250, 250))
    mdraw.ellipse((x - r - 1, y - r - 1, x + r + 1, y + r + 1), fill=255)
img.save(out)
mask.save(out_mask)
