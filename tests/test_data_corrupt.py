"""Corrupt input to the readers: every case ends in DataError naming the file, nothing else.

Hypothesis generates the damage: truncation anywhere, wrong magic numbers, wrong dimensions,
headers that claim billions of images, garbage, flipped bytes inside gzip streams. Run with
``--hypothesis-show-statistics`` to see how many inputs each test tried.
"""

import gzip
import os
import time
import tracemalloc
from pathlib import Path

import numpy as np
import pytest
from helpers import idx_bytes
from hypothesis import HealthCheck, assume, example, given, settings
from hypothesis import strategies as st

from tinyvae.lab.datasets.readers import DataError, read_amat, read_idx

SHAPE = (3, 4, 5)
ARRAY = np.arange(60, dtype=np.uint8).reshape(SHAPE)
ROWS = np.random.default_rng(0).integers(0, 2, (3, 784)).astype(np.uint8)
AMAT = "".join(" ".join(map(str, row)) + "\n" for row in ROWS).encode()
LINE = 2 * 784  # bytes per canonical .amat line: 784 digits, 783 spaces, a newline
many = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])


IDX = idx_bytes(ARRAY)  # 16-byte header + 60 bytes of data
IDX_GZ = gzip.compress(IDX, mtime=0)
AMAT_GZ = gzip.compress(AMAT, mtime=0)


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    return tmp_path_factory.mktemp("corrupt")


def write(folder: Path, content: bytes, name: str = "sample-file.idx") -> Path:
    path = folder / name
    path.write_bytes(content)
    return path


def refused(reader, path: Path) -> str:
    """Call ``reader``; it must raise DataError (any other exception fails the test)."""
    with pytest.raises(DataError) as info:
        reader(path)
    assert path.name in str(info.value)
    return str(info.value)


def test_the_uncorrupted_samples_read_back(folder):
    """The baseline the corruptions start from is valid, so each failure below is the damage."""
    np.testing.assert_array_equal(read_idx(write(folder, IDX)), ARRAY)
    np.testing.assert_array_equal(read_idx(write(folder, IDX_GZ)), ARRAY)
    np.testing.assert_array_equal(read_amat(write(folder, AMAT, "sample-file.amat")), ROWS)
    np.testing.assert_array_equal(read_amat(write(folder, AMAT_GZ, "sample-file.amat")), ROWS)


# ---- IDX --------------------------------------------------------------------------------

@many
@given(cut=st.integers(0, len(IDX) - 1), compress=st.booleans())
def test_idx_truncated_anywhere_is_refused(folder, cut, compress):
    content = IDX[:cut]
    if compress:
        content = gzip.compress(content, mtime=0)  # a complete gzip of a truncated IDX
    refused(read_idx, write(folder, content))


@many
@given(cut=st.integers(1, len(IDX_GZ) - 1))
def test_idx_gzip_truncated_anywhere_is_refused(folder, cut):
    refused(read_idx, write(folder, IDX_GZ[:cut]))


@many
@given(magic=st.binary(min_size=4, max_size=4), compress=st.booleans())
def test_idx_with_a_wrong_magic_number_is_refused(folder, magic, compress):
    # Refusable by the magic alone: not 00 00, not type 0x08, or zero dimensions. (A magic
    # that only changes the number of dimensions is a wrong-dimensions case, tested below.)
    assume(magic[:2] != b"\0\0" or magic[2] != 0x08 or magic[3] == 0)
    content = magic + IDX[4:]
    refused(read_idx, write(folder, gzip.compress(content) if compress else content))


@many
@given(shape=st.lists(st.integers(0, 2**32 - 1), min_size=1, max_size=5), compress=st.booleans())
def test_idx_whose_dimensions_disagree_with_the_data_is_refused(folder, shape, compress):
    """Any declared shape whose size is not the 60 bytes present. (A shape with the same size,
    say (60,), is a valid file the reader cannot doubt; load_dataset's checksum refuses it.)"""
    assume(int(np.prod(shape, dtype=object)) != ARRAY.size)
    header = bytes([0, 0, 0x08, len(shape)]) + b"".join(n.to_bytes(4, "big") for n in shape)
    content = header + ARRAY.tobytes()
    refused(read_idx, write(folder, gzip.compress(content) if compress else content))


@many
@given(n_images=st.integers(10**9, 2**32 - 1), compress=st.booleans())
def test_a_header_claiming_billions_of_images_fails_fast_without_allocating(folder, n_images, compress):
    content = bytes([0, 0, 0x08, 3]) + b"".join(n.to_bytes(4, "big") for n in (n_images, 28, 28))
    content += ARRAY.tobytes()
    path = write(folder, gzip.compress(content) if compress else content)
    tracemalloc.start()
    start = time.perf_counter()
    try:
        message = refused(read_idx, path)  # a MemoryError would fail here: it is not a DataError
        elapsed = time.perf_counter() - start
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert f"{n_images}, 28, 28" in message
    assert elapsed < 1.0 and peak < 10 * 2**20  # the claim is >= 784 GB


@many
@given(content=st.binary(min_size=1, max_size=300))
def test_idx_garbage_is_refused_or_read_exactly_as_declared(folder, content):
    """Random bytes: DataError, or (rarely) a valid IDX whose header describes them exactly."""
    path = write(folder, content)
    try:
        array = read_idx(path)
    except DataError as error:
        assert path.name in str(error)
        return
    assert content[:3] == b"\0\0\x08" and len(content) == 4 + 4 * array.ndim + array.size


