#!/usr/bin/env python3
"""Builds the tiny random-weight Stable Diffusion pipelines the tests use,
and the reference numbers our Rust engine is checked against.

Nothing is downloaded: the models are made from configurations (diffusers'
own test sizes, fixed seeds) and exported to ONNX in the diffusers/optimum
layout that operators bring; the CLIP vocabulary is derived from the BPE
file the `open_clip_torch` wheel ships. Needs the heavy stack in
models/build/requirements-sd.txt (torch, diffusers, transformers, onnx,
onnxruntime, open_clip_torch, k-diffusion); `make test` and CI never do:
the outputs are committed under models/fixtures/tiny-sd with sha256 in
models/manifest.toml.

Written out:
  inpaint/         9-channel inpainting pipeline (model_index.json,
                   tokenizer/ vocab.json + merges.txt, text_encoder/,
                   unet/ (timestep float [B]), vae_encoder/ (mean and
                   log-variance), vae_decoder/, scheduler/)
  unet4/model.onnx 4-channel UNet (timestep int64 scalar, input_ids of the
                   shared text encoder as they are), for a regular checkpoint
  ort-optimized/   the 9-channel UNet (same weights) exported with the classic
                   attention and put through ONNX Runtime's transformer
                   optimizer, as operators optimize SD pipelines for it:
                   unet-fp32/ with the fusions the CPU runs (Attention,
                   MultiHeadAttention, SkipLayerNormalization), unet-fp16/
                   the same converted to float16 (inputs and outputs too)
  reference.json   torch.randn draws, k-diffusion sigmas and sampler
                   trajectories on a closed-form denoiser, tokenizer ids,
                   and whole WebUI-rule img2img inpainting runs on both
                   UNets (the reference implementation below, on
                   onnxruntime with the same graphs)

The reference loop follows the WebUI's img2img inpainting as its sources
read (modules/processing.py StableDiffusionProcessingImg2Img.init/sample,
sd_samplers_kdiffusion.py and sd_samplers_timesteps.py sample_img2img,
sd_samplers_timesteps_impl.py ddim, sd_samplers_cfg_denoiser.py,
sd_samplers_common.setup_img2img_steps, rng.py), written here from those
descriptions, with k-diffusion's own samplers and schedules.

Usage: tiny_sd.py OUT_DIR   (deterministic for a given torch and
                             onnxruntime version)
       tiny_sd.py --ort-optimized OUT_DIR   only the ort-optimized/ UNets
       tiny_sd.py --full OUT_DIR [--device cuda]
         a full-size SD 1.5-shaped inpainting pipeline with random weights,
         fp16 on CUDA (fp32 on the CPU), for GPU benchmarks: graphs only, no
         reference numbers (needs torch, diffusers, transformers, onnx); on
         CUDA also OUT_DIR/inpaint-ort, the same pipeline whose UNet was
         exported in fp32, optimized with every CUDA fusion of ONNX
         Runtime's optimizer and converted to fp16 (its SD recipe; --ort
         makes it on the CPU too, to check the recipe without a GPU: the
         optimizer holds the 3.4 GB fp32 graph several times over and was
         killed at 24 GB, two thirds through its fusions, on our 2-core
         machine; the GPU machines have 128 GiB).
"""
import gzip
import importlib.machinery
import importlib.util
import json
import os
import site
import sys
import types
from pathlib import Path

import numpy as np
import torch

OPSET = 17
SEED_MODELS = 0
IMAGE = 64  # pixels; the tiny VAE downsamples by 2 -> latents 32x32


def load_k_diffusion():
    """k-diffusion's sampling module without its training-time imports."""
    for base in site.getsitepackages():
        root = os.path.join(base, "k_diffusion")
        if os.path.isdir(root):
            break
    else:
        sys.exit("pip install --no-deps k-diffusion==0.1.1.post1 torchsde torchdiffeq scipy")
    pkg = types.ModuleType("k_diffusion")
    pkg.__path__ = [root]
    pkg.__spec__ = importlib.machinery.ModuleSpec("k_diffusion", None, is_package=True)
    sys.modules["k_diffusion"] = pkg
    mods = {}
    for name in ["utils", "sampling", "external"]:
        spec = importlib.util.spec_from_file_location(f"k_diffusion.{name}", os.path.join(root, f"{name}.py"))
        mod = importlib.util.module_from_spec(spec)
        sys.modules[spec.name] = mod
        spec.loader.exec_module(mod)
        mods[name] = mod
    return mods["sampling"], mods["external"]


# k-diffusion's modules, loaded in main() (the --full mode needs none).
K = KEXT = None


# ---------------------------------------------------------------- tokenizer
def bytes_to_unicode():
    """GPT-2's byte-level alphabet, in its order: the printable bytes stand
    for themselves and come first; the others follow, standing for the code
    points from 256 on."""
    printable = (list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1))
                 + list(range(ord("®"), ord("ÿ") + 1)))
    rest = [b for b in range(256) if b not in printable]
    return dict(zip(printable + rest, [chr(b) for b in printable] + [chr(256 + i) for i in range(len(rest))]))


