"""Fetching a file from a list of mirrors, so that a failed download never leaves a file behind.

The rule is simple: the destination path either does not exist or holds a verified file.
To keep it, a download is streamed through files.write_atomically: to a temporary file in the
destination's own folder, verified by the caller's check, and only then renamed over the
destination. On any failure (and on Ctrl-C) the temporary file is deleted.

A mirror counts as failed on a connection error, a timeout, an HTTP error status, a body
shorter than its Content-Length, a body larger than the file can be (``max_bytes``: an
endless body never fills the disk), a download that outlasts ``deadline`` (a trickle of a
byte every few seconds never trips the per-read timeout, but it does trip this), or a file
that the check rejects; the next mirror is then tried. This module knows nothing about
datasets: data.py says which URLs to try, how to verify what they return and how large each
file can be.
"""

from __future__ import annotations

import http.client
import os
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from pathlib import Path

from ..storage.files import write_atomically, writing_alone

DEFAULT_TIMEOUT = 30.0  # seconds a socket may stay silent before the mirror counts as stalled
DEFAULT_DEADLINE = 1800.0  # seconds for one file from one mirror: the largest (78 MB) at 45 kB/s
# more than any dataset file (78.4 MB); callers pass a file's own cap
MAX_DOWNLOAD_BYTES = 128 * 2**20
_CHUNK = 1 << 16  # one read returns at most this: memory stays flat, the deadline is checked often


class DownloadError(OSError):
    """Every mirror failed. ``failures`` holds one ``(url, reason)`` pair per mirror tried."""

    def __init__(self, dest: Path, failures: list[tuple[str, str]]):
        self.dest = dest
        self.failures = failures
        reasons = "; ".join(f"{url}: {reason}" for url, reason in failures) or "no mirrors given"
        super().__init__(f"could not download {dest.name}: {reasons}")


def fetch(urls: Sequence[str], dest: str | os.PathLike, *, verify: Callable[[Path], None],
          timeout: float = DEFAULT_TIMEOUT, log: bool = True, max_bytes: int = MAX_DOWNLOAD_BYTES,
          deadline: float = DEFAULT_DEADLINE) -> Path:
    """Download the first of ``urls`` that succeeds and passes ``verify`` to ``dest``.

    ``verify(path)`` receives the complete temporary file and raises (ValueError or OSError)
    to reject it. ``timeout`` bounds each network wait (connect, each read), so a stalled
    mirror is left at once; ``deadline`` bounds the whole download from one mirror (give or
    take one ``timeout``), and ``max_bytes`` its size, checked against the Content-Length
    before the body is read and against the bytes as they arrive.
    Raises DownloadError (listing every mirror's failure) if none succeeds; an OSError if
    the destination folder cannot be created.
    """
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    # another process fetching dest finishes first; orphaned .part files go
    with writing_alone(dest):
        if dest.exists():  # that other process may have just fetched it
            try:
                verify(dest)
                return dest
            except (OSError, ValueError):
                pass
        return _fetch_first(urls, dest, verify, timeout, log, max_bytes, deadline)


def _fetch_first(urls, dest: Path, verify, timeout: float, log: bool, max_bytes: int,
                 deadline: float) -> Path:
    """Try each mirror in turn; the first that delivers a file passing ``verify`` wins."""
    failures: list[tuple[str, str]] = []
    for url in urls:
        if log:
            print(f"tinyvae: downloading {url} -> {dest}", file=sys.stderr)
        try:
            _fetch_one(url, dest, verify, timeout, max_bytes, deadline)
            return dest
        # Any of these means "this mirror did not deliver the file"; anything else (a bug,
        # KeyboardInterrupt) propagates, after _fetch_one has removed its temporary file.
        except (OSError, http.client.HTTPException, ValueError) as error:
            if isinstance(error, urllib.error.HTTPError):
                error.close()  # an HTTP error carries the open response; release the socket
            reason = str(error) or type(error).__name__
            failures.append((url, reason))
            if log:
                print(f"tinyvae: failed ({reason})", file=sys.stderr)
    raise DownloadError(dest, failures)


def _fetch_one(url: str, dest: Path, verify: Callable[[Path], None], timeout: float, max_bytes: int,
               deadline: float) -> None:
    """Stream ``url`` to a temporary file beside ``dest``, verify it, then rename it into place."""

    def stream(out) -> None:
        start = time.monotonic()
        with urllib.request.urlopen(url, timeout=min(timeout, deadline)) as response:
            declared = response.headers.get("Content-Length")
            if declared is not None and declared.isdigit() and int(declared) > max_bytes:
                raise OSError(f"the server announces {declared} bytes; "
                              f"the file has at most {max_bytes}")
            read = getattr(response, "read1", response.read)  # read1: one network read, then return
            received = 0
            while chunk := read(_CHUNK):
                received += len(chunk)
                if received > max_bytes:
                    raise OSError(f"more than {max_bytes} bytes received; "
                                  f"the file has at most {max_bytes}")
                if time.monotonic() - start > deadline:
                    raise OSError(f"gave up after {deadline:g} s with {received} bytes received "
                                  "(too slow)")
                out.write(chunk)
        # http.client returns a short body without complaint when the server closes
        # the connection early, so the length is checked here.
        if declared is not None and received != int(declared):
            raise OSError(f"connection closed after {received} of {declared} bytes")

    write_atomically(dest, stream, verify=verify, suffix=".part")
