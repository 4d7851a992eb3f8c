"""Grading a rung of the backprop ladder: the student's gradients against central differences.

The child process (child.py, runners.py) runs tinyvae's model with the student's function
plugged in and sends back the analytic gradients; everything else happens here, in the
grader's own process, with tinyvae's own forward pass: the random problem, the numerical
gradients, the comparison, the verdict and its explanation. Two tables:

    the function alone   each of its outputs against central differences of its own forward
                         pass (units.py): which output is wrong; and, for a function with
                         properties of its own (w̃ sums to 1), a row for each of them
    the whole VAE        every (term, parameter) row, as `python -m tinyvae.gradcheck` prints
                         (the full loss alone for the "iwae" bound: gradcheck.terms_of)

The model is gradcheck's layer sizes, 5 → 4 → 3 → (2 + 2), every size different so that a
missing transpose cannot slip through, with a batch of B = 3 and a Gaussian σ = 0.6: a factor
of B, of ½, of σ or of σ² then each show as a number of their own (diagnosis.py). A seed whose
model puts a ReLU pre-activation within KINK·h of the kink is moved off: there a correct
gradient fails (docs/05-classroom.md §5.5). The numerical side is computed once for each
rung, seed and step, and reused for every student.

Shapes: B batch, D data, Z latent, K samples of z per image.
"""

from __future__ import annotations

import contextlib
import threading
from typing import NamedTuple

import numpy as np

from .. import vae
from ..config import VAEConfig, param_shapes
from ..gradcheck import (
    DEFAULT_H,
    DEFAULT_THRESHOLD,
    numerical_gradient,
    random_problem,
    rel_error,
    terms_of,
)
from .diagnosis import explain_rung, mlp_margin, relu_margin
from .ladder import Exercise, plug_softplus
from .units import UNITS
from .wire import BadResult, encode

MODEL = {"input_dim": 5, "hidden_dims": (4, 3), "latent_dim": 2, "gaussian_std": 0.6}
BATCH, SEED = 3, 0
KINK = 100  # a ReLU pre-activation within KINK·h of 0 moves the check to the next seed


class Graded(NamedTuple):
    """The outcome of one exercise.

    status: "passed", "failed" (a wrong value, or a rule broken: the note says which),
    "not implemented", "error" (the student's code failed, or was stopped: the note says how)
    or "missing" (no file). rows: (group, name, columns dict, passed) for the tables and the
    JSON. note: the explanation, or the error. remark: a line above the table (a moved seed).
    log: what the student's code printed. seconds: the wall-clock time of the check. pattern: the
    key of the failure's pattern (diagnosis.Pattern), for --hint.
    """

    name: str
    status: str
    rows: list
    note: str
    config: object = None
    remark: str = ""
    log: str = ""
    seconds: float = 0.0
    pattern: str = ""


class Reference(NamedTuple):
    """What the grader computes for a rung on its own: the problem and every numerical gradient."""

    config: VAEConfig
    params: dict
    x: np.ndarray
    eps: np.ndarray
    remark: str
    numerical: dict  # term -> key -> array
    losses: dict  # term -> the loss
    unit_inputs: dict
    unit_numerical: dict  # output -> array
    unit_value: float


_references: dict = {}
_lock = threading.Lock()


def library(exercise: Exercise):
    """The model as tinyvae has it, plus softplus registered for the softplus rung."""
    return plug_softplus(None) if exercise.name == "softplus" else contextlib.nullcontext()


def model_fields(exercise: Exercise, overrides: dict) -> dict:
    return {**MODEL, **exercise.setting, **overrides}


def reference(exercise: Exercise, seed: int, h: float, overrides: dict,
              secret: bool = False) -> Reference:
    """The rung's Reference, computed on first use and kept
    (one lock: the softplus registration)."""
    key = (exercise.name, seed, h, tuple(sorted(overrides.items())), secret)
    with _lock:
        if key not in _references:
            with library(exercise):
                _references[key] = _compute(exercise, seed, h, overrides, secret)
        return _references[key]


def _compute(exercise: Exercise, seed: int, h: float, overrides: dict, secret: bool) -> Reference:
    config = VAEConfig(**model_fields(exercise, overrides))
    used = seed
    while True:
        params, x, eps = random_problem(config, BATCH, np.random.default_rng(used))
        margin = relu_margin(params, x, eps, config)
        if margin >= KINK * h:
            break
        used += 1
    remark = "" if used == seed else (
        f"note: {'the course' if secret else 'seed'}{'' if secret else f' {seed}'}'s model puts a "
        f"ReLU pre-activation within {KINK} h of the kink, where a correct gradient fails; "
        f"checked on {'the next seed' if secret else f'seed {used}'} instead")
    numerical, losses = {}, {}
    for term, terms in terms_of(config).items():
        def loss_fn(terms=terms):
            return vae.loss_and_grads(params, x, eps, config, terms=terms)[0]
        numerical[term] = {key: numerical_gradient(loss_fn, params[key], h) for key in params}
        losses[term] = loss_fn()
    unit_inputs, unit_numerical, unit_value = {}, {}, 0.0
    if exercise.name in UNITS:
        unit = UNITS[exercise.name]
        unit_inputs = _unit_inputs(unit, config, np.random.default_rng((used, 1)), h)
        unit_value = unit.value(unit_inputs, config)
        unit_numerical = {out: numerical_gradient(lambda: unit.value(unit_inputs, config),
                                                  unit_inputs[wrt], h)
                          for out, wrt in unit.wrt(config).items()}
    return Reference(config, params, x, eps, remark, numerical, losses,
                     unit_inputs, unit_numerical, unit_value)


