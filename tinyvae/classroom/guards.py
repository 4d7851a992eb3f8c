"""No answer key at hand: in the grader's child process,
tinyvae's own answer to the exercise is guarded.

Before a student's file is imported (child.py), ``install(name)`` replaces the library's
functions that answer exercise ``name`` (ANSWERS) by a Guard wherever tinyvae's loaded modules
hold them: module attributes, names imported into other modules, entries of module-level dicts
(the activations, the optimizers). So ``from tinyvae.layers import relu_backward`` in the
student's file gets the Guard, by any import path. A Guard called while the student's code
runs (``student_code()``, around the import and around every call of the student's function)
records the call and raises: the exercise is then graded ERROR, even if the student's code
caught the exception. Called by the model itself (the decoder's own backward when the student
writes the encoder's), a Guard does what the library's function does.

``block_wings()`` refuses imports of tinyvae's wings from then on: the speed wing holds twins of
the core's functions (its own fast backward passes), and an exercise file needs numpy and the
core only. ``intact()`` says whether the guards are still in place: a student's file that
reloads a tinyvae module to get the function back is graded ERROR too.

What this does not prevent: a student who copies the library's source (it is on their disk),
or who digs the original out of the grader's own objects in memory. That is copying the answer,
a plagiarism check's job (docs/07-instructors.md, "What the grader promises").
"""

from __future__ import annotations

import contextlib
import importlib
import pkgutil
import sys
from collections.abc import Iterator

from .swap import replace

# exercise -> the library's functions that answer it, "module:attribute". For a piece of the
# VAE's backward, also the helpers that would reveal it (the hidden layers' walk back, under
# its name of either version of the core, and the k-sample objective that is the ELBO at k = 1).
# The first of each exercise's names must exist (tests/test_grader_isolation.py checks it).
ANSWERS: dict[str, tuple[str, ...]] = {
    "dense": ("tinyvae.layers:dense_backward",),
    "relu": ("tinyvae.layers:relu_backward",),
    "tanh": ("tinyvae.layers:tanh_backward",),
    "softplus": ("tinyvae.layers:softplus_backward",),
    "bernoulli": ("tinyvae.losses:bernoulli_nll",),
    "gaussian": ("tinyvae.losses:gaussian_nll",),
    "gaussian-learned": ("tinyvae.losses:gaussian_nll_learned",),
    "kl": ("tinyvae.losses:kl_standard_normal",),
    "reparameterize": ("tinyvae.layers:reparameterize_backward",),
    "encoder": ("tinyvae.vae:encoder_backward", "tinyvae.vae:mlp_backward"),
    "decoder": ("tinyvae.vae:decoder_backward", "tinyvae.vae:mlp_backward"),
    "loss": ("tinyvae.vae:loss_and_grads", "tinyvae.vae:iwae_loss_and_grads"),
    "iwae-weights": ("tinyvae.losses:normalized_weights",),  # log_mean_exp stays: L_K's forward
    "adam": ("tinyvae.optim:Adam",),
    "discrete-kl": ("tinyvae.losses:kl_divergence",),
    "gaussian-kl": (),
    "kl-monte-carlo": ("tinyvae.losses:kl_standard_normal", "tinyvae.losses:kl_terms"),
    "elbo-identity": (),
    "estimators": (),
}
WINGS = ("speed", "lab", "commands", "classroom")


class AnswerKeyUsed(RuntimeError):
    """Raised in the student's code when it calls tinyvae's own answer."""


class Guard:
    """Stands where the library's function was; refuses a call from the student's code."""

    def __init__(self, name: str, original):
        self.name, self._original = name, original

    def __call__(self, *args, **kwargs):
        if _depth:
            CALLED.append(self.name)
            raise AnswerKeyUsed(f"{self.name} is tinyvae's own answer to this exercise; "
                                "write your own")
        return self._original(*args, **kwargs)

    def __repr__(self) -> str:
        return f"<guard of {self.name}>"


CALLED: list[str] = []  # the guarded names the student's code called, in order
INSTALLED: list[Guard] = []
_depth = 0


@contextlib.contextmanager
def student_code() -> Iterator[None]:
    """Mark the student's code running: a Guard called inside refuses."""
    global _depth
    _depth += 1
    try:
        yield
    finally:
        _depth -= 1


def core_modules() -> list:
    """tinyvae's core, every module of it imported,
    so that no later import finds a function unguarded."""
    package = importlib.import_module("tinyvae")
    names = [info.name for info in pkgutil.iter_modules(package.__path__)
             if not info.ispkg and info.name != "__main__"]
    return [package, *(importlib.import_module(f"tinyvae.{name}") for name in names)]


def resolve(spec: str):
    module, _, attr = spec.partition(":")
    return getattr(sys.modules[module], attr, None)


def install(exercise: str) -> list[Guard]:
    """Put a Guard in every place tinyvae's loaded modules hold an answer to ``exercise``;
    returns them.

    Never undone: the child process ends after one exercise.
    """
    held = core_modules()
    for spec in ANSWERS[exercise]:
        original = resolve(spec)
        if original is None:  # a helper the core no longer has (tests/ check that none is missing)
            continue
        guard = Guard(spec.replace(":", "."), original)
        replace(original, guard, held)
        INSTALLED.append(guard)
    return INSTALLED


def intact() -> bool:
    """Whether every Guard still stands where it was put
    (a reloaded module puts the original back)."""
    for guard in INSTALLED:
        module, _, attr = guard.name.rpartition(".")
        if getattr(sys.modules.get(module), attr, guard) is not guard:
            return False
    return True


class _WingBlocker:
    """A finder that refuses to import tinyvae's wings (a meta path finder, first in line)."""

    @staticmethod
    def find_spec(name, path=None, target=None):
        parts = name.split(".")
        if len(parts) > 1 and parts[0] == "tinyvae" and parts[1] in WINGS:
            raise ImportError("an exercise file may import numpy and tinyvae's core "
                              f"(tinyvae.layers, tinyvae.losses, tinyvae.vae, ...), not {name}")
        return None


def block_wings() -> None:
    sys.meta_path.insert(0, _WingBlocker)
