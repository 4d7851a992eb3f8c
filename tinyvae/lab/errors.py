"""The lab's errors for a value its caller gave that cannot be used, and for a result that
is not a number.

UsageError is raised where the lab checks what it was asked to do, before any work
(training/runfolder.py: an output folder that holds another run; training/run_settings.py:
a checkpoint's settings). ResultError is raised where a number would be reported or kept
that is NaN or infinite (a model whose weights overflow). The lab never prints them: the
command lines (tinyvae/commands/status.py) print one line, with exit status 2 and 1.
"""

from __future__ import annotations


class UsageError(Exception):
    """A file or value the user gave cannot be used: one line, exit status 2."""


class ResultError(Exception):
    """A result came out NaN or infinite; the message names it: one line, exit status 1."""
