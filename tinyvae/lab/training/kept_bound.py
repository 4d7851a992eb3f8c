"""L_k in parts kept on disk: an evaluation that a stop does not throw away.

A reproduction's stage ends with L_5000 on the 10,000 test images, minutes to tens of
minutes of work. `KeptBound` runs speed/iw.py's L_k over the images a part at a time
(about a tenth of them) and after each part writes what it has to a file in the run's
folder: every finished image's L_k, the noise generator's state, the seconds spent. Called
again with the same model, images, k and generator after a stop, it reads the file and goes
on with the next part from the saved generator state. The noise of every image is drawn in
the same order as in one call, and every part starts where a batch (a pair of batches with
threads=2) of one call over all the images starts, so each image goes through the same
operations: the numbers are the same bits as those of an evaluation that never stopped
(tests/test_recipe.py stops one and compares).

A file that belongs to another evaluation (other parameters, images, k, generator or parts:
its fingerprint differs) or that cannot be read is started over, never mixed in. A finished
file stays: each test image's L_k at that point of the run.

Shapes: N images, D data.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from ...config import VAEConfig
from ...speed import iw
from ..storage.files import atomic_write

PART_IMAGES = 1000  # about; rounded to a multiple of the images L_k takes at once


class KeptBound:
    """L_k of the images x, iw.iw_bound_per_example(params, x, config, rng, k=k, threads=threads),
    computed part by part with each finished part kept in `path` (an .npz).

        kept = KeptBound(path, params, x, config, rng, k=5000, threads=2)   # reads what is kept
        kept.found, kept.seconds      # images done before (0 for a fresh one), and their seconds
        bound = kept.run(progress)    # (N,) float64 nats; kept.seconds is then the whole time

    rng must be the Generator the evaluation started with: the kept state replaces its own.
    """

    def __init__(self, path: str | os.PathLike, params, x: np.ndarray, config: VAEConfig,
                 rng: np.random.Generator, *, k: int, threads: int = 1,
                 part_images: int | None = None):
        self.path, self.params, self.x, self.config, self.rng = Path(path), params, x, config, rng
        self.k, self.threads = k, threads
        at_once = iw.images_at_once(k, config, params["encoder.W_mu"].dtype, threads=threads)
        part_images = PART_IMAGES if part_images is None else part_images
        self.part = max(at_once, part_images // at_once * at_once)
        self.fingerprint = _fingerprint(params, x, config, rng, k, self.part)
        # rng takes the kept state, if there is one
        self.bound, self.seconds = _read(self.path, self.fingerprint, rng)
        self.found = len(self.bound)

    def run(self, progress: Callable[[int, int], None] | None = None) -> np.ndarray:
        """Every image's L_k, (N,) float64 nats, going on from what was kept; progress(done, N)
        after every batch, counting the kept images as done."""
        N, n, t0, spent = len(self.x), len(self.bound), time.perf_counter(), self.seconds
        parts = [self.bound]
        while n < N:
            end = min(N, n + self.part)
            report = None if progress is None else (
                lambda done, total, start=n: progress(start + done, N))
            parts.append(iw.iw_bound_per_example(self.params, self.x[n:end], self.config, self.rng,
                                                 k=self.k, progress=report, threads=self.threads))
            n = end
            self.bound, self.seconds = np.concatenate(parts), spent + time.perf_counter() - t0
            _write(self.path, self.fingerprint, self.bound, self.rng, self.seconds)
        return self.bound


def _fingerprint(params, x: np.ndarray, config: VAEConfig, rng: np.random.Generator, k: int,
                 part: int) -> str:
    """A digest of everything the numbers depend on, the generator's starting state included."""
    h = hashlib.sha256()
    settings = {"k": k, "part": part, "config": config.to_dict(), "rng": rng.bit_generator.state}
    h.update(json.dumps(settings, sort_keys=True).encode())
    for key in sorted(params):
        h.update(key.encode())
        h.update(np.ascontiguousarray(params[key]).tobytes())
    h.update(str((x.shape, x.dtype.str)).encode())
    h.update(np.ascontiguousarray(x).tobytes())
    return h.hexdigest()


def _read(path: Path, fingerprint: str, rng: np.random.Generator) -> tuple[np.ndarray, float]:
    """(the kept L_k, the seconds they took), with rng set to the state after them; nothing kept
    (an empty array, 0 s, rng untouched) if the file is missing, unreadable or another's."""
    nothing = np.empty(0), 0.0
    if not path.is_file():
        return nothing
    try:
        with np.load(path, allow_pickle=False) as f:
            if str(f["fingerprint"]) != fingerprint:
                return nothing
            bound, seconds = f["bound"].astype(np.float64), float(f["seconds"])
            state = json.loads(str(f["rng"]))
        rng.bit_generator.state = state
    except (OSError, ValueError, KeyError, TypeError, EOFError):  # unreadable: start over
        return nothing
    return bound, seconds


def _write(path: Path, fingerprint: str, bound: np.ndarray, rng: np.random.Generator,
           seconds: float) -> None:
    arrays = {"fingerprint": np.array(fingerprint), "bound": bound, "seconds": np.array(seconds),
              "rng": np.array(json.dumps(rng.bit_generator.state))}
    atomic_write(path, lambda f: np.savez(f, **arrays))
