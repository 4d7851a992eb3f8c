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
from collections.abc import Callable

import numpy as np

from .blas_threads import get_blas_threads

# The halves split at a multiple of this many elements (64 bytes of float32), so that the
# two threads share at most one 64-byte cache line per array, where both writing would make
# each core wait for the other's.
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
    """One daemon thread that runs the jobs handed to it, one at a time.

    It counts the jobs started and finished under one Condition, so that waiting is exact
    whatever happened before: a caller interrupted (Ctrl-C, or SIGTERM during training)
    between start() and join() leaves a job that the next start() waits for, never a stray
    count that would let a later join() return while the worker still writes.
    """

    def __init__(self):
        self._changed = threading.Condition()
        self._job: Callable[[], None] | None = None
        self._started = self._finished = 0
        self._error: BaseException | None = None
        threading.Thread(target=self._loop, name="tinyvae-second-half", daemon=True).start()

    def _loop(self) -> None:
        while True:
            with self._changed:
                while self._job is None:
                    self._changed.wait()
                job = self._job
            error = None
            try:
                job()
            except BaseException as exc:  # handed to the caller by join()
                error = exc
            with self._changed:
                self._job, self._error = None, error
                self._finished += 1
                self._changed.notify_all()

    def start(self, job: Callable[[], None]) -> None:
        with self._changed:
            while self._finished < self._started:  # a job an interrupted caller left running
                self._changed.wait()
            self._job, self._error = job, None
            self._started += 1
            self._changed.notify_all()

    def join(self) -> None:
        """Wait until every job started has finished; re-raise the last one's error. A Ctrl-C
        while waiting still waits, then re-raises: the worker must not go on writing into
        arrays the caller believes settled."""
        interrupted = None
        while True:
            try:
                with self._changed:
                    while self._finished < self._started:
                        self._changed.wait()
                    error, self._error = self._error, None
                break
            except BaseException as exc:  # interrupted while waiting: wait again
                interrupted = interrupted or exc
        if interrupted is not None:
            raise interrupted
        if error is not None:
            raise error


_worker: _Worker | None = None
_lock = threading.Lock()  # one job at a time on the shared worker


def run(update: Callable[..., None], arrays: tuple[np.ndarray, ...], *scalars,
        threads: int = 1) -> None:
    """update(*arrays, *scalars), elementwise over the flat (P,) arrays,
    in `threads` (1 or 2) halves.

    With 2, the worker thread takes update(*(a[mid:] ...), *scalars) while this thread does
    update(*(a[:mid] ...), *scalars); both are done when run() returns.
    """
    P = len(arrays[0])
    mid = (P // 2) // ALIGN * ALIGN
    if threads == 1 or mid == 0:
        update(*arrays, *scalars)
        return
    both(lambda: update(*(a[:mid] for a in arrays), *scalars),
         lambda: update(*(a[mid:] for a in arrays), *scalars))


def both(here: Callable[[], None], there: Callable[[], None]) -> None:
    """here() on this thread while the worker runs there(), on another core; both are done when
    both() returns. The two must share nothing they write (speed/iw.py runs two batches of
    images so, each with its own buffers)."""
    global _worker
    with _lock:
        if _worker is None:
            _worker = _Worker()
        try:
            _worker.start(there)
            here()
        finally:
            _worker.join()  # also when start() was interrupted: it then waits for what did start
