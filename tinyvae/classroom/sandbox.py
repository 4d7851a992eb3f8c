"""One exercise in a process of its own: started with limits, stopped at the limit, read with care.

``run(job, limits, folder)`` writes the job to a file, has child.py run in a new session (so the
whole process group can be stopped), waits at most ``limits.seconds`` of wall clock, and turns
whatever happened into an Outcome with one line that says it:

    the child wrote its result and exited 0      its status and outputs, or its message
    it ran past the time limit                   stopped (SIGKILL to its group): "did not finish"
    it was killed by a signal                    which one (SIGKILL beyond the memory limit, ...)
    it exited without a result (os._exit)        "ended the process before the grader had its
                                                 result"
    its result is unreadable                     "returned a result the grader cannot read"

The child's standard output and error go to a file; the first few thousand characters of it
(what the student's code printed, a warning) come back with the Outcome. The child imports the
same tinyvae as the grader (its folder is passed on), in Python's isolated mode (-I: no
environment variables, no user site, not the current folder), with one BLAS thread.

The children are forked by a Zygote (zygote.py), a process that has numpy and tinyvae imported
already and never runs a student's code itself: a worker keeps one for all its exercises, which
then start in milliseconds instead of a tenth of a second. Should it die (a student's code can
kill its parent), the exercise is run once more by a new Zygote.
"""

from __future__ import annotations

import contextlib
import json
import os
import select
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
BOOT_ZYGOTE = ("import sys; sys.dont_write_bytecode = True; sys.path[:0] = [sys.argv[1]]; "
               "from tinyvae.classroom.zygote import serve; serve()")
LOG_CHARS = 2000
STATUSES = ("ok", "error", "not implemented", "rule")


class Limits(NamedTuple):
    """What one exercise may take: wall-clock seconds,
    and memory beyond what the child holds at start."""

    seconds: float = 10.0
    memory_mb: float = 512.0


class Outcome(NamedTuple):
    status: str  # one of STATUSES
    outputs: dict | None
    message: str
    log: str = ""
    seconds: float = 0.0


def run(job: dict, limits: Limits, folder: Path, zygote: Zygote | None = None) -> Outcome:
    """Grade-side half of one exercise: the child's outputs, or one line on what went wrong.

    zygote: the worker's own (it is kept); without one, a zygote is started for this exercise alone.
    """
    stem = Path(folder) / uuid.uuid4().hex
    job_path, result_path, log_path = (stem.with_suffix(s) for s in (".job", ".result", ".log"))
    job_path.write_text(json.dumps({**job, "seconds": limits.seconds,
                                    "memory_mb": limits.memory_mb}), encoding="utf-8")
    start, own = time.monotonic(), zygote is None
    try:
        for _attempt in (1, 2):
            zygote = zygote if zygote is not None and zygote.alive() else Zygote()
            try:
                code, timed_out = zygote.run(job_path, result_path, log_path, limits.seconds)
                break
            except ZygoteDied:
                zygote = None
        else:
            return Outcome("error", None, "your code ended the process that started it "
                           "(it killed its parent?), twice; a checked function must return",
                           seconds=time.monotonic() - start)
        outcome = _outcome(code, timed_out, result_path, limits)
        return outcome._replace(log=_head(log_path), seconds=time.monotonic() - start)
    finally:
        if own and zygote is not None:
            zygote.close()
        for path in (job_path, result_path, log_path,
                     result_path.with_name(result_path.name + ".tmp")):
            path.unlink(missing_ok=True)


class ZygoteDied(Exception):
    """The zygote is gone (a student's code can kill its parent):
    the exercise is run again by a new one."""


class Zygote:
    """One worker's fork server (zygote.py): a job line in, the child's pid and exit status out."""

    def __init__(self):
        self.proc = subprocess.Popen([sys.executable, "-I", "-c", BOOT_ZYGOTE, ROOT],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.DEVNULL, start_new_session=True,
                                     env=child_environment())
        self.pending = b""

    def run(self, job_path: Path, result_path: Path, log_path: Path,
            seconds: float) -> tuple[int, bool]:
        try:
            self.proc.stdin.write(
                (json.dumps([str(job_path), str(result_path), str(log_path)]) + "\n").encode())
            self.proc.stdin.flush()
            pid = int(self._line(60))
        except (OSError, ValueError) as exc:
            self.close()
            raise ZygoteDied from exc
        _started(pid)
        timed_out = False
        try:
            try:
                code = int(self._line(seconds))
            except TimeoutError:
                timed_out = True
                _stop(pid)
                code = int(self._line(60))
        except (OSError, ValueError, TimeoutError) as exc:
            self.close()
            raise ZygoteDied from exc
        finally:
            _stop(pid)
        return code, timed_out

    def _line(self, seconds: float) -> str:
        """The zygote's next answer, within ``seconds``;
        TimeoutError past them, ValueError at its end.

        Read from the pipe's descriptor itself: a buffered reader could hold the next line
        already while select() waits for more.
        """
        deadline = time.monotonic() + seconds
        while b"\n" not in self.pending:
            ready, _, _ = select.select([self.proc.stdout], [], [],
                                        max(0.0, deadline - time.monotonic()))
            if not ready:
                raise TimeoutError
            chunk = os.read(self.proc.stdout.fileno(), 4096)
            if not chunk:
                raise ValueError("the zygote is gone")
            self.pending += chunk
        line, _, self.pending = self.pending.partition(b"\n")
        return line.decode()

    def alive(self) -> bool:
        return self.proc.poll() is None

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.proc.stdin.close()
        try:
            self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


RUNNING: set = set()  # the process groups of the children running now, for stop_all
_running_lock = threading.Lock()


def _started(pid: int) -> None:
    with _running_lock:
        RUNNING.add(pid)


def _stop(pid: int) -> None:
    """Kill the child's whole process group (it leads its own session), and forget it."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signal.SIGKILL)
    with _running_lock:
        RUNNING.discard(pid)


def stop_all() -> None:
    """Stop every child running now (the grader was interrupted)."""
    with _running_lock:
        running = list(RUNNING)
    for pid in running:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pid, signal.SIGKILL)


def child_environment() -> dict:
    env = dict(os.environ)
    env.update({name: "1"
                for name in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")})
    return env


def _outcome(code: int, timed_out: bool, result_path: Path, limits: Limits) -> Outcome:
    if timed_out:
        return Outcome("error", None,
                       f"did not finish within the time limit of {limits.seconds:g} s "
                       "(an endless loop?); the grader stopped it")
    if code < 0:
        return Outcome("error", None, _killed(-code, limits))
    if code != 0 or not result_path.exists():
        return Outcome("error", None,
                       f"your code ended the exercise's process (exit status {code}) before "
                       "the grader had its result: an os._exit() or a crash? "
                       "A checked function must return")
    try:
        doc = read(result_path)
        status, message = doc.get("status"), doc.get("message", "")
        if status not in STATUSES or not isinstance(message, str):
            raise BadResult("its result has no status the grader knows")
        outputs = decode(doc.get("outputs")) if status == "ok" else None
    except BadResult as exc:
        return Outcome("error", None,
                       f"the exercise's process returned a result the grader cannot read: {exc}")
    return Outcome(status, outputs, message[:4000])


def _killed(number: int, limits: Limits) -> str:
    name = (signal.Signals(number).name if number in signal.Signals._value2member_map_
            else f"signal {number}")
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
