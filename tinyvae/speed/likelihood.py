"""The fast step's losses in place: −log p(x|z) with its gradient, and the KL, into preallocated buffers.

The same numbers as losses.py (tests/test_fast.py holds them to it), computed in few passes
over the (B, D) arrays and with no temporaries: every scratch array is a buffer of
layout.Buffers. FAST_LIKELIHOODS is keyed by the names of the core's registry
(LIKELIHOODS); a likelihood missing here has no fast form and the fast step refuses it.

Each likelihood is f(out, x, a, config) -> Σ over the batch of −log p(x|z), writing
d(Σ)/d out into a.d_out. out is the decoder's output (B, D), or (B, 2D) for the fused
[mean | log σ²] of a learned variance.

Shapes: B batch, D data, Z latent.
"""

from __future__ import annotations

import math

import numpy as np

from ..losses import LOG_2PI
from ..losses import LIKELIHOODS


def bernoulli(logits, x, a, config) -> float:
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
    e, t, pos, c = a.e, a.t, a.pos, a.c  # (B, D) scratch
    np.greater_equal(logits, 0, out=pos)  # 1[l ≥ 0]
    np.abs(logits, out=e)
    np.negative(e, out=e)
    np.exp(e, out=e)  # e = exp(−|l|) ∈ (0, 1]: the one exponential
    np.subtract(pos, x, out=c)  # max(l, 0) − x·l = (1[l ≥ 0] − x)·l
    nll = float(np.vdot(c, logits))
    np.add(e, 1, out=t)  # 1 + e: the logarithm's argument and σ's denominator
    np.log(t, out=c)
    nll += float(c.sum())
    np.maximum(e, pos, out=e)  # the numerator: 1 where l ≥ 0, e where l < 0
    np.divide(e, t, out=a.d_out)  # σ(l)
    a.d_out -= x  # σ(l) − x
    return nll


def gaussian(mean, x, a, config) -> float:
    """Σ ½ [(x − m)²/σ² + log σ² + log 2π] and (m − x)/σ², docs/04-gradients.md eq. (9) and (10)."""
    var = float(config.gaussian_std) ** 2
    diff = a.d_out
    np.subtract(mean, x, out=diff)  # (B, D) m − x
    sq = float(np.vdot(diff, diff))
    diff *= 1.0 / var  # the gradient (m − x)/σ², docs/04-gradients.md eq. (10)
    return 0.5 * (sq / var + x.size * (math.log(var) + LOG_2PI))


def gaussian_learned_variance(out, x, a, config) -> float:
    """Σ ½ [(x − m)² e^(−s) + s + log 2π] with its two gradients, docs/04-gradients.md eq. (11) and (12)."""
    D = config.input_dim
    mean, log_var = out[:, :D], out[:, D:]
    dmean, dlog_var = a.d_out[:, :D], a.d_out[:, D:]
    diff, inv_var, sq = a.t, a.e, a.c
    np.subtract(mean, x, out=diff)  # (B, D) m − x
    np.negative(log_var, out=inv_var)
    np.exp(inv_var, out=inv_var)  # e^(−s)
    np.multiply(diff, diff, out=sq)
    sq *= inv_var  # (x − m)² e^(−s): the squared error in units of the variance
    total = 0.5 * (float(sq.sum()) + float(log_var.sum()) + x.size * LOG_2PI)
    np.multiply(diff, inv_var, out=dmean)  # (m − x) e^(−s)
    np.subtract(1, sq, out=dlog_var)
    dlog_var *= 0.5  # ½ [1 − (x − m)² e^(−s)]
    return total


# The likelihoods of LIKELIHOODS that the fast step has in-place forms of, by the same names.
FAST_LIKELIHOODS = {
    "bernoulli": bernoulli,
    "gaussian": gaussian,
    "gaussian-learned-variance": gaussian_learned_variance,
}


def kl(mu, log_var, a) -> float:
    """Σ over the batch of ½ Σ_j (μ² + σ² − 1 − log σ²), docs/02-variational-inference.md eq. (10).

    Keeps σ² − 1 = expm1(log σ²) in a.var_m1 for the gradient, docs/04-gradients.md eq. (13).
    """
    np.expm1(log_var, out=a.var_m1)  # σ² − 1, accurate near the prior
    np.subtract(a.var_m1, log_var, out=a.kl)
    np.multiply(mu, mu, out=a.mu_sq)
    a.kl += a.mu_sq
    return 0.5 * float(a.kl.sum())
