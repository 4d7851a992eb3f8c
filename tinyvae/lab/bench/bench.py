"""The speed benchmark's measurements: what a training epoch costs, and what bounds it.

An epoch is nearly all matrix multiplies; the rest (activations, loss, optimizer, feeding
the data) is overhead we control. So train_epoch times real epochs and matmul_epoch the
same epoch's products alone: the shapes, layouts and calls of a real fast step, recorded
(matmul_plan) and replayed on preallocated arrays with `out=`. Their ratio is the overhead.
What bounds the epoch: blas_peak, the BLAS's rate on one large square product, at which
the epoch's FLOPs (plan_flops) take a time no code on this BLAS can beat; breakdown_epoch,
one epoch timed phase by phase; float64_check; and the speed targets (target_lines).
L_k's share is lab/bench/bench_iw.py. tinyvae/commands/bench.py prints them; nothing here
prints, and tests never assert times.

Shapes: B batch, D data, H hidden, Z latent, K samples of z per image."""

from __future__ import annotations

import contextlib
import os
import time

import numpy as np

from ... import evaluate
from ...config import VAEConfig, init_params
from ...optim import make_optimizer
from ...speed.step import FastStep, make_step
from ..datasets import data
from ..datasets.binarize import binarization_buffer, binarize_dynamic, minibatches


def blas_description() -> str:
    """The BLAS NumPy calls and its threads: threadpoolctl if it is installed, else NumPy's
    build info."""
    try:
        from threadpoolctl import threadpool_info
        pools = [p for p in threadpool_info() if p.get("user_api") == "blas"]
    except ImportError:
        pools = []
    if pools:
        return "; ".join(f"{p.get('internal_api')} {p.get('version')} ({p.get('architecture')}), "
                         f"{p.get('num_threads')} threads [threadpoolctl]" for p in pools)
    try:
        blas = np.show_config(mode="dicts")["Build Dependencies"]["blas"]
        return (f"{blas.get('name')} {blas.get('version')} "
                "[numpy build info; threads: see environment]")
    except Exception:  # show_config's layout is not a stable API
        return "unknown (install threadpoolctl to see it)"


def load_average() -> str:
    """The load average over 1, 5 and 15 minutes: on a shared machine it explains a slow run."""
    try:
        return "{:.2f} {:.2f} {:.2f}".format(*os.getloadavg())
    except OSError:
        return "unknown"


def load_images(dataset: str, data_dir, random_data: bool, train_images: int,
                seed: int) -> tuple[np.ndarray, np.ndarray, str]:
    """(training images, test images, a description): the dataset's, or uniform random ones."""
    if random_data:
        rng = np.random.default_rng(seed + 1)
        x_train = rng.random((train_images, 784), dtype=np.float32)
        x_test = rng.random((10000, 784), dtype=np.float32)
        return x_train, x_test, f"random uniform images, {len(x_train)} per epoch"
    ds = data.load_dataset(dataset, data_dir=data_dir)
    return ds.x_train, ds.x_test, f"{dataset}, {len(ds.x_train)} training images"


def train_epoch(step, x: np.ndarray, batch_size: int, binarize: str, rng: np.random.Generator,
                dtype, latent_dim: int, binarized: np.ndarray | None = None) -> tuple[float, float]:
    """One pass over x as the training loop makes it: shuffle, (binarize), then per batch ε and a
    step.

    `binarized`: the array that receives the epoch's binary draw, kept across epochs as
    train.fit keeps it (binarize_dynamic). ε is (B, K, Z) for the step's K = config.k,
    drawn as the runner draws it (for K = 1 the same numbers as (B, Z)).
    Returns (seconds, mean loss).
    """
    start = time.perf_counter()
    total = 0.0
    K = step.config.k
    for xb in minibatches(x, batch_size, rng, binarize=binarize, out=binarized):
        eps = rng.standard_normal((len(xb), K, latent_dim), dtype=dtype)  # (B, K, Z)
        total += step.step(xb, eps)["loss"] * len(xb)
    return time.perf_counter() - start, total / len(x)


def feed_epoch(x: np.ndarray, batch_size: int, binarize: str, rng: np.random.Generator, dtype,
               latent_dim: int, binarized: np.ndarray | None = None, k: int = 1) -> float:
    """The data feeding of train_epoch alone (batches and ε, no step): its share of an epoch."""
    start = time.perf_counter()
    for xb in minibatches(x, batch_size, rng, binarize=binarize, out=binarized):
        rng.standard_normal((len(xb), k, latent_dim), dtype=dtype)
    return time.perf_counter() - start


@contextlib.contextmanager
def recording_matmuls(calls: list):
    """Within the block, every np.matmul(a, b, out=...) call is appended to `calls` as its
    operands."""
    real = np.matmul

    def recorder(a, b, *args, **kwargs):
        calls.append((a, b, kwargs.get("out")))
        return real(a, b, *args, **kwargs)

    np.matmul = recorder
    try:
        yield calls
    finally:
        np.matmul = real


