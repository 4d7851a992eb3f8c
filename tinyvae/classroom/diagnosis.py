"""Why a row of the gradient check failed:
rounding on a tiny entry, a real bug (and which), or ReLU's kink.

A FAIL is not always a bug. Two things make a correct gradient fail a central difference
(docs/05-classroom.md §5.2-§5.5):
    rounding  the loss is only known to about ε·|loss| (ε = 2.2e-16 in float64), so the
              difference quotient carries an absolute noise of up to ε·|loss|/h (the
              rounding term of docs/05-classroom.md eq. (3)), which a tiny entry may not clear;
    a kink    relu(x) has no derivative at 0; a step ±h that carries a pre-activation
              across 0 measures ½ + x/2h, neither slope (docs/05-classroom.md eq. (5)).
explain_failure tells the first from a bug; relu_margin says how close the second came;
error_pattern reads a failing array's signature: a sign, a missing path or output (exactly 0),
a transpose, or a constant factor named for what students actually get wrong: a missing or
extra ½, a factor of B (a sum where the mean belongs, or the reverse), of σ or of σ². The
grader checks with B = 3 and σ = 0.6 so that these are numbers of their own (grader.py).
explain_rung turns a failed rung into its note: which output of the function is wrong, and
why, from its most informative row.

Shapes: B batch, H hidden, Z latent.
"""

from __future__ import annotations

import itertools
from typing import NamedTuple

import numpy as np

from ..config import VAEConfig
from ..gradcheck import GradCheckRow, numerical_gradient, random_problem, rel_error, term_losses
from ..layers import dense_forward, relu_forward, reparameterize_forward
from ..vae import encoder_forward


def mlp_margin(params: dict, h: np.ndarray, prefix: str, n_layers: int) -> float:
    """The smallest |pre-activation| of the first n ReLU layers of ``prefix`` (encoder or decoder)
    for input h."""
    margin = float("inf")
    for i in range(n_layers):
        # the pre-activation, (B, H_i)
        a, _ = dense_forward(h, params[f"{prefix}.W{i}"], params[f"{prefix}.b{i}"])
        margin = min(margin, float(np.min(np.abs(a))))
        h, _ = relu_forward(a)  # (B, H_i)
    return margin


