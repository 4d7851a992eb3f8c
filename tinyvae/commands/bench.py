"""How fast training runs, and how close it comes to what its matrix multiplies allow.

    python -m tinyvae bench                  # 784-400-20, batch 128, float32, Adam, real MNIST
    python -m tinyvae bench --random-data    # the same shapes, no dataset needed
    python -m tinyvae bench --path reference # time the readable path instead
    python -m tinyvae bench --float64-check  # 10 epochs in float32 and float64, compare test ELBOs
    python -m tinyvae bench --blas-threads 1 # OpenBLAS on one thread (set from inside)
    python -m tinyvae bench --k 5 --objective iwae  # 5 samples per image, against k = 1

After a warm-up epoch the benchmark times `--repeats` training epochs and, interleaved with
them, the same epochs' matrix multiplies alone (tinyvae/lab/bench/bench.py measures; this file
prints). The ratio of the two medians says how much the overhead costs (with `--path
reference` it is measured against the same floor, the fast step's multiplies). It also
prints the page faults per epoch (allocating and freeing large temporaries shows up here as
hundreds of thousands), the peak resident memory, the BLAS and its threads, the BLAS's peak
rate, one more epoch timed phase by phase (on a copy of the model, so that L_k still
measures the timed one), and the time of the importance-weighted bound L_k on the test
images (tinyvae.speed.iw.iw_bound). The machine's load average is printed too: on a shared
machine it explains a slow run.

The speed targets for the default model on a 2-core CPU: an epoch in at most 1.3 s and
at most 1.5× its own matrix multiplies, page faults per epoch in the thousands, peak
memory under 600 MB, L_5000 on the 10,000 test images in under 3 minutes, and float32
training within 0.3 nat of float64 after 10 epochs. For that model the run ends with
each target against its figure: met, not met, or not measured (and how to measure it).
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import sys
import time
from pathlib import Path

import numpy as np

from ..config import OBJECTIVES, VAEConfig, init_params
from ..lab import memory
from ..lab.bench import bench, bench_iw, bench_k
from ..lab.datasets import data
from ..lab.datasets.binarize import binarization_buffer, binarize_dynamic
from ..lab.training.progress import CountProgress
from ..layers import ACTIVATIONS
from ..losses import LIKELIHOODS
from ..optim import OPTIMIZERS, make_optimizer
from ..speed.blas_threads import blas_threads, get_blas_threads
from ..speed.halves import available_cores
from ..speed.iw import iw_bound
from ..speed.step import FastStep, make_step
from .args import hidden_sizes, nonnegative_int, positive_float, positive_int, seed, verb_parser
from .saved import DATA_DIR_HELP
from .status import run_command


class Diverged(RuntimeError):
    """The timed model's loss stopped being finite: its timings would describe nothing."""


def check_finite(loss: float, when: str, args) -> None:
    """Refuse to time a model whose training diverged (NaN arithmetic can run at another speed)."""
    if not np.isfinite(loss):
        raise Diverged(f"training diverged: the train loss is {loss} after the {when}; "
                       f"no timings are "
                       f"reported for a diverged model (try a smaller --lr than {args.lr:g})")


ENV_VARS = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_CORETYPE",
            "OPENBLAS_L2_SIZE")


