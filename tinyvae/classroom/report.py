"""What the grader shows: the table a student reads, and the results.json a course's autograder reads.

format_model_table is gradcheck's table (one row per term and parameter, a note under the first
failing row); format_checks the table of the other exercises. gradescope_results builds the
format of Gradescope's autograder specification (gradescope-autograders.readthedocs.io, "Output
format"): a top-level "score", and one test per exercise with "name", "score", "max_score",
"status" ("passed"/"failed") and "output" (the same text the student sees), its rows in
"extra_data". An exercise scores its points only when every row passes: a half-right backward
pass is a wrong one, and its passing rows may pass by luck (two flipped signs cancel).
"""

from __future__ import annotations

import math

from .grader import Graded

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


def format_result(graded: Graded, title: str) -> str:
    """An exercise's whole report: its title, its table, the explanation, its verdict line."""
    out = [f"exercise {graded.name}: {title}"]
    if graded.rows and graded.rows[0][0] == "check":
        out.append(format_checks(graded.rows))
        if graded.note:
            out.append(graded.note)
    elif graded.rows:
        first = next((i for i, r in enumerate(graded.rows) if not r[3]), None)
        out.append(format_model_table(graded.rows, {first: graded.note} if first is not None else {}))
    elif graded.note:
        out.append(graded.note if graded.status != "error" else "your code failed:\n" + graded.note)
    failed = sum(not r[3] for r in graded.rows)
    verdict = {"passed": f"PASS (all {len(graded.rows)} rows)", "failed": f"FAIL ({failed} of {len(graded.rows)} rows)",
               "not implemented": "not implemented yet", "error": "ERROR in your code", "missing": "no file"}
    out.append(f"exercise {graded.name}: {verdict[graded.status]}")
    return "\n".join(out)


def _finite(value):
    """JSON has no inf or NaN: such a number is written as the string "inf", "-inf" or "nan"."""
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    return value


def _json_row(row) -> dict:
    group, name, columns, ok = row
    return {"group": group, "name": name, **{k: _finite(v) for k, v in columns.items()}, "passed": bool(ok)}


def gradescope_results(results: list[tuple[Graded, str, str]], points: float = 1.0) -> dict:
    """results.json for Gradescope: results is [(graded, title, the text shown to the student)]."""
    tests = []
    for graded, title, text in results:
        passed = graded.status == "passed"
        tests.append({"name": f"{graded.name}: {title}", "score": points if passed else 0.0,
                      "max_score": points, "status": "passed" if passed else "failed", "output": text,
                      "extra_data": {"exercise": graded.name, "result": graded.status,
                                     "rows": [_json_row(r) for r in graded.rows]}})
    return {"score": sum(t["score"] for t in tests), "output": f"{sum(t['status'] == 'passed' for t in tests)} "
            f"of {len(tests)} exercises pass", "tests": tests}
