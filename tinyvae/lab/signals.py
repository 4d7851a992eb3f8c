"""SIGTERM and SIGHUP stop a command as Ctrl-C does.

`kill`, batch schedulers and container runtimes send SIGTERM; a closed terminal or SSH session
sends SIGHUP. Python's default for both is to die on the spot: no message, and the temporary
file of a write under way is left behind. Within ``stops_as_ctrl_c()`` both raise
KeyboardInterrupt instead, so that what cleans up after Ctrl-C (storage/files.py's temporary
files, the runner's last checkpoint) runs for them too, and the command ends as an interrupted
one: its message and exit status 130.

A Ctrl-C can also land where Python cannot raise it: in a callback of the interpreter's own (a
weak reference's, which importlib uses while modules load, or a __del__). Python then prints
"Exception ignored in ..." with a traceback and goes on as if nothing happened. Within the
block such an interrupt is kept instead of printed, and raised where the command can stop:
by ``raise_lost_interrupt()`` (after a verb's modules have loaded), or at the end of the block.
And a Ctrl-C while an extension module initializes comes out as an ImportError caused by it
(``caused_by_ctrl_c``).

A signal that is ignored when the block starts stays ignored: `nohup` ignores SIGHUP so that a
run outlives its terminal, and that must keep working. The previous handlers come back after
the block. Only the main thread can set handlers; anywhere else this does nothing.
"""

from __future__ import annotations

import contextlib
import signal
import sys
import threading
from collections.abc import Iterator

STOP_SIGNALS = ("SIGTERM", "SIGHUP")  # SIGINT (Ctrl-C) raises KeyboardInterrupt already
INTERRUPTED = 130  # the exit status of a command stopped by any of them: 128 + SIGINT, as in shells


_lost = threading.Event()  # a KeyboardInterrupt raised in a callback, where Python drops it


def caused_by_ctrl_c(exc: BaseException) -> bool:
    """Whether a KeyboardInterrupt is in exc's chain of causes: a Ctrl-C while an extension
    module initializes, or in a class's __set_name__, comes out as an ImportError or a
    RuntimeError whose cause it is."""
    seen = set()
    while exc is not None and id(exc) not in seen:
        if isinstance(exc, KeyboardInterrupt):
            return True
        seen.add(id(exc))
        exc = exc.__cause__ or exc.__context__
    return False


def raise_lost_interrupt() -> None:
    """Raise KeyboardInterrupt if one was lost in a callback within stops_as_ctrl_c()."""
    if _lost.is_set():
        _lost.clear()
        raise KeyboardInterrupt


@contextlib.contextmanager
def stops_as_ctrl_c() -> Iterator[None]:
    """SIGTERM and SIGHUP raise KeyboardInterrupt within the block (unless they are ignored)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    hook = sys.unraisablehook

    def keep_lost_interrupts(unraisable) -> None:
        if unraisable.exc_type is not None and issubclass(unraisable.exc_type, KeyboardInterrupt):
            _lost.set()
        else:
            hook(unraisable)

    sys.unraisablehook = keep_lost_interrupts
    previous = {}
    for name in STOP_SIGNALS:
        number = getattr(signal, name, None)  # Windows has no SIGHUP
        if number is None or signal.getsignal(number) == signal.SIG_IGN:
            continue
        previous[number] = signal.signal(number, signal.default_int_handler)
    try:
        yield
    finally:
        sys.unraisablehook = hook
        for number, handler in previous.items():
            # None: a handler set outside Python, which cannot be put back; the default is closest
            signal.signal(number, signal.SIG_DFL if handler is None else handler)
    raise_lost_interrupt()  # the block ended well, but a Ctrl-C came: the command was interrupted