def build_parser() -> argparse.ArgumentParser:
    p = verb_parser("bench", __doc__.split("\n\n")[0])
    p.add_argument("--path", choices=("fast", "reference"), default="fast",
                   help="which training step to time")
    p.add_argument("--dataset", choices=list(data.FILES), default="mnist", help="which images")
    p.add_argument("--data-dir", type=Path, metavar="DIR", help=DATA_DIR_HELP)
    p.add_argument("--random-data", action="store_true",
                   help="uniform random images of MNIST's shape instead")
    p.add_argument("--train-images", type=positive_int, default=60000, metavar="N",
                   help="images per epoch with --random-data")
    p.add_argument("--binarize", choices=("none", "dynamic"), default="none",
                   help="none: grayscale, as PyTorch's example; dynamic: a fresh draw every epoch")
    p.add_argument("--hidden", type=hidden_sizes, default=(400,), metavar="SIZES",
                   help="hidden sizes, e.g. 400 or 200,200")
    p.add_argument("--latent-dim", type=positive_int, default=20, metavar="Z",
                   help="Z, the latent size")
    p.add_argument("--activation", choices=sorted(ACTIVATIONS), default="relu",
                   help="hidden activation")
    p.add_argument("--likelihood", choices=list(LIKELIHOODS), default="bernoulli", help="p(x|z)")
    p.add_argument("--batch-size", type=positive_int, default=128, metavar="B",
                   help="minibatch size")
    p.add_argument("--k", type=positive_int, default=1, metavar="K",
                   help="samples of z per image; above 1, the same model at k = 1 (objective "
                        "elbo) is timed too, epoch for epoch, and the two compared "
                        "(lab/bench/bench_k.py)")
    p.add_argument("--objective", choices=OBJECTIVES, default="elbo", help="the ELBO or L_k")
    p.add_argument("--dtype", choices=("float32", "float64"), default="float32",
                   help="the arithmetic")
    p.add_argument("--optimizer", choices=sorted(OPTIMIZERS), default="adam", help="the update")
    p.add_argument("--lr", type=positive_float, default=1e-3, metavar="LR", help="learning rate")
    p.add_argument("--repeats", type=positive_int, default=5, metavar="N",
                   help="timed epochs (after one warm-up epoch)")
    p.add_argument("--iw-samples", type=nonnegative_int, default=5000, metavar="K",
                   help="k of L_k; 0 skips it")
    p.add_argument("--iw-images", type=positive_int, metavar="N",
                   help="test images for L_k (default: all)")
    p.add_argument("--float64-check", action="store_true",
                   help="also train --check-epochs epochs in float32 and in float64 and "
                        "compare the test ELBOs")
    p.add_argument("--check-epochs", type=positive_int, default=10, metavar="N",
                   help="epochs of --float64-check")
    p.add_argument("--seed", type=seed, default=0, metavar="S", help="random seed")
    p.add_argument("--blas-threads", type=positive_int, metavar="N",
                   help="OpenBLAS threads for the whole run, set from inside (default: as NumPy "
                        "started)")
    p.add_argument("--update-threads", type=int, choices=(1, 2),
                   help="threads of the fast step's optimizer update, the same numbers either way "
                        "(default: 2 where a second core is available and OpenBLAS runs on one "
                        "thread, else 1)")
    p.add_argument("--iw-threads", type=int, choices=(1, 2), default=1,
                   help="run L_k's image batches two at a time on two threads (as the "
                        "reproduction recipe does, beside a one-thread OpenBLAS), the same "
                        "numbers either way; 1 is one core, against the one-core peak")
    return p


def parse_args(argv=None) -> argparse.Namespace:
    p = build_parser()
    args = p.parse_args(argv)
    if args.update_threads is not None and args.path != "fast":
        p.error("argument --update-threads: only the fast path (--path fast) splits its update")
    return args


def print_setup(args, config: VAEConfig, data_text: str, out) -> None:
    """The model, the data and the machine: what the figures below were measured on."""
    sizes = "-".join(str(n) for n in (config.input_dim, *config.hidden_dims, config.latent_dim))
    env = " ".join(f"{name}={os.environ.get(name, '(unset)')}" for name in ENV_VARS)
    k = f", k {config.k}, objective {config.objective}"
    k = "" if (config.k, config.objective) == (1, "elbo") else k
    print(f"model: {sizes} {config.activation} {config.likelihood}{k}, batch {args.batch_size}, "
          f"{args.dtype}, {args.optimizer} (lr {args.lr:g}), path {args.path}", file=out)
    print(f"data: {data_text}, binarize {args.binarize}"
          + (" (random images: the times are real, the losses mean nothing)"
             if args.random_data else ""), file=out)
    print(f"numpy: {np.__version__}", file=out)
    print(f"blas: {bench.blas_description()}", file=out)
    threads = get_blas_threads()
    threads = ("unknown (not an OpenBLAS found by tinyvae.speed.blas_threads)" if threads is None
               else threads)
    print(f"blas threads: {threads}"
          + (" (--blas-threads)" if args.blas_threads is not None else ""), file=out)
    print(f"cpus: {available_cores()}", file=out)
    print(f"environment: {env}", file=out)
    print(f"load average at start: {bench.load_average()}", file=out, flush=True)


