"""How fast training runs, and how close it comes to what its matrix multiplies allow.

    python -m tinyvae.bench                      # 784-400-20, batch 128, float32, Adam, real MNIST
    python -m tinyvae.bench --random-data        # the same shapes, no dataset needed
    python -m tinyvae.bench --path reference     # time the readable path instead
    python -m tinyvae.bench --float64-check      # 10 epochs in float32 and in float64, compare test ELBOs

A training epoch is nearly all matrix multiplies; everything else (the activations, the
loss, the optimizer, feeding the data) is overhead we control. So after a warm-up epoch
the benchmark times `--repeats` training epochs and, interleaved with them, the same
epoch's matrix multiplies alone: exactly the shapes, memory layouts and number of calls
that the fast step makes (recorded from a real step), on preallocated arrays of the same
dtype, with `out=`. The ratio of the two medians says how much the overhead costs (with
`--path reference` it is measured against the same floor, the fast step's multiplies). It
also prints the page faults per epoch (allocating and freeing large temporaries shows
up here as hundreds of thousands), the peak resident memory, the BLAS and its threads,
and the time of the importance-weighted bound L_k on the test images
(tinyvae.evaluate.iw_bound). The machine's load average is printed too: on a shared
machine it explains a slow run.

Then what bounds the epoch: the BLAS's own rate on one large square product ("blas peak"),
with the time the epoch's FLOPs would take at it, which no code using this BLAS can beat;
and one more epoch, on a copy of the model so that L_k still measures the timed one,
timed phase by phase: the products, the optimizer, the likelihood and the rest.

Issue 5's targets for the default model on a 2-core CPU: an epoch in at most 1.3 s and
at most 1.5× its own matrix multiplies, page faults per epoch in the thousands, peak
memory under 600 MB, L_5000 on the 10,000 test images in under 3 minutes, and float32
training within 0.3 nat of float64 after 10 epochs. For that model the run ends with
each target against its figure: met, not met, or not measured (and how to measure it).
It prints figures; tests never assert times.
"""

from __future__ import annotations

import argparse
import contextlib
import math
import os
import resource
import statistics
import sys
import time

import numpy as np

from .. import vae
from . import data
from .args import hidden_sizes, nonnegative_int, positive_float, positive_int
from ..speed.step import FastStep, make_step
from ..optim import make_optimizer

ENV_VARS = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m tinyvae.bench", description=__doc__.split("\n\n")[0])
    p.add_argument("--path", choices=("fast", "reference"), default="fast", help="which training step to time")
    p.add_argument("--dataset", choices=("mnist", "fashion-mnist", "binarized-mnist"), default="mnist")
    p.add_argument("--data-dir", default=None, help="where the dataset is (default: TINYVAE_DATA, then the cache)")
    p.add_argument("--random-data", action="store_true", help="uniform random images of MNIST's shape instead")
    p.add_argument("--train-images", type=positive_int, default=60000, help="images per epoch with --random-data")
    p.add_argument("--binarize", choices=("none", "dynamic"), default="none",
                   help="'none' (grayscale, as PyTorch's example) or 'dynamic' (a fresh draw every epoch)")
    p.add_argument("--hidden", type=hidden_sizes, default=(400,), help="hidden sizes, e.g. 400 or 200,200")
    p.add_argument("--latent-dim", type=positive_int, default=20)
    p.add_argument("--activation", choices=("relu", "tanh"), default="relu")
    p.add_argument("--likelihood", choices=vae.LIKELIHOODS, default="bernoulli")
    p.add_argument("--batch-size", type=positive_int, default=128)
    p.add_argument("--dtype", choices=("float32", "float64"), default="float32")
    p.add_argument("--optimizer", choices=("adam", "sgd", "adagrad"), default="adam")
    p.add_argument("--lr", type=positive_float, default=1e-3)
    p.add_argument("--repeats", type=positive_int, default=5, help="timed epochs (after one warm-up epoch)")
    p.add_argument("--iw-samples", type=nonnegative_int, default=5000, help="k of L_k; 0 skips it")
    p.add_argument("--iw-images", type=positive_int, default=None, help="test images for L_k (default: all)")
    p.add_argument("--float64-check", action="store_true",
                   help="also train --check-epochs epochs in float32 and in float64 and compare the test ELBOs")
    p.add_argument("--check-epochs", type=positive_int, default=10)
    p.add_argument("--seed", type=int, default=0)
    return p.parse_args(argv)


# ---------------------------------------------------------------- what machine is this

