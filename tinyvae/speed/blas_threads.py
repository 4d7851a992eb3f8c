"""How many threads NumPy's BLAS uses, set from inside the program.

At a batch of 20 every product of the fast step is small (20 × 784 × 200 at most), and
OpenBLAS's threads cost more than they save: on a 2-core machine shared with other work a
20 × 200 × 200 product took 4.3 ms with 2 threads against 0.06 ms with one (the threads spin
waiting for a core; docs/06-results.md, "Reproducing Burda et al.", has the measurement). One
thread is also a question of bits: OpenBLAS splits some products differently with more
threads, so a run resumed with another thread count does not continue bit for bit.

The same holds for the default training run (784-400-20, batch 128): measured on this
project's 2-core machine while a reproduction kept one core busy (and other jobs came and
went), an epoch took a median 6.4 s on one thread and 83 s on two (37 to 110 s), alternating,
five epochs each. OpenBLAS's default is a thread per core, so `contention` says when the cores
the rest of the machine leaves free are fewer than its threads, and the train command prints
it before the first epoch (it does not switch by itself: the thread count can change a run's
bits, and a run must not depend on what else the machine was doing).

OPENBLAS_NUM_THREADS does the same, but only if set before NumPy is imported; this sets it
at any time, through OpenBLAS's own openblas_set_num_threads (found by ctypes in the library
NumPy loaded, under the names NumPy's and SciPy's builds give it). With another BLAS, or none
found, nothing is changed and `blas_threads` says so by returning None.
"""

from __future__ import annotations

import contextlib
import ctypes
import glob
import os

import numpy as np

# (set, get) symbol pairs: plain OpenBLAS, 64-bit-integer builds, NumPy's scipy-openblas wheels.
_SYMBOLS = [("openblas_set_num_threads", "openblas_get_num_threads"),
            ("openblas_set_num_threads64_", "openblas_get_num_threads64_"),
            ("scipy_openblas_set_num_threads64_", "scipy_openblas_get_num_threads64_"),
            ("scipy_openblas_set_num_threads", "scipy_openblas_get_num_threads")]
_found: list | None = None


def _openblas():
    """(set, get) functions of the OpenBLAS NumPy uses, or None."""
    global _found
    if _found is None:
        _found = [None]
        root = os.path.dirname(os.path.dirname(np.__file__))
        candidates = sorted(glob.glob(os.path.join(root, "numpy.libs", "*openblas*")))
        candidates += sorted(glob.glob(
            os.path.join(os.path.dirname(np.__file__), ".dylibs", "*openblas*")))
        for path in candidates:
            try:
                # already loaded by NumPy: the same library, not a second copy
                lib = ctypes.CDLL(path)
            except OSError:
                continue
            for set_name, get_name in _SYMBOLS:
                if hasattr(lib, set_name) and hasattr(lib, get_name):
                    _found = [(getattr(lib, set_name), getattr(lib, get_name))]
                    break
            if _found[0] is not None:
                break
    return _found[0]


def get_blas_threads() -> int | None:
    """The number of threads OpenBLAS uses now, or None if NumPy's BLAS is not a known OpenBLAS."""
    found = _openblas()
    return None if found is None else int(found[1]())


@contextlib.contextmanager
def blas_threads(n: int | None):
    """Within the block, OpenBLAS uses n threads (None: leave it as it is); restored after.

    Yields the number in force (None when no OpenBLAS was found, and nothing changed).
    """
    found = _openblas()
    if n is None or found is None:
        yield get_blas_threads()
        return
    before = int(found[1]())
    found[0](int(n))
    try:
        yield int(found[1]())
    finally:
        found[0](before)


def load_average() -> float:
    """The machine's 1-minute load average (0 where the system does not say)."""
    try:
        return os.getloadavg()[0]
    except (AttributeError, OSError):
        return 0.0


def contention(threads: int | None, cores: int, load: float) -> str | None:
    """A warning if OpenBLAS's `threads` outnumber the cores that other work (`load`, the
    1-minute load average before this run adds to it) leaves free of the machine's `cores`;
    None if they fit, or if the BLAS is not a known OpenBLAS (threads None)."""
    if threads is None or threads < 2 or cores - load >= threads - 0.5:
        return None
    return (f"OpenBLAS runs {threads} threads, but other work already keeps this machine busy "
            f"(load average {load:.1f} on {cores} cores): its threads then wait for cores, which "
            "made each epoch of the default run 13 times slower on a busy 2-core machine; "
            "OPENBLAS_NUM_THREADS=1 before starting gives it one")
