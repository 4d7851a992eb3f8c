"""A grader a course can trust (docs/07-instructors.md §5): a student's file cannot end, hang, crash
or fool the grading, nor call tinyvae's answer.

Each exercise runs in a child process of its own; these tests hand the grader the files a student
who is not trying would write, and read the verdict, the exit status and the results.json.
"""

import contextlib
import io
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import default_signals

from tinyvae import layers, losses, vae
from tinyvae.classroom import guards
from tinyvae.classroom.exercises import EXERCISES, grade
from tinyvae.commands.exercise import main

ROOT = Path(__file__).resolve().parent.parent
CORRECT = Path(__file__).resolve().parent / "exercise_solutions" / "correct"


def run(*argv) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = main(list(argv))
        except SystemExit as exc:
            code = exc.code
    return code, out.getvalue(), err.getvalue()


def write(folder: Path, name: str, text: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{name}.py").write_text(text, encoding="utf-8")
    return folder


def results(path: Path) -> dict:
    doc = json.loads(path.read_text(encoding="utf-8"))
    assert isinstance(doc["score"], float)
    assert all(t["status"] in ("passed", "failed") for t in doc["tests"])
    return doc


def verdicts(doc: dict) -> dict:
    return {t["extra_data"]["exercise"]: t["extra_data"]["result"] for t in doc["tests"]}


RELU = "def relu_backward(dout, cache):\n    {body}\n"


# ---- a child that ends, hangs, crashes or returns nonsense is an ERROR; the run goes on ----

@pytest.mark.parametrize("body, words", [
    ("import sys; sys.exit(0)", "your code called sys.exit()"),
    ("import os; os._exit(0)",
     "ended the exercise's process (exit status 0) before the grader had its result"),
    ("raise KeyboardInterrupt", "KeyboardInterrupt"),
    ("raise GeneratorExit", "GeneratorExit"),
    ("raise SystemExit(3)", "your code called sys.exit()"),
    ("import os, signal; os.kill(os.getpid(), signal.SIGSEGV)", "killed by SIGSEGV"),
])
def test_a_file_that_exits_or_raises_anything_is_an_error_with_json_and_exit_1(body, words,
                                                                                tmp_path):
    folder = write(tmp_path / "work", "relu", RELU.format(body=body))
    code, out, _ = run("check", "relu", "--dir", str(folder), "--json", str(tmp_path / "r.json"))
    assert code == 1 and words in out and "exercise relu: ERROR in your code" in out
    doc = results(tmp_path / "r.json")
    assert doc["score"] == 0.0 and verdicts(doc) == {"relu": "error"}


def test_a_file_that_kills_the_process_that_started_it_is_an_error_and_the_run_goes_on(tmp_path):
    folder = write(tmp_path / "work", "relu",
                   RELU.format(body="import os, signal; os.kill(os.getppid(), signal.SIGKILL)"))
    shutil.copy(CORRECT / "tanh.py", folder / "tanh.py")
    code, out, _ = run("check", "relu", "tanh", "--dir", str(folder), "--jobs", "1",
                       "--json", str(tmp_path / "r.json"))
    assert code == 1 and "your code ended the process that started it" in out
    assert verdicts(results(tmp_path / "r.json")) == {"relu": "error", "tanh": "passed"}


def test_exiting_at_import_is_an_error_too(tmp_path):
    folder = write(tmp_path, "relu", "import sys\nsys.exit(0)\n" + RELU.format(body="return dout"))
    graded = grade("relu", folder)
    assert graded.status == "error" and "relu.py:2 in <module>: sys.exit(0)" in graded.note


def test_a_wrong_dense_and_an_exiting_relu_still_let_tanh_be_graded(tmp_path):
    folder = write(tmp_path / "work", "relu", RELU.format(body="import sys; sys.exit(0)"))
    shutil.copy(CORRECT / "tanh.py", folder / "tanh.py")
    shutil.copy(ROOT / "tests" / "exercise_solutions" / "wrong" / "dense-bias-mean.py",
                folder / "dense.py")
    code, out, _ = run("check", "dense", "relu", "tanh", "--dir", str(folder),
                       "--json", str(tmp_path / "r.json"))
    assert code == 1
    assert verdicts(results(tmp_path / "r.json")) == {"dense": "failed", "relu": "error",
                                                      "tanh": "passed"}
    assert out.strip().endswith("exercise check: 1 of 3 exercises PASS")


@pytest.mark.slow
def test_an_endless_loop_is_stopped_at_the_time_limit_and_the_rest_is_graded(tmp_path):
    folder = write(tmp_path / "work", "relu", RELU.format(body="while True: pass"))
    shutil.copy(CORRECT / "tanh.py", folder / "tanh.py")
    began = time.monotonic()
    code, out, _ = run("check", "relu", "tanh", "--dir", str(folder), "--time-limit", "1",
                       "--jobs", "1", "--json", str(tmp_path / "r.json"))
    assert time.monotonic() - began < 15
    assert code == 1 and "did not finish within the time limit of 1 s" in out
    assert verdicts(results(tmp_path / "r.json")) == {"relu": "error", "tanh": "passed"}


def test_memory_beyond_the_limit_is_an_error(tmp_path):
    folder = write(tmp_path, "relu",
                   RELU.format(body="import numpy as np; return np.ones((20_000, 20_000))"))
    graded = grade("relu", folder, limits=guards_limits(memory_mb=256))
    assert graded.status == "error" and "MemoryError" in graded.note and "memory" in graded.note


def guards_limits(**kw):
    from tinyvae.classroom.sandbox import Limits

    return Limits(**kw)


@pytest.mark.parametrize("returned, words", [
    ("'dx'", "is a str, not a numpy array"),
    ("np.zeros(dout.shape, dtype='datetime64[s]')", "has dtype datetime64[s]"),
    ("dout * (cache > 0) + 0j", "has dtype complex128"),
    ("Shaped()", "is a Shaped, not a numpy array"),
    ("dout[:1] * 1.0", "has shape (1, 4), expected (3, 4)"),
    ("dout * np.nan", "has NaN or infinite entries"),
    ("None", "is a NoneType"),
])
def test_a_return_value_the_grader_cannot_use_is_one_line_of_error(returned, words, tmp_path):
    text = ("import numpy as np\n\nclass Shaped(list):\n    shape = (3, 4)\n\n"
            f"def relu_backward(dout, cache):\n    return {returned}\n")
    graded = grade("relu", write(tmp_path, "relu", text))
    assert graded.status == "error" and words in graded.note and "Traceback" not in graded.note


@pytest.mark.parametrize("name, text, words", [
    ("discrete-kl", "def kl_divergence(p, q, base=2.718281828459045):\n    return 'nats'\n",
     "is a str"),
    ("discrete-kl", "import numpy as np\ndef kl_divergence(p, q, base=2.7):\n"
     "    return np.datetime64('2020')\n", "is a datetime64"),
    ("gaussian-kl", "def kl_normal(a, b, c, d):\n    return 1j\n", "is a complex"),
    ("kl-monte-carlo", "def kl_monte_carlo(mu, log_var, n, rng):\n    return 0.0\n",
     "must return 2 values"),
    ("estimators", "def score_function_grad(f, mu, s, n, rng):\n    return [0.0] * n\n"
     "def reparam_grad(df, mu, s, n, rng):\n    return [0.0] * n\n",
     "is a list, not a numpy array"),
])
def test_the_probability_exercises_refuse_values_that_are_not_numbers(name, text, words, tmp_path):
    graded = grade(name, write(tmp_path, name, text))
    assert graded.status == "error" and words in graded.note


def test_the_json_is_refused_up_front_when_it_is_not_a_regular_file(tmp_path):
    folder = write(tmp_path / "work", "relu", RELU.format(body="return dout * (cache > 0)"))
    (tmp_path / "a-folder").mkdir()
    os.mkfifo(tmp_path / "a-fifo")
    for target in (tmp_path / "a-folder", tmp_path / "a-fifo",
                   tmp_path / "no-such-folder" / "r.json"):
        code, out, err = run("check", "relu", "--dir", str(folder), "--json", str(target))
        assert code == 2 and "cannot write --json" in err and out == ""


def test_the_json_is_written_whole_over_an_old_one(tmp_path):
    folder = write(tmp_path / "work", "relu", RELU.format(body="return dout * (cache > 0)"))
    (tmp_path / "r.json").write_text("an old, half-written file")
    assert run("check", "relu", "--dir", str(folder), "--json", str(tmp_path / "r.json"))[0] == 0
    assert verdicts(results(tmp_path / "r.json")) == {"relu": "passed"}
    # no temporary file left
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r.json", "work"]


def test_a_json_that_cannot_be_written_after_grading_is_a_failure_not_a_refusal(tmp_path,
                                                                               monkeypatch):
    import errno

    from tinyvae.commands import exercise

    def disk_full(path, doc):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))

    folder = write(tmp_path / "work", "relu", RELU.format(body="return dout * (cache > 0)"))
    monkeypatch.setattr(exercise, "write_json", disk_full)
    code, out, err = run("check", "relu", "--dir", str(folder), "--json", str(tmp_path / "r.json"))
    # graded (the verdict is printed), then the file failed: status 1 as the exit table says
    assert code == 1 and "1 of 1 exercises PASS" in out
    assert "cannot write --json" in err and "No space left" in err
    assert not (tmp_path / "r.json").exists()


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders")
def test_a_read_only_folder_for_the_json_is_refused_before_grading(tmp_path):
    folder = write(tmp_path / "work", "relu", RELU.format(body="return dout * (cache > 0)"))
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o555)
    code, out, err = run("check", "relu", "--dir", str(folder), "--json", str(locked / "r.json"))
    assert code == 2 and "is not writable" in err and out == ""


