"""Datasets, loaded honestly: MNIST, Fashion-MNIST and the fixed binarized MNIST.

Every file, found on disk or downloaded, is read by readers.py (IDX or .amat, plain or gzip)
and verified by the SHA-256 of its *uncompressed* content against the FILES table. A bad file
raises DataError naming the file; missing files that cannot be downloaded, DatasetNotFound.

Where files are looked for (``default_data_dirs``): the ``data_dir`` argument, the
``TINYVAE_DATA`` environment variable, the per-user cache ``$XDG_CACHE_HOME/tinyvae`` (or
``~/.cache/tinyvae``), and for Fashion-MNIST Debian's ``/usr/share/datasets/fashion-mnist/``.
Each of the first three is a data root holding one folder per dataset (``mnist/``,
``fashion-mnist/``, ``binarized-mnist/``). Missing files are downloaded into
``data_dir/<name>/`` if ``data_dir`` is given, else into the cache (see download.py).

Binarization protocols for a Bernoulli likelihood
-------------------------------------------------
- dynamic (Burda et al., 2016): every pixel is redrawn as Bernoulli(intensity) each time the
  image is served, so the model sees a fresh binary sample every epoch (``minibatches``).
- fixed (Larochelle & Murray, 2011): one binarization drawn once and kept; ``binarized-mnist``
  is the published one, and ``fixed_binarization`` draws one for any dataset.
- none: grayscale intensities in [0, 1], as PyTorch's VAE example uses.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import numpy as np

from .download import DEFAULT_TIMEOUT, DownloadError, fetch
from .readers import D, DataError, read_verified, uncompressed_sha256
from .._checks import lookup, positive_int


class DatasetNotFound(DataError):
    """Files of a dataset are absent and could not be downloaded; says where to put them."""


# ---- the datasets -----------------------------------------------------------------------

class DataFile(NamedTuple):
    name: str  # file name on disk, uncompressed; "<name>.gz" is accepted as well
    sha256: str  # SHA-256 of the uncompressed content
    remote: str  # file name on the mirrors


def _idx_files(sums: dict[str, str]) -> dict[str, DataFile]:
    roles = {"train_images": "train-images-idx3-ubyte", "train_labels": "train-labels-idx1-ubyte",
             "test_images": "t10k-images-idx3-ubyte", "test_labels": "t10k-labels-idx1-ubyte"}
    return {role: DataFile(name, sums[name], name + ".gz") for role, name in roles.items()}


# Facts copied from the SHA256SUMS.uncompressed files of the shared data folder.
FILES: dict[str, dict[str, DataFile]] = {
    "mnist": _idx_files({
        "train-images-idx3-ubyte": "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
        "train-labels-idx1-ubyte": "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
        "t10k-images-idx3-ubyte": "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
        "t10k-labels-idx1-ubyte": "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2"}),
    "fashion-mnist": _idx_files({
        "train-images-idx3-ubyte": "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888",
        "train-labels-idx1-ubyte": "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9",
        "t10k-images-idx3-ubyte": "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b",
        "t10k-labels-idx1-ubyte": "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34"}),
    "binarized-mnist": {
        split: DataFile(f"binarized_mnist_{split}.amat", sha, f"binarized_mnist_{split}.amat")
        for split, sha in {
            "train": "ad693b29f94c14277b095f5238ddefbbdaaae0939789dd2f4f0205278cee3e4d",
            "valid": "1de3d397c40fe8eeb33dafd4099a1f665ec01e96d9be234aaeeac8a34930e2e2",
            "test": "e6687bfea3f820c174f33b7865140b2a2dd2930ef786f35d45795fc193b5ab2c"}.items()},
}

MIRRORS: dict[str, tuple[str, ...]] = {
    "mnist": ("https://ossci-datasets.s3.amazonaws.com/mnist/",
              "https://storage.googleapis.com/cvdf-datasets/mnist/"),
    "fashion-mnist": ("http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",),
    "binarized-mnist": ("http://www.cs.toronto.edu/~larocheh/public/datasets/binarized_mnist/",),
}

# System-wide folders holding a dataset's files directly (no per-dataset subfolder).
SYSTEM_DIRS: dict[str, Path] = {"fashion-mnist": Path("/usr/share/datasets/fashion-mnist")}


@dataclass(frozen=True, eq=False)  # eq=False: arrays have no single truth value to compare
class Dataset:
    """Images as float32 (N, 784) in [0, 1]; labels int64 (N,), or None where there are none."""
    name: str
    x_train: np.ndarray
    y_train: np.ndarray | None
    x_test: np.ndarray
    y_test: np.ndarray | None
    x_valid: np.ndarray | None = None  # binarized-mnist's published 10,000-image validation split


def user_cache_dir() -> Path:
    """``$XDG_CACHE_HOME/tinyvae``, or ``~/.cache/tinyvae`` (a relative XDG path is ignored)."""
    xdg = os.environ.get("XDG_CACHE_HOME", "")
    base = Path(xdg) if os.path.isabs(xdg) else Path.home() / ".cache"
    return base / "tinyvae"


def default_data_dirs(name: str, data_dir: str | os.PathLike | None = None) -> list[Path]:
    """The folders searched for dataset ``name``, in order (see the module docstring)."""
    lookup(FILES, name, "dataset")
    roots = [Path(data_dir)] if data_dir is not None else []
    if os.environ.get("TINYVAE_DATA"):
        roots.append(Path(os.environ["TINYVAE_DATA"]))
    roots.append(user_cache_dir())
    dirs = [root / name for root in roots]
    if name in SYSTEM_DIRS:
        dirs.append(SYSTEM_DIRS[name])
    return dirs


def _find(file: DataFile, dirs: list[Path]) -> Path | None:
    """The first of ``dirs`` holding the file, plain or .gz; None if none does."""
    for folder in dirs:
        for candidate in (folder / file.name, folder / (file.name + ".gz")):
            if os.path.lexists(candidate):  # a broken link or a folder is reported, not skipped
                return candidate
    return None


def _verifier(file: DataFile):
    """The check a download of ``file`` must pass before it is renamed into place."""
    def verify(path: Path) -> None:
        actual = uncompressed_sha256(path, label=f"downloaded {file.remote}")
        if actual != file.sha256:
            raise DataError(f"downloaded {file.remote}: checksum mismatch: SHA-256 of the "
                            f"uncompressed content is {actual}, expected {file.sha256}")
    return verify


def _locate(name: str, data_dir, download: bool, mirrors, timeout: float) -> dict[str, Path]:
    """Find (or download) every file of dataset ``name``; DatasetNotFound if some stay missing."""
    dirs = default_data_dirs(name, data_dir)
    found = {role: _find(file, dirs) for role, file in FILES[name].items()}
    target = (Path(data_dir) if data_dir is not None else user_cache_dir()) / name
    bases = MIRRORS.get(name, ()) if mirrors is None else mirrors
    failures = _download_missing(name, found, target, bases, timeout) if download else []
    missing = [FILES[name][role].name for role, path in found.items() if path is None]
    if missing:
        how = ("Downloading failed:\n" + "\n".join(failures)) if download else \
            "Downloading is disabled (download=False)."
        raise DatasetNotFound(
            f"dataset {name!r}: missing {', '.join(missing)} (plain or .gz).\n"
            f"Looked in:\n" + "".join(f"  {d}\n" for d in dirs) + how + "\n"
            f"To fix: copy the files into {target}/, or into <root>/{name}/ and set "
            f"TINYVAE_DATA=<root> (or give --data-dir <root> to the examples, data_dir=<root> to load_dataset), or retry when online.")
    return found


def _download_missing(name: str, found: dict, target: Path, bases: tuple, timeout: float) -> list[str]:
    """Download into ``target`` each file ``found`` lacks, filling it in; return the failures.

    After one file failed on every mirror, the next would most likely fail the same way: stop,
    rather than make an offline user wait for every timeout of every file."""
    for role, file in FILES[name].items():
        if found[role] is not None:
            continue
        urls = [base.rstrip("/") + "/" + file.remote for base in bases]
        try:
            found[role] = fetch(urls, target / file.remote, verify=_verifier(file), timeout=timeout)
        except DownloadError as error:
            return [f"  {url}: {reason}" for url, reason in error.failures] or \
                [f"  no download mirrors are known for {name!r}"]
        except OSError as error:  # the target folder cannot be created or written
            return [f"  {target}: {error}"]
    return []


def _images(array: np.ndarray, path: Path) -> np.ndarray:
    if array.ndim != 3 or array.shape[1:] != (28, 28):
        raise DataError(f"{path}: expected images of shape (N, 28, 28), got {array.shape}")
    return (array.reshape(len(array), D) / np.float32(255)).astype(np.float32, copy=False)


def _labels(array: np.ndarray, path: Path, n_images: int) -> np.ndarray:
    if array.shape != (n_images,):
        raise DataError(f"{path}: expected {n_images} labels, got shape {array.shape}")
    return array.astype(np.int64)


def load_dataset(name: str, data_dir: str | os.PathLike | None = None, download: bool = True, *,
                 mirrors: tuple[str, ...] | None = None, timeout: float = DEFAULT_TIMEOUT) -> Dataset:
    """Load ``"mnist"``, ``"fashion-mnist"`` or ``"binarized-mnist"``, verifying every file.

    ``mirrors`` overrides MIRRORS[name] (base URLs); ``timeout`` is the per-socket-wait limit
    in seconds. Raises DatasetNotFound for missing files, DataError for bad ones.
    """
    files = lookup(FILES, name, "dataset")  # an unknown name is refused, with the known ones listed
    paths = _locate(name, data_dir, download, mirrors, timeout)
    arrays = {role: read_verified(path, files[role].name, files[role].sha256) for role, path in paths.items()}
    if name == "binarized-mnist":
        x = {split: arrays[split].astype(np.float32) for split in ("train", "valid", "test")}
        return Dataset(name, x["train"], None, x["test"], None, x_valid=x["valid"])
    x_train = _images(arrays["train_images"], paths["train_images"])
    x_test = _images(arrays["test_images"], paths["test_images"])
    return Dataset(name, x_train, _labels(arrays["train_labels"], paths["train_labels"], len(x_train)),
                   x_test, _labels(arrays["test_labels"], paths["test_labels"], len(x_test)))


# ---- binarization and minibatches -------------------------------------------------------

def _check_intensities(x: np.ndarray, what: str) -> None:
    if not isinstance(x, np.ndarray) or x.dtype not in (np.float32, np.float64):
        raise ValueError(f"{what}: expected a float32 or float64 array, got "
                         f"{getattr(x, 'dtype', type(x).__name__)}")
    # Written as "not (inside)" so that NaN, which fails every comparison, is refused too.
    if x.size and not (x.min() >= 0 and x.max() <= 1):
        raise ValueError(f"{what}: pixel intensities must lie in [0, 1] (and not be NaN), "
                         f"got min {x.min()}, max {x.max()}")


def _check_out(out, x: np.ndarray, what: str) -> None:
    """Refuse an `out` that cannot hold a binary draw of x, or that would overwrite x."""
    if not isinstance(out, np.ndarray):
        raise ValueError(f"{what}: expected a NumPy array, got {type(out).__name__}")
    if out.shape != x.shape or out.dtype != x.dtype:
        raise ValueError(f"{what}: expected x's shape {x.shape} and dtype {x.dtype}, "
                         f"got shape {out.shape} and dtype {out.dtype}")
    if not out.flags.c_contiguous:
        raise ValueError(f"{what}: expected a C-contiguous array (np.empty(x.shape, x.dtype) is one), "
                         f"got a strided or Fortran-ordered one")
    if not out.flags.writeable:
        raise ValueError(f"{what}: expected a writeable array, got a read-only one")
    if np.shares_memory(out, x):
        raise ValueError(f"{what}: must not share memory with x (the draw would overwrite the images)")


def binarize_dynamic(x: np.ndarray, rng: np.random.Generator, *, out: np.ndarray | None = None) -> np.ndarray:
    """A fresh Bernoulli draw of every pixel: 1 with probability x, else 0; same dtype as x.

    `out` (C-contiguous, x's shape and dtype, not x itself) receives the draw instead of a new
    array; the numbers are the same. A training loop keeps one for every epoch: a new 188 MB
    array each epoch is mapped and zeroed by the kernel again, which costs several times the
    draw itself (docs/06-results.md, section 4, has the measurement).
    """
    _check_intensities(x, "binarize_dynamic x")
    if not isinstance(rng, np.random.Generator):
        raise ValueError(f"binarize_dynamic rng: expected a numpy.random.Generator, got {type(rng).__name__}")
    if out is None:
        u = rng.random(x.shape, dtype=x.dtype)  # uniform in [0, 1), so P(u < x) = x exactly
    else:
        _check_out(out, x, "binarize_dynamic out")
        u = rng.random(dtype=x.dtype, out=out)  # the same numbers as a new array would get
    return np.less(u, x, out=u)  # the comparison is written into u: one array of x's size


def fixed_binarization(x: np.ndarray, seed: int = 0) -> np.ndarray:
    """One Bernoulli draw with its own Generator(seed), kept for every epoch (fixed protocol)."""
    return binarize_dynamic(x, np.random.default_rng(seed))


def binarization_buffer(x: np.ndarray, binarize: str) -> np.ndarray | None:
    """The array to keep for a run's dynamic binarization (the `out` of minibatches); None
    when binarize is not "dynamic". C-contiguous with x's shape and dtype, as binarize_dynamic
    wants it (np.empty_like would keep a Fortran-ordered x's layout)."""
    return np.empty(x.shape, x.dtype) if binarize == "dynamic" else None


def minibatches(x: np.ndarray, batch_size: int, rng: np.random.Generator, *,
                binarize: str = "none", shuffle: bool = True, out: np.ndarray | None = None) -> Iterator[np.ndarray]:
    """Iterate once over ``x`` (N, D) in batches (B, D); the last batch may be smaller.

    The random draws happen here, at the call, not lazily: first the permutation (if
    ``shuffle``), then one Bernoulli draw of the whole array (if ``binarize="dynamic"``), so
    ``rng``'s state after the call does not depend on how many batches are consumed. ``out``
    holds that draw (see binarize_dynamic); the batches are read from it as the iterator runs
    (copied when shuffled, views when not), so finish one call's batches before the next call
    with the same ``out`` draws into it again.
    """
    if not isinstance(x, np.ndarray) or x.ndim != 2:
        raise ValueError(f"minibatches x: expected a 2-D array (N, D), got "
                         f"{getattr(x, 'shape', type(x).__name__)}")
    batch_size = positive_int("minibatches batch_size", batch_size)
    if not isinstance(rng, np.random.Generator):
        raise ValueError(f"minibatches rng: expected a numpy.random.Generator, got {type(rng).__name__}")
    if binarize not in ("none", "dynamic"):
        raise ValueError(f"minibatches binarize: expected 'none' or 'dynamic', got {binarize!r}")
    if not isinstance(shuffle, bool):
        raise ValueError(f"minibatches shuffle: expected True or False, got {shuffle!r}")
    if out is not None:  # checked before any draw, so that a refused call leaves rng as it was
        if binarize != "dynamic":
            raise ValueError(f"minibatches out: only used with binarize='dynamic', got binarize={binarize!r}")
        _check_out(out, x, "minibatches out")
    order = rng.permutation(len(x)) if shuffle else None  # (N,)
    data = binarize_dynamic(x, rng, out=out) if binarize == "dynamic" else x  # (N, D)
    return _batches(data, batch_size, order)


def _batches(data: np.ndarray, batch_size: int, order: np.ndarray | None) -> Iterator[np.ndarray]:
    for start in range(0, len(data), batch_size):
        if order is None:
            yield data[start:start + batch_size]  # (B, D) view
        else:
            yield data[order[start:start + batch_size]]  # (B, D) copy, in shuffled order
