"""Datasets: the readers against the real files, where files are looked for, and minibatches.

The real files come from the folder named by TINYVAE_DATA (.ci/run sets it to ../shared/data).
No test here touches the network: every mirror list is emptied before each test.
"""

import gzip
import hashlib
import os
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tinyvae.lab.datasets import binarize, data, readers
from tinyvae.lab.datasets.data import DataFile, DatasetNotFound
from tinyvae.lab.datasets.readers import DataError

from helpers import idx_bytes

DATA = os.environ.get("TINYVAE_DATA", "")
MNIST_FILES = ["train-images-idx3-ubyte", "train-labels-idx1-ubyte",
               "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"]
# From the data README.
TRAIN_LABEL_COUNTS = [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
TEST_LABEL_COUNTS = [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]
DEBIAN_FASHION = Path("/usr/share/datasets/fashion-mnist")


@pytest.fixture(autouse=True)
def isolated(monkeypatch, tmp_path):
    """No network, no real user cache, no TINYVAE_DATA unless a test sets it."""
    monkeypatch.setattr(data, "MIRRORS", {name: () for name in data.FILES})
    monkeypatch.delenv("TINYVAE_DATA", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))


@pytest.fixture(scope="module")
def mnist():
    return data.load_dataset("mnist", DATA, download=False)


@pytest.fixture(scope="module")
def binarized():
    needs_folder("binarized-mnist")
    return data.load_dataset("binarized-mnist", DATA, download=False)


def needs_folder(name: str, file: str | None = None) -> None:
    """Skip where the data root lacks this dataset (a user's cache holds what was downloaded:
    MNIST, not the shared root's other datasets and sum files)."""
    path = Path(DATA) / name if file is None else Path(DATA) / name / file
    if not path.exists():
        pytest.skip(f"{path} is not in the data root")


def real(name: str, file: str) -> Path:
    return Path(DATA) / name / file


def tiny_mnist(monkeypatch, seed: int = 0) -> dict[str, bytes]:
    """Make "mnist" a 6 + 4 image dataset: patch the sum table, return the raw file contents."""
    rng = np.random.default_rng(seed)
    contents = {
        "train-images-idx3-ubyte": idx_bytes(rng.integers(0, 256, (6, 28, 28))),
        "train-labels-idx1-ubyte": idx_bytes(rng.integers(0, 10, 6)),
        "t10k-images-idx3-ubyte": idx_bytes(rng.integers(0, 256, (4, 28, 28))),
        "t10k-labels-idx1-ubyte": idx_bytes(rng.integers(0, 10, 4)),
    }
    table = {role: DataFile(f.name, hashlib.sha256(contents[f.name]).hexdigest(), f.remote)
             for role, f in data.FILES["mnist"].items()}
    monkeypatch.setitem(data.FILES, "mnist", table)
    return contents


def write_files(folder: Path, contents: dict[str, bytes], *, compress: bool = True) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for name, content in contents.items():
        if compress:
            (folder / (name + ".gz")).write_bytes(gzip.compress(content))
        else:
            (folder / name).write_bytes(content)


# ---- the readers on the real files ------------------------------------------------------

@pytest.mark.needs_mnist
def test_read_idx_gives_the_documented_shapes():
    shapes = {"train-images-idx3-ubyte": (60000, 28, 28), "train-labels-idx1-ubyte": (60000,),
              "t10k-images-idx3-ubyte": (10000, 28, 28), "t10k-labels-idx1-ubyte": (10000,)}
    for name, shape in shapes.items():
        array = readers.read_idx(real("mnist", name + ".gz"))
        assert array.shape == shape and array.dtype == np.uint8


@pytest.mark.needs_mnist
def test_mnist_label_counts_match_the_data_readme():
    train = readers.read_idx(real("mnist", "train-labels-idx1-ubyte.gz"))
    test = readers.read_idx(real("mnist", "t10k-labels-idx1-ubyte.gz"))
    assert np.bincount(train).tolist() == TRAIN_LABEL_COUNTS
    assert np.bincount(test).tolist() == TEST_LABEL_COUNTS


@pytest.mark.needs_mnist
@pytest.mark.parametrize("name", ["mnist", "fashion-mnist", "binarized-mnist"])
def test_checksum_constants_equal_the_shared_sum_files(name):
    needs_folder(name, "SHA256SUMS.uncompressed")
    published = dict(line.split()[::-1] for line in
                     (Path(DATA) / name / "SHA256SUMS.uncompressed").read_text().splitlines())
    assert {f.name: f.sha256 for f in data.FILES[name].values()} == published


