"""The PyTorch side of docs/06-results.md's speed comparison: PyTorch's examples/vae training loop.

Not part of tinyvae (which never imports torch): run it in a virtual environment of its own,

    python -m venv /tmp/torchvenv && /tmp/torchvenv/bin/pip install torch numpy
    (MNIST must be where tinyvae finds it: TINYVAE_DATA, or the cache that examples/mnist.py fills)
    /tmp/torchvenv/bin/python docs/pytorch_reference.py                 # PyTorch's default Adam
    /tmp/torchvenv/bin/python docs/pytorch_reference.py --optim fused   # its fused Adam
    # Burda et al.'s VAE (docs/06-results.md, "Reproducing Burda et al."): 784-200-200-50 tanh,
    # batch 20, dynamic binarization, Adam with eps 1e-4, fused
    /tmp/torchvenv/bin/python docs/pytorch_reference.py --hidden 200,200 --latent-dim 50 \
        --activation tanh --batch-size 20 --binarize dynamic --eps 1e-4 --optim fused

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
    """PyTorch's example VAE (784-400-20 ReLU by default), with any hidden sizes and activation."""

    def __init__(self, hidden=(400,), latent_dim=20, activation="relu"):
        super().__init__()
        act = {"relu": nn.ReLU, "tanh": nn.Tanh}[activation]
        sizes = (784, *hidden)
        self.encoder = nn.Sequential(*[m for a, b in zip(sizes, sizes[1:])
                                       for m in (nn.Linear(a, b), act())])
        self.fc21 = nn.Linear(sizes[-1], latent_dim)  # mu
        self.fc22 = nn.Linear(sizes[-1], latent_dim)  # log_var
        sizes = (latent_dim, *reversed(hidden))
        self.decoder = nn.Sequential(*[m for a, b in zip(sizes, sizes[1:])
                                       for m in (nn.Linear(a, b), act())],
                                     nn.Linear(sizes[-1], 784))

    def forward(self, x):
        h = self.encoder(x)
        mu, log_var = self.fc21(h), self.fc22(h)
        z = mu + torch.exp(0.5 * log_var) * torch.randn_like(mu)
        return torch.sigmoid(self.decoder(z)), mu, log_var


def loss_function(recon, x, mu, log_var):
    bce = F.binary_cross_entropy(recon, x, reduction="sum")
    kl = -0.5 * torch.sum(1 + log_var - mu.pow(2) - log_var.exp())
    return bce + kl


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data-dir",
                   default=os.environ.get("TINYVAE_DATA", os.path.expanduser("~/.cache/tinyvae")),
                   help="the folder holding mnist/, as for tinyvae (default: TINYVAE_DATA, else "
                        "~/.cache/tinyvae, where tinyvae downloads it)")
    p.add_argument("--epochs", type=int, default=6)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--optim", choices=("default", "foreach", "fused"), default="default",
                   help="PyTorch's own choice of Adam implementation, or the one named")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--hidden", default="400", help="hidden sizes, e.g. 400 or 200,200")
    p.add_argument("--latent-dim", type=int, default=20)
    p.add_argument("--activation", choices=("relu", "tanh"), default="relu")
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--binarize", choices=("none", "dynamic"), default="none",
                   help="dynamic: a fresh Bernoulli draw of every image each epoch, as tinyvae's")
    p.add_argument("--eps", type=float, default=1e-8, help="Adam's eps (Burda et al.: 1e-4)")
    p.add_argument("--train-images", type=int, default=None,
                   help="only the first N training images per epoch "
                        "(short epochs on a busy machine)")
    args = p.parse_args()

    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    backend = [line.strip() for line in torch.__config__.parallel_info().splitlines()
               if "Math Kernel" in line or "parallel backend" in line]
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; " + "; ".join(backend))
    x_train = load_images(args.data_dir)[:args.train_images]
    n = len(x_train)

    hidden = tuple(int(h) for h in args.hidden.split(","))
    model = VAE(hidden, args.latent_dim, args.activation)
    kwargs = {"default": {}, "foreach": {"foreach": True}, "fused": {"fused": True}}[args.optim]
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3, eps=args.eps, **kwargs)
    B = args.batch_size
    print(f"784-{args.hidden.replace(',', '-')}-{args.latent_dim} {args.activation}; "
          f"Adam: {args.optim}, eps {args.eps:g}, batch {B}, binarize {args.binarize}")
    times = []
    for epoch in range(1, args.epochs + 1):
        start = time.perf_counter()
        total = 0.0
        order = torch.randperm(n)
        data = torch.bernoulli(x_train) if args.binarize == "dynamic" else x_train
        for i in range(0, n, B):
            x = data[order[i:i + B]]
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
