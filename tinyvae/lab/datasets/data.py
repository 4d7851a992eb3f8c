"""Datasets, loaded honestly: MNIST, Fashion-MNIST and the fixed binarized MNIST.

Every file, found on disk or downloaded, is read by readers.py (IDX or .amat, plain or gzip)
and verified by the SHA-256 of its *uncompressed* content against the FILES table. A bad file
raises DataError naming the file; missing files that cannot be downloaded, DatasetNotFound.

Where files are looked for (``default_data_dirs``): given a ``data_dir`` argument (the
commands' --data-dir), there and nowhere else, and a data_dir that does not exist is refused,
never silently replaced by another folder. Otherwise: the ``TINYVAE_DATA`` environment
variable (refused if it names a file), the per-user cache ``$XDG_CACHE_HOME/tinyvae`` (or
``~/.cache/tinyvae``), and for Fashion-MNIST Debian's ``/usr/share/datasets/fashion-mnist/``
(``apt-get install dataset-fashion-mnist``). Each of the first three is a data root holding one
folder per dataset (``mnist/``, ``fashion-mnist/``, ``binarized-mnist/``). Missing files are
downloaded into ``data_dir/<name>/`` if ``data_dir`` is given, else into the cache (see
download.py). ``Dataset.folder`` says where the files were found.

Binarizing and batching the images: tinyvae/lab/datasets/binarize.py (re-exported here).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import numpy as np

from ..._checks import lookup
from .download import DEFAULT_TIMEOUT, DownloadError, fetch
from .readers import IDX_BYTES, MAX_AMAT_BYTES, D, DataError, read_verified, uncompressed_sha256

__all__ = ["FILES", "MIRRORS", "SYSTEM_DIRS", "SYSTEM_PACKAGES", "CLASS_NAMES", "DataFile",
           "Dataset", "DatasetNotFound", "default_data_dirs", "load_dataset", "user_cache_dir"]


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
        "train-images-idx3-ubyte":
            "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
        "train-labels-idx1-ubyte":
            "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
        "t10k-images-idx3-ubyte":
            "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
        "t10k-labels-idx1-ubyte":
            "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2"}),
    "fashion-mnist": _idx_files({
        "train-images-idx3-ubyte":
            "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888",
        "train-labels-idx1-ubyte":
            "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9",
        "t10k-images-idx3-ubyte":
            "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b",
        "t10k-labels-idx1-ubyte":
            "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34"}),
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

# System-wide folders holding a dataset's files directly (no per-dataset subfolder), and the
# command that installs them there.
SYSTEM_DIRS: dict[str, Path] = {"fashion-mnist": Path("/usr/share/datasets/fashion-mnist")}
SYSTEM_PACKAGES: dict[str, str] = {"fashion-mnist": "apt-get install dataset-fashion-mnist"}

# The names of the labels 0, 1, ... (Xiao et al. 2017, Table 1 for Fashion-MNIST).
CLASS_NAMES: dict[str, tuple[str, ...]] = {
    "mnist": tuple(str(d) for d in range(10)),
    "fashion-mnist": ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                      "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"),
}


@dataclass(frozen=True, eq=False)  # eq=False: arrays have no single truth value to compare
class Dataset:
    """Images as float32 (N, 784) in [0, 1]; labels int64 (N,), or None where there are none."""
    name: str
    x_train: np.ndarray
    y_train: np.ndarray | None
    x_test: np.ndarray
    y_test: np.ndarray | None
    x_valid: np.ndarray | None = None  # binarized-mnist's published 10,000-image validation split
    folder: Path | None = None  # where the files were found (the folder of the test images)


def user_cache_dir() -> Path:
    """``$XDG_CACHE_HOME/tinyvae``, or ``~/.cache/tinyvae`` (a relative XDG path is ignored)."""
    xdg = os.environ.get("XDG_CACHE_HOME", "")
    base = Path(xdg) if os.path.isabs(xdg) else Path.home() / ".cache"
    return base / "tinyvae"


def shown(path: str | os.PathLike) -> str:
    """A path as its owner reads it: under the home folder, as ~/..."""
    path, home = Path(path), Path.home()
    try:
        return str(Path("~") / path.relative_to(home)) if path.is_absolute() else str(path)
    except ValueError:  # not under the home folder
        return str(path)


def default_data_dirs(name: str, data_dir: str | os.PathLike | None = None) -> list[Path]:
    """The folders searched for dataset ``name``, in order (see the module docstring)."""
    lookup(FILES, name, "dataset")
    if data_dir is not None:  # asked for explicitly: there, or an error, never somewhere else
        if not Path(data_dir).is_dir():
            what = "is not a folder" if os.path.lexists(data_dir) else "does not exist"
            raise DatasetNotFound(f"the data folder {data_dir} {what}; give a folder that holds "
                                  f"{name}/ (or one to download it into), or leave it out to use "
                                  f"TINYVAE_DATA or the cache {user_cache_dir()}")
        return [Path(data_dir) / name]
    roots = []
    if os.environ.get("TINYVAE_DATA"):
        root = Path(os.environ["TINYVAE_DATA"])
        if os.path.lexists(root) and not root.is_dir():
            raise DatasetNotFound(f"TINYVAE_DATA={root} is not a folder; it must name a data root "
                                  f"holding {name}/ (or be unset)")
        roots.append(root)
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


def _locate(name: str, data_dir, download: bool, mirrors, timeout: float, roles) -> dict[str, Path]:
    """Find (or download) the files ``roles`` of dataset ``name``; DatasetNotFound if some stay
    missing."""
    dirs = default_data_dirs(name, data_dir)
    found = {role: _find(FILES[name][role], dirs) for role in roles}
    target = (Path(data_dir) if data_dir is not None else user_cache_dir()) / name
    bases = MIRRORS.get(name, ()) if mirrors is None else mirrors
    failures = _download_missing(name, found, target, bases, timeout) if download else []
    missing = [FILES[name][role].name for role, path in found.items() if path is None]
    if missing:
        how = ("Downloading failed:\n" + "\n".join(failures)) if download else \
            "Downloading is disabled (download=False)."
        package = (f"install them with `{SYSTEM_PACKAGES[name]}` "
                   f"(Debian, Ubuntu: into {SYSTEM_DIRS[name]}/), "
                   if name in SYSTEM_PACKAGES else "")
        raise DatasetNotFound(
            f"dataset {name!r}: missing {', '.join(missing)} (plain or .gz).\n"
            f"Looked in:\n" + "".join(f"  {d}\n" for d in dirs) + how + "\n"
            f"To fix: {package}copy the files into {target}/, or into <root>/{name}/ and set "
            f"TINYVAE_DATA=<root> (or give --data-dir <root> to the commands, "
            "data_dir=<root> to load_dataset), "
            f"or retry when online.")
    return found


def _download_missing(name: str, found: dict, target: Path, bases: tuple,
                      timeout: float) -> list[str]:
    """Download into ``target`` each file ``found`` lacks, filling it in; return the failures.

    After one file failed on every mirror, the next would most likely fail the same way: stop,
    rather than make an offline user wait for every timeout of every file."""
    for role, file in FILES[name].items():
        if found.get(role, True) is not None:  # found, or not wanted
            continue
        urls = [base.rstrip("/") + "/" + file.remote for base in bases]
        try:
            # No file is larger compressed than its known uncompressed size (plus gzip's few bytes):
            # a body past that is refused while it streams, not after it filled the disk.
            cap = IDX_BYTES.get(file.name, MAX_AMAT_BYTES) + 2**20
            found[role] = fetch(urls, target / file.remote, verify=_verifier(file), timeout=timeout,
                                max_bytes=cap)
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
                 mirrors: tuple[str, ...] | None = None, timeout: float = DEFAULT_TIMEOUT,
                 test_only: bool = False) -> Dataset:
    """Load ``"mnist"``, ``"fashion-mnist"`` or ``"binarized-mnist"``, verifying every file.

    ``mirrors`` overrides MIRRORS[name] (base URLs); ``timeout`` is the per-socket-wait limit
    in seconds. ``test_only``: read (and verify) only the test split; x_train is then empty
    and the other splits None (what scoring a saved model needs, in a quarter of the time).
    Raises DatasetNotFound for missing files, DataError for bad ones.
    """
    files = lookup(FILES, name, "dataset")  # an unknown name is refused, with the known ones listed
    roles = [role for role in files if not test_only or role.startswith("test")]
    paths = _locate(name, data_dir, download, mirrors, timeout, roles)
    arrays = {role: read_verified(path, files[role].name, files[role].sha256)
              for role, path in paths.items()}
    if name == "binarized-mnist":
        x = {split: arrays[split].astype(np.float32) if split in arrays else None
             for split in ("train", "valid", "test")}
        return Dataset(name, _train_or_empty(x["train"]), None, x["test"], None, x_valid=x["valid"],
                       folder=paths["test"].parent)
    x_test = _images(arrays["test_images"], paths["test_images"])
    y_test = _labels(arrays["test_labels"], paths["test_labels"], len(x_test))
    if test_only:
        return Dataset(name, _train_or_empty(None), None, x_test, y_test,
                       folder=paths["test_images"].parent)
    x_train = _images(arrays["train_images"], paths["train_images"])
    return Dataset(name, x_train,
                   _labels(arrays["train_labels"], paths["train_labels"], len(x_train)),
                   x_test, y_test, folder=paths["test_images"].parent)


def _train_or_empty(x_train: np.ndarray | None) -> np.ndarray:
    return np.empty((0, D), np.float32) if x_train is None else x_train
