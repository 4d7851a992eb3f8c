"""Checking analytic gradients against central finite differences: for tests and for the classroom.

Every gradient in tinyvae is derived on paper and then checked here. The check perturbs one
number at a time and watches the loss move:

    ∂f/∂x_i ≈ (f(x + h e_i) − f(x − h e_i)) / (2h)        (central difference; error O(h²))

With h = 1e-5 in float64 the truncation error (≈ h² f''' / 6) and the rounding error
(≈ u |f| / h, with u = 2.2e-16 the spacing of float64 numbers near 1) are both around 1e-11 to
1e-10, so a correct gradient entry of size 0.1 agrees to a relative 1e-9 or so, while a wrong
one (a flipped sign, a missing factor) is off by 1e-3 or far more. Anything in float32 is too
coarse for this: the checks run in float64.

Run ``python -m tinyvae gradcheck`` to see the whole VAE checked, parameter by parameter, for the
full loss and for its two terms separately; ``--break relu`` (or tanh, dense, kl, bernoulli,
gaussian-logvar) plants a deliberate bug in one backward pass to show what a failing check looks
like. The command line is tinyvae/commands/gradcheck.py; the planted bugs and the notes on a
failing row are in tinyvae/classroom/.

Why the error is relative to the largest entry. The numerical gradient carries an absolute
noise of up to u·|f|/h ≈ 2e-11·|f| (the rounding of the loss, divided by the step). Measured
against each entry on its own, as CS231n's rel_error does, a correct entry a thousand times
smaller than the loss fails a 1e-7 threshold on that noise alone, and a random model with
hundreds of entries usually has one. So ``rel_error`` divides the worst absolute difference by
the largest magnitude in the array: a correct gradient scores about 1e-10, a wrong one (a flipped
sign, a missing factor, a forgotten path) scores 1e-3 to 1, and a bug confined to a tiny entry
still shows as far above the rounding noise. Under a FAIL row the command line prints the worst
entry next to that rounding floor, so the two cases can be told apart.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import NamedTuple

import numpy as np

from .config import VAEConfig, init_params
from .vae import loss_and_grads

DEFAULT_H = 1e-5
DEFAULT_THRESHOLD = 1e-7

# The three losses the VAE's table checks: its name for each -> loss_and_grads' `terms`.
TERMS = {"full": "both", "recon": "recon", "kl": "kl"}


def terms_of(config: VAEConfig) -> dict[str, str]:
    """The terms of TERMS that config's loss has: all three, or for "iwae" "full" alone.

    L_K is the log of a mean: no reconstruction term or KL term separates from it.
    """
    return {"full": TERMS["full"]} if config.objective == "iwae" else TERMS


def numerical_gradient(f: Callable[[], float], x: np.ndarray, h: float = DEFAULT_H) -> np.ndarray:
    """The gradient of the scalar ``f()`` with respect to the array ``x``, by central differences.

        df/dx_i ≈ (f(x + h e_i) − f(x − h e_i)) / (2h)

    ``f`` takes no arguments: it must read ``x`` itself (typically ``x`` is one array of a params
    dict that ``f`` closes over). This function changes ``x[i]`` IN PLACE, calls ``f()``, and puts
    the original value back exactly, even if ``f`` raises (the style of CS231n's
    ``eval_numerical_gradient``). That way the model code runs unchanged, with no copying.

    x must be a float64 array (in float32, h = 1e-5 is below the resolution of most entries).
    Returns an array of x's shape, float64. Costs 2·x.size calls of f.
    """
    if not isinstance(x, np.ndarray) or x.dtype != np.float64:
        raise ValueError(
            "numerical_gradient needs x as a float64 ndarray that f reads and that can be "
            f"perturbed in place, got {type(x).__name__} of dtype {getattr(x, 'dtype', None)}"
        )
    if not h > 0:
        raise ValueError(f"h must be > 0, got {h!r}")
    grad = np.zeros(x.shape, dtype=np.float64)
    for i in np.ndindex(x.shape):
        old = x[i]
        try:
            x[i] = old + h
            f_plus = float(f())
            x[i] = old - h
            f_minus = float(f())
        finally:
            x[i] = old  # restore the exact original value, not old + h − h
        grad[i] = (f_plus - f_minus) / (2.0 * h)
    return grad


def rel_error(a: np.ndarray, b: np.ndarray) -> float:
    """The relative error between two gradients of the same array:

        rel_error(a, b) = max_i |a_i − b_i| / max(1e-8, max_i (|a_i| + |b_i|))

    0 when a = b, at most 1 (reached when a = −b, or when one is 0 and the other is not),
    symmetric, and unchanged when both are scaled by the same factor (above the 1e-8 floor,
    which keeps two gradients that are both nearly zero from counting as different). Both
    maxima run over the whole array; see the module docstring for why not entry by entry.
    An empty pair has error 0; a NaN anywhere gives NaN (which fails every threshold).
    """
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    if a.shape != b.shape:
        raise ValueError("rel_error: a and b must have the same shape, "
                         f"got {a.shape} and {b.shape}")
    if a.size == 0:
        return 0.0
    return float(np.max(np.abs(a - b)) / max(1e-8, float(np.max(np.abs(a) + np.abs(b)))))


class GradCheckRow(NamedTuple):
    """One checked parameter: its key, the norms of both gradients, their rel_error,
    and the verdict."""

    name: str
    analytic_norm: float
    numerical_norm: float
    rel_error: float
    passed: bool


def check_params(loss_fn: Callable[[], float], params: Mapping[str, np.ndarray],
                 grads: Mapping[str, np.ndarray],
                 h: float = DEFAULT_H, threshold: float = DEFAULT_THRESHOLD,
                 keys: Iterable[str] | None = None) -> list[GradCheckRow]:
    """Check the analytic ``grads`` against central differences of ``loss_fn``, key by key.

    ``loss_fn()`` takes no arguments and computes the loss from the arrays of ``params`` (each is
    perturbed in place in turn and restored, see ``numerical_gradient``). ``grads`` must have
    exactly the keys of ``params``, with the same shapes; ``keys`` restricts the check to some of
    them. A row passes when ``rel_error(analytic, numerical) < threshold``.
    Returns one GradCheckRow per key, in the order of ``params``.
    """
    if params.keys() != grads.keys():
        missing = sorted(params.keys() - grads.keys())
        extra = sorted(grads.keys() - params.keys())
        raise ValueError(f"grads must have exactly the keys of params: missing {missing}, "
                         f"unexpected {extra}")
    wanted = list(params) if keys is None else list(keys)
    unknown = [k for k in wanted if k not in params]
    if unknown:
        raise ValueError(f"keys {unknown} are not in params")
    rows = []
    for key in wanted:
        analytic = np.asarray(grads[key], dtype=np.float64)
        if analytic.shape != params[key].shape:
            raise ValueError(f"grads[{key!r}] has shape {analytic.shape}, "
                             f"params[{key!r}] has {params[key].shape}")
        numerical = numerical_gradient(loss_fn, params[key], h)
        err = rel_error(analytic, numerical)
        rows.append(
            GradCheckRow(key, float(np.linalg.norm(analytic)), float(np.linalg.norm(numerical)),
                         err, err < threshold)
        )
    return rows


def random_problem(config: VAEConfig, batch_size: int, rng: np.random.Generator):
    """Random float64 params (no entry zero), a batch x suited to the likelihood, and noise eps.

    The params are twice init_params' draw plus N(0, 0.1²) noise. The noise makes sure no entry
    is zero (a zero bias would hide a wrong bias gradient: a wrong db times zero is still zero).
    The factor 2 makes the decoder depend strongly on z, so that the reconstruction gradient
    reaching the encoder is not tiny next to the loss: tiny gradient entries are where rounding
    shows up in the relative error (see rel_error and the notes printed under a FAIL row).
    x (B, D) is binary for the Bernoulli likelihood (pixels in {0, 1}), standard normal for the
    Gaussian ones; eps (B, Z), or (B, K, Z) for a model of K = config.k > 1 samples per image.
    """
    params = init_params(config, rng, dtype=np.float64)
    for key in params:
        params[key] = 2.0 * params[key] + 0.1 * rng.standard_normal(params[key].shape)
    shape = (batch_size, config.input_dim)
    if config.likelihood == "bernoulli":
        x = (rng.uniform(size=shape) < 0.5).astype(np.float64)
    else:
        x = rng.standard_normal(shape)
    eps = rng.standard_normal((batch_size, config.latent_dim) if config.k == 1
                              else (batch_size, config.k, config.latent_dim))
    return params, x, eps


def term_losses(params, x, eps,
                config: VAEConfig) -> Iterator[tuple[str, float, dict, Callable[[], float]]]:
    """For each of terms_of(config): (term, its loss, its analytic grads, loss_fn).

    loss_fn() reads params afresh.
    """
    for term, terms in terms_of(config).items():
        loss, grads, _ = loss_and_grads(params, x, eps, config, terms=terms)

        def loss_fn(terms=terms):  # bound now: each term's loss_fn keeps its own `terms`
            return loss_and_grads(params, x, eps, config, terms=terms)[0]

        yield term, loss, grads, loss_fn


def check_vae(config: VAEConfig, batch_size: int, seed: int, h: float = DEFAULT_H,
              threshold: float = DEFAULT_THRESHOLD) -> list[tuple[str, GradCheckRow]]:
    """Check every parameter of a random VAE for the full loss,
    the reconstruction term and the KL term.

    The problem is random_problem(config, batch_size, np.random.default_rng(seed)), so the
    same seed gives the same model, data and noise. Returns a list of (term, GradCheckRow):
    every parameter for "full", then for "recon", then for "kl".
    """
    params, x, eps = random_problem(config, batch_size, np.random.default_rng(seed))
    rows = []
    for term, _, grads, loss_fn in term_losses(params, x, eps, config):
        # The KL depends on the encoder alone; its decoder rows check that their
        # analytic gradient is zero (and the numerical one is then exactly zero too).
        rows += [(term, row) for row in check_params(loss_fn, params, grads, h, threshold)]
    return rows
