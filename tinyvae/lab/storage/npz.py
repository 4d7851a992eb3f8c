"""Reading an .npz archive whose every claim is checked before anything is read or allocated.

An .npz is a zip archive of .npy arrays, and a zip is a list of claims: how many members there
are, what each is called, how many bytes each holds. A damaged or hostile file can claim
200,000 members, a member of 4 TB, two members of the same name, or a member that inflates a
few megabytes into gigabytes. ``NpzArchive`` checks the claims in this order, each before the
work it would cost:

1. the path is a regular file (a FIFO would block ``open`` forever), opened without blocking;
2. the end-of-central-directory record (the last bytes of the file) gives the member count and
   the size of the directory: both are bounded before zipfile parses a single entry;
3. every entry: a ``<key>.npy`` name, no name twice, stored uncompressed (np.savez never
   compresses, so a compressed member was not written by tinyvae and could be a zip bomb),
   not encrypted, and no larger than the file itself;
4. ``read(key, limit)``: the member's declared size against what the caller allows for that key
   (a checkpoint derives it from its config), then the .npy header's shape and dtype against
   the declared size (no object arrays: they would be unpickled), and only then the bytes,
   read in pieces, so memory grows with real data, never with a claim.

Every failure raises the caller's error class with a message that names the file and the key.
"""

from __future__ import annotations

import os
import stat
import struct
import zipfile
import zlib
from pathlib import Path

import numpy as np

MAX_MEMBERS = 4096  # a checkpoint of a 10-layer model has under 150
_ENTRY_BYTES = 512  # generous room for one central-directory entry (46 bytes + name + extras)
_CHUNK = 1 << 20
_EOCD, _ZIP64_LOCATOR = b"PK\x05\x06", b"PK\x06\x07"
# what zipfile, zlib and numpy's header parser raise on damaged bytes: each means "corrupt"
_DAMAGE = (zipfile.BadZipFile, zlib.error, EOFError, OSError, ValueError, NotImplementedError,
           OverflowError, struct.error, KeyError, IndexError, RuntimeError)


class NpzArchive:
    """An .npz opened for checked reading: ``members`` maps each key (name without ``.npy``) to
    its ZipInfo, after steps 1-3 above; ``read(key, limit)`` returns one array (step 4)."""

    def __init__(self, path: str | os.PathLike, error: type[Exception], *, what: str = "checkpoint",
                 max_members: int = MAX_MEMBERS):
        self.path, self.error = Path(path), error
        self._file = _open_regular_file(self.path, error, what)
        try:
            self.size = os.fstat(self._file.fileno()).st_size
            self._check_magic(what)
            _check_directory_claims(self._file, self.size, max_members, self.fail)
            self._zip = zipfile.ZipFile(self._file)
            self.members = self._checked_members(self._zip.infolist(), max_members)
        except BaseException as exc:
            self.close()
            if isinstance(exc, _DAMAGE) and not isinstance(exc, error):
                raise error(f"{self.path} is corrupt or truncated: "
                            f"{type(exc).__name__}: {exc}") from exc
            raise

    def fail(self, what: str):
        raise self.error(f"{self.path} is corrupt: {what}")

    def close(self) -> None:
        if getattr(self, "_zip", None) is not None:
            self._zip.close()
        self._file.close()

    def __enter__(self) -> NpzArchive:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _check_magic(self, what: str) -> None:
        magic = self._file.read(6)
        self._file.seek(0)
        if magic == b"\x93NUMPY":
            raise self.error(f"{self.path} is a single .npy array, not a {what} .npz archive")
        if not magic.startswith(b"PK"):
            raise self.error(f"{self.path} is not a {what}: not an .npz (zip) archive")

    def _checked_members(self, infos: list[zipfile.ZipInfo],
                         max_members: int) -> dict[str, zipfile.ZipInfo]:
        if len(infos) > max_members:
            self.fail(f"it has {len(infos)} members; an .npz of tinyvae has at most {max_members}")
        members: dict[str, zipfile.ZipInfo] = {}
        for info in infos:
            if not info.filename.endswith(".npy"):
                raise self.error(f"{self.path} holds {info.filename!r}, which is not an .npy array")
            key = info.filename[:-len(".npy")]
            if key in members:
                self.fail(f"the member {key!r} appears twice (which one is meant?)")
            if info.compress_type != zipfile.ZIP_STORED:
                self.fail(f"{key!r} is compressed; tinyvae stores arrays uncompressed (np.savez), "
                          "and a compressed member could inflate without bound")
            if info.flag_bits & 0x1:
                self.fail(f"{key!r} is encrypted")
            if info.file_size != info.compress_size or info.file_size > self.size:
                self.fail(f"{key!r} claims {info.file_size} bytes, the whole file has {self.size}")
            members[key] = info
        return members

    def read(self, key: str, limit: int) -> np.ndarray:
        """The array stored under ``key``, refused if it declares more than ``limit`` bytes."""
        info = self.members[key]
        if info.file_size > limit:
            self.fail(f"{key!r} declares {info.file_size} bytes; "
                      f"at most {limit} are expected there")
        try:
            with self._zip.open(info) as member:
                shape, fortran, dtype = _read_header(member, key, self)
                n_bytes = int(np.prod(shape, dtype=object)) * dtype.itemsize
                header_bytes = member.tell()
                if header_bytes + n_bytes != info.file_size:
                    self.fail(f"{key!r} claims shape {shape} of {dtype} ({n_bytes} bytes) "
                              f"but holds {info.file_size - header_bytes}")
                data = bytearray()
                while (len(data) < n_bytes
                        and (chunk := member.read(min(_CHUNK, n_bytes - len(data))))):
                    data += chunk
        except _DAMAGE as exc:
            if isinstance(exc, self.error):
                raise
            raise self.error(f"{self.path} is corrupt or truncated at {key!r}: "
                             f"{type(exc).__name__}: {exc}") from exc
        if len(data) != n_bytes:
            self.fail(f"{key!r} ends after {len(data)} of its {n_bytes} bytes")
        if dtype.itemsize == 0:
            return np.zeros(shape, dtype)
        return np.frombuffer(data, dtype=dtype).reshape(shape, order="F" if fortran else "C")


