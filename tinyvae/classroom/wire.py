"""Arrays between the grader and its child process: plain JSON, read without trusting the writer.

A child runs a student's code, so whatever it writes back may be anything at all. JSON holds
no code (unlike a pickle) and its size is bounded by the child's file-size limit; every array
comes back as {"shape": [...], "data": [flat numbers]} and is refused unless it is exactly that.
JSON's NaN and Infinity are allowed: a KL may be +inf, and a NaN gradient fails its row.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np

MAX_BYTES = 64 * 2**20  # the most a child may write back (its file-size limit too)


class BadResult(Exception):
    """What the child wrote back is not what the grader asked for."""


def encode(arrays: dict[str, np.ndarray]) -> dict:
    return {name: {"shape": list(np.shape(a)),
                   "data": np.asarray(a, dtype=np.float64).ravel().tolist()}
            for name, a in arrays.items()}


def decode(obj) -> dict[str, np.ndarray]:
    """{name: float64 array} from encode's form; BadResult for anything else."""
    if not isinstance(obj, dict):
        raise BadResult("the arrays are not a JSON object")
    out = {}
    for name, entry in obj.items():
        if not (isinstance(entry, dict) and set(entry) == {"shape", "data"}
                and isinstance(entry["shape"], list)
                and all(type(n) is int and n >= 0 for n in entry["shape"])
                and isinstance(entry["data"], list)
                and len(entry["data"]) == math.prod(entry["shape"])
                and all(type(v) in (int, float) for v in entry["data"])):
            raise BadResult(f"{name!r} is not an array of numbers")
        out[name] = np.array(entry["data"], dtype=np.float64).reshape(entry["shape"])
    return out


def write(path: Path, doc: dict) -> None:
    """doc as JSON at path, whole or not at all (written beside it, then renamed)."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(doc), encoding="utf-8")
    tmp.replace(path)


def read(path: Path) -> dict:
    """The JSON object at path; BadResult if it is missing, too large or not a JSON object."""
    try:
        if path.stat().st_size > MAX_BYTES:
            raise BadResult("its result is larger than the grader reads")
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError, RecursionError) as exc:
        raise BadResult(f"its result cannot be read ({type(exc).__name__})") from None
    if not isinstance(doc, dict):
        raise BadResult("its result is not a JSON object")
    return doc