def _unit_inputs(unit, config, rng, h) -> dict:
    """The unit's inputs, drawn again while a ReLU layer of an encoder or a decoder
    sits near the kink."""
    while True:
        inputs = unit.draw(rng, config)
        start = inputs.get("x", inputs.get("z"))
        prefix = "encoder" if "encoder.W0" in inputs else "decoder"
        if config.activation != "relu" or f"{prefix}.W0" not in inputs or \
                mlp_margin(inputs, start, prefix, len(config.hidden_dims)) >= KINK * h:
            return inputs


def job(exercise: Exercise, path, ref: Reference, overrides: dict) -> dict:
    """What the child needs: the problem and the unit inputs
    (never the seed, never a numerical gradient)."""
    arrays = {**{f"param/{k}": v for k, v in ref.params.items()}, "x": ref.x, "eps": ref.eps,
              **{f"unit/{k}": v for k, v in ref.unit_inputs.items()}}
    fields = model_fields(exercise, overrides)
    return {"exercise": exercise.name, "kind": exercise.kind, "path": str(path),
            "functions": [exercise.function],
            "config": {**fields, "hidden_dims": list(fields["hidden_dims"])},
            "arrays": encode(arrays)}


def expect(outputs: dict, name: str, shape: tuple) -> np.ndarray:
    """outputs[name], which must be there with ``shape`` (the child's result is not trusted)."""
    value = outputs.get(name)
    if value is None or value.shape != tuple(shape):
        raise BadResult(f"{name} is missing or has the wrong shape")
    return value


def judge(exercise: Exercise, ref: Reference, outputs: dict, threshold: float = DEFAULT_THRESHOLD,
          h: float = DEFAULT_H) -> Graded:
    """The two tables from the child's outputs, the verdict, and the explanation of what failed."""
    shapes = param_shapes(ref.config)
    rows, unit_failures, unit_passes, model_failures = [], [], [], []
    unit = UNITS.get(exercise.name)
    if unit is not None:
        analytics = {}
        for out, wrt in unit.wrt(ref.config).items():
            analytic = analytics[out] = expect(outputs, f"unit/{out}", ref.unit_inputs[wrt].shape)
            row = _row(exercise.function, out, analytic, ref.unit_numerical[out], threshold)
            rows.append(row)
            (unit_passes.append(out) if row[3] else
             unit_failures.append((out, analytic, ref.unit_numerical[out], ref.unit_value)))
        rows += unit.checks(ref.unit_inputs, analytics) if unit.checks else []
    for term in terms_of(ref.config):
        for key, shape in shapes.items():
            analytic = expect(outputs, f"model/{term}/{key}", shape)
            row = _row(term, key, analytic, ref.numerical[term][key], threshold)
            rows.append(row)
            if not row[3]:
                model_failures.append((f"{term} {key}", analytic, ref.numerical[term][key],
                                       ref.losses[term]))
    if all(ok for *_, ok in rows):
        return Graded(exercise.name, "passed", rows, "", ref.config, ref.remark)
    if not unit_failures and not model_failures:  # a property alone (units.py's checks)
        first = next(name for _, name, _, ok in rows if not ok)
        note = f"first FAIL: {first}\n  see {exercise.equation}"
        return Graded(exercise.name, "failed", rows, note, ref.config, ref.remark)
    factors = {"B": BATCH,
               **({"σ": ref.config.gaussian_std} if ref.config.likelihood == "gaussian" else {})}
    note, pattern = explain_rung(exercise, unit_failures, unit_passes, model_failures, factors, h,
                                 unit.pattern if unit is not None else None)
    return Graded(exercise.name, "failed", rows, note, ref.config, ref.remark, pattern=pattern)


def _row(group: str, name: str, analytic: np.ndarray, numerical: np.ndarray,
         threshold: float) -> tuple:
    err = rel_error(analytic, numerical)
    columns = {"shape": str(tuple(analytic.shape)),
               "analytic_norm": float(np.linalg.norm(analytic)),
               "numerical_norm": float(np.linalg.norm(numerical)),
               "rel_error": err}
    return (group, name, columns, bool(err < threshold))