@many
@given(body=st.binary(max_size=200), compress=st.booleans())
def test_idx_valid_header_with_garbage_of_the_wrong_length_is_refused(folder, body, compress):
    assume(len(body) != ARRAY.size)
    content = IDX[:16] + body
    refused(read_idx, write(folder, gzip.compress(content) if compress else content))


@many
@given(position=st.integers(0, len(IDX_GZ) - 1), flip=st.integers(1, 255))
def test_a_damaged_gzip_byte_never_yields_wrong_data(folder, position, flip):
    """A flipped byte gives DataError, or the right array when it hit an unchecked header field
    (the gzip mtime and OS bytes). The CRC-32 over the data makes silent damage impossible."""
    damaged = bytearray(IDX_GZ)
    damaged[position] ^= flip
    path = write(folder, bytes(damaged))
    try:
        array = read_idx(path)
    except DataError as error:
        assert path.name in str(error)
        return
    np.testing.assert_array_equal(array, ARRAY)


# ---- .amat ------------------------------------------------------------------------------

@many
@given(cut=st.integers(1, len(AMAT) - 1))
@example(cut=LINE)  # cut after a newline
@example(cut=3 * LINE - 1)  # cut just before the final newline
def test_amat_truncated_mid_line_is_refused_and_at_a_line_end_keeps_whole_rows(folder, cut):
    """A text file has no length header: cut at a line end, it is a valid shorter file (the
    checksum in load_dataset refuses it). Cut anywhere else, it is refused. Never a partial row."""
    path = write(folder, AMAT[:cut], "sample-file.amat")
    if cut % LINE in (0, LINE - 1):  # only the newline, or nothing, is missing from the last row
        np.testing.assert_array_equal(read_amat(path), ROWS[:round(cut / LINE)])
    else:
        refused(read_amat, path)


@many
@given(cut=st.integers(1, len(AMAT_GZ) - 1))
def test_amat_gzip_truncated_anywhere_is_refused(folder, cut):
    refused(read_amat, write(folder, AMAT_GZ[:cut], "sample-file.amat.gz"))


@many
@given(position=st.integers(0, len(AMAT) - 1),
       byte=st.integers(0, 255).filter(lambda b: b not in b"01 \t\r\n\x0b\x0c"))
def test_amat_with_a_foreign_character_is_refused_naming_the_line(folder, position, byte):
    damaged = bytearray(AMAT)
    damaged[position] = byte
    message = refused(read_amat, write(folder, bytes(damaged), "sample-file.amat"))
    assert f"line {position // LINE + 1}" in message


@many
@given(line=st.integers(0, 2), value=st.integers(0, 783), delete=st.booleans())
def test_amat_line_with_a_value_too_many_or_too_few_is_refused(folder, line, value, delete):
    lines = AMAT.decode().splitlines()
    values = lines[line].split()
    if delete:
        del values[value]
    else:
        values.insert(value, "1")
    lines[line] = " ".join(values)
    message = refused(read_amat, write(folder, "\n".join(lines).encode(), "sample-file.amat"))
    assert f"line {line + 1} has {783 if delete else 785} values" in message


@many
@given(content=st.binary(min_size=1, max_size=2000))
def test_amat_garbage_is_refused(folder, content):
    # A valid line needs 784 digits 0/1 alternating with whitespace (1,567 bytes at least);
    # random bytes never are that, and whitespace alone holds no image.
    refused(read_amat, write(folder, content, "sample-file.amat"))


# ---- not a file at all ------------------------------------------------------------------

@pytest.mark.parametrize("reader", [read_idx, read_amat])
def test_an_empty_file_is_refused(folder, reader):
    assert "empty" in refused(reader, write(folder, b"", "empty-file"))


@pytest.mark.parametrize("reader", [read_idx, read_amat])
def test_a_directory_is_refused(folder, reader):
    (folder / "a-directory").mkdir(exist_ok=True)
    assert "directory" in refused(reader, folder / "a-directory")


@pytest.mark.parametrize("reader", [read_idx, read_amat])
def test_a_missing_file_is_refused(folder, reader):
    assert "no such file" in refused(reader, folder / "never-written")


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no named pipes on this platform")
def test_a_named_pipe_is_refused_without_blocking(folder):
    os.mkfifo(folder / "a-pipe")
    assert "not a regular file" in refused(read_idx, folder / "a-pipe")


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0, reason="root can read anything")
def test_an_unreadable_file_is_refused(folder):
    path = write(folder, IDX, "unreadable.idx")
    path.chmod(0)
    assert "cannot read" in refused(read_idx, path)


def test_an_amat_larger_than_any_real_one_is_refused_without_reading_it_all(tmp_path, monkeypatch):
    from tinyvae.lab.datasets import readers

    monkeypatch.setattr(readers, "MAX_AMAT_BYTES", 10_000)
    bomb = tmp_path / "bomb.amat.gz"
    row = (" ".join(["0"] * 784) + "\n").encode()
    with gzip.open(bomb, "wb") as f:
        f.write(row * 100)  # 156,800 bytes of text from a file of a few hundred bytes
    with pytest.raises(DataError, match="bomb.amat.gz.*larger than any"):
        read_amat(bomb)
