"""The exercises: the ladder of backward passes and the lecture's probability,
as files students own.

    start(name, folder)        write the student's file folder/NAME.py from its stub; never
                               overwrite
    grade(name, folder)        grade folder/NAME.py; a Graded result, never an exception
    grade_file(name, path)     the same for a file anywhere (`python relu.py` checks itself this
                               way)
    Grading(tasks, options)    many (exercise, file) pairs at once, each in a process of its own

A student's file is plain Python with the library's signature; its stub is a file of its own,
stubs/NAME.py, which `start` copies as it is. Grading one exercise is three steps:
    plan     what the child must compute (the grader's inputs) and how to judge it
             (grader.py for the ladder, numeric.py and probability.py for the rest)
    run      a child process imports the student's file and computes (sandbox.py, child.py)
    judge    the grader compares, with numbers it found itself, and explains (diagnosis.py)
"""

from __future__ import annotations

import os
import sys
import tempfile
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from importlib import resources
from pathlib import Path
from typing import NamedTuple

from . import grader, numeric, probability
from .grader import Graded
from .ladder import LADDER, Exercise
from .sandbox import Limits, Zygote, run, stop_all
from .wire import BadResult

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

# The exercises graded without the model's table: name -> (the child's job, the judge of its
# outputs).
CHECKS: dict[str, tuple[Callable[[], dict], Callable[[dict], list]]] = {
    "adam": (numeric.adam_job, numeric.adam_rows),
    "discrete-kl": (numeric.discrete_kl_job, numeric.discrete_kl_rows),
    "gaussian-kl": (numeric.gaussian_kl_job, numeric.gaussian_kl_rows),
    "kl-monte-carlo": (numeric.monte_carlo_job, numeric.monte_carlo_rows),
    "elbo-identity": (probability.elbo_job, probability.elbo_rows),
    "estimators": (probability.estimator_job, probability.estimator_rows),
}


class Options(NamedTuple):
    """How to grade: the ladder's seed, step and threshold (secret: the seed is not to be shown),
    the limits of each child, and VAEConfig fields that change the ladder's model."""

    seed: int = grader.SEED
    h: float = grader.DEFAULT_H
    threshold: float = grader.DEFAULT_THRESHOLD
    limits: Limits = Limits()
    secret: bool = False
    overrides: dict = {}


def stub_text(name: str) -> str:
    """The text of the student's file for exercise ``name``:
    stubs/NAME.py, shipped with the package."""
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
    """Grade folder/NAME.py.
    options: Options' fields; any other is a VAEConfig field of the ladder's model."""
    known = {k: v for k, v in options.items() if k in Options._fields}
    overrides = {k: v for k, v in options.items() if k not in Options._fields}
    return grade_file(name, path_of(name, folder),
                      Options(**known, overrides={**known.get("overrides", {}), **overrides}))


def plan(exercise: Exercise, path: Path, options: Options) -> tuple[dict, Callable[[dict], Graded]]:
    """(the child's job, the judge of its outputs) for one exercise and one file."""
    if exercise.kind in ("model", "loss"):
        ref = grader.reference(exercise, options.seed, options.h, options.overrides, options.secret)
        job = grader.job(exercise, path, ref, options.overrides)
        return job, lambda outputs: grader.judge(exercise, ref, outputs,
                                                 options.threshold, options.h)
    make_job, rows_of = CHECKS[exercise.name]
    job = {"exercise": exercise.name, "path": str(path), **make_job()}

    def judge(outputs: dict) -> Graded:
        rows = rows_of(outputs)
        failed = [r for r in rows if not r[3]]
        note = "" if not failed else f"first FAIL: {failed[0][1]}\n    see {exercise.equation}"
        return Graded(exercise.name, "failed" if failed else "passed", rows, note)
    return job, judge


DEFAULTS = Options()


