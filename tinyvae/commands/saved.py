"""What the command lines on a saved model share: the CKPT argument, loading, writing, and errors.

Each verb (evaluate, sample, reconstruct, figures, explore) is a `main(argv) -> int` built from
these: a missing or invalid CKPT, or another file argument that cannot be used, is one line on
stderr and exit status 2 (as argparse's own errors); a failure while working (a corrupt data
file, a full disk) is one line and status 1; Ctrl-C is status 130.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Callable

import numpy as np

from ..lab.datasets.readers import DataError
from ..lab.errors import UsageError
from ..lab.storage.checkpoint import CheckpointError
from ..lab.storage.files import OutputError, atomic_write
from ..lab.storage.model import Model, load
from ..lab.training import run_settings
from ..lab.training.progress import tolerant
from ..lab.training.run_settings import RunData
from .args import verb_parser

BESIDE = object()  # an output flag given without a file: the default file beside the checkpoint
DATA_DIR_HELP = ("a data root holding <dataset>/ folders, used alone "
                 "(default: $TINYVAE_DATA, then ~/.cache/tinyvae)")


def parser(verb: str, description: str, *, data: bool = False) -> argparse.ArgumentParser:
    """A verb's parser with the CKPT argument (and --data-dir for verbs that read the test set)."""
    p = verb_parser(verb, description)
    p.add_argument("checkpoint", type=Path, metavar="CKPT",
                   help="a training run's checkpoint.npz (its settings are used) or a model file "
                        "(Model.save)")
    if data:
        p.add_argument("--data-dir", type=Path, metavar="DIR", help=DATA_DIR_HELP)
    return p


def load_model(path: Path) -> Model:
    """tinyvae.load(path), with a missing or invalid file refused as a usage error."""
    if not path.exists():
        raise UsageError(f"CKPT {path}: no such file (give a run's checkpoint.npz or a model file)")
    try:
        return load(path)
    except CheckpointError as exc:
        raise UsageError(str(exc)) from None


def check_data_dir(path: Path | None) -> Path | None:
    """An explicit --data-dir must exist: it is used alone, never silently replaced by another."""
    if path is not None and not path.is_dir():
        what = "is not a folder" if path.exists() else "does not exist"
        raise UsageError(f"--data-dir {path} {what} (leave it out to use $TINYVAE_DATA or ~/.cache/tinyvae)")
    return path


def check_output(path: Path | None, suffix: str, flag: str) -> Path | None:
    """Refuse an output path of the wrong kind or in a missing folder before any work is done."""
    if path is None:
        return None
    if path.suffix.lower() != suffix:
        raise UsageError(f"{flag} {path}: expected a file name ending in {suffix}")
    if not path.parent.is_dir():
        raise UsageError(f"{flag} {path}: the folder {path.parent} does not exist")
    return path


def model_and_test_set(args, output: Path | None, suffix: str, flag: str, *,
                       test_seed: int | None = None) -> tuple[Model, Path | None, RunData]:
    """(model, output, test data): the prologue of the verbs that look at a model on its run's test set.

    The arguments are checked first (--data-dir, then the output file `flag`), so a bad one
    costs nothing; then the model is loaded, then its run's test set, as the run read it
    (run_settings.load_run_data: .x_test, .described), with the test draw of `test_seed` if given.
    """
    check_data_dir(args.data_dir)
    output = check_output(output, suffix, flag)
    model = load_model(args.checkpoint)
    settings = model.run_protocol()
    if test_seed is not None:
        try:
            run_settings.check_test_seed(settings)
        except ValueError as exc:  # a test seed for a test set that is not a draw
            raise UsageError(f"--test-binarization-seed: {exc}") from None
    return model, output, run_settings.load_run_data(settings, args.data_dir, test_only=True, test_seed=test_seed)


def beside(model_path: Path, name: str) -> Path:
    """A default output file next to the checkpoint (in the run's folder)."""
    return model_path.parent / name


def write_npz(path: Path, **arrays: np.ndarray) -> Path:
    """Plain arrays in an .npz (readable with allow_pickle=False), written atomically."""
    plain = {key: np.asarray(value) for key, value in arrays.items()}
    return atomic_write(path, lambda f: np.savez(f, **plain))


def describe(model: Model) -> str:
    c = model.config
    sizes = "-".join(map(str, (c.input_dim, *c.hidden_dims, c.latent_dim)))
    trained = f", {model.epochs} epochs" if model.settings is not None else " (a model file: default protocol)"
    return f"model: {sizes} {c.activation}, {c.likelihood} likelihood, β = {c.beta:g}{trained}"


def run_verb(prog: str, body: Callable[[Callable[[str], None]], int]) -> int:
    """Run body(say) with the verbs' error handling; say(text) prints a line to stdout, and a
    closed stdout (`... | head -3`) only silences it."""
    out = tolerant(sys.stdout)

    def say(text: str) -> None:
        out.write(text + "\n")
        out.flush()
    say.stream = out

    try:
        return body(say)
    except UsageError as exc:
        print(f"{prog}: error: {exc}", file=sys.stderr)
        return 2
    except (DataError, OutputError, OSError) as exc:
        print(f"{prog}: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"{os.linesep if sys.stderr.isatty() else ''}{prog}: interrupted", file=sys.stderr)
        return 130
