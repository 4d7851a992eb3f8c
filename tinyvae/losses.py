"""The terms of the ELBO, each with its analytic gradient.

The per-example training loss is the negative ELBO,
docs/02-variational-inference.md eq. (11):

    loss(x) = recon(x) + β · KL(q(z|x) ‖ p(z))

with the reconstruction term a negative log-likelihood summed over pixels and the
KL summed over latent dimensions, both in nats. Each function here returns the
per-example values, shape (B,), together with the gradient of their *sum* over the
batch; the model divides by B once, where it takes the batch mean.

The loss is computed once and its gradient reuses the same intermediate values,
which is both cheaper and keeps the two consistent. Derivations: docs/04-gradients.md.

Shapes: B batch, D data, Z latent.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from .layers import sigmoid

LOG_2PI = math.log(2 * math.pi)


def bernoulli_nll(logits: np.ndarray, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Bernoulli negative log-likelihood from logits, summed over pixels.

        nll = −Σ_d [x log σ(l) + (1 − x) log(1 − σ(l))]
            = Σ_d [max(l, 0) − x·l + log(1 + e^(−|l|))]       docs/04-gradients.md eq. (7)
        dnll/dl = σ(l) − x                                    docs/04-gradients.md eq. (8)

    The second form never takes log(0) and never overflows, even at |l| = 1000,
    where σ(l) rounds to exactly 0 or 1. For binary x it is −log of a probability.
    Grayscale x in [0, 1] may be passed too (the cross-entropy PyTorch's example
    trains on), but then it is no log-probability at all: it stays above zero even
    for a perfect reconstruction, and without the "continuous Bernoulli" normaliser it
    is not a density either. Such numbers compare only with other grayscale runs.

    logits (B, D), x (B, D) -> nll (B,), dlogits (B, D).
    """
    nll = np.maximum(logits, 0) - x * logits + np.log1p(np.exp(-np.abs(logits)))  # (B, D)
    dlogits = sigmoid(logits) - x  # (B, D)
    return nll.sum(axis=1), dlogits


def gaussian_nll(mean: np.ndarray, x: np.ndarray, std: float) -> tuple[np.ndarray, np.ndarray]:
    """Gaussian negative log-likelihood with a fixed standard deviation σ, summed over pixels.

        nll = Σ_d ½ [(x − m)²/σ² + log σ² + log 2π]           docs/04-gradients.md eq. (9)
        dnll/dm = (m − x)/σ²                                  docs/04-gradients.md eq. (10)

    A true log-density (with the ½ log 2π term), so the numbers are in nats; with σ
    fixed the constant does not change the gradient. In nats is not the same as
    comparable: this is a density of continuous pixel values, while bernoulli_nll is a
    probability of binary pixels, so the two are different kinds of number (a density
    can exceed 1, and its value moves with σ and with the pixels' scale). Compare runs
    of one likelihood on the same data.

    mean (B, D), x (B, D), std > 0 -> nll (B,), dmean (B, D).
    """
    var = float(std) ** 2
    diff = mean - x  # (B, D)
    nll = 0.5 * (diff * diff / var + math.log(var) + LOG_2PI)  # (B, D)
    dmean = diff / var  # (B, D)
    return nll.sum(axis=1), dmean


