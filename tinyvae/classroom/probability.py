"""The lecture's two last ideas, checked numerically:
the ELBO identity and the two gradient estimators.

elbo_checks: on the exact linear-Gaussian model with one latent dimension,
    z ~ N(0, 1),   x | z ~ N(w z + b, σ² I_D),
log p(x) = ∫ p(x|z) p(z) dz and KL(q ‖ p(z|x)) are integrals over one number, found here by
quadrature; the student's closed-form ELBO must satisfy log p(x) = KL(q ‖ p(z|x)) + ELBO
(docs/02-variational-inference.md eq. (5)) for every q, with the KL zero at the posterior.

estimator_checks: d/dμ E_{z ~ N(μ, σ²)}[f(z)] estimated two ways, the score function
f(z) (z − μ)/σ² and the reparameterization f'(μ + σ ε); the exact value is a central difference
of E[f] computed by Gauss-Hermite quadrature. Both must be unbiased; their variances differ.

As in numeric.py, ``*_job()`` says what the child computes with the student's functions and
``*_rows(outputs)`` judges it here, in the grader's process.
"""

from __future__ import annotations

import functools
import math

import numpy as np
from numpy.polynomial.hermite_e import hermegauss

from .numeric import calls_job, row, trapezoid, value
from .runners import test_function


def linear_gaussian(rng: np.random.Generator, data_dim: int = 4, sigma: float = 0.6) -> dict:
    """A random model of one latent dimension and one x drawn from it: w, b (D,), sigma, x (D,)."""
    w, b = rng.normal(size=data_dim), rng.normal(size=data_dim)
    x = w * rng.normal() + b + sigma * rng.normal(size=data_dim)
    return {"w": w, "b": b, "sigma": sigma, "x": x}


def log_joint(z: np.ndarray, m: dict) -> np.ndarray:
    """log p(x, z) = log p(x|z) + log p(z) for every z of a grid (N,)."""
    resid = m["x"] - (z[:, None] * m["w"] + m["b"])  # (N, D)
    D = len(m["x"])
    log_lik = -0.5 * (np.sum(resid**2, axis=1) / m["sigma"] ** 2
                      + D * math.log(2 * math.pi * m["sigma"] ** 2))
    return log_lik - 0.5 * (z**2 + math.log(2 * math.pi))


QS = (("the prior N(0, 1)", 0.0, 1.0), ("q = N(0.5, 0.2)", 0.5, 0.2), ("q = N(−1, 2)", -1.0, 2.0))


@functools.cache
def _elbo_problem():
    """The model, its grid, log p(x) and the exact posterior's mean and variance, all by quadrature.

    Computed once: every student's check reads the same numbers (and never changes them).
    """
    m = linear_gaussian(np.random.default_rng(3))
    z = np.linspace(-12.0, 12.0, 400_001)
    lj = log_joint(z, m)
    top = lj.max()
    log_px = top + math.log(trapezoid(np.exp(lj - top), z))  # log ∫ p(x, z) dz
    post = np.exp(lj - log_px)  # p(z|x) on the grid
    post_mean = trapezoid(z * post, z)
    post_var = trapezoid((z - post_mean) ** 2 * post, z)
    return m, z, lj, log_px, [*QS, ("the exact posterior", post_mean, post_var)]


def elbo_job() -> dict:
    m, _, _, _, qs = _elbo_problem()
    return calls_job("elbo", [{"args": [mu_q, var_q,
                                        {"array": m["w"].tolist()}, {"array": m["b"].tolist()},
                                        m["sigma"], {"array": m["x"].tolist()}], "returns": "real"}
                              for _, mu_q, var_q in qs])


def elbo_rows(outputs: dict) -> list:
    m, z, lj, log_px, qs = _elbo_problem()
    rows = []
    for i, (label, mu_q, var_q) in enumerate(qs):
        log_q = -0.5 * ((z - mu_q) ** 2 / var_q + math.log(2 * math.pi * var_q))
        kl = trapezoid(np.exp(log_q) * (log_q - (lj - log_px)), z)  # KL(q ‖ p(z|x))
        rows.append(row(f"log p(x) − ELBO = KL(q ‖ p(z|x)) for {label}",
                        log_px - value(outputs, f"call/{i}"), kl, 1e-6))
    rows.append(row("at the exact posterior the ELBO is log p(x)",
                    rows[-1][2]["student"], 0.0, 1e-6))
    return rows


def exact_gradient(f, mu: float, sigma: float) -> float:
    """d/dμ E[f(μ + σ ε)] by a central difference of E
    computed with 80-point Gauss-Hermite quadrature."""
    nodes, weights = hermegauss(80)
    weights = weights / weights.sum()  # the probabilists' Hermite weights integrate against N(0, 1)

    def expectation(m):
        return float(np.sum(weights * f(m + sigma * nodes)))
    h = 1e-5
    return (expectation(mu + h) - expectation(mu - h)) / (2 * h)


ESTIMATORS = (("score function", "score_function_grad", "f"),
              ("reparameterization", "reparam_grad", "df"))
MU, SIGMA, N = 2.0, 0.5, 20_000


def estimator_job() -> dict:
    job = calls_job("score_function_grad", [])
    job["functions"] = [function for _, function, _ in ESTIMATORS]
    job["calls"] = [{"function": function, "args": [{"callable": f}, MU, SIGMA, N, {"rng": 0}],
                     "returns": {"array": [N]}} for _, function, f in ESTIMATORS]
    return job


def estimator_rows(outputs: dict) -> list:
    """Both estimators unbiased within 4 standard errors;
    the reparameterization's variance far smaller.

    f(z) = z² + sin z at μ = 2, σ = 0.5: the score function multiplies f ≈ 5 by a noise of size
    1/σ, the reparameterization only sees how f' ≈ 4 varies across σ (docs/05-classroom.md §4).
    """
    exact = exact_gradient(test_function, MU, SIGMA)
    rows, variances = [], {}
    for i, (label, _, _) in enumerate(ESTIMATORS):
        samples = value(outputs, f"call/{i}", (N,))
        se = float(samples.std(ddof=1) / math.sqrt(N))
        variances[label] = float(samples.var(ddof=1))
        rows.append(row(f"{label}: mean of {N} estimates "
                        "(within 4 standard errors of the exact value)",
                        samples.mean(), exact, 4 * se))
        rows.append(row(f"{label}: variance of one estimate (measured)", variances[label], None, 0))
    score, reparam = variances["score function"], variances["reparameterization"]
    ratio = score / reparam if reparam else math.inf
    rows.append(("check",
                 "variance of the score function / variance of the reparameterization (> 2)",
                 {"student": ratio, "expected": 2.0, "error": 0.0 if ratio > 2 else 1.0,
                  "tolerance": 0.0},
                 ratio > 2))
    return rows