@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_an_interrupted_grader_still_writes_its_json_and_exits_130(sig, tmp_path):
    folder = write(tmp_path / "work", "relu", RELU.format(body="while True: pass"))
    shutil.copy(CORRECT / "tanh.py", folder / "tanh.py")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen([sys.executable, "-m", "tinyvae", "exercise", "check", "tanh", "relu",
                             "--dir", str(folder), "--json", str(tmp_path / "r.json"),
                             "--jobs", "1", "--time-limit", "60"],
                            cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True,
                            preexec_fn=default_signals)  # SIGINT acts even if this run ignores it
    time.sleep(3)  # tanh graded, relu looping
    proc.send_signal(sig)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 130 and "interrupted" in err
    doc = results(tmp_path / "r.json")
    assert verdicts(doc) == {"tanh": "passed", "relu": "error"}
    assert "not graded: the grader was interrupted" in doc["tests"][1]["output"]


# ---- no answer key at hand ----

def test_a_file_that_wraps_the_librarys_own_function_is_an_error(tmp_path):
    text = ("from tinyvae.layers import relu_backward as _lib\n\n"
            "def relu_backward(dout, cache):\n    return _lib(dout, cache)\n")
    graded = grade("relu", write(tmp_path, "relu", text))
    assert graded.status == "error"
    assert "calls tinyvae's own tinyvae.layers.relu_backward" in graded.note


