#!/usr/bin/env python3
"""Puts a photo, the mask the cluster used (tinted red over the photo) and
the result side by side, cropped to the mask's surroundings, so a person
can see what was found and what became of it.

Usage: demo_strip.py PHOTO MASK.png RESULT.png OUT.png
"""
import sys

from PIL import Image

photo, mask_path, result_path, out = sys.argv[1:5]
original = Image.open(photo).convert("RGB")
mask = Image.open(mask_path).convert("L")
result = Image.open(result_path).convert("RGB")
x0, y0, x1, y1 = mask.getbbox()
pad = max(x1 - x0, y1 - y0) // 2
box = (max(0, x0 - pad), max(0, y0 - pad), min(original.width, x1 + pad), min(original.height, y1 + pad))
crops = [im.crop(box) for im in (original, mask, result)]
red = Image.new("RGB", crops[0].size, (255, 40, 40))
tinted = Image.composite(Image.blend(crops[0], red, 0.55), crops[0], crops[1])
w, h = crops[0].size
strip = Image.new("RGB", (3 * w + 20, h), (255, 255, 255))
for i, im in enumerate((crops[0], tinted, crops[2])):
    strip.paste(im, (i * (w + 10), 0))
strip.save(out, optimize=True)
print(f"wrote {out} (photo | mask used | result)")
