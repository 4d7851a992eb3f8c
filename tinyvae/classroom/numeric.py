"""Graded by checks of their own: one Adam step, and the KL exercises of the lecture.

These functions are no gradients of the VAE, so no table of parameters: each exercise is a list
of checks, every one a number the student's function produces against a number found another
way, numerically where possible (quadrature instead of a closed form, a known variance instead
of the student's own standard error), never tinyvae's own function.

Each exercise is two halves: ``*_job()`` says what the grader's child process must compute with
the student's function (runners.py: calls with their arguments, or Adam's steps), and
``*_rows(outputs)`` judges what came back, here in the grader's process. A check is a row
(group, name, {"student", "expected", "error", "tolerance"}, passed).
Shapes: D data, Z latent, N samples.
"""

from __future__ import annotations

import functools
import math

import numpy as np

from .. import vae
from ..config import VAEConfig
from ..gradcheck import random_problem
from .wire import BadResult, encode

LECTURE_P, UNIFORM = [0.36, 0.48, 0.16], [1 / 3, 1 / 3, 1 / 3]  # docs/03-kl-worked-example.md


def value(outputs: dict, name: str, shape: tuple = ()) -> np.ndarray:
    """outputs[name] with the expected shape;
    BadResult otherwise (the child's result is not trusted)."""
    got = outputs.get(name)
    if got is None or got.shape != tuple(shape):
        raise BadResult(f"{name} is missing or has the wrong shape")
    return got if shape else float(got)


def calls_job(function: str, calls: list) -> dict:
    """A job of calls to one function: each {"args": [...], "kwargs": {...}, "returns": ...}."""
    return {"kind": "calls", "functions": [function],
            "calls": [{"function": function, **c} for c in calls]}


def row(name: str, student, expected, tolerance: float, *, relative: bool = False) -> tuple:
    """A check: |student − expected| (relative to |expected| if asked) at most tolerance.

    expected None: a measurement shown to the student, not graded (it always passes).
    """
    if expected is None:
        return ("check", name,
                {"student": float(student), "expected": None, "error": None, "tolerance": None},
                True)
    student, expected = float(student), float(expected)
    if math.isinf(expected) or math.isinf(student):
        error = 0.0 if student == expected else math.inf
    else:
        error = abs(student - expected) / (abs(expected) if relative and expected else 1.0)
    return ("check", name,
            {"student": student, "expected": expected, "error": error, "tolerance": tolerance},
            bool(error <= tolerance))


ADAM = {"lr": 0.01, "beta1": 0.9, "beta2": 0.999, "eps": 1e-8}
ADAM_CONFIG = {"input_dim": 5, "hidden_dims": [4, 3], "latent_dim": 2}
ADAM_STEPS = 30


@functools.cache
def _adam_problem():
    """θ_0, the three gradients, and a small VAE's one batch (computed once, never changed)."""
    rng = np.random.default_rng(7)
    theta0 = rng.normal(size=(3, 4))
    gs = [rng.normal(scale=s, size=(3, 4)) for s in (1e-3, 1.0, 30.0)]
    config = VAEConfig(**{**ADAM_CONFIG, "hidden_dims": tuple(ADAM_CONFIG["hidden_dims"])})
    params, x, eps = random_problem(config, 8, np.random.default_rng(1))
    return theta0, gs, config, params, x, eps


def adam_job() -> dict:
    """Three steps of the student's update on one array,
    then ADAM_STEPS on a small VAE's one batch."""
    theta0, gs, _, params, x, eps = _adam_problem()
    arrays = {"theta0": theta0, **{f"g{t}": g for t, g in enumerate(gs, 1)},
              **{f"param/{k}": p for k, p in params.items()}, "x": x, "eps": eps}
    return {"kind": "adam", "functions": ["adam_update"], "arrays": encode(arrays), "hyper": ADAM,
            "config": ADAM_CONFIG, "steps": ADAM_STEPS}


