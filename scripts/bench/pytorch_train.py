"""The PyTorch side of `npm run bench -- train --vs-pytorch` (scripts/bench/train.ts).

Trains the project's architectures (functions/lib/training/model.ts) in
PyTorch on ONE thread, with what the tfjs bench uses: the same batch size,
Adam with the same learning rate and epsilon, the same held-then-cosine
schedule, and 60,000 images an epoch from the same gzipped IDX files. Prints
JSON lines: the versions it ran with, then one line per architecture.

    python3 scripts/bench/pytorch_train.py --mnist-dir DIR --arch cnn --batch-size 128 --lr 0.005 [--epochs 1]
"""

import argparse
import gzip
import json
import math
import os
import platform
import struct
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

IMAGES_MAGIC = 2051
LABELS_MAGIC = 2049
SIDE = 28
CLASSES = 10
# tfjs' Adam takes the backend's epsilon (1e-7 in float32); PyTorch's default is 1e-8.
ADAM_EPSILON = 1e-7
# train-loop.ts: the cosine schedule holds the base rate for this share of the run.
COSINE_HOLD = 0.5


def read_idx(path, magic, dims):
    with gzip.open(path, "rb") as f:
        data = f.read()
    header = struct.unpack(">" + "I" * (1 + dims), data[: 4 * (1 + dims)])
    if header[0] != magic:
        raise ValueError(f"{path}: magic number {header[0]}, expected {magic}")
    return np.frombuffer(data, dtype=np.uint8, offset=4 * (1 + dims)).reshape(header[1:])


def load_split(directory, prefix):
    images = read_idx(os.path.join(directory, f"{prefix}-images-idx3-ubyte.gz"), IMAGES_MAGIC, 3)
    labels = read_idx(os.path.join(directory, f"{prefix}-labels-idx1-ubyte.gz"), LABELS_MAGIC, 1)
    x = torch.from_numpy(images.astype(np.float32) / 255.0).reshape(-1, 1, SIDE, SIDE)
    return x, torch.from_numpy(labels.astype(np.int64))


def glorot(layer):
    nn.init.xavier_uniform_(layer.weight)
    nn.init.zeros_(layer.bias)
    return layer


def he(layer):
    nn.init.kaiming_normal_(layer.weight, nonlinearity="relu")
    nn.init.zeros_(layer.bias)
    return layer


class Mlp(nn.Module):
    """784 → 256 relu → 256 relu → 10 (softmax in the loss)."""

    def __init__(self):
        super().__init__()
        self.hidden1 = glorot(nn.Linear(SIDE * SIDE, 256))
        self.hidden2 = glorot(nn.Linear(256, 256))
        self.out = glorot(nn.Linear(256, CLASSES))

    def forward(self, x):
        x = torch.flatten(x, 1)
        return self.out(F.relu(self.hidden2(F.relu(self.hidden1(x)))))


class Cnn(nn.Module):
    """The project's CNN: a strided 5×5 conv, 3×3 convs in pairs with a max-pool after each, dropout, dense."""

    def __init__(self):
        super().__init__()
        self.conv1 = he(nn.Conv2d(1, 16, 5, stride=2))
        self.conv2 = he(nn.Conv2d(16, 32, 3, padding=1))
        self.conv3 = he(nn.Conv2d(32, 32, 3, padding=1))
        self.conv4 = he(nn.Conv2d(32, 64, 3, padding=1))
        self.dropout = nn.Dropout(0.3)
        self.out = glorot(nn.Linear(3 * 3 * 64, CLASSES))

    def forward(self, x):
        # Keras' 'same' padding for a 5×5 kernel at stride 2 on 28 pixels: 1 before, 2 after.
        x = F.relu(self.conv1(F.pad(x, (1, 2, 1, 2))))
        x = F.max_pool2d(F.relu(self.conv2(x)), 2)
        x = F.max_pool2d(F.relu(self.conv4(F.relu(self.conv3(x)))), 2)
        return self.out(self.dropout(torch.flatten(x, 1)))


def learning_rate_at(base, step, total):
    hold = total * COSINE_HOLD
    if step < hold:
        return base
    return base * (1 + math.cos(math.pi * (step - hold) / (total - hold))) / 2


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--mnist-dir", required=True)
    parser.add_argument("--arch", choices=["mlp", "cnn"], required=True)
    parser.add_argument("--batch-size", type=int, required=True)
    parser.add_argument("--lr", type=float, required=True)
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--seed", type=int, default=42)
    args = parser.parse_args()

    torch.set_num_threads(1)
    torch.set_num_interop_threads(1)
    torch.manual_seed(args.seed)
    print(
        json.dumps(
            {
                "bench": "train-pytorch",
                "python": platform.python_version(),
                "torch": torch.__version__,
                "numpy": np.__version__,
                "threads": torch.get_num_threads(),
            }
        ),
        flush=True,
    )

    train_x, train_y = load_split(args.mnist_dir, "train")
    test_x, test_y = load_split(args.mnist_dir, "t10k")
    model = Mlp() if args.arch == "mlp" else Cnn()
    optimizer = torch.optim.Adam(model.parameters(), lr=args.lr, eps=ADAM_EPSILON)
    steps = train_x.shape[0] // args.batch_size
    total = steps * args.epochs
    seconds = []
    for epoch in range(args.epochs):
        model.train()
        started = time.perf_counter()
        order = torch.randperm(train_x.shape[0])
        for b in range(steps):
            for group in optimizer.param_groups:
                group["lr"] = learning_rate_at(args.lr, epoch * steps + b, total)
            batch = order[b * args.batch_size : (b + 1) * args.batch_size]
            optimizer.zero_grad(set_to_none=True)
            loss = F.cross_entropy(model(train_x[batch]), train_y[batch])
            loss.backward()
            optimizer.step()
        seconds.append(time.perf_counter() - started)

    model.eval()
    with torch.no_grad():
        correct = sum(
            (model(test_x[i : i + 1000]).argmax(1) == test_y[i : i + 1000]).sum().item()
            for i in range(0, test_x.shape[0], 1000)
        )
    per_epoch = sum(seconds) / len(seconds)
    print(
        json.dumps(
            {
                "arch": args.arch,
                "framework": "pytorch",
                "threads": 1,
                "params": sum(p.numel() for p in model.parameters()),
                "batchSize": args.batch_size,
                "epochs": args.epochs,
                "msPerStep": round(per_epoch * 1000 / steps, 2),
                "secondsPerEpoch": round(per_epoch, 2),
                "secondsPer60kEpoch": round(per_epoch * 60000 / (steps * args.batch_size), 2),
                "testAccuracy": correct / test_x.shape[0],
            }
        ),
        flush=True,
    )


if __name__ == "__main__":
    sys.exit(main())