def time_epochs(args, step, x_train, rng, plan, batches, binarized, out, twin=None) -> dict:
    """The warm-up, then the timed epochs interleaved with their matmuls alone; prints and returns
    the figures. twin: None, or the model's bench_k.K1Twin, timed after each of its epochs."""
    dtype, Z = np.dtype(args.dtype), step.config.latent_dim
    warm, loss = bench.train_epoch(step, x_train, args.batch_size, args.binarize, rng, dtype, Z,
                                   binarized)
    check_finite(loss, "warm-up epoch", args)
    bench.matmul_epoch(plan, batches)
    if twin is not None:
        twin.time_epoch(x_train, args.batch_size, args.binarize, dtype, batches, binarized,
                        keep=False)
    print(f"warm-up epoch: {warm:.3f} s", file=out, flush=True)
    epoch_times, matmul_times, losses, faults = [], [], [], [0, 0]
    for _ in range(args.repeats):
        before = resource.getrusage(resource.RUSAGE_SELF)
        seconds, loss = bench.train_epoch(step, x_train, args.batch_size, args.binarize, rng, dtype,
                                          Z, binarized)
        after = resource.getrusage(resource.RUSAGE_SELF)
        faults[0] += after.ru_minflt - before.ru_minflt
        faults[1] += after.ru_majflt - before.ru_majflt
        epoch_times.append(seconds)
        losses.append(loss)
        check_finite(loss, f"timed epoch {len(losses)}", args)
        # interleaved: both see the same machine
        matmul_times.append(bench.matmul_epoch(plan, batches))
        if twin is not None:
            twin.time_epoch(x_train, args.batch_size, args.binarize, dtype, batches, binarized)
    feed = statistics.median(bench.feed_epoch(x_train, args.batch_size, args.binarize, rng, dtype,
                                              Z, binarized, step.config.k)
                             for _ in range(min(args.repeats, 3)))
    n_calls, flops = bench.plan_flops(plan, batches)
    epoch, matmul = statistics.median(epoch_times), statistics.median(matmul_times)
    print("epochs (s): " + " ".join(f"{t:.3f}" for t in epoch_times), file=out)
    print("train loss per epoch: " + " ".join(f"{v:.2f}" for v in losses), file=out)
    print(f"epoch: median {epoch:.3f} s, {len(x_train) / epoch:,.0f} samples/s", file=out)
    print("matmuls alone (s): " + " ".join(f"{t:.3f}" for t in matmul_times), file=out)
    print(f"matmuls alone: median {matmul:.3f} s per epoch ({n_calls:,} calls, "
          f"{flops / 1e9:.1f} GFLOP, "
          f"{flops / 1e9 / matmul:.0f} GFLOP/s)", file=out)
    print(f"epoch / matmuls: {epoch / matmul:.2f}", file=out)
    print(f"data feeding alone: {feed:.3f} s per epoch", file=out)
    print(f"page faults per epoch: {faults[0] / args.repeats:,.0f} minor, "
          f"{faults[1] / args.repeats:,.0f} major",
          file=out)
    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak RSS: {rss_mb:.0f} MB", file=out)
    if twin is not None:
        lines = twin.comparison_lines(step.config.k, epoch_times, matmul_times, flops, batches)
        print("\n".join(lines), file=out)
    return {"epoch": epoch, "ratio": epoch / matmul, "faults": faults[0] / args.repeats,
            "rss_mb": rss_mb, "flops": flops}


