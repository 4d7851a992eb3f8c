"""What k samples per image cost: an epoch at k against the same model's epoch at k = 1.

With k samples of z per image the encoder still runs once per image, but the decoder runs on
B·k rows (docs/04-gradients.md section 7). So an epoch's matrix products grow in FLOPs by

    (encoder + k · decoder) / (encoder + decoder)

per image (for the encoder, without the product that would give the images' gradient). In time
they may grow by less: B·k rows make larger products, which a BLAS runs at a higher rate than
B rows. The bench (tinyvae/commands/bench.py --k) times the model's k = 1 twin, a K1Twin, in the
same run, each of its epochs and products alone right after one of the timed model's, so that
both ratios are measured on the same machine at the same moments. Nothing here prints.
"""

from __future__ import annotations

import statistics
from dataclasses import replace

import numpy as np

from ...optim import make_optimizer
from ...speed.step import make_step
from . import bench


class K1Twin:
    """The bench's model at k = 1 (objective "elbo"), from the same parameters: its step, its
    products' plan, and its own Generator for batches and noise; it keeps its epochs' times."""

    def __init__(self, path: str, config, params, optimizer: dict, batch_sizes: list[int], dtype,
                 seed: int, max_batch: int, threads: int | None = None):
        self.config = replace(config, k=1, objective="elbo")
        self.step = make_step(path, self.config, {key: v.copy() for key, v in params.items()},
                              make_optimizer(**optimizer), max_batch)
        if threads is not None:  # the fast step's update on as many threads as the timed model's
            self.step.threads = threads
        self.plan = bench.matmul_plan(self.config, params, make_optimizer(**optimizer),
                                      batch_sizes, dtype, np.random.default_rng(seed + 4))
        self.rng = np.random.default_rng(seed + 7)
        self.epochs: list[float] = []
        self.matmuls: list[float] = []

    def time_epoch(self, x, batch_size: int, binarize: str, dtype, batches: list[int],
                   binarized=None, keep: bool = True) -> None:
        """One training epoch, then its products alone; kept unless `keep` is False (a warm-up)."""
        seconds, _ = bench.train_epoch(self.step, x, batch_size, binarize, self.rng, dtype,
                                       self.config.latent_dim, binarized)
        matmuls = bench.matmul_epoch(self.plan, batches)
        if keep:
            self.epochs.append(seconds)
            self.matmuls.append(matmuls)

    def comparison_lines(self, k: int, epochs: list[float], matmuls: list[float], flops: float,
                         batches: list[int]) -> list[str]:
        """The twin's times, and the timed model's (at k) against them: epochs, products alone."""
        flops_1 = bench.plan_flops(self.plan, batches)[1]
        epoch, epoch_1 = statistics.median(epochs), statistics.median(self.epochs)
        matmul, matmul_1 = statistics.median(matmuls), statistics.median(self.matmuls)
        return ["k = 1 epochs (s): " + " ".join(f"{t:.3f}" for t in self.epochs),
                "k = 1 matmuls alone (s): " + " ".join(f"{t:.3f}" for t in self.matmuls),
                f"epoch at k = {k} / epoch at k = 1: {epoch / epoch_1:.2f} "
                f"(medians {epoch:.3f} s / {epoch_1:.3f} s)",
                f"matmuls alone at k = {k} / at k = 1: {matmul / matmul_1:.2f} in time, "
                f"{flops / flops_1:.2f} in FLOPs ({flops / 1e9:.1f} / {flops_1 / 1e9:.1f} GFLOP)"]
