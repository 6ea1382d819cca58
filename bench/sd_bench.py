#!/usr/bin/env python3
"""Our Stable Diffusion pipeline against the Python reference path on the
same ONNX files, inputs, noise, sampler and steps: Python onnxruntime with
numpy doing the WebUI's img2img loop (k-diffusion's sigmas and sampler
formulas, CFG, latent blending). One line per case:

  bench=sd case=.. size=.. steps=.. ours_ms=.. ref_ms=.. ratio=..
      ours_step_ms=.. ref_step_ms=.. agreement_psnr_db=..

End to end (text encoding, VAE encode, sampling, VAE decode), medians of
REPEATS runs after a warm-up, ORT_THREADS threads per session on both sides
(default 1). diffusers' own OnnxStableDiffusionInpaintPipeline is not used:
it follows diffusers' strength rule, not the WebUI's, so it would not run
the same steps. MODEL=dir benchmarks another export (default: the tiny
fixture pipeline).
"""
import os
import subprocess
import time
from pathlib import Path

import numpy as np
import onnxruntime as ort
from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
MODEL = Path(os.environ.get("MODEL", ROOT / "models/fixtures/tiny-sd/inpaint"))
BIN = Path(os.environ.get("BIN", ROOT / "target" / "release" / "examples" / "sd_bench"))
# Where our side runs ("cuda" on a GPU machine; the reference stays on the CPU).
DEVICE = os.environ.get("SD_BENCH_DEVICE", "cpu")
OUT = ROOT / "bench" / "out" / "sd"
REPEATS = int(os.environ.get("REPEATS", "3"))
THREADS = int(os.environ.get("ORT_THREADS", "1"))
PROMPT = "a photo of a cat"  # the Rust side uses the same, negative ""
CASES = [("Euler", "normal", 64, 10), ("DPM++ 2M", "karras", 64, 10), ("Euler", "normal", 128, 10)]


def session(name):
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = THREADS
    return ort.InferenceSession(str(MODEL / name / "model.onnx"), opts, providers=["CPUExecutionProvider"])


class Ref:
    def __init__(self):
        self.text = session("text_encoder")
        self.unet = session("unet")
        self.enc = session("vae_encoder")
        self.dec = session("vae_decoder")
        betas = np.linspace(0.00085 ** 0.5, 0.012 ** 0.5, 1000, dtype=np.float64) ** 2
        ac = np.cumprod(1 - betas).astype(np.float32)
        self.sigmas = ((1 - ac) / ac) ** 0.5
        self.log_sigmas = np.log(self.sigmas)
        self.in_channels = self.unet.get_inputs()[0].shape[1]
        import json
        vocab = json.load(open(MODEL / "tokenizer/vocab.json"))
        self.bos, self.eos = vocab["<|startoftext|>"], vocab["<|endoftext|>"]

    def t_to_sigma(self, t):
        lo, hi = int(np.floor(t)), int(np.ceil(t))
        w = t - lo
        return float(np.exp((1 - w) * self.log_sigmas[lo] + w * self.log_sigmas[hi]))

    def sigma_to_t(self, s):
        ls = np.log(s)
        low = min(int(np.nonzero(self.log_sigmas <= ls)[0].max()) if (self.log_sigmas <= ls).any() else 0, 998)
        lo, hi = self.log_sigmas[low], self.log_sigmas[low + 1]
        w = np.clip((lo - ls) / (lo - hi), 0, 1)
        return float((1 - w) * low + w * (low + 1))

    def schedule(self, name, n):
        if name == "karras":
            ramp = np.linspace(0, 1, n)
            mn, mx = self.sigmas[0] ** (1 / 7), self.sigmas[-1] ** (1 / 7)
            s = (mx + ramp * (mn - mx)) ** 7
        else:
            s = np.array([self.t_to_sigma(t) for t in np.linspace(999, 0, n)])
        return np.append(s, 0.0).astype(np.float32)

    def encode_text(self, ids):
        return self.text.run(None, {"input_ids": np.array([ids], np.int64)})[0]

    def vae(self, img):
        return self.enc.run(None, {"sample": img})[0][:, :4] * 0.18215

    def run(self, image, mask, noise, sampler, schedule, steps, ids_cond, ids_uncond):
        size = image.shape[0]
        x_img = (image.astype(np.float32) / 255 * 2 - 1).transpose(2, 0, 1)[None]
        cond = np.concatenate([self.encode_text(ids_cond), self.encode_text(ids_uncond)])
        init = self.vae(x_img)
        lh = init.shape[2]
        f = size // lh
        small = Image.fromarray(mask).convert("RGB").resize((lh, lh))
        m_small = np.around(np.asarray(small, np.float32)[:, :, 0] / 255)
        paint = m_small[None, None]
        extra = None
        if self.in_channels == 9:
            full = (mask >= 128).astype(np.float32)
            masked = x_img * (1 - full[None, None])
            extra = np.concatenate([full[::f, ::f][None, None], self.vae(masked)], axis=1)
        sig = self.schedule(schedule, steps)
        x = init + noise * sig[0]
        old = None
        for i in range(steps):
            s, sn = float(sig[i]), float(sig[i + 1])
            xin = x / np.sqrt(s * s + 1)
            if extra is not None:
                xin = np.concatenate([xin, extra], axis=1)
            out = self.unet.run(None, {"sample": np.concatenate([xin, xin]).astype(np.float32),
                                       "timestep": np.array([self.sigma_to_t(s)] * 2, np.float32),
                                       "encoder_hidden_states": cond})[0]
            eps = out[1:] + (out[:1] - out[1:]) * 7.0
            d = x - eps * s
            d = d * paint + init * (1 - paint)
            if sampler == "Euler":
                x = x + (x - d) / s * (sn - s)
            else:
                t, tn = -np.log(s), (-np.log(sn) if sn > 0 else np.inf)
                h = tn - t
                if old is None or sn == 0:
                    x = (sn / s) * x - np.expm1(-h) * d
                else:
                    r = (t + np.log(float(sig[i - 1]))) / h
                    x = (sn / s) * x - np.expm1(-h) * ((1 + 1 / (2 * r)) * d - (1 / (2 * r)) * old)
                old = d
        x = x * paint + init * (1 - paint)
        img = self.dec.run(None, {"latent_sample": (x / 0.18215).astype(np.float32)})[0][0]
        return np.rint(np.clip((img + 1) / 2, 0, 1) * 255).astype(np.uint8).transpose(1, 2, 0)