def _open_regular_file(path: Path, error: type[Exception], what: str):
    """Open ``path`` for reading without ever blocking, and refuse anything but a regular file."""
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    except OSError as exc:
        raise error(f"cannot read {what} {path}: {exc.strerror or exc}") from exc
    mode = os.fstat(fd).st_mode
    if not stat.S_ISREG(mode):
        os.close(fd)
        kind = "a folder" if stat.S_ISDIR(mode) else "not a regular file (a pipe or a device?)"
        raise error(f"{path} is {kind}, not a {what} file")
    return os.fdopen(fd, "rb")


def _check_directory_claims(f, size: int, max_members: int, fail) -> None:
    """Bound the member count and the central directory's size from the end records alone."""
    # the record is 22 bytes, plus a comment of up to 64 KiB
    tail_start = max(0, size - (22 + 0xFFFF))
    f.seek(tail_start)
    tail = f.read()
    at = tail.rfind(_EOCD)
    if at < 0 or len(tail) - at < 22:
        fail("no zip end-of-central-directory record (truncated?)")
    count = int.from_bytes(tail[at + 10:at + 12], "little")
    directory = int.from_bytes(tail[at + 12:at + 16], "little")
    if at >= 20 and tail[at - 20:at - 16] == _ZIP64_LOCATOR:  # a zip64 record overrides both
        f.seek(int.from_bytes(tail[at - 12:at - 4], "little"))
        record = f.read(56)
        if len(record) < 56 or not record.startswith(b"PK\x06\x06"):
            fail("a broken zip64 end-of-central-directory record")
        count = int.from_bytes(record[32:40], "little")
        directory = int.from_bytes(record[40:48], "little")
    if count > max_members or directory > max_members * _ENTRY_BYTES:
        fail(f"it claims {count} members in a {directory}-byte directory; an .npz of tinyvae has "
             f"at most {max_members}")
    f.seek(0)


def _read_header(member, key: str, archive: NpzArchive) -> tuple[tuple[int, ...], bool, np.dtype]:
    """The .npy header's (shape, fortran_order, dtype); object dtypes are refused unread."""
    version = np.lib.format.read_magic(member)
    if version == (1, 0):
        shape, fortran, dtype = np.lib.format.read_array_header_1_0(member)
    elif version == (2, 0):
        shape, fortran, dtype = np.lib.format.read_array_header_2_0(member)
    else:
        archive.fail(f"{key!r} has .npy format version {version}; expected 1.0 or 2.0")
    if dtype.hasobject:
        raise archive.error(f"{archive.path} contains a pickled Python object under {key!r}; "
                            "tinyvae files hold plain arrays only and are never unpickled "
                            "(that could run code)")
    return shape, fortran, dtype
