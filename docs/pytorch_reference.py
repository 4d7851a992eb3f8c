"""The PyTorch side of docs/06-results.md's speed comparison: PyTorch's examples/vae training loop.

Not part of tinyvae (which never imports torch): run it in a virtual environment of its own,

    python -m venv /tmp/torchvenv && /tmp/torchvenv/bin/pip install torch numpy
    (MNIST must be where tinyvae finds it: TINYVAE_DATA, or the cache that examples/mnist.py fills)
    /tmp/torchvenv/bin/python docs/pytorch_reference.py                 # PyTorch's default Adam
    /tmp/torchvenv/bin/python docs/pytorch_reference.py --optim fused   # its fused Adam

The model, loss and loop are those of PyTorch's example (784-400-20, ReLU, sigmoid output with
binary cross-entropy summed over pixels plus the closed-form KL, Adam 1e-3, batch 128, a new
permutation every epoch), on the same grayscale MNIST that `python -m tinyvae bench` times. The
images are read from the IDX file with NumPy and kept in memory as one tensor, as tinyvae keeps
them, so neither side is timed loading data. It prints each epoch's seconds and the median of
the epochs after the first (the warm-up), the figure docs/06-results.md compares.
"""

import argparse
import gzip
import os
import statistics
import time

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn


def load_images(data_dir: str) -> torch.Tensor:
    """MNIST's 60,000 training images as one (60000, 784) float32 tensor in [0, 1]."""
    path = os.path.join(data_dir, "mnist", "train-images-idx3-ubyte.gz")
    with gzip.open(path, "rb") as f:
        raw = f.read()
    magic, n, rows, cols = (int(v) for v in np.frombuffer(raw, dtype=">u4", count=4))
    if magic != 2051 or len(raw) != 16 + n * rows * cols:
        raise SystemExit(f"{path}: not an IDX image file of the size its header gives")
    pixels = np.frombuffer(raw, dtype=np.uint8, offset=16).reshape(n, rows * cols)
    return torch.from_numpy(pixels.astype(np.float32) / 255.0)


class VAE(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(784, 400)
        self.fc21 = nn.Linear(400, 20)  # mu
        self.fc22 = nn.Linear(400, 20)  # log_var
        self.fc3 = nn.Linear(20, 400)
        self.fc4 = nn.Linear(400, 784)

    def forward(self, x):
        h = F.relu(self.fc1(x))
        mu, log_var = self.fc21(h), self.fc22(h)
        z = mu + torch.exp(0.5 * log_var) * torch.randn_like(mu)
        return torch.sigmoid(self.fc4(F.relu(self.fc3(z)))), mu, log_var


def loss_function(recon, x, mu, log_var):
    bce = F.binary_cross_entropy(recon, x, reduction="sum")
    kl = -0.5 * torch.sum(1 + log_var - mu.pow(2) - log_var.exp())
    return bce + kl


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data-dir", default=os.environ.get("TINYVAE_DATA", os.path.expanduser("~/.cache/tinyvae")),
                   help="the folder holding mnist/, as for tinyvae (default: TINYVAE_DATA, else "
                        "~/.cache/tinyvae, where tinyvae downloads it)")
    p.add_argument("--epochs", type=int, default=6)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--optim", choices=("default", "foreach", "fused"), default="default",
                   help="PyTorch's own choice of Adam implementation, or the one named")
    p.add_argument("--seed", type=int, default=1)
    args = p.parse_args()

    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    backend = [line.strip() for line in torch.__config__.parallel_info().splitlines()
               if "Math Kernel" in line or "parallel backend" in line]
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; " + "; ".join(backend))
    x_train = load_images(args.data_dir)
    n = len(x_train)

    model = VAE()
    kwargs = {"default": {}, "foreach": {"foreach": True}, "fused": {"fused": True}}[args.optim]
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3, **kwargs)
    print(f"Adam: {args.optim}, batch 128")
    times = []
    for epoch in range(1, args.epochs + 1):
        start = time.perf_counter()
        total = 0.0
        order = torch.randperm(n)
        for i in range(0, n, 128):
            x = x_train[order[i:i + 128]]
            optimizer.zero_grad()
            recon, mu, log_var = model(x)
            loss = loss_function(recon, x, mu, log_var)
            loss.backward()
            total += loss.item()
            optimizer.step()
        times.append(time.perf_counter() - start)
        print(f"epoch {epoch}: {times[-1]:.3f} s, train loss {total / n:.2f}", flush=True)
    if len(times) > 1:
        print(f"median epoch (epochs 2-{len(times)}): {statistics.median(times[1:]):.3f} s")


if __name__ == "__main__":
    main()
