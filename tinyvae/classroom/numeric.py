"""Graded by checks of their own: one Adam step, and the probability exercises of the lecture.

These functions are no gradients of the VAE, so no table of parameters: each exercise is a list
of checks, every one a number the student's function produces against a number found another
way, numerically where possible (quadrature instead of a closed form, a finite difference of an
exact expectation instead of a formula for its gradient), never tinyvae's own function.

A check is a row (group, name, {"student", "expected", "error", "tolerance"}, passed).
Shapes: D data, Z latent, N samples.
"""

from __future__ import annotations

import math

import numpy as np

from .. import optim, vae
from ..gradcheck import random_problem
from ..config import VAEConfig

LECTURE_P, UNIFORM = [0.36, 0.48, 0.16], [1 / 3, 1 / 3, 1 / 3]  # docs/03-kl-worked-example.md


def row(name: str, student, expected, tolerance: float, *, relative: bool = False) -> tuple:
    """A check: |student − expected| (relative to |expected| if asked) at most tolerance.

    expected None: a measurement shown to the student, not graded (it always passes).
    """
    if expected is None:
        return ("check", name, {"student": float(student), "expected": None, "error": None, "tolerance": None}, True)
    student, expected = float(student), float(expected)
    if math.isinf(expected) or math.isinf(student):
        error = 0.0 if student == expected else math.inf
    else:
        error = abs(student - expected) / (abs(expected) if relative and expected else 1.0)
    return ("check", name, {"student": student, "expected": expected, "error": error, "tolerance": tolerance},
            bool(error <= tolerance))


def adam_checks(update) -> list:
    """Three Adam steps on a small array against the moments' sums written out, then a VAE's loss.

    m_t = (1 − β1) Σ_k β1^(t−k) g_k and v_t likewise with g², the unrolled recurrences of
    Algorithm 1; θ_t then follows from the bias-corrected ratio. A first step moves each
    coordinate by lr·|g|/(|g| + ε), almost exactly lr, whatever the scale of g.
    """
    rng = np.random.default_rng(7)
    lr, b1, b2, eps = 0.01, 0.9, 0.999, 1e-8
    opt = _student_adam(update, lr, b1, b2, eps)
    theta0 = rng.normal(size=(3, 4))
    params = {"w": theta0.copy()}
    held = params["w"]
    gs = [rng.normal(scale=s, size=(3, 4)) for s in (1e-3, 1.0, 30.0)]
    opt.step(params, {"w": gs[0]})
    first = np.abs(params["w"] - theta0)  # lr·|g|/(|g| + ε) ≈ lr: the bias correction at work
    rows = [row("step 1 moves each θ by lr·|g|/(|g| + ε) ≈ lr (|g| ≈ 1e-3 here), max |difference|",
                np.max(np.abs(first - lr * np.abs(gs[0]) / (np.abs(gs[0]) + eps))), 0, 1e-12)]
    for g in gs[1:]:
        opt.step(params, {"w": g})
    m = sum((1 - b1) * b1 ** (3 - k) * g for k, g in enumerate(gs, 1))
    v = sum((1 - b2) * b2 ** (3 - k) * g * g for k, g in enumerate(gs, 1))
    rows.append(row("m after 3 steps, max |difference|", np.max(np.abs(opt.state["m"]["w"] - m)), 0, 1e-12))
    rows.append(row("v after 3 steps, max |difference|", np.max(np.abs(opt.state["v"]["w"] - v)), 0, 1e-9))
    theta = theta0.copy()
    for t, g in enumerate(gs, 1):
        mt = sum((1 - b1) * b1 ** (t - k) * gk for k, gk in enumerate(gs[:t], 1))
        vt = sum((1 - b2) * b2 ** (t - k) * gk * gk for k, gk in enumerate(gs[:t], 1))
        theta -= lr * (mt / (1 - b1**t)) / (np.sqrt(vt / (1 - b2**t)) + eps)
    rows.append(row("θ after 3 steps, max |difference|", np.max(np.abs(params["w"] - theta)), 0, 1e-12))
    rows.append(row("θ changed in place (the optimizer's own array)", params["w"] is held and
                    not np.array_equal(held, theta0), 1, 0))
    rows.append(_vae_descends(update))
    return rows


def _student_adam(update, lr, b1, b2, eps) -> optim.Adam:
    class StudentAdam(optim.Adam):
        def _update(self, theta, g, state):
            update(theta, g, state, self.t, self.lr, self.beta1, self.beta2, self.eps)
    return StudentAdam(lr=lr, beta1=b1, beta2=b2, eps=eps)


