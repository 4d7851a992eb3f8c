"""Whether a model or a buffer fits in this machine's memory, asked before it is allocated.

NumPy's answer to an array that cannot fit is a MemoryError ("Unable to allocate 584 GiB")
from deep inside whatever was building it. A command asks here first, with what it is about
to build, so that `--hidden 99999999` or `sample --n 2000000000` is refused in one line, as a
usage error, before any work. The bound is the machine's physical memory, not what is free
at this moment (that changes by the second): this refuses what can never fit, and a
MemoryError later is still one line (commands/status.py).
"""

from __future__ import annotations

import math
import os

import numpy as np

from ..config import VAEConfig, param_shapes
from .errors import UsageError


def physical_bytes() -> int | None:
    """This machine's memory in bytes, or None where the system does not say."""
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (AttributeError, ValueError, OSError):
        return None


def check_fits(what: str, numbers: int, dtype) -> None:
    """A UsageError naming `what` if `numbers` numbers of `dtype` exceed the machine's memory."""
    needed, total = int(numbers) * np.dtype(dtype).itemsize, physical_bytes()
    if total is not None and needed > total:
        raise UsageError(f"{what}: this needs at least {needed / 2**30:,.1f} GiB of memory and "
                         f"this machine has {total / 2**30:,.1f} GiB; choose smaller sizes")


def parameter_count(config: VAEConfig) -> int:
    return sum(math.prod(shape) for shape in param_shapes(config).values())


def training_numbers(config: VAEConfig, batch: int) -> int:
    """The fewest numbers that training `config` on batches of `batch` images holds: the
    parameters, their gradients and two optimizer moments (Adam's), and one batch's values
    through every layer, forward and backward (the decoder's k times)."""
    widths = sum(config.hidden_dims)
    encoder = config.input_dim + widths + 3 * config.latent_dim
    decoder = config.latent_dim + widths + 2 * config.input_dim
    return 4 * parameter_count(config) + 2 * batch * (encoder + config.k * decoder)