def grade_file(name: str, path, options: Options = DEFAULTS, folder: Path | None = None,
               zygote: Zygote | None = None) -> Graded:
    """Grade the file at ``path`` as exercise ``name``, in a child process.
    Never raises for the student.

    folder: where the job's files go (a temporary folder of its own otherwise); zygote: the process
    that forks the child (sandbox.py), one of its own otherwise.
    """
    exercise, path = EXERCISES[name], Path(path)
    if not path.is_file():
        return Graded(name, "missing", [],
                      f"no file {path}; `python -m tinyvae exercise start {name}` writes it")
    job, judge = plan(exercise, path.resolve(), options)
    if folder is None:
        with tempfile.TemporaryDirectory(prefix="tinyvae-grader-") as tmp:
            outcome = run(job, options.limits, Path(tmp))
    else:
        outcome = run(job, options.limits, folder, zygote)
    extra = {"log": outcome.log, "seconds": outcome.seconds}
    if outcome.status != "ok":
        status = {"rule": "failed",
                  "not implemented": "not implemented"}.get(outcome.status, "error")
        message = outcome.message
        if (exercise.kind in ("model", "loss")
                and any(w in message for w in ("shape", "matmul", "broadcast", "align"))):
            message += ("\n  a shape error in a backward pass is most often a missing or extra "
                        f"transpose: check each shape against {exercise.equation}")
        return Graded(name, status, [], message, pattern="rule" if outcome.status == "rule" else "",
                      **extra)
    try:
        return judge(outcome.outputs)._replace(**extra)
    except BadResult as exc:
        return Graded(name, "error", [],
                      f"the exercise's process returned a result the grader cannot read: {exc}",
                      **extra)


INTERRUPTED = "not graded: the grader was interrupted"


class Grading:
    """Many (exercise, file) pairs graded at once on ``jobs`` workers, each pair in its own child.

    results() yields the Graded of each pair in the order given; stop() ends every child and
    every pair not yet graded (each then reads INTERRUPTED). on_done(done, total) is called as
    each pair finishes, in whatever order. Each worker forks its children from a Zygote of its own.
    """

    def __init__(self, tasks: list[tuple[str, Path]], options: Options, jobs: int,
                 on_done: Callable[[int, int], None] | None = None):
        self.tasks, self.options, self.on_done = tasks, options, on_done
        self.stopping, self.done, self.lock = threading.Event(), 0, threading.Lock()
        self.tmp = tempfile.TemporaryDirectory(prefix="tinyvae-grader-")
        self.pool = ThreadPoolExecutor(max_workers=max(1, jobs))
        self.local, self.zygotes = threading.local(), []
        self.futures = [self.pool.submit(self._one, name, path) for name, path in tasks]

    def _one(self, name: str, path: Path) -> Graded:
        if self.stopping.is_set():
            return Graded(name, "error", [], INTERRUPTED)
        graded = grade_file(name, path, self.options, Path(self.tmp.name), self._zygote())
        if self.stopping.is_set():
            graded = Graded(name, "error", [], INTERRUPTED)
        with self.lock:
            self.done += 1
            if self.on_done:
                self.on_done(self.done, len(self.tasks))
        return graded

    def _zygote(self) -> Zygote:
        zygote = getattr(self.local, "zygote", None)
        if zygote is None or zygote.proc.poll() is not None:  # none yet, or it died: a new one
            zygote = self.local.zygote = Zygote()
            with self.lock:
                self.zygotes.append(zygote)
        return zygote

    def results(self) -> Iterator[Graded]:
        for future in self.futures:
            yield future.result()

    def stop(self) -> list[Graded]:
        """End everything now; the Graded of every pair, INTERRUPTED for those not finished."""
        self.stopping.set()
        for future in self.futures:
            future.cancel()
        stop_all()
        self.pool.shutdown(wait=True)
        return [f.result() if f.done() and not f.cancelled()
                else Graded(name, "error", [], INTERRUPTED)
                for f, (name, _) in zip(self.futures, self.tasks)]

    def close(self) -> None:
        self.pool.shutdown(wait=True)
        for zygote in self.zygotes:
            zygote.close()
        self.tmp.cleanup()


def cores() -> int:
    """The cores this process may use."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def check_file(path, name: str) -> None:
    """`python NAME.py`: check this file as exercise NAME, print the report,
    exit 0 only if it passes."""
    from .report import format_result

    exercise = EXERCISES[name]
    graded = grade_file(name, Path(path).resolve())
    print(format_result(graded, exercise.title, function=exercise.function,
                        equation=exercise.equation))
    sys.exit(0 if graded.status == "passed" else 1)