def write_vocab(tok_dir: Path):
    import open_clip

    bpe = Path(open_clip.__file__).parent / "bpe_simple_vocab_16e6.txt.gz"
    lines = gzip.open(bpe).read().decode("utf-8").split("\n")
    merges = lines[1:49152 - 256 - 2 + 1]
    symbols = list(bytes_to_unicode().values())
    vocab = symbols + [s + "</w>" for s in symbols]
    vocab += ["".join(m.split()) for m in merges]
    vocab += ["<|startoftext|>", "<|endoftext|>"]
    assert len(vocab) == 49408
    tok_dir.mkdir(parents=True, exist_ok=True)
    (tok_dir / "vocab.json").write_text(json.dumps({t: i for i, t in enumerate(vocab)}, ensure_ascii=False))
    (tok_dir / "merges.txt").write_text("#version: 0.2\n" + "\n".join(merges) + "\n")
    config = {
        "model_max_length": 77,
        "bos_token": "<|startoftext|>",
        "eos_token": "<|endoftext|>",
        "pad_token": "<|endoftext|>",
        "unk_token": "<|endoftext|>",
        "do_lower_case": True,
        "tokenizer_class": "CLIPTokenizer",
    }
    (tok_dir / "tokenizer_config.json").write_text(json.dumps(config, indent=1))


def tokenizer_prompts():
    base = [
        "a photo of a cat", "closed eyes, smiling", "A Portrait Of An Old Man, highly detailed",
        "masterpiece, best quality, 1girl, solo, looking at viewer",
        "(masterpiece:1.2), ((best quality)), [blurry]", "red-haired woman; green eyes!",
        "don't stop", "it's 3:45pm and 22.5°C", "100% cotton t-shirt", "the year 2024",
        "naïve café résumé", "ÆØÅ æøå", "Straße", "ĳ ŉ", "你好，世界", "一只猫坐在桌子上",
        "東京タワー", "한국어 문장", "Привет, мир", "مرحبا بالعالم", "שלום", "🙂🙃 smile",
        "👨‍👩‍👧‍👦 family", "🐱🐶", "fire 🔥 and ice ❄️", "x" * 40, "word " * 30,
        "tab\tseparated\twords", "line\nbreaks\n\nhere", "  leading and trailing  ",
        "multiple     spaces", "hyphen-ated-words", "under_scored_words", "CamelCaseWords",
        "UPPER CASE SHOUT", "a,b,c,d,e,f", "!!!???...", "#hashtag @mention", "e-mail: a@b.co",
        "https://example.com/path?q=1", "C:\\path\\to\\file", "1+1=2", "3.14159265358979",
        "0123456789", "1,000,000", "$19.99", "½ ¾ ⅓", "x² + y² = z²", "α β γ δ",
        "<|startoftext|>", "<|endoftext|>", "", " ", "a", "I", "'s 't 're 've 'm 'll 'd",
        "he's here, they're there, we've gone", "rock'n'roll", "o'clock",
    ]
    adjectives = ["beautiful", "dark", "ancient", "glowing", "tiny", "enormous", "rusty", "golden",
                  "misty", "vibrant"]
    nouns = ["castle", "forest", "robot", "dragon", "city at night", "portrait", "mountain lake",
             "spaceship", "garden", "library"]
    styles = ["oil painting", "photograph, 35mm", "digital art", "watercolor", "anime style"]
    made = []
    for i, a in enumerate(adjectives):
        for j, n in enumerate(nouns):
            made.append(f"a {a} {n}, {styles[(i + j) % len(styles)]}")
    long = ", ".join(f"{adjectives[i % 10]} {nouns[(i * 3) % 10]}" for i in range(40))
    made += [long, long.upper(), long.replace(", ", " BREAK ")]
    made += [f"{p} {q}" for p, q in zip(base[::3], base[1::3])]
    made += [f"{i} {nouns[i % 10]}s at {i * 7}px, f/{i / 10:.1f}, ({styles[i % 5]}:1.{i % 10})" for i in range(40)]
    prompts = base + made
    assert len(prompts) >= 200, len(prompts)
    return prompts


def tokenizer_reference(tok_dir: Path):
    from transformers import CLIPTokenizer as CLIPTokenizerFast

    tok = CLIPTokenizerFast(str(tok_dir / "vocab.json"), str(tok_dir / "merges.txt"),
                            pad_token="<|endoftext|>")
    cases = []
    for p in tokenizer_prompts():
        window = tok(p, padding="max_length", max_length=77, truncation=True).input_ids
        raw = tok(p, add_special_tokens=False).input_ids
        cases.append({"prompt": p, "ids": window, "raw": raw})
    return {"matches": f"transformers {__import__('transformers').__version__} CLIPTokenizer (tokenizers backend, no ftfy)", "cases": cases}


