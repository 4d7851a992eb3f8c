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
            raise ValueError(f"{what}[{key!r}] contains NaN or inf; a model with such a parameter "
                             "has no meaningful loss (was it saved from a diverged run?)")


def lookup(registry: dict, name, what: str):
    """registry[name], or a ValueError that lists what the registry knows.

    Used where a name is looked up in a table (the datasets, the optimizers), so that an unknown
    name is refused with the known ones listed instead of being substituted.
    """
    if isinstance(name, str) and name in registry:
        return registry[name]
    raise ValueError(f"unknown {what} {name!r}; choose one of {sorted(registry)}")


# The model's preconditions, checked once at the door of each public function of the core


def check_batch(x, config, name: str = "x", *, one_image_ok: bool = False,
                empty_ok: bool = True) -> np.ndarray:
    """x as an array (B, D) the model can score, else one ValueError naming `name`.

    Refuses a wrong shape, NaN or inf, and pixels outside [0, 1] for the Bernoulli likelihood
    (its log-likelihood is not a density there). With one_image_ok, a single image (D,)
    becomes (1, D); without empty_ok, a batch of no images is refused (its mean is 0/0).
    """
    x = np.asarray(x)
    if one_image_ok and x.ndim == 1:
        x = x[None, :]
    if x.ndim != 2 or x.shape[1] != config.input_dim:
        raise ValueError(f"{name} must have shape (batch, {config.input_dim}) for this model, "
                         f"got {x.shape}")
    if not empty_ok and len(x) == 0:
        raise ValueError(f"{name} is empty; expected at least one example")
    if not np.all(np.isfinite(x)):
        raise ValueError(f"{name} contains NaN or infinite values")
    if config.likelihood == "bernoulli" and x.size and (x.min() < 0 or x.max() > 1):
        raise ValueError(f"{name} has values in [{x.min():.4g}, {x.max():.4g}]; the Bernoulli "
                         "likelihood needs pixels in [0, 1] (scale images by 1/255)")
    return x


def check_noise(eps, batch: int, config, name: str = "eps") -> np.ndarray:
    """ε as (B, K, Z) for the config's k samples per image: (B, Z) is taken for k = 1."""
    eps = np.asarray(eps)
    if config.k == 1 and eps.shape == (batch, config.latent_dim):
        return eps[:, None, :]
    if eps.shape != (batch, config.k, config.latent_dim):
        expected = f"(batch, k, latent_dim) = {(batch, config.k, config.latent_dim)}"
        if config.k == 1:
            expected += f" or (batch, latent_dim) = {(batch, config.latent_dim)}"
        raise ValueError(f"{name} must have shape {expected}, got {eps.shape}")
    return eps
