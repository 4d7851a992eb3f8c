"""For the instructor (docs/07-instructors.md §3-§4): a class graded at once, a course file
(weights, partial credit, visibility, a secret seed, limits), Gradescope's execution_time, and a
student's file that checks itself.
"""

import contextlib
import csv
import io
import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tinyvae.classroom.exercises import EXERCISES, start
from tinyvae.commands.exercise import main

ROOT = Path(__file__).resolve().parent.parent
SOLUTIONS = Path(__file__).resolve().parent / "exercise_solutions"


def run(*argv) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = main([str(a) for a in argv])
        except SystemExit as exc:
            code = exc.code
    return code, out.getvalue(), err.getvalue()


def course(tmp_path: Path, doc: dict) -> Path:
    path = tmp_path / "course.json"
    path.write_text(json.dumps(doc), encoding="utf-8")
    return path


@pytest.fixture
def submissions(tmp_path) -> Path:
    """Three students as a platform uploads them: files in sub-folders, one exiting, one with two
    copies."""
    root = tmp_path / "submissions"
    (root / "alice" / "hw").mkdir(parents=True)
    for name in ("relu", "tanh", "kl"):
        shutil.copy(SOLUTIONS / "correct" / f"{name}.py", root / "alice" / "hw" / f"{name}.py")
    (root / "bob").mkdir()
    shutil.copy(SOLUTIONS / "wrong" / "tanh-of-cache.py", root / "bob" / "tanh.py")
    (root / "bob" / "relu.py").write_text("import sys\n\ndef relu_backward(dout, cache):\n"
                                          "    sys.exit(0)\n")
    for sub in ("a", "b"):
        (root / "carol" / sub).mkdir(parents=True)
        shutil.copy(SOLUTIONS / "correct" / "relu.py", root / "carol" / sub / "relu.py")
    (root / ".git").mkdir()  # not a student
    return root


COURSE = {"exercises": {"relu": {"weight": 2},
                        "tanh": {"partial_credit": True, "visibility": "after_due_date"},
                        "kl": {}}, "seed": 271828}


def test_grade_writes_the_class_csv_with_a_progress_line(submissions, tmp_path):
    code, out, err = run("grade", submissions, "--course", course(tmp_path, COURSE),
                         "--csv", tmp_path / "grades.csv", "--jobs", 2)
    assert code == 0 and "exercise grade: 3 students, 3 exercises, 3 of 9 pass" in out
    assert "graded 9 of 9 (100 %)" in err
    rows = list(csv.DictReader((tmp_path / "grades.csv").open(encoding="utf-8")))
    assert [r["student"] for r in rows] == ["alice", "bob", "carol"]
    assert [(r["score"], r["max_score"], r["relu"], r["kl"]) for r in rows] == [
        ("4", "4", "2", "1"), (rows[1]["tanh"], "4", "0", "0"), ("0", "4", "0", "0")]
    # partial credit: 14 of its 43 rows pass
    assert float(rows[1]["tanh"]) == pytest.approx(14 / 43, rel=1e-3)
    assert rows[1]["notes"] == "relu: error; tanh: failed; kl: missing"
    assert rows[2]["notes"].startswith("relu: error")


def test_grade_writes_each_students_gradescope_json(submissions, tmp_path):
    code, _, _ = run("grade", submissions, "relu", "tanh", "--course", course(tmp_path, COURSE),
                     "--json-dir", tmp_path / "json")
    assert code == 0
    assert sorted(p.name for p in (tmp_path / "json").iterdir()) == ["alice.json", "bob.json",
                                                                     "carol.json"]
    carol = json.loads((tmp_path / "json" / "carol.json").read_text(encoding="utf-8"))
    assert "2 files named relu.py: carol/a/relu.py, carol/b/relu.py" in carol["tests"][0]["output"]


def test_the_course_file_sets_weights_partial_credit_and_visibility_in_results_json(tmp_path):
    folder = tmp_path / "work"
    folder.mkdir()
    shutil.copy(SOLUTIONS / "correct" / "relu.py", folder / "relu.py")
    shutil.copy(SOLUTIONS / "wrong" / "tanh-of-cache.py", folder / "tanh.py")
    code, out, _ = run("check", "--dir", folder, "--course", course(tmp_path, COURSE),
                       "--json", tmp_path / "r.json")
    doc = json.loads((tmp_path / "r.json").read_text(encoding="utf-8"))
    # the course's
    assert code == 1 and [t["name"].split(":")[0] for t in doc["tests"]] == ["relu", "tanh", "kl"]
    assert [(t["score"], t["max_score"], t["visibility"]) for t in doc["tests"]] == [
        (2.0, 2.0, "visible"), (doc["tests"][1]["score"], 1.0, "after_due_date"),
        (0.0, 1.0, "visible")]
    assert 0 < doc["tests"][1]["score"] < 1
    assert doc["score"] == pytest.approx(2 + doc["tests"][1]["score"])
    assert isinstance(doc["execution_time"], float) and doc["execution_time"] > 0
    assert "no file" in doc["tests"][2]["output"]


