"""Writing output files so that a crash, a full disk or Ctrl-C never leaves half of one.

One mechanism for every file tinyvae writes (checkpoints, histories, figures, downloads):
a temporary file in the same folder (a rename is atomic only within one file system),
the bytes, flush and fsync (they are on disk before the name points at them), an optional
check of the finished file, os.replace over the target, and an fsync of the folder (the new
name is on disk too). On any failure the temporary file is removed and the old file, if
any, is untouched.

That is for a target that is a file (or a link to one: written through, the link stays a
link); a stream (a device, a FIFO, /dev/stdout) is written directly and anything else is
refused, as targets.py says.

Two levels, for two kinds of caller:
- ``write_atomically`` raises CannotWrite, an OSError saying "cannot write X: reason", for
  callers that handle it themselves (a download tries the next mirror; figures/plots.py
  leaves it to the command).
- ``atomic_write``, ``write_json`` and ``check_writable_folder`` raise OutputError, whose
  message names the file and the reason: what a program prints and exits with.

A run owns its output folder (``hold_folder``, ``run_folder``): an flock that dies with the
process, so a second run on the same folder is refused at once, and the temporaries that a
killed run left are removed only by a process that holds the folder, never under a live writer.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import re
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import BinaryIO

from .targets import output_kind, write_stream

try:
    import fcntl
except ImportError:  # not POSIX: folders are not locked
    fcntl = None

WRITE_TEST_NAME = ".write-test"  # check_writable_folder's probe, removed again at once
LOCK_NAME = ".tinyvae.lock"  # exists while a run holds its folder (hold_folder)
# write_atomically's temporaries: "." + target name + "." + mkstemp's 8 random characters + suffix
_TEMPORARY = re.compile(r"\..+\.[a-z0-9_]{8}\.(tmp|part)")
_held: dict[str, list] = {}  # folder -> [lock file descriptor, how many holders in this process]


class OutputError(Exception):
    """An output file or folder could not be written; the message names it and the reason."""


class CannotWrite(OSError):
    """An OSError while writing ``filename``: "cannot write FILE: reason", whatever the errno."""
    def __str__(self) -> str:
        return f"cannot write {self.filename}: {self.strerror}"


def write_atomically(path: str | os.PathLike, write: Callable[[BinaryIO], None], *,
                     verify: Callable[[Path], None] | None = None, suffix: str = ".tmp") -> Path:
    """Write ``path`` with ``write(f)``; ``verify(tmp_path)`` may refuse the result by raising.

    How depends on what ``path`` is (targets.output_kind). The file is made
    readable by everyone (0644), like any file a program writes, rather than mkstemp's
    private 0600. Any OSError is raised as CannotWrite naming ``path``, not a temporary file.
    """
    path = Path(path)
    try:
        kind = output_kind(path)
        if kind == "other" or (kind == "stream" and verify is not None):
            raise OSError(errno.EINVAL, "not a regular file, a device or a pipe" if kind == "other"
                          else "a file that is checked must be a regular file")
        if kind == "stream":
            write_stream(path, write)
        else:  # a link is written through: the file it points to is replaced
            _replace(Path(os.path.realpath(path)), write, verify, suffix)
    except OSError as exc:
        raise CannotWrite(exc.errno, os_error_reason(exc), str(path)) from exc
    return path


def _replace(target: Path, write, verify, suffix: str) -> None:
    """The atomic write itself: a temporary file beside ``target``, then os.replace over it."""
    fd, tmp_name = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=suffix)
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as f:
            os.fchmod(f.fileno(), 0o644)
            write(f)
            f.flush()
            os.fsync(f.fileno())
        if verify is not None:
            verify(tmp)
        os.replace(tmp, target)
    except BaseException:  # Ctrl-C too: never leave a temporary file behind
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise
    fsync_folder(target.parent)


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
    if folder.exists() and not folder.is_dir():
        raise OutputError(f"cannot write in {folder}: it is a file, not a folder")
    try:
        folder.mkdir(parents=True, exist_ok=True)
        write_atomically(folder / WRITE_TEST_NAME, lambda f: f.write(b"tinyvae"))
    except OSError as exc:
        raise OutputError(f"cannot write in {folder}: {os_error_reason(exc)}") from exc
    with contextlib.suppress(OSError):
        os.unlink(folder / WRITE_TEST_NAME)
    return folder


def os_error_reason(exc: OSError) -> str:
    """The human part of an OSError ("No space left on device"), without errno noise."""
    return exc.strerror or str(exc) or type(exc).__name__


@contextlib.contextmanager
def hold_folder(folder: str | os.PathLike) -> Iterator[Path]:
    """Own ``folder`` for the ``with`` block: no other process can hold it meanwhile.

    The claim is an flock on LOCK_NAME, so the kernel drops it when the process ends, however
    it ends (SIGKILL and power cuts too): a lock never outlives its run. Another run asking
    for the folder gets an OutputError at once, naming the process that holds it. Re-entrant
    within one process (a command may hold its folder around fit, which holds it again), and
    LOCK_NAME is removed on release, so a finished run leaves only its own outputs. The folder
    is created if it does not exist.
    """
    folder = Path(folder)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputError(f"cannot write in {folder}: {os_error_reason(exc)}") from exc
    key = os.path.realpath(folder)
    if key not in _held:
        _held[key] = [_lock(folder), 0]
    _held[key][1] += 1
    try:
        yield folder
    finally:
        _held[key][1] -= 1
        if _held[key][1] == 0:
            fd = _held.pop(key)[0]
            if fd is not None:
                with contextlib.suppress(OSError):
                    # while still locked: nobody can hold a stale inode
                    os.unlink(folder / LOCK_NAME)
                os.close(fd)


def _lock(folder: Path, name: str = LOCK_NAME, wait: bool = False) -> int | None:
    """Open and flock ``name``, waiting for its holder or not; retry if the file was replaced
    meanwhile (its holder removed it on release)."""
    if fcntl is None:
        return None
    path = folder / name
    while True:
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:
            raise OutputError(f"cannot write in {folder}: {os_error_reason(exc)}") from exc
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
        except OSError:
            holder = os.read(fd, 32).decode("ascii", "replace").strip() or "unknown"
            os.close(fd)
            raise OutputError(f"{folder} is in use by another run (process {holder}); wait for it "
                              "to end or choose another output folder") from None
        try:
            same = os.fstat(fd).st_ino == os.stat(path).st_ino
        except FileNotFoundError:
            same = False
        if same:
            os.ftruncate(fd, 0)
            os.write(fd, f"{os.getpid()}\n".encode())
            return fd
        os.close(fd)  # we locked a file its holder had just removed: take the new one


def remove_stale_temporaries(folder: str | os.PathLike) -> list[Path]:
    """Delete the temporary files of writes that a killed process left in ``folder``.

    write_atomically removes its temporary file on every failure it can see; only SIGKILL or a
    power cut leaves one (".checkpoint.npz.k2j4_x9q.tmp"), and the real file beside it is
    intact. Call it only while holding the folder (hold_folder): then no live run is writing there.
    """
    folder = Path(folder)
    stale = [path for path in folder.iterdir()
             if _TEMPORARY.fullmatch(path.name) and path.is_file()]
    stale += [path for path in [folder / WRITE_TEST_NAME] if path.exists()]
    for path in stale:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
    return stale


@contextlib.contextmanager
def run_folder(folder: str | os.PathLike) -> Iterator[Path]:
    """A run's output folder for the ``with`` block: created if needed, held (hold_folder), proven
    writable (check_writable_folder) and cleared of the temporaries that killed runs left."""
    with hold_folder(folder) as folder:
        check_writable_folder(folder)
        remove_stale_temporaries(folder)  # safe: no live run writes in a folder we hold
        yield folder


@contextlib.contextmanager
def writing_alone(path: str | os.PathLike) -> Iterator[Path]:
    """Be the only process writing ``path`` for the ``with`` block, waiting for one that is, and
    first remove the temporaries of writers of ``path`` that were killed. Downloads use it: two
    processes fetching one file take turns, and a killed one's partial file is not left forever."""
    path = Path(path)
    fd = _lock(path.parent, f".{path.name}.lock", wait=True)
    try:
        for orphan in path.parent.iterdir():
            if orphan.name.startswith(f".{path.name}.") and _TEMPORARY.fullmatch(orphan.name):
                with contextlib.suppress(FileNotFoundError):
                    orphan.unlink()
        yield path
    finally:
        if fd is not None:
            with contextlib.suppress(OSError):
                os.unlink(path.parent / f".{path.name}.lock")
            os.close(fd)
