"""Reading the dataset file formats with bounded memory, and hashing what was read.

IDX (MNIST, Fashion-MNIST; LeCun et al.): a 4-byte magic number ``00 00 TT NN`` (TT the element
type, 0x08 = unsigned byte; NN the number of dimensions), then NN big-endian uint32 sizes, then
the elements in C order. So the file length is fixed by its header, and the reader checks it
against the real length *before* allocating what the header claims: a damaged header that
claims billions of images fails at once, with a message, instead of exhausting memory.

``.amat`` (binarized MNIST of Larochelle & Murray, 2011): text, one image per line, 784 values
0 or 1 separated by spaces. It has no header to bound it, so MAX_AMAT_BYTES does.

Either may be gzip-compressed (detected by the magic bytes 1f 8b, not by the name).
``read_verified`` checks a file against its published SHA-256 while reading it (one pass over
the bytes), taken over the *uncompressed* content: a faithful re-compression (Debian's
Fashion-MNIST is one) passes while any change to the data does not. Every problem with a file
raises DataError naming the file.
"""

from __future__ import annotations

import gzip
import hashlib
import math
import os
import stat
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO

import numpy as np

D = 784  # pixels per image (28 x 28)
MAX_AMAT_BYTES = 256 * 2**20  # the largest real file, binarized_mnist_train.amat, is 78.4 MB
# The exact size of every IDX file of the datasets (MNIST and Fashion-MNIST alike): header + data.
IDX_BYTES = {"train-images-idx3-ubyte": 16 + 60_000 * D, "train-labels-idx1-ubyte": 8 + 60_000,
             "t10k-images-idx3-ubyte": 16 + 10_000 * D, "t10k-labels-idx1-ubyte": 8 + 10_000}
MAX_IDX_BYTES = max(IDX_BYTES.values())  # 47,040,016: no dataset file is larger
_CHUNK = 1 << 20  # read in 1 MiB pieces: memory grows with the real data, never with a claim
_IDX_TYPES = {0x08: "unsigned byte", 0x09: "signed byte", 0x0B: "int16", 0x0C: "int32",
              0x0D: "float32", 0x0E: "float64"}


class DataError(ValueError):
    """A data file is missing, unreadable, corrupt or not what was expected; names the file."""


@contextmanager
def _open_data_file(path: Path, label: str | None = None) -> Iterator[tuple[BinaryIO, int | None]]:
    """Yield ``(stream of uncompressed bytes, uncompressed size if known)``.

    Every low-level failure while the ``with`` block runs (I/O errors, a truncated or corrupt
    gzip stream) comes out as a DataError that names the file (``label`` if given, else path).
    """
    name = label or path
    try:
        info = path.stat()
        if stat.S_ISDIR(info.st_mode):
            raise DataError(f"{name}: is a directory, expected a data file")
        if not stat.S_ISREG(info.st_mode):  # e.g. a pipe, which could block forever
            raise DataError(f"{name}: is not a regular file")
        if info.st_size == 0:
            raise DataError(f"{name}: the file is empty")
        with open(path, "rb") as raw:
            if raw.read(2) == b"\x1f\x8b":
                raw.seek(0)
                with gzip.GzipFile(fileobj=raw, mode="rb") as unzipped:
                    yield unzipped, None  # the true size is known only after decompressing
            else:
                raw.seek(0)
                yield raw, os.fstat(raw.fileno()).st_size
    except DataError:
        raise
    except FileNotFoundError as error:
        raise DataError(f"{name}: no such file") from error
    # BadGzipFile is an OSError, so it must be caught before the generic OSError below.
    except (gzip.BadGzipFile, EOFError, zlib.error) as error:
        raise DataError(f"{name}: corrupt or truncated gzip data ({error})") from error
    except OSError as error:
        raise DataError(f"{name}: cannot read ({error.strerror or error})") from error