def _vae_descends(update) -> tuple:
    """30 steps of the student's Adam on one batch of a small VAE: the loss must fall by a third."""
    config = VAEConfig(input_dim=5, hidden_dims=(4, 3), latent_dim=2)
    params, x, eps = random_problem(config, 8, np.random.default_rng(1))
    opt = _student_adam(update, 0.01, 0.9, 0.999, 1e-8)
    start = vae.loss_and_grads(params, x, eps, config)[0]
    for _ in range(30):
        opt.step(params, vae.loss_and_grads(params, x, eps, config)[1])
    end = vae.loss_and_grads(params, x, eps, config)[0]
    return ("check", "a VAE's loss on one batch after 30 steps, as a fraction of its start",
            {"student": end / start, "expected": 2 / 3, "error": end / start, "tolerance": 2 / 3},
            bool(end / start <= 2 / 3))


def discrete_kl_checks(kl) -> list:
    """The lecture's table (docs/03-kl-worked-example.md) and the conventions at 0."""
    p, q = np.array(LECTURE_P), np.array(UNIFORM)
    pq, qp = float(np.sum(p * np.log(p / q))), float(np.sum(q * np.log(q / p)))
    return [
        row("KL(P‖Q) in nats, the lecture's P and the uniform Q", kl(LECTURE_P, UNIFORM), pq, 1e-9),
        row("KL(Q‖P) in nats: not the same number", kl(UNIFORM, LECTURE_P), qp, 1e-9),
        row("KL(P‖Q) in bits (base=2)", kl(LECTURE_P, UNIFORM, base=2), pq / math.log(2), 1e-9),
        row("KL(P‖P) = 0", kl(LECTURE_P, LECTURE_P), 0.0, 1e-12),
        row("an outcome with P(x) = 0 adds nothing (0 log 0 = 0)", kl([0.5, 0.5, 0.0], [0.25, 0.25, 0.5]),
            math.log(2), 1e-9),
        row("Q(x) = 0 < P(x) gives +inf", kl([0.5, 0.5], [1.0, 0.0]), math.inf, 0),
    ]


def _quadrature_kl(mu_q, var_q, mu_p, var_p) -> float:
    """∫ q log(q/p) dz on a fine grid over μ_q ± 12 σ_q (trapezoid rule): no closed form used."""
    z = np.linspace(mu_q - 12 * math.sqrt(var_q), mu_q + 12 * math.sqrt(var_q), 200_001)
    log_q = -0.5 * ((z - mu_q) ** 2 / var_q + math.log(2 * math.pi * var_q))
    log_p = -0.5 * ((z - mu_p) ** 2 / var_p + math.log(2 * math.pi * var_p))
    return trapezoid(np.exp(log_q) * (log_q - log_p), z)


def trapezoid(f: np.ndarray, z: np.ndarray) -> float:
    """∫ f dz by the trapezoid rule on the grid z."""
    return float(np.sum(0.5 * (f[1:] + f[:-1]) * np.diff(z)))


GAUSSIAN_PAIRS = [(0.0, 1.0, 0.0, 1.0), (1.0, 0.5, 0.0, 1.0), (-0.3, 2.0, 0.5, 0.7), (2.0, 0.1, -1.0, 3.0)]


def gaussian_kl_checks(kl_normal) -> list:
    return [row(f"KL(N({a:g}, {b:g}) ‖ N({c:g}, {d:g})) against quadrature", kl_normal(a, b, c, d),
                _quadrature_kl(a, b, c, d), 1e-7) for a, b, c, d in GAUSSIAN_PAIRS]


def monte_carlo_checks(estimate) -> list:
    """The estimate agrees with the closed form within 4 standard errors, which shrink as 1/√n."""
    mu, log_var = np.array([0.5, -1.0, 0.2]), np.array([-0.5, 0.3, -1.2])
    closed = float(0.5 * np.sum(mu**2 + np.exp(log_var) - 1 - log_var))  # docs/02-variational-inference.md eq. (10)
    value, se = estimate(mu, log_var, 10_000, np.random.default_rng(0))
    again, _ = estimate(mu, log_var, 10_000, np.random.default_rng(0))
    _, se_small = estimate(mu, log_var, 1_000, np.random.default_rng(1))
    _, se_big = estimate(mu, log_var, 100_000, np.random.default_rng(2))
    return [
        row("the estimate, n = 10,000 (|error| within 4 standard errors)", value, closed, 4 * float(se)),
        row("its standard error is > 0 (the estimate is a sample mean)", float(se) > 0, 1, 0),
        row("standard error shrinks 10x when n grows 100x",
            float(se_small) / float(se_big) if float(se_big) > 0 else math.inf, 10.0, 1.5),
        row("the same rng seed gives the same estimate", again, value, 0),
    ]