# ---------------------------------------------------------------- models
def build_models():
    from diffusers import AutoencoderKL, UNet2DConditionModel
    from diffusers.models.attention_processor import AttnProcessor
    from transformers import CLIPTextConfig, CLIPTextModel

    def unet(in_channels):
        torch.manual_seed(SEED_MODELS)
        return UNet2DConditionModel(
            block_out_channels=(32, 64), layers_per_block=1, sample_size=32,
            in_channels=in_channels, out_channels=4,
            down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
            up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"), cross_attention_dim=32,
        ).eval()

    torch.manual_seed(SEED_MODELS)
    vae = AutoencoderKL(
        block_out_channels=[32, 64], in_channels=3, out_channels=3,
        down_block_types=["DownEncoderBlock2D", "DownEncoderBlock2D"],
        up_block_types=["UpDecoderBlock2D", "UpDecoderBlock2D"], latent_channels=4,
    ).eval()
    torch.manual_seed(SEED_MODELS)
    text = CLIPTextModel(CLIPTextConfig(
        bos_token_id=49406, eos_token_id=49407, pad_token_id=49407, hidden_size=32,
        intermediate_size=37, layer_norm_eps=1e-05, num_attention_heads=4,
        num_hidden_layers=5, vocab_size=49408,
    )).eval()
    return text, unet(9), unet(4), vae


def ort_optimize(src: Path, dst: Path, cuda: bool, float16: bool):
    """ONNX Runtime's optimizer on an fp32 UNet exported with the classic
    attention, as its SD recipe runs it (fuse first: the fusions do not
    match fp16 graphs; then convert, inputs and outputs included). With
    cuda=False only the fusions the CPU has kernels for (no NhwcConv,
    GroupNorm, BiasSplitGelu, BiasAdd, packed QKV)."""
    from onnxruntime.transformers.fusion_options import FusionOptions
    from onnxruntime.transformers.optimizer import optimize_model

    options = FusionOptions("unet")
    if not cuda:
        for name in ["nhwc_conv", "group_norm", "skip_group_norm", "bias_splitgelu", "bias_add",
                     "packed_qkv", "packed_kv"]:
            setattr(options, f"enable_{name}", False)
    m = optimize_model(str(src), model_type="unet", num_heads=0, hidden_size=0, opt_level=0,
                       optimization_options=options, use_gpu=cuda)
    fused = m.get_fused_operator_statistics()
    print(f"fused {dst.parent.name}: {fused}", flush=True)
    attention = fused.get("Attention", 0) + fused.get("MultiHeadAttention", 0)
    assert attention > 0, f"no attention fused in {src}"
    if float16:
        m.convert_float_to_float16(keep_io_types=False)
    dst.parent.mkdir(parents=True, exist_ok=True)
    # The full-size fp32 graph is over protobuf's 2 GB: its weights go beside it.
    m.save_model_to_file(str(dst), use_external_data_format=cuda)


def build_ort_optimized(out: Path):
    """The 9-channel UNet of build_models (same seed, same weights) with the
    classic attention, optimized for ONNX Runtime's CPU in fp32 and fp16."""
    import tempfile

    from diffusers.models.attention_processor import AttnProcessor

    unet9 = build_models()[1]
    unet9.set_attn_processor(AttnProcessor())
    with tempfile.TemporaryDirectory() as tmp:
        plain = Path(tmp) / "model.onnx"
        with torch.no_grad():
            export_unet9(unet9, plain, 32, 32)
        ort_optimize(plain, out / "ort-optimized/unet-fp32/model.onnx", cuda=False, float16=False)
        ort_optimize(plain, out / "ort-optimized/unet-fp16/model.onnx", cuda=False, float16=True)


def export(model, args, path: Path, inputs, outputs, axes):
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.onnx.export(model, args, str(path), input_names=inputs, output_names=outputs,
                      dynamic_axes=axes, opset_version=OPSET, dynamo=False, do_constant_folding=True)


def export_unet9(unet, path: Path, latent: int, context: int, device="cpu", dtype=torch.float32):
    """A 9-channel inpainting UNet in the optimum layout (float timestep per
    sample; batch, size and sequence dynamic), traced at batch 2."""
    z = lambda *shape: torch.zeros(*shape, device=device, dtype=dtype)
    export(Unet(unet), (z(2, 9, latent, latent), torch.tensor([500.0, 500.0], device=device, dtype=dtype),
                        z(2, 77, context)),
           path, ["sample", "timestep", "encoder_hidden_states"], ["out_sample"],
           {"sample": {0: "batch", 2: "height", 3: "width"}, "timestep": {0: "batch"},
            "encoder_hidden_states": {0: "batch", 1: "sequence"},
            "out_sample": {0: "batch", 2: "height", 3: "width"}})


class TextEncoder(torch.nn.Module):
    def __init__(self, text):
        super().__init__()
        self.text = text

    def forward(self, input_ids):
        out = self.text(input_ids.long())
        return out.last_hidden_state, out.pooler_output


class Unet(torch.nn.Module):
    def __init__(self, unet):
        super().__init__()
        self.unet = unet

    def forward(self, sample, timestep, encoder_hidden_states):
        return self.unet(sample, timestep, encoder_hidden_states, return_dict=False)[0]


