"""`python -m tinyvae reproduce iwae-vae`: a paper's number, by its own protocol, resumable.

    # all 8 stages (3,280 passes), dynamic MNIST:
    python -m tinyvae reproduce iwae-vae
    python -m tinyvae reproduce iwae-vae --stages 0-5        # the first 6 stages (364 passes)
    python -m tinyvae reproduce iwae-vae --binarization fixed  # Larochelle & Murray's binary MNIST
    # the completed stages' numbers, no training:
    python -m tinyvae reproduce iwae-vae --summary stages.json
    # the run beside the paper, as a figure, no training:
    python -m tinyvae reproduce iwae-vae --plot run.png

The recipe (tinyvae/lab/training/recipes.py) is Burda et al.'s VAE (IWAE paper, Table 1, k = 1): its
model, Glorot initialization, Adam, batches of 20, and the schedule of stages i = 0..7 of 3^i
passes at lr 0.001·10^(−i/7). At the end of every stage it evaluates L_5000 on the test set,
the active units and the test ELBO, prints them and records them in the run's history.

The run lives in --out (default ~/.cache/tinyvae/runs/iwae-vae-<binarization>/, outside any
repository): checkpoint.npz and history.json after every epoch, stages.json when the asked
stages are done. Running the same command again resumes from the checkpoint exactly (mid-stage
included; Ctrl-C, a kill or a power cut loses at most the epoch under way); --stages 0-7
after --stages 0-5 continues the same run. A checkpoint of another recipe, protocol, seed, limit,
k or --step is refused (each is recorded in it: they fix the run's bits and numbers), and a
second invocation on a folder that a running one holds is refused at once. `python -m tinyvae
evaluate` scores any of its checkpoints as the run's stage evaluation does (its test set, k and
noise seed).
NumPy's OpenBLAS runs on one thread throughout (BLAS_THREADS).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..lab.datasets.data import shown, user_cache_dir
from ..lab.errors import UsageError
from ..lab.figures import plots
from ..lab.signals import INTERRUPTED
from ..lab.storage.checkpoint import CheckpointError, load_checkpoint
from ..lab.storage.files import check_writable_folder, write_json
from ..lab.training import runfolder
from ..lab.training.recipes import (
    RECIPES,
    StageEvaluation,
    build_step,
    check_identity,
    load_data,
    lr_schedule,
    markdown_rows,
    parse_stages,
    stage_summary,
)
from ..lab.training.runner import CHECKPOINT_NAME, TrainingInterrupted, fit
from ..speed.blas_threads import blas_threads, get_blas_threads
from .args import nonnegative_int, positive_int, verb_parser
from .saved import DATA_DIR_HELP
from .status import run_command

# OpenBLAS on one thread for the whole run: at a batch of 20 its threads cost more than they
# save, and a run resumed with another thread count would not continue bit for bit
# (tinyvae/speed/blas_threads.py). On a loaded 2-core machine one thread was faster for
# L_5000 too (docs/06-results.md, "Reproducing Burda et al.").
BLAS_THREADS = 1

COMMAND = "python -m tinyvae reproduce"


def build_parser() -> argparse.ArgumentParser:
    p = verb_parser("reproduce", "Reproduce a paper's result with its own protocol (resumable: "
                    "run the same command again to continue).")
    p.add_argument("recipe", choices=sorted(RECIPES),
                   help="Burda et al. 2016, Table 1: iwae-vae (VAE, k = 1), iwae-vae-k5 (VAE, "
                        "k = 5), iwae-iwae-k5 (IWAE, k = 5)")
    p.add_argument("--binarization", choices=["dynamic", "fixed"], default="dynamic",
                   help="dynamic: MNIST redrawn every epoch, 60,000 images (Table 1, 86.76 nats); "
                        "fixed: Larochelle & Murray's binarized MNIST, 50,000 images (appendix D, "
                        "88.71)")
    p.add_argument("--stages", default="0-7", metavar="A-B",
                   help="run up to the end of stage B (stages before A must have run already)")
    p.add_argument("--out", type=Path, metavar="DIR",
                   help="the run's folder "
                        "(default: ~/.cache/tinyvae/runs/<recipe>-<binarization>)")
    p.add_argument("--resume", type=Path, metavar="CKPT",
                   help="a checkpoint.npz to continue from (default: --out's, if there is one)")
    p.add_argument("--seed", type=nonnegative_int, default=0, metavar="S", help="random seed")
    p.add_argument("--data-dir", type=Path, metavar="DIR", help=DATA_DIR_HELP)
    p.add_argument("--iw-samples", type=positive_int, metavar="K",
                   help="k of L_k (default: 5000, the paper's)")
    p.add_argument("--step", choices=["fast", "reference"], default="fast",
                   help="fast: tinyvae/speed/step.py; reference: tinyvae/train.py's (slower)")
    p.add_argument("--train-limit", type=positive_int, metavar="N",
                   help="only the first N training images (quick runs and tests)")
    p.add_argument("--test-limit", type=positive_int, metavar="N",
                   help="only the first N test images (quick runs and tests)")
    p.add_argument("--summary", type=Path, metavar="FILE",
                   help="write the completed stages' numbers of the run in --out to FILE (JSON) "
                        "and stop")
    p.add_argument("--plot", type=Path, metavar="FILE",
                   help="draw the run in --out (-ELBO per epoch, each stage's NLL and active "
                        "units, beside the paper's) to FILE, a .png, and stop; with --summary, "
                        "both")
    return p


def identity(args) -> dict:
    """What makes two invocations the same run (kept in the checkpoint, compared on resume):
    every flag that changes the run's bits or its numbers (recipes.IDENTITY_CHECKS)."""
    return {"recipe": args.recipe, "binarization": args.binarization, "seed": args.seed,
            "train_limit": args.train_limit, "test_limit": args.test_limit, "iw_k": args.iw_samples,
            "step": args.step}


