"""Argument checks shared by the whole package: one clear ValueError naming the argument.

Not a chapter of the lecture: the core and every wing call these so that a bad value is
refused the same way everywhere (and is written once, not once per module).
"""

from __future__ import annotations

import math
import numbers

import numpy as np


def positive_int(name: str, value) -> int:
    """`value` as an int if it is an integer >= 1 (not a bool, not a float); else ValueError."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return int(value)


def nonnegative_int(name: str, value) -> int:
    """`value` as an int if it is an integer >= 0; else ValueError."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 0:
        raise ValueError(f"{name} must be an integer >= 0, got {value!r}")
    return int(value)


def finite_real(name: str, value, *, minimum: float | None = None, strict: bool = False) -> float:
    """`value` as a float if it is a finite real number (and > or >= minimum); else ValueError."""
    ok = isinstance(value, numbers.Real) and not isinstance(value, bool) and math.isfinite(value)
    if ok and minimum is not None:
        ok = value > minimum if strict else value >= minimum
    if not ok:
        bound = "" if minimum is None else f" {'>' if strict else '>='} {minimum:g}"
        raise ValueError(f"{name} must be a finite number{bound}, got {value!r}")
    return float(value)


def finite_params(params, what: str = "params") -> None:
    """Refuse parameters holding NaN or inf, naming the key: every loss computed from them
    would be NaN, and a NaN looks like a number until it is too late to say where it came from."""
    for key, arr in params.items():
        if not np.all(np.isfinite(arr)):
            raise ValueError(f"{what}[{key!r}] contains NaN or inf; a model with such a parameter has no "
                             "meaningful loss (was it saved from a diverged run?)")


def nonempty(name: str, x) -> None:
    """Refuse a batch of no examples: its mean loss is 0/0."""
    if len(x) == 0:
        raise ValueError(f"{name} is empty; expected at least one example")


def lookup(registry: dict, name, what: str):
    """registry[name], or a ValueError that lists what the registry knows.

    Every registry (activations, likelihoods, optimizers, datasets) is read through this, so an
    unknown name is refused everywhere with the same message instead of being substituted.
    """
    if isinstance(name, str) and name in registry:
        return registry[name]
    raise ValueError(f"unknown {what} {name!r}; choose one of {sorted(registry)}")
