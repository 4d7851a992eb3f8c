"""What an output path is, and writing the ones that are streams.

files.write_atomically replaces its target with a new file; that is right for a file, and wrong
for anything else a user may give as an output:

- a regular file, or a name that does not exist yet ("file"): written atomically. Through a
  symbolic link, the file the link points to is replaced and the link stays a link (a folder
  of links to shared figures keeps working); a dangling link makes the file it points to.
- a stream ("stream"): a character device (/dev/null), a FIFO (`mkfifo`, `>(jq .)`), or a path
  that names a descriptor the process has open (/dev/stdout, /dev/fd/63): written directly,
  appended, never replaced. Replacing /dev/stdout as root turns a device into a regular file;
  replacing what /dev/stdout resolves to pulls a file from under the shell writing it.
- anything else ("other": a folder, a socket, a block device): refused.
"""

from __future__ import annotations

import errno
import io
import os
import stat
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO


def output_kind(path: str | os.PathLike) -> str:
    """How write_atomically writes ``path``: "file", "stream" or "other" (see the module)."""
    try:
        mode = os.stat(path).st_mode  # follows links, /dev/stdout's to /proc/self/fd/1 too
    except (FileNotFoundError, NotADirectoryError):
        return "file"  # a new file (a dangling link: a new file where it points)
    if _names_a_descriptor(path) or stat.S_ISCHR(mode) or stat.S_ISFIFO(mode):
        return "stream"
    return "file" if stat.S_ISREG(mode) else "other"


def _names_a_descriptor(path) -> bool:
    """Whether ``path`` reaches an open descriptor through /proc (/dev/stdout, /dev/fd/N)."""
    hop = os.path.abspath(path)
    for _ in range(40):  # the kernel's own limit on links followed
        if os.path.realpath(os.path.dirname(hop)).startswith("/proc/"):
            return True
        if not os.path.islink(hop):
            return False
        hop = os.path.join(os.path.dirname(hop), os.readlink(hop))
    return False


def write_stream(path: str | os.PathLike, write: Callable[[BinaryIO], None]) -> None:
    """Write to a device, a FIFO or an open descriptor: appended, never truncated. The bytes are
    made whole first (a stream cannot seek, which an .npz's zip needs); a FIFO that nobody
    reads is refused at once (O_NONBLOCK's ENXIO), not waited on. Raises OSError."""
    whole = io.BytesIO()
    write(whole)
    try:
        flags = os.O_WRONLY | os.O_APPEND | os.O_NONBLOCK | getattr(os, "O_NOCTTY", 0)
        fd = os.open(Path(path), flags)
    except OSError as exc:
        if exc.errno == errno.ENXIO:
            raise OSError(errno.ENXIO, "a pipe that nobody reads") from None
        raise
    os.set_blocking(fd, True)  # the writes themselves wait for the reader, as any writer's do
    with os.fdopen(fd, "wb") as f:
        f.write(whole.getvalue())
