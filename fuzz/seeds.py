#!/usr/bin/env python3
"""Writes the fuzz targets' starting corpus (fuzz/corpus/<target>/seed-*):
small PNG, JPEG and WebP files (one with an EXIF orientation, one 16-bit),
public messages encoded from protobuf text by protoc (grpcio-tools), mask
pipelines, detect phrases and prompts. Run once; what the fuzzer adds is
minimized with `cargo fuzz cmin` before it is committed."""
import io
import subprocess
import sys
from pathlib import Path

from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
CORPUS = ROOT / "fuzz" / "corpus"


def write(target: str, name: str, data: bytes) -> None:
    (CORPUS / target).mkdir(parents=True, exist_ok=True)
    (CORPUS / target / f"seed-{name}").write_bytes(data)


def encoded(message: str, text: str) -> bytes:
    out = subprocess.run(
        [sys.executable, "-m", "grpc_tools.protoc", f"-I{ROOT / 'proto'}",
         f"--encode=inpaint.v1.{message}", "inpaint/v1/gateway.proto"],
        input=text.encode(), capture_output=True, check=True)
    return out.stdout


def images() -> None:
    img = Image.new("RGB", (24, 16))
    for x in range(24):
        for y in range(16):
            img.putpixel((x, y), (x * 10, y * 15, 128 if (x + y) % 3 else 255))
    for fmt, extra in [("PNG", {}), ("JPEG", {"quality": 80}), ("WEBP", {"quality": 80})]:
        buf = io.BytesIO()
        img.save(buf, fmt, **extra)
        write("decode", fmt.lower(), buf.getvalue())
    exif = Image.Exif()
    exif[0x0112] = 6  # turned: 90 degrees clockwise to view
    buf = io.BytesIO()
    img.save(buf, "JPEG", exif=exif.tobytes())
    write("decode", "jpeg-orientation", buf.getvalue())
    buf = io.BytesIO()
    Image.new("I;16", (12, 8), 40000).save(buf, "PNG")
    write("decode", "png16", buf.getvalue())
    buf = io.BytesIO()
    Image.new("RGBA", (24, 16), (255, 0, 0, 128)).save(buf, "PNG")
    write("decode", "rgba", buf.getvalue())


def messages() -> None:
    write("request", "mask", encoded("SubmitJobsRequest", """
      jobs { request { image: "\\x89PNG" mask: "\\x89PNG" params { mask_blur: 4 engine: "telea" } } idempotency_key: "a" }"""))
    write("request", "faces-sd", encoded("SubmitJobsRequest", """
      jobs { request { faces { } params { engine: "sd" sd { prompt: "smiling" steps: 20 cfg_scale: 7 sampler: "euler_a" denoising_strength: 0.6 }
        region_overrides { region: 0 sd { prompt: "closed eyes" } } } } }"""))
    write("request", "detect-merged", encoded("SubmitJobsRequest", """
      jobs { request { detect { prompt: "faces and text" } params { region_mode: REGION_MODE_MERGED work_width: 768 work_height: 512 } } }"""))
    write("mask_ops", "pipeline", encoded("InpaintParams", """
      mask_ops { grow { pixels: 3 } } mask_ops { feather { radius: 2 sigma: 1 } } mask_ops { fill_holes { } }
      mask_ops { threshold { level: 100 } } mask_ops { invert { } } mask_ops { keep_largest { } }"""))
    write("mask_ops", "shrink-offset", encoded("InpaintParams", """
      mask_ops { grow { pixels: -2 } } mask_ops { offset { x: 3 y: -2 } } mask_ops { area_filter { min_ratio: 0.01 max_ratio: 0.9 } }
      mask_ops { combine { } }"""))


def texts() -> None:
    for i, phrase in enumerate(["faces", "faces and text", "the hands", "watermark", "all text, logos",
                                "the person on the left", "eyes and mouth"]):
        write("vocabulary", str(i), phrase.encode())
    for i, prompt in enumerate(["closed eyes, smiling", "(masterpiece:1.2), [blurry], a ((cat))",
                                "a \\(literal\\) bracket BREAK second chunk", "((unclosed (x:0.5",
                                "word, " * 90, "E, embedding E here"]):
        write("prompt", str(i), prompt.encode())


if __name__ == "__main__":
    images()
    messages()
    texts()
