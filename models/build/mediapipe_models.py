"""Converts MediaPipe's hand and face landmark models (shipped as tflite
inside the mediapipe 0.10.21 wheel, Apache-2.0) to ONNX, and records what
MediaPipe's own Hands and FaceMesh solutions find on the test photos, as
the references our detectors are tested against.

Needs: mediapipe==0.10.21 tf2onnx==1.17.0 tensorflow-cpu "numpy<2"
onnxruntime pillow (models/build/requirements-mediapipe.txt), and the
test photos (`make models`). Usage: python3 models/build/mediapipe_models.py
[OUT] (default models/fixtures/mediapipe). tf2onnx does not write
byte-identical files twice: a rerun gives equivalent graphs with new
hashes (update models/manifest.toml).
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
    "face_landmark.onnx": MODULES / "face_landmark/face_landmark.tflite",
}
FACE_PHOTOS = ["astronaut.png"]
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


def mediapipe_faces() -> dict:
    """Each photo's faces as MediaPipe's FaceMesh solution finds them: all
    468 landmarks, and the points of its eye and outer-lip contours (its
    own FACEMESH_LEFT_EYE, FACEMESH_RIGHT_EYE and FACEMESH_LIPS sets), in
    pixels."""
    fm = mediapipe.solutions.face_mesh
    mesh = fm.FaceMesh(static_image_mode=True, max_num_faces=4)
    eyes = sorted({i for pair in fm.FACEMESH_LEFT_EYE | fm.FACEMESH_RIGHT_EYE for i in pair})
    lips = sorted({i for pair in fm.FACEMESH_LIPS for i in pair})
    found = {}
    for photo in FACE_PHOTOS:
        img = np.array(Image.open(PHOTOS / photo).convert("RGB"))
        h, w = img.shape[:2]
        faces = []
        for lm in mesh.process(img).multi_face_landmarks or []:
            pts = [[round(p.x * w, 1), round(p.y * h, 1)] for p in lm.landmark]
            faces.append({"landmarks": pts, "eyes": [pts[i] for i in eyes],
                          "lips": [pts[i] for i in lips]})
        found[photo] = faces
    return found


def main() -> None:
    out = Path(sys.argv[1] if len(sys.argv) > 1 else "models/fixtures/mediapipe")
    out.mkdir(parents=True, exist_ok=True)
    convert(out)
    reference = {"mediapipe": mediapipe.__version__, "hands": mediapipe_hands(),
                 "faces": mediapipe_faces()}
    (out / "reference.json").write_text(json.dumps(reference, indent=1) + "\n")
    for p in sorted(out.iterdir()):
        print(f"{p.name} {p.stat().st_size}")


if __name__ == "__main__":
    main()
