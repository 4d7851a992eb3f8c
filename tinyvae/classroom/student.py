"""A student's file: loaded from where the student keeps it,
and its errors told in the student's terms.

The grader never imports a student's file as part of tinyvae: ``load`` runs it as a module of
its own (named after the file, outside ``sys.modules``), so a half-written exercise cannot break
any other command. What goes wrong inside a student's code is turned into one of two exceptions
that the grader prints as a sentence, never as a traceback into tinyvae:

    NotImplementedYet  the body still raises NotImplementedError (an untouched stub)
    RuleBroken         the code changed one of its inputs in place, or returned one of them
    StudentError       anything else; its message names the student's own file:line and code
"""

from __future__ import annotations

import contextlib
import importlib.util
import linecache
import traceback
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType


class NotImplementedYet(Exception):
    """The student's function still raises NotImplementedError."""


class StudentError(Exception):
    """The student's code failed; str() is the sentence to show (file:line, the line, the error)."""


class RuleBroken(Exception):
    """The student's code broke a rule of the exercise
    (an input changed in place, an output that is an input)."""


IN_PLACE = ("changes one of its inputs in place (they are read-only here): a backward never "
            "modifies dout or the cache, the caller still needs them; compute a new array instead "
            "(docs/05-classroom.md §4)")


def shown(path: Path) -> str:
    """The path as the student typed it: relative to the current folder when it is inside it."""
    try:
        return str(Path(path).relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def where(exc: BaseException, path: Path) -> str:
    """'FILE:LINE in FUNC: CODE' for the innermost frame of ``exc``
    that is in the student's file."""
    frames = [f for f in traceback.extract_tb(exc.__traceback__) if Path(f.filename) == path]
    if not frames:  # e.g. a SyntaxError: the position is on the exception itself
        line = getattr(exc, "lineno", None)
        code = (getattr(exc, "text", None) or "").strip()
        return f"{shown(path)}:{line}: {code}" if line else shown(path)
    frame = frames[-1]
    code = frame.line or linecache.getline(str(path), frame.lineno).strip()
    return f"{shown(path)}:{frame.lineno} in {frame.name}: {code}"


def describe(exc: BaseException, path: Path) -> str:
    """The student's line and the error,
    e.g. 'x.py:12 in dense_backward: dx = dout @ W\\n  ValueError: ...'."""
    message = str(exc).strip() or "(no message)"
    return f"{where(exc, path)}\n  {type(exc).__name__}: {message}"


@contextlib.contextmanager
def students_code(path: Path) -> Iterator[None]:
    """Run a ``with`` body that calls the student's functions; their exceptions become ours.

    NotImplementedError raised in the student's file is an unfinished exercise; any other
    exception that passed through the student's file is theirs (StudentError with their line).
    An exception that never touched the student's file propagates unchanged: it is the grader's.
    """
    try:
        yield
    except NotImplementedError as exc:
        if passed_through(exc, path):
            line = [f for f in traceback.extract_tb(exc.__traceback__)
                    if Path(f.filename) == path][-1]
            raise NotImplementedYet(f"{line.name}() still raises NotImplementedError at "
                                    f"{shown(path)}:{line.lineno}") from None
        raise
    except (NotImplementedYet, StudentError, RuleBroken, MemoryError):
        raise
    except Exception as exc:
        if not passed_through(exc, path):
            raise
        if isinstance(exc, ValueError) and "read-only" in str(exc):
            raise RuleBroken(f"{where(exc, path)}\n  {IN_PLACE}") from None
        raise StudentError(describe(exc, path)) from None


def passed_through(exc: BaseException, path: Path) -> bool:
    """Whether the traceback of ``exc`` runs through the student's file."""
    return any(Path(f.filename) == path for f in traceback.extract_tb(exc.__traceback__))


def load(path: Path) -> ModuleType:
    """Run the student's file as a fresh module and return it; StudentError if it does not run.

    A SyntaxError or an exception at import time (a typo at the top level) is reported with the
    student's line. The module is not put in sys.modules, so loading twice loads twice.
    """
    path = Path(path).resolve()
    spec = importlib.util.spec_from_file_location(f"student_{path.stem.replace('-', '_')}", path)
    module = importlib.util.module_from_spec(spec)
    try:
        spec.loader.exec_module(module)
    except SyntaxError as exc:
        raise StudentError(f"{where(exc, path)}\n  SyntaxError: {exc.msg}") from None
    except MemoryError:
        raise
    except Exception as exc:
        raise StudentError(describe(exc, path)) from None
    return module


def function(module: ModuleType, name: str, path: Path):
    """The student's function ``name``; StudentError if the file does not define it."""
    fn = getattr(module, name, None)
    if not callable(fn):
        raise StudentError(f"{shown(path)} defines no function {name}(); "
                           "the stub from `exercise start` has it")
    return fn