def gaussian_nll_learned(mean: np.ndarray, log_var: np.ndarray,
                         x: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Gaussian negative log-likelihood with a per-pixel log-variance s from the decoder.

        nll = Σ_d ½ [(x − m)² e^(−s) + s + log 2π]            docs/04-gradients.md eq. (11)
        dnll/dm = (m − x) e^(−s)                             docs/04-gradients.md eq. (12)
        dnll/ds = ½ [1 − (x − m)² e^(−s)]                     docs/04-gradients.md eq. (12)

    Kingma & Welling (2014), Appendix C.2. Parameterising log σ² rather than σ keeps
    the variance positive without a constraint. Beware that the likelihood is
    unbounded: on data with constant pixels (MNIST's borders) s → −∞ is rewarded, and
    the nll goes to −∞ with it, so its values say nothing when set beside a Bernoulli's
    or a fixed-σ Gaussian's.

    mean (B, D), log_var (B, D), x (B, D) -> nll (B,), dmean (B, D), dlog_var (B, D).
    """
    diff = mean - x  # (B, D)
    inv_var = np.exp(-log_var)  # (B, D)
    sq = diff * diff * inv_var  # (B, D): the squared error in units of the variance
    nll = 0.5 * (sq + log_var + LOG_2PI)  # (B, D)
    dmean = diff * inv_var  # (B, D)
    dlog_var = 0.5 * (1 - sq)  # (B, D)
    return nll.sum(axis=1), dmean, dlog_var


# The likelihoods p(x|z) a model may have; vae.reconstruction_nll calls the function of each.
LIKELIHOODS = ("bernoulli", "gaussian", "gaussian-learned-variance")


def kl_standard_normal(mu: np.ndarray,
                       log_var: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """KL( N(μ, diag σ²) ‖ N(0, I) ) in closed form, summed over latent dimensions.

        KL = ½ Σ_j (μ_j² + σ_j² − 1 − log σ_j²)   docs/02-variational-inference.md eq. (10)
        dKL/dμ = μ,   dKL/d log σ² = ½ (σ² − 1)   docs/04-gradients.md eq. (13)

    Each term μ² ≥ 0 and σ² − 1 − log σ² ≥ 0 (since e^s ≥ 1 + s), so the KL is
    zero exactly when μ = 0 and log σ² = 0, and positive otherwise.

    mu (B, Z), log_var (B, Z) -> kl (B,), dmu (B, Z), dlog_var (B, Z).
    """
    # σ² − 1 as expm1(log σ²): near the prior, exp(s) − 1 − s would subtract numbers
    # that agree in all their digits and could even come out slightly negative.
    var_minus_1 = np.expm1(log_var)  # (B, Z)
    kl = kl_terms(mu, log_var, var_minus_1)  # (B, Z)
    # A fresh array, never an alias of μ (a gradient is not the value it is of).
    dmu = mu.copy()  # (B, Z)
    dlog_var = 0.5 * var_minus_1  # (B, Z)
    return kl.sum(axis=1), dmu, dlog_var


def kl_terms(mu: np.ndarray, log_var: np.ndarray,
             var_minus_1: np.ndarray | None = None) -> np.ndarray:
    """The KL of each latent dimension, ½ (μ² + σ² − 1 − log σ²), before the sum over Z.

    σ² − 1 is expm1(log σ²) (see kl_standard_normal); pass it if it is already computed.
    mu, log_var (B, Z) -> (B, Z), every entry >= 0.
    """
    if var_minus_1 is None:
        var_minus_1 = np.expm1(log_var)
    return 0.5 * (mu * mu + (var_minus_1 - log_var))


def gaussian_log_density(z: np.ndarray, mu: np.ndarray, log_var: np.ndarray) -> np.ndarray:
    """log N(z; μ, diag σ²) summed over the last axis (the latent dimensions).

        log N = −½ Σ_j [(z_j − μ_j)²/σ_j² + log σ_j² + log 2π]

    Broadcasts, so z (B, K, Z) against μ, log σ² (B, 1, Z) gives (B, K): the density of any
    z, as the lessons' examples need it. (The importance weights of a reparameterized sample
    use log_prior and log_posterior below, which write it through ε.)
    """
    diff = z - mu
    return -0.5 * np.sum(diff * diff * np.exp(-log_var) + log_var + LOG_2PI, axis=-1)


def log_prior(z: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """log p(z) for the prior N(0, I), summed over the last axis, and its gradient.

        log p(z) = −½ Σ_j (z_j² + log 2π),   d log p(z)/dz = −z

    z (B, K, Z) -> log p (B, K), dlog_p (B, K, Z).
    """
    return -0.5 * np.sum(z * z + LOG_2PI, axis=-1), -z


def log_posterior(eps: np.ndarray, log_var: np.ndarray) -> np.ndarray:
    """log q(z|x) at z = μ + σ ⊙ ε, summed over the last axis.

        log q(z|x) = −½ Σ_j [(z_j − μ_j)²/σ_j² + log σ_j² + log 2π]
                   = −½ Σ_j [ε_j² + log σ_j² + log 2π]          since z − μ = σ ⊙ ε
        ∂ log q / ∂ log σ_j² = −½                               (ε held fixed: z moves instead)

    Written in ε, it has no path into μ at all and none of the cancellation of (z − μ)/σ for
    small σ; the path through z is the reparameterization's (docs/04-gradients.md eq. (20)).
    eps (B, K, Z), log_var (B, 1, Z) -> log q (B, K).
    """
    return -0.5 * np.sum(eps * eps + log_var + LOG_2PI, axis=-1)


def normalized_weights(log_w: np.ndarray, axis: int = 0) -> np.ndarray:
    """w̃_i = w_i / Σ_j w_j from log w, along `axis`: the softmax, computed stably.

    The same shift by the maximum as log_mean_exp, whose gradient this is:
    d/d log w_i of log (1/k) Σ_j w_j = w̃_i (docs/04-gradients.md eq. (19)).
    """
    shifted = np.exp(log_w - np.max(log_w, axis=axis, keepdims=True))
    return shifted / np.sum(shifted, axis=axis, keepdims=True)


def log_mean_exp(a: np.ndarray, axis: int = 0) -> np.ndarray:
    """log( (1/K) Σ_k e^(a_k) ) along `axis`, without overflow or underflow.

    Subtracting the maximum first makes the largest term e^0 = 1: log-likelihoods
    of MNIST digits are around −100 nats, whose exponentials underflow to 0.
    """
    a_max = np.max(a, axis=axis, keepdims=True)
    # If every term is −inf (p = 0 throughout), the answer is −inf; shift by 0 so that
    # −inf − (−inf) does not turn it into NaN.
    a_max = np.where(np.isfinite(a_max), a_max, 0)
    out = np.log(np.mean(np.exp(a - a_max), axis=axis, keepdims=True)) + a_max
    return np.squeeze(out, axis=axis)


def kl_divergence(p: Sequence[float] | np.ndarray, q: Sequence[float] | np.ndarray,
                  base: float = math.e) -> float:
    """The discrete KL divergence KL(P ‖ Q) = Σ_x P(x) log(P(x)/Q(x)), in the given base.

    docs/03-kl-worked-example.md works through the lecture's table with it. The
    conventions of information theory apply: 0 log(0/q) = 0 (an impossible outcome
    costs nothing), and the result is +inf where Q(x) = 0 < P(x) (Q declares
    impossible something that P says happens).

    p, q: sequences of probabilities of the same shape, each non-negative and
    summing to 1 within 1e-6. base: e for nats, 2 for bits, 10 for "bans".
    Raises ValueError for anything else.
    """
    p = np.asarray(p, dtype=np.float64)
    q = np.asarray(q, dtype=np.float64)
    if p.shape != q.shape:
        raise ValueError("kl_divergence: p and q must have the same shape, "
                         f"got {p.shape} and {q.shape}")
    if p.size == 0:
        raise ValueError("kl_divergence: p and q are empty; expected at least one outcome")
    for name, v in (("p", p), ("q", q)):
        if not np.all(np.isfinite(v)):
            raise ValueError(f"kl_divergence: {name} contains NaN or infinite values")
        if np.any(v < 0):
            raise ValueError(f"kl_divergence: {name} has negative entries; "
                             "probabilities must be >= 0")
        if abs(v.sum() - 1.0) > 1e-6:
            raise ValueError(f"kl_divergence: {name} sums to {v.sum():.8g}; "
                             "a distribution must sum to 1")
    if not (base > 0 and base != 1):
        raise ValueError(f"kl_divergence: base must be positive and not 1, got {base}")
    support = p > 0  # terms with P(x) = 0 contribute 0 by convention
    if np.any(q[support] == 0):
        return math.inf
    terms = p[support] * np.log(p[support] / q[support])
    return float(terms.sum() / math.log(base))
