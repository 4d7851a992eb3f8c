"""`python -m tinyvae train`: train a VAE on MNIST, evaluate it the way papers do, draw what it
learned.

    python -m tinyvae train                        # MNIST, dynamic binarization, 784-400-20 ReLU,
                                                   # Adam 1e-3, batch 128, 10 epochs, seed 0
    python -m tinyvae train --latent-dim 2         # a 2-D latent space: adds the manifold figure
    python -m tinyvae train --binarize none        # grayscale targets, as PyTorch's VAE example
    python -m tinyvae train --resume runs/mnist/checkpoint.npz    # continue an interrupted run

examples/mnist.py is this command as a script of its own. The run's settings (which images, how
binarized, how scored) are tinyvae/lab/training/run_settings.py, shared with `python -m tinyvae
evaluate`, which prints these same numbers again from the checkpoint.

Everything goes to --out: by default runs/<dataset>, followed by the settings given that differ
from the defaults (runs/mnist_latent-dim=2), so runs with different settings never collide.
checkpoint.npz and history.json/.csv after every epoch, then metrics.json and the figures. At
the end it prints the test ELBO (β = 1; with --beta ≠ 1 also the β-weighted loss training
minimized), the importance-weighted bound L_k (Burda et al. 2016; k = --iw-samples) and the
number of active units. Before training it says how long that evaluation will take.

Binarization (the Bernoulli likelihood wants binary pixels; see tinyvae/lab/datasets/binarize.py):
  dynamic  (the default for --likelihood bernoulli) a fresh Bernoulli draw of every training
           image each epoch (Burda et al.); the test set is binarized once, with a fixed seed.
  fixed    for mnist: Larochelle & Murray's binarized MNIST (= --dataset binarized-mnist); for
           fashion-mnist: one fixed draw of train and test.
  none     (the default for the Gaussian likelihoods) intensities in [0, 1] as they are.

A run owns its folder: a fresh run refuses an --out that holds files unless --overwrite is given,
and then the previous files are moved aside and deleted once the new run's first checkpoint
exists (a crash before that keeps them, in a hidden .replaced-* folder, and whatever next takes
the folder puts them back). With --resume, every
setting comes from the checkpoint and a flag that contradicts it is refused; only --epochs may
grow. Ctrl-C (or SIGTERM, SIGHUP) exits with status 130 saying where the checkpoint is. Output
that cannot be written (a closed pipe: `... | head -3`) is dropped; training goes on and saves.

NumPy's OpenBLAS takes a thread per core. On a machine that other work keeps busy those threads
wait for cores, and an epoch can take many times longer (13 times, measured, on a 2-core machine
with one core taken: tinyvae/speed/blas_threads.py); the command says so before training when
the load average shows it. OPENBLAS_NUM_THREADS=1 before starting gives OpenBLAS one thread.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

from ..config import OBJECTIVES, VAEConfig, init_params
from ..lab import memory
from ..lab.datasets.data import FILES
from ..lab.datasets.readers import D as IMAGE_PIXELS
from ..lab.errors import UsageError
from ..lab.figures.figures import make_figures
from ..lab.signals import INTERRUPTED
from ..lab.storage.checkpoint import CheckpointError, load_checkpoint
from ..lab.storage.files import hold_folder, write_json
from ..lab.training import run_settings, runfolder
from ..lab.training.progress import CountProgress, clock, evaluation_eta, tolerant
from ..lab.training.runner import CHECKPOINT_NAME, TrainingInterrupted, fit
from ..layers import ACTIVATIONS
from ..losses import LIKELIHOODS
from ..optim import OPTIMIZERS, make_optimizer
from ..speed.blas_threads import contention, get_blas_threads, load_average
from ..speed.halves import available_cores
from ..speed.step import make_step
from .args import (
    gaussian_std,
    hidden_sizes,
    nonnegative_float,
    nonnegative_int,
    positive_float,
    positive_int,
    seed,
    verb_parser,
)
from .saved import check_data_dir
from .status import run_command

DEFAULTS = run_settings.RUN_DEFAULTS
RUN_SETTINGS = tuple(DEFAULTS)  # with --resume, all of them come from the checkpoint


def build_parser(prog: str = "python -m tinyvae train") -> argparse.ArgumentParser:
    d = DEFAULTS
    p = verb_parser("train", "Train a VAE on MNIST and evaluate it (tinyvae).", prog=prog,
                    epilog="Files written to --out: checkpoint.npz, history.json, history.csv, "
                           "metrics.json and the figures (*.png).")
    # Every default is None here and filled in by resolve(), so that --resume can tell a flag
    # that was given from one that was not; the help says each default in its own words.
    p.add_argument("--dataset", choices=list(FILES),
                   help=f"which images (default: {d['dataset']})")
    p.add_argument("--data-dir", type=Path, metavar="DIR",
                   help="a data root holding <dataset>/ folders, used alone (default: "
                        "$TINYVAE_DATA, then ~/.cache/tinyvae, where missing files are "
                        "downloaded)")
    p.add_argument("--binarize", choices=run_settings.BINARIZATIONS,
                   help="dynamic: pixels redrawn as Bernoulli(intensity) every epoch; fixed: for "
                        "mnist, Larochelle & Murray's binarized MNIST, for fashion-mnist one draw "
                        "kept for all epochs; none: intensities as they are (default: dynamic for "
                        "the bernoulli likelihood, none for gaussian)")
    p.add_argument("--epochs", type=nonnegative_int, metavar="N",
                   help=f"epochs to train (default: {d['epochs']})")
    p.add_argument("--batch-size", type=positive_int, metavar="B",
                   help=f"minibatch size (default: {d['batch_size']})")
    p.add_argument("--lr", type=positive_float, metavar="LR",
                   help=f"learning rate (default: {d['lr']:g})")
    p.add_argument("--optimizer", choices=sorted(OPTIMIZERS), help=f"(default: {d['optimizer']})")
    p.add_argument("--hidden", type=hidden_sizes, metavar="SIZES",
                   help="hidden layer sizes of the encoder, e.g. 400 or 200,200 (default: "
                        f"{','.join(map(str, d['hidden']))})")
    p.add_argument("--latent-dim", type=positive_int, metavar="Z",
                   help=f"Z, the latent size (default: {d['latent_dim']})")
    p.add_argument("--activation", choices=sorted(ACTIVATIONS),
                   help=f"(default: {d['activation']})")
    p.add_argument("--likelihood", choices=list(LIKELIHOODS),
                   help=f"p(x|z) (default: {d['likelihood']})")
    p.add_argument("--gaussian-std", type=gaussian_std, metavar="SIGMA",
                   help="σ of --likelihood gaussian, on pixels in [0, 1] "
                        f"(default: {run_settings.DEFAULT_GAUSSIAN_STD:g})")
    p.add_argument("--beta", type=nonnegative_float, metavar="BETA",
                   help="weight of the KL term (default: 1, the ELBO)")
    p.add_argument("--k", type=positive_int, metavar="K",
                   help=f"samples of z per image in each training step (default: {d['k']})")
    p.add_argument("--objective", choices=list(OBJECTIVES),
                   help="elbo: the ELBO, its reconstruction averaged over the k samples; iwae: "
                        "the importance-weighted bound L_k of Burda et al. 2016, every term "
                        "sampled (default: elbo)")
    p.add_argument("--warmup-epochs", type=nonnegative_float, metavar="E",
                   help="epochs over which beta rises linearly from 0, batch by batch "
                        "(default: 0, none)")
    p.add_argument("--seed", type=seed, metavar="S", help=f"random seed (default: {d['seed']})")
    p.add_argument("--iw-samples", type=nonnegative_int, metavar="K",
                   help="k of the importance-weighted bound L_k; 0 skips it; 5000 in the papers "
                        f"(default: {d['iw_samples']})")
    p.add_argument("--out", type=Path, metavar="DIR",
                   help="output folder (default: runs/<dataset>_<settings that differ from the "
                        "defaults>, or the --resume folder)")
    p.add_argument("--resume", type=Path, metavar="CKPT",
                   help="a checkpoint.npz to continue from; its settings are kept")
    p.add_argument("--overwrite", action="store_true",
                   help="replace what --out holds (an earlier run) with this run")
    p.add_argument("--dtype", choices=run_settings.DTYPES, help=f"(default: {d['dtype']})")
    p.add_argument("--step", choices=run_settings.STEPS,
                   help="fast: tinyvae/speed/step.py; reference: tinyvae/train.py's step, the "
                        "readable path the docs follow (same mathematics, slower) (default: fast)")
    p.add_argument("--train-limit", type=positive_int, metavar="N",
                   help="use only the first N training images (quick runs and tests)")
    p.add_argument("--test-limit", type=positive_int, metavar="N",
                   help="use only the first N test images (quick runs and tests)")
    return p


def resolve(args: argparse.Namespace, parser: argparse.ArgumentParser) -> argparse.Namespace:
    """Fill in unset flags: from the checkpoint when resuming, else from the defaults."""
    given = {key for key in RUN_SETTINGS if getattr(args, key) is not None}
    if args.dataset == "binarized-mnist" and args.binarize == "dynamic":
        parser.error("argument --binarize: binarized-mnist is already binarized (fixed); "
                     "use --dataset mnist for dynamic binarization")
    check_data_dir(args.data_dir)
    saved = {}
    if args.resume is not None:
        saved = resumed_settings(args.resume)
        # The same run continues with the same settings; only --epochs may grow.
        diffs = [f"--{key.replace('_', '-')} {getattr(args, key)!r} (the checkpoint has "
                 f"{run_settings.complete(saved)[key]!r})" for key in sorted(given - {"epochs"})
                 if _as_saved(getattr(args, key)) != run_settings.complete(saved)[key]]
        if diffs:
            raise UsageError(f"cannot resume {args.resume} with different settings: "
                             f"{', '.join(diffs)}; "
                             "leave those flags out to keep the checkpoint's")
    settings = run_settings.complete({**saved,
                                      **{key: _as_saved(getattr(args, key)) for key in given}})
    if settings["gaussian_std"] is not None and settings["likelihood"] != "gaussian":
        parser.error(f"argument --gaussian-std: only --likelihood gaussian has a fixed σ "
                     f"(this run's is {settings['likelihood']})")
    if settings["objective"] == "iwae" and (settings["beta"] != 1 or settings["warmup_epochs"] > 0):
        parser.error("argument --objective: iwae trains on L_k, which has no KL term to weigh: "
                     "leave out --beta and --warmup-epochs")
    check_memory(settings)
    for key in RUN_SETTINGS:
        setattr(args, key, tuple(settings[key]) if key == "hidden" else settings[key])
    if args.out is None:
        args.out = args.resume.parent if args.resume is not None else default_out(settings, given)
    return args


def check_memory(settings: dict) -> None:
    """A model (and its training batch) too large for this machine is refused before any work."""
    config = VAEConfig(input_dim=IMAGE_PIXELS, hidden_dims=tuple(settings["hidden"]),
                       latent_dim=settings["latent_dim"], k=settings["k"])
    batch = min(settings["batch_size"], settings["train_limit"] or 60_000)  # at most the data
    memory.check_fits("--hidden, --latent-dim, --k and --batch-size",
                      memory.training_numbers(config, batch), settings["dtype"])


def resumed_settings(path: Path) -> dict:
    """The settings kept in the checkpoint to resume from, checked as these flags are
    (run_settings.check): a checkpoint that cannot be resumed is refused here, before any work."""
    if not path.is_file():
        raise UsageError(f"--resume {path}: no such file (give a run's checkpoint.npz)")
    try:
        ckpt = load_checkpoint(path)
        if "cli" not in ckpt.extra:
            other = ("; continue a reproduction with `python -m tinyvae reproduce`"
                     if "recipe" in ckpt.extra else "")
            raise UsageError(f"--resume {path}: it keeps no settings of the train command{other}")
        if ckpt.config.input_dim != IMAGE_PIXELS:
            raise UsageError(f"--resume {path}: its model takes images of {ckpt.config.input_dim} "
                             f"pixels; the datasets' have {IMAGE_PIXELS}")
        dtype = next(iter(ckpt.params.values())).dtype
        return run_settings.check(ckpt.extra["cli"], ckpt.config, dtype)
    except CheckpointError as exc:
        raise UsageError(str(exc)) from None
    except ValueError as exc:
        raise UsageError(f"--resume {path}: its run settings: {exc}") from None


def _as_saved(value):
    """A setting as JSON gives it back (tuples become lists)."""
    return list(value) if isinstance(value, tuple) else value


def default_out(settings: dict, given: set) -> Path:
    """runs/<dataset>, then every setting given that differs from its default (but k of L_k, which
    changes no parameter): runs/mnist_latent-dim=2."""
    # binarize and σ default by dataset and likelihood; those are named themselves when they differ
    defaults = {**run_settings.complete({"dataset": settings["dataset"],
                                         "likelihood": settings["likelihood"]}),
                "likelihood": DEFAULTS["likelihood"]}
    parts = [settings["dataset"]]
    for key in RUN_SETTINGS:
        value = settings[key]
        if key in given and key not in ("dataset", "iw_samples") and value != defaults[key]:
            text = ",".join(map(str, value)) if isinstance(value, list) else f"{value:g}" \
                if isinstance(value, float) else str(value)
            parts.append(f"{key.replace('_', '-')}={text}")
    return Path("runs") / "_".join(parts)


def settings_of(args) -> dict:
    return {key: _as_saved(getattr(args, key)) for key in RUN_SETTINGS}


def run(args, say) -> int:
    t_start = time.perf_counter()
    # The run owns its folder from before it looks at what is there until the last figure is
    # written: a second run on the same folder is refused, never interleaved (fit holds it again).
    with hold_folder(args.out):
        out, aside = runfolder.claim(args.out, args.resume, args.overwrite)
        try:
            return _train(args, say, out, aside, t_start)
        # no checkpoint of this run yet: what --overwrite moved aside comes back
        except BaseException:
            runfolder.restore(out, aside)
            raise


def _train(args, say, out: Path, aside: Path | None, t_start: float) -> int:
    data = run_settings.load_run_data(run_settings.complete(settings_of(args)), args.data_dir)
    dtype = np.dtype(args.dtype)
    config = VAEConfig(input_dim=data.x_train.shape[1], hidden_dims=tuple(args.hidden),
                       latent_dim=args.latent_dim,
                       activation=args.activation, likelihood=args.likelihood, beta=args.beta,
                       k=args.k, objective=args.objective,
                       **({"gaussian_std": args.gaussian_std}
                          if args.gaussian_std is not None else {}))
    rng = np.random.default_rng(args.seed)
    batch = min(args.batch_size, len(data.x_train))  # a batch larger than the data is the data
    # The step owns the run's state (parameters and optimizer) from here to the end.
    step = make_step(args.step, config, init_params(config, rng, dtype),
                     make_optimizer(args.optimizer, args.lr), batch)
    say(f"data: {data.described}: {len(data.x_train)} train, {len(data.x_test)} test images")
    sigma = f" (σ = {config.gaussian_std:g})" if config.likelihood == "gaussian" else ""
    trained_on = ("L_" + str(config.k) if config.objective == "iwae"
                  else f"the ELBO with k = {config.k}")
    objective = "" if (config.k, config.objective) == (1, "elbo") else \
        f", trained on {trained_on}"
    say(f"model: {config.input_dim}-{'-'.join(map(str, config.hidden_dims))}-{config.latent_dim} "
        f"{config.activation}, {config.likelihood} likelihood{sigma}, "
        f"β = {config.beta:g}{objective}, {dtype.name}; "
        f"{step.optimizer!r}, batch {args.batch_size}, seed {args.seed}; output in {out}/")
    crowded = contention(get_blas_threads(), available_cores(), load_average())
    if crowded:
        say(f"note: {crowded}")
    n_test, k = len(data.x_test), args.iw_samples
    eval_seconds = run_settings.estimate_seconds(step.params, config, n_test, k)
    what = run_settings.what_is_evaluated(n_test, k)
    say(f"after training, the evaluation: {what}, about {clock(eval_seconds)} "
        "(timed on one batch now)")
    if aside is not None:
        say(f"replacing the previous run in {out}/ (kept in {aside.name}/ until this run's first "
            "checkpoint)")
    history = fit(step, data.x_train, rng=rng, epochs=args.epochs, x_test=data.x_test,
                  batch_size=batch,
                  binarize=data.fit_binarize, warmup_epochs=args.warmup_epochs, out_dir=out,
                  resume=args.resume,
                  eval_seed=args.seed, extra={"cli": settings_of(args)}, stream=say.stream,
                  after_epoch=lambda epoch, step: runfolder.discard_replaced(out),
                  eta_extra=lambda epoch, seconds: evaluation_eta(eval_seconds, seconds))
    runfolder.discard_replaced(out)
    eval_seconds = run_settings.estimate_seconds(step.params, config, n_test, k)
    say(f"evaluating: {what}, about {clock(eval_seconds)} (timed on one batch now)")
    t_trained = time.perf_counter()
    results = run_settings.evaluate_run(step.params, config, data.x_test, settings_of(args),
                                        len(history),
                                        progress=CountProgress(f"L_{args.iw_samples}", say.stream))
    t_evaluated = time.perf_counter()
    figures = make_figures(out, step.params, config, data.x_test, data.y_test, history,
                           results["kl_per_dim"],
                           args.seed, class_names=data.class_names, label_kind=data.label_kind)
    timing = {"epoch_seconds": [h["seconds"] for h in history],
              "train_seconds": sum(h["seconds"] for h in history),
              "samples_per_sec": [h["samples_per_sec"] for h in history],
              "evaluation_seconds": t_evaluated - t_trained,
              "this_process_seconds": time.perf_counter() - t_start}
    write_json(out / "metrics.json", run_settings.metrics_of(
        results, config, settings_of(args), optimizer=step.optimizer.hparams(), data=data.described,
        n_train=len(data.x_train), n_test=len(data.x_test), epochs=len(history), timing=timing))
    for line in run_settings.report_lines(results, config, settings_of(args)):
        say(line)
    say(f"wrote {out}/: {CHECKPOINT_NAME}, history.json, history.csv, metrics.json, "
        + ", ".join(p.name for p in figures))
    return 0


def this_run_again(args, parser, argv: list[str] | None, command: str):
    """A fresh run whose folder already holds a run: say what it holds (runfolder.holding). If it
    is this very run, unfinished, and a person is at the terminal, offer to continue it;
    otherwise a UsageError says how to use, continue or replace it."""
    found = runfolder.holding(args.out, settings_of(args), command)
    if found is None:
        return args  # not a run's checkpoint: claim() says what the folder holds
    text, resumable = found
    if not (resumable and sys.stdin.isatty() and sys.stdout.isatty()):
        raise UsageError(text)
    if input(f"{text}\ncontinue it now? [Y/n] ").strip().lower() not in ("", "y", "yes"):
        raise UsageError("not continued; nothing was changed")
    argv = sys.argv[1:] if argv is None else list(argv)
    return resolve(parser.parse_args([*argv, "--resume", str(args.out / CHECKPOINT_NAME)]), parser)


class Say:
    """print() to a stream whose write failures are dropped (progress.tolerant)."""

    def __init__(self, stream):
        self.stream = tolerant(stream)

    def __call__(self, text: str) -> None:
        self.stream.write(text + "\n")
        self.stream.flush()


def main(argv: list[str] | None = None, command: str = "python -m tinyvae train") -> int:
    """The command line; `command` is how the user runs it, for the resume hints. Exit statuses:
    commands/status.py."""
    parser = build_parser(command)
    args = parser.parse_args(argv)
    prog = parser.prog

    def body() -> int:
        nonlocal args
        try:
            args = resolve(args, parser)
            if args.resume is None and not args.overwrite and (args.out / CHECKPOINT_NAME).exists():
                args = this_run_again(args, parser, argv, command)
            return run(args, Say(sys.stdout))
        except TrainingInterrupted as exc:
            print(f"{prog}: {exc}", file=sys.stderr)  # fit has already ended its progress line
            if exc.checkpoint is not None:
                runfolder.discard_replaced(Path(exc.checkpoint).parent)
                print(f"resume with: {command} --resume {exc.checkpoint}", file=sys.stderr)
            return INTERRUPTED

    def interrupted() -> str:  # outside an epoch: while loading, evaluating or drawing
        checkpoint = Path(args.out or "runs/mnist") / CHECKPOINT_NAME
        where = (f"; the checkpoint is {checkpoint}, resume with: {command} --resume {checkpoint}"
                 if checkpoint.exists() else "")
        return f"{prog}: interrupted{where}"

    return run_command(prog, body, interrupted)


if __name__ == "__main__":
    sys.exit(main())