def blas_description() -> str:
    """The BLAS NumPy calls and its threads: threadpoolctl if it is installed, else NumPy's build info."""
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        threadpool_info = None
    if threadpool_info is not None:
        pools = [p for p in threadpool_info() if p.get("user_api") == "blas"]
        if pools:
            return "; ".join(f"{p.get('internal_api')} {p.get('version')} ({p.get('architecture')}), "
                             f"{p.get('num_threads')} threads [threadpoolctl]" for p in pools)
    try:
        blas = np.show_config(mode="dicts")["Build Dependencies"]["blas"]
        return f"{blas.get('name')} {blas.get('version')} [numpy build info; threads: see environment]"
    except Exception:  # show_config's layout is not a stable API
        return "unknown (install threadpoolctl to see it)"


def cpus() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


def load_average() -> str:
    try:
        return "{:.2f} {:.2f} {:.2f}".format(*os.getloadavg())
    except OSError:
        return "unknown"


# ---------------------------------------------------------------- one epoch

def train_epoch(step, x: np.ndarray, batch_size: int, binarize: str, rng: np.random.Generator,
                dtype, latent_dim: int, binarized: np.ndarray | None = None) -> tuple[float, float]:
    """One pass over x as the training loop makes it: shuffle, (binarize), then per batch ε and a step.

    `binarized`: the array that receives the epoch's binary draw, kept across epochs as
    train.fit keeps it (data.binarize_dynamic). Returns (seconds, mean loss).
    """
    start = time.perf_counter()
    total = 0.0
    for xb in data.minibatches(x, batch_size, rng, binarize=binarize, out=binarized):
        eps = rng.standard_normal((len(xb), latent_dim), dtype=dtype)  # (B, Z)
        total += step.step(xb, eps)["loss"] * len(xb)
    return time.perf_counter() - start, total / len(x)


def feed_epoch(x: np.ndarray, batch_size: int, binarize: str, rng: np.random.Generator, dtype,
               latent_dim: int, binarized: np.ndarray | None = None) -> float:
    """The data feeding of train_epoch alone (batches and ε, no step): its share of an epoch."""
    start = time.perf_counter()
    for xb in data.minibatches(x, batch_size, rng, binarize=binarize, out=binarized):
        rng.standard_normal((len(xb), latent_dim), dtype=dtype)
    return time.perf_counter() - start


# ---------------------------------------------------------------- the matrix multiplies alone

@contextlib.contextmanager
def recording_matmuls(calls: list):
    """Within the block, every np.matmul(a, b, out=...) call is appended to `calls` as its operands."""
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


def matmul_plan(config: vae.VAEConfig, params, optimizer, batch_sizes, dtype, rng) -> dict[int, list]:
    """For each batch size, the (a, b, out) of every matrix multiply of one fast step, as new arrays.

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
        eps = rng.standard_normal((B, config.latent_dim)).astype(dtype)
        with recording_matmuls(calls):
            step.step(x, eps)
        plan[B] = [(replay_array(a), replay_array(b), replay_array(out)) for a, b, out in calls]
    return plan


def matmul_epoch(plan: dict[int, list], batches: list[int]) -> float:
    start = time.perf_counter()
    for B in batches:
        for a, b, out in plan[B]:
            np.matmul(a, b, out=out)
    return time.perf_counter() - start


def plan_flops(plan: dict[int, list], batches: list[int]) -> tuple[int, float]:
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


# ---------------------------------------------------------------- where an epoch's time goes

def copy_step(step: FastStep) -> FastStep:
    """A FastStep with its own copy of `step`'s parameters and optimizer state."""
    optimizer = make_optimizer(**step.optimizer.hparams())
    twin = FastStep(step.config, {k: v.copy() for k, v in step.params.items()}, optimizer, step.max_batch)
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

    def recon(*args):
        start = clock()
        result = real_recon(*args)
        seconds["likelihood"] += clock() - start
        return result

    own = {name: vars(step)[name] for name in ("_update", "_recon") if name in vars(step)}
    np.matmul, step._update, step._recon = matmul, update, recon
    try:
        yield seconds
    finally:
        np.matmul = real_matmul
        for name in ("_update", "_recon"):  # as it was: the class's method, or what was set on the step
            if name in own:
                setattr(step, name, own[name])
            else:
                delattr(step, name)


def breakdown_epoch(step: FastStep, x: np.ndarray, batch_size: int, binarize: str, rng: np.random.Generator,
                    dtype, latent_dim: int, binarized: np.ndarray | None = None) -> dict[str, float]:
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


