#!/usr/bin/env python3
"""Builds tiny random LoRA files for the tiny SD pipeline of tiny_sd.py, in
the formats users bring, and the numbers our merge is checked against,
computed by diffusers' own loader (load_lora_weights + fuse_lora, peft).

Written out (OUT_DIR, default models/fixtures/tiny-lora):
  loras/kohya.safetensors  kohya-ss keys: lora_unet_* / lora_te_* with
                           .lora_down / .lora_up / .alpha (rank 4, alpha 2:
                           scale 0.5) on the transformer blocks' Linear and
                           1x1 Conv layers and the text encoder's Linear ones
  loras/peft.safetensors   diffusers/peft keys: unet.* / text_encoder.* with
                           .lora_A / .lora_B (rank 4, no alpha: scale 1)
  loras/locon.safetensors  kohya keys on the ResNet blocks' 3x3 convs too
                           (lora_down a 3x3 conv, lora_up 1x1), the time
                           embedding projections and the samplers' convs
  unet-external/           the fixture's 9-channel UNet saved with its
                           weights in an external file (weights.pb), as
                           full-size exports are
  reference.json           for each file and (UNet weight, text-encoder
                           weight) in {1, 0.5, -0.7} x {UNet only, text only,
                           both}: the fused torch UNet's output on a probe
                           input and the fused text encoder's hidden states
                           on a probe prompt; and whole WebUI-rule inpainting
                           runs (tiny_sd.run_case) with the fused models

Needs the heavy stack of models/build/requirements-sd.txt plus peft and
safetensors; `make test` never does. Usage: tiny_lora.py [OUT_DIR]
"""
import json
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).parent))
import tiny_sd  # noqa: E402

RANK = 4
FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
WEIGHTS = [1.0, 0.5, -0.7]
PROMPT = "a red apple on a table"


def transformer_targets(unet):
    """(dotted path, module) of the Linear and 1x1 Conv layers inside the
    transformer blocks: what kohya's LoRA trains by default."""
    out = []
    for name, m in unet.named_modules():
        if ".attentions." not in name:
            continue
        if isinstance(m, torch.nn.Linear) or (isinstance(m, torch.nn.Conv2d) and m.kernel_size == (1, 1)):
            out.append((name, m))
    return out


def resnet_targets(unet):
    """LoCon's extra layers: the ResNet convs, their time projections, the
    down- and upsamplers' convs."""
    out = []
    for name, m in unet.named_modules():
        if ".attentions." in name or not name:
            continue
        if ("resnets" in name or "samplers" in name) and isinstance(m, (torch.nn.Conv2d, torch.nn.Linear)):
            out.append((name, m))
    return out


def text_targets(text):
    return [(n, m) for n, m in text.named_modules()
            if isinstance(m, torch.nn.Linear) and ".layers." in n]


def low_rank(gen, m):
    """Random down/up factors for module m, as torch tensors."""
    s = 0.2
    if isinstance(m, torch.nn.Linear):
        down = torch.randn(RANK, m.in_features, generator=gen) * s
        up = torch.randn(m.out_features, RANK, generator=gen) * s
    else:
        kh, kw = m.kernel_size
        down = torch.randn(RANK, m.in_channels, kh, kw, generator=gen) * s
        up = torch.randn(m.out_channels, RANK, 1, 1, generator=gen) * s
    return down.contiguous(), up.contiguous()


def kohya_file(unet, text, with_resnets, seed):
    gen = torch.Generator().manual_seed(seed)
    sd = {}
    targets = [("lora_unet_", n, m) for n, m in transformer_targets(unet)]
    if with_resnets:
        targets += [("lora_unet_", n, m) for n, m in resnet_targets(unet)]
    targets += [("lora_te_", n, m) for n, m in text_targets(text)]
    for prefix, name, m in targets:
        down, up = low_rank(gen, m)
        key = prefix + name.replace(".", "_")
        sd[f"{key}.lora_down.weight"] = down
        sd[f"{key}.lora_up.weight"] = up
        sd[f"{key}.alpha"] = torch.tensor(2.0)
    return sd


