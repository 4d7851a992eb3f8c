"""Writing a file so that a crash, a full disk or Ctrl-C never leaves half of it.

One mechanism for every file tinyvae writes (checkpoints, histories, figures, downloads):
a temporary file in the same folder (a rename is atomic only within one file system),
the bytes, flush and fsync (they are on disk before the name points at them), an optional
check of the finished file, os.replace over the target, and an fsync of the folder (the new
name is on disk too). On any failure the temporary file is removed and the old file, if
any, is untouched. Errors are the OSError that happened; callers add what they were writing.
"""

from __future__ import annotations

import contextlib
import errno
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO


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
