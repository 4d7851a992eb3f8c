"""Fetching a file from a list of mirrors, so that a failed download never leaves a file behind.

The rule is simple: the destination path either does not exist or holds a verified file.
To keep it, a download is streamed through files.write_atomically: to a temporary file in the
destination's own folder, verified by the caller's check, and only then renamed over the
destination. On any failure (and on Ctrl-C) the temporary file is deleted.

A mirror counts as failed on a connection error, a timeout, an HTTP error status, a body
shorter than its Content-Length, or a file that the check rejects; the next mirror is then
tried. This module knows nothing about datasets: data.py says which URLs to try
and how to verify what they return.
"""

from __future__ import annotations

import http.client
import os
import sys
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from pathlib import Path

from .files import write_atomically

DEFAULT_TIMEOUT = 30.0  # seconds a socket may stay silent before the mirror counts as stalled
_CHUNK = 1 << 20  # stream in 1 MiB pieces: memory stays flat whatever the file size


class DownloadError(OSError):
    """Every mirror failed. ``failures`` holds one ``(url, reason)`` pair per mirror tried."""

    def __init__(self, dest: Path, failures: list[tuple[str, str]]):
        self.dest = dest
        self.failures = failures
        reasons = "; ".join(f"{url}: {reason}" for url, reason in failures) or "no mirrors given"
        super().__init__(f"could not download {dest.name}: {reasons}")


def fetch(urls: Sequence[str], dest: str | os.PathLike, *, verify: Callable[[Path], None],
          timeout: float = DEFAULT_TIMEOUT, log: bool = True) -> Path:
    """Download the first of ``urls`` that succeeds and passes ``verify`` to ``dest``.

    ``verify(path)`` receives the complete temporary file and raises (ValueError or OSError)
    to reject it. ``timeout`` bounds each network wait (connect, each read), not the total
    time, so a slow but steady download is not cut off while a stalled one is.
    Raises DownloadError (listing every mirror's failure) if none succeeds; an OSError if
    the destination folder cannot be created.
    """
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    failures: list[tuple[str, str]] = []
    for url in urls:
        if log:
            print(f"tinyvae: downloading {url} -> {dest}", file=sys.stderr)
        try:
            _fetch_one(url, dest, verify, timeout)
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


def _fetch_one(url: str, dest: Path, verify: Callable[[Path], None], timeout: float) -> None:
    """Stream ``url`` to a temporary file beside ``dest``, verify it, then rename it into place."""

    def stream(out) -> None:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            declared = response.headers.get("Content-Length")
            received = 0
            while chunk := response.read(_CHUNK):
                out.write(chunk)
                received += len(chunk)
        # http.client returns a short body without complaint when the server closes
        # the connection early, so the length is checked here.
        if declared is not None and received != int(declared):
            raise OSError(f"connection closed after {received} of {declared} bytes")

    write_atomically(dest, stream, verify=verify, suffix=".part")