def iw_decoder_flops(config: vae.VAEConfig, n_images: int, k: int) -> float:
    """FLOPs of the decoder's matrix multiplies in L_k: every layer for each of the n·k samples.

    These are the bulk of L_k's cost: the encoder runs once per image, not per sample.
    Every decoder weight matrix counts (a learned variance's second head too); for the
    Bernoulli likelihood, evaluate._Decoder's output product has one more row (the bias),
    its row sums are a product with ones, and its x·l shortcut is one dot product per sample.
    """
    shapes = vae.param_shapes(config)
    per_sample = sum(2 * math.prod(shape) for key, shape in shapes.items() if key.startswith("decoder.W"))
    if config.likelihood == "bernoulli":
        H, D = shapes["decoder.W_out"]
        per_sample += 2 * D + 2 * D + 2 * H  # the bias row, the sum over pixels, x·l
    return float(per_sample) * n_images * k


# ---------------------------------------------------------------- issue 5's targets

# The model and settings the targets were set for: PyTorch's example model in float32.
TARGET_SETTINGS = dict(hidden=(400,), latent_dim=20, batch_size=128, dtype="float32", optimizer="adam")


def target_lines(measured: dict) -> list[str]:
    """Issue 5's targets against this run's figures, one line each: met, not met, or not measured.

    `measured` may hold "epoch" (s), "ratio" (epoch / matmuls), "faults" (minor page faults
    per epoch), "rss_mb" (peak resident memory of the training), "l5000" (s, on all 10,000
    test images) and "float64_gap" (nat, after 10 epochs); a missing figure was not measured.
    """
    at_most, under = (lambda v, limit: v <= limit), (lambda v, limit: v < limit)
    targets = [  # (the target, its key, the test, the limit, how the figure prints, how to measure it)
        ("one epoch <= 1.3 s", "epoch", at_most, 1.3, "{:.3f} s", ""),
        ("one epoch <= 1.5 x its matmuls", "ratio", at_most, 1.5, "{:.2f}", ""),
        ("page faults per epoch in the thousands (< 10,000)", "faults", under, 10_000, "{:,.0f}", ""),
        ("peak RSS of the training < 600 MB", "rss_mb", under, 600, "{:.0f} MB", ""),
        ("L_5000 on the 10,000 test images < 180 s", "l5000", under, 180, "{:.1f} s", "--iw-samples 5000"),
        ("float32 within 0.3 nat of float64 after 10 epochs", "float64_gap", at_most, 0.3, "{:.3f} nat",
         "--float64-check"),
    ]
    lines = []
    for what, key, test, limit, fmt, how in targets:
        if key not in measured:
            lines.append(f"  {what}: not measured ({how})")
        else:
            verdict = "met" if test(measured[key], limit) else "not met"
            lines.append(f"  {what}: {fmt.format(measured[key])}, {verdict}")
    return lines


# ---------------------------------------------------------------- data

def load_images(args) -> tuple[np.ndarray, np.ndarray, str]:
    if args.random_data:
        rng = np.random.default_rng(args.seed + 1)
        x_train = rng.random((args.train_images, 784), dtype=np.float32)
        x_test = rng.random((10000, 784), dtype=np.float32)
        return x_train, x_test, f"random uniform images, {len(x_train)} per epoch"
    ds = data.load_dataset(args.dataset, data_dir=args.data_dir)
    return ds.x_train, ds.x_test, f"{args.dataset}, {len(ds.x_train)} training images"


def test_loss(params, x: np.ndarray, config: vae.VAEConfig, seed: int) -> float:
    """The test −ELBO per image in float64, one ε per image from Generator(seed): the same for any params."""
    params = {k: v.astype(np.float64) for k, v in params.items()}
    eps = np.random.default_rng(seed).standard_normal((len(x), config.latent_dim))  # (N, Z)
    total = 0.0
    for start in range(0, len(x), 1000):
        loss, _, _ = vae.negative_elbo(params, x[start:start + 1000], eps[start:start + 1000], config)
        total += float(loss.sum())
    return total / len(x)