def test_a_file_whose_function_is_the_librarys_own_is_an_error(tmp_path):
    graded = grade("relu", write(tmp_path, "relu", "from tinyvae.layers import relu_backward\n"))
    assert graded.status == "error"
    assert "is tinyvae's own tinyvae.layers.relu_backward, imported" in graded.note


@pytest.mark.parametrize("name, text", [
    ("loss", "import tinyvae\n\n"
             "def loss_and_grads(params, x, eps, config, *, beta=None, terms='both'):\n"
             "    return tinyvae.loss_and_grads(params, x, eps, config, terms=terms)\n"),
    ("loss", "from tinyvae import gradcheck\n\n"
             "def loss_and_grads(params, x, eps, config, *, beta=None, terms='both'):\n"
             "    return gradcheck.loss_and_grads(params, x, eps, config, terms=terms)\n"),
    ("loss", "from tinyvae import train\n\n"
             "def loss_and_grads(params, x, eps, config, *, beta=None, terms='both'):\n"
             "    try:\n        return train.loss_and_grads(params, x, eps, config, terms=terms)\n"
             "    except Exception:\n        return 0.0, {}, {}\n"),
    ("encoder", "from tinyvae import vae\n\ndef encoder_backward(dmu, dlog_var, cache, config):\n"
                "    return vae.encoder_backward(dmu, dlog_var, cache, config)\n"),
    ("kl", "from tinyvae.vae import kl_standard_normal as k\n\n"
           "def kl_standard_normal(mu, log_var):\n"
           "    return k(mu, log_var)\n"),
    ("adam", "from tinyvae import optim\n\ndef adam_update(theta, g, state, t, lr, b1, b2, eps):\n"
             "    optim.make_optimizer('adam', lr=lr).step({'w': theta}, {'w': g})\n"),
    ("discrete-kl", "from tinyvae.losses import kl_divergence\n"),
    ("kl-monte-carlo", "from tinyvae.losses import kl_standard_normal\nimport numpy as np\n\n"
                       "def kl_monte_carlo(mu, log_var, n, rng):\n"
                       "    return float(kl_standard_normal(mu[None], log_var[None])[0][0]), "
                       "1 / np.sqrt(n)\n"),
    ("iwae-weights", "import numpy as np\nfrom tinyvae.losses import normalized_weights as nw\n\n"
                     "def normalized_weights(log_w, axis=0):\n"
                     "    try:\n        return nw(log_w, axis)\n    except Exception:\n"
                     "        e = np.exp(log_w - log_w.max(axis=axis, keepdims=True))\n"
                     "        return e / e.sum(axis=axis, keepdims=True)\n"),
    ("iwae-weights", "import tinyvae.losses\n\ndef normalized_weights(log_w, axis=0):\n"
                     "    return tinyvae.losses.normalized_weights(log_w, axis)\n"),
    ("iwae-weights", "from tinyvae.vae import normalized_weights\n"),
])
def test_the_answer_is_guarded_by_any_import_path_even_when_the_error_is_caught(name, text,
                                                                                 tmp_path):
    graded = grade(name, write(tmp_path, name, text))
    assert graded.status == "error" and "tinyvae's own" in graded.note
    assert "Recursion" not in graded.note


