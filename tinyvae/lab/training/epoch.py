"""One epoch of a training run: a pass over the training images in shuffled minibatches.

Kingma & Welling's Algorithm 1 (tinyvae/train.py) as the runner (runner.py) drives it: the
minibatches of one Generator (dynamically binarized, if so, into one buffer for every epoch),
the noise ε drawn from the same Generator, β warmed up batch by batch, the running means of
the losses for the progress line, and divergence stopped where it happens, named by its
epoch and batch.

Shapes: B batch, D data, K samples of z per image, Z latent.
"""

from __future__ import annotations

import math
import time

import numpy as np

from ...train import kl_weight
from ..datasets.binarize import minibatches
from .progress import EpochProgress


class TrainingDiverged(RuntimeError):
    """The loss (or a parameter) became NaN or infinite; the message names the epoch and batch."""


def train_epoch(step, x_train: np.ndarray, rng: np.random.Generator, *, epoch: int, epochs: int,
                settings: dict, binarized: np.ndarray | None, log: EpochProgress) -> dict:
    """One pass over x_train in shuffled minibatches; returns the epoch's partial history record.

    The train losses are means over the epoch's examples (each batch mean weighted by its size,
    so a smaller last batch counts for what it holds). Raises TrainingDiverged naming the epoch
    and batch where the loss stops being finite.
    """
    config, batch_size = step.config, settings["batch_size"]
    n_batches = math.ceil(len(x_train) / batch_size)
    dtype = step.params["encoder.W_mu"].dtype
    totals = np.zeros(3)  # Σ over examples of loss, recon, kl
    seen = 0
    t_start = time.perf_counter()
    batches = minibatches(x_train, batch_size, rng, binarize=settings["binarize"], out=binarized)
    for i, x in enumerate(batches, start=1):
        beta = kl_weight((epoch - 1) * n_batches + i - 1, n_batches, settings["warmup_epochs"],
                         config.beta)
        eps = rng.standard_normal((len(x), config.k, config.latent_dim), dtype=dtype)  # (B, K, Z)
        try:
            stats = step.step(x, eps, beta)
        except ValueError:  # the core refuses NaN parameters by name: here that means divergence
            if all(np.all(np.isfinite(arr)) for arr in step.params.values()):
                raise
            stats = {"loss": math.nan}
        if not math.isfinite(stats["loss"]):
            raise TrainingDiverged(f"training diverged: the loss became {stats['loss']} at epoch "
                                   f"{epoch}, batch {i}/{n_batches} (β = {beta:.3g}, "
                                   f"lr = {step.optimizer.lr:g}).")
        totals += len(x) * np.array([stats["loss"], stats["recon"], stats["kl"]])
        seen += len(x)
        log.batch(epoch, epochs, i, n_batches, totals[0] / seen, seen,
                  time.perf_counter() - t_start)
    return {"epoch": epoch, "beta": float(beta), "train_loss": float(totals[0] / seen),
            "train_recon": float(totals[1] / seen), "train_kl": float(totals[2] / seen),
            "test_loss": None, "test_recon": None, "test_kl": None}
