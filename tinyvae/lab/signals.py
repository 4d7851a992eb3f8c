"""SIGTERM and SIGHUP stop a command as Ctrl-C does.

`kill`, batch schedulers and container runtimes send SIGTERM; a closed terminal or SSH session
sends SIGHUP. Python's default for both is to die on the spot: no message, and the temporary
file of a write under way is left behind. Within ``stops_as_ctrl_c()`` both raise
KeyboardInterrupt instead, so that what cleans up after Ctrl-C (storage/files.py's temporary
files, the runner's last checkpoint) runs for them too, and the command ends as an interrupted
one: its message and exit status 130.

A signal that is ignored when the block starts stays ignored: `nohup` ignores SIGHUP so that a
run outlives its terminal, and that must keep working. The previous handlers come back after
the block. Only the main thread can set handlers; anywhere else this does nothing.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator

STOP_SIGNALS = ("SIGTERM", "SIGHUP")  # SIGINT (Ctrl-C) raises KeyboardInterrupt already
INTERRUPTED = 130  # the exit status of a command stopped by any of them: 128 + SIGINT, as in shells


@contextlib.contextmanager
def stops_as_ctrl_c() -> Iterator[None]:
    """SIGTERM and SIGHUP raise KeyboardInterrupt within the block (unless they are ignored)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {}
    for name in STOP_SIGNALS:
        number = getattr(signal, name, None)  # Windows has no SIGHUP
        if number is None or signal.getsignal(number) == signal.SIG_IGN:
            continue
        previous[number] = signal.signal(number, signal.default_int_handler)
    try:
        yield
    finally:
        for number, handler in previous.items():
            # None: a handler set outside Python, which cannot be put back; the default is closest
            signal.signal(number, signal.SIG_DFL if handler is None else handler)
