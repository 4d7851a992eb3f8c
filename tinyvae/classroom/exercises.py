"""The exercises: the ladder of backward passes and the lecture's probability, as files students own.

    start(name, folder)   write the student's file folder/NAME.py from its stub; never overwrite
    grade(name, folder)   load folder/NAME.py and grade it; a Graded result, never an exception

A student's file is plain Python with the library's signature; its stub is a file of its own,
stubs/NAME.py, which `start` copies as it is. The grader imports it from the student's folder, plugs
its function into the model for the length of the check (ladder.py, swap.py), and compares with
finite differences or quadrature (grader.py, numeric.py, probability.py).
"""

from __future__ import annotations

import os
from importlib import resources
from pathlib import Path

from . import numeric, probability
from .grader import Graded, grade_model
from .ladder import LADDER, Exercise
from .student import NotImplementedYet, StudentError, function, load, shown, students_code
from .student import passed_through as _from_student

DEFAULT_FOLDER = "tinyvae-exercises"

BEYOND = [
    Exercise("discrete-kl", "the lecture's discrete KL, in nats and in bits", "kl_divergence",
             "docs/03-kl-worked-example.md eqs. (1), (2)", "probability", {}),
    Exercise("gaussian-kl", "the KL between two 1-D Gaussians", "kl_normal",
             "docs/02-variational-inference.md eq. (10), generalised", "probability", {}),
    Exercise("kl-monte-carlo", "a Monte-Carlo check of the closed-form KL", "kl_monte_carlo",
             "docs/02-variational-inference.md eq. (10)", "probability", {}),
    Exercise("elbo-identity", "log p(x) = KL + ELBO on the exact linear-Gaussian model", "elbo",
             "docs/02-variational-inference.md eq. (5)", "probability", {}),
    Exercise("estimators", "score-function against reparameterization gradients: their variances",
             "score_function_grad", "docs/04-gradients.md eq. (14)", "probability", {}),
]
EXERCISES: dict[str, Exercise] = {e.name: e for e in LADDER + BEYOND}

# The checks of the exercises graded without the model's table: name -> (check, the functions it takes).
CHECKS = {
    "adam": (numeric.adam_checks, ("adam_update",)),
    "discrete-kl": (numeric.discrete_kl_checks, ("kl_divergence",)),
    "gaussian-kl": (numeric.gaussian_kl_checks, ("kl_normal",)),
    "kl-monte-carlo": (numeric.monte_carlo_checks, ("kl_monte_carlo",)),
    "elbo-identity": (probability.elbo_checks, ("elbo",)),
    "estimators": (probability.estimator_checks, ("score_function_grad", "reparam_grad")),
}


def stub_text(name: str) -> str:
    """The text of the student's file for exercise ``name``: stubs/NAME.py, shipped with the package."""
    if name not in EXERCISES:
        raise KeyError(name)
    return (resources.files(__package__) / "stubs" / f"{name}.py").read_text(encoding="utf-8")


def path_of(name: str, folder) -> Path:
    return Path(folder) / f"{name}.py"


def start(name: str, folder) -> tuple[Path, bool]:
    """Write the stub of ``name`` to folder/NAME.py unless that file exists; (its path, written?).

    The student's work is never overwritten: an existing file is left exactly as it is. The
    folder is created if needed; the file is written whole or not at all (written to a
    temporary name first, then renamed).
    """
    path = path_of(name, folder)
    if path.exists():
        return path, False
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(stub_text(name), encoding="utf-8")
    try:
        os.link(tmp, path)  # atomic, and refuses a file that appeared meanwhile: the student's wins
    except FileExistsError:
        return path, False
    finally:
        tmp.unlink(missing_ok=True)
    return path, True


def grade(name: str, folder, **options) -> Graded:
    """Grade folder/NAME.py. Never raises for anything the student's file does.

    options go to grade_model (seed, h, threshold, VAEConfig fields) for the model's rungs; the
    other exercises have fixed checks and ignore them.
    """
    exercise, path = EXERCISES[name], path_of(name, folder).resolve()
    if not path.exists():
        return Graded(name, "missing", [], f"no file {path_of(name, folder)}; "
                      f"`python -m tinyvae exercise start {name}` writes it")
    try:
        module = load(path)
        if exercise.kind in ("model", "loss"):
            return grade_model(exercise, function(module, exercise.function, path), path, **options)
        check, names = CHECKS[name]
        fns = [function(module, fn, path) for fn in names]
        with students_code(path):
            try:
                rows = check(*fns)
            except (TypeError, ValueError, IndexError, KeyError, ZeroDivisionError) as exc:
                if _from_student(exc, path):
                    raise
                # what the student's function returned is not what the check can read (None, a string...)
                raise StudentError(f"{shown(path)}: {exercise.function}() returned something the check "
                                   f"cannot use ({type(exc).__name__}: {exc}); see its docstring") from None
    except NotImplementedYet as exc:
        return Graded(name, "not implemented", [], f"not implemented yet: {exc}")
    except StudentError as exc:
        return Graded(name, "error", [], str(exc))
    failed = [r for r in rows if not r[3]]
    note = "" if not failed else f"first FAIL: {failed[0][1]}\n    see {exercise.equation}"
    return Graded(name, "failed" if failed else "passed", rows, note)