def print_bounds(args, step, x_train, binarized, flops: float, out) -> float:
    """The BLAS peak and the epoch timed phase by phase; returns the peak (GFLOP/s)."""
    # after the peak RSS: this large product would count in it
    peak = bench.blas_peak(np.dtype(args.dtype))
    print(f"blas peak: {peak:.0f} GFLOP/s (one 2048 x 2048 x 2048 {args.dtype} product, "
          f"best of 3); "
          f"at that rate the epoch's {flops / 1e9:.1f} GFLOP take {flops / 1e9 / peak:.3f} s",
          file=out)
    if isinstance(step, FastStep):
        # on a copy, with its own noise: the model that L_k measures below stays the timed
        # epochs' one
        parts = bench.breakdown_epoch(bench.copy_step(step), x_train, args.batch_size,
                                      args.binarize, np.random.default_rng(args.seed + 6),
                                      np.dtype(args.dtype),
                                      step.config.latent_dim, binarized)
        print(f"where the time goes (one more epoch on a copy of the model, timed by phase, "
              f"{parts['total']:.3f} s): "
              + ", ".join(f"{name} {parts[name]:.3f} s" for name in bench.PHASES), file=out)
        outside = parts["total"] - parts["matmuls"]
        # against this epoch's own multiplies: the machine's speed can change between epochs
        print(f"outside the matmuls: {outside:.3f} s = {outside / parts['matmuls']:.2f} x "
              f"this epoch's own matmuls, "
              f"of which the optimizer {parts['optimizer'] / parts['matmuls']:.2f} x", file=out)
    else:
        print("where the time goes: timed by phase on the fast path only (--path fast)", file=out)
    print(f"load average at end: {bench.load_average()}", file=out, flush=True)
    return peak


def time_iw_bound(args, step, x_test, peak: float, out) -> tuple[float, int]:
    """L_k on the test images with the fast bound; prints its FLOPs, what bounds it and its value.

    Returns (seconds, images)."""
    config = step.config
    images = x_test[:args.iw_images] if args.iw_images else x_test
    decoder_flops = bench_iw.iw_decoder_flops(config, len(images), args.iw_samples)
    at_peak = decoder_flops / 1e9 / peak
    print(f"L_{args.iw_samples}: the decoder's products for {len(images):,} x "
          f"{args.iw_samples:,} samples are "
          f"{decoder_flops / 1e9:,.1f} GFLOP, {at_peak:.3g} s at the blas peak", file=out)
    floor = bench_iw.elementwise_floor(config, len(images), args.iw_samples, step.dtype)
    print(f"L_{args.iw_samples}: its passes over every sample at NumPy's measured speed: "
          f"softplus of the logits "
          f"{floor['softplus']:.3g} s, the hidden {config.activation} {floor['activation']:.3g} s "
          f"(= {sum(floor.values()) / at_peak:.2f} x the products at the blas peak)", file=out,
          flush=True)
    if args.binarize == "dynamic":
        images = binarize_dynamic(images, np.random.default_rng(args.seed + 2))
    start = time.perf_counter()
    value = iw_bound(step.params, images, config, np.random.default_rng(args.seed + 5),
                     k=args.iw_samples,
                     progress=CountProgress(f"L_{args.iw_samples}"), threads=args.iw_threads)
    seconds = time.perf_counter() - start
    where = " on 2 threads (two batches at once)" if args.iw_threads == 2 else ""
    print(f"L_{args.iw_samples}: {value:.2f} nats on {len(images)} test images in "
          f"{seconds:.1f} s{where} "
          f"= {seconds / at_peak:.2f} x its decoder's products at the blas peak", file=out,
          flush=True)
    return seconds, len(images)


def float64_gap(args, config, x_train, x_test, out) -> float:
    """Train --check-epochs epochs in float32 and in float64; prints both test ELBOs, returns the
    gap."""
    start = time.perf_counter()
    loss32, loss64 = bench.float64_check(config, x_train, x_test, path=args.path,
                                         optimizer=args.optimizer, lr=args.lr,
                                         batch_size=args.batch_size, binarize=args.binarize,
                                         epochs=args.check_epochs, seed=args.seed)
    check_finite(loss32 + loss64, "float64 check's training (float32 or float64)", args)
    print(f"float64 check ({args.check_epochs} epochs, seed {args.seed}, "
          f"{time.perf_counter() - start:.0f} s): "
          f"test ELBO float32 {-loss32:.3f}, float64 {-loss64:.3f}, "
          f"difference {abs(loss32 - loss64):.3f} nat",
          file=out)
    return abs(loss32 - loss64)


