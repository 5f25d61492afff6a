"""The peer a Python user would write: FastAPI + uvicorn, Pillow and NumPy for
the image, PyTorch for the model. Answers POST /predict {"image": base64}
like digitnet, with the same MNIST-style preprocessing (grey with alpha on
white, light paper inverted, paper taken to 0, cropped to the ink, longest
side 20 px, centre of mass in 28x28) and the same weights, read from a
digitnet version's model.json + weights.bin (tfjs layers format).

    PEER_MODEL_DIR=dir python3 peer.py --port 8000 --workers 2

Started and stopped by `npm run bench -- peer`; not part of the service.
"""

import argparse
import base64
import binascii
import io
import json
import os
import platform
import sys

import fastapi
import numpy as np
import PIL
import torch
import uvicorn
from fastapi import FastAPI, HTTPException
from PIL import Image, ImageOps
from pydantic import BaseModel

# One process per core (uvicorn workers): each keeps to one thread, as digitnet's server processes do.
torch.set_num_threads(1)


def load_model(directory: str) -> torch.nn.Sequential:
    """The Dense layers of a tfjs layers model as Linear layers; Flatten and Dropout need nothing at inference."""
    with open(os.path.join(directory, "model.json")) as f:
        model_json = json.load(f)
    weights = np.fromfile(os.path.join(directory, "weights.bin"), dtype="<f4")
    tensors, offset = {}, 0
    for group in model_json["weightsManifest"]:
        for spec in group["weights"]:
            if spec["dtype"] != "float32":
                raise ValueError(f"unsupported weight dtype {spec['dtype']}")
            size = int(np.prod(spec["shape"]))
            tensors[spec["name"]] = weights[offset : offset + size].reshape(spec["shape"])
            offset += size
    topology = model_json["modelTopology"]
    layers_config = topology.get("model_config", topology)["config"]
    layers = layers_config["layers"] if isinstance(layers_config, dict) else layers_config
    modules: list[torch.nn.Module] = []
    for layer in layers:
        if layer["class_name"] != "Dense":
            continue
        name, config = layer["config"]["name"], layer["config"]
        kernel, bias = tensors[f"{name}/kernel"], tensors[f"{name}/bias"]
        linear = torch.nn.Linear(kernel.shape[0], kernel.shape[1])
        with torch.no_grad():
            linear.weight.copy_(torch.from_numpy(kernel.T.copy()))
            linear.bias.copy_(torch.from_numpy(bias.copy()))
        modules.append(linear)
        activation = config.get("activation")
        if activation == "relu":
            modules.append(torch.nn.ReLU())
        elif activation == "softmax":
            modules.append(torch.nn.Softmax(dim=1))
        elif activation not in (None, "linear"):
            raise ValueError(f"unsupported activation {activation}")
    return torch.nn.Sequential(*modules).eval()


def mnist_input(data: bytes) -> np.ndarray:
    """Upload bytes -> 784 floats in 0-1, MNIST-style."""
    image = ImageOps.exif_transpose(Image.open(io.BytesIO(data)))
    if image.mode in ("RGBA", "LA", "PA") or "transparency" in image.info:
        white = Image.new("RGBA", image.size, (255, 255, 255, 255))
        image = Image.alpha_composite(white, image.convert("RGBA"))
    grey = np.asarray(image.convert("L"), dtype=np.float32)
    border = np.concatenate([grey[0], grey[-1], grey[:, 0], grey[:, -1]])
    if np.median(border) > 127:
        grey = 255 - grey
    ink = np.clip(grey - np.median(grey), 0, None)
    if ink.max() < 32:
        raise HTTPException(400, "no digit found")
    ink = ink * (255 / np.percentile(ink[ink > ink.max() / 2], 90))
    ink = np.clip(ink, 0, 255)
    rows, cols = np.nonzero(ink >= 128)
    crop = ink[rows.min() : rows.max() + 1, cols.min() : cols.max() + 1]
    scale = 20 / max(crop.shape)
    size = (max(1, round(crop.shape[1] * scale)), max(1, round(crop.shape[0] * scale)))
    digit = np.asarray(Image.fromarray(crop).resize(size, Image.BILINEAR, reducing_gap=None), dtype=np.float32)
    total = digit.sum()
    ys, xs = np.indices(digit.shape)
    dy = round(14 - (ys * digit).sum() / total)
    dx = round(14 - (xs * digit).sum() / total)
    # Pasted into a frame with room on every side, so any shift fits; then the 28x28 middle is cut out.
    frame = np.zeros((68, 68), dtype=np.float32)
    frame[20 + dy : 20 + dy + digit.shape[0], 20 + dx : 20 + dx + digit.shape[1]] = np.minimum(1, digit / 255)
    out = frame[20:48, 20:48]
    return out.reshape(784)


class PredictRequest(BaseModel):
    image: str


app = FastAPI()
model = load_model(os.environ["PEER_MODEL_DIR"]) if "PEER_MODEL_DIR" in os.environ else None


@app.get("/health")
def health() -> dict:
    return {"status": "ok"}


@app.post("/predict")
def predict(request: PredictRequest) -> dict:
    try:
        data = base64.b64decode(request.image, validate=True)
    except binascii.Error:
        raise HTTPException(400, "image is not base64")
    try:
        pixels = mnist_input(data)
    except (OSError, ValueError, Image.DecompressionBombError):
        raise HTTPException(400, "not a readable image")
    with torch.no_grad():
        probabilities = model(torch.from_numpy(pixels).unsqueeze(0))[0]
    digit = int(probabilities.argmax())
    return {"digit": digit, "confidence": float(probabilities[digit]), "probabilities": probabilities.tolist()}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    versions = {
        "python": platform.python_version(),
        "fastapi": fastapi.__version__,
        "uvicorn": uvicorn.__version__,
        "torch": torch.__version__,
        "pillow": PIL.__version__,
        "numpy": np.__version__,
    }
    print(json.dumps({"event": "peer versions", **versions}), flush=True)
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    uvicorn.run("peer:app", host="127.0.0.1", port=args.port, workers=args.workers, log_level="warning")


if __name__ == "__main__":
    main()