def _read_upto(stream: BinaryIO, limit: float, digest) -> bytearray:
    """Read at most ``limit`` bytes, in chunks, feeding ``digest``; fewer if the data ends."""
    chunks, n = [], 0
    while n < limit:
        chunk = stream.read(min(_CHUNK, limit - n))
        if not chunk:
            break
        digest.update(chunk)
        chunks.append(chunk)
        n += len(chunk)
    return bytearray().join(chunks)  # one copy; a bytearray so that arrays on it are writable


def uncompressed_sha256(path: str | os.PathLike, *, label: str | None = None) -> str:
    """SHA-256 (hex) of a file's uncompressed content, streamed; DataError if unreadable.

    ``label`` replaces the path in error messages (a download's temporary name means nothing).
    """
    digest = hashlib.sha256()
    with _open_data_file(Path(path), label) as (stream, _):
        while chunk := stream.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def read_verified(path: str | os.PathLike, name: str, sha256: str) -> np.ndarray:
    """Read the file expected to be ``name`` (``*.amat`` or IDX) found at ``path``, and refuse it
    unless the SHA-256 of its uncompressed content is ``sha256``."""
    if name.endswith(".amat"):
        array, actual = _read_amat_and_sha256(path)
    else:  # a known file may not declare more than its own size, an unknown one than the largest
        array, actual = _read_idx_and_sha256(path, IDX_BYTES.get(name, MAX_IDX_BYTES), name)
    if actual != sha256:
        raise DataError(f"{path}: checksum mismatch: the SHA-256 of the uncompressed content is "
                        f"{actual}, expected {sha256}; the file is damaged or not "
                        f"{name}; delete it to have it downloaded again")
    return array


# ---- IDX --------------------------------------------------------------------------------

def read_idx(path: str | os.PathLike, max_bytes: int = MAX_IDX_BYTES) -> np.ndarray:
    """Read an IDX file of unsigned bytes (plain or gzip) into a uint8 array of its declared shape;
    a header declaring more than ``max_bytes`` in all is refused before anything is allocated."""
    return _read_idx_and_sha256(path, max_bytes)[0]


def _read_idx_and_sha256(path: str | os.PathLike, max_bytes: int = MAX_IDX_BYTES,
                         name: str | None = None) -> tuple[np.ndarray, str]:
    """Parse an IDX file; return the uint8 array and the SHA-256 of the uncompressed bytes."""
    path = Path(path)
    digest = hashlib.sha256()
    with _open_data_file(path) as (stream, size):
        shape = _read_idx_header(stream, path, digest)
        n_data = math.prod(shape)  # exact Python int: no overflow however large the claim
        n_header = 4 + 4 * len(shape)
        # before reading: a sparse or gzip file can back any claim
        if n_header + n_data > max_bytes:
            raise DataError(f"{path}: the header declares shape {shape}, {n_header + n_data} bytes,"
                            + (f" but {name} has {max_bytes}" if name
                               else f" but no dataset file has more than {max_bytes}"))
        if size is not None and size != n_header + n_data:
            raise DataError(f"{path}: the header declares shape {shape}, which needs "
                            f"{n_header + n_data} bytes, but the file has {size}")
        # Ask for one byte more than declared: getting it means trailing data, and for
        # gzip it forces the reader to the end of the stream, where the CRC is checked.
        data = _read_upto(stream, n_data + 1, digest)
    if len(data) < n_data:
        raise DataError(f"{path}: truncated: the header declares shape {shape} "
                        f"({n_data} data bytes) but the data ends after {len(data)}")
    if len(data) > n_data:
        raise DataError(f"{path}: more data than the header's shape {shape} declares "
                        f"({n_data} bytes)")
    return np.frombuffer(data, dtype=np.uint8).reshape(shape), digest.hexdigest()


