"""Training: minibatches, the reparameterized gradient, an optimizer step, repeated.

One step is the whole algorithm of Kingma & Welling (2014), Algorithm 1:

    x    ← a minibatch of B images          (B, D)
    ε    ← N(0, I), K rows per image        (B, K, Z)
    g    ← ∇_{θ,φ} [recon + β·KL](x, ε)     vae.loss_and_grads
                                             (docs/02-variational-inference.md eq. (11))
    θ, φ ← an optimizer step with g          optim.py

(θ the decoder's weights, φ the encoder's: docs/02-variational-inference.md section 7.)

`train_epochs` repeats it over shuffled minibatches for a number of epochs: the loop a student
reads. The lab's runner (tinyvae/lab/training/runner.py) runs the same steps and adds what a long
run needs (checkpoints, exact resume, Ctrl-C, divergence, history files, progress); the
speed wing's FastStep (tinyvae/speed/step.py) computes the same step faster.

A *step object* owns a run's state: the parameters and the optimizer (with its moments).
`ReferenceStep` is this file's step, the readable one; FastStep has the same interface,
so a loop can take either:

    step.params                     the live parameters, a dict keyed as config.param_shapes
    step.optimizer                  the optimizer, whose .state and .t are the live state
    step.step(x, eps, beta) -> {"loss", "recon", "kl"}, batch means before the update

Shapes: B batch, D data, Z latent.
"""

from __future__ import annotations

import math
from collections.abc import Iterator

import numpy as np

from ._checks import check_batch, positive_int
from .config import Params, VAEConfig, dtype_of
from .optim import Optimizer
from .vae import loss_and_grads


def train_step(params: Params, optimizer: Optimizer, x: np.ndarray, eps: np.ndarray,
               config: VAEConfig, beta: float | None = None) -> dict[str, float]:
    """One gradient step on the minibatch x (B, D) with noise eps (B, K, Z); params change in place.

    Returns the batch means {"loss", "recon", "kl"} measured before the step.
    """
    _, grads, stats = loss_and_grads(params, x, eps, config, beta=beta)  # g = ∇_{θ,φ} loss
    optimizer.step(params, grads)  # θ, φ ← the optimizer's step with g
    return stats


class ReferenceStep:
    """The readable step as an object that owns the run's state: train_step on `params`.

    `params` is updated in place (`.params` is the dict passed in) and the optimizer keeps
    its own state, as it always does. FastStep has the same interface.
    """

    def __init__(self, config: VAEConfig, params: Params, optimizer: Optimizer):
        self.config = config
        self.params = params
        self.optimizer = optimizer

    def step(self, x: np.ndarray, eps: np.ndarray, beta: float | None = None) -> dict[str, float]:
        """Forward, loss, backward and the optimizer's update; returns the batch-mean stats."""
        return train_step(self.params, self.optimizer, x, eps, self.config, beta)

    def optimizer_state_dict(self) -> dict[str, np.ndarray]:
        return self.optimizer.state_dict()

    def load_optimizer_state_dict(self, state: dict[str, np.ndarray]) -> None:
        """Restore the optimizer's state (a checkpoint's is checked where it is read)."""
        self.optimizer.load_state_dict(state)

    @property
    def last_grad_norm(self) -> float | None:
        return self.optimizer.last_grad_norm


def kl_weight(step: int, steps_per_epoch: int, warmup_epochs: float, beta: float) -> float:
    """The KL weight for global batch number `step` (0 for the first batch of the run).

        β(step) = beta · min(1, step / (warmup_epochs · steps_per_epoch))

    so the very first batch has β = 0 and β reaches `beta` after `warmup_epochs` epochs
    (KL warm-up: the decoder learns to use z before the KL pulls q(z|x) onto the prior).
    Without warm-up (warmup_epochs = 0) it is `beta` from the start.
    """
    if warmup_epochs <= 0:
        return float(beta)
    return float(beta) * min(1.0, step / (warmup_epochs * steps_per_epoch))


def shuffled_batches(n: int, batch_size: int, rng: np.random.Generator) -> Iterator[np.ndarray]:
    """Index arrays of one epoch's minibatches: a fresh permutation cut into batch_size pieces."""
    order = rng.permutation(n)
    for start in range(0, n, batch_size):
        yield order[start:start + batch_size]


def train_epochs(params: Params, optimizer: Optimizer, config: VAEConfig, x_train: np.ndarray,
                 rng: np.random.Generator, *, epochs: int, batch_size: int = 128) -> list[float]:
    """Algorithm 1 of Kingma & Welling (2014), as plainly as it can be written.

    Trains `params` in place on the images x_train (N, D), pixels in [0, 1], and returns the
    mean training loss of each epoch, in nats per image. No checkpoints, no warm-up, no
    progress: tinyvae/lab/training/runner.py's `fit` adds those.
    """
    epochs, batch_size = positive_int("epochs", epochs), positive_int("batch_size", batch_size)
    # each epoch's loss is a mean over its images, so there must be some
    check_batch(x_train, config, "x_train", empty_ok=False)
    dtype = dtype_of(params)
    losses = []
    for _ in range(epochs):
        total = 0.0
        for index in shuffled_batches(len(x_train), batch_size, rng):
            x = x_train[index]  # (B, D)
            # ε ← N(0, I), K rows per image: (B, K, Z)
            eps = rng.standard_normal((len(x), config.k, config.latent_dim), dtype=dtype)
            stats = train_step(params, optimizer, x, eps, config)
            total += stats["loss"] * len(x)
            if not math.isfinite(stats["loss"]):
                raise FloatingPointError(f"the loss became {stats['loss']}; "
                                         "try a smaller learning rate")
        losses.append(total / len(x_train))
    return losses

