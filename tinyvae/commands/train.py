"""`python -m tinyvae train`: train a VAE on MNIST, evaluate it the way papers do, draw what it learned.

    python -m tinyvae train                        # MNIST, dynamic binarization, 784-400-20 ReLU,
                                                   # Adam 1e-3, batch 128, 10 epochs, seed 0
    python -m tinyvae train --latent-dim 2         # a 2-D latent space: adds the manifold figure
    python -m tinyvae train --binarize none        # grayscale targets, as PyTorch's VAE example
    python -m tinyvae train --resume runs/mnist/checkpoint.npz    # continue an interrupted run

examples/mnist.py is this command as a script of its own.

Everything goes to --out (default runs/mnist/): checkpoint.npz and history.json/.csv after every
epoch, then metrics.json and the figures (reconstructions, samples, loss curves, latent scatter,
manifold for Z = 2, interpolation, traversal). At the end it prints the test ELBO, the
importance-weighted bound L_k (Burda et al. 2016; k = --iw-samples, 5000 in the papers) and
the number of active units.

Binarization (the Bernoulli likelihood wants binary pixels; see tinyvae/lab/data.py):
  dynamic  a fresh Bernoulli draw of every training image each epoch (Burda et al.); the test
           set is binarized once, with a fixed seed, so that every run is scored on the same bits.
  fixed    for mnist: the binarized MNIST of Larochelle & Murray (2011), i.e. --dataset
           binarized-mnist (50,000 training images, no labels); for fashion-mnist: one fixed
           draw (data.fixed_binarization) of train and test.
  none     grayscale intensities in [0, 1] as targets of the Bernoulli likelihood.

A fresh run refuses an --out that already holds a checkpoint unless --overwrite is given; with
--resume, every setting not given on the command line is taken from the checkpoint; one
given that differs from it (a learning rate, a latent size, ...) is refused, since that would not
be the same run. --epochs may be raised to train further. Ctrl-C exits with status 130 after
saying where the checkpoint of the last finished epoch is. --train-limit N and --test-limit N use
only the first N images, for quick runs (the tests use them).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

from .. import evaluate
from ..layers import ACTIVATIONS
from ..optim import OPTIMIZERS, make_optimizer
from ..speed import iw
from ..speed.step import make_step
from ..vae import LIKELIHOODS, VAEConfig, init_params
from ..lab.figures import make_figures
from ..lab.args import hidden_sizes, nonnegative_float, nonnegative_int, positive_float, positive_int
from ..lab.checkpoint import CheckpointError, load_checkpoint
from ..lab.data import FILES, fixed_binarization, load_dataset
from ..lab.files import OutputError, check_writable_folder, write_json
from ..lab.readers import DataError
from ..lab.progress import CountProgress
from ..lab.runner import CHECKPOINT_NAME, TrainingDiverged, TrainingInterrupted, fit

DEFAULTS = {
    "dataset": "mnist", "binarize": "dynamic", "epochs": 10, "batch_size": 128, "lr": 1e-3,
    "optimizer": "adam", "hidden": (400,), "latent_dim": 20, "activation": "relu",
    "likelihood": "bernoulli", "beta": 1.0, "warmup_epochs": 0.0, "seed": 0, "dtype": "float32",
    "train_limit": None, "test_limit": None,
}
# Settings that define the run; with --resume they come from the checkpoint unless given.
RUN_SETTINGS = tuple(DEFAULTS)
TEST_BINARIZATION_SEED = 0  # the test set's one fixed binarization, the same for every run
FIXED_TRAIN_SEED = 1  # fashion-mnist --binarize fixed: the training set's one draw


def build_parser() -> argparse.ArgumentParser:
    d = DEFAULTS
    p = argparse.ArgumentParser(description="Train a VAE on MNIST and evaluate it (tinyvae).",
                                epilog="Files written to --out: checkpoint.npz, history.json, history.csv, "
                                       "metrics.json and the figures (*.png).")
    # Every default is None here and filled in by resolve(), so that --resume can tell a flag
    # that was given from one that was not.
    p.add_argument("--dataset", choices=list(FILES),
                   help=f"which images (default {d['dataset']})")
    p.add_argument("--data-dir", type=Path, metavar="DIR", help="a data root holding <dataset>/ folders "
                   "(default: $TINYVAE_DATA, then ~/.cache/tinyvae; missing files are downloaded)")
    p.add_argument("--binarize", choices=["dynamic", "fixed", "none"],
                   help="dynamic: pixels redrawn as Bernoulli(intensity) every epoch (the default); "
                        "fixed: for mnist, Larochelle & Murray's binarized MNIST (= --dataset binarized-mnist), "
                        "for fashion-mnist one draw kept for all epochs; none: grayscale targets")
    p.add_argument("--epochs", type=nonnegative_int, metavar="N", help=f"epochs to train (default {d['epochs']})")
    p.add_argument("--batch-size", type=positive_int, metavar="B", help=f"minibatch size (default {d['batch_size']})")
    p.add_argument("--lr", type=positive_float, help=f"learning rate (default {d['lr']:g})")
    p.add_argument("--optimizer", choices=sorted(OPTIMIZERS), help=f"(default {d['optimizer']})")
    p.add_argument("--hidden", type=hidden_sizes, metavar="SIZES",
                   help="hidden layer sizes of the encoder, e.g. 400 or 200,200 (default 400)")
    p.add_argument("--latent-dim", type=positive_int, metavar="Z", help=f"Z, the latent size (default {d['latent_dim']})")
    p.add_argument("--activation", choices=sorted(ACTIVATIONS), help=f"(default {d['activation']})")
    p.add_argument("--likelihood", choices=list(LIKELIHOODS),
                   help=f"p(x|z) (default {d['likelihood']})")
    p.add_argument("--beta", type=nonnegative_float, help="weight of the KL term (default 1: the ELBO)")
    p.add_argument("--warmup-epochs", type=nonnegative_float, metavar="E",
                   help="epochs over which beta rises linearly from 0, batch by batch (default 0: none)")
    p.add_argument("--seed", type=nonnegative_int, help=f"random seed (default {d['seed']})")
    p.add_argument("--iw-samples", type=nonnegative_int, default=1000, metavar="K",
                   help="k of the importance-weighted bound L_k (default 1000; 5000 in the papers; 0 skips it)")
    p.add_argument("--out", type=Path, metavar="DIR", help="output folder (default runs/mnist, or the --resume folder)")
    p.add_argument("--resume", type=Path, metavar="CHECKPOINT",
                   help="a checkpoint.npz to continue from; settings not given are taken from it")
    p.add_argument("--overwrite", action="store_true",
                   help="start a new run even if --out holds an earlier run's checkpoint (it is replaced)")
    p.add_argument("--dtype", choices=["float32", "float64"], help=f"(default {d['dtype']})")
    p.add_argument("--step", choices=["fast", "reference"], default="fast",
                   help="fast: tinyvae/speed/step.py (default); reference: tinyvae/train.py's step, "
                        "the readable path the docs follow (same mathematics, slower)")
    p.add_argument("--train-limit", type=positive_int, metavar="N",
                   help="use only the first N training images (quick runs and tests)")
    p.add_argument("--test-limit", type=positive_int, metavar="N",
                   help="use only the first N test images (quick runs and tests)")
    return p


def resolve(args: argparse.Namespace, parser: argparse.ArgumentParser) -> argparse.Namespace:
    """Fill in unset flags: from the checkpoint when resuming, else from DEFAULTS."""
    given = {key for key in RUN_SETTINGS if getattr(args, key) is not None}
    if args.dataset == "binarized-mnist" and args.binarize == "dynamic":
        parser.error("argument --binarize: binarized-mnist is already binarized (fixed); "
                     "use --dataset mnist for dynamic binarization")
    saved = {}
    if args.resume is not None:
        saved = load_checkpoint(args.resume).extra.get("cli", {})
        if args.out is None:
            args.out = args.resume.parent
        # The same run continues with the same settings; only --epochs may grow.
        diffs = [f"--{key.replace('_', '-')} {getattr(args, key)!r} (the checkpoint has {saved[key]!r})"
                 for key in sorted(given - {"epochs"}) if key in saved
                 and _as_saved(getattr(args, key)) != saved[key]]
        if diffs:
            raise CheckpointError(f"cannot resume {args.resume} with different settings: {', '.join(diffs)}; "
                                  "leave those flags out to keep the checkpoint's")
    for key in RUN_SETTINGS:
        if key not in given:
            value = saved.get(key, DEFAULTS[key])
            setattr(args, key, tuple(value) if key == "hidden" else value)
    if args.dataset == "binarized-mnist" and "binarize" not in given | set(saved):
        args.binarize = "fixed"  # a dataset that is already binary
    if args.out is None:
        args.out = Path("runs/mnist")
    return args


def _as_saved(value):
    """A setting as JSON gives it back (tuples become lists)."""
    return list(value) if isinstance(value, tuple) else value


def load_data(args):
    """(x_train, x_test, y_test, binarize for fit, a sentence saying what was loaded)."""
    name = args.dataset
    if args.binarize == "fixed" and name == "mnist":
        name = "binarized-mnist"  # Larochelle & Murray's published fixed binarization
    ds = load_dataset(name, args.data_dir)
    x_train, x_test, y_test = ds.x_train, ds.x_test, ds.y_test
    if args.train_limit is not None:
        x_train = x_train[:args.train_limit]
    if args.test_limit is not None:
        x_test, y_test = x_test[:args.test_limit], None if y_test is None else y_test[:args.test_limit]
    if name == "binarized-mnist":
        return x_train, x_test, y_test, "none", "binarized MNIST (Larochelle & Murray 2011, fixed binarization)"
    if args.binarize == "fixed":
        return (fixed_binarization(x_train, FIXED_TRAIN_SEED), fixed_binarization(x_test, TEST_BINARIZATION_SEED),
                y_test, "none", f"{name}, one fixed binarization (seeds {FIXED_TRAIN_SEED} train, "
                                f"{TEST_BINARIZATION_SEED} test)")
    if args.binarize == "dynamic":
        return (x_train, fixed_binarization(x_test, TEST_BINARIZATION_SEED), y_test, "dynamic",
                f"{name}, dynamically binarized (test set binarized once, seed {TEST_BINARIZATION_SEED})")
    return x_train, x_test, y_test, "none", f"{name}, grayscale"


def settings_of(args) -> dict:
    out = {key: getattr(args, key) for key in RUN_SETTINGS}
    out["hidden"] = list(out["hidden"])
    return out


def run(args) -> int:
    t_start = time.perf_counter()
    out = check_writable_folder(args.out)  # fail now, not after an hour of training
    existing = out / CHECKPOINT_NAME
    if args.resume is None and existing.exists() and not args.overwrite:
        # Starting afresh would replace that run's checkpoint with this one's epoch 0.
        raise CheckpointError(f"{existing} already exists; continue that run with --resume {existing}, "
                              "start a new one over it with --overwrite, or choose another --out")
    x_train, x_test, y_test, fit_binarize, described = load_data(args)
    dtype = np.dtype(args.dtype)
    config = VAEConfig(input_dim=x_train.shape[1], hidden_dims=tuple(args.hidden), latent_dim=args.latent_dim,
                       activation=args.activation, likelihood=args.likelihood, beta=args.beta)
    rng = np.random.default_rng(args.seed)
    # The step owns the run's state (parameters and optimizer) from here to the end.
    step = make_step(args.step, config, init_params(config, rng, dtype), make_optimizer(args.optimizer, args.lr),
                     args.batch_size)
    print(f"data: {described}: {len(x_train)} train, {len(x_test)} test images")
    print(f"model: {config.input_dim}-{'-'.join(map(str, config.hidden_dims))}-{config.latent_dim} "
          f"{config.activation}, {config.likelihood} likelihood, β = {config.beta:g}, {dtype.name}; "
          f"{step.optimizer!r}, batch {args.batch_size}, seed {args.seed}; output in {out}/")
    sys.stdout.flush()

    history = fit(step, x_train, rng=rng, epochs=args.epochs, x_test=x_test, batch_size=args.batch_size,
                  binarize=fit_binarize, warmup_epochs=args.warmup_epochs, out_dir=out, resume=args.resume,
                  eval_seed=args.seed, extra={"cli": settings_of(args)})
    t_trained = time.perf_counter()
    results = evaluate_model(args, step.params, config, x_test)
    t_evaluated = time.perf_counter()
    figures = make_figures(out, step.params, config, x_test, y_test, history, results["kl_per_dim"], args.seed)
    timing = {"epoch_seconds": [h["seconds"] for h in history],
              "train_seconds": sum(h["seconds"] for h in history),
              "samples_per_sec": [h["samples_per_sec"] for h in history],
              "evaluation_seconds": t_evaluated - t_trained, "this_process_seconds": time.perf_counter() - t_start}
    write_json(out / "metrics.json", metrics_of(args, results, config, step.optimizer, described,
                                                n_train=len(x_train), n_test=len(x_test), epochs=len(history),
                                                timing=timing))
    report(args, results, config, fit_binarize)
    print(f"wrote {out}/: {CHECKPOINT_NAME}, history.json, history.csv, metrics.json, "
          + ", ".join(p.name for p in figures))
    return 0


def evaluate_model(args, params, config: VAEConfig, x_test) -> dict:
    """The final numbers: the test ELBO, L_k (the fast bound of tinyvae/speed/iw.py), active units.

    The test ELBO uses the same ε stream as the last epoch's, so it equals the history's last
    test loss.
    """
    test = evaluate.test_elbo(params, x_test, config, np.random.default_rng([args.seed, args.epochs]))
    iw_bound = None
    if args.iw_samples > 0:
        progress = CountProgress(f"L_{args.iw_samples}") if sys.stdout.isatty() else None
        iw_bound = iw.iw_bound(params, x_test, config, np.random.default_rng([args.seed, 5]), k=args.iw_samples,
                               progress=progress)
    n_active, variances = evaluate.active_units(params, x_test, config)
    return {"test": test, "iw_bound": iw_bound, "kl_per_dim": evaluate.kl_per_dimension(params, x_test, config),
            "active_units": n_active, "variances": variances}


def metrics_of(args, results: dict, config: VAEConfig, optimizer, described: str, **facts) -> dict:
    """metrics.json: the final numbers, the settings that produced them, and the timing."""
    test = results["test"]
    return {
        "test_loss": test["loss"], "test_elbo": -test["loss"], "test_recon": test["recon"], "test_kl": test["kl"],
        "iw_bound": results["iw_bound"], "iw_samples": args.iw_samples,
        "active_units": int(results["active_units"]),
        "active_unit_variance": [float(v) for v in results["variances"]],
        "kl_per_dim": [float(v) for v in results["kl_per_dim"]],
        "config": config.to_dict(), "optimizer": optimizer.hparams(), "settings": settings_of(args),
        "data": described, "n_train": facts["n_train"], "n_test": facts["n_test"], "epochs": facts["epochs"],
        "timing": facts["timing"], "numpy": np.__version__,
    }


def report(args, results: dict, config: VAEConfig, fit_binarize: str) -> None:
    test, iw_bound = results["test"], results["iw_bound"]
    print(f"test ELBO    {-test['loss']:.2f} nats per image "
          f"(loss {test['loss']:.2f} = recon {test['recon']:.2f} + KL {test['kl']:.2f})")
    if iw_bound is not None:
        label = f"L_{args.iw_samples}"
        print(f"{label:<12} {iw_bound:.2f} nats (importance-weighted bound on log p(x), k = {args.iw_samples})")
    if fit_binarize == "none" and args.binarize == "none" and config.likelihood == "bernoulli":
        print("             (grayscale targets: the Bernoulli 'likelihood' is not normalized for them, so these "
              "compare only with other grayscale runs, e.g. PyTorch's example, not with papers' binary MNIST)")
    print(f"active units {results['active_units']} of {config.latent_dim} (Cov_x E_q[z_u] > 0.01)")


def main(argv: list[str] | None = None, command: str = "python -m tinyvae train") -> int:
    """The command line; `command` is how the user runs it, for the resume hints."""
    parser = build_parser()
    args = parser.parse_args(argv)
    prog = parser.prog
    lead = "\n" if sys.stderr.isatty() else ""  # after the terminal's "^C", start a fresh line
    try:
        args = resolve(args, parser)
        return run(args)
    except TrainingInterrupted as exc:
        print(f"{prog}: {exc}", file=sys.stderr)  # fit has already ended its progress line
        if exc.checkpoint is not None:
            print(f"resume with: {command} --resume {exc.checkpoint}", file=sys.stderr)
        return 130
    except KeyboardInterrupt:  # outside an epoch: while loading, evaluating or drawing
        checkpoint = Path(args.out or "runs/mnist") / CHECKPOINT_NAME
        where = (f"; the checkpoint is {checkpoint}, resume with: {command} --resume {checkpoint}"
                 if checkpoint.exists() else "")
        print(f"{lead}{prog}: interrupted{where}", file=sys.stderr)
        return 130
    except (DataError, OutputError, TrainingDiverged, OSError) as exc:
        print(f"{prog}: error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