@pytest.mark.needs_mnist
@pytest.mark.parametrize("name", ["mnist", "binarized-mnist"])
def test_real_files_hash_to_their_published_sums(name):
    needs_folder(name)
    for file in data.FILES[name].values():
        assert readers.uncompressed_sha256(real(name, file.name + ".gz")) == file.sha256


@pytest.mark.needs_mnist
def test_read_amat_gives_binary_images_of_784_pixels(binarized):
    array = readers.read_amat(real("binarized-mnist", "binarized_mnist_test.amat.gz"))
    assert array.shape == (10000, 784) and array.dtype == np.uint8
    assert set(np.unique(array).tolist()) == {0, 1}
    np.testing.assert_array_equal(array, binarized.x_test)


def test_amat_general_layout_parses_like_the_canonical_one(tmp_path):
    """CRLF, tabs, extra spaces and a missing final newline take the slow path to the same array."""
    rows = np.random.default_rng(0).integers(0, 2, (5, 784)).astype(np.uint8)
    canonical = "".join(" ".join(map(str, row)) + "\n" for row in rows)
    loose = "\r\n".join("\t".join(map(str, row)) + "  " for row in rows)
    (tmp_path / "a.amat").write_text(canonical)
    (tmp_path / "b.amat").write_bytes(gzip.compress(loose.encode()))
    np.testing.assert_array_equal(readers.read_amat(tmp_path / "a.amat"), rows)
    np.testing.assert_array_equal(readers.read_amat(tmp_path / "b.amat"), rows)


# ---- datasets by name -------------------------------------------------------------------

@pytest.mark.needs_mnist
def test_mnist_loads_as_float32_in_unit_interval_with_int64_labels(mnist):
    assert mnist.x_train.shape == (60000, 784) and mnist.x_test.shape == (10000, 784)
    assert mnist.x_train.dtype == mnist.x_test.dtype == np.float32
    assert mnist.y_train.dtype == mnist.y_test.dtype == np.int64
    assert mnist.x_train.min() == 0 and mnist.x_train.max() == 1
    assert mnist.x_valid is None
    raw = readers.read_idx(real("mnist", "t10k-images-idx3-ubyte.gz"))
    np.testing.assert_array_equal(mnist.x_test, raw.reshape(-1, 784) / np.float32(255))
    assert np.bincount(mnist.y_test).tolist() == TEST_LABEL_COUNTS


@pytest.mark.needs_mnist
def test_binarized_mnist_loads_its_three_splits_without_labels(binarized):
    assert binarized.x_train.shape == (50000, 784)
    assert binarized.x_valid.shape == binarized.x_test.shape == (10000, 784)
    assert binarized.y_train is None and binarized.y_test is None
    assert binarized.x_train.dtype == np.float32
    assert set(np.unique(binarized.x_test).tolist()) == {0.0, 1.0}


def test_loading_found_files_downloads_nothing_and_writes_nothing(monkeypatch, tmp_path):
    write_files(tmp_path / "arg" / "mnist", tiny_mnist(monkeypatch))
    monkeypatch.setitem(data.MIRRORS, "mnist", ("http://127.0.0.1:9/never-asked/",))
    data.load_dataset("mnist", tmp_path / "arg", download=True)
    assert not (tmp_path / "cache").exists() and len(os.listdir(tmp_path / "arg" / "mnist")) == 4


@pytest.mark.needs_mnist
def test_a_recompressed_or_uncompressed_file_is_accepted(tmp_path, mnist):
    """The sums are of the uncompressed content, so any faithful (re-)compression passes."""
    folder = tmp_path / "root" / "mnist"
    folder.mkdir(parents=True)
    for name in MNIST_FILES[:2]:
        (folder / (name + ".gz")).symlink_to(real("mnist", name + ".gz"))
    original = real("mnist", "t10k-images-idx3-ubyte.gz").read_bytes()
    recompressed = gzip.compress(gzip.decompress(original), compresslevel=1, mtime=0)
    assert recompressed != original  # so that the test means something
    (folder / "t10k-images-idx3-ubyte.gz").write_bytes(recompressed)
    raw_labels = gzip.decompress(real("mnist", "t10k-labels-idx1-ubyte.gz").read_bytes())
    (folder / "t10k-labels-idx1-ubyte").write_bytes(raw_labels)
    loaded = data.load_dataset("mnist", tmp_path / "root", download=False)
    np.testing.assert_array_equal(loaded.x_test, mnist.x_test)
    np.testing.assert_array_equal(loaded.y_test, mnist.y_test)


