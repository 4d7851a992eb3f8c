"""The classroom kit (tinyvae/classroom/, `python -m tinyvae exercise`): students' files, graded row
by row.

The answer key of docs/05-classroom.md §4: reference solutions (tests/exercise_solutions/correct/)
pass every row; typical wrong ones (tests/exercise_solutions/wrong/) fail exactly the rows the page
predicts, with the diagnosis it names. Solutions live here, outside the package: tinyvae ships
only the stubs. Each exercise is graded as `exercise check` grades it, in a child process of its
own (a fifth of a second each), on gradcheck's layer sizes with a batch of 3: the function on its
own, then the 42 rows of the whole VAE.
"""

import contextlib
import copy
import io
import os
import re
import shutil
from pathlib import Path

import numpy as np
import pytest

from tinyvae import layers, losses, vae
from tinyvae.classroom.exercises import EXERCISES, grade, start, stub_text
from tinyvae.commands.exercise import main
from tinyvae.config import VAEConfig, param_shapes
from tinyvae.gradcheck import terms_of

ROOT = Path(__file__).resolve().parent.parent
SOLUTIONS = Path(__file__).resolve().parent / "exercise_solutions"
PAGE = ROOT / "docs" / "05-classroom.md"
KEYS = list(param_shapes(VAEConfig(input_dim=5, hidden_dims=(4, 3), latent_dim=2)))
ENC_HIDDEN = ["encoder.W0", "encoder.b0", "encoder.W1", "encoder.b1"]
HEADS_MU = ["encoder.W_mu", "encoder.b_mu"]
HEADS_LOGVAR = ["encoder.W_logvar", "encoder.b_logvar"]


def every(terms, names) -> set:
    return {(t, n) for t in terms for n in names}


def run(*argv) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = main(list(argv))
        except SystemExit as exc:
            code = exc.code
    return code, out.getvalue(), err.getvalue()


def graded_copy(solution: Path, name: str, folder: Path):
    folder.mkdir(exist_ok=True)
    shutil.copy(solution, folder / f"{name}.py")
    return grade(name, folder)


def failing(graded) -> set:
    return {(group, key) for group, key, _, ok in graded.rows if not ok}


# ---- start: a stub the student owns ----

def test_start_writes_a_stub_that_never_overwrites_the_students_work(tmp_path):
    code, out, _ = run("start", "dense", "--dir", str(tmp_path))
    assert code == 0 and "wrote" in out
    text = (tmp_path / "dense.py").read_text(encoding="utf-8")
    assert "def dense_backward(dout, cache):" in text and "docs/04-gradients.md eq. (2)" in text
    assert "raise NotImplementedError" in text and "x.T @ dout" not in text  # no answer in the stub
    (tmp_path / "dense.py").write_text("# my work\n", encoding="utf-8")
    code, out, _ = run("start", "dense", "--dir", str(tmp_path))
    assert code == 0 and "left as it is" in out
    assert (tmp_path / "dense.py").read_text(encoding="utf-8") == "# my work\n"


STUBS = ROOT / "tinyvae" / "classroom" / "stubs"


def test_every_exercise_has_one_stub_file_and_the_package_ships_them():
    assert sorted(p.stem for p in STUBS.glob("*.py")) == sorted(EXERCISES)
    assert not (STUBS / "__init__.py").exists()  # data, not a package: nothing imports them
    setup = (ROOT / "setup.cfg").read_text(encoding="utf-8")
    stanza = setup.replace("# the exercise stubs that `exercise start` copies: Python files, but "
                           "no package of their own\n", "")
    assert re.search(r"^\[options\.package_data\]\ntinyvae\.classroom = stubs/\*\.py$", stanza,
                     flags=re.M)