def saved_identity(path: Path) -> tuple[object, dict]:
    """(the checkpoint at `path`, the run it holds: its checked extra["recipe"]); a checkpoint
    that is not a reproduction's, or not a valid one, is a UsageError."""
    try:
        ckpt = load_checkpoint(path)
        if "recipe" not in ckpt.extra:
            raise UsageError(f"{path} is not a reproduction's checkpoint (it keeps no recipe); "
                             "give another --out")
        return ckpt, check_identity(ckpt.extra["recipe"])
    except CheckpointError as exc:
        raise UsageError(str(exc)) from None
    except ValueError as exc:
        raise UsageError(f"{path} is not a valid reproduction checkpoint: {exc}") from None


def check_same_run(path: Path, saved: dict, args) -> None:
    """Refuse a checkpoint of another run, naming each flag that differs from what it recorded."""
    wanted = identity(args)
    if saved != wanted:
        flags = {"recipe": "RECIPE", "iw_k": "--iw-samples"}
        diffs = [f"{flags.get(key, '--' + key.replace('_', '-'))} {wanted[key]!r} "
                 f"(the run has {saved[key]!r})" for key in wanted if saved[key] != wanted[key]]
        raise UsageError(f"{path} is not this run: {', '.join(diffs)}; give the run's own "
                         "settings, or another --out for a new run")


def resolve(args, parser) -> tuple[object, int, int]:
    """(recipe, first stage, last stage); fills --out and --iw-samples (--resume is found
    under the folder's hold, in _run)."""
    recipe = RECIPES[args.recipe]
    try:
        first, last = parse_stages(args.stages, recipe)
    except ValueError as exc:
        parser.error(f"argument --stages: {exc}")
    if args.plot is not None and (args.plot.suffix.lower() != ".png" or args.plot.is_dir()
                                  or not args.plot.parent.is_dir()):
        parser.error(f"argument --plot: expected a file name ending in .png in an existing folder, "
                     f"got {str(args.plot)!r}")
    args.iw_samples = recipe.iw_k if args.iw_samples is None else args.iw_samples
    if args.out is None:
        args.out = (args.resume.parent if args.resume is not None
                    else user_cache_dir() / "runs" / f"{args.recipe}-{args.binarization}")
    return recipe, first, last


