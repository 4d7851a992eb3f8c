"""Checkpoints: everything a run needs to continue exactly where it stopped, in one .npz file.

A checkpoint holds the parameters, the optimizer's memory, the model config, the number of
finished epochs, the history of those epochs and the state of the random generator. Restoring
all of them makes a resumed run the same run: the next epoch shuffles, binarizes and draws ε
from the very same random stream, and Adam takes the very same steps, so the final parameters
agree bit for bit with a run that was never interrupted.

Layout of the .npz (plain arrays only; it is always read with ``allow_pickle=False``):

    format_version   0-d int64            FORMAT_VERSION
    epoch            0-d int64            finished epochs
    config           0-d str, JSON        VAEConfig.to_dict()
    history          0-d str, JSON        one dict per finished epoch (see lab/training/runner.py)
    rng_state        0-d str, JSON        Generator.bit_generator.state (PCG64's 128-bit integers
                                          are plain JSON integers; Python's json keeps them exact)
    optimizer        0-d str, JSON        optimizer.hparams(): its name, lr, ...
    extra            0-d str, JSON        anything else the caller wants kept (training settings)
    param/<key>      the parameter arrays, keys as in param_shapes
    optim/<key>      optimizer.state_dict(): "optim/step", "optim/m/encoder.W0", ...

Saving is atomic (files.py): a process killed at any moment leaves the old checkpoint or the
new one, never half of one. Loading checks everything before returning anything and refuses a
bad file with a CheckpointError that names the file and what is wrong with it: the zip's claims
before anything is read (npz.py: a regular file, few members, no name twice, nothing compressed,
no member larger than the file's own config allows), then the values (state_checks.py: a random
state numpy can take, an optimizer memory a real run could have, a history of finite numbers).
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ...config import VAEConfig, param_shapes
from ...optim import Optimizer, make_optimizer
from .files import OutputError, atomic_write
from .npz import NpzArchive
from .optimizer_state import load_checked
from .state_checks import check_history_entries, check_optimizer_values, restore_rng

FORMAT_VERSION = 1
_JSON_FIELDS = ("config", "history", "rng_state", "optimizer", "extra")
_REQUIRED = ("format_version", "epoch", *_JSON_FIELDS)
_TOP_LEVEL = (*_REQUIRED, "kind")  # "kind": a model file (model.py)
_PARAM_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))
MAX_JSON_BYTES = 64 * 2**20  # a 0-d unicode array takes 4 bytes a character: 16 M characters
_NPY_HEADER_BYTES = 4096  # an .npy header is padded to 64 bytes; any real one fits in this


class CheckpointError(OutputError):
    """A checkpoint could not be saved, or a file is not a valid checkpoint; names the file."""


@dataclass
class Checkpoint:
    """What load_checkpoint returns: the saved state, checked and ready to use. ``optimizer`` is
    a fresh optimizer of the saved kind with its state restored, ``rng`` a Generator in the saved
    state; ``params`` are new arrays (copy them into a model's arrays or use them directly)."""

    path: Path
    config: VAEConfig
    params: dict[str, np.ndarray]
    optimizer: Optimizer
    rng: np.random.Generator
    epoch: int
    history: list[dict]
    extra: dict = field(default_factory=dict)


def json_array(obj) -> np.ndarray:
    """A JSON document as a 0-d unicode array: a plain array, no pickle needed to read it back."""
    return np.array(json.dumps(obj, allow_nan=False, default=_to_json))


def _to_json(obj):
    if isinstance(obj, np.ndarray):  # e.g. MT19937's key in a bit generator state
        return obj.tolist()
    if isinstance(obj, np.generic):
        return obj.item()
    raise TypeError(f"{type(obj).__name__} is not JSON serializable")


def save_checkpoint(path: str | os.PathLike, *, params: Mapping[str, np.ndarray],
                    optimizer: Optimizer, config: VAEConfig, epoch: int, history: list[dict],
                    rng: np.random.Generator, extra: dict | None = None) -> Path:
    """Save the state of a run after ``epoch`` finished epochs, atomically (files.atomic_write).

    Parameters that are NaN or infinite are refused: a diverged model must never replace the
    last good checkpoint. That and a failed write (the file, the reason) raise CheckpointError.
    """
    for key, arr in params.items():
        if not np.all(np.isfinite(arr)):
            raise CheckpointError(f"not saving {path}: parameter {key!r} contains NaN or inf")
    arrays = {
        "format_version": np.array(FORMAT_VERSION, dtype=np.int64),
        "epoch": np.array(int(epoch), dtype=np.int64),
        "config": json_array(config.to_dict()),
        "history": json_array(list(history)),
        "rng_state": json_array(rng.bit_generator.state),
        "optimizer": json_array(optimizer.hparams()),
        "extra": json_array(extra or {}),
    }
    arrays.update({f"param/{key}": np.asarray(arr) for key, arr in params.items()})
    arrays.update({f"optim/{key}": arr for key, arr in optimizer.state_dict().items()})
    try:
        return atomic_write(path, lambda f: np.savez(f, **arrays))
    except OutputError as exc:  # same message; chained to the OSError that caused it
        raise CheckpointError(str(exc)) from exc.__cause__


def load_checkpoint(path: str | os.PathLike, config: VAEConfig | None = None, *,
                    dtype=None) -> Checkpoint:
    """Read and check a checkpoint; refuse anything that is not exactly what save_checkpoint wrote.

    ``config``: the model the caller wants; a checkpoint of another model is refused with the
    fields that differ. ``dtype``: if given, the parameters must have it (float32 or float64).
    Raises CheckpointError naming the file and the key, shape, dtype or field that is wrong.
    """
    path = Path(path)
    arrays = read_npz(path)

    def fail(what: str):
        raise CheckpointError(f"{path} is not a valid tinyvae checkpoint: {what}")

    missing = [key for key in _REQUIRED if key not in arrays]
    if missing:
        fail(f"missing key(s) {missing}")
    version = int_scalar(arrays["format_version"], "format_version", fail)
    if version != FORMAT_VERSION:
        fail(f"format_version is {version}; this tinyvae reads version {FORMAT_VERSION}")
    epoch = int_scalar(arrays["epoch"], "epoch", fail)
    doc = {key: json_scalar(arrays[key], key, fail) for key in _JSON_FIELDS}
    saved_config = saved_config_of(doc["config"], config, path, fail)
    params = checked_params(arrays, saved_config, dtype, fail)
    optimizer = _restore_optimizer(doc["optimizer"], arrays, params, fail)
    rng = restore_rng(doc["rng_state"], fail)
    _check_history_and_extra(arrays, doc, epoch, fail)
    return Checkpoint(path=path, config=saved_config, params=params, optimizer=optimizer, rng=rng,
                      epoch=epoch, history=doc["history"], extra=doc["extra"])


def saved_config_of(saved: object, wanted: VAEConfig | None, path: Path, fail) -> VAEConfig:
    """The model the checkpoint was trained for, refused if it is not the model asked for."""
    if not isinstance(saved, dict):
        fail("'config' is not a JSON object")
    try:
        saved_config = VAEConfig.from_dict(saved)
    except (ValueError, TypeError) as exc:
        fail(f"'config': {exc}")
    if wanted is not None and wanted != saved_config:
        mine, theirs = wanted.to_dict(), saved_config.to_dict()
        diffs = [f"{name}: checkpoint has {theirs[name]!r}, requested {mine[name]!r}"
                 for name in mine if mine[name] != theirs.get(name)]
        raise CheckpointError(f"{path} was saved for a different model ({'; '.join(diffs)})")
    return saved_config


def _restore_optimizer(hparams: object, arrays: dict,
                       params: dict[str, np.ndarray], fail) -> Optimizer:
    """A fresh optimizer from its hyperparameters; load_state_dict checks keys, shapes, dtypes."""
    if not isinstance(hparams, dict) or "name" not in hparams:
        fail("'optimizer' must be a JSON object with the optimizer's 'name'")
    try:
        optimizer = make_optimizer(**hparams)
        state = {key[len("optim/"):]: arr for key, arr in arrays.items()
                 if key.startswith("optim/")}
        load_optimizer_state(optimizer, state, params)
    except (ValueError, TypeError) as exc:
        fail(f"optimizer state: {exc}")
    check_optimizer_values(optimizer, fail)
    return optimizer


def _check_history_and_extra(arrays: dict[str, np.ndarray], doc: dict, epoch: int, fail) -> None:
    """One history entry per finished epoch, 'extra' an object, and no keys nobody wrote."""
    history = doc["history"]
    if not isinstance(history, list) or not all(isinstance(h, dict) for h in history):
        fail("'history' must be a JSON list of per-epoch objects")
    if len(history) != epoch:
        fail(f"'history' has {len(history)} entries but 'epoch' is {epoch}")
    check_history_entries(history, fail)
    if not isinstance(doc["extra"], dict):
        fail("'extra' must be a JSON object")
    unexpected = [key for key in arrays if key not in _REQUIRED
                  and not key.startswith(("param/", "optim/"))]
    if unexpected:
        fail(f"unexpected key(s) {unexpected}")


def load_optimizer_state(optimizer: Optimizer, state: Mapping[str, np.ndarray],
                         params: Mapping[str, np.ndarray]) -> None:
    """optimizer.load_state_dict, checked against params, including the state of an optimizer
    that has not stepped yet ({"step": 0} and no arrays: a checkpoint saved before the first
    epoch), which fits any params."""
    load_checked(optimizer, state, params if set(state) != {"step"} else None)


def read_npz(path: Path) -> dict[str, np.ndarray]:
    """All arrays of a checkpoint or model file, each size checked before it is read (npz.py):
    the JSON and scalar members within fixed caps, and the parameter and optimizer arrays within
    what the file's own config needs, so nothing larger than the model is ever allocated."""
    with NpzArchive(path, CheckpointError) as npz:
        unexpected = [key for key in npz.members if key not in _TOP_LEVEL
                      and not key.startswith(("param/", "optim/"))]
        if unexpected:
            raise CheckpointError(f"{path} is not a valid tinyvae checkpoint: "
                                  f"unexpected key(s) {unexpected}")
        if "config" not in npz.members:
            raise CheckpointError(f"{path} is not a valid tinyvae checkpoint: "
                                  "missing key(s) ['config']")
        config = npz.read("config", MAX_JSON_BYTES)
        limits = _member_limits(path, config, npz.members)
        arrays = {key: (config if key == "config" else npz.read(key, limits[key]))
                  for key in npz.members}
    return arrays


def _member_limits(path: Path, config: np.ndarray, keys) -> dict[str, int]:
    """The most bytes each member may declare: fixed caps for the JSON and scalar members,
    and for param/<key> and optim/<slot>/<key> the float64 size of that parameter in the config."""
    def fail(what: str):
        raise CheckpointError(f"{path} is not a valid tinyvae checkpoint: {what}")
    shapes = param_shapes(saved_config_of(json_scalar(config, "config", fail), None, path, fail))
    limits = {}
    for key in keys:
        parameter = (key.removeprefix("param/") if key.startswith("param/")
                     else key.partition("/")[2].partition("/")[2])
        if key in _JSON_FIELDS:
            limits[key] = MAX_JSON_BYTES
        elif parameter in shapes:
            limits[key] = _NPY_HEADER_BYTES + 8 * math.prod(shapes[parameter])
        elif key.startswith("param/"):
            fail(f"'{key}' is not a parameter of the config's model")
        else:  # format_version, epoch, kind, optim/step: scalars
            limits[key] = _NPY_HEADER_BYTES + 64  # an unknown optim/... key is named later
    return limits


def int_scalar(arr: np.ndarray, key: str, fail) -> int:
    if arr.shape != () or not np.issubdtype(arr.dtype, np.integer) or int(arr) < 0:
        fail(f"{key!r} must be a non-negative integer scalar, "
             f"got shape {arr.shape} dtype {arr.dtype}")
    return int(arr)


def json_scalar(arr: np.ndarray, key: str, fail):
    if arr.shape != () or arr.dtype.kind != "U":
        fail(f"{key!r} must be a JSON string (0-d unicode array), "
             f"got shape {arr.shape} dtype {arr.dtype}")
    try:  # NaN and Infinity are not JSON (save_checkpoint never writes them)
        return json.loads(str(arr), parse_constant=_no_constant)
    except ValueError as exc:
        fail(f"{key!r} is not valid JSON: {exc}")
    except RecursionError:
        fail(f"{key!r} is JSON nested too deeply to be anything tinyvae wrote")


def _no_constant(name: str):
    raise ValueError(f"{name} is not a JSON number")


def checked_params(arrays, config: VAEConfig, dtype, fail) -> dict[str, np.ndarray]:
    expected = param_shapes(config)
    found = {key[len("param/"):]: arr for key, arr in arrays.items() if key.startswith("param/")}
    missing = [key for key in expected if key not in found]
    extra = [key for key in found if key not in expected]
    if missing or extra:
        fail(f"parameters do not match the config: missing {['param/' + k for k in missing]}, "
             f"unexpected {['param/' + k for k in extra]}")
    want = None if dtype is None else np.dtype(dtype)
    first = found[next(iter(expected))].dtype
    params = {}
    for key, shape in expected.items():
        arr = found[key]
        if arr.shape != shape:
            fail(f"'param/{key}' has shape {arr.shape}, the config needs {shape}")
        if arr.dtype not in _PARAM_DTYPES:
            fail(f"'param/{key}' has dtype {arr.dtype}; parameters are float32 or float64")
        if want is not None and arr.dtype != want:
            fail(f"'param/{key}' has dtype {arr.dtype}, requested {want}")
        if arr.dtype != first:
            fail(f"'param/{key}' has dtype {arr.dtype} but other parameters have {first}")
        if not np.all(np.isfinite(arr)):
            fail(f"'param/{key}' contains NaN or inf")
        params[key] = arr
    return params
