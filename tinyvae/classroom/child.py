"""The grader's child process: one exercise, one student's file, in a process of its own.

Forked by a zygote (zygote.py) for sandbox.py as ``main([JOB, RESULT])``; reads the job (JSON), and:
    1. limits itself: memory (address space) to what it holds now plus the job's allowance, CPU
       time to the wall-clock limit plus a second, no new processes, files of at most 64 MB;
    2. guards tinyvae's answer to the exercise and blocks the wings (guards.py);
    3. imports the student's file, inside guards.student_code();
    4. runs the exercise's runner (runners.py) and writes the outputs, or one line saying what
       went wrong, to RESULT (JSON, whole or not at all), then ends at once, running nothing of
       the student's on the way out.
Whatever the student's code does (exits, raises anything, BaseException included, calls the
answer, patches the grader's modules) ends this process only; the grader reads RESULT and the
exit status, and nothing else, and judges in its own process.
"""

from __future__ import annotations

import json
import math
import os
import sys
from pathlib import Path

from . import guards
from .runners import RUNNERS
from .student import (
    NotImplementedYet,
    RuleBroken,
    StudentError,
    describe,
    function,
    load,
    shown,
    students_code,
)
from .wire import MAX_BYTES, encode, write


def limit(memory_mb: float, seconds: float) -> None:
    """Memory, CPU time, processes and file size, each limited where the system allows it."""
    try:
        import resource
    except ImportError:  # not a POSIX system: the grader's wall clock still applies
        return
    limits = [(resource.RLIMIT_CPU, math.ceil(seconds) + 1), (resource.RLIMIT_FSIZE, MAX_BYTES)]
    if hasattr(resource, "RLIMIT_NPROC"):
        limits.append((resource.RLIMIT_NPROC, 0))  # no fork: no process outlives this one
    held = _address_space()
    if held:
        limits.append((resource.RLIMIT_AS, held + int(memory_mb * 2**20)))
    for which, value in limits:
        _, hard = resource.getrlimit(which)
        value = value if hard == resource.RLIM_INFINITY else min(value, hard)
        try:
            resource.setrlimit(which, (value, value if which != resource.RLIMIT_CPU else hard))
        except (ValueError, OSError):  # not allowed here: the other limits still hold
            pass


def _address_space() -> int:
    """The bytes of address space this process holds now (Linux's /proc); 0 where unknown."""
    try:
        with open("/proc/self/statm", encoding="ascii") as statm:
            return int(statm.read().split()[0]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return 0


def grade(job: dict) -> dict:
    """The result document: {"status": "ok", "outputs": ...}
    or {"status": ..., "message": one line}."""
    path = Path(job["path"])
    try:
        guards.install(job["exercise"])
        guards.block_wings()
        with guards.student_code():
            module = load(path)
        fns = [_function(module, name, path) for name in job["functions"]]
        with students_code(path):
            outputs = RUNNERS[job["kind"]](fns, job)
        result = {"status": "ok", "outputs": encode(outputs)}
    except NotImplementedYet as exc:
        result = {"status": "not implemented", "message": f"not implemented yet: {exc}"}
    except RuleBroken as exc:
        result = {"status": "rule", "message": str(exc)}
    except StudentError as exc:
        result = {"status": "error", "message": str(exc)}
    except MemoryError as exc:
        result = {"status": "error",
                  "message": f"ran out of memory (the limit is {job['memory_mb']:g} MB beyond what "
                             f"the grader holds): {describe(exc, path)}"}
    except SystemExit as exc:
        result = {"status": "error",
                  "message": f"{describe(exc, path)}\n  your code called sys.exit(): "
                             "a function the grader checks must return its value, not exit"}
    except BaseException as exc:
        # KeyboardInterrupt, GeneratorExit, ... raised by the student's code
        result = {"status": "error", "message": describe(exc, path)}
    if guards.CALLED:
        result = {"status": "error",
                  "message": f"your code calls tinyvae's own {guards.CALLED[0]}, the answer to "
                             "this exercise; the grader does not accept it: "
                             "write the computation yourself"}
    elif not guards.intact():
        result = {"status": "error",
                  "message": "your code changed tinyvae's modules (reloaded one?), where the "
                             "grader keeps tinyvae's answer out of reach; "
                             "the grader does not accept it"}
    return result


def _function(module, name: str, path: Path):
    fn = function(module, name, path)
    if isinstance(fn, guards.Guard):
        raise StudentError(f"{name}() in {shown(path)} is tinyvae's own {fn.name}, imported; "
                           "the grader does not accept it: write your own")
    return fn


def main(argv: list[str]) -> None:
    job_path, result_path = Path(argv[0]), Path(argv[1])
    job = json.loads(job_path.read_text(encoding="utf-8"))
    limit(job["memory_mb"], job["seconds"])
    try:
        result = grade(job)
    except BaseException as exc:
        # the grader's own code failed: say so, never a traceback to the student
        result = {"status": "error", "message": f"the grader failed: {type(exc).__name__}: {exc}"}
    try:
        write(result_path, result)
    except BaseException:
        os._exit(3)
    sys.stdout.flush()
    # now: no atexit handler, no finaliser of the student's runs after the result is written
    os._exit(0)