def peft_file(unet, text, seed):
    gen = torch.Generator().manual_seed(seed)
    sd = {}
    for prefix, targets in [("unet.", transformer_targets(unet)), ("text_encoder.", text_targets(text))]:
        for name, m in targets:
            down, up = low_rank(gen, m)
            sd[f"{prefix}{name}.lora_A.weight"] = down
            sd[f"{prefix}{name}.lora_B.weight"] = up
    return sd


class TorchSession:
    """tiny_sd.run_case's session interface over a torch module."""

    def __init__(self, module, inputs):
        self.module, self.inputs = module, inputs

    def run(self, _outputs, feeds):
        args = [torch.from_numpy(np.asarray(feeds[n])) for n in self.inputs]
        with torch.no_grad():
            out = self.module(*args)
        out = out if isinstance(out, tuple) else (out,)
        return [o.numpy() for o in out]


def fused_models(path: Path, unet_weight: float, te_weight: float):
    """Fresh base models with the LoRA file fused by diffusers."""
    from diffusers import DDIMScheduler, StableDiffusionPipeline
    from transformers import CLIPTokenizer

    text, unet9, _, vae = tiny_sd.build_models()
    tok_dir = FIXTURES / "tiny-sd/inpaint/tokenizer"
    tok = CLIPTokenizer(str(tok_dir / "vocab.json"), str(tok_dir / "merges.txt"), pad_token="<|endoftext|>")
    pipe = StableDiffusionPipeline(vae=vae, text_encoder=text, tokenizer=tok, unet=unet9,
                                   scheduler=DDIMScheduler(), safety_checker=None,
                                   feature_extractor=None, requires_safety_checker=False)
    pipe.load_lora_weights(str(path.parent), weight_name=path.name, adapter_name="x")
    if unet_weight != 0.0:
        pipe.fuse_lora(components=["unet"], lora_scale=unet_weight, adapter_names=["x"])
    if te_weight != 0.0:
        pipe.fuse_lora(components=["text_encoder"], lora_scale=te_weight, adapter_names=["x"])
    pipe.unload_lora_weights()
    return pipe.text_encoder.eval(), pipe.unet.eval(), vae, tok


def probe_inputs():
    gen = torch.Generator().manual_seed(7)
    sample = torch.randn(2, 9, 16, 16, generator=gen)
    hidden = torch.randn(2, 77, 32, generator=gen)
    return sample, torch.tensor([500.0, 500.0]), hidden


def probe(text, unet, tok):
    sample, t, hidden = probe_inputs()
    ids = tok(PROMPT, padding="max_length", max_length=77, return_tensors="pt").input_ids
    with torch.no_grad():
        eps = unet(sample, t, hidden, return_dict=False)[0]
        te = text(ids).last_hidden_state
    return eps, te, ids


def save_external_unet(out: Path):
    import onnx

    model = onnx.load(str(FIXTURES / "tiny-sd/inpaint/unet/model.onnx"))
    import shutil

    dst = out / "unet-external"
    shutil.rmtree(dst, ignore_errors=True)  # onnx appends to an existing weights file
    dst.mkdir(parents=True)
    onnx.save_model(model, str(dst / "model.onnx"), save_as_external_data=True,
                    all_tensors_to_one_file=True, location="weights.pb", size_threshold=1024)


def check_same_as_fixture(text, unet9):
    """The rebuilt models must be the committed fixture's (same seed, same
    torch): compare every UNet and text-encoder initializer named after a
    parameter."""
    import onnx
    from onnx import numpy_helper

    for model, path, prefix in [(unet9, "tiny-sd/inpaint/unet/model.onnx", "unet."),
                                (text, "tiny-sd/inpaint/text_encoder/model.onnx", "text.")]:
        params = dict(model.named_parameters())
        seen = 0
        for init in onnx.load(str(FIXTURES / path)).graph.initializer:
            name = init.name[len(prefix):] if init.name.startswith(prefix) else None
            if name in params:
                got = numpy_helper.to_array(init)
                assert np.array_equal(got, params[name].detach().numpy()), f"{path}: {name} differs"
                seen += 1
        assert seen >= 5, f"{path}: only {seen} parameters compared"