def main(argv=None) -> int:
    """Exit 0 with the figures; otherwise as commands/status.py says (1 if training diverged:
    no timings; 2 for bad input or a model or data too large for this machine's memory)."""
    args = parse_args(argv)

    def body() -> int:
        try:
            # np.errstate: overflow is judged by check_finite, in one line, not by a page of
            # warnings
            with blas_threads(args.blas_threads), np.errstate(all="ignore"):
                return run(args)
        except Diverged as exc:
            print(f"bench: {exc}", file=sys.stderr)
            return 1

    return run_command("bench", body)


def run(args) -> int:
    dtype, out = np.dtype(args.dtype), sys.stdout
    config = VAEConfig(hidden_dims=args.hidden, latent_dim=args.latent_dim,
                       activation=args.activation,
                       likelihood=args.likelihood, k=args.k, objective=args.objective)
    images = (args.train_images + 10_000) * config.input_dim if args.random_data else 0
    memory.check_fits("--hidden, --latent-dim, --k, --batch-size and --train-images",
                      memory.training_numbers(config, args.batch_size) + images, args.dtype)
    try:
        x_train, x_test, data_text = bench.load_images(args.dataset, args.data_dir,
                                                       args.random_data, args.train_images,
                                                       args.seed)
    except data.DataError as exc:
        raise data.DataError(f"{exc} (use --random-data to time random images of the same "
                             "shape)") from None
    if dtype != x_train.dtype:
        x_train = x_train.astype(dtype)  # once, not per batch
    print_setup(args, config, data_text, out)

    # the parameters, then every training epoch's batches and ε
    rng = np.random.default_rng(args.seed)
    params = init_params(config, rng, dtype=dtype)
    step = make_step(args.path, config, params, make_optimizer(args.optimizer, args.lr),
                     args.batch_size)
    if args.path == "fast":
        if args.update_threads is not None:
            step.threads = args.update_threads
        print(f"optimizer update: {step.threads} thread(s)"
              + (" (--update-threads)" if args.update_threads else ""),
              file=out)
    n = len(x_train)
    batches = [args.batch_size] * (n // args.batch_size) + ([n % args.batch_size]
                                                            if n % args.batch_size else [])
    plan = bench.matmul_plan(config, params, make_optimizer(args.optimizer, args.lr),
                             sorted(set(batches)), dtype,
                             np.random.default_rng(args.seed + 4))
    # kept for every epoch, as train.fit does
    binarized = binarization_buffer(x_train, args.binarize)
    twin = None if args.k == 1 else bench_k.K1Twin(
        args.path, config, params, {"name": args.optimizer, "lr": args.lr}, sorted(set(batches)),
        dtype, args.seed, args.batch_size, getattr(step, "threads", None))
    measured = time_epochs(args, step, x_train, rng, plan, batches, binarized, out, twin)
    peak = print_bounds(args, step, x_train, binarized, measured.pop("flops"), out)
    if args.iw_samples:
        seconds, n_images = time_iw_bound(args, step, x_test, peak, out)
        if args.iw_samples == 5000 and n_images == 10_000:
            measured["l5000"] = seconds
    if args.float64_check:
        gap = float64_gap(args, config, x_train, x_test, out)
        # the target is about MNIST's test ELBO
        if args.check_epochs == 10 and not args.random_data:
            measured["float64_gap"] = gap

    settings = dict(hidden=config.hidden_dims, latent_dim=config.latent_dim,
                    batch_size=args.batch_size,
                    dtype=args.dtype, optimizer=args.optimizer)
    if settings == bench.TARGET_SETTINGS and config.input_dim == 784 and config.k == 1:
        print("the speed targets (784-400-20, batch 128, float32, Adam):", file=out)
        for line in bench.target_lines(measured):
            print(line, file=out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