@pytest.mark.parametrize("name", list(EXERCISES))
def test_a_stub_is_written_as_it_is_and_names_its_exercise(name, tmp_path):
    exercise = EXERCISES[name]
    text = (STUBS / f"{name}.py").read_text(encoding="utf-8")
    assert stub_text(name) == text and start(name, tmp_path)[1]
    assert (tmp_path / f"{name}.py").read_text(encoding="utf-8") == text
    assert text.startswith(f'"""Exercise {name}: {exercise.title}.\n')
    assert f"python -m tinyvae exercise check {name}\n" in text and exercise.equation in text
    assert f"def {exercise.function}(" in text


def test_the_stubs_pass_the_linter():
    ruff = shutil.which("ruff")
    if ruff is None:
        pytest.skip("ruff is not installed")
    import subprocess

    result = subprocess.run([ruff, "check", "--isolated", "--line-length", "100",
                             "--select", "E,F,W,I,B,UP", str(STUBS)],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stdout


def test_the_stubs_speak_of_new_arrays_and_of_the_activations_registry():
    for name in ("kl", "reparameterize"):
        text = (STUBS / f"{name}.py").read_text(encoding="utf-8")
        assert "adds to dmu in place" not in text and "must not share memory" in text
    for name in ("encoder", "decoder"):
        text = (STUBS / f"{name}.py").read_text(encoding="utf-8")
        assert "ACTIVATIONS[config.activation].backward" in text and "activation(" not in text


@pytest.mark.parametrize("name", list(EXERCISES))
def test_an_untouched_stub_is_not_implemented_yet_without_a_traceback(name, tmp_path):
    start(name, tmp_path)
    graded = grade(name, tmp_path)
    assert graded.status == "not implemented" and graded.rows == []
    assert f"{EXERCISES[name].function}() still raises NotImplementedError at" in graded.note
    assert "Traceback" not in graded.note
    compile(stub_text(name), name, "exec")  # every stub is valid Python


# ---- the reference solutions pass every row ----

@pytest.mark.parametrize("name", list(EXERCISES))
def test_a_correct_solution_passes_every_row(name):
    graded = grade(name, SOLUTIONS / "correct")
    assert graded.status == "passed", graded.note
    assert graded.rows and all(ok for *_, ok in graded.rows)
    if EXERCISES[name].kind in ("model", "loss"):  # the whole table: every parameter, every term
        model = [row for row in graded.rows if row[0] in ("full", "recon", "kl")]
        assert len(model) == len(terms_of(graded.config)) * len(param_shapes(graded.config))
        # and the function on its own (and its properties: "check")
        units = {group for group, *_ in graded.rows} - {"full", "recon", "kl", "check"}
        assert units == ({EXERCISES[name].function} if name != "loss" else set())


# ---- typical wrong solutions fail exactly the rows docs/05 predicts ----

# iwae-weights' rows of the function on its own and of its properties
W, WEIGHTS = "normalized_weights", ("axis 1", "axis 0", "extreme log w")
SUMS = ("check", "sums to 1 along the axis: the sum furthest from 1")
FINITE = ("check", "finite, at extreme log w too: entries NaN or inf")
IWAE_ALL = every(["full"], KEYS) | every([W], WEIGHTS) | {SUMS}
WRONG = {  # file -> (exercise, the failing rows, words of the diagnosis)
    "relu-sign-flipped": ("relu", every(("full", "recon"),
                                        ["encoder.W1", "encoder.b1", "decoder.W1", "decoder.b1"])
                          | every(["kl"], ["encoder.W1", "encoder.b1"]) | {("relu_backward", "dx")},
                          "dx: analytic = −numerical (rel. error 1.00 with equal norms): "
                          "a sign flipped"),
    "tanh-of-cache": ("tanh", every(("full", "recon"), KEYS[:-2]) | every(["kl"], ENC_HIDDEN)
                      | {("tanh_backward", "dx")},
                      "dx: no simple relation"),
    "dense-bias-mean": ("dense", every(("full", "recon"), [k for k in KEYS if ".b" in k])
                        | every(["kl"], [k for k in KEYS if k.startswith("encoder.b")])
                        | {("dense_backward", "db")},
                        "db is wrong; dx and dW are right\n"
                        "  db: analytic = 1/B × numerical = 0.333333 × numerical: "
                        "a mean over the batch where the gradient needs the sum"),
    "kl-sign-flipped": ("kl", every(("full", "kl"), ENC_HIDDEN + HEADS_LOGVAR)
                        | {("kl_standard_normal", "dlog_var")},
                        "dlog_var is wrong; dmu is right\n  dlog_var: analytic = −numerical"),
    "loss-no-kl-path-into-mu": ("loss", every(("full", "kl"), ENC_HIDDEN + HEADS_MU),
                                "most informative FAIL: kl encoder.W_mu: |analytic| is exactly 0"),
    "loss-no-z-path-into-mu": ("loss", every(("full", "recon"), ENC_HIDDEN + HEADS_MU),
                               "most informative FAIL: recon encoder.W_mu: "
                               "|analytic| is exactly 0"),
    "loss-sum-instead-of-mean": ("loss",
                                 every(("full", "recon", "kl"), KEYS) - every(["kl"], KEYS[8:]),
                                 "analytic = B × numerical = 3 × numerical: a sum over the batch"),
    "gaussian-missing-variance": ("gaussian",
                                  every(("full", "recon"), KEYS) | {("gaussian_nll", "dmean")},
                                  "dmean: analytic = σ² × numerical = 0.36 × numerical: "
                                  "a missing 1/σ²"),
    # L_K is one term: the iwae model's table has the full rows only (gradcheck.terms_of)
    "iwae-weights-no-max-shift": ("iwae-weights", {(W, "extreme log w"), FINITE},
                                  "entries are NaN or infinite: e^(log w) overflows to inf above "
                                  "log w ≈ 709 and underflows to 0 below −745"),
    "iwae-weights-wrong-axis": ("iwae-weights", IWAE_ALL - {(W, "axis 0")},
                                "axis 1: it sums to 1 along axis 0, not along axis 1, the axis it "
                                "was given: normalized over the wrong axis"),
    "iwae-weights-not-normalized": ("iwae-weights", IWAE_ALL,
                                    "not 1: the weights w, not w̃ = w / Σ_j w_j, which sum to 1"),
    "iwae-weights-divided-by-mean": ("iwae-weights", IWAE_ALL,
                                     "axis 1: it sums to 5 along axis 1, the number of weights "
                                     "there: divided by their mean, not by their sum"),
}


@pytest.mark.parametrize("wrong", list(WRONG))
def test_a_typical_wrong_solution_fails_exactly_the_predicted_rows_with_its_diagnosis(wrong,
                                                                                      tmp_path):
    name, rows, words = WRONG[wrong]
    graded = graded_copy(SOLUTIONS / "wrong" / f"{wrong}.py", name, tmp_path)
    assert graded.status == "failed"
    assert failing(graded) == rows
    assert words in graded.note and EXERCISES[name].equation in graded.note


def test_the_tanh_hint_28_rows_and_the_sum_hint_b_minus_1_over_b_plus_1(tmp_path):
    assert len(WRONG["tanh-of-cache"][1]) == 28 + 1
    assert len(WRONG["loss-sum-instead-of-mean"][1]) == 36
    graded = graded_copy(SOLUTIONS / "wrong" / "loss-sum-instead-of-mean.py", "loss", tmp_path)
    B = 3  # the grader's batch: (B - 1)/(B + 1) in every failing row
    assert all(c["rel_error"] == pytest.approx((B - 1) / (B + 1), abs=1e-6)
               for _, _, c, ok in graded.rows if not ok)


def test_a_missing_transpose_is_shown_at_the_students_own_line(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    graded = graded_copy(SOLUTIONS / "wrong" / "dense-missing-transpose.py", "dense",
                         Path("tinyvae-exercises"))
    assert graded.status == "error" and graded.rows == []
    assert graded.note.startswith("tinyvae-exercises/dense.py:6 in dense_backward: dx = dout @ W")
    assert "ValueError: matmul" in graded.note and "transpose" in graded.note


def test_a_students_exception_anywhere_is_one_sentence_with_their_line(tmp_path):
    (tmp_path / "discrete-kl.py").write_text("def kl_divergence(p, q, base=2):\n    return p / 0\n")
    graded = grade("discrete-kl", tmp_path)
    assert graded.status == "error"
    assert "discrete-kl.py:2 in kl_divergence: return p / 0" in graded.note
    assert "TypeError" in graded.note
    (tmp_path / "relu.py").write_text("def relu_backward(dout, cache)\n    return dout\n")
    assert "SyntaxError" in grade("relu", tmp_path).note
    (tmp_path / "tanh.py").write_text("def tanh_backward(dout, cache):\n    return dout[:1]\n")
    assert "tanh_backward's dx has shape (1," in grade("tanh", tmp_path).note


def test_grading_leaves_the_installed_package_as_it_was(tmp_path):
    before = ({k: v for k, v in vars(m).items() if callable(v)} for m in (layers, losses, vae))
    before = [dict(d) for d in before]
    registries = dict(layers.ACTIVATIONS), copy.copy(losses.LIKELIHOODS)
    for name in ("softplus", "bernoulli", "encoder", "dense"):
        grade(name, SOLUTIONS / "correct")
    # even after an error
    graded_copy(SOLUTIONS / "wrong" / "dense-missing-transpose.py", "dense", tmp_path)
    assert (dict(layers.ACTIVATIONS), losses.LIKELIHOODS) == registries
    assert "softplus" not in layers.ACTIVATIONS
    for module, old in zip((layers, losses, vae), before):
        assert all(vars(module)[k] is v for k, v in old.items())


# ---- the command line and Gradescope's results.json ----

def check_gradescope_results(doc: dict) -> None:
    """The format of Gradescope's autograder specification ("Output format", "Test case status")."""
    assert isinstance(doc, dict)
    assert set(doc) <= {"score", "execution_time", "output", "output_format",
                        "test_output_format", "test_name_format", "visibility",
                        "stdout_visibility", "extra_data", "tests", "leaderboard"}
    assert "score" in doc or all("score" in t for t in doc["tests"])
    assert isinstance(doc["score"], (int, float)) and not isinstance(doc["score"], bool)
    for test in doc["tests"]:
        assert set(test) <= {"score", "max_score", "status", "name", "name_format", "number",
                             "output", "output_format", "tags", "visibility", "extra_data"}
        assert isinstance(test["name"], str) and isinstance(test["output"], str)
        assert isinstance(test["score"], float) and isinstance(test["max_score"], float)
        assert 0 <= test["score"] <= test["max_score"] and test["status"] in ("passed", "failed")
        assert isinstance(test["extra_data"], dict)
    assert doc["score"] == sum(t["score"] for t in doc["tests"])


def test_check_writes_gradescope_results_and_exits_0_only_when_everything_passes(tmp_path):
    import json

    folder = tmp_path / "work"
    shutil.copy(SOLUTIONS / "correct" / "relu.py", folder.mkdir() or folder / "relu.py")
    shutil.copy(SOLUTIONS / "correct" / "discrete-kl.py", folder / "discrete-kl.py")
    code, out, _ = run("check", "--dir", str(folder), "--json", str(tmp_path / "results.json"))
    assert code == 0 and out.strip().endswith("exercise check: 2 of 2 exercises PASS")
    doc = json.loads((tmp_path / "results.json").read_text(encoding="utf-8"))
    check_gradescope_results(doc)
    assert doc["score"] == 2.0 and [t["status"] for t in doc["tests"]] == ["passed", "passed"]
    # per row, for the instructor: dx, then 42
    assert len(doc["tests"][0]["extra_data"]["rows"]) == 43

    shutil.copy(SOLUTIONS / "wrong" / "tanh-of-cache.py", folder / "tanh.py")
    code, out, _ = run("check", "relu", "tanh", "kl", "--dir", str(folder),
                       "--json", str(tmp_path / "r2.json"))
    doc = json.loads((tmp_path / "r2.json").read_text(encoding="utf-8"))
    check_gradescope_results(doc)
    assert code == 1 and [t["status"] for t in doc["tests"]] == ["passed", "failed", "failed"]
    assert doc["tests"][2]["extra_data"]["result"] == "missing" and doc["score"] == 1.0
    assert "FAIL (29 of 43 rows)" in doc["tests"][1]["output"]


def test_bad_command_lines_get_one_line_and_exit_2(tmp_path):
    code, _, err = run("check", "nonsense", "--dir", str(tmp_path))
    assert code == 2 and "unknown exercise 'nonsense'" in err
    code, _, err = run("check", "--dir", str(tmp_path / "empty"))
    assert code == 2 and "no exercise files in" in err
    shutil.copy(SOLUTIONS / "correct" / "relu.py", tmp_path / "relu.py")
    (tmp_path / "file").write_text("")
    code, _, err = run("check", "relu", "--dir", str(tmp_path),
                       "--json", str(tmp_path / "file" / "r.json"))
    assert code == 2 and "cannot write --json" in err


def test_list_shows_the_ladder_then_the_probability(tmp_path):
    code, out, _ = run("list")
    names = re.findall(r"^\s+\d+\. (\S+)", out, flags=re.M)
    assert code == 0 and names == list(EXERCISES)
    assert names[:1] == ["dense"]
    assert names.index("loss") < names.index("adam") < names.index("discrete-kl")


PAGE_FILES = {  # the first line of a pasted block -> the file it puts in place
    "# tinyvae-exercises/dense.py with  dx = dout @ W": "dense-missing-transpose.py",
    "# tinyvae-exercises/dense.py with  db = dout.mean(axis=0)": "dense-bias-mean.py",
}
ELIDED = re.compile(r"^\[\.\.\. (\d+) more rows.*\]$")


def same_line(shown: str, printed: str) -> bool:
    """Equal, but for numbers, which may differ by float noise: 1e-6 relative or 1e-9 absolute."""
    a, b = shown.split(), printed.split()
    if len(a) != len(b):
        return False
    for x, y in zip(a, b):
        try:
            fx, fy = float(x.rstrip(",")), float(y.rstrip(","))
        except ValueError:
            if x != y:
                return False
            continue
        if abs(fx - fy) > 1e-6 * max(abs(fx), abs(fy)) + 1e-9:
            return False
    return True


def same_output(shown: list[str], printed: list[str]) -> bool:
    """The page's lines against the command's, a "[... N more rows ...]" line standing for N of
    them."""
    i = 0
    for line in shown:
        elided = ELIDED.match(line)
        if elided:
            i += int(elided.group(1))
            continue
        if i >= len(printed) or not same_line(line, printed[i]):
            return False
        i += 1
    return i == len(printed)


def test_the_exercise_outputs_on_the_page_are_what_the_command_prints(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    blocks = re.findall(r"^```text\n(.*?)^```", PAGE.read_text(encoding="utf-8"), flags=re.S | re.M)
    blocks = [b for b in blocks if "python -m tinyvae exercise" in b]
    assert len(blocks) == 3
    for block in blocks:
        first = block.splitlines()[0]
        if first in PAGE_FILES:
            Path("tinyvae-exercises").mkdir(exist_ok=True)
            shutil.copy(SOLUTIONS / "wrong" / PAGE_FILES[first], "tinyvae-exercises/dense.py")
        for command in re.split(r"^\$ ", block, flags=re.M)[1:]:
            line, _, expected = command.partition("\n")
            _, out, _ = run(*line.split()[4:])  # after "python -m tinyvae exercise"
            shown = [x for x in expected.splitlines() if x.strip()]
            printed = [x for x in out.splitlines() if x.strip()]
            assert same_output(shown, printed), "\n".join(printed)


def test_the_page_compares_numbers_with_a_tolerance_not_verbatim():
    assert same_line("full  encoder.W0  (5, 4)  5.893912e-01  6.16e-11  PASS",
                     "full  encoder.W0  (5, 4)  5.893912e-01  6.19e-11  PASS")  # float noise
    assert not same_line("db  (4,)  7.504404e-01  5.00e-01  FAIL",
                         "db  (4,)  7.504404e-01  5.00e-01  PASS")
    assert not same_line("analytic = 0.333333 × numerical", "analytic = 0.5 × numerical")
    assert same_output(["a", "[... 2 more rows: anything ...]", "d"], ["a", "b", "c", "d"])


NUMERIC_WRONG = {  # file -> (exercise, the start of each failing check's name)
    "adam-no-bias-correction": ("adam", ["step 1 moves each θ", "θ after 3 steps"]),
    "adam-rebinds-theta": ("adam", ["step 1 moves each θ", "θ after 3 steps", "θ changed in place",
                                    "a VAE's loss on one batch"]),
    "discrete-kl-always-bits": ("discrete-kl", ["KL(P‖Q) in nats", "KL(Q‖P) in nats",
                                                "an outcome with P(x) = 0"]),
    "gaussian-kl-std-for-variance": ("gaussian-kl", ["KL(N(1, 0.5)", "KL(N(-0.3, 2)",
                                                     "KL(N(2, 0.1)"]),
    "kl-monte-carlo-no-sampling": ("kl-monte-carlo", ["its standard error against the true",
                                                      "standard error shrinks"]),
    "elbo-without-entropy": ("elbo-identity", ["log p(x) − ELBO"] * 4 + ["at the exact posterior"]),
    "estimators-score-without-variance": ("estimators", ["score function: mean"]),
}


@pytest.mark.parametrize("wrong", list(NUMERIC_WRONG))
def test_a_wrong_adam_or_probability_solution_fails_exactly_its_checks(wrong, tmp_path):
    name, starts = NUMERIC_WRONG[wrong]
    graded = graded_copy(SOLUTIONS / "wrong" / f"{wrong}.py", name, tmp_path)
    failed = [key for _, key, _, ok in graded.rows if not ok]
    assert graded.status == "failed" and len(failed) == len(starts)
    assert all(key.startswith(start) for key, start in zip(failed, starts))
    assert graded.note.startswith(f"first FAIL: {failed[0]}")


def test_the_estimators_exercise_shows_the_two_variances_it_asks_the_student_to_compare():
    rows = {key: c for _, key, c, _ in grade("estimators", SOLUTIONS / "correct").rows}
    score = rows["score function: variance of one estimate (measured)"]["student"]
    reparam = rows["reparameterization: variance of one estimate (measured)"]["student"]
    assert score / reparam > 100  # f ≈ 5 times a noise of size 1/σ, against f' varying over ±σ


@pytest.mark.slow
def test_from_a_fresh_install_start_then_check_says_not_implemented(tmp_path):
    import subprocess
    import sys

    def tinyvae(*args):  # this tinyvae, not whichever one the interpreter would find from tmp_path
        env = {**os.environ,
               "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
        return subprocess.run([sys.executable, "-m", "tinyvae", "exercise", *args], cwd=tmp_path,
                              capture_output=True, text=True, timeout=60, env=env)

    assert tinyvae("start", "reparameterize").returncode == 0
    result = tinyvae("check", "reparameterize")
    assert result.returncode == 1 and result.stderr == ""
    assert ("not implemented yet: reparameterize_backward() still raises NotImplementedError at "
            "tinyvae-exercises/reparameterize.py:") in result.stdout
    shutil.copy(SOLUTIONS / "correct" / "reparameterize.py",
                tmp_path / "tinyvae-exercises" / "reparameterize.py")
    result = tinyvae("check")
    assert result.returncode == 0 and "exercise reparameterize: PASS (all 44 rows)" in result.stdout


def test_an_instructor_can_grade_on_another_seed_and_the_verdicts_hold(tmp_path):
    correct = grade("loss", SOLUTIONS / "correct", seed=12345)
    assert correct.status == "passed"
    wrong = graded_copy(SOLUTIONS / "wrong" / "loss-no-kl-path-into-mu.py", "loss", tmp_path)
    other = grade("loss", tmp_path, seed=12345)
    assert failing(other) == failing(wrong) and other.rows != wrong.rows  # same rows, another model


# ---- docs/07-instructors.md ----

INSTRUCTORS = ROOT / "docs" / "07-instructors.md"


def test_the_instructors_results_json_is_what_the_command_writes(tmp_path):
    import json

    page = INSTRUCTORS.read_text(encoding="utf-8")
    shown = json.loads(re.search(r"^```json\n(.*?)^```", page, flags=re.S | re.M).group(1))
    command = re.search(r"^\$ python -m tinyvae exercise (check .*)$", page,
                        flags=re.M).group(1).split()
    (tmp_path / "submission").mkdir()
    shutil.copy(SOLUTIONS / "correct" / "relu.py", tmp_path / "submission" / "relu.py")
    shutil.copy(SOLUTIONS / "wrong" / "tanh-of-cache.py", tmp_path / "submission" / "tanh.py")
    command = [str(tmp_path / a) if a in ("submission", "results.json") else a for a in command]
    run(*command)
    written = json.loads((tmp_path / "results.json").read_text(encoding="utf-8"))
    check_gradescope_results(written)
    for doc in (shown, written):  # the page cuts the text and all rows but the first; times vary
        assert doc.pop("execution_time") > 0
        for test in doc["tests"]:
            assert test["extra_data"].pop("seconds") > 0
            assert test.pop("output").startswith(
                test["name"].split(":")[0].join(["exercise ", ":"]))
            test["extra_data"]["rows"] = test["extra_data"]["rows"][:1]
    assert (shown["tests"][0]["extra_data"]["rows"][0].keys()
            == written["tests"][0]["extra_data"]["rows"][0].keys())
    for a, b in zip(shown["tests"], written["tests"]):
        for sa, sb in zip(a["extra_data"].pop("rows"), b["extra_data"].pop("rows")):
            assert {k: v for k, v in sa.items() if "norm" not in k and k != "rel_error"} == \
                   {k: v for k, v in sb.items() if "norm" not in k and k != "rel_error"}
            assert all(sa[k] == pytest.approx(sb[k], rel=1e-6, abs=1e-10)
                       for k in sa if "norm" in k)
    assert shown == written


def test_the_instructors_page_claims_hold(tmp_path):
    page = INSTRUCTORS.read_text(encoding="utf-8")
    relu = graded_copy(SOLUTIONS / "wrong" / "relu-sign-flipped.py", "relu", tmp_path)
    assert "32 of the 42 rows still pass" in page
    assert sum(ok for g, *_, ok in relu.rows if g in ("full", "recon", "kl")) == 32
    handout = re.search(r"for name in ([\w -]+); do", page).group(1).split()
    for name in handout:
        assert start(name, tmp_path / "handout")[1]
    assert sorted(p.stem for p in (tmp_path / "handout").iterdir()) == sorted(handout)
    for name in re.findall(r"exercise check ([\w -]+?) *\\\n", page)[0].split():
        assert name in EXERCISES


def test_exercise_8_sigma_1_hides_a_missing_one_over_sigma_squared(tmp_path):
    graded_copy(SOLUTIONS / "wrong" / "gaussian-missing-variance.py", "gaussian", tmp_path)
    # multiplying by 1 leaves no trace
    assert grade("gaussian", tmp_path, gaussian_std=1.0).status == "passed"
    assert grade("gaussian", tmp_path).status == "failed"  # the check's σ = 0.5 sees it


def test_exercise_3_a_dropped_path_shows_as_an_exact_zero(tmp_path):
    no_kl = graded_copy(SOLUTIONS / "wrong" / "loss-no-kl-path-into-mu.py", "loss", tmp_path / "a")
    no_z = graded_copy(SOLUTIONS / "wrong" / "loss-no-z-path-into-mu.py", "loss", tmp_path / "b")
    for graded, term in ((no_kl, "kl"), (no_z, "recon")):
        table = {(g, k): c for g, k, c, _ in graded.rows}
        assert all(table[term, key]["analytic_norm"] == 0.0 < table[term, key]["numerical_norm"]
                   for key in HEADS_MU)


# ---- iwae-weights: w̃ in the importance-weighted bound's backward, and on its own far from 0 ----

def test_the_iwae_weights_rung_checks_a_model_of_k_5_on_the_one_term_of_l_k():
    graded = grade("iwae-weights", SOLUTIONS / "correct")
    assert (graded.config.k, graded.config.objective) == (5, "iwae")
    full = [key for group, key, *_ in graded.rows if group == "full"]
    assert full == KEYS  # and no recon or kl rows: L_K is one term
    assert {group for group, *_ in graded.rows} == {"normalized_weights", "check", "full"}


def test_the_extreme_log_weights_are_around_minus_100_spread_over_hundreds_and_beyond_exp():
    from tinyvae.classroom import grader

    for seed in range(20):
        ref = grader.reference(EXERCISES["iwae-weights"], seed, grader.DEFAULT_H, {})
        log_w = ref.unit_inputs["log_w_extreme"]  # (3, K): rows around −100, −1000, +1000
        assert np.all(np.ptp(log_w, axis=1) > 100) and -110 < log_w[0].max() < -90
        with np.errstate(over="ignore"):  # beyond float64: e^x is 0 in one row, inf in another
            assert np.all(np.exp(log_w[1]) == 0) and np.any(np.isinf(np.exp(log_w[2])))


def test_a_softmax_without_the_shift_passes_the_model_and_fails_only_far_from_zero(tmp_path):
    wrong = SOLUTIONS / "wrong" / "iwae-weights-no-max-shift.py"
    graded = graded_copy(wrong, "iwae-weights", tmp_path)
    assert all(ok for group, *_, ok in graded.rows if group == "full")  # log w near −5 there
    assert graded.pattern == "finite"
    assert "RuntimeWarning: overflow encountered in exp" in graded.log
    assert "first entry that is not a number" in graded.note  # not a "worst entry" of NaN


def test_the_pages_iwae_weights_exercise_says_what_the_grader_does(tmp_path):
    page = " ".join(PAGE.read_text(encoding="utf-8").split())
    section = page[page.index("**10. `iwae-weights`"):page.index("## 5. Why the check")]
    assert "14 of them" in section and "$K = 5$" in section
    notes = [graded_copy(SOLUTIONS / "wrong" / f"{wrong}.py", name, tmp_path / wrong).note
             for wrong, (name, *_) in WRONG.items() if name == "iwae-weights"]
    notes = " ".join(" ".join(note.split()) for note in notes)
    quoted = [q for q in re.findall(r'"([^"]+)"', section) if " " in q]  # not "iwae"
    assert len(quoted) == 4 and all(quote in notes for quote in quoted)

    from tinyvae.classroom import grader  # the model's log w at the default seed

    ref = grader.reference(EXERCISES["iwae-weights"], grader.SEED, grader.DEFAULT_H, {})
    params, x, eps, config = ref.params, ref.x, ref.eps, ref.config
    B, K, Z = eps.shape
    mu, log_var, _ = vae.encoder_forward(params, x, config)
    z, _ = layers.reparameterize_forward(mu[:, None], log_var[:, None], eps)
    out, out_log_var, _ = vae.decoder_forward(params, z.reshape(B * K, Z), config)
    recon = vae.reconstruction_nll(out, out_log_var, np.repeat(x, K, axis=0), config)[0]
    log_q = losses.log_posterior(eps, log_var[:, None])
    log_w = -recon.reshape(B, K) + losses.log_prior(z)[0] - log_q
    assert "between −19 and −3" in section
    assert (round(log_w.min()), round(log_w.max())) == (-19, -3)