@pytest.mark.needs_mnist
def test_one_changed_label_fails_the_checksum_naming_file_and_both_sums(tmp_path):
    folder = tmp_path / "root" / "mnist"
    folder.mkdir(parents=True)
    for name in MNIST_FILES:
        (folder / (name + ".gz")).symlink_to(real("mnist", name + ".gz"))
    labels = bytearray(gzip.decompress(real("mnist", "t10k-labels-idx1-ubyte.gz").read_bytes()))
    labels[-1] = (labels[-1] + 1) % 10  # still a perfectly valid IDX file
    (folder / "t10k-labels-idx1-ubyte.gz").unlink()
    (folder / "t10k-labels-idx1-ubyte").write_bytes(bytes(labels))
    with pytest.raises(DataError) as info:
        data.load_dataset("mnist", tmp_path / "root", download=False)
    message = str(info.value)
    assert "t10k-labels-idx1-ubyte" in message and "checksum mismatch" in message
    assert data.FILES["mnist"]["test_labels"].sha256 in message
    assert hashlib.sha256(labels).hexdigest() in message


# ---- where files are looked for ---------------------------------------------------------

def test_search_order_is_environment_then_cache_and_an_argument_alone(monkeypatch, tmp_path):
    monkeypatch.setenv("TINYVAE_DATA", str(tmp_path / "env"))
    assert data.default_data_dirs("mnist") == [tmp_path / "env" / "mnist",
                                               tmp_path / "cache" / "tinyvae" / "mnist"]
    (tmp_path / "arg").mkdir()
    assert data.default_data_dirs("mnist", tmp_path / "arg") == [tmp_path / "arg" / "mnist"]
    assert (data.default_data_dirs("fashion-mnist", tmp_path / "arg")
            == [tmp_path / "arg" / "fashion-mnist"])


@pytest.mark.parametrize("kind", ["missing", "a file"])
def test_an_explicit_data_dir_that_is_not_a_folder_is_refused_not_replaced(tmp_path, kind):
    given = tmp_path / "given"
    if kind == "a file":
        given.write_text("")
    what = "does not exist" if kind == "missing" else "is not a folder"
    for call in (lambda: data.default_data_dirs("mnist", given),
                 lambda: data.load_dataset("mnist", given)):
        with pytest.raises(DatasetNotFound, match=f"the data folder {given} {what}"):
            call()
    assert not (tmp_path / "cache").exists()  # nothing downloaded elsewhere instead


def test_tinyvae_data_naming_a_file_is_refused(monkeypatch, tmp_path):
    (tmp_path / "a-file").write_text("")
    monkeypatch.setenv("TINYVAE_DATA", str(tmp_path / "a-file"))
    with pytest.raises(DatasetNotFound,
                       match=f"TINYVAE_DATA={tmp_path / 'a-file'} is not a folder"):
        data.load_dataset("mnist", download=False)


def test_the_dataset_says_which_folder_it_came_from(monkeypatch, tmp_path):
    write_files(tmp_path / "env" / "mnist", tiny_mnist(monkeypatch))
    monkeypatch.setenv("TINYVAE_DATA", str(tmp_path / "env"))
    assert data.load_dataset("mnist", download=False).folder == tmp_path / "env" / "mnist"


def test_test_only_reads_only_the_test_files(monkeypatch, tmp_path):
    contents = tiny_mnist(monkeypatch)
    write_files(tmp_path / "arg" / "mnist",
                {n: c for n, c in contents.items() if n.startswith("t10k")})
    test_only = data.load_dataset("mnist", tmp_path / "arg", download=False, test_only=True)
    assert test_only.x_test.shape == (4, 784) and test_only.y_test.shape == (4,)
    assert test_only.x_train.shape == (0, 784) and test_only.y_train is None
    with pytest.raises(DatasetNotFound, match="train-images-idx3-ubyte"):
        data.load_dataset("mnist", tmp_path / "arg", download=False)


