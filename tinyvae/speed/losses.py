"""losses.py's twin for the fast step: the same terms of the ELBO, in place, into
preallocated buffers.

Each function carries the name of its core original and computes the same numbers
(tests/test_speed_twins.py holds each to it), in few passes over the (R, D) arrays and with no
temporaries: every scratch array is a buffer of layout.Buffers, named for what it holds.

    bernoulli_nll(logits, x, a)               losses.bernoulli_nll
    gaussian_nll(mean, x, a, std)             losses.gaussian_nll
    gaussian_nll_learned(out, x, a)           losses.gaussian_nll_learned
    kl_standard_normal(mu, log_var, a)        losses.kl_standard_normal

Where the core returns −log p(x|z) per row and the gradient of its sum, each likelihood here
returns the sum over the rows (or, with per_row=True, the (R,) values, which the
importance-weighted objective weighs one by one) and writes d(Σ)/d out into a.d_out. out is the
decoder's output (R, D), or (R, 2D) for the fused [mean | log σ²] of a learned variance.

Shapes: R rows (a batch's images, or their K samples each), D data, Z latent.
"""

from __future__ import annotations

import math

import numpy as np

from ..losses import LOG_2PI


def _row_sums(terms: np.ndarray, per_row: bool):
    return terms.sum(axis=1) if per_row else float(terms.sum())


def bernoulli_nll(logits, x, a, per_row: bool = False):
    """Σ [max(l, 0) − x·l + log(1 + e)] and σ(l) − x from one e = exp(−|l|): the loss computed once.

    The loss is docs/04-gradients.md eq. (7), the gradient docs/04-gradients.md eq. (8); one
    exponential serves both, and so does 1 + e: it is the argument of the loss's logarithm
    and the denominator of σ(l). σ(l) = 1/(1 + e) where l ≥ 0 and e/(1 + e) where l < 0;
    since 0 < e ≤ 1, the numerator is max(e, 1[l ≥ 0]), which keeps σ(l) accurate even
    where it is tiny.

    log(1 + e) rather than log1p(e): NumPy's float32 log1p is several times slower than its
    log here (the likelihood's share of a batch-20 epoch of the 784-200-200-50 model fell
    from 0.47 s to 0.27 s, docs/06-results.md section 6). The price is the rounding of 1 + e,
    at most half an ulp of 1 per pixel (6e−8 nats in float32, 1e−16 in float64), in the loss
    alone; the gradient does not use it.
    """
    e, one_plus_e, terms, nonneg = a.exp_neg_abs, a.one_plus_exp, a.terms, a.nonneg  # (R, D) each
    np.greater_equal(logits, 0, out=nonneg)  # 1[l ≥ 0]
    np.abs(logits, out=e)
    np.negative(e, out=e)
    np.exp(e, out=e)  # e = exp(−|l|) ∈ (0, 1]: the one exponential
    np.subtract(nonneg, x, out=terms)  # max(l, 0) − x·l = (1[l ≥ 0] − x)·l
    if per_row:
        nll = np.einsum("rd,rd->r", terms, logits)  # (R,)
    else:
        nll = float(np.vdot(terms, logits))
    np.add(e, 1, out=one_plus_e)  # 1 + e: the logarithm's argument and σ's denominator
    np.log(one_plus_e, out=terms)
    nll += _row_sums(terms, per_row)
    np.maximum(e, nonneg, out=e)  # the numerator: 1 where l ≥ 0, e where l < 0
    np.divide(e, one_plus_e, out=a.d_out)  # σ(l)
    a.d_out -= x  # σ(l) − x
    return nll


def gaussian_nll(mean, x, a, std: float, per_row: bool = False):
    """Σ ½ [(x − m)²/σ² + log σ² + log 2π] and (m − x)/σ², docs/04-gradients.md eq. (9) and (10)."""
    var = float(std) ** 2
    diff = a.d_out
    np.subtract(mean, x, out=diff)  # (R, D) m − x
    if per_row:
        sq = np.einsum("rd,rd->r", diff, diff)  # (R,)
    else:
        sq = float(np.vdot(diff, diff))
    diff *= 1.0 / var  # the gradient (m − x)/σ², docs/04-gradients.md eq. (10)
    n_terms = x.shape[1] if per_row else x.size  # pixels in a row, or in the whole batch
    return 0.5 * (sq / var + n_terms * (math.log(var) + LOG_2PI))


def gaussian_nll_learned(out, x, a, per_row: bool = False):
    """Σ ½ [(x − m)² e^(−s) + s + log 2π] with its two gradients,
    docs/04-gradients.md eq. (11) and (12)."""
    D = x.shape[1]
    mean, log_var = out[:, :D], out[:, D:]
    dmean, dlog_var = a.d_out[:, :D], a.d_out[:, D:]
    diff, inv_var, sq_err = a.diff, a.inv_var, a.sq_err  # (R, D) each
    np.subtract(mean, x, out=diff)  # m − x
    np.negative(log_var, out=inv_var)
    np.exp(inv_var, out=inv_var)  # e^(−s)
    np.multiply(diff, diff, out=sq_err)
    sq_err *= inv_var  # (x − m)² e^(−s): the squared error in units of the variance
    if per_row:
        total = 0.5 * (sq_err.sum(axis=1) + log_var.sum(axis=1) + D * LOG_2PI)
    else:
        total = 0.5 * (float(sq_err.sum()) + float(log_var.sum()) + x.size * LOG_2PI)
    np.multiply(diff, inv_var, out=dmean)  # (m − x) e^(−s)
    np.subtract(1, sq_err, out=dlog_var)
    dlog_var *= 0.5  # ½ [1 − (x − m)² e^(−s)]
    return total


def kl_standard_normal(mu, log_var, a) -> float:
    """Σ over the batch of ½ Σ_j (μ² + σ² − 1 − log σ²), docs/02-variational-inference.md eq. (10).

    Keeps σ² − 1 = expm1(log σ²) in a.var_m1 for the gradient, docs/04-gradients.md eq. (13).
    """
    np.expm1(log_var, out=a.var_m1)  # σ² − 1, accurate near the prior
    np.subtract(a.var_m1, log_var, out=a.kl)
    np.multiply(mu, mu, out=a.mu_sq)
    a.kl += a.mu_sq
    return 0.5 * float(a.kl.sum())
