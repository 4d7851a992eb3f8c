"""Writing output files so that a crash, a full disk or Ctrl-C never leaves half of one.

One mechanism for every file tinyvae writes (checkpoints, histories, figures, downloads):
a temporary file in the same folder (a rename is atomic only within one file system),
the bytes, flush and fsync (they are on disk before the name points at them), an optional
check of the finished file, os.replace over the target, and an fsync of the folder (the new
name is on disk too). On any failure the temporary file is removed and the old file, if
any, is untouched.

Two levels, for two kinds of caller:
- ``write_atomically`` raises the OSError that happened, for callers that handle it
  themselves (a download tries the next mirror; plots.py leaves it to the command).
- ``atomic_write``, ``write_json`` and ``check_writable_folder`` raise OutputError, whose
  message names the file and the reason: what a program prints and exits with.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

WRITE_TEST_NAME = ".write-test"  # check_writable_folder's probe, removed again at once


class OutputError(Exception):
    """An output file or folder could not be written; the message names it and the reason."""


def write_atomically(path: str | os.PathLike, write: Callable[[BinaryIO], None], *,
                     verify: Callable[[Path], None] | None = None, suffix: str = ".tmp") -> Path:
    """Write ``path`` with ``write(f)``; ``verify(tmp_path)`` may refuse the result by raising.

    The file is made readable by everyone (0644), like any file a program writes, rather than
    mkstemp's private 0600.
    """
    path = Path(path)
    fd, tmp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=suffix)
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as f:
            os.fchmod(f.fileno(), 0o644)
            write(f)
            f.flush()
            os.fsync(f.fileno())
        if verify is not None:
            verify(tmp)
        os.replace(tmp, path)
    except BaseException:  # Ctrl-C too: never leave a temporary file behind
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise
    fsync_folder(path.parent)
    return path


def fsync_folder(folder: str | os.PathLike) -> None:
    """Make a rename in ``folder`` durable. Some file systems cannot fsync a folder (EINVAL);
    the rename has already happened there, so that is not an error."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError as exc:
        if exc.errno not in (errno.EINVAL, errno.ENOTSUP, errno.EBADF):
            raise
    finally:
        os.close(fd)


def atomic_write(path: str | os.PathLike, write: Callable[[BinaryIO], None]) -> Path:
    """write_atomically, with an OSError turned into an OutputError naming the file.

    The message says the previous file, if any, is unchanged, since that is the first
    thing a user whose run just failed wants to know.
    """
    try:
        return write_atomically(path, write)
    except OSError as exc:
        raise OutputError(f"cannot write {path}: {os_error_reason(exc)}; "
                          "the previous file, if any, is unchanged") from exc


def write_json(path: str | os.PathLike, obj) -> Path:
    """Write ``obj`` as indented JSON, atomically. NaN is refused (it is not JSON)."""
    text = json.dumps(obj, indent=2, allow_nan=False) + "\n"
    return atomic_write(path, lambda f: f.write(text.encode("utf-8")))


def check_writable_folder(folder: str | os.PathLike) -> Path:
    """Create ``folder`` if needed and prove a file can be written there, before hours of training.

    Raises OutputError naming the folder and the reason (not a folder, read-only, disk full).
    """
    folder = Path(folder)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputError(f"cannot use output folder {folder}: {os_error_reason(exc)}") from exc
    atomic_write(folder / WRITE_TEST_NAME, lambda f: f.write(b"tinyvae"))
    with contextlib.suppress(OSError):
        os.unlink(folder / WRITE_TEST_NAME)
    return folder


def os_error_reason(exc: OSError) -> str:
    """The human part of an OSError ("No space left on device"), without errno noise."""
    return exc.strerror or str(exc) or type(exc).__name__