def _read_idx_header(stream: BinaryIO, path: Path, digest) -> tuple[int, ...]:
    """The shape an IDX header declares, after checking its magic number and element type."""
    magic = _read_upto(stream, 4, digest)
    if len(magic) < 4:
        raise DataError(f"{path}: {len(magic)} bytes is too short for an IDX file "
                        "(the magic number alone is 4 bytes)")
    if magic[:2] != b"\0\0":
        raise DataError(f"{path}: not an IDX file: magic number {magic.hex()} "
                        "should start with 0000 (a gzip file starts with 1f8b)")
    type_code, ndim = magic[2], magic[3]
    if type_code != 0x08:
        kind = _IDX_TYPES.get(type_code, "unknown")
        raise DataError(f"{path}: IDX element type 0x{type_code:02x} ({kind}); "
                        "only 0x08 (unsigned byte) is supported")
    if ndim == 0:
        raise DataError(f"{path}: IDX header declares 0 dimensions")
    sizes = _read_upto(stream, 4 * ndim, digest)
    if len(sizes) < 4 * ndim:
        raise DataError(f"{path}: truncated IDX header: {ndim} dimensions need "
                        f"{4 * ndim} size bytes, the file has {len(sizes)}")
    return tuple(int.from_bytes(sizes[4 * i:4 * i + 4], "big") for i in range(ndim))


# ---- .amat ------------------------------------------------------------------------------

def read_amat(path: str | os.PathLike) -> np.ndarray:
    """Read a binarized-MNIST ``.amat`` file (plain or gzip) into a (N, 784) uint8 array of 0/1."""
    return _read_amat_and_sha256(path)[0]


def _read_amat_and_sha256(path: str | os.PathLike) -> tuple[np.ndarray, str]:
    """Parse an ``.amat`` file; return a (N, 784) uint8 array of 0/1 and the content's SHA-256."""
    path = Path(path)
    digest = hashlib.sha256()
    with _open_data_file(path) as (stream, _):
        # A cap keeps a corrupt or hostile gzip (a "decompression bomb") from filling the memory.
        text = _read_upto(stream, MAX_AMAT_BYTES + 1, digest)
    if len(text) > MAX_AMAT_BYTES:
        raise DataError(f"{path}: more than {MAX_AMAT_BYTES // 2**20} MiB of text, larger than any "
                        f"binarized-MNIST .amat file (the training split is 75 MiB)")
    digits = _canonical_amat(text)
    if digits is None:
        digits = _amat_lines(text, path)
    return digits - np.uint8(ord("0")), digest.hexdigest()


def _canonical_amat(text: bytearray) -> np.ndarray | None:
    """The (N, D) digit characters if ``text`` has the canonical layout, else None.

    Canonical: every line is "0 1 ... 0\\n", 784 digits, 783 spaces and a newline; this fast
    path checks it with whole-array comparisons instead of splitting 70,000 lines.
    """
    line = 2 * D
    if not text or len(text) % line:
        return None
    chars = np.frombuffer(text, dtype=np.uint8).reshape(-1, line)
    digits = chars[:, 0::2]  # (N, D)
    if ((chars[:, 1:-1:2] == ord(" ")).all() and (chars[:, -1] == ord("\n")).all()
            and ((digits == ord("0")) | (digits == ord("1"))).all()):
        return digits
    return None


def _amat_lines(text: bytearray, path: Path) -> np.ndarray:
    """The (N, D) digit characters of any layout (any whitespace, CRLF, no final newline),
    with an error that names the first bad line."""
    rows = []
    for number, row in enumerate(text.split(b"\n"), start=1):
        values = row.split()
        if not values:
            continue  # blank line
        joined = b"".join(values)
        if len(values) != D:
            raise DataError(f"{path}: line {number} has {len(values)} values, expected {D}")
        if len(joined) != D or joined.translate(None, b"01"):
            raise DataError(f"{path}: line {number} has a value that is not 0 or 1")
        rows.append(np.frombuffer(joined, dtype=np.uint8))
    if not rows:
        raise DataError(f"{path}: no images found (expected lines of {D} values 0 or 1)")
    return np.stack(rows)
