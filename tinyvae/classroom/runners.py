"""What the grader's child process computes:
the student's functions' outputs on the grader's inputs.

Nothing here judges. Each runner takes the student's functions and the job the grader sent
(arrays, a model's settings, calls to make) and returns {name: float array} for the grader to
compare with what it computed itself (grader.py, numeric.py, probability.py):

    model   a rung of the ladder: the whole VAE's gradients, tinyvae's loss_and_grads with the
            student's function plugged in, for each of its terms (gradcheck.terms_of); and the
            function's own outputs on the unit inputs (units.py)
    loss    the student's loss_and_grads, for each of the three terms
    adam    three steps of the student's update on one array, then thirty on a small VAE
    calls   the probability exercises: the student's functions called with the arguments sent

Every array the student's code receives is read-only (but Adam's θ and moments, which it must
update in place); every value it returns is checked before anything uses it (ladder.py).
Shapes: B batch, D data, Z latent.
"""

from __future__ import annotations

import numpy as np

from .. import vae
from ..config import VAEConfig, param_shapes
from ..gradcheck import TERMS, terms_of
from . import guards
from .ladder import CHECKED, LADDER, array, call, grads_dict, readonly, returns
from .student import StudentError
from .units import UNITS
from .wire import decode


def test_function(z):
    """The estimators' f(z) = z² + sin z (probability.py computes its exact expected gradient)."""
    return z**2 + np.sin(z)


def test_derivative(z):
    return 2 * z + np.cos(z)


CALLABLES = {"f": test_function, "df": test_derivative}


def config_of(job: dict) -> VAEConfig:
    fields = dict(job["config"])
    fields["hidden_dims"] = tuple(fields["hidden_dims"])
    return VAEConfig(**fields)


def problem_of(arrays: dict) -> tuple[dict, np.ndarray, np.ndarray]:
    params = {key[len("param/"):]: a for key, a in arrays.items() if key.startswith("param/")}
    return params, arrays["x"], arrays["eps"]


def model(fns, job) -> dict:
    """A rung: the model's gradients with the student's function in it, then the function alone."""
    exercise = next(e for e in LADDER if e.name == job["exercise"])
    arrays = decode(job["arrays"])
    params, x, eps = problem_of(arrays)
    out = {}
    with exercise.plug(fns[0]):
        config = config_of(job)
        for term, terms in terms_of(config).items():
            grads = vae.loss_and_grads(params, x, eps, config, terms=terms)[1]
            out.update({f"model/{term}/{key}": g for key, g in grads.items()})
        unit = {key[len("unit/"):]: a for key, a in arrays.items() if key.startswith("unit/")}
        outputs = UNITS[exercise.name].call(CHECKED[exercise.name](fns[0]), unit, config)
        out.update({f"unit/{name}": a for name, a in outputs.items()})
    return out


def loss(fns, job) -> dict:
    """The student's loss_and_grads for each term: its grads, checked key by key."""
    params, x, eps = problem_of(decode(job["arrays"]))
    config = config_of(job)
    out = {}
    for term, terms in TERMS.items():
        result, inputs = call(lambda *a, terms=terms: fns[0](*a, terms=terms),
                              ("params", "x", "eps", "config"), dict(params), x, eps, config)
        grads = returns(result, 3, "loss_and_grads (the loss, the grads, the stats)")[1]
        grads = grads_dict("loss_and_grads' grads", grads, param_shapes(config), inputs)
        out.update({f"model/{term}/{key}": g for key, g in grads.items()})
    return out


def adam(fns, job) -> dict:
    """Three steps on one array, then thirty on a small VAE: the arrays they leave."""
    update, arrays, hyper = fns[0], decode(job["arrays"]), job["hyper"]
    theta, out = arrays["theta0"].copy(), {}
    m, v = np.zeros_like(theta), np.zeros_like(theta)
    for t in (1, 2, 3):
        _step(update, theta, arrays[f"g{t}"], m, v, t, hyper)
        out[f"theta/{t}"] = theta.copy()
    out.update({"m": m, "v": v})
    params, x, eps = problem_of(arrays)
    config = config_of(job)
    moments = {key: (np.zeros_like(p), np.zeros_like(p)) for key, p in params.items()}
    for t in range(1, job["steps"] + 1):
        grads = vae.loss_and_grads(params, x, eps, config)[1]
        for key, p in params.items():
            _step(update, p, grads[key], *moments[key], t, hyper)
    out.update({f"vae/{key}": p for key, p in params.items()})
    return out


def _step(update, theta, g, m, v, t, hyper) -> None:
    """One call of the student's update, as the optimizer makes it:
    its own θ, m and v, g read-only."""
    with guards.student_code():
        update(theta, readonly(g), {"m": m, "v": v}, t,
               hyper["lr"], hyper["beta1"], hyper["beta2"], hyper["eps"])


def calls(fns, job) -> dict:
    """The probability exercises: each call made as the grader wrote it, each value checked."""
    by_name, out = dict(zip(job["functions"], fns)), {}
    for i, spec in enumerate(job["calls"]):
        args = [_argument(a) for a in spec["args"]]
        kwargs = {k: _argument(a) for k, a in spec.get("kwargs", {}).items()}
        with guards.student_code():
            value = by_name[spec["function"]](*readonly(args), **kwargs)
        out.update(_returned(f"call/{i}", value, spec["returns"], spec["function"]))
    return out


def _argument(a):
    """A call's argument as JSON carries it:
    {"rng": seed}, {"array": [...]}, {"callable": name}, or plain."""
    if isinstance(a, dict) and "rng" in a:
        return np.random.default_rng(a["rng"])
    if isinstance(a, dict) and "array" in a:
        return np.array(a["array"], dtype=np.float64)
    if isinstance(a, dict) and "callable" in a:
        return CALLABLES[a["callable"]]
    return a


def real(what: str, value) -> float:
    """A number the student returned: a Python or numpy real
    (not a bool, a string, a complex...)."""
    if isinstance(value, np.ndarray) and value.shape == () and value.dtype.kind in "fi":
        return float(value)
    if (isinstance(value, (int, float, np.integer, np.floating))
            and not isinstance(value, (bool, np.bool_))):
        return float(value)
    raise StudentError(f"{what} is a {type(value).__name__}"
                       + (f" of dtype {value.dtype}" if hasattr(value, "dtype") else "")
                       + ", not a real number")


def _returned(name: str, value, returns_spec, function: str) -> dict:
    """The value checked against what the call must return:
    "real", ["real", "real"] or {"array": shape}."""
    if returns_spec == "real":
        return {name: np.float64(real(f"{function}()'s value", value))}
    if isinstance(returns_spec, list):
        values = returns(value, len(returns_spec), f"{function}()")
        return {f"{name}/{i}": np.float64(real(f"{function}()'s value {i + 1}", v))
                for i, v in enumerate(values)}
    return {name: array(f"{function}()'s value", value, tuple(returns_spec["array"]), [])}


RUNNERS = {"model": model, "loss": loss, "adam": adam, "calls": calls}
