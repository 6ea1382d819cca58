#!/usr/bin/env python3
"""Builds the project's own ONNX inpainting models: a push-pull
(normalised-convolution pyramid) fill in plain ONNX operators.

Pull: the known pixels (image * known) and their weights (known) are
averaged 2x2 down a fixed number of levels. Push: from the coarsest level
up, each level's normalised value (sum / weight) is blended with the
bilinearly upsampled coarser estimate by its weight, so holes take the
smooth average of their surroundings at the scale that reaches them (at the
coarsest level, cells with nothing known take the image's average). Known
pixels pass through unchanged. Every operator is a standard one (Mul, Add,
Div, Max, Min, AveragePool, Resize), so the graph also runs on CUDA.

Two files, one per public convention (see shared/MODELS.md):
  pushpull_lama.onnx   image f32 [N,3,H,W] 0..1, mask f32 [N,1,H,W] 1 = hole,
                       output f32 [N,3,H,W] 0..1
  pushpull_migan.onnx  image u8 [N,3,H,W], mask u8 [N,1,H,W] 255 = keep,
                       output u8 [N,3,H,W]
Sides must be multiples of 2^LEVELS (dynamic otherwise).

Usage: pushpull.py OUT_DIR   (deterministic: same bytes every run)
"""
import sys
from pathlib import Path

import onnx
from onnx import TensorProto, helper

LEVELS = 5  # sides multiple of 32
EPS = 1e-6
OPSET = 17


class Graph:
    def __init__(self):
        self.nodes, self.inits, self.count = [], [], 0

    def name(self, hint):
        self.count += 1
        return f"{hint}_{self.count}"

    def op(self, kind, inputs, hint=None, **attrs):
        out = self.name(hint or kind.lower())
        self.nodes.append(helper.make_node(kind, inputs, [out], **attrs))
        return out

    def const(self, hint, values, dims, dtype=TensorProto.FLOAT):
        name = self.name(hint)
        self.inits.append(helper.make_tensor(name, dtype, dims, values))
        return name


def push_pull(g, image, known):
    """image [N,3,H,W] f32, known [N,1,H,W] f32 in 0..1 -> filled image."""
    eps = g.const("eps", [EPS], [])
    one = g.const("one", [1.0], [])
    gain = g.const("gain", [4.0], [])
    scales = g.const("scales", [1.0, 1.0, 2.0, 2.0], [4])
    nums, dens = [g.op("Mul", [image, known], "num0")], [known]
    for level in range(LEVELS):
        nums.append(g.op("AveragePool", [nums[-1]], f"num{level + 1}", kernel_shape=[2, 2], strides=[2, 2]))
        dens.append(g.op("AveragePool", [dens[-1]], f"den{level + 1}", kernel_shape=[2, 2], strides=[2, 2]))
    # Coarsest level: cells with no known pixel at all take the image's
    # average known colour, so a hole wider than the pyramid reaches is
    # still filled with something sensible.
    axes = g.const("axes", [2, 3], [2], TensorProto.INT64)
    total_num = g.op("ReduceSum", [nums[-1], axes], "total_num", keepdims=1)
    total_den = g.op("ReduceSum", [dens[-1], axes], "total_den", keepdims=1)
    average = g.op("Div", [total_num, g.op("Max", [total_den, eps])], "average")
    coarse_here = g.op("Div", [nums[-1], g.op("Max", [dens[-1], eps])], "coarse_here")
    coarse_weight = g.op("Min", [g.op("Mul", [dens[-1], gain]), one], "coarse_w")
    value = g.op("Add", [g.op("Mul", [coarse_here, coarse_weight]),
                         g.op("Mul", [average, g.op("Sub", [one, coarse_weight])])], "coarse")
    for level in range(LEVELS - 1, -1, -1):
        up = g.op("Resize", [value, "", scales], f"up{level}", mode="linear",
                  coordinate_transformation_mode="half_pixel")
        here = g.op("Div", [nums[level], g.op("Max", [dens[level], eps])], f"norm{level}")
        # Trust this level where it had enough known pixels.
        weight = g.op("Min", [g.op("Mul", [dens[level], gain]), one], f"w{level}")
        keep = g.op("Mul", [here, weight])
        fill = g.op("Mul", [up, g.op("Sub", [one, weight])])
        value = g.op("Add", [keep, fill], f"value{level}")
    hole = g.op("Sub", [one, known], "hole")
    return g.op("Add", [g.op("Mul", [image, known]), g.op("Mul", [value, hole])], "filled")


def lama_model():
    g = Graph()
    known = g.op("Sub", [g.const("one_in", [1.0], []), "mask"], "known_in")
    out = push_pull(g, "image", known)
    g.nodes.append(helper.make_node("Identity", [out], ["output"]))
    dims = ["N", 3, "H", "W"]
    inputs = [helper.make_tensor_value_info("image", TensorProto.FLOAT, dims),
              helper.make_tensor_value_info("mask", TensorProto.FLOAT, ["N", 1, "H", "W"])]
    outputs = [helper.make_tensor_value_info("output", TensorProto.FLOAT, dims)]
    return finish(g, "pushpull_lama", inputs, outputs)


def migan_model():
    g = Graph()
    inv255 = g.const("inv255", [1.0 / 255.0], [])
    image = g.op("Mul", [g.op("Cast", ["image"], to=TensorProto.FLOAT), inv255], "image01")
    known = g.op("Mul", [g.op("Cast", ["mask"], to=TensorProto.FLOAT), inv255], "known01")
    out = push_pull(g, image, known)
    scaled = g.op("Mul", [out, g.const("c255", [255.0], [])])
    clipped = g.op("Clip", [g.op("Round", [scaled]), g.const("lo", [0.0], []), g.const("hi", [255.0], [])])
    g.nodes.append(helper.make_node("Cast", [clipped], ["output"], to=TensorProto.UINT8))
    inputs = [helper.make_tensor_value_info("image", TensorProto.UINT8, ["N", 3, "H", "W"]),
              helper.make_tensor_value_info("mask", TensorProto.UINT8, ["N", 1, "H", "W"])]
    outputs = [helper.make_tensor_value_info("output", TensorProto.UINT8, ["N", 3, "H", "W"])]
    return finish(g, "pushpull_migan", inputs, outputs)


def finish(g, name, inputs, outputs):
    graph = helper.make_graph(g.nodes, name, inputs, outputs, g.inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)],
                              producer_name="inpaint models/build/pushpull.py")
    model.ir_version = 8
    onnx.checker.check_model(model, full_check=True)
    return model


def main():
    out = Path(sys.argv[1] if len(sys.argv) > 1 else "models/cache/pushpull")
    out.mkdir(parents=True, exist_ok=True)
    for model in (lama_model(), migan_model()):
        path = out / f"{model.graph.name}.onnx"
        path.write_bytes(model.SerializeToString())
        print(f"built {path}")


if __name__ == "__main__":
    main()