def check_resume(args, recipe, first: int) -> list[dict]:
    """Refuse a checkpoint of another run, or one that lacks the stages before `first`;
    return its history."""
    if args.resume is None:
        if first > 0:
            raise UsageError(f"--stages {args.stages}: no checkpoint in {args.out} holds stages "
                             f"0-{first - 1}; "
                                  f"start with --stages 0-{first - 1} or more")
        return []
    ckpt, saved = saved_identity(args.resume)
    check_same_run(args.resume, saved, args)
    done = len(ckpt.history)
    if first > 0 and done < recipe.stages[first - 1]["last_epoch"]:
        raise UsageError(f"--stages {args.stages}: {args.resume} has {done} epochs, stages "
                         f"before {first} "
                              f"end at epoch {recipe.stages[first - 1]['last_epoch']}")
    return ckpt.history


def run(args, recipe, first: int, last: int) -> int:
    # The run owns its folder from before it reads the checkpoint there until stages.json is
    # written: a second invocation on the same folder is refused at once, naming the process
    # that holds it, never interleaved (fit holds it again, re-entrantly).
    out = check_writable_folder(args.out)
    with runfolder.held(out):
        return _run(args, recipe, first, last, out)


def _run(args, recipe, first: int, last: int, out: Path) -> int:
    if args.resume is None and (out / CHECKPOINT_NAME).exists():
        args.resume = out / CHECKPOINT_NAME  # the same command again continues the run
    history = check_resume(args, recipe, first)
    done = len(history)
    x_train, x_test, binarize, described = load_data(recipe, args.binarization, args.data_dir,
                                                     train_limit=args.train_limit,
                                                     test_limit=args.test_limit)
    step, rng = build_step(recipe, x_train, args.seed, args.step)
    epochs = recipe.stages[last]["last_epoch"]
    cfg = recipe.config
    print(f"{args.recipe}: {cfg.input_dim}-{'-'.join(map(str, cfg.hidden_dims))}-{cfg.latent_dim} "
          f"{cfg.activation}, "
          f"{recipe.init} init, {step.optimizer!r}, batch {recipe.batch_size}, {recipe.dtype}, "
          f"seed {args.seed}")
    print(f"data: {described}: {len(x_train)} train, {len(x_test)} test images; "
          f"BLAS threads: {get_blas_threads()}")
    print(f"stages {first}-{last}: epochs {done + 1}-{epochs} of "
          f"{recipe.stages[-1]['last_epoch']}; "
          f"L_{args.iw_samples} at the end of each stage; run folder {shown(out)}/")
    sys.stdout.flush()
    timed = [h["eval_seconds"] for h in history if h.get("eval_seconds") is not None]
    evaluation = StageEvaluation(recipe, x_test, seed=args.seed, last_epoch=epochs, folder=out,
                                 params=step.params, iw_k=args.iw_samples, stream=sys.stdout,
                                 eval_seconds=timed[-1] if timed else None)
    history = fit(step, x_train, rng=rng, epochs=epochs, x_test=x_test,
                  batch_size=recipe.batch_size,
                  binarize=binarize, out_dir=out, resume=args.resume, eval_seed=args.seed,
                  extra={"recipe": identity(args)}, stream=sys.stdout,
                  lr_schedule=lr_schedule(recipe), evaluation=evaluation,
                  eta_extra=evaluation.eta_extra)
    rows = stage_summary(recipe, history)
    write_json(out / "stages.json", summary_document(args, recipe, rows))
    print_table(args, recipe, rows, len(history))
    return 0


def summary_document(args, recipe, rows: list[dict]) -> dict:
    variant = recipe.variants[args.binarization]
    return {"recipe": args.recipe, "binarization": args.binarization, "seed": args.seed,
            "paper": {"nll": variant.paper_nll, "active_units": variant.paper_active_units,
                      "source": variant.paper_source},
            "stages_in_recipe": len(recipe.stages), "complete": len(rows) == len(recipe.stages),
            "stages": rows}


