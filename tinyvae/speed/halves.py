"""An elementwise update in two halves at once, the second half on another core.

NumPy lets go of Python's global interpreter lock inside a ufunc's loop over large arrays,
so two threads running ufuncs over the two halves of the same flat arrays run at the same
time, on two cores. The optimizer's update (speed/flat_optim.py) is a dozen such passes
over every parameter; at batch 20 it costs about as much as all the step's matrix
products, while the matrix products of a batch that small run best on one core
(speed/blas_threads.py), so the second core is otherwise idle during it.

The halves need nothing from each other and every number goes through the same
operations in the same order as in one thread, so the result is the same, bit for bit,
with one thread or two (tests/test_fast.py checks it).

Shapes: P the length of the flat arrays.
"""

from __future__ import annotations

import os
import threading
from typing import Callable

import numpy as np

from .blas_threads import get_blas_threads

# The halves split at a multiple of this many elements, so that the two threads never
# write into the same 64-byte cache line (which would make each core wait for the other's).
ALIGN = 16


def available_cores() -> int:
    """The cores this process may run on (its affinity mask, which containers narrow)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def default_threads() -> int:
    """2 where a second core is available and OpenBLAS runs on one thread, else 1.

    With OpenBLAS on several threads, its threads keep the other cores busy waiting for the
    next product, and a second thread of ours only competes with them: for the default
    model (784-400-20, batch 128, two BLAS threads) an epoch took 2.44 s with the update in
    two halves against 2.39 s in one (medians of three rounds, docs/06-results.md section 6).
    """
    return 2 if available_cores() >= 2 and get_blas_threads() == 1 else 1


class _Worker:
    """One daemon thread that runs a job when handed one; the caller waits for it with join()."""

    def __init__(self):
        self._go = threading.Semaphore(0)
        self._done = threading.Semaphore(0)
        self._job: Callable[[], None] | None = None
        self._error: BaseException | None = None
        threading.Thread(target=self._loop, name="tinyvae-second-half", daemon=True).start()

    def _loop(self) -> None:
        while True:
            self._go.acquire()
            try:
                self._job()
            except BaseException as exc:  # handed to the caller by join()
                self._error = exc
            finally:
                self._job = None
                self._done.release()

    def start(self, job: Callable[[], None]) -> None:
        self._job = job
        self._go.release()

    def join(self) -> None:
        """Wait for the job; re-raise its error. A Ctrl-C while waiting still waits, then re-raises:
        the worker must not go on writing into arrays the caller believes settled."""
        try:
            self._done.acquire()
        except BaseException:
            self._done.acquire()
            raise
        if self._error is not None:
            error, self._error = self._error, None
            raise error


_worker: _Worker | None = None
_lock = threading.Lock()  # one job at a time on the shared worker


def run(update: Callable[..., None], arrays: tuple[np.ndarray, ...], *scalars, threads: int = 1) -> None:
    """update(*arrays, *scalars), elementwise over the flat (P,) arrays, in `threads` (1 or 2) halves.

    With 2, the worker thread takes update(*(a[mid:] ...), *scalars) while this thread does
    update(*(a[:mid] ...), *scalars); both are done when run() returns.
    """
    global _worker
    P = len(arrays[0])
    mid = (P // 2) // ALIGN * ALIGN
    if threads == 1 or mid == 0:
        update(*arrays, *scalars)
        return
    with _lock:
        if _worker is None:
            _worker = _Worker()
        _worker.start(lambda: update(*(a[mid:] for a in arrays), *scalars))
        try:
            update(*(a[:mid] for a in arrays), *scalars)
        finally:
            _worker.join()
