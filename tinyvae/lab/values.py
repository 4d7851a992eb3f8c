"""The values a count, a seed, a size or a σ may take, wherever they come from: one check each.

A command line's flags (commands/args.py turns these into argparse types) and the settings a
checkpoint keeps about its run (training/run_settings.py, training/recipes.py) are checked by
the same functions, so that a checkpoint can hold nothing the command line would refuse. Each
is ``check(name, value) -> value`` and raises a ValueError naming `name`. Booleans are not
numbers here (JSON's true is not 1), and no count or size is meaningful beyond MAX_INT.
"""

from __future__ import annotations

from functools import partial

from .. import _checks

# No count or size a command takes (epochs, images, units, samples) is meaningful beyond 2^31 - 1;
# larger ones (10^20) only fail later, deep inside numpy, as an allocation or an overflow.
MAX_INT = 2**31 - 1
MAX_SEED = 2**63 - 1  # a seed is kept as an int64 (checkpoints, numpy's SeedSequence takes more)


def at_most(top: int, check):
    """`check`, and then the value must not exceed `top`."""
    def bounded(name, value):
        value = check(name, value)
        if value > top:
            raise ValueError(f"{name} must be at most {top}, got {value}")
        return value
    return bounded


positive_int = at_most(MAX_INT, _checks.positive_int)
nonnegative_int = at_most(MAX_INT, _checks.nonnegative_int)
seed = at_most(MAX_SEED, _checks.nonnegative_int)
positive_float = partial(_checks.finite_real, minimum=0.0, strict=True)
nonnegative_float = partial(_checks.finite_real, minimum=0.0)


def gaussian_std(name, value) -> float:
    """σ of the fixed-variance Gaussian, in VAEConfig's range, where σ² neither under- nor
    overflows."""
    value = _checks.finite_real(name, value, minimum=0.0, strict=True)
    if not 1e-100 <= value <= 1e100:
        raise ValueError(f"{name} must lie in [1e-100, 1e100], got {value!r}")
    return value


def hidden_sizes(name, value) -> tuple[int, ...]:
    """The encoder's hidden layer sizes: one or more positive integers, each at most MAX_INT."""
    if isinstance(value, (str, bytes)) or not hasattr(value, "__len__") or len(value) == 0:
        raise ValueError(f"{name} must be a list of one or more positive integers, got {value!r}")
    return tuple(positive_int(f"{name}[{i}]", size) for i, size in enumerate(value))


def choice(options, name, value):
    """`value` if it is one of `options` (a registry's names), else a ValueError listing them."""
    if not isinstance(value, str) or value not in options:
        raise ValueError(f"{name} must be one of {', '.join(map(repr, options))}, got {value!r}")
    return value


def optional(check):
    """`check`, or None (a setting left at its default, such as --test-limit)."""
    def maybe(name, value):
        return None if value is None else check(name, value)
    return maybe
