"""The end every lesson example shares: measure, keep the numbers, print them, draw them.

examples/amortization_gap.py, decoder_sigma_as_beta.py and results_anchors.py each parse
their own arguments (with the lab's argparse types, which refuse nonsense before any work)
and then hand over to run_lesson. A data or output problem found while working is one line
on stderr and exit status 1, never a traceback (commands/status.py).
"""

from __future__ import annotations

from collections.abc import Callable

from ..lab.storage.files import write_json
from .status import run_command


def run_lesson(prog: str, args, measure: Callable, report: Callable,
               plot: Callable | None = None) -> int:
    """res = measure(args); write it to args.json if given; print report(res);
    plot(res, args.plot) if given.

    Returns the exit status of commands/status.py: 0, or 1 after one line "<prog>: error: ..."
    on stderr; 130 if interrupted (Ctrl-C, SIGTERM, SIGHUP).
    """
    def body() -> int:
        res = measure(args)
        if getattr(args, "json", None):
            write_json(args.json, res)
        print(report(res))
        if plot is not None and getattr(args, "plot", None):
            plot(res, args.plot)
            print(f"figure written to {args.plot}")
        return 0

    return run_command(prog, body)
