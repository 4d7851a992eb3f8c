"""Binary pixels for a Bernoulli likelihood, and the minibatches of a training epoch.

Binarization protocols for a Bernoulli likelihood
-------------------------------------------------
- dynamic (Burda et al., 2016): every pixel is redrawn as Bernoulli(intensity) each time the
  image is served, so the model sees a fresh binary sample every epoch (``minibatches``).
- fixed (Larochelle & Murray, 2011): one binarization drawn once and kept; ``binarized-mnist``
  is the published one, and ``fixed_binarization`` draws one for any dataset.
- none: grayscale intensities in [0, 1], as PyTorch's VAE example uses.

Shapes: N images, B batch, D data.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from ..._checks import positive_int


def _check_intensities(x: np.ndarray, what: str) -> None:
    if not isinstance(x, np.ndarray) or x.dtype not in (np.float32, np.float64):
        raise ValueError(f"{what}: expected a float32 or float64 array, got "
                         f"{getattr(x, 'dtype', type(x).__name__)}")
    # Written as "not (inside)" so that NaN, which fails every comparison, is refused too.
    if x.size and not (x.min() >= 0 and x.max() <= 1):
        raise ValueError(f"{what}: pixel intensities must lie in [0, 1] (and not be NaN), "
                         f"got min {x.min()}, max {x.max()}")


def _check_out(out, x: np.ndarray, what: str) -> None:
    """Refuse an `out` that cannot hold a binary draw of x, or that would overwrite x."""
    if not isinstance(out, np.ndarray):
        raise ValueError(f"{what}: expected a NumPy array, got {type(out).__name__}")
    if out.shape != x.shape or out.dtype != x.dtype:
        raise ValueError(f"{what}: expected x's shape {x.shape} and dtype {x.dtype}, "
                         f"got shape {out.shape} and dtype {out.dtype}")
    if not out.flags.c_contiguous:
        raise ValueError(f"{what}: expected a C-contiguous array "
                         "(np.empty(x.shape, x.dtype) is one), "
                         "got a strided or Fortran-ordered one")
    if not out.flags.writeable:
        raise ValueError(f"{what}: expected a writeable array, got a read-only one")
    if np.shares_memory(out, x):
        raise ValueError(f"{what}: must not share memory with x "
                         "(the draw would overwrite the images)")


def binarize_dynamic(x: np.ndarray, rng: np.random.Generator, *,
                     out: np.ndarray | None = None) -> np.ndarray:
    """A fresh Bernoulli draw of every pixel: 1 with probability x, else 0; same dtype as x.

    `out` (C-contiguous, x's shape and dtype, not x itself) receives the draw instead of a new
    array; the numbers are the same. A training loop keeps one for every epoch: a new 188 MB
    array each epoch is mapped and zeroed by the kernel again, which costs several times the
    draw itself (docs/06-results.md, section 4, has the measurement).
    """
    _check_intensities(x, "binarize_dynamic x")
    if not isinstance(rng, np.random.Generator):
        raise ValueError(f"binarize_dynamic rng: expected a numpy.random.Generator, "
                         f"got {type(rng).__name__}")
    if out is None:
        u = rng.random(x.shape, dtype=x.dtype)  # uniform in [0, 1), so P(u < x) = x exactly
    else:
        _check_out(out, x, "binarize_dynamic out")
        u = rng.random(dtype=x.dtype, out=out)  # the same numbers as a new array would get
    return np.less(u, x, out=u)  # the comparison is written into u: one array of x's size


def fixed_binarization(x: np.ndarray, seed: int = 0) -> np.ndarray:
    """One Bernoulli draw with its own Generator(seed), kept for every epoch (fixed protocol)."""
    return binarize_dynamic(x, np.random.default_rng(seed))


def binarization_buffer(x: np.ndarray, binarize: str) -> np.ndarray | None:
    """The array to keep for a run's dynamic binarization (the `out` of minibatches); None
    when binarize is not "dynamic". C-contiguous with x's shape and dtype, as binarize_dynamic
    wants it (np.empty_like would keep a Fortran-ordered x's layout)."""
    return np.empty(x.shape, x.dtype) if binarize == "dynamic" else None


def minibatches(x: np.ndarray, batch_size: int, rng: np.random.Generator, *,
                binarize: str = "none", shuffle: bool = True,
                out: np.ndarray | None = None) -> Iterator[np.ndarray]:
    """Iterate once over ``x`` (N, D) in batches (B, D); the last batch may be smaller.

    The random draws happen here, at the call, not lazily: first the permutation (if
    ``shuffle``), then one Bernoulli draw of the whole array (if ``binarize="dynamic"``), so
    ``rng``'s state after the call does not depend on how many batches are consumed. ``out``
    holds that draw (see binarize_dynamic); the batches are read from it as the iterator runs
    (copied when shuffled, views when not), so finish one call's batches before the next call
    with the same ``out`` draws into it again.
    """
    if not isinstance(x, np.ndarray) or x.ndim != 2:
        raise ValueError(f"minibatches x: expected a 2-D array (N, D), got "
                         f"{getattr(x, 'shape', type(x).__name__)}")
    batch_size = positive_int("minibatches batch_size", batch_size)
    if not isinstance(rng, np.random.Generator):
        raise ValueError(f"minibatches rng: expected a numpy.random.Generator, "
                         f"got {type(rng).__name__}")
    if binarize not in ("none", "dynamic"):
        raise ValueError(f"minibatches binarize: expected 'none' or 'dynamic', got {binarize!r}")
    if not isinstance(shuffle, bool):
        raise ValueError(f"minibatches shuffle: expected True or False, got {shuffle!r}")
    if out is not None:  # checked before any draw, so that a refused call leaves rng as it was
        if binarize != "dynamic":
            raise ValueError(f"minibatches out: only used with binarize='dynamic', "
                             f"got binarize={binarize!r}")
        _check_out(out, x, "minibatches out")
    order = rng.permutation(len(x)) if shuffle else None  # (N,)
    data = binarize_dynamic(x, rng, out=out) if binarize == "dynamic" else x  # (N, D)
    return _batches(data, batch_size, order)


def _batches(data: np.ndarray, batch_size: int, order: np.ndarray | None) -> Iterator[np.ndarray]:
    for start in range(0, len(data), batch_size):
        if order is None:
            yield data[start:start + batch_size]  # (B, D) view
        else:
            yield data[order[start:start + batch_size]]  # (B, D) copy, in shuffled order
