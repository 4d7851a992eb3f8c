"""Grading a rung of the backprop ladder: the student's function in the model, checked row by row.

The check is gradcheck's table (tinyvae/gradcheck.py) with one difference: the analytic
gradients come from the model with the student's function plugged in (ladder.py), and the
numerical ones from tinyvae's forward pass alone (vae.negative_elbo, which runs no backward
code). So every row is the student's gradient against central differences of the true loss,
never against tinyvae's own gradient. The model is gradcheck's default: 5 → 4 → 3 → (2 + 2),
batch 2, seed 0, every size different so that a missing transpose cannot slip through.

Shapes: B batch, D data, Z latent.
"""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import NamedTuple

import numpy as np

from .. import vae
from ..gradcheck import (DEFAULT_H, DEFAULT_THRESHOLD, TERMS, GradCheckRow, numerical_gradient, random_problem,
                         rel_error)
from .diagnosis import error_pattern, explain_entry
from .ladder import Exercise
from .student import NotImplementedYet, StudentError, students_code
from ..config import VAEConfig, param_shapes

# The model every rung is checked on (gradcheck's defaults); a rung's setting changes one field.
MODEL = {"input_dim": 5, "hidden_dims": (4, 3), "latent_dim": 2, "gaussian_std": 0.5}
BATCH, SEED = 2, 0


class Graded(NamedTuple):
    """The outcome of one exercise.

    status: "passed", "failed", "not implemented", "error" (the student's code failed; message
    says where) or "missing" (no file). rows: (group, name, columns dict, passed) for the table
    and the JSON. note: the explanation of the first failing row, or the error, or "".
    """

    name: str
    status: str
    rows: list
    note: str
    config: object = None


def model_config(exercise: Exercise, **overrides) -> VAEConfig:
    return VAEConfig(**{**MODEL, **exercise.setting, **overrides})


def term_loss(params, x, eps, config, terms: str):
    """loss_fn() for one term, from the forward pass alone: (1/B) Σ_i [w_recon recon_i + w_kl KL_i]."""
    w_recon = 0.0 if terms == "kl" else 1.0
    w_kl = 0.0 if terms == "recon" else config.beta

    def loss_fn():
        _, recon, kl = vae.negative_elbo(params, x, eps, config)
        return float(np.mean(w_recon * recon + w_kl * kl))
    return loss_fn


def student_grads(grads_fn, params, x, eps, config, path: Path) -> dict:
    """{term: the analytic gradients grads_fn gives for that term}, the student's code running."""
    with students_code(path):
        return {term: grads_fn(params, x, eps, config, terms=terms) for term, terms in TERMS.items()}


def check_rows(grads, params, x, eps, config, h: float, threshold: float):
    """Every (term, parameter) row: the analytic grads against central differences of the forward.

    Returns (rows, failures): a row is (term, GradCheckRow); a failure is
    (term, key, analytic, numerical, loss), one for each failing row, in table order.
    """
    rows, failures = [], []
    for term, terms in TERMS.items():
        loss_fn = term_loss(params, x, eps, config, terms)
        for key in params:
            analytic = np.asarray(grads[term][key], dtype=np.float64)
            numerical = numerical_gradient(loss_fn, params[key], h)
            err = rel_error(analytic, numerical)
            row = GradCheckRow(key, float(np.linalg.norm(analytic)), float(np.linalg.norm(numerical)), err,
                               err < threshold)
            rows.append((term, row))
            if not row.passed:
                failures.append((term, key, analytic, numerical, loss_fn()))
    return rows, failures


def grade_model(exercise: Exercise, fn, path: Path, *, seed: int = SEED, h: float = DEFAULT_H,
                threshold: float = DEFAULT_THRESHOLD, **overrides) -> Graded:
    """Grade a "model" or "loss" rung: the whole-VAE table with the student's function in place.

    ``seed`` draws the random model, data and noise (gradcheck's default 0; an instructor may
    grade on a seed the students have not seen). The analytic gradients are computed with the
    student's function plugged in; the numerical
    ones afterwards, with tinyvae's forward pass alone (exercise.plug(None) is the model with
    nothing of the student's in it, softplus registered with tinyvae's own pair).
    """
    student_in = contextlib.nullcontext() if exercise.kind == "loss" else exercise.plug(fn)
    grads_fn = _loss_grads(fn) if exercise.kind == "loss" else _library_grads
    try:
        with student_in:
            config = model_config(exercise, **overrides)
            params, x, eps = random_problem(config, BATCH, np.random.default_rng(seed))
            grads = student_grads(grads_fn, params, x, eps, config, path)
    except NotImplementedYet as exc:
        return Graded(exercise.name, "not implemented", [], f"not implemented yet: {exc}")
    except StudentError as exc:
        hint = ""
        if any(word in str(exc) for word in ("shape", "matmul", "broadcast", "align")):
            hint = (f"\n  a shape error in a backward pass is most often a missing or extra transpose: "
                    f"check each shape against {exercise.equation}")
        return Graded(exercise.name, "error", [], str(exc) + hint)
    with contextlib.nullcontext() if exercise.kind == "loss" else exercise.plug(None):
        rows, failures = check_rows(grads, params, x, eps, config, h, threshold)
    table = [(term, row.name, _columns(row, config), row.passed) for term, row in rows]
    if not failures:
        return Graded(exercise.name, "passed", table, "", config)
    return Graded(exercise.name, "failed", table, explain(failures, exercise, h), config)


def explain(failures, exercise: Exercise, h: float) -> str:
    """The first failing row explained: its error pattern, the equation, its worst entry.

    When the first row shows no clear pattern but a later one does (a dropped path shows as an
    exact 0 only in the block that has nothing else), that row is explained too.
    """
    term, key, analytic, numerical, loss = failures[0]
    clear, words = error_pattern(analytic, numerical, BATCH)
    lines = [f"first FAIL: {term} {key}: {words}", f"    derived in {exercise.equation}",
             f"    {explain_entry(analytic, numerical, h, loss)}"]
    if not clear:
        for term, key, analytic, numerical, _ in failures[1:]:
            clear, words = error_pattern(analytic, numerical, BATCH)
            if clear:
                lines.append(f"clearest FAIL: {term} {key}: {words}")
                break
    return "\n".join(lines)


def _loss_grads(fn):
    """The student's loss_and_grads as a grads_fn: its grads dict, checked key by key and shape by shape."""
    def grads_fn(params, x, eps, config, terms):
        out = fn(params, x, eps, config, terms=terms)
        if not isinstance(out, tuple) or len(out) != 3:
            raise StudentError("loss_and_grads must return (loss, grads, stats)")
        grads = out[1]
        shapes = param_shapes(config)
        if not isinstance(grads, dict) or set(grads) != set(shapes):
            got = sorted(grads) if isinstance(grads, dict) else type(grads).__name__
            raise StudentError(f"loss_and_grads' grads must have exactly the keys {list(shapes)}, got {got}")
        for key, shape in shapes.items():
            if np.shape(grads[key]) != shape:
                raise StudentError(f"grads[{key!r}] has shape {np.shape(grads[key])}, expected {shape}")
        return grads
    return grads_fn


def _library_grads(params, x, eps, config, terms):
    """The model's gradients: tinyvae's loss_and_grads, with the student's piece plugged in."""
    return vae.loss_and_grads(params, x, eps, config, terms=terms)[1]


def _columns(row: GradCheckRow, config) -> dict:
    return {"shape": str(param_shapes(config)[row.name]), "analytic_norm": row.analytic_norm,
            "numerical_norm": row.numerical_norm, "rel_error": row.rel_error}