def test_fashion_mnist_has_class_names_and_its_offline_error_names_the_debian_package(
        monkeypatch, tmp_path):
    assert (len(data.CLASS_NAMES["fashion-mnist"]) == 10
            and data.CLASS_NAMES["fashion-mnist"][9] == "Ankle boot")
    monkeypatch.setitem(data.SYSTEM_DIRS, "fashion-mnist", tmp_path / "not-installed")
    with pytest.raises(DatasetNotFound) as info:
        data.load_dataset("fashion-mnist", download=False)
    assert "`apt-get install dataset-fashion-mnist`" in str(info.value)
    assert str(tmp_path / "not-installed") in str(info.value)


def test_fashion_mnist_also_looks_in_debians_folder_last(tmp_path):
    assert data.default_data_dirs("fashion-mnist") == [
        tmp_path / "cache" / "tinyvae" / "fashion-mnist", DEBIAN_FASHION]


def test_cache_is_under_xdg_cache_home_else_home(monkeypatch, tmp_path):
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert data.user_cache_dir() == tmp_path / "cache" / "tinyvae"
    monkeypatch.setenv("XDG_CACHE_HOME", "relative/ignored")  # the XDG spec ignores relative paths
    assert data.user_cache_dir() == tmp_path / "home" / ".cache" / "tinyvae"
    monkeypatch.delenv("XDG_CACHE_HOME")
    assert data.user_cache_dir() == tmp_path / "home" / ".cache" / "tinyvae"


def test_unknown_dataset_name_is_refused():
    with pytest.raises(ValueError, match="unknown dataset 'cifar'.*mnist"):
        data.load_dataset("cifar")


def test_an_earlier_folder_wins_over_a_later_one(monkeypatch, tmp_path):
    """A damaged copy in the cache is never reached when the environment's folder has the files,
    and is reported (not skipped) when it is the first place the file is found."""
    contents = tiny_mnist(monkeypatch)
    damaged = dict(contents, **{"t10k-labels-idx1-ubyte": idx_bytes(np.zeros(4))})
    write_files(tmp_path / "env" / "mnist", contents)
    write_files(tmp_path / "cache" / "tinyvae" / "mnist", damaged)
    monkeypatch.setenv("TINYVAE_DATA", str(tmp_path / "env"))
    assert data.load_dataset("mnist", download=False).x_test.shape == (4, 784)
    write_files(tmp_path / "arg" / "mnist", damaged)
    with pytest.raises(DataError, match=r"arg/mnist/t10k-labels-idx1-ubyte.gz: checksum mismatch"):
        data.load_dataset("mnist", tmp_path / "arg", download=False)


def test_each_file_is_looked_for_separately(monkeypatch, tmp_path):
    contents = tiny_mnist(monkeypatch)
    names = list(contents)
    write_files(tmp_path / "env" / "mnist", {n: contents[n] for n in names[:2]}, compress=False)
    write_files(tmp_path / "cache" / "tinyvae" / "mnist", {n: contents[n] for n in names[2:]})
    monkeypatch.setenv("TINYVAE_DATA", str(tmp_path / "env"))
    loaded = data.load_dataset("mnist", download=False)
    expected = (np.frombuffer(contents["train-images-idx3-ubyte"][16:], np.uint8).reshape(6, 784)
                / 255)
    np.testing.assert_allclose(loaded.x_train, expected, rtol=1e-6)


def test_a_system_folder_holds_the_files_directly(monkeypatch, tmp_path):
    """The Debian layout (files right in the folder), tried on a tiny stand-in for MNIST."""
    contents = tiny_mnist(monkeypatch)
    write_files(tmp_path / "debian", contents)
    monkeypatch.setitem(data.SYSTEM_DIRS, "mnist", tmp_path / "debian")
    assert data.default_data_dirs("mnist")[-1] == tmp_path / "debian"
    assert data.load_dataset("mnist", download=False).y_train.shape == (6,)


@pytest.mark.skipif(not DEBIAN_FASHION.is_dir(),
                    reason="Debian's dataset-fashion-mnist is not installed")
def test_real_fashion_mnist_from_debians_package():
    fashion = data.load_dataset("fashion-mnist", download=False)
    assert fashion.x_train.shape == (60000, 784) and fashion.x_test.shape == (10000, 784)
    assert np.bincount(fashion.y_train).tolist() == [6000] * 10
    assert np.bincount(fashion.y_test).tolist() == [1000] * 10


