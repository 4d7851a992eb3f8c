"""One exercise in a process of its own: started with limits, stopped at the limit, read with care.

``run(job, limits, folder)`` writes the job to a file, starts child.py in a new session (so the
whole process group can be stopped), waits at most ``limits.seconds`` of wall clock, and turns
whatever happened into an Outcome with one line that says it:

    the child wrote its result and exited 0      its status and outputs, or its message
    it ran past the time limit                   stopped (SIGKILL to its group): "did not finish"
    it was killed by a signal                    which one (SIGKILL beyond the memory limit, ...)
    it exited without a result (os._exit)        "ended the process before the grader had its result"
    its result is unreadable                     "returned a result the grader cannot read"

The child's standard output and error go to a file; the first few thousand characters of it
(what the student's code printed, a warning) come back with the Outcome. The child imports the
same tinyvae as the grader (its folder is passed on), in Python's isolated mode (-I: no
environment variables, no user site, not the current folder), with one BLAS thread.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path
from typing import NamedTuple

from .wire import BadResult, decode, read

ROOT = str(Path(__file__).resolve().parents[2])  # the folder that holds this tinyvae
BOOT = ("import sys; sys.dont_write_bytecode = True; sys.path[:0] = [sys.argv[1]]; "
        "from tinyvae.classroom.child import main; main(sys.argv[2:])")
LOG_CHARS = 2000
STATUSES = ("ok", "error", "not implemented", "rule")


class Limits(NamedTuple):
    """What one exercise may take: wall-clock seconds, and memory beyond what the child holds at start."""

    seconds: float = 10.0
    memory_mb: float = 512.0


class Outcome(NamedTuple):
    status: str  # one of STATUSES
    outputs: dict | None
    message: str
    log: str = ""
    seconds: float = 0.0


RUNNING: set = set()  # the children running now, for stop_all
_running_lock = threading.Lock()


def run(job: dict, limits: Limits, folder: Path) -> Outcome:
    """Grade-side half of one exercise: the child's outputs, or one line on what went wrong."""
    stem = Path(folder) / uuid.uuid4().hex
    job_path, result_path, log_path = (stem.with_suffix(s) for s in (".job", ".result", ".log"))
    job_path.write_text(json.dumps({**job, "seconds": limits.seconds, "memory_mb": limits.memory_mb}),
                        encoding="utf-8")
    start = time.monotonic()
    try:
        with open(log_path, "wb") as log:
            proc = subprocess.Popen([sys.executable, "-I", "-c", BOOT, ROOT, str(job_path), str(result_path)],
                                    stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                    start_new_session=True, env=child_environment())
        with _running_lock:
            RUNNING.add(proc)
        timed_out = _wait(proc, limits.seconds)
        outcome = _outcome(proc.returncode, timed_out, result_path, limits)
        return outcome._replace(log=_head(log_path), seconds=time.monotonic() - start)
    finally:
        for path in (job_path, result_path, log_path, result_path.with_name(result_path.name + ".tmp")):
            path.unlink(missing_ok=True)


def _wait(proc: subprocess.Popen, seconds: float) -> bool:
    """Wait for the child; past the limit (or if the wait is interrupted) stop its whole group. Timed out?"""
    try:
        proc.wait(timeout=seconds)
        return False
    except subprocess.TimeoutExpired:
        return True
    finally:
        _kill(proc)  # its whole group: also what it started, if it could fork
        proc.wait()
        with _running_lock:
            RUNNING.discard(proc)


def _kill(proc: subprocess.Popen) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)  # the child leads its own group (start_new_session)
    except (ProcessLookupError, PermissionError):
        pass


def stop_all() -> None:
    """Stop every child running now (the grader was interrupted)."""
    with _running_lock:
        running = list(RUNNING)
    for proc in running:
        if proc.returncode is None:
            _kill(proc)


def child_environment() -> dict:
    env = dict(os.environ)
    env.update({name: "1" for name in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")})
    return env


def _outcome(code: int, timed_out: bool, result_path: Path, limits: Limits) -> Outcome:
    if timed_out:
        return Outcome("error", None, f"did not finish within the time limit of {limits.seconds:g} s "
                       "(an endless loop?); the grader stopped it")
    if code < 0:
        return Outcome("error", None, _killed(-code, limits))
    if code != 0 or not result_path.exists():
        return Outcome("error", None, f"your code ended the exercise's process (exit status {code}) before the "
                       "grader had its result: an os._exit() or a crash? A checked function must return")
    try:
        doc = read(result_path)
        status, message = doc.get("status"), doc.get("message", "")
        if status not in STATUSES or not isinstance(message, str):
            raise BadResult("its result has no status the grader knows")
        outputs = decode(doc.get("outputs")) if status == "ok" else None
    except BadResult as exc:
        return Outcome("error", None, f"the exercise's process returned a result the grader cannot read: {exc}")
    return Outcome(status, outputs, message[:4000])


def _killed(number: int, limits: Limits) -> str:
    name = signal.Signals(number).name if number in signal.Signals._value2member_map_ else f"signal {number}"
    why = {"SIGXCPU": f": it used more CPU time than the limit of {limits.seconds:g} s",
           "SIGKILL": f": past the memory limit ({limits.memory_mb:g} MB)?",
           "SIGSEGV": ": a crash (a segmentation fault)"}.get(name, "")
    return f"the exercise's process was killed by {name}{why}"


def _head(log_path: Path) -> str:
    """The start of what the child printed, as text."""
    try:
        with open(log_path, "rb") as log:
            data = log.read(LOG_CHARS + 1)
    except OSError:
        return ""
    text = data[:LOG_CHARS].decode("utf-8", errors="replace")
    return text + ("\n[...]" if len(data) > LOG_CHARS else "")