def adam_rows(outputs: dict) -> list:
    """The three steps against the moments' sums written out, then the VAE's loss.

    m_t = (1 − β1) Σ_k β1^(t−k) g_k and v_t likewise with g², the unrolled recurrences of
    Algorithm 1; θ_t then follows from the bias-corrected ratio. A first step moves each
    coordinate by lr·|g|/(|g| + ε), almost exactly lr, whatever the scale of g.
    """
    theta0, gs, config, params, x, eps = _adam_problem()
    lr, b1, b2, e = ADAM["lr"], ADAM["beta1"], ADAM["beta2"], ADAM["eps"]
    steps = [value(outputs, f"theta/{t}", theta0.shape) for t in (1, 2, 3)]
    first = np.abs(steps[0] - theta0)  # lr·|g|/(|g| + ε) ≈ lr: the bias correction at work
    rows = [row("step 1 moves each θ by lr·|g|/(|g| + ε) ≈ lr (|g| ≈ 1e-3 here), max |difference|",
                np.max(np.abs(first - lr * np.abs(gs[0]) / (np.abs(gs[0]) + e))), 0, 1e-12)]
    m = sum((1 - b1) * b1 ** (3 - k) * g for k, g in enumerate(gs, 1))
    v = sum((1 - b2) * b2 ** (3 - k) * g * g for k, g in enumerate(gs, 1))
    rows.append(row("m after 3 steps, max |difference|",
                    np.max(np.abs(value(outputs, "m", m.shape) - m)), 0, 1e-12))
    rows.append(row("v after 3 steps, max |difference|",
                    np.max(np.abs(value(outputs, "v", v.shape) - v)), 0, 1e-9))
    theta = theta0.copy()
    for t in (1, 2, 3):
        mt = sum((1 - b1) * b1 ** (t - k) * gk for k, gk in enumerate(gs[:t], 1))
        vt = sum((1 - b2) * b2 ** (t - k) * gk * gk for k, gk in enumerate(gs[:t], 1))
        theta -= lr * (mt / (1 - b1**t)) / (np.sqrt(vt / (1 - b2**t)) + e)
    rows.append(row("θ after 3 steps, max |difference|",
                    np.max(np.abs(steps[2] - theta)), 0, 1e-12))
    rows.append(row("θ changed in place (the optimizer's own array)",
                    not np.array_equal(steps[0], theta0), 1, 0))
    final = {key: value(outputs, f"vae/{key}", p.shape) for key, p in params.items()}
    start, end = (vae.loss_and_grads(ps, x, eps, config)[0] for ps in (params, final))
    rows.append(("check",
                 f"a VAE's loss on one batch after {ADAM_STEPS} steps, "
                 "as a fraction of its start",
                 {"student": end / start, "expected": 2 / 3, "error": end / start,
                  "tolerance": 2 / 3},
                 bool(end / start <= 2 / 3)))
    return rows


DISCRETE = [  # (check, p, q, base, expected)
    ("KL(P‖Q) in nats, the lecture's P and the uniform Q", LECTURE_P, UNIFORM, None,
     float(np.sum(np.array(LECTURE_P) * np.log(np.array(LECTURE_P) / np.array(UNIFORM))))),
    ("KL(Q‖P) in nats: not the same number", UNIFORM, LECTURE_P, None,
     float(np.sum(np.array(UNIFORM) * np.log(np.array(UNIFORM) / np.array(LECTURE_P))))),
    ("KL(P‖Q) in bits (base=2)", LECTURE_P, UNIFORM, 2,
     float(np.sum(np.array(LECTURE_P) * np.log(np.array(LECTURE_P) / np.array(UNIFORM))))
     / math.log(2)),
    ("KL(P‖P) = 0", LECTURE_P, LECTURE_P, None, 0.0),
    ("an outcome with P(x) = 0 adds nothing (0 log 0 = 0)", [0.5, 0.5, 0.0], [0.25, 0.25, 0.5],
     None, math.log(2)),
    ("Q(x) = 0 < P(x) gives +inf", [0.5, 0.5], [1.0, 0.0], None, math.inf),
]


def discrete_kl_job() -> dict:
    """The lecture's table (docs/03-kl-worked-example.md) and the conventions at 0."""
    return calls_job("kl_divergence",
                     [{"args": [p, q], "kwargs": {} if base is None else {"base": base},
                       "returns": "real"} for _, p, q, base, _ in DISCRETE])