def main():
    from safetensors.torch import save_file

    out = Path(sys.argv[1] if len(sys.argv) > 1 else FIXTURES / "tiny-lora")
    (out / "loras").mkdir(parents=True, exist_ok=True)
    torch.set_num_threads(1)
    tiny_sd.K, tiny_sd.KEXT = tiny_sd.load_k_diffusion()

    text, unet9, _, _ = tiny_sd.build_models()
    check_same_as_fixture(text, unet9)
    files = {
        "kohya": kohya_file(unet9, text, with_resnets=False, seed=1),
        "peft": peft_file(unet9, text, seed=2),
        "locon": kohya_file(unet9, text, with_resnets=True, seed=3),
    }
    for name, sd in files.items():
        save_file(sd, str(out / f"loras/{name}.safetensors"))
    save_external_unet(out)

    sample, t, hidden = probe_inputs()
    base_eps, base_te, ids = probe(text, unet9, fused_models(out / "loras/kohya.safetensors", 0, 0)[3])
    reference = {
        "torch": torch.__version__,
        "probe": {"sample": tiny_sd.flat(sample), "sample_shape": list(sample.shape),
                  "timestep": tiny_sd.flat(t), "hidden": tiny_sd.flat(hidden),
                  "hidden_shape": list(hidden.shape), "ids": [int(i) for i in ids[0]],
                  "base_eps": tiny_sd.flat(base_eps), "base_te": tiny_sd.flat(base_te)},
        "variants": [], "pipeline": [],
    }
    image, mask = tiny_sd.synthetic_photo(), tiny_sd.synthetic_mask()
    vae_dir = FIXTURES / "tiny-sd/inpaint"
    base_sessions = tiny_sd.Sessions(vae_dir, FIXTURES / "tiny-sd/unet4/model.onnx")
    for name in files:
        path = out / f"loras/{name}.safetensors"
        for w in WEIGHTS:
            for uw, tw, part in [(w, 0.0, "unet"), (0.0, w, "text"), (w, w, "both")]:
                te_model, unet_model, _, tok = fused_models(path, uw, tw)
                eps, te, _ = probe(te_model, unet_model, tok)
                reference["variants"].append({
                    "file": name, "unet_weight": uw, "te_weight": tw, "part": part,
                    "eps": tiny_sd.flat(eps), "te": tiny_sd.flat(te),
                    "eps_change": float((eps - base_eps).abs().max()),
                    "te_change": float((te - base_te).abs().max()),
                })
                print(f"{name} {part} {w}: eps change {reference['variants'][-1]['eps_change']:.3g}, "
                      f"te change {reference['variants'][-1]['te_change']:.3g}", flush=True)
                # Whole runs: one per part, at a different weight each.
                if (part, w) not in {("both", 1.0), ("unet", 0.5), ("text", -0.7)}:
                    continue
                s = base_sessions
                s.text = TorchSession(tiny_sd.TextEncoder(te_model), ["input_ids"])
                s.unet9 = TorchSession(tiny_sd.Unet(unet_model), ["sample", "timestep", "encoder_hidden_states"])
                case = dict(tiny_sd.PIPELINE_CASES[0], seed=1234, cfg=7.0, prompt=PROMPT,
                            negative_prompt="blurry")
                result = tiny_sd.run_case(s, tok, case, image, mask)
                reference["pipeline"].append(dict(case, file=name, unet_weight=uw, te_weight=tw,
                                                  final_latent=result["final_latent"],
                                                  decoded=result["decoded"],
                                                  steps_run=result["steps_run"]))
    (out / "reference.json").write_text(json.dumps(reference, separators=(",", ":")))
    for p in sorted(out.rglob("*")):
        if p.is_file():
            print(f"{p.relative_to(out)} {p.stat().st_size}")


if __name__ == "__main__":
    main()
