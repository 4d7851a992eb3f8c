"""What the command lines on a saved model share: the CKPT argument, loading, writing, and errors.

Each verb (evaluate, sample, reconstruct, figures, explore) is a `main(argv) -> int` built from
these, with the exit statuses of status.py: a missing or invalid CKPT, or another file argument
that cannot be used, is one line on stderr and exit status 2 (as argparse's own errors); a
failure while working (a corrupt data file, a full disk) is one line and status 1; Ctrl-C,
SIGTERM and SIGHUP are status 130.
"""

from __future__ import annotations

import argparse
import math
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np

from .. import evaluate, vae
from ..lab.errors import ResultError, UsageError
from ..lab.storage.checkpoint import CheckpointError
from ..lab.storage.files import atomic_write
from ..lab.storage.model import Model, load
from ..lab.storage.targets import output_kind
from ..lab.training import run_settings
from ..lab.training.progress import tolerant
from ..lab.training.run_settings import RunData
from .args import verb_parser
from .status import run_command

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
        raise UsageError(f"--data-dir {path} {what} "
                         "(leave it out to use $TINYVAE_DATA or ~/.cache/tinyvae)")
    return path


def check_output(path: Path | None, suffix: str, flag: str) -> Path | None:
    """Refuse an output path of the wrong kind or in a missing folder before any work is done.
    A stream (/dev/stdout, a FIFO: targets.output_kind) is taken whatever its name."""
    if path is None:
        return None
    kind = output_kind(path)
    if kind == "other":
        raise UsageError(f"{flag} {path}: not a file to write (a folder, a socket or a block "
                         "device)")
    if kind == "file" and path.suffix.lower() != suffix:
        raise UsageError(f"{flag} {path}: expected a file name ending in {suffix}")
    if not path.parent.is_dir():
        raise UsageError(f"{flag} {path}: the folder {path.parent} does not exist")
    return path


def check_drawable(model: Model, flag: str) -> None:
    """Images are drawn as squares: a model of another number of pixels is refused before any
    work."""
    D = model.config.input_dim
    if math.isqrt(D) ** 2 != D:
        raise UsageError(f"{flag}: this model's images have {D} pixels, not a square number, so "
                         "they cannot be drawn (write them with --npz instead)")


def test_set(model: Model, data_dir: Path | None, test_seed: int | None = None) -> RunData:
    """The model's test set as its run read it (run_settings.load_run_data: .x_test,
    .described), with the test draw of `test_seed` if given; a model of another image size
    than that test set is refused in one line."""
    settings = model.run_protocol()
    if test_seed is not None:
        try:
            run_settings.check_test_seed(settings)
        except ValueError as exc:  # a test seed for a test set that is not a draw
            raise UsageError(f"--test-binarization-seed: {exc}") from None
    data = run_settings.load_run_data(settings, data_dir, test_only=True, test_seed=test_seed)
    if data.x_test.shape[1] != model.config.input_dim:
        raise UsageError(f"CKPT: this model takes images of {model.config.input_dim} pixels, but "
                         f"its test set ({run_settings.dataset_of(settings)}) has "
                         f"{data.x_test.shape[1]}: it was not trained on these images")
    return data


def model_and_test_set(args, output: Path | None, suffix: str, flag: str, *,
                       test_seed: int | None = None) -> tuple[Model, Path | None, RunData]:
    """(model, output, test data): the prologue of the verbs that look at a model on its run's
    test set.

    The arguments are checked first (--data-dir, then the output file `flag`), so a bad one
    costs nothing; then the model is loaded, then its run's test set (test_set).
    """
    check_data_dir(args.data_dir)
    output = check_output(output, suffix, flag)
    model = load_model(args.checkpoint)
    return model, output, test_set(model, args.data_dir, test_seed)


def check_numbers(model: Model, x: np.ndarray) -> np.ndarray:
    """The KL of each latent dimension on the images x (B, D), once the model's codes, their KL
    and the decoding of the codes are checked to be numbers (finite) there: the figures of a
    model that overflows would be drawn from NaN."""
    mu, log_var = vae.encode(model.params, x, model.config)  # (B, Z) each
    kl_per_dim = evaluate.kl_per_dimension(model.params, x, model.config)  # (Z,)
    finite("this model's codes of the test images, their KL or their decoding", mu, log_var,
           kl_per_dim, vae.decode(model.params, mu[:16], model.config))
    return kl_per_dim


def finite(what: str, *arrays) -> None:
    """A ResultError (exit status 1) if any of `arrays` holds NaN or inf: a model whose weights,
    however finite, overflow its arithmetic has no number or image to show."""
    if not all(np.all(np.isfinite(a)) for a in arrays):
        raise ResultError(f"{what} came out NaN or infinite: this model's weights overflow its "
                          "arithmetic")


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
    trained = (f", {model.epochs} epochs" if model.settings is not None
               else " (a model file: default protocol)")
    return f"model: {sizes} {c.activation}, {c.likelihood} likelihood, β = {c.beta:g}{trained}"


def run_verb(prog: str, body: Callable[[Callable[[str], None]], int]) -> int:
    """Run body(say) under the commands' exit statuses (status.py); say(text) prints a line to
    stdout, and a closed stdout (`... | head -3`) only silences it."""
    out = tolerant(sys.stdout)

    def say(text: str) -> None:
        out.write(text + "\n")
        out.flush()
    say.stream = out

    def work() -> int:
        # A number that overflows is judged where it is used (finite, ResultError), in one line,
        # not by a page of numpy's warnings first.
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
            return body(say)

    return run_command(prog, work)