def relu_margin(params, x, eps, config: VAEConfig) -> float:
    """The smallest |pre-activation| of any hidden ReLU unit for this batch (inf for tanh).

    A central difference that moves a pre-activation across 0 measures the kink, not the
    gradient; with a margin well above h no perturbation of size h gets there.
    """
    if config.activation != "relu":
        return float("inf")
    mu, log_var, _ = encoder_forward(params, x, config)  # (B, Z)
    eps = eps.reshape(len(x), -1, config.latent_dim)  # (B, K, Z): (B, Z) is K = 1
    z, _ = reparameterize_forward(mu[:, None], log_var[:, None], eps)  # (B, K, Z): the decoder's z
    z = z.reshape(-1, config.latent_dim)  # (B·K, Z)
    n = len(config.hidden_dims)
    return min(mlp_margin(params, x, "encoder", n), mlp_margin(params, z, "decoder", n))


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
    bug is off by far more, on entries of every size. A NaN or inf entry is named as it is.
    """
    if not np.all(np.isfinite(analytic)):
        i = tuple(np.argwhere(~np.isfinite(analytic))[0])
        index = ",".join(str(int(j)) for j in i)
        return (f"first entry that is not a number [{index}]: analytic {analytic[i]}, "
                f"numerical {numerical[i]:.6e}")
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


class Pattern(NamedTuple):
    """A failing array's signature: how telling it is (2 named, 1 a factor only, 0 none),
    a key, the words."""

    rank: int
    key: str
    words: str


FACTOR_WORDS = {  # (factor, power) -> what it means, for analytic = factor^power × numerical
    ("2", 1): "a missing ½", ("2", -1): "an extra ½ (or a missing 2)",
    ("B", 1): "a sum over the batch where the loss takes the mean "
              "(the 1/B of docs/04-gradients.md eq. (17))",
    ("B", -1): "a mean over the batch where the gradient needs the sum "
               "(e.g. db, docs/04-gradients.md eq. (2))",
    ("σ", 2): "a missing 1/σ² (the variance σ² divides)", ("σ", -2): "an extra 1/σ²",
    ("σ", 1): "σ where σ² belongs (a missing 1/σ)",
    ("σ", -1): "an extra 1/σ (σ where 1 or σ² belongs?)",
}


def error_pattern(analytic: np.ndarray, numerical: np.ndarray, factors: dict[str, float],
                  zero: str = "path") -> Pattern:
    """What a failing array says about the bug (docs/05-classroom.md §2.3).

    factors: the constants a factor may be made of, {"B": batch size} and for a Gaussian
    likelihood {"σ": its std}; ½ is always tried. A factor of the form ±2^a B^b σ^c (|a|, |b| ≤ 1,
    |c| ≤ 2) is named part by part. zero: "path" (a row of the whole VAE: an exact 0 is a path
    the backward never follows) or "output" (a function's own output left at 0).
    """
    a, n = np.asarray(analytic, dtype=np.float64), np.asarray(numerical, dtype=np.float64)
    if not np.any(a):
        if zero == "output":
            return Pattern(2, "output",
                           "exactly 0 where the numerical gradient is not: an output left out")
        return Pattern(2, "path", "|analytic| is exactly 0 while the loss does move: a missing "
                       "path (a way this parameter reaches the loss that the backward pass never "
                       "follows, e.g. one of the two paths into μ or log σ², "
                       "docs/04-gradients.md eq. (16))")
    if not np.any(n):
        return Pattern(2, "no-path", "this loss does not depend on it, yet |analytic| > 0: "
                       "a gradient sent down a path that does not exist")
    if a.ndim == 2 and a.shape[0] == a.shape[1] and rel_error(a, n.T) < 1e-6:
        return Pattern(2, "transpose", "analytic = numericalᵀ: a transpose")
    k = float(np.vdot(a, n) / np.vdot(n, n))
    if rel_error(a, k * n) >= 1e-6:
        return Pattern(0, "none", "no simple relation to the numerical gradient (not a sign, not a "
                       "factor): a wrong formula, a wrong input (e.g. the cache used as if it were "
                       "the other value), or a transpose in a square matrix")
    named = _named_factor(abs(k), factors)
    sign = ["a flipped sign"] if k < 0 else []
    if named is None:
        return Pattern(1, "factor",
                       f"analytic = {k:.6g} × numerical: a missing or extra constant factor"
                       + (" and a flipped sign" if sign else ""))
    if not named and sign:
        return Pattern(2, "sign",
                       "analytic = −numerical (rel. error 1.00 with equal norms): a sign flipped")
    words = [FACTOR_WORDS[part] for part in named]
    value = " × ".join(_shown(name, power) for name, power in named)
    return Pattern(2, ",".join([*(f"{name}{power:+d}" for name, power in named),
                                *(["sign"] if sign else [])]),
                   f"analytic = {'−' if sign else ''}{value} × numerical = {k:.6g} × numerical: "
                   + "; ".join(words + sign))


def weights_pattern(w: np.ndarray, axis: int) -> Pattern | None:
    """What a wrong w̃ (2-D, normalized_weights' output along ``axis``) says about the bug.

    w̃_i = w_i / Σ_j w_j is finite, non-negative and sums to 1 along its axis
    (docs/04-gradients.md eq. (19)): the first of these that fails names the mistake.
    None when all three hold.
    """
    bad = int(np.sum(~np.isfinite(w)))
    if bad:
        return Pattern(2, "finite", f"{bad} of its {w.size} entries are NaN or infinite: "
                       "e^(log w) overflows to inf above log w ≈ 709 and underflows to 0 below "
                       "−745, and so does Σ_j w_j; subtract the largest log w along the axis "
                       "first (w̃ is unchanged)")
    if np.any(w < 0):
        return Pattern(2, "negative", "it has entries below 0, and no weight w = e^(log w) is "
                       "negative: log w̃ where w̃ belongs?")
    sums = w.sum(axis=axis)  # w is 2-D: 1 - axis is the other axis
    if np.allclose(sums, 1, rtol=0, atol=1e-9):
        return None
    if np.allclose(w.sum(axis=1 - axis), 1, rtol=0, atol=1e-9):
        return Pattern(2, "axis", f"it sums to 1 along axis {1 - axis}, not along axis {axis}, "
                       "the axis it was given: normalized over the wrong axis")
    if np.isclose(w.sum(), 1, rtol=0, atol=1e-9):
        return Pattern(2, "axis", f"it sums to 1 over the whole array, not along axis {axis}, "
                       "the axis it was given: normalized over every axis at once")
    n = w.shape[axis]
    if np.allclose(sums, n, rtol=1e-9, atol=0):
        return Pattern(2, "mean", f"it sums to {n} along axis {axis}, the number of weights "
                       "there: divided by their mean, not by their sum (the 1/K of L_K's mean "
                       "cancels in its derivative)")
    return Pattern(2, "unnormalized", f"its sums along axis {axis} run from {sums.min():.3g} "
                   f"to {sums.max():.3g}, not 1: the weights w, not w̃ = w / Σ_j w_j, which sum "
                   "to 1")


def _named_factor(k: float, factors: dict[str, float]) -> list | None:
    """[(name, power), ...] with k = Π name^power, the fewest parts first; [] for k = 1;
    None if none fits."""
    values = {"2": 2.0, **factors}
    ranges = {"2": (-1, 0, 1), "B": (-1, 0, 1), "σ": (-2, -1, 0, 1, 2)}
    names = list(values)
    candidates = itertools.product(*(ranges[name] for name in names))
    for powers in sorted(candidates, key=lambda p: sum(q != 0 for q in p)):
        factor = float(np.prod([values[name] ** q for name, q in zip(names, powers)]))
        if abs(k - factor) <= 1e-6 * factor:
            return [(name, q) for name, q in zip(names, powers) if q]
    return None


def _shown(name: str, power: int) -> str:
    return {1: name, -1: f"1/{name}", 2: f"{name}²", -2: f"1/{name}²"}[power]


def explain_rung(exercise, unit_failures: list, unit_passes: list, model_failures: list,
                 factors: dict, h: float, pattern=None) -> tuple[str, str]:
    """(the note of a failed rung, its pattern's key).
    Failures are (name, analytic, numerical, loss), in order.

    When the function's own outputs fail, each failing output is named with its pattern (and
    the right ones as right): that is where the bug is. Otherwise the most informative failing
    row of the whole VAE is explained (a named pattern over a bare factor over none).
    pattern: the unit's own reading of a wrong output, (name, analytic) -> Pattern or None,
    tried before error_pattern (units.py).
    """
    if unit_failures:
        wrong = [name for name, *_ in unit_failures]
        right = f"; {_listed(unit_passes)} {_is(unit_passes)} right" if unit_passes else ""
        lines = [f"{exercise.function} on its own: {_listed(wrong)} {_is(wrong)} wrong{right}"]
        patterns = [(pattern and pattern(name, a)) or error_pattern(a, n, factors, zero="output")
                    for name, a, n, _ in unit_failures]
        lines += [f"  {name}: {p.words}" for (name, *_), p in zip(unit_failures, patterns)]
        best = max(range(len(patterns)), key=lambda i: patterns[i].rank)
    else:
        patterns = [error_pattern(a, n, factors) for _, a, n, _ in model_failures]
        best = max(range(len(patterns)), key=lambda i: patterns[i].rank)
        first = "" if best == 0 else f" (the first FAIL is {model_failures[0][0]})"
        lines = [f"most informative FAIL: {model_failures[best][0]}: {patterns[best].words}{first}"]
        unit_failures = model_failures
    _, analytic, numerical, loss = unit_failures[best]
    lines += [f"  derived in {exercise.equation}",
              f"  {explain_entry(analytic, numerical, h, loss)}"]
    return "\n".join(lines), patterns[best].key


def _is(names: list[str]) -> str:
    return "is" if len(names) == 1 else "are"


def _listed(names: list[str]) -> str:
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]


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