class VaeEncoder(torch.nn.Module):
    def __init__(self, vae):
        super().__init__()
        self.vae = vae

    def forward(self, sample):
        return self.vae.encode(sample).latent_dist.parameters


class VaeDecoder(torch.nn.Module):
    def __init__(self, vae):
        super().__init__()
        self.vae = vae

    def forward(self, latent_sample):
        return self.vae.decode(latent_sample, return_dict=False)[0]


SCHEDULER = {
    "_class_name": "PNDMScheduler", "beta_start": 0.00085, "beta_end": 0.012,
    "beta_schedule": "scaled_linear", "num_train_timesteps": 1000,
    "prediction_type": "epsilon", "set_alpha_to_one": False, "steps_offset": 1,
}


def export_all(out: Path, text, unet9, unet4, vae):
    pipe = out / "inpaint"
    with torch.no_grad():
        export(TextEncoder(text), (torch.zeros(1, 77, dtype=torch.int64),),
               pipe / "text_encoder/model.onnx", ["input_ids"], ["last_hidden_state", "pooler_output"],
               {"input_ids": {0: "batch", 1: "sequence"}, "last_hidden_state": {0: "batch", 1: "sequence"}})
        cond = torch.zeros(2, 77, 32)
        export_unet9(unet9, pipe / "unet/model.onnx", 32, 32)
        export(Unet(unet4), (torch.zeros(2, 4, 32, 32), torch.tensor(500, dtype=torch.int64), cond),
               out / "unet4/model.onnx", ["sample", "timestep", "encoder_hidden_states"], ["out_sample"],
               {"sample": {0: "batch", 2: "height", 3: "width"},
                "encoder_hidden_states": {0: "batch", 1: "sequence"}, "out_sample": {0: "batch", 2: "height", 3: "width"}})
        export(VaeEncoder(vae), (torch.zeros(1, 3, IMAGE, IMAGE),), pipe / "vae_encoder/model.onnx",
               ["sample"], ["latent_parameters"],
               {"sample": {0: "batch", 2: "height", 3: "width"}, "latent_parameters": {0: "batch", 2: "height", 3: "width"}})
        export(VaeDecoder(vae), (torch.zeros(1, 4, IMAGE // 2, IMAGE // 2),), pipe / "vae_decoder/model.onnx",
               ["latent_sample"], ["sample"],
               {"latent_sample": {0: "batch", 2: "height", 3: "width"}, "sample": {0: "batch", 2: "height", 3: "width"}})
    (pipe / "scheduler").mkdir(parents=True, exist_ok=True)
    (pipe / "scheduler/scheduler_config.json").write_text(json.dumps(SCHEDULER, indent=1))
    (pipe / "vae_decoder/config.json").write_text(json.dumps({"scaling_factor": 0.18215, "latent_channels": 4}))
    (pipe / "vae_encoder/config.json").write_text(json.dumps({"scaling_factor": 0.18215, "latent_channels": 4}))
    (pipe / "unet/config.json").write_text(json.dumps({"in_channels": 9, "sample_size": 32, "cross_attention_dim": 32}))
    (pipe / "model_index.json").write_text(json.dumps({
        "_class_name": "OnnxStableDiffusionInpaintPipeline",
        "text_encoder": ["diffusers", "OnnxRuntimeModel"], "unet": ["diffusers", "OnnxRuntimeModel"],
        "vae_encoder": ["diffusers", "OnnxRuntimeModel"], "vae_decoder": ["diffusers", "OnnxRuntimeModel"],
        "tokenizer": ["transformers", "CLIPTokenizer"], "scheduler": ["diffusers", "PNDMScheduler"],
    }, indent=1))


# ---------------------------------------------------------------- numbers
def flat(t):
    return [float(v) for v in torch.as_tensor(t).detach().double().flatten().tolist()]


def model_sigmas():
    """The model's discrete sigmas as ldm computes them (float64 betas,
    alphas_cumprod kept as float32)."""
    betas = torch.linspace(SCHEDULER["beta_start"] ** 0.5, SCHEDULER["beta_end"] ** 0.5, 1000,
                           dtype=torch.float64) ** 2
    alphas_cumprod = torch.cumprod(1.0 - betas, dim=0).float()
    return ((1 - alphas_cumprod) / alphas_cumprod) ** 0.5, alphas_cumprod


def randn_reference():
    cases = []
    for seed in [0, 1, 1234, 2**32 + 5, 4294967295]:
        for shape in [(4, 8, 8), (37,), (5,), (4, 5, 7)]:
            torch.manual_seed(seed)
            cases.append({"seed": seed, "shape": list(shape), "values": flat(torch.randn(shape))})
    gen = torch.Generator().manual_seed(7)
    first = torch.randn((4, 8, 8), generator=gen)
    second = torch.randn((4, 8, 8), generator=gen)
    return {"cases": cases, "stream": {"seed": 7, "shape": [4, 8, 8], "first": flat(first), "second": flat(second)}}


def schedule_reference():
    sigmas, _ = model_sigmas()
    disc = KEXT.DiscreteSchedule(sigmas, quantize=False)
    out = {"normal": {}, "karras": {}, "sigma_to_t": []}
    for n in [1, 2, 7, 20, 150]:
        out["normal"][str(n)] = flat(disc.get_sigmas(n))
        out["karras"][str(n)] = flat(K.get_sigmas_karras(n, sigmas[0].item(), sigmas[-1].item()))
    for s in [0.03, 0.1, 0.5, 1.0, 3.7, 14.6]:
        out["sigma_to_t"].append([s, float(disc.sigma_to_t(torch.tensor(s)).item())])
    return out


def toy_denoised(x, sigma):
    """A closed-form stand-in for CFG(UNet) so sampler arithmetic can be
    checked on its own: smooth, nonlinear, sigma-dependent."""
    return torch.tanh(x * 0.7) * (1.0 / (1.0 + 0.3 * sigma)) + 0.05 * sigma


def sampler_reference():
    sigmas_model, _ = model_sigmas()
    disc = KEXT.DiscreteSchedule(sigmas_model, quantize=False)
    torch.manual_seed(99)
    x0 = torch.randn(1, 4, 6, 6)
    cases = []
    for sampler in ["Euler", "Euler a", "DPM++ 2M"]:
        for schedule in ["normal", "karras"]:
            steps = 9
            sig = disc.get_sigmas(steps) if schedule == "normal" else K.get_sigmas_karras(
                steps, sigmas_model[0].item(), sigmas_model[-1].item())
            sig = sig.float()
            noises = [torch.randn(1, 4, 6, 6) for _ in range(steps)]
            it = iter(noises)
            x = x0 * sig[0]
            before = []  # k-diffusion's callback sees x before each update
            model = lambda xx, s, **kw: toy_denoised(xx, s)
            cb = lambda d: before.append(flat(d["x"]))
            if sampler == "Euler":
                final = K.sample_euler(model, x, sig, callback=cb, disable=True)
            elif sampler == "Euler a":
                final = K.sample_euler_ancestral(model, x, sig, callback=cb, disable=True,
                                                 noise_sampler=lambda s, sn: next(it))
            else:
                final = K.sample_dpmpp_2m(model, x, sig, callback=cb, disable=True)
            after = before[1:] + [flat(final)]
            cases.append({"sampler": sampler, "schedule": schedule, "sigmas": flat(sig),
                          "x0": flat(x), "noises": [flat(n) for n in noises], "steps": after})
    return cases


def sampler_final(sampler, model, x, sig, noise_next):
    if sampler == "Euler":
        return K.sample_euler(model, x, sig, disable=True)
    if sampler == "Euler a":
        return K.sample_euler_ancestral(model, x, sig, disable=True, noise_sampler=lambda s, sn: noise_next())
    if sampler == "DPM++ 2M":
        return K.sample_dpmpp_2m(model, x, sig, disable=True)
    raise ValueError(sampler)


# ---------------------------------------------------------------- pipeline
class Sessions:
    def __init__(self, pipe: Path, unet4: Path):
        import onnxruntime as ort

        opts = ort.SessionOptions()
        opts.intra_op_num_threads = 1
        load = lambda p: ort.InferenceSession(str(p), opts, providers=["CPUExecutionProvider"])
        self.text = load(pipe / "text_encoder/model.onnx")
        self.unet9 = load(pipe / "unet/model.onnx")
        self.unet4 = load(unet4)
        self.vae_enc = load(pipe / "vae_encoder/model.onnx")
        self.vae_dec = load(pipe / "vae_decoder/model.onnx")


def synthetic_photo():
    y, x = np.mgrid[0:IMAGE, 0:IMAGE].astype(np.float32)
    r = 128 + 100 * np.sin(x / 9.0)
    g = 128 + 90 * np.cos(y / 7.0)
    b = 60 + 2.5 * x
    img = np.stack([r, g, b], axis=-1)
    img[40:56, 8:24] = [230, 40, 40]
    return np.clip(np.rint(img), 0, 255).astype(np.uint8)


def synthetic_mask():
    m = np.zeros((IMAGE, IMAGE), np.uint8)
    m[18:43, 21:47] = 255
    return m


def pil_latent_mask(mask_u8, lw, lh):
    """latmask: the mask resized to latent size by PIL (its default filter
    for RGB, bicubic), first channel, /255, rounded."""
    from PIL import Image

    small = Image.fromarray(mask_u8).convert("RGB").resize((lw, lh))
    return np.around(np.asarray(small, dtype=np.float32)[:, :, 0] / 255.0)


def encode_prompt(s: Sessions, tok, prompt):
    ids = tok(prompt, padding="max_length", max_length=77, truncation=True, return_tensors="np").input_ids
    return torch.from_numpy(s.text.run(None, {"input_ids": ids.astype(np.int64)})[0])


def vae_encode(s: Sessions, image_m11):
    params = s.vae_enc.run(None, {"sample": image_m11.numpy().astype(np.float32)})[0]
    mean = torch.from_numpy(params[:, :4])
    return mean * 0.18215


def vae_decode(s: Sessions, latent):
    img = s.vae_dec.run(None, {"latent_sample": (latent / 0.18215).numpy().astype(np.float32)})[0]
    img = np.clip((img + 1) / 2, 0, 1)
    return np.rint(img[0].transpose(1, 2, 0) * 255).astype(np.uint8), img


def run_case(s: Sessions, tok, case, image_u8, mask_u8):
    """One WebUI img2img inpainting run on the engine's input (the image as
    the worker hands it over, prefill done), returning what the WebUI's
    formulas give."""
    _, alphas_cumprod = model_sigmas()
    sigmas_model, _ = model_sigmas()
    disc = KEXT.DiscreteSchedule(sigmas_model, quantize=False)
    nine = case["unet"] == 9
    unet = s.unet9 if nine else s.unet4
    steps, strength = case["steps"], case["strength"]
    t_enc = int(min(strength, 0.999) * steps)
    image = torch.from_numpy(image_u8.astype(np.float32) / 255.0).permute(2, 0, 1)[None]
    init_latent = vae_encode(s, image * 2 - 1)
    lh, lw = init_latent.shape[2:]
    latmask = torch.from_numpy(pil_latent_mask(mask_u8, lw, lh))[None, None].repeat(1, 4, 1, 1)
    keep, paint = 1.0 - latmask, latmask
    gen = torch.Generator().manual_seed(case["seed"])
    noise = torch.randn((4, lh, lw), generator=gen)[None]
    if case["fill"] == "latent noise":
        init_latent = init_latent * keep + torch.randn((4, lh, lw), generator=torch.Generator().manual_seed(case["seed"]))[None] * paint
    elif case["fill"] == "latent nothing":
        init_latent = init_latent * keep
    cond = encode_prompt(s, tok, case["prompt"])
    uncond = encode_prompt(s, tok, case["negative_prompt"])
    if nine:
        cmask = torch.round(torch.from_numpy(mask_u8.astype(np.float32) / 255.0))[None, None]
        # The WebUI's lerp(image, image * (1 - mask), inpainting_mask_weight).
        weight = case.get("mask_weight", 1.0)
        masked = torch.lerp(image * 2 - 1, (image * 2 - 1) * (1.0 - cmask), weight)
        cimage = vae_encode(s, masked)
        cmask_small = torch.nn.functional.interpolate(cmask, size=(lh, lw))
        image_cond = torch.cat([cmask_small, cimage], dim=1)

    def unet_eps(x_in, t):
        x_in = x_in.float()
        if nine:
            x_in = torch.cat([x_in, image_cond], dim=1)
        batch = torch.cat([x_in, x_in]).numpy().astype(np.float32)
        hidden = torch.cat([cond, uncond]).numpy()
        if nine:
            ts = np.array([t, t], dtype=np.float32)
        else:
            ts = np.array(int(round(t)), dtype=np.int64)
        out = torch.from_numpy(unet.run(None, {"sample": batch, "timestep": ts, "encoder_hidden_states": hidden})[0])
        return out[1:] + (out[:1] - out[1:]) * case["cfg"]

    if case["sampler"] == "DDIM":
        timesteps = torch.clip(torch.arange(0, 1000, 1000 // steps) + 1, 0, 999)
        sched = timesteps[:t_enc]
        a_enc = alphas_cumprod[timesteps[t_enc]]
        x = init_latent * a_enc.sqrt() + noise * (1 - a_enc).sqrt()
        alphas = alphas_cumprod[sched]
        alphas_prev = alphas_cumprod[torch.nn.functional.pad(sched[:-1], pad=(1, 0))].double()
        for i in range(len(sched) - 1):
            index = len(sched) - 1 - i
            blended = x * paint + init_latent * keep
            e_t = unet_eps(blended, float(sched[index].item()))
            a_t = alphas[index].item()
            a_prev = alphas_prev[index].item()
            pred_x0 = (x - (1 - a_t) ** 0.5 * e_t) / a_t ** 0.5
            x = a_prev ** 0.5 * pred_x0 + (1.0 - a_prev) ** 0.5 * e_t
        samples = x.float()
        ran = max(len(sched) - 1, 0)
    else:
        sig = disc.get_sigmas(steps) if case["schedule"] == "normal" else K.get_sigmas_karras(
            steps, sigmas_model[0].item(), sigmas_model[-1].item())
        sig = sig.float()[steps - t_enc - 1:]
        x = init_latent + noise * sig[0]

        def model(xx, sigma, **kw):
            sv = float(sigma.reshape(-1)[0])
            c_in = 1.0 / (sv ** 2 + 1) ** 0.5
            t = float(disc.sigma_to_t(torch.tensor(sv)).item())
            eps = unet_eps(xx * c_in, t)
            denoised = xx - eps * sv
            return denoised * paint + init_latent * keep

        samples = sampler_final(case["sampler"], model, x, sig,
                                lambda: torch.randn((4, lh, lw), generator=gen)[None])
        ran = len(sig) - 1
    samples = samples * paint + init_latent * keep
    decoded_u8, _ = vae_decode(s, samples)
    return {"t_enc": t_enc, "steps_run": ran, "noise": flat(noise), "init_latent": flat(init_latent),
            "latent_mask": flat(latmask[0, 0]), "cond": flat(cond), "uncond": flat(uncond),
            "final_latent": flat(samples), "decoded": [int(v) for v in decoded_u8.flatten()]}


PIPELINE_CASES = [
    {"sampler": "Euler", "schedule": "normal", "steps": 8, "strength": 0.75, "fill": "original", "unet": 9},
    {"sampler": "Euler a", "schedule": "normal", "steps": 8, "strength": 0.6, "fill": "fill", "unet": 9},
    {"sampler": "DPM++ 2M", "schedule": "karras", "steps": 8, "strength": 1.0, "fill": "latent noise", "unet": 9},
    {"sampler": "DDIM", "schedule": "normal", "steps": 10, "strength": 0.75, "fill": "latent nothing", "unet": 9},
    {"sampler": "Euler", "schedule": "normal", "steps": 8, "strength": 0.75, "fill": "original", "unet": 9,
     "mask_weight": 0.5},
    {"sampler": "Euler", "schedule": "karras", "steps": 6, "strength": 0.5, "fill": "original", "unet": 4},
    {"sampler": "DPM++ 2M", "schedule": "normal", "steps": 6, "strength": 0.8, "fill": "latent nothing", "unet": 4},
]


def pipeline_reference(out: Path):
    from transformers import CLIPTokenizer as CLIPTokenizerFast

    pipe = out / "inpaint"
    tok = CLIPTokenizerFast(str(pipe / "tokenizer/vocab.json"), str(pipe / "tokenizer/merges.txt"),
                            pad_token="<|endoftext|>")
    s = Sessions(pipe, out / "unet4/model.onnx")
    image, mask = synthetic_photo(), synthetic_mask()
    cases = []
    for c in PIPELINE_CASES:
        case = dict(c, seed=1234, cfg=7.0, prompt="a red apple on a table", negative_prompt="blurry")
        cases.append(dict(case, **run_case(s, tok, case, image, mask)))
    # A different seed and a different prompt, for "changes the result".
    return {"image": [int(v) for v in image.flatten()], "mask": [int(v) for v in mask.flatten()],
            "size": IMAGE, "cases": cases}


def build_full(out: Path, device: str):
    """SD 1.5's shapes (UNet 320/640/1280/1280 with 9 input channels,
    cross-attention 768; VAE 128/256/512/512; CLIP ViT-L/14 text encoder),
    random weights from fixed seeds."""
    import shutil

    from diffusers import AutoencoderKL, UNet2DConditionModel
    from diffusers.models.attention_processor import AttnProcessor
    from transformers import CLIPTextConfig, CLIPTextModel

    dtype = torch.float16 if device == "cuda" else torch.float32
    pipe = out / "inpaint"
    torch.manual_seed(SEED_MODELS)
    unet = UNet2DConditionModel(
        sample_size=64, in_channels=9, out_channels=4, layers_per_block=2,
        block_out_channels=(320, 640, 1280, 1280),
        down_block_types=("CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "DownBlock2D"),
        up_block_types=("UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D"),
        cross_attention_dim=768, attention_head_dim=8,
    ).eval().to(device, dtype)
    torch.manual_seed(SEED_MODELS)
    vae = AutoencoderKL(
        in_channels=3, out_channels=3, latent_channels=4, layers_per_block=2,
        block_out_channels=[128, 256, 512, 512],
        down_block_types=["DownEncoderBlock2D"] * 4, up_block_types=["UpDecoderBlock2D"] * 4,
    ).eval().to(device, dtype)
    torch.manual_seed(SEED_MODELS)
    text = CLIPTextModel(CLIPTextConfig(
        vocab_size=49408, hidden_size=768, intermediate_size=3072, num_hidden_layers=12,
        num_attention_heads=12, max_position_embeddings=77, hidden_act="quick_gelu",
        bos_token_id=49406, eos_token_id=49407, pad_token_id=49407,
    )).eval().to(device, torch.float32)
    if device == "cuda":
        time_torch_unet(unet, dtype)  # with PyTorch's own fused attention
    # The classic attention (matmul, softmax, matmul) exports the pattern
    # that ONNX Runtime's optimizer fuses into MultiHeadAttention
    # (onnxruntime.transformers, model_type unet); the scaled-dot-product
    # export is not fused by it.
    unet.set_attn_processor(AttnProcessor())
    z = lambda *shape: torch.zeros(*shape, device=device, dtype=dtype)
    with torch.no_grad():
        export(TextEncoder(text), (torch.zeros(1, 77, dtype=torch.int64, device=device),),
               pipe / "text_encoder/model.onnx", ["input_ids"], ["last_hidden_state", "pooler_output"],
               {"input_ids": {0: "batch", 1: "sequence"}, "last_hidden_state": {0: "batch", 1: "sequence"}})
        export_unet9(unet, pipe / "unet/model.onnx", 64, 768, device, dtype)
        export(VaeEncoder(vae), (z(1, 3, 512, 512),), pipe / "vae_encoder/model.onnx", ["sample"], ["latent_parameters"],
               {"sample": {0: "batch", 2: "height", 3: "width"}, "latent_parameters": {0: "batch", 2: "height", 3: "width"}})
        export(VaeDecoder(vae), (z(1, 4, 64, 64),), pipe / "vae_decoder/model.onnx", ["latent_sample"], ["sample"],
               {"latent_sample": {0: "batch", 2: "height", 3: "width"}, "sample": {0: "batch", 2: "height", 3: "width"}})
    here = Path(__file__).resolve().parent.parent / "fixtures/tiny-sd/inpaint"
    shutil.copytree(here / "tokenizer", pipe / "tokenizer", dirs_exist_ok=True)
    (pipe / "scheduler").mkdir(parents=True, exist_ok=True)
    (pipe / "scheduler/scheduler_config.json").write_text(json.dumps(SCHEDULER, indent=1))
    for sub in ["vae_encoder", "vae_decoder"]:
        (pipe / sub / "config.json").write_text(json.dumps({"scaling_factor": 0.18215, "latent_channels": 4}))
    if device == "cuda" or "--ort" in sys.argv:
        try:
            ort_pipeline(unet.float(), device, pipe, out / "inpaint-ort")
        except ImportError as e:  # a GPU machine without onnxruntime's Python package
            print(f"inpaint-ort skipped: {e}", flush=True)
    for p in sorted(pipe.rglob("*")):
        if p.is_file():
            print(f"{p.relative_to(out)} {p.stat().st_size}")


def ort_pipeline(unet32, device: str, pipe: Path, ort_pipe: Path):
    """ort_pipe: pipe with its UNet as ONNX Runtime's SD recipe makes it for
    CUDA (export in fp32, every CUDA fusion, then fp16); the other parts are
    links to pipe's."""
    import tempfile

    with tempfile.TemporaryDirectory() as tmp, torch.no_grad():
        plain = Path(tmp) / "model.onnx"
        export_unet9(unet32, plain, 64, 768, device)
        ort_optimize(plain, ort_pipe / "unet/model.onnx", cuda=True, float16=True)
    for part in ["text_encoder", "vae_encoder", "vae_decoder", "tokenizer", "scheduler", "model_index.json"]:
        link = ort_pipe / part
        if not link.exists():
            link.symlink_to((pipe / part).resolve())


def time_torch_unet(unet, dtype):
    """The reference for a GPU step: the same UNet in PyTorch (eager, its
    scaled-dot-product attention) at 512x512, batch 2 (one request with
    CFG) and 32 (16 requests), timed with CUDA events."""
    for batch in (2, 32):
        sample = torch.randn(batch, 9, 64, 64, device="cuda", dtype=dtype)
        t = torch.full((batch,), 500.0, device="cuda", dtype=dtype)
        cond = torch.randn(batch, 77, 768, device="cuda", dtype=dtype)
        with torch.no_grad():
            for _ in range(5):
                unet(sample, t, cond)
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record()
            for _ in range(20):
                unet(sample, t, cond)
            end.record()
            torch.cuda.synchronize()
        print(f"bench=sd_gpu_torch_unet device={torch.cuda.get_device_name()} size=512 batch={batch} "
              f"torch={torch.__version__} unet_ms={start.elapsed_time(end) / 20:.2f}", flush=True)


def main():
    global K, KEXT
    if sys.argv[1:2] == ["--ort-optimized"]:
        torch.set_num_threads(1)
        build_ort_optimized(Path(sys.argv[2]))
        return
    if sys.argv[1:2] == ["--full"]:
        device = "cuda" if "--device" in sys.argv and sys.argv[sys.argv.index("--device") + 1] == "cuda" else "cpu"
        build_full(Path(sys.argv[2]), device)
        return
    K, KEXT = load_k_diffusion()
    out = Path(sys.argv[1] if len(sys.argv) > 1 else "models/fixtures/tiny-sd")
    out.mkdir(parents=True, exist_ok=True)
    torch.set_num_threads(1)
    write_vocab(out / "inpaint/tokenizer")
    text, unet9, unet4, vae = build_models()
    export_all(out, text, unet9, unet4, vae)
    build_ort_optimized(out)
    reference = {
        "torch": torch.__version__,
        "randn": randn_reference(),
        "schedules": schedule_reference(),
        "samplers": sampler_reference(),
        "tokenizer": tokenizer_reference(out / "inpaint/tokenizer"),
        "pipeline": pipeline_reference(out),
    }
    (out / "reference.json").write_text(json.dumps(reference, separators=(",", ":")))
    for p in sorted(out.rglob("*")):
        if p.is_file():
            print(f"{p.relative_to(out)} {p.stat().st_size}")


if __name__ == "__main__":
    main()