def _like(arr: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A new array of arr's shape, dtype and memory order (a transposed view stays transposed)."""
    if arr.flags.c_contiguous or not arr.T.flags.c_contiguous:
        new = np.empty(arr.shape, dtype=arr.dtype)
    else:
        new = np.empty(arr.shape[::-1], dtype=arr.dtype).T
    new[...] = rng.random(arr.shape) * 0.1  # small finite numbers: no denormals, no overflow
    return new


def matmul_plan(config: VAEConfig, params, optimizer, batch_sizes, dtype, rng) -> dict[int, list]:
    """For each batch size, the (a, b, out) of every matrix multiply of one fast step, as new
    arrays.

    Recorded from a real FastStep on a copy of the parameters; operands that were the same
    array in the step (a weight matrix used twice, say) are the same array here too.
    """
    step = FastStep(config, {k: v.copy() for k, v in params.items()}, optimizer, max(batch_sizes))
    plan, arrays = {}, {}

    def replay_array(arr):
        key = (arr.__array_interface__["data"][0], arr.shape, arr.strides)
        if key not in arrays:
            arrays[key] = _like(arr, rng)
        return arrays[key]

    for B in batch_sizes:
        calls = []
        x = rng.random((B, config.input_dim)).astype(dtype)
        eps = rng.standard_normal((B, config.k, config.latent_dim)).astype(dtype)  # (B, K, Z)
        with recording_matmuls(calls):
            step.step(x, eps)
        plan[B] = [(replay_array(a), replay_array(b), replay_array(out)) for a, b, out in calls]
    return plan


def matmul_epoch(plan: dict[int, list], batches: list[int]) -> float:
    """Seconds to replay the plan's products for every batch of an epoch: the epoch's floor."""
    start = time.perf_counter()
    for B in batches:
        for a, b, out in plan[B]:
            np.matmul(a, b, out=out)
    return time.perf_counter() - start


def plan_flops(plan: dict[int, list], batches: list[int]) -> tuple[int, float]:
    """(calls, FLOPs) of an epoch's products: 2·m·k·n for each (m, k) · (k, n)."""
    calls = sum(len(plan[B]) for B in batches)
    flops = sum(2.0 * a.shape[0] * a.shape[1] * b.shape[1] for B in batches for a, b, _ in plan[B])
    return calls, flops


def blas_peak(dtype, n: int = 2048, repeats: int = 3) -> float:
    """GFLOP/s of one large square product (n × n) · (n × n), the best of `repeats`.

    Large square operands are the BLAS's best case, so this is close to what the machine
    can do at all: an epoch's multiplies, whatever code makes them, take at least their
    FLOPs divided by this rate.
    """
    rng = np.random.default_rng(0)
    a, b = rng.random((n, n), dtype=dtype), rng.random((n, n), dtype=dtype)
    out = np.empty((n, n), dtype=dtype)
    np.matmul(a, b, out=out)  # warm-up: threads started, pages touched
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        np.matmul(a, b, out=out)
        best = min(best, time.perf_counter() - start)
    return 2.0 * n**3 / best / 1e9


def copy_step(step: FastStep) -> FastStep:
    """A FastStep with its own copy of `step`'s parameters and optimizer state."""
    optimizer = make_optimizer(**step.optimizer.hparams())
    twin = FastStep(step.config, {k: v.copy() for k, v in step.params.items()}, optimizer,
                    step.max_batch, threads=step.threads)
    twin.load_optimizer_state_dict(step.optimizer_state_dict())
    return twin


PHASES = ("matmuls", "optimizer", "likelihood", "other")


@contextlib.contextmanager
def timing_phases(step: FastStep, seconds: dict[str, float]):
    """Within the block, the time the fast step spends in each phase adds up in `seconds`.

    "matmuls": every np.matmul call (the products of the forward and backward passes);
    "optimizer": the update of the parameters (FastStep._update, after the gradients);
    "likelihood": −log p(x|z) and its gradient (FastStep._recon). The three never nest.
    Only calls to np.matmul itself are seen (an `a @ b` would count as "other"); the step
    makes all its products that way. The clock reads cost ~0.1 µs each, a few per call:
    negligible against what they time.
    """
    real_matmul, real_update, real_recon = np.matmul, step._update, step._recon
    clock = time.perf_counter

    def matmul(*args, **kwargs):
        start = clock()
        result = real_matmul(*args, **kwargs)
        seconds["matmuls"] += clock() - start
        return result

    def update():
        start = clock()
        real_update()
        seconds["optimizer"] += clock() - start

    def recon(*args, **kwargs):
        start = clock()
        result = real_recon(*args, **kwargs)
        seconds["likelihood"] += clock() - start
        return result

    own = {name: vars(step)[name] for name in ("_update", "_recon") if name in vars(step)}
    np.matmul, step._update, step._recon = matmul, update, recon
    try:
        yield seconds
    finally:
        np.matmul = real_matmul
        # as it was: the class's method, or what was set on the step
        for name in ("_update", "_recon"):
            if name in own:
                setattr(step, name, own[name])
            else:
                delattr(step, name)


def breakdown_epoch(step: FastStep, x: np.ndarray, batch_size: int, binarize: str,
                    rng: np.random.Generator, dtype, latent_dim: int,
                    binarized: np.ndarray | None = None) -> dict[str, float]:
    """One more training epoch of `step`, timed phase by phase: {"total", *PHASES} in seconds.

    "other" is the rest: activations, biases, the reparameterization and the KL, the data
    feeding, and Python between the NumPy calls. The epoch trains `step` (pass a copy,
    copy_step, to keep the model as it was).
    """
    seconds = dict.fromkeys(PHASES, 0.0)
    with timing_phases(step, seconds):
        total, _ = train_epoch(step, x, batch_size, binarize, rng, dtype, latent_dim, binarized)
    seconds["other"] = total - seconds["matmuls"] - seconds["optimizer"] - seconds["likelihood"]
    seconds["total"] = total
    return seconds


# The model and settings the targets were set for: PyTorch's example model in float32.
TARGET_SETTINGS = dict(hidden=(400,), latent_dim=20, batch_size=128, dtype="float32",
                       optimizer="adam")


def target_lines(measured: dict) -> list[str]:
    """The speed targets against this run's figures, one line each: met, not met, or not measured.

    `measured` may hold "epoch" (s), "ratio" (epoch / matmuls), "faults" (minor page faults
    per epoch), "rss_mb" (peak resident memory of the training), "l5000" (s, on all 10,000
    test images) and "float64_gap" (nat, after 10 epochs); a missing figure was not measured.
    """
    at_most, under = (lambda v, limit: v <= limit), (lambda v, limit: v < limit)
    # (the target, its key, the test, the limit, how the figure prints, how to measure it)
    targets = [
        ("one epoch <= 1.3 s", "epoch", at_most, 1.3, "{:.3f} s", ""),
        ("one epoch <= 1.5 x its matmuls", "ratio", at_most, 1.5, "{:.2f}", ""),
        ("page faults per epoch in the thousands (< 10,000)", "faults", under, 10_000, "{:,.0f}",
         ""),
        ("peak RSS of the training < 600 MB", "rss_mb", under, 600, "{:.0f} MB", ""),
        ("L_5000 on the 10,000 test images < 180 s", "l5000", under, 180, "{:.1f} s",
         "--iw-samples 5000"),
        ("float32 within 0.3 nat of float64 after 10 epochs", "float64_gap", at_most, 0.3,
         "{:.3f} nat", "--float64-check"),
    ]
    lines = []
    for what, key, test, limit, fmt, how in targets:
        if key not in measured:
            lines.append(f"  {what}: not measured ({how})")
        else:
            verdict = "met" if test(measured[key], limit) else "not met"
            lines.append(f"  {what}: {fmt.format(measured[key])}, {verdict}")
    return lines


def float64_check(config: VAEConfig, x_train: np.ndarray, x_test: np.ndarray, *, path: str,
                  optimizer: str, lr: float, batch_size: int, binarize: str, epochs: int,
                  seed: int) -> tuple[float, float]:
    """Train the same run in float32 and in float64 and return both test −ELBOs.

    Same seed, same initial parameters (drawn in float64), same batches, same ε (drawn
    in float64 and rounded for the float32 run): only the arithmetic differs.
    """
    if binarize == "dynamic":
        x_test = binarize_dynamic(x_test, np.random.default_rng(seed + 2))
    losses = []
    binarized = binarization_buffer(x_train, binarize)
    for dtype in (np.float32, np.float64):
        rng = np.random.default_rng(seed)
        params = {k: v.astype(dtype) for k, v in init_params(config, rng, np.float64).items()}
        step = make_step(path, config, params, make_optimizer(optimizer, lr), batch_size)
        for _ in range(epochs):
            for xb in minibatches(x_train, batch_size, rng, binarize=binarize, out=binarized):
                # float64 draws for both runs
                eps = rng.standard_normal((len(xb), config.k, config.latent_dim))
                step.step(xb, eps.astype(dtype))
        # the test −ELBO in float64 from the same ε for both runs: only the trained parameters
        # differ
        params64 = {k: v.astype(np.float64) for k, v in step.params.items()}
        losses.append(evaluate.test_elbo(params64, x_test, config,
                                         np.random.default_rng(seed + 3))["loss"])
    return losses[0], losses[1]
