"""A course file: what an instructor decides once for an assignment,
read by `exercise check` and `grade`.

A small JSON file (docs/07-instructors.md §3 shows one):

    {
      "exercises": {"dense": {"weight": 2}, "relu": {},
                    "loss": {"weight": 4, "partial_credit": true}},
      "seed": 271828,
      "partial_credit": false,
      "visibility": "visible",
      "time_limit": 10,
      "memory_limit": 512
    }

exercises   the exercises of the assignment, in order (a list of names, or a dict name -> its
            settings: weight, partial_credit, visibility); a missing file then scores 0
seed        the ladder's seed, kept secret: the students' output never shows it
partial_credit   the points of an exercise in proportion to its rows that pass (default: all or
                 nothing)
visibility  Gradescope's visibility of each test: "visible", "hidden", "after_due_date",
            "after_published"
time_limit, memory_limit   each exercise's limits, in seconds and MB (the grader's defaults
                           otherwise)
An unknown key, exercise or value is refused with one line naming it.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import NamedTuple

VISIBILITIES = ("visible", "hidden", "after_due_date", "after_published")
KEYS = {"exercises", "seed", "partial_credit", "visibility", "time_limit", "memory_limit"}
EXERCISE_KEYS = {"weight", "partial_credit", "visibility"}


class CourseError(ValueError):
    """The course file cannot be used; str() is the one line to print."""


class Course(NamedTuple):
    exercises: dict  # name -> {"weight": float, "partial_credit": bool, "visibility": str}
    seed: int | None = None
    time_limit: float | None = None
    memory_limit: float | None = None
    visibility: str = "visible"
    partial_credit: bool = False

    def setting(self, name: str) -> dict:
        """An exercise's weight, partial credit and visibility
        (the course's defaults if it names none)."""
        own = self.exercises.get(name, {})
        return {"weight": float(own.get("weight", 1.0)),
                "partial_credit": bool(own.get("partial_credit", self.partial_credit)),
                "visibility": own.get("visibility", self.visibility)}


def load(path, known: dict) -> Course:
    """The course file at ``path``; known: the exercises that exist.
    CourseError for anything wrong."""
    try:
        doc = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise CourseError(f"cannot read the course file {path}: {exc}") from None
    if not isinstance(doc, dict) or set(doc) - KEYS:
        unknown = sorted(set(doc) - KEYS) if isinstance(doc, dict) else repr(doc)
        raise CourseError(f"course file {path}: a JSON object with some of the keys {sorted(KEYS)} "
                          f"(unknown: {unknown})")
    raw = doc.get("exercises", {})
    exercises = dict.fromkeys(raw, None) if isinstance(raw, list) else raw
    if not isinstance(exercises, dict):
        raise CourseError(f"course file {path}: \"exercises\" is a list of names or an object")
    for name, own in exercises.items():
        if name not in known:
            raise CourseError(f"course file {path}: unknown exercise {name!r}; "
                              f"choose from {', '.join(known)}")
        exercises[name] = _exercise(path, name, own or {})
    seed = doc.get("seed")
    if seed is not None and (type(seed) is not int or seed < 0):
        raise CourseError(f"course file {path}: \"seed\" is an integer >= 0")
    limits = {key: doc.get(key) for key in ("time_limit", "memory_limit")}
    for key, value in limits.items():
        if value is not None and (type(value) not in (int, float) or not value > 0):
            raise CourseError(f"course file {path}: {key!r} is a number > 0")
    visibility = doc.get("visibility", "visible")
    if visibility not in VISIBILITIES:
        raise CourseError(f"course file {path}: visibility is one of {', '.join(VISIBILITIES)}")
    if type(doc.get("partial_credit", False)) is not bool:
        raise CourseError(f"course file {path}: \"partial_credit\" is true or false")
    return Course(exercises, seed, limits["time_limit"], limits["memory_limit"], visibility,
                  doc.get("partial_credit", False))


def _exercise(path, name: str, own) -> dict:
    if not isinstance(own, dict) or set(own) - EXERCISE_KEYS:
        raise CourseError(f"course file {path}: exercise {name!r} takes some of "
                          f"{sorted(EXERCISE_KEYS)}")
    weight = own.get("weight", 1)
    if type(weight) not in (int, float) or weight < 0:
        raise CourseError(f"course file {path}: the weight of {name!r} is a number >= 0")
    if own.get("visibility", "visible") not in VISIBILITIES:
        raise CourseError(f"course file {path}: the visibility of {name!r} is one of "
                          f"{', '.join(VISIBILITIES)}")
    if type(own.get("partial_credit", False)) is not bool:
        raise CourseError(f"course file {path}: the partial_credit of {name!r} is true or false")
    return dict(own)


DEFAULT = Course({})
