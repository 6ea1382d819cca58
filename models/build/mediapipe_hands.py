"""Converts MediaPipe's hand models (shipped as tflite inside the
mediapipe 0.10.21 wheel, Apache-2.0) to ONNX, and records what MediaPipe's
own Hands solution finds on the test photos, as the reference the hand
detector is tested against.

Needs: mediapipe==0.10.21 tf2onnx==1.17.0 tensorflow-cpu "numpy<2"
onnxruntime pillow (models/build/requirements-mediapipe.txt), and the
test photos (`make models`). Usage: python3 models/build/mediapipe_hands.py
[OUT] (default models/fixtures/mediapipe).
"""

import json
import subprocess
import sys
from pathlib import Path

import mediapipe
import numpy as np
from PIL import Image

MODULES = Path(mediapipe.__file__).parent / "modules"
GRAPHS = {
    "palm_detection_full.onnx": MODULES / "palm_detection/palm_detection_full.tflite",
    "hand_landmark_full.onnx": MODULES / "hand_landmark/hand_landmark_full.tflite",
}
PHOTOS = Path("models/cache/photos")
TEST_PHOTOS = ["zidane.jpg", "bus.jpg", "astronaut.png", "coffee.png"]


def convert(out: Path) -> None:
    for name, tflite in GRAPHS.items():
        subprocess.run([sys.executable, "-m", "tf2onnx.convert", "--tflite", str(tflite),
                        "--output", str(out / name), "--opset", "17"], check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def mediapipe_hands() -> dict:
    """Each photo's hands as MediaPipe's Hands solution finds them (palms
    scoring 0.3 or more, our service's default), the bounding box of the
    21 landmarks in pixels."""
    hands = mediapipe.solutions.hands.Hands(static_image_mode=True, max_num_hands=8,
                                            min_detection_confidence=0.3, model_complexity=1)
    found = {}
    for photo in TEST_PHOTOS:
        img = np.array(Image.open(PHOTOS / photo).convert("RGB"))
        h, w = img.shape[:2]
        result = hands.process(img)
        boxes = []
        for lm in result.multi_hand_landmarks or []:
            xs = [p.x * w for p in lm.landmark]
            ys = [p.y * h for p in lm.landmark]
            boxes.append([round(min(xs), 1), round(min(ys), 1), round(max(xs), 1), round(max(ys), 1)])
        found[photo] = boxes
    return found


def main() -> None:
    out = Path(sys.argv[1] if len(sys.argv) > 1 else "models/fixtures/mediapipe")
    out.mkdir(parents=True, exist_ok=True)
    convert(out)
    reference = {"mediapipe": mediapipe.__version__, "hands": mediapipe_hands()}
    (out / "reference.json").write_text(json.dumps(reference, indent=1) + "\n")
    for p in sorted(out.iterdir()):
        print(f"{p.name} {p.stat().st_size}")


if __name__ == "__main__":
    main()
