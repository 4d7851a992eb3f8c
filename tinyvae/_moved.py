"""Old import paths: each module that moved into a wing says where it went.

Before the package had wings, every module sat in tinyvae/ itself. Code that still imports
`tinyvae.fast` or runs `python -m tinyvae.bench` gets one ImportError naming the new place,
rather than a bare "No module named ...".
"""

from __future__ import annotations

import importlib.abc
import sys

MOVED = {
    "tinyvae.fast": "tinyvae.speed.step (FastStep, make_step); the fast L_k is tinyvae.speed.iw",
    "tinyvae.bench": "tinyvae.lab.bench; run it as `python -m tinyvae bench`",
    "tinyvae.checkpoint": "tinyvae.lab.checkpoint",
    "tinyvae.data": "tinyvae.lab.data",
    "tinyvae.download": "tinyvae.lab.download",
    "tinyvae.files": "tinyvae.lab.files",
    "tinyvae.plots": "tinyvae.lab.plots",
    "tinyvae.cli": "tinyvae.lab.args",
}


# Names that left a core module for a wing: {old module: {name: new module}}.
_RUNNER, _BREAKS, _DIAGNOSIS = "tinyvae.lab.runner", "tinyvae.classroom.breaks", "tinyvae.classroom.diagnosis"
MOVED_NAMES = {
    "tinyvae.train": {name: _RUNNER for name in ("fit", "TrainingDiverged", "TrainingInterrupted", "CHECKPOINT_NAME",
                                                  "HISTORY_FIELDS", "write_history", "remove_stale_temporaries")},
    "tinyvae.gradcheck": {"BREAKS": _BREAKS, "broken": _BREAKS, "relu_margin": _DIAGNOSIS,
                          "explain_failure": _DIAGNOSIS, "format_table": "tinyvae.commands.gradcheck",
                          "main": "tinyvae.commands.gradcheck"},
}


class _MovedModuleFinder(importlib.abc.MetaPathFinder):
    """Consulted only for the names in MOVED; every other import is left to the usual finders."""

    def find_spec(self, fullname, path=None, target=None):
        if fullname in MOVED:
            raise ModuleNotFoundError(f"{fullname} has moved: use {MOVED[fullname]}", name=fullname)
        return None


def _moved_name_getter(module: str, names: dict[str, str]):
    def __getattr__(name: str):
        if name in names:
            # ImportError rather than AttributeError: `from tinyvae.train import fit` shows this
            # message (an AttributeError would be replaced by a bare "cannot import name").
            raise ImportError(f"{module}.{name} has moved: use {names[name]}.{name}", name=module)
        raise AttributeError(f"module {module!r} has no attribute {name!r}")
    return __getattr__


def install() -> None:
    """Put the finder of moved modules on sys.meta_path (once). Each core module that lost
    names installs its own `__getattr__ = moved_names(...)`."""
    if not any(isinstance(finder, _MovedModuleFinder) for finder in sys.meta_path):
        sys.meta_path.append(_MovedModuleFinder())


def moved_names(module: str):
    """The module-level __getattr__ for `module`: its moved names raise ImportError saying where."""
    return _moved_name_getter(module, MOVED_NAMES[module])