def float64_check(args, config, x_train, x_test) -> tuple[float, float]:
    """Train the same run in float32 and in float64 and return both test −ELBOs.

    Same seed, same initial parameters (drawn in float64), same batches, same ε (drawn
    in float64 and rounded for the float32 run): only the arithmetic differs.
    """
    if args.binarize == "dynamic":
        x_test = data.binarize_dynamic(x_test, np.random.default_rng(args.seed + 2))
    losses = []
    binarized = data.binarization_buffer(x_train, args.binarize)
    for dtype in (np.float32, np.float64):
        rng = np.random.default_rng(args.seed)
        params = {k: v.astype(dtype) for k, v in vae.init_params(config, rng, np.float64).items()}
        step = make_step(args.path, config, params, make_optimizer(args.optimizer, args.lr), args.batch_size)
        for _ in range(args.check_epochs):
            for xb in data.minibatches(x_train, args.batch_size, rng, binarize=args.binarize, out=binarized):
                eps = rng.standard_normal((len(xb), config.latent_dim))  # float64 draws for both runs
                step.step(xb, eps.astype(dtype))
        losses.append(test_loss(step.params, x_test, config, args.seed + 3))
    return losses[0], losses[1]


# ---------------------------------------------------------------- main

def main(argv=None) -> int:
    args = parse_args(argv)
    dtype = np.dtype(args.dtype)
    config = vae.VAEConfig(hidden_dims=args.hidden, latent_dim=args.latent_dim, activation=args.activation,
                           likelihood=args.likelihood)
    out = sys.stdout
    try:
        x_train, x_test, data_text = load_images(args)
    except data.DataError as exc:
        print(f"bench: {exc}\n(use --random-data to time random images of the same shape)", file=sys.stderr)
        return 2
    if dtype != x_train.dtype:
        x_train = x_train.astype(dtype)  # once, not per batch

    sizes = "-".join(str(n) for n in (config.input_dim, *config.hidden_dims, config.latent_dim))
    env = " ".join(f"{name}={os.environ.get(name, '(unset)')}" for name in ENV_VARS)
    print(f"model: {sizes} {config.activation} {config.likelihood}, batch {args.batch_size}, {args.dtype}, "
          f"{args.optimizer} (lr {args.lr:g}), path {args.path}", file=out)
    print(f"data: {data_text}, binarize {args.binarize}"
          + (" (random images: the times are real, the losses mean nothing)" if args.random_data else ""), file=out)
    print(f"numpy: {np.__version__}", file=out)
    print(f"blas: {blas_description()}", file=out)
    print(f"cpus: {cpus()}", file=out)
    print(f"environment: {env}", file=out)
    print(f"load average at start: {load_average()}", file=out, flush=True)

    rng = np.random.default_rng(args.seed)
    params = vae.init_params(config, rng, dtype=dtype)
    optimizer = make_optimizer(args.optimizer, args.lr)
    step = make_step(args.path, config, params, optimizer, args.batch_size)

    n = len(x_train)
    batches = [args.batch_size] * (n // args.batch_size) + ([n % args.batch_size] if n % args.batch_size else [])
    plan = matmul_plan(config, params, make_optimizer(args.optimizer, args.lr), sorted(set(batches)), dtype,
                       np.random.default_rng(args.seed + 4))
    n_calls, flops = plan_flops(plan, batches)

    binarized = data.binarization_buffer(x_train, args.binarize)  # kept for every epoch, as train.fit does
    warm, _ = train_epoch(step, x_train, args.batch_size, args.binarize, rng, dtype, config.latent_dim, binarized)
    matmul_epoch(plan, batches)
    print(f"warm-up epoch: {warm:.3f} s", file=out, flush=True)

    epoch_times, matmul_times, losses = [], [], []
    faults = [0, 0]
    for _ in range(args.repeats):
        before = resource.getrusage(resource.RUSAGE_SELF)
        seconds, loss = train_epoch(step, x_train, args.batch_size, args.binarize, rng, dtype, config.latent_dim,
                                    binarized)
        after = resource.getrusage(resource.RUSAGE_SELF)
        faults[0] += after.ru_minflt - before.ru_minflt
        faults[1] += after.ru_majflt - before.ru_majflt
        epoch_times.append(seconds)
        losses.append(loss)
        matmul_times.append(matmul_epoch(plan, batches))  # interleaved: both see the same machine
    feed = statistics.median(feed_epoch(x_train, args.batch_size, args.binarize, rng, dtype, config.latent_dim,
                                        binarized)
                             for _ in range(min(args.repeats, 3)))

    epoch, matmul = statistics.median(epoch_times), statistics.median(matmul_times)
    print("epochs (s): " + " ".join(f"{t:.3f}" for t in epoch_times), file=out)
    print("train loss per epoch: " + " ".join(f"{v:.2f}" for v in losses), file=out)
    print(f"epoch: median {epoch:.3f} s, {n / epoch:,.0f} samples/s", file=out)
    print("matmuls alone (s): " + " ".join(f"{t:.3f}" for t in matmul_times), file=out)
    print(f"matmuls alone: median {matmul:.3f} s per epoch ({n_calls:,} calls, {flops / 1e9:.1f} GFLOP, "
          f"{flops / 1e9 / matmul:.0f} GFLOP/s)", file=out)
    print(f"epoch / matmuls: {epoch / matmul:.2f}", file=out)
    print(f"data feeding alone: {feed:.3f} s per epoch", file=out)
    print(f"page faults per epoch: {faults[0] / args.repeats:,.0f} minor, {faults[1] / args.repeats:,.0f} major",
          file=out)
    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak RSS: {rss_mb:.0f} MB", file=out)
    measured = {"epoch": epoch, "ratio": epoch / matmul, "faults": faults[0] / args.repeats, "rss_mb": rss_mb}
    # after the peak RSS: the large product below would count in it
    peak = blas_peak(dtype)
    print(f"blas peak: {peak:.0f} GFLOP/s (one 2048 x 2048 x 2048 {args.dtype} product, best of 3); "
          f"at that rate the epoch's {flops / 1e9:.1f} GFLOP take {flops / 1e9 / peak:.3f} s", file=out)
    if isinstance(step, FastStep):
        # on a copy, with its own noise: the model that L_k measures below stays the timed epochs' one
        parts = breakdown_epoch(copy_step(step), x_train, args.batch_size, args.binarize,
                                np.random.default_rng(args.seed + 6), dtype, config.latent_dim, binarized)
        print(f"where the time goes (one more epoch on a copy of the model, timed by phase, {parts['total']:.3f} s): "
              + ", ".join(f"{name} {parts[name]:.3f} s" for name in PHASES), file=out)
        outside = parts["total"] - parts["matmuls"]
        # against this epoch's own multiplies: the machine's speed can change between epochs
        print(f"outside the matmuls: {outside:.3f} s = {outside / parts['matmuls']:.2f} x this epoch's own matmuls, "
              f"of which the optimizer {parts['optimizer'] / parts['matmuls']:.2f} x", file=out)
    else:
        print("where the time goes: timed by phase on the fast path only (--path fast)", file=out)
    print(f"load average at end: {load_average()}", file=out, flush=True)

    if args.iw_samples:
        try:
            from ..evaluate import iw_bound
        except ImportError as exc:
            print(f"L_{args.iw_samples}: skipped ({exc})", file=out)
        else:
            images = x_test[:args.iw_images] if args.iw_images else x_test
            decoder_flops = iw_decoder_flops(config, len(images), args.iw_samples)
            print(f"L_{args.iw_samples}: the decoder's products for {len(images):,} x {args.iw_samples:,} samples are "
                  f"{decoder_flops / 1e9:,.1f} GFLOP, {decoder_flops / 1e9 / peak:.3g} s at the blas peak", file=out)
            if args.binarize == "dynamic":
                images = data.binarize_dynamic(images, np.random.default_rng(args.seed + 2))
            start = time.perf_counter()
            value = iw_bound(step.params, images, config, np.random.default_rng(args.seed + 5),
                             k=args.iw_samples, progress=True)
            seconds = time.perf_counter() - start
            print(f"L_{args.iw_samples}: {value:.2f} nats on {len(images)} test images in {seconds:.1f} s",
                  file=out, flush=True)
            if args.iw_samples == 5000 and len(images) == 10_000:
                measured["l5000"] = seconds

    if args.float64_check:
        start = time.perf_counter()
        loss32, loss64 = float64_check(args, config, x_train, x_test)
        print(f"float64 check ({args.check_epochs} epochs, seed {args.seed}, {time.perf_counter() - start:.0f} s): "
              f"test ELBO float32 {-loss32:.3f}, float64 {-loss64:.3f}, difference {abs(loss32 - loss64):.3f} nat",
              file=out)
        if args.check_epochs == 10 and not args.random_data:  # the target is about MNIST's test ELBO
            measured["float64_gap"] = abs(loss32 - loss64)

    settings = dict(hidden=config.hidden_dims, latent_dim=config.latent_dim, batch_size=args.batch_size,
                    dtype=args.dtype, optimizer=args.optimizer)
    if settings == TARGET_SETTINGS and config.input_dim == 784:
        print("issue 5's targets (784-400-20, batch 128, float32, Adam):", file=out)
        for line in target_lines(measured):
            print(line, file=out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
