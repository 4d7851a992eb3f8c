"""The lab's error for a value its caller gave that cannot be used.

UsageError is raised where the lab checks what it was asked to do, before any work
(training/runfolder.py: an output folder that holds another run). The lab never prints it:
the command lines (tinyvae/commands/) catch it and print one line, with exit status 2, as
argparse does for its own errors.
"""

from __future__ import annotations


class UsageError(Exception):
    """A file or value the user gave cannot be used: one line, exit status 2."""
