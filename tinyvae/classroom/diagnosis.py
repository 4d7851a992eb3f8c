"""Why a row of the gradient check failed: rounding on a tiny entry, a real bug, or ReLU's kink.

A FAIL is not always a bug. Two things make a correct gradient fail a central difference
(docs/05-classroom.md §5.2-§5.5):
    rounding  the loss is only known to about ε·|loss| (ε = 2.2e-16 in float64), so the
              difference quotient carries an absolute noise of ε·|loss|/2h, which a tiny
              entry may not clear;
    a kink    relu(x) has no derivative at 0; a step ±h that carries a pre-activation
              across 0 measures ½ + x/2h, neither slope (docs/05-classroom.md eq. (5)).
explain_failure tells the first from a bug; relu_margin says how close the second came.

Shapes: B batch, H hidden, Z latent.
"""

from __future__ import annotations

import numpy as np

from ..gradcheck import GradCheckRow, numerical_gradient, random_problem, term_losses
from ..layers import dense_forward, relu_forward, reparameterize_forward
from ..vae import VAEConfig, encode


def relu_margin(params, x, eps, config: VAEConfig) -> float:
    """The smallest |pre-activation| of any hidden ReLU unit for this batch (inf for tanh).

    A central difference that moves a pre-activation across 0 measures the kink, not the
    gradient; with a margin well above h no perturbation of size h gets there.
    """
    if config.activation != "relu":
        return float("inf")
    mu, log_var = encode(params, x, config)  # (B, Z)
    z, _ = reparameterize_forward(mu, log_var, eps)  # (B, Z): the z the decoder saw
    margin = float("inf")
    for prefix, h in (("encoder", x), ("decoder", z)):
        for i in range(len(config.hidden_dims)):
            a, _ = dense_forward(h, params[f"{prefix}.W{i}"], params[f"{prefix}.b{i}"])  # (B, H_i) pre-activation
            margin = min(margin, float(np.min(np.abs(a))))
            h, _ = relu_forward(a)  # (B, H_i)
    return margin


def explain_failure(loss_fn, params, grads, key: str, h: float, loss: float) -> str:
    """One line on a failing row: its worst entry, and how big the difference is next to rounding.

    A central difference cannot be more exact than the rounding of the loss itself, about
    ε·|loss| (ε = 2.2e-16 in float64), divided by the step 2h. A difference near that floor on
    a tiny entry is rounding; a real bug is off by far more, on entries of every size.
    """
    analytic = np.asarray(grads[key], dtype=np.float64)
    numerical = numerical_gradient(loss_fn, params[key], h)
    err = np.abs(analytic - numerical)
    i = np.unravel_index(np.argmax(err), err.shape)
    floor = np.finfo(np.float64).eps * max(abs(loss), 1.0) / (2 * h)
    diff = abs(analytic[i] - numerical[i])
    verdict = (
        "at the rounding floor: rounding on a tiny entry, probably not a bug"
        if diff < 10 * floor
        else "far above the rounding floor: a wrong gradient"
    )
    index = ",".join(str(int(j)) for j in i)
    return (
        f"worst entry [{index}]: analytic {analytic[i]:.6e}, numerical {numerical[i]:.6e}, "
        f"|difference| {diff:.1e} vs rounding floor ε|loss|/2h ≈ {floor:.0e} ({verdict})"
    )


def explain_vae_failures(config: VAEConfig, batch_size: int, seed: int, h: float,
                         rows: list[tuple[str, GradCheckRow]]) -> dict[int, str]:
    """explain_failure's line for each failing row of check_vae(config, batch_size, seed, h, ...).

    Rebuilds the same problem from the same seed as check_vae did. Returns {row index: line}.
    """
    params, x, eps = random_problem(config, batch_size, np.random.default_rng(seed))
    notes = {}
    for term, loss, grads, loss_fn in term_losses(params, x, eps, config):
        for i, (row_term, row) in enumerate(rows):
            if row_term == term and not row.passed:
                notes[i] = explain_failure(loss_fn, params, grads, row.name, h, loss)
    return notes


def vae_relu_margin(config: VAEConfig, batch_size: int, seed: int) -> float:
    """relu_margin of the problem check_vae(config, batch_size, seed, ...) draws."""
    return relu_margin(*random_problem(config, batch_size, np.random.default_rng(seed)), config)