def discrete_kl_rows(outputs: dict) -> list:
    return [row(name, value(outputs, f"call/{i}"), expected,
                0 if math.isinf(expected) else 1e-12 if expected == 0 else 1e-9)
            for i, (name, _, _, _, expected) in enumerate(DISCRETE)]


@functools.cache
def _quadrature_kl(mu_q, var_q, mu_p, var_p) -> float:
    """∫ q log(q/p) dz on a fine grid over μ_q ± 12 σ_q (trapezoid rule): no closed form used."""
    z = np.linspace(mu_q - 12 * math.sqrt(var_q), mu_q + 12 * math.sqrt(var_q), 200_001)
    log_q = -0.5 * ((z - mu_q) ** 2 / var_q + math.log(2 * math.pi * var_q))
    log_p = -0.5 * ((z - mu_p) ** 2 / var_p + math.log(2 * math.pi * var_p))
    return trapezoid(np.exp(log_q) * (log_q - log_p), z)


def trapezoid(f: np.ndarray, z: np.ndarray) -> float:
    """∫ f dz by the trapezoid rule on the grid z."""
    return float(np.sum(0.5 * (f[1:] + f[:-1]) * np.diff(z)))


GAUSSIAN_PAIRS = [(0.0, 1.0, 0.0, 1.0), (1.0, 0.5, 0.0, 1.0), (-0.3, 2.0, 0.5, 0.7),
                  (2.0, 0.1, -1.0, 3.0)]


def gaussian_kl_job() -> dict:
    return calls_job("kl_normal",
                     [{"args": list(pair), "returns": "real"} for pair in GAUSSIAN_PAIRS])


def gaussian_kl_rows(outputs: dict) -> list:
    return [row(f"KL(N({a:g}, {b:g}) ‖ N({c:g}, {d:g})) against quadrature",
                value(outputs, f"call/{i}"), _quadrature_kl(a, b, c, d), 1e-7)
            for i, (a, b, c, d) in enumerate(GAUSSIAN_PAIRS)]


MC_MU, MC_LOG_VAR = [0.5, -1.0, 0.2], [-0.5, 0.3, -1.2]
MC_CALLS = [(10_000, 0), (10_000, 0), (1_000, 1), (100_000, 2)]  # (n, the rng's seed)


def monte_carlo_job() -> dict:
    return calls_job("kl_monte_carlo",
                     [{"args": [{"array": MC_MU}, {"array": MC_LOG_VAR}, n, {"rng": seed}],
                       "returns": ["real", "real"]} for n, seed in MC_CALLS])


def monte_carlo_rows(outputs: dict) -> list:
    """The estimate within 4 standard errors of the closed form,
    with the standard error the grader knows.

    One sample of log q(z) − log p(z), z = μ + σ ε, is Σ_j [½(σ_j² − 1) ε_j² + μ_j σ_j ε_j + const],
    whose variance is Σ_j [½ (σ_j² − 1)² + μ_j² σ_j²] (Var ε² = 2, and ε², ε are uncorrelated):
    the standard error of a mean of n samples is √(that / n), whatever the student claims.
    """
    mu, log_var = np.array(MC_MU), np.array(MC_LOG_VAR)
    var = np.exp(log_var)
    # docs/02-variational-inference.md eq. (10)
    closed = float(0.5 * np.sum(mu**2 + var - 1 - log_var))
    true_se = math.sqrt(float(np.sum(0.5 * (var - 1) ** 2 + mu**2 * var)) / MC_CALLS[0][0])
    (estimate, se), (again, _), (_, se_small), (_, se_big) = (
        (value(outputs, f"call/{i}/0"), value(outputs, f"call/{i}/1"))
        for i in range(len(MC_CALLS)))
    return [
        row("the estimate, n = 10,000 (within 4 standard errors √(Var/n) of the closed form)",
            estimate, closed, 4 * true_se),
        row("its standard error against the true √(Var/n) (relative difference)",
            se, true_se, 0.1, relative=True),
        row("standard error shrinks 10x when n grows 100x",
            se_small / se_big if se_big > 0 else math.inf, 10.0, 1.5),
        row("the same rng seed gives the same estimate", again, estimate, 0),
    ]
