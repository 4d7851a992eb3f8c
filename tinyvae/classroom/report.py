"""What the grader shows: the tables a student reads,
results.json for Gradescope, a CSV for a class.

format_model_table is gradcheck's table (one row per term and parameter, a note under the first
failing row); format_unit_table the table of a function's own outputs; format_checks the table
of the other exercises; format_result an exercise's whole report. gradescope_results builds the
format of Gradescope's autograder specification (gradescope-autograders.readthedocs.io, "Output
format"): "score" and "execution_time" at the top, and one test per exercise with "name",
"score", "max_score", "status" ("passed"/"failed"), "visibility" and "output" (the same text the
student sees), its rows in "extra_data". An exercise scores its weight (1 unless a course file
says otherwise, course.py) only when every row passes: a half-right backward pass is a wrong
one, and its passing rows may pass by luck (two flipped signs cancel). With partial credit it
scores its weight times the fraction of its rows that pass.
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
from pathlib import Path

from ..gradcheck import TERMS
from .course import DEFAULT, Course
from .grader import BATCH, Graded
from .hints import hint

HEADER = ("term", "parameter", "shape", "|analytic|", "|numerical|", "rel. error", "result")


def _layout(header, lines, left: int) -> tuple:
    widths = [max(len(line[i]) for line in [header, *lines]) for i in range(len(header))]
    fmt = "  ".join(f"{{:<{w}}}" if i < left else f"{{:>{w}}}" for i, w in enumerate(widths))
    return fmt, widths


def format_model_table(rows, notes: dict | None = None) -> str:
    """rows: (term, parameter, {"shape", "analytic_norm", "numerical_norm", "rel_error"}, passed).

    notes: {row index: text} printed under that row after "    ^ ".
    """
    notes = notes or {}
    lines = [(term, name, c["shape"], f"{c['analytic_norm']:.6e}", f"{c['numerical_norm']:.6e}",
              f"{c['rel_error']:.2e}", "PASS" if ok else "FAIL") for term, name, c, ok in rows]
    fmt, widths = _layout(HEADER, lines, 3)
    out = [fmt.format(*HEADER), fmt.format(*("-" * w for w in widths))]
    for i, line in enumerate(lines):
        out.append(fmt.format(*line))
        if i in notes:
            out.append("\n".join(f"    ^ {text}" if j == 0 else f"      {text.strip()}"
                                 for j, text in enumerate(notes[i].splitlines())))
    return "\n".join(out)


def _number(value) -> str:
    return "—" if value is None else f"{value:.6g}"


def format_checks(rows) -> str:
    """rows: ("check", name, {"student", "expected", "error", "tolerance"}, passed)."""
    header = ("check", "yours", "expected", "|error|", "tolerance", "result")
    lines = [(name, _number(c["student"]), _number(c["expected"]), _number(c["error"]),
              _number(c["tolerance"]), "PASS" if ok else "FAIL") for _, name, c, ok in rows]
    fmt, widths = _layout(header, lines, 1)
    return "\n".join([fmt.format(*header), fmt.format(*("-" * w for w in widths)),
                      *(fmt.format(*line) for line in lines)])


UNIT_HEADER = ("output", "shape", "|yours|", "|numerical|", "rel. error", "result")


def format_unit_table(rows) -> str:
    """rows: (function, output,
    {"shape", "analytic_norm", "numerical_norm", "rel_error"}, passed)."""
    lines = [(name, c["shape"], f"{c['analytic_norm']:.6e}", f"{c['numerical_norm']:.6e}",
              f"{c['rel_error']:.2e}", "PASS" if ok else "FAIL") for _, name, c, ok in rows]
    fmt, widths = _layout(UNIT_HEADER, lines, 2)
    return "\n".join([fmt.format(*UNIT_HEADER), fmt.format(*("-" * w for w in widths)),
                      *(fmt.format(*line) for line in lines)])


def _setting(graded: Graded) -> str:
    """The check's batch (and σ, for a Gaussian likelihood), which the diagnoses' factors refer to.

    And the samples per image and the bound, where the model takes K > 1 of them.
    """
    config = graded.config
    sigma = (f", σ = {config.gaussian_std:g}"
             if config is not None and config.likelihood == "gaussian" else "")
    k = ""
    if config is not None and config.k > 1:
        bound = "the importance-weighted bound L_K" if config.objective == "iwae" else "the ELBO"
        k = f", K = {config.k} samples of z per image, {bound}"
    return f" (a batch of B = {BATCH}{sigma}{k})"


VERDICTS = {"not implemented": "not implemented yet", "error": "ERROR in your code",
            "missing": "no file"}


def format_result(graded: Graded, title: str, *, function: str = "", equation: str = "",
                  hints: bool = False) -> str:
    """An exercise's whole report: its title, its tables, the explanation,
    what the code printed, the verdict."""
    out = [f"exercise {graded.name}: {title}"] + ([graded.remark] if graded.remark else [])
    units = [r for r in graded.rows if r[0] not in TERMS and r[0] != "check"]
    checks = [r for r in graded.rows if r[0] == "check"]
    model = [r for r in graded.rows if r[0] in TERMS]
    if units:
        out += [f"{function or units[0][0]} on its own, "
                "against central differences of its forward pass:",
                format_unit_table(units)]
    if checks:
        heading = ["the properties every right answer has:"] if units else []
        out += heading + [format_checks(checks)]
    if model:
        out += [f"the whole VAE{_setting(graded)} with your {function or 'function'} in it:",
                format_model_table(model)]
    if graded.note:
        lead = {"error": "your code failed:\n", "not implemented": ""}.get(graded.status, "")
        out.append(lead
                   + ("your code broke a rule:\n"
                      if graded.status == "failed" and not graded.rows else "")
                   + graded.note)
    if hints and graded.status == "failed" and equation:
        out.append(hint(graded.name, equation, graded.pattern))
    if graded.log.strip():
        out.append("your code printed:\n"
                   + "\n".join("  " + line for line in graded.log.rstrip().splitlines()))
    failed = sum(not r[3] for r in graded.rows)
    if graded.status == "passed":
        verdict = f"PASS (all {len(graded.rows)} rows)"
    elif graded.status == "failed":
        verdict = (f"FAIL ({failed} of {len(graded.rows)} rows)" if graded.rows
                   else "FAIL (a rule broken)")
    else:
        verdict = VERDICTS[graded.status]
    out.append(f"exercise {graded.name}: {verdict}")
    return "\n".join(out)


def _finite(value):
    """JSON has no inf or NaN: such a number is written as the string "inf", "-inf" or "nan"."""
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    return value


def _json_row(row) -> dict:
    group, name, columns, ok = row
    return {"group": group, "name": name, **{k: _finite(v) for k, v in columns.items()},
            "passed": bool(ok)}


def score(graded: Graded, setting: dict) -> float:
    """An exercise's points: its weight if every row passes,
    or (partial credit) the fraction that pass."""
    if setting["partial_credit"] and graded.rows:
        return setting["weight"] * sum(bool(r[3]) for r in graded.rows) / len(graded.rows)
    return setting["weight"] if graded.status == "passed" else 0.0


def gradescope_results(results: list[tuple[Graded, str, str]], course: Course = DEFAULT,
                       execution_time: float | None = None) -> dict:
    """results.json for Gradescope: results is [(graded, title, the text shown to the student)]."""
    tests = []
    for graded, title, text in results:
        setting = course.setting(graded.name)
        tests.append({"name": f"{graded.name}: {title}", "score": score(graded, setting),
                      "max_score": setting["weight"],
                      "status": "passed" if graded.status == "passed" else "failed",
                      "visibility": setting["visibility"], "output": text,
                      "extra_data": {"exercise": graded.name, "result": graded.status,
                                     "seconds": round(graded.seconds, 3),
                                     "rows": [_json_row(r) for r in graded.rows]}})
    doc = {"score": sum(t["score"] for t in tests),
           "output": f"{sum(t['status'] == 'passed' for t in tests)} "
                     f"of {len(tests)} exercises pass",
           "tests": tests}
    if execution_time is not None:
        doc["execution_time"] = round(execution_time, 2)
    return doc


def class_csv(students: list[tuple[str, list[Graded]]], names: list[str],
              course: Course = DEFAULT) -> str:
    """One row per student: the total, each exercise's points,
    and what kept an exercise from passing."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    possible = sum(course.setting(name)["weight"] for name in names)
    writer.writerow(["student", "score", "max_score", *names, "notes"])
    for student, graded in students:
        points = [score(g, course.setting(g.name)) for g in graded]
        notes = "; ".join(f"{g.name}: {g.status}" for g in graded if g.status != "passed")
        writer.writerow([student, _points(sum(points)), _points(possible),
                         *map(_points, points), notes])
    return out.getvalue()


def _points(x: float) -> str:
    return f"{x:.4g}"


def refuse_target(path) -> str | None:
    """Why a file cannot be written at ``path`` (exists but is no regular file, no folder to
    hold it, or a folder this user cannot write to); None when it can, as far as can be told
    before writing (a disk can still fill up)."""
    path = Path(path)
    if path.exists() and not path.is_file():
        return f"{path} exists and is not a regular file"
    if not path.parent.is_dir():
        return f"{path.parent} is not a folder"
    if not os.access(path.parent, os.W_OK | os.X_OK):
        return f"the folder {path.parent} is not writable"
    return None


def write_atomically(path, text: str) -> None:
    """text at path, whole or not at all:
    written to a temporary file beside it, then renamed over it."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def write_json(path, doc: dict) -> None:
    write_atomically(path, json.dumps(doc, indent=2, allow_nan=False) + "\n")
