"""Why a row of the gradient check failed: rounding on a tiny entry, a real bug (and which), or ReLU's kink.

A FAIL is not always a bug. Two things make a correct gradient fail a central difference
(docs/05-classroom.md §5.2-§5.5):
    rounding  the loss is only known to about ε·|loss| (ε = 2.2e-16 in float64), so the
              difference quotient carries an absolute noise of up to ε·|loss|/h (the
              rounding term of docs/05-classroom.md eq. (3)), which a tiny entry may not clear;
    a kink    relu(x) has no derivative at 0; a step ±h that carries a pre-activation
              across 0 measures ½ + x/2h, neither slope (docs/05-classroom.md eq. (5)).
explain_failure tells the first from a bug; relu_margin says how close the second came;
error_pattern reads a failing row's signature (a sign, a factor of B, a missing path).

Shapes: B batch, H hidden, Z latent.
"""

from __future__ import annotations

import numpy as np

from ..gradcheck import GradCheckRow, numerical_gradient, random_problem, rel_error, term_losses
from ..layers import dense_forward, relu_forward, reparameterize_forward
from ..vae import encode
from ..config import VAEConfig


def relu_margin(params, x, eps, config: VAEConfig) -> float:
    """The smallest |pre-activation| of any hidden ReLU unit for this batch (inf for tanh).

    A central difference that moves a pre-activation across 0 measures the kink, not the
    gradient; with a margin well above h no perturbation of size h gets there.
    """
    if config.activation != "relu":
        return float("inf")
    mu, log_var = encode(params, x, config)  # (B, Z)
    eps = eps.reshape(len(x), -1, config.latent_dim)  # (B, K, Z): (B, Z) is K = 1
    z, _ = reparameterize_forward(mu[:, None], log_var[:, None], eps)  # (B, K, Z): the z the decoder saw
    z = z.reshape(-1, config.latent_dim)  # (B·K, Z)
    margin = float("inf")
    for prefix, h in (("encoder", x), ("decoder", z)):
        for i in range(len(config.hidden_dims)):
            a, _ = dense_forward(h, params[f"{prefix}.W{i}"], params[f"{prefix}.b{i}"])  # (B, H_i) pre-activation
            margin = min(margin, float(np.min(np.abs(a))))
            h, _ = relu_forward(a)  # (B, H_i)
    return margin


def rounding_floor(loss: float, h: float) -> float:
    """ε·|loss|/h: how exact a central difference of this loss can be, docs/05-classroom.md eq. (3).

    Each of f(x + h) and f(x − h) is only known to about ε·|loss| (ε = 2.2e-16 in float64); their
    difference can be off by twice that, and dividing by the step 2h gives ε·|loss|/h. (|loss|
    below 1 counts as 1: the rounding of the sums inside the loss does not shrink with it.)
    """
    return float(np.finfo(np.float64).eps * max(abs(loss), 1.0) / h)


def explain_entry(analytic: np.ndarray, numerical: np.ndarray, h: float, loss: float) -> str:
    """One line on a failing row: its worst entry, and how big the difference is next to rounding.

    A difference near the rounding floor (rounding_floor) on a tiny entry is rounding; a real
    bug is off by far more, on entries of every size.
    """
    err = np.abs(analytic - numerical)
    i = np.unravel_index(np.argmax(err), err.shape)
    floor = rounding_floor(loss, h)
    diff = abs(analytic[i] - numerical[i])
    verdict = (
        "at the rounding floor: rounding on a tiny entry, probably not a bug"
        if diff < 10 * floor
        else "far above the rounding floor: a wrong gradient"
    )
    index = ",".join(str(int(j)) for j in i)
    return (
        f"worst entry [{index}]: analytic {analytic[i]:.6e}, numerical {numerical[i]:.6e}, "
        f"|difference| {diff:.1e} vs rounding floor ε|loss|/h ≈ {floor:.0e} ({verdict})"
    )


def explain_failure(loss_fn, params, grads, key: str, h: float, loss: float) -> str:
    """explain_entry for the row ``key``: grads[key] against central differences of loss_fn."""
    analytic = np.asarray(grads[key], dtype=np.float64)
    return explain_entry(analytic, numerical_gradient(loss_fn, params[key], h), h, loss)


def error_pattern(analytic: np.ndarray, numerical: np.ndarray, batch_size: int) -> tuple[bool, str]:
    """What a failing row's two arrays say about the bug (docs/05-classroom.md §2.3).

    The classic mistakes leave a signature: a flipped sign gives analytic = −numerical (rel.
    error 1, equal norms); a missing path an analytic gradient of exactly 0; a sum where the
    loss takes the mean a factor of B; a missing transpose or a wrong formula no simple relation.
    Returns (whether the pattern is one of these clear ones, the sentence).
    """
    a, n = np.asarray(analytic, dtype=np.float64), np.asarray(numerical, dtype=np.float64)
    norm_a, norm_n = float(np.linalg.norm(a)), float(np.linalg.norm(n))
    if norm_a == 0:
        return True, ("|analytic| is exactly 0 while the loss does move: a missing path (a way this parameter "
                "reaches the loss that the backward pass never follows, e.g. one of the two paths into μ "
                "or log σ², docs/04-gradients.md eq. (16))")
    if norm_n == 0:
        return True, "this loss does not depend on the parameter, yet |analytic| > 0: a gradient sent down a path that does not exist"
    if rel_error(a, -n) < 1e-6:
        return True, "analytic = −numerical (rel. error 1.00 with equal norms): a sign flipped"
    k = float(np.vdot(a, n) / np.vdot(n, n))
    if rel_error(a, k * n) < 1e-6:
        for factor, words in ((batch_size, f"a factor of B = {batch_size}: a sum over the batch where the loss "
                               "takes the mean (the 1/B of docs/04-gradients.md eq. (17))"),
                              (1 / batch_size, f"a factor of 1/B = 1/{batch_size}: a mean over the batch where "
                               "the gradient needs the sum (e.g. db, docs/04-gradients.md eq. (2))")):
            if abs(k - factor) < 1e-6 * factor:
                return True, f"analytic = {k:.6g} × numerical, {words}"
        return True, f"analytic = {k:.6g} × numerical: a missing or extra constant factor"
    return False, ("no simple relation to the numerical gradient (not a sign, not a factor): a wrong formula, a "
            "wrong input (e.g. the cache used as if it were the other value), or a transpose in a square matrix")


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
