"""optim.SGD, optim.Adagrad and optim.Adam as a few whole-array passes over flat (P,) buffers.

The fast step keeps the parameters, the gradients and each optimizer slot in one flat
array apiece (speed/layout.py), so an update is a dozen NumPy operations over ~650,000
numbers rather than a dozen per parameter key, each one pass through memory, in place,
into one scratch array. The numbers are optim.py's; tests/test_fast.py compares them.

Adam uses the form at the end of Kingma & Ba (2015), Sec. 2, which folds both bias
corrections into the step size and ε:

    θ ← θ − α_t m / (√v + ε̂),   α_t = η √(1 − β2ᵗ) / (1 − β1ᵗ),   ε̂ = ε √(1 − β2ᵗ)

the same numbers as η m̂ / (√v̂ + ε) with two fewer passes.

The optimizer object supplies the hyperparameters, read at every step (a changed `lr`
takes effect), and its `t` is the step counter: update() advances it. With threads=2 the
passes run over the two halves of the buffers at once, on two cores (speed/halves.py):
the same numbers, bit for bit.

Shapes: P the number of parameters.
"""

from __future__ import annotations

import math

import numpy as np

from ..optim import SGD, Adagrad, Adam, Optimizer
from . import halves

SUPPORTED = (SGD, Adagrad, Adam)


def clip(optimizer: Optimizer, grad: np.ndarray) -> None:
    """optim.clip_by_global_norm on the flat gradient, in place; sets optimizer.last_grad_norm.

    ‖g‖ of all gradients as one vector, accumulated in float64 as optim does, so that both
    paths clip alike; g ← g · max_norm / ‖g‖ if ‖g‖ > max_norm (and finite).
    """
    # in float64, float32 gradients neither overflow nor lose small terms
    g64 = grad.astype(np.float64, copy=False)
    norm = math.sqrt(float(np.dot(g64, g64)))
    optimizer.last_grad_norm = norm
    if math.isfinite(norm) and norm > optimizer.clip_norm:
        grad *= optimizer.clip_norm / norm


def update(optimizer: Optimizer, theta: np.ndarray, grad: np.ndarray, slots: dict,
           scratch: np.ndarray, threads: int = 1) -> None:
    """Clip (if asked), advance optimizer.t, then one step of `optimizer`'s rule on theta (P,).

    threads: 1, or 2 to run the two halves of the passes at once (speed/halves.py).
    """
    if optimizer.clip_norm is not None:
        clip(optimizer, grad)  # needs the whole gradient: before the halves part
    optimizer.t += 1
    t = optimizer.t
    if isinstance(optimizer, Adam):
        b1, b2 = optimizer.beta1, optimizer.beta2
        # both bias corrections folded in
        alpha = optimizer.lr * math.sqrt(1.0 - b2**t) / (1.0 - b1**t)
        eps_hat = optimizer.eps * math.sqrt(1.0 - b2**t)
        halves.run(adam, (theta, grad, slots["m"], slots["v"], scratch), b1, b2, alpha, eps_hat,
                   threads=threads)
    elif isinstance(optimizer, Adagrad):
        halves.run(adagrad, (theta, grad, slots["sum_sq"], scratch), optimizer.lr, optimizer.eps,
                   threads=threads)
    elif optimizer.momentum > 0.0:
        halves.run(sgd_momentum, (theta, grad, slots["velocity"], scratch), optimizer.lr,
                   optimizer.momentum, threads=threads)
    else:
        halves.run(sgd, (theta, grad, scratch), optimizer.lr, threads=threads)


def adam(theta, g, m, v, tmp, b1, b2, alpha, eps_hat) -> None:
    """m ← β1 m + (1 − β1) g;  v ← β2 v + (1 − β2) g²;  θ ← θ − α_t m / (√v + ε̂). All (P,)."""
    m *= b1
    np.multiply(g, 1.0 - b1, out=tmp)
    m += tmp
    v *= b2
    np.multiply(g, g, out=tmp)
    tmp *= 1.0 - b2
    v += tmp
    np.sqrt(v, out=tmp)  # √v + ε̂
    tmp += eps_hat
    np.divide(m, tmp, out=tmp)
    tmp *= alpha
    theta -= tmp


def adagrad(theta, g, G, tmp, lr, eps) -> None:
    """G ← G + g²;  θ ← θ − η g / (√G + ε). All (P,)."""
    np.multiply(g, g, out=tmp)
    G += tmp
    np.sqrt(G, out=tmp)
    tmp += eps
    np.divide(g, tmp, out=tmp)
    tmp *= lr
    theta -= tmp


def sgd(theta, g, tmp, lr) -> None:
    """θ ← θ − η g. All (P,)."""
    np.multiply(g, lr, out=tmp)
    theta -= tmp


def sgd_momentum(theta, g, v, tmp, lr, momentum) -> None:
    """v ← ρ v − η g;  θ ← θ + v, with ρ the momentum (optim.SGD says why not μ). All (P,)."""
    np.multiply(g, lr, out=tmp)
    v *= momentum
    v -= tmp
    theta += v