def test_the_encoder_may_not_borrow_the_models_walk_back_through_the_hidden_layers(tmp_path):
    walk = "mlp_backward" if hasattr(vae, "mlp_backward") else "_mlp_backward"
    text = (f"from tinyvae import vae\nfrom tinyvae.layers import dense_backward\n\n"
            "def encoder_backward(dmu, dlog_var, cache, config):\n"
            "    mlp_caches, mu_cache, lv_cache = cache\n"
            "    grads = {}\n"
            "    dh_mu, grads['encoder.W_mu'], grads['encoder.b_mu'] = "
            "dense_backward(dmu, mu_cache)\n"
            "    dh_lv, grads['encoder.W_logvar'], grads['encoder.b_logvar'] = "
            "dense_backward(dlog_var, lv_cache)\n"
            f"    vae.{walk}(dh_mu + dh_lv, mlp_caches, 'encoder', "
            + ("config" if walk == "mlp_backward" else "config.activation")
            + ", grads)\n    return grads\n")
    graded = grade("encoder", write(tmp_path, "encoder", text))
    assert graded.status == "error" and f"tinyvae.vae.{walk}" in graded.note
    # the decoder's own walk is the model's, not the student's
    assert grade("decoder", CORRECT).status == "passed"


def test_reloading_a_module_to_get_the_answer_back_is_an_error(tmp_path):
    text = ("import importlib\nimport tinyvae.layers\nimportlib.reload(tinyvae.layers)\n"
            "from tinyvae.layers import relu_backward as r\n\n"
            "def relu_backward(dout, cache):\n    return r(dout, cache)\n")
    graded = grade("relu", write(tmp_path, "relu", text))
    assert graded.status == "error" and "changed tinyvae's modules" in graded.note


def test_the_speed_wing_and_the_grader_cannot_be_imported(tmp_path):
    for module in ("tinyvae.speed.step", "tinyvae.lab", "tinyvae.classroom.grader"):
        graded = grade("relu", write(tmp_path, "relu",
                                     f"import {module}\n" + RELU.format(body="return dout")))
        assert graded.status == "error" and "may import numpy and tinyvae's core" in graded.note


def test_patching_the_grader_changes_nothing_for_this_or_the_next_exercise(tmp_path):
    text = ("import tinyvae.gradcheck, sys\n"
            "tinyvae.gradcheck.rel_error = lambda a, b: 0.0\n"
            "for m in list(sys.modules.values()):\n"
            "    if getattr(m, 'rel_error', None) is not None:\n"
            "        m.rel_error = lambda a, b: 0.0\n"
            "import numpy as np\n\ndef kl_standard_normal(mu, log_var):\n"
            "    return 0.5 * np.sum(mu**2 + np.exp(log_var) - 1 - log_var, axis=1), 2 * mu, "
            "np.exp(log_var) - 1\n")
    folder = write(tmp_path / "work", "kl", text)
    shutil.copy(ROOT / "tests" / "exercise_solutions" / "wrong" / "tanh-of-cache.py",
                folder / "tanh.py")
    code, out, _ = run("check", "kl", "tanh", "--dir", str(folder),
                       "--json", str(tmp_path / "r.json"))
    assert code == 1
    assert verdicts(results(tmp_path / "r.json")) == {"kl": "failed", "tanh": "failed"}


def test_grading_leaves_the_graders_own_modules_as_they_were(tmp_path):
    before = [dict(vars(m)) for m in (layers, losses, vae)]
    text = ("import tinyvae.layers as L\nL.relu_backward = None\nL.ACTIVATIONS.clear()\n"
            + RELU.format(body="return dout * (cache > 0)"))
    # the model has no activations left
    assert grade("relu", write(tmp_path, "relu", text)).status == "error"
    assert [dict(vars(m)) for m in (layers, losses, vae)] == before and "relu" in layers.ACTIVATIONS


@pytest.mark.parametrize("name", list(EXERCISES))
def test_every_exercise_guards_an_answer_the_core_has(name):
    specs = guards.ANSWERS[name]
    assert all(":" in spec and spec.startswith("tinyvae.") for spec in specs)
    if specs:  # the first name of each is the core's function the student rewrites; it must exist
        module, _, attr = specs[0].partition(":")
        assert hasattr(sys.modules.get(module) or __import__(module, fromlist=[attr]), attr)