def print_table(args, recipe, rows: list[dict], epochs_done: int) -> None:
    variant = recipe.variants[args.binarization]
    units = "active units not given" if variant.paper_active_units is None else \
        f"{variant.paper_active_units} active units"
    print(f"stage  epochs  wall clock  median epoch  evaluation  test ELBO  L_{args.iw_samples}  "
          f"NLL = -L  active units   (paper, all stages: NLL {variant.paper_nll}, {units})")
    for r in rows:
        print(f"{r['stage']:>5}  {r['last_epoch']:>6}  {r['seconds'] / 60:8.1f} m  "
              f"{r['median_epoch_seconds']:10.1f} s  {r['eval_seconds']:8.0f} s  "
              f"{r['test_elbo']:9.2f}  "
              f"{r['iw_bound']:8.2f}  {-r['iw_bound']:8.2f}  {r['active_units']:>12}")
    if len(rows) < len(recipe.stages):
        print(f"partial: {len(rows)} of {len(recipe.stages)} stages done; the run has trained "
              f"{epochs_done:,} of {recipe.stages[-1]['last_epoch']:,} epochs")


def report(args, recipe) -> int:
    """--summary FILE and/or --plot FILE.png: the run in --out, from its checkpoint's history.

    Reads only: a run that is training in that folder meanwhile is not disturbed (its
    checkpoint is replaced atomically after every epoch, so what is read is a whole one).
    """
    path = args.resume or args.out / CHECKPOINT_NAME
    if not path.is_file():
        raise UsageError(f"{path}: no such file; --summary and --plot read a run's checkpoint")
    ckpt, saved = saved_identity(path)
    check_same_run(path, {**saved, "step": args.step}, args)  # any step's run reads the same
    if args.plot is not None and not ckpt.history:
        raise UsageError(f"{path} holds no finished epoch yet: there is nothing to plot")
    rows = stage_summary(recipe, ckpt.history)
    if args.summary is not None:
        write_json(args.summary, summary_document(args, recipe, rows))
        if rows:
            print_table(args, recipe, rows, len(ckpt.history))
            print("as docs/06-results.md's table rows:")
            print("\n".join(markdown_rows(rows)))
        else:
            print(f"no stage of the run in {path.parent} is finished yet: "
                  f"{len(ckpt.history):,} of {recipe.stages[-1]['last_epoch']:,} epochs trained, "
                  f"and stage 0 ends with its evaluation after epoch "
                  f"{recipe.stages[0]['last_epoch']}")
        print(f"wrote {args.summary}" + ("" if rows else " (no stages in it yet)"))
    if args.plot is not None:
        variant = recipe.variants[args.binarization]
        plots.plot_reproduction(args.plot, ckpt.history, rows, paper_nll=variant.paper_nll,
                                paper_active_units=variant.paper_active_units,
                                stage_ends=[stage["last_epoch"] for stage in recipe.stages],
                                title=f"{args.recipe} ({args.binarization} binarization) "
                                      f"beside {variant.paper_source}")
        print(f"wrote {args.plot}: {len(ckpt.history)} epochs, "
              f"{len(rows)} of {len(recipe.stages)} stages")
    return 0


def main(argv: list[str] | None = None) -> int:
    """The command line; exit statuses: commands/status.py."""
    parser = build_parser()
    args = parser.parse_args(argv)
    recipe, first, last = resolve(args, parser)

    def body() -> int:
        if args.summary is not None or args.plot is not None:
            return report(args, recipe)
        try:
            with blas_threads(BLAS_THREADS):
                return run(args, recipe, first, last)
        except TrainingInterrupted as exc:
            print(f"{COMMAND}: {exc}", file=sys.stderr)
            if exc.checkpoint is not None:
                print(f"resume with the same command: {COMMAND} "
                      f"{' '.join(argv if argv is not None else sys.argv[1:])}", file=sys.stderr)
            return INTERRUPTED

    def interrupted() -> str:  # outside the epochs: loading the data, or the summary
        return (f"{COMMAND}: interrupted; nothing of the run was lost (its checkpoint, if any, "
                f"is in {args.out})")

    return run_command(COMMAND, body, interrupted)


if __name__ == "__main__":
    sys.exit(main())
