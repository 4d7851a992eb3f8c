"""One exit status convention for every command (`python -m tinyvae VERB`, examples/*.py):

    0    done
    1    the work failed: data missing or corrupt, an output that cannot be written (a full
         disk, a read-only folder, a folder another run holds), training diverged, a result
         that is not a number, memory that ran out; for gradcheck and `exercise check`, a
         check that FAILED
    2    refused before any work: an argument, or a file given (a checkpoint, the settings it
         keeps), that cannot be used, or a model or buffer larger than this machine's memory
    130  interrupted: Ctrl-C, SIGTERM or SIGHUP (tinyvae/lab/signals.py), with nothing lost

Every failure is one line on stderr, "<program>: error: <what and why>", never a traceback.
``exit_status`` is the table; ``run_command`` runs a command's body under it.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable

from ..lab.datasets.readers import DataError
from ..lab.errors import ResultError, UsageError
from ..lab.signals import INTERRUPTED, stops_as_ctrl_c
from ..lab.storage.files import OutputError
from ..lab.training.runner import ResumeMismatch, TrainingDiverged

REFUSED, FAILED = 2, 1
# The first row whose class the exception is an instance of gives the status.
STATUS = ((UsageError, REFUSED), (ResumeMismatch, REFUSED),
          ((DataError, OutputError, OSError, TrainingDiverged, ResultError, MemoryError), FAILED))


def exit_status(prog: str, exc: BaseException) -> int:
    """Print `exc` as the command's one error line and return its status (STATUS); an
    exception of no row is a bug, and raised again so that it is seen whole."""
    for kind, status in STATUS:
        if isinstance(exc, kind):
            message = str(exc) if not isinstance(exc, MemoryError) else \
                "not enough memory for this; try smaller sizes (or fewer images)"
            print(f"{prog}: error: {message}", file=sys.stderr)
            return status
    raise exc


def run_command(prog: str, body: Callable[[], int],
                interrupted: Callable[[], str] | None = None) -> int:
    """body() with SIGTERM and SIGHUP as Ctrl-C, and every ending as the table says.

    interrupted(): the line that says what an interruption left (default: "interrupted").
    """
    try:
        with stops_as_ctrl_c():
            return body()
    except KeyboardInterrupt:
        lead = os.linesep if sys.stderr.isatty() else ""  # after the terminal's "^C", a fresh line
        print(f"{lead}{interrupted() if interrupted else f'{prog}: interrupted'}", file=sys.stderr)
        return INTERRUPTED
    except Exception as exc:  # noqa: BLE001 - exit_status raises again what it does not know
        return exit_status(prog, exc)