def ids_for(tokens_json, prompt):
    import json
    cases = json.load(open(ROOT / "models/fixtures/tiny-sd/reference.json"))["tokenizer"]["cases"]
    for c in cases:
        if c["prompt"] == prompt:
            return c["ids"]
    raise SystemExit(f"no ids recorded for {prompt!r}")


def main():
    OUT.mkdir(parents=True, exist_ok=True)
    ref = Ref()
    # The prompts' ids as transformers gives them (the fixture recorded them).
    ids_cond = ids_for(None, PROMPT)
    ids_uncond = ids_for(None, "")
    for sampler, schedule, size, steps in CASES:
        y, x = np.mgrid[0:size, 0:size]
        image = np.stack([128 + 100 * np.sin(x / 9), 128 + 90 * np.cos(y / 7), 60 + 2.5 * x * 64 / size], -1)
        image = np.clip(np.rint(image), 0, 255).astype(np.uint8)
        mask = np.zeros((size, size), np.uint8)
        mask[size // 4: size * 3 // 4, size // 3: size * 5 // 6] = 255
        (OUT / "image.rgb").write_bytes(image.tobytes())
        (OUT / "mask.gray").write_bytes(mask.tobytes())
        env = dict(os.environ, ORT_THREADS=str(THREADS))
        line = subprocess.run([str(BIN), str(MODEL), str(OUT / "image.rgb"), str(OUT / "mask.gray"), str(size),
                               sampler, schedule, str(steps), str(REPEATS), str(OUT), DEVICE],
                              check=True, capture_output=True, text=True, env=env).stdout.strip().splitlines()[-1]
        ours = dict(kv.split("=") for kv in line.split())
        noise = np.frombuffer((OUT / "noise.f32").read_bytes(), np.float32).reshape(1, 4, size // 2, size // 2)
        times = []
        for _ in range(REPEATS + 1):
            start = time.perf_counter()
            result = ref.run(image, mask, noise, sampler, schedule, steps, ids_cond, ids_uncond)
            times.append((time.perf_counter() - start) * 1e3)
        ref_ms = sorted(times[1:])[len(times[1:]) // 2]
        our_img = np.frombuffer((OUT / "ours.rgb").read_bytes(), np.uint8).reshape(size, size, 3)
        mse = np.mean((our_img.astype(np.float64) - result.astype(np.float64)) ** 2)
        psnr = float("inf") if mse == 0 else 10 * np.log10(255 ** 2 / mse)
        ours_ms = float(ours["ours_ms"])
        print(f"bench=sd case={sampler.replace(' ', '_')}-{schedule} size={size} steps={steps} device={ours['device']} "
              f"ours_ms={ours_ms:.1f} ref_ms={ref_ms:.1f} ratio={ours_ms / ref_ms:.2f} "
              f"ours_step_ms={float(ours['per_step_ms']):.2f} ours_outside_unet_share={ours['outside_unet_share']} "
              f"agreement_psnr_db={psnr:.1f}")


if __name__ == "__main__":
    main()
