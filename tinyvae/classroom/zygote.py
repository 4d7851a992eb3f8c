"""A process that starts the grader's children fast:
numpy and tinyvae imported once, a fork per exercise.

Importing numpy takes most of a child's time (a tenth of a second or more); a class of 300
students with 18 exercises each starts 5,400 children. So the grader (sandbox.Zygote) may keep
one of these per worker: it imports what every child needs, runs no student's code itself, and
for each job line it reads (the job, result and log paths) forks a child that becomes child.py's
process exactly as a fresh one would (a session of its own, standard output and error to the
log, no other file open, then child.main: limits, guards, the student's file). It answers with
the child's pid, then with its exit status (negative: the signal that ended it), one line each.
The zygote runs in Python's isolated mode, with one BLAS thread, so that forking it is safe.
"""

from __future__ import annotations

import json
import os
import sys

from . import child  # imported here, once, with all it needs, for every child forked below


def serve() -> None:
    """Read a job line, fork its child, answer its pid and then its exit status;
    until stdin closes."""
    requests, answers = sys.stdin.buffer, sys.stdout.buffer
    for line in requests:
        job, result, log = json.loads(line)
        pid = os.fork()
        if pid == 0:
            _become_child(job, result, log)
        answers.write(f"{pid}\n".encode())
        answers.flush()
        _, status = os.waitpid(pid, 0)
        answers.write(f"{os.waitstatus_to_exitcode(status)}\n".encode())
        answers.flush()


def _become_child(job: str, result: str, log: str) -> None:
    try:
        os.setsid()  # its own session and process group: the grader stops the whole group
        out = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        os.dup2(os.open(os.devnull, os.O_RDONLY), 0)
        os.dup2(out, 1)
        os.dup2(out, 2)
        os.closerange(3, os.sysconf("SC_OPEN_MAX") if hasattr(os, "sysconf") else 1024)
        child.main([job, result])  # ends the process itself
    finally:
        os._exit(4)