def test_missing_files_offline_say_which_where_and_how(monkeypatch, tmp_path):
    contents = tiny_mnist(monkeypatch)
    write_files(tmp_path / "arg" / "mnist",
                {"train-images-idx3-ubyte": contents["train-images-idx3-ubyte"]})
    monkeypatch.setenv("TINYVAE_DATA", str(tmp_path / "env"))
    for download in (False, True):  # True: every mirror list is empty in these tests
        with pytest.raises(DatasetNotFound) as info:
            data.load_dataset("mnist", tmp_path / "arg", download=download)
        message = str(info.value)
        assert "train-labels-idx1-ubyte" in message and "t10k-images-idx3-ubyte" in message
        assert "missing train-images" not in message
        for folder in data.default_data_dirs("mnist", tmp_path / "arg"):
            assert str(folder) in message
        assert "TINYVAE_DATA" in message
    assert isinstance(info.value, DataError) and isinstance(info.value, ValueError)


# ---- binarization and minibatches -------------------------------------------------------

def rows_numbered(n: int) -> np.ndarray:
    return np.repeat(np.arange(n, dtype=np.float64)[:, None], 3, axis=1)  # row i is all i


@settings(max_examples=100, deadline=None)
@given(n=st.integers(0, 60), batch_size=st.integers(1, 25), seed=st.integers(0, 2**32 - 1),
       shuffle=st.booleans())
def test_an_epoch_serves_every_row_exactly_once(n, batch_size, seed, shuffle):
    batches = list(binarize.minibatches(rows_numbered(n), batch_size, np.random.default_rng(seed),
                                    shuffle=shuffle))
    assert all(len(b) == batch_size for b in batches[:-1])
    assert len(batches) == -(-n // batch_size)
    served = np.concatenate(batches)[:, 0] if batches else np.array([])
    assert sorted(served.tolist()) == list(range(n))
    if not shuffle:
        assert served.tolist() == list(range(n))


def test_same_seed_gives_the_same_batches_and_another_seed_does_not():
    x = np.random.default_rng(1).random((50, 4))

    def epoch(seed):
        return list(binarize.minibatches(x, 16, np.random.default_rng(seed), binarize="dynamic"))

    for a, b in zip(epoch(3), epoch(3)):
        np.testing.assert_array_equal(a, b)
    assert not np.array_equal(epoch(3)[0], epoch(4)[0])


def test_draws_happen_at_the_call_not_while_iterating():
    """The generator's state after the call does not depend on how many batches were used."""
    x = np.full((10, 4), 0.5)
    rng_a, rng_b = np.random.default_rng(0), np.random.default_rng(0)
    binarize.minibatches(x, 3, rng_a, binarize="dynamic")
    list(binarize.minibatches(x, 3, rng_b, binarize="dynamic"))
    assert rng_a.random() == rng_b.random()


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_dynamic_binarization_is_binary_with_mean_equal_to_intensity(dtype):
    intensity = np.linspace(0, 1, 784, dtype=dtype)
    x = np.tile(intensity, (2000, 1))  # (2000, 784)
    b = np.concatenate(list(binarize.minibatches(x, 500, np.random.default_rng(0),
                                                 binarize="dynamic")))
    assert b.dtype == dtype and set(np.unique(b).tolist()) == {0.0, 1.0}
    # Mean of 2000 Bernoulli draws: standard error at most 0.5 / sqrt(2000) = 0.011.
    assert np.abs(b.mean(axis=0) - intensity).max() < 0.06
    assert (b[:, 0] == 0).all() and (b[:, -1] == 1).all()  # intensity 0 and 1 are certain


def test_each_epoch_draws_a_fresh_binarization():
    x, rng = np.full((100, 784), 0.5), np.random.default_rng(0)
    first = next(binarize.minibatches(x, 100, rng, binarize="dynamic", shuffle=False))
    second = next(binarize.minibatches(x, 100, rng, binarize="dynamic", shuffle=False))
    assert not np.array_equal(first, second)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_binarizing_into_a_kept_array_gives_the_same_batches(dtype):
    # The kept array is only where the draw lands: the batches, the rng's state after the
    # call and the images themselves must be exactly as with a new array each epoch.
    x = np.random.default_rng(0).random((50, 784)).astype(dtype)
    x_before = x.copy()
    kept = np.full_like(x, 7.0)  # whatever the last epoch left there
    rng_new, rng_kept = np.random.default_rng(1), np.random.default_rng(1)
    for _ in range(2):  # two epochs into the same array
        new = list(binarize.minibatches(x, 16, rng_new, binarize="dynamic"))
        into = list(binarize.minibatches(x, 16, rng_kept, binarize="dynamic", out=kept))
        assert len(new) == len(into) == 4
        for a, b in zip(new, into):
            np.testing.assert_array_equal(a, b)
    assert rng_new.random() == rng_kept.random()
    np.testing.assert_array_equal(x, x_before)
    assert set(np.unique(kept).tolist()) == {0.0, 1.0}  # it now holds the last draw


def test_a_kept_array_that_does_not_fit_or_is_the_images_is_refused():
    x = np.full((6, 784), 0.5, dtype=np.float32)
    read_only = np.empty_like(x)
    read_only.flags.writeable = False
    for bad, match in [([[0.0]], "expected a NumPy array, got list"),
                       (np.empty((5, 784), np.float32),
                        r"shape \(6, 784\) .* got shape \(5, 784\)"),
                       (np.empty((6, 784)), "dtype float32, got shape .* dtype float64"),
                       (np.empty((784, 6), np.float32).T, "C-contiguous"),
                       (read_only, "writeable"),
                       (x, "share memory"), (x[:, :], "share memory")]:  # drawing into the images
        rng = np.random.default_rng(0)
        with pytest.raises(ValueError, match=f"binarize_dynamic out: .*{match}"):
            binarize.binarize_dynamic(x, rng, out=bad)
        with pytest.raises(ValueError, match=f"minibatches out: .*{match}"):
            binarize.minibatches(x, 2, rng, binarize="dynamic", out=bad)
        assert rng.random() == np.random.default_rng(0).random()  # refused before any draw
    assert (x == 0.5).all()
    with pytest.raises(ValueError, match="only used with binarize='dynamic'"):
        binarize.minibatches(x, 2, np.random.default_rng(0), out=np.empty_like(x))


def test_fixed_binarization_depends_only_on_its_seed():
    x = np.random.default_rng(0).random((20, 784)).astype(np.float32)
    a, b, c = (binarize.fixed_binarization(x), binarize.fixed_binarization(x),
               binarize.fixed_binarization(x, seed=1))
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c) and a.dtype == np.float32
    assert set(np.unique(a).tolist()) == {0.0, 1.0}