def test_a_secret_seed_changes_the_model_and_is_never_shown(tmp_path):
    folder = tmp_path / "work"
    folder.mkdir()
    shutil.copy(SOLUTIONS / "correct" / "relu.py", folder / "relu.py")
    _, public, _ = run("check", "relu", "--dir", folder, "--json", tmp_path / "public.json")
    code, secret, _ = run("check", "relu", "--dir", folder,
                          "--course", course(tmp_path, {"seed": 271828}),
                          "--json", tmp_path / "secret.json")
    assert code == 0 and "271828" not in secret
    assert "271828" not in (tmp_path / "secret.json").read_text()
    norms = [json.loads((tmp_path / f).read_text())["tests"][0]["extra_data"]["rows"][1][
                 "numerical_norm"]
             for f in ("public.json", "secret.json")]
    assert norms[0] != norms[1]  # another model
    # the same model as that seed
    assert run("check", "relu", "--dir", folder, "--seed", "271828")[1] == secret


@pytest.mark.slow
def test_the_course_file_sets_the_limits(tmp_path):
    folder = tmp_path / "work"
    folder.mkdir()
    (folder / "relu.py").write_text("def relu_backward(dout, cache):\n    while True:\n"
                                    "        pass\n")
    code, out, _ = run("check", "relu", "--dir", folder,
                       "--course", course(tmp_path, {"time_limit": 1}))
    assert code == 1 and "did not finish within the time limit of 1 s" in out


@pytest.mark.parametrize("doc, words", [
    ({"exercises": ["relu", "nonsense"]}, "unknown exercise 'nonsense'"),
    ({"seeds": 3}, "unknown: ['seeds']"),
    ({"visibility": "sometimes"},
     "visibility is one of visible, hidden, after_due_date, after_published"),
    ({"exercises": {"relu": {"weight": -1}}}, "the weight of 'relu' is a number >= 0"),
    ({"seed": "secret"}, "\"seed\" is an integer >= 0"),
    ({"time_limit": 0}, "'time_limit' is a number > 0"),
])
def test_a_bad_course_file_is_one_line_and_exit_2(doc, words, tmp_path):
    code, out, err = run("check", "relu", "--dir", tmp_path, "--course", course(tmp_path, doc))
    assert code == 2 and words in err and out == "" and err.count("\n") == 1


@pytest.mark.slow
def test_a_students_file_checks_itself(tmp_path):
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    start("relu", tmp_path)
    stub = subprocess.run([sys.executable, "relu.py"], cwd=tmp_path, env=env, capture_output=True,
                          text=True, timeout=60)
    assert stub.returncode == 1 and "exercise relu: not implemented yet" in stub.stdout
    text = (tmp_path / "relu.py").read_text(encoding="utf-8")
    text = text.replace('    raise NotImplementedError('
                        '"relu_backward: docs/04-gradients.md eq. (3)")',
                        "    return dout * (cache > 0)")
    (tmp_path / "relu.py").write_text(text, encoding="utf-8")
    done = subprocess.run([sys.executable, "relu.py"], cwd=tmp_path, env=env, capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 0 and "exercise relu: PASS (all 43 rows)" in done.stdout


def test_all_nineteen_reference_solutions_are_graded_in_seconds(tmp_path):
    began = time.monotonic()
    code, out, _ = run("check", *EXERCISES, "--dir", SOLUTIONS / "correct", "--jobs", 2)
    assert code == 0 and out.strip().endswith("exercise check: 19 of 19 exercises PASS")
    # measured: about 3 s on 2 cores (docs/07-instructors.md §3)
    assert time.monotonic() - began < 30


def test_every_promise_of_the_instructors_page_names_a_test_that_exists():
    page = (ROOT / "docs" / "07-instructors.md").read_text(encoding="utf-8")
    promises = page[page.index("## 5. What the grader promises"):
                    page.index("What it cannot prevent.")]
    items = re.findall(r"^\d+\. \*\*(.+?)\*\*(.*?)(?=^\d+\. \*\*|\Z)", promises, flags=re.S | re.M)
    assert len(items) == 10
    defined = set()
    for path in (ROOT / "tests").glob("test_*.py"):
        defined |= set(re.findall(r"^def (test_\w+)", path.read_text(encoding="utf-8"), flags=re.M))
    for title, text in items:
        named = re.findall(r"`(test_\w+)`", text)
        assert named, f"the promise {title!r} names no test"
        assert set(named) <= defined, f"{title!r}: no such test {sorted(set(named) - defined)}"