@pytest.mark.parametrize("kwargs, match", [
    (dict(batch_size=0), "batch_size"), (dict(batch_size=-3), "batch_size"),
    (dict(batch_size=2.5), "batch_size"), (dict(batch_size=True), "batch_size"),
    (dict(rng=None), "rng"), (dict(rng=0), "rng"),
    (dict(binarize="fixed"), "binarize"), (dict(shuffle="yes"), "shuffle"),
    (dict(x=np.zeros(5)), "2-D"), (dict(x=[[0.5]]), "2-D"),
    (dict(x=np.full((2, 3), 1.5), binarize="dynamic"), r"\[0, 1\]"),
    (dict(x=np.full((2, 3), np.nan), binarize="dynamic"), "NaN"),
    (dict(x=np.zeros((2, 3), np.uint8), binarize="dynamic"), "float32 or float64"),
])
def test_bad_minibatch_arguments_are_refused_at_the_call(kwargs, match):
    args = dict(x=np.zeros((4, 3)), batch_size=2, rng=np.random.default_rng(0))
    args.update(kwargs)
    x, batch_size, rng = args.pop("x"), args.pop("batch_size"), args.pop("rng")
    with pytest.raises(ValueError, match=match):
        binarize.minibatches(x, batch_size, rng, **args)


@pytest.mark.skipif(not DEBIAN_FASHION.is_dir(),
                    reason="Debian's dataset-fashion-mnist is not installed")
def test_a_fashion_mnist_run_names_its_classes_and_its_folder():
    from tinyvae.lab.training import run_settings
    run = run_settings.load_run_data(
        run_settings.complete({"dataset": "fashion-mnist", "test_limit": 20}), test_only=True)
    assert run.class_names == data.CLASS_NAMES["fashion-mnist"] and run.label_kind == "class"
    assert run.described.startswith(f"fashion-mnist from {DEBIAN_FASHION}, dynamically binarized")
    assert run.x_test.shape == (20, 784) and set(np.unique(run.x_test)) <= {0.0, 1.0}
