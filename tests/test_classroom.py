"""docs/05-classroom.md, checked: its outputs are what the commands print, and its claims hold.

* every `python -m tinyvae gradcheck ...` output pasted in the page is (a trimmed copy of) what the
  command prints now, and every `python - <<'EOF'` snippet prints the output shown under it;
* the numerical claims: central differences gain 100x per decade of h and forward ones 10x,
  rounding takes over below h = 1e-5, float32 cannot take the step, rel_error against the
  largest entry passes what an entry-by-entry error fails, ReLU's kink gives ½ + x/2h;
* each `--break` fails exactly the rows the page says (and the exercise 2 answers);
* the answer key of the exercises that change the code, run on an edited copy of tinyvae/.

The command line runs in a subprocess, as `python -m tinyvae gradcheck ARGS` does (through runpy),
all runs in one process so that the file stays fast; the exercises' edits run on copies of tinyvae/.
"""

import contextlib
import io
import json
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from tinyvae.config import VAEConfig, init_params, param_shapes
from tinyvae.gradcheck import numerical_gradient, random_problem, rel_error
from tinyvae.layers import relu_backward, relu_forward, sigmoid, softplus
from tinyvae.vae import encode, loss_and_grads

ROOT = Path(__file__).resolve().parent.parent
PAGE = ROOT / "docs" / "05-classroom.md"
ROW = re.compile(r"^(full|recon|kl)\s+(\S+)\s+\([\d, ]*\)\s+(\S+)\s+(\S+)\s+(\S+)\s+(PASS|FAIL)$")
NOTE = re.compile(r"analytic (\S+), numerical (\S+),")

# The model of `python -m tinyvae gradcheck` with its defaults.
DEFAULT = VAEConfig(input_dim=5, hidden_dims=(4, 3), latent_dim=2, gaussian_std=0.5)


# ---- the code edits of the exercises, applied to a copy of tinyvae/ ----

# The exercises that change code are files of the student's own now (tinyvae/classroom/, graded
# by `python -m tinyvae exercise check`); tests/test_exercises.py is their answer key. No edited
# copies.
EDITS: dict = {}

# (copy or None, arguments) for every command-line run the tests below read.
RUNS = [
    (None, ()), (None, ("--break", "relu")), (None, ("--break", "kl")), (None, ("--break", "tanh")),
    (None, ("--break", "dense")), (None, ("--break", "dense", "--batch-size", "5")),
    (None, ("--break", "bernoulli")), (None, ("--break", "gaussian-logvar")),
    (None, ("--break", "relu", "--hidden", "7")),
    (None, ("--h", "1e-2")), (None, ("--h", "1e-9")),
    (None, ("--break", "kl", "--h", "1e-3")), (None, ("--break", "kl", "--h", "1e-7")),
    (None, ("--seed", "6961")), (None, ("--seed", "6961", "--h", "1e-6")),
    (None, ("--seed", "6961", "--h", "1e-7")),
    (None, ("--seed", "6961", "--h", "1e-8")),
]
_results: dict = {}


def make_copy(name: str, base: Path) -> Path:
    """A copy of tinyvae/ with the exercise's edits; a quoted line that is gone fails loudly."""
    target = base / name
    shutil.copytree(ROOT / "tinyvae", target / "tinyvae",
                    ignore=shutil.ignore_patterns("__pycache__"))
    for filename, edits in EDITS[name].items():
        path = target / "tinyvae" / filename
        text = path.read_text(encoding="utf-8")
        for old, new in edits:
            assert text.count(old) == 1, (f"exercise edit {name!r}: tinyvae/{filename} no longer "
                                          f"has the line {old.strip()!r}; update "
                                          "docs/05-classroom.md and this test")
            text = text.replace(old, new)
        path.write_text(text, encoding="utf-8")
    return target


# Runs the command line exactly as `python -m tinyvae gradcheck ARGS` does (runpy), all the runs in
# one fresh process: a new interpreter per run would cost more than the checks. Each edited copy is
# imported afresh (its own tinyvae package first on sys.path, the previous one forgotten).
DRIVER = """
import contextlib, importlib, io, json, runpy, sys, traceback
results = []
for tree, argv in json.load(sys.stdin):
    for name in [m for m in sys.modules if m == "tinyvae" or m.startswith("tinyvae.")]:
        del sys.modules[name]
    sys.path.insert(0, tree)
    out, err, code = io.StringIO(), io.StringIO(), 0
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        sys.argv = ["tinyvae", "gradcheck", *argv]
        try:
            assert importlib.import_module("tinyvae").__file__.startswith(tree + "/"), (
                "imported the wrong tinyvae")
            runpy.run_module("tinyvae", run_name="__main__", alter_sys=True)
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else int(exc.code is not None)
        except Exception:
            traceback.print_exc()
            code = 1
    sys.path.remove(tree)
    results.append({"stdout": out.getvalue(), "stderr": err.getvalue(), "returncode": code})
sys.__stdout__.write(json.dumps(results))
"""


@pytest.fixture(scope="module", autouse=True)
def all_runs(tmp_path_factory):
    base = tmp_path_factory.mktemp("classroom")
    trees = {None: ROOT, **{name: make_copy(name, base) for name in EDITS}}
    jobs = [[str(trees[copy]), list(args)] for copy, args in RUNS]
    done = subprocess.run([sys.executable, "-c", DRIVER], input=json.dumps(jobs), cwd=base,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    for (copy, args), result in zip(RUNS, json.loads(done.stdout)):
        _results[copy, tuple(args)] = SimpleNamespace(**result)
    yield
    _results.clear()


def cli(*args, copy=None):
    """The result (stdout, stderr, returncode) of `python -m tinyvae gradcheck ARGS` on a tree."""
    key = (copy, tuple(args))
    assert key in _results, f"add {key} to RUNS"
    return _results[key]


def rows(result) -> dict:
    """(term, parameter) -> (|analytic|, |numerical|, rel. error, passed), parsed from the table."""
    table = {}
    for line in result.stdout.splitlines():
        m = ROW.match(line)
        if m:
            term, name, analytic, numerical, err, verdict = m.groups()
            table[term, name] = (float(analytic), float(numerical), float(err), verdict == "PASS")
    assert table, result.stdout + result.stderr
    return table


def failing(result) -> set:
    return {key for key, (*_, passed) in rows(result).items() if not passed}


def keys(config=DEFAULT) -> list:
    return list(param_shapes(config))


def every(terms, names) -> set:
    return {(t, n) for t in terms for n in names}


ENC_HIDDEN = ["encoder.W0", "encoder.b0", "encoder.W1", "encoder.b1"]
HEADS_LOGVAR = ["encoder.W_logvar", "encoder.b_logvar"]
HEADS_MU = ["encoder.W_mu", "encoder.b_mu"]


# ---- 1. the page's pasted outputs are what the commands print now ----

NUMBER = re.compile(r"(-?\d+(?:\.\d+)?(?:e[-+]\d+)?)")


def close(expected: str, actual: str) -> bool:
    """Numbers agree: integers exactly, values at rounding level (< 1e-8) always, small values
    within a factor 3 (they are rounding-sensitive across machines), the rest to 1 %."""
    if not re.search(r"[.e]", expected + actual):
        return expected == actual
    a, b = float(expected), float(actual)
    m = max(abs(a), abs(b))
    if m < 1e-8:
        return True
    if m < 1e-3:
        return a * b > 0 and m <= 3 * min(abs(a), abs(b))
    return abs(a - b) <= 1e-2 * m


def same_line(expected: str, actual: str) -> bool:
    timing = re.compile(r"\(\d+\.\d s\)")
    e = NUMBER.split(" ".join(timing.sub("", expected).split()))
    a = NUMBER.split(" ".join(timing.sub("", actual).split()))
    if len(e) != len(a):
        return False
    return all((x == y) if i % 2 == 0 else close(x, y) for i, (x, y) in enumerate(zip(e, a)))


def assert_shows(block: str, output: str, what: str):
    """Every line of the page's block (except "[...]" cuts) appears in the output, in order."""
    lines = output.splitlines()
    cursor = 0
    for want in block.splitlines():
        if not want.strip() or want.lstrip().startswith("["):
            continue
        for i in range(cursor, len(lines)):
            if same_line(want, lines[i]):
                cursor = i + 1
                break
        else:
            raise AssertionError(f"{what}: the page shows\n  {want}\n"
                                 f"but the output (from line {cursor + 1}) is\n"
                                 + "\n".join(lines[cursor:]))


def fenced_blocks():
    return re.findall(r"^```(\w*)\n(.*?)^```", PAGE.read_text(encoding="utf-8"), flags=re.S | re.M)


def cli_blocks():
    found = []
    for lang, body in fenced_blocks():
        first, _, rest = body.partition("\n")
        if lang == "text" and first.startswith("$ python -m tinyvae gradcheck"):
            found.append(pytest.param(tuple(shlex.split(first[2:])[4:]), rest, id=first[2:]))
    return found


def snippet_blocks():
    blocks, found = fenced_blocks(), []
    for (lang, body), (next_lang, expected) in zip(blocks, blocks[1:]):
        if lang == "bash" and body.startswith("python - <<'EOF'\n"):
            code = body.split("\n", 1)[1].rsplit("EOF", 1)[0]
            assert next_lang == "text", "a snippet's output block follows it"
            found.append(pytest.param(code, expected, id=f"snippet{len(found) + 1}"))
    return found


@pytest.mark.slow
def test_the_page_shows_commands_and_snippets():
    assert len(cli_blocks()) >= 6 and len(snippet_blocks()) == 4


@pytest.mark.parametrize("args, block", cli_blocks())
def test_every_gradcheck_output_on_the_page_is_what_the_command_prints(args, block):
    result = cli(*args)
    assert_shows(block, result.stdout, "python -m tinyvae gradcheck " + " ".join(args))


def run_snippet(code: str) -> str:
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(compile(code, "<docs/05-classroom.md snippet>", "exec"), {"__name__": "__main__"})
    return out.getvalue()


@pytest.mark.parametrize("code, expected", snippet_blocks())
def test_every_snippet_on_the_page_prints_the_output_shown_under_it(code, expected):
    assert_shows(expected, run_snippet(code), "snippet")


# ---- 2. central differences, the choice of h, float64 ----

def _default_problem():
    params, x, eps = random_problem(DEFAULT, 2, np.random.default_rng(0))
    loss, grads, _ = loss_and_grads(params, x, eps, DEFAULT)
    return params, grads, lambda: loss_and_grads(params, x, eps, DEFAULT)[0], loss


def _forward_difference(f, x, h):
    grad, f0 = np.zeros_like(x), f()
    for i in np.ndindex(x.shape):
        old = x[i]
        x[i] = old + h
        grad[i] = (f() - f0) / h
        x[i] = old
    return grad


@pytest.fixture(scope="module")
def h_table():
    params, grads, f, _ = _default_problem()
    W, exact = params["encoder.W_logvar"], grads["encoder.W_logvar"]
    hs = [10.0 ** -k for k in range(1, 11)]
    return {h: (rel_error(exact, _forward_difference(f, W, h)),
                rel_error(exact, numerical_gradient(f, W, h)))
            for h in hs}


def test_central_differences_gain_100x_per_decade_of_h_and_forward_differences_10x(h_table):
    for k in (1, 2, 3):  # h from 1e-1 to 1e-4: the truncation regime
        fwd_big, ctr_big = h_table[10.0 ** -k]
        fwd_small, ctr_small = h_table[10.0 ** -(k + 1)]
        assert 80 < ctr_big / ctr_small < 120
        assert 8 < fwd_big / fwd_small < 12


def test_at_the_default_h_a_forward_difference_fails_a_correct_gradient_and_a_central_one_passes(
        h_table):
    fwd, ctr = h_table[1e-5]
    assert fwd > 1e-6 and ctr < 1e-10
    # the forward difference's best is still too close
    assert min(f for f, _ in h_table.values()) > 1e-8


def test_below_the_default_h_rounding_takes_over(h_table):
    central = {h: c for h, (_, c) in h_table.items()}
    assert min(central, key=central.get) == 1e-5
    assert central[1e-7] > 10 * central[1e-5]
    # a correct gradient fails on rounding alone
    assert central[1e-9] > 1e-7 and central[1e-10] > 1e-7


def test_a_large_h_fails_on_truncation_except_where_the_loss_is_quadratic():
    table = rows(cli("--h", "1e-2"))
    passed = {key for key, (*_, ok) in table.items() if ok}
    assert len(table) - len(passed) == 34
    assert passed == every(["kl"], keys()[8:]) | every(["kl"], HEADS_MU)
    assert table["kl", "encoder.W_mu"][2] < 1e-13  # central differences are exact on a quadratic
    errors = [err for (*_, err, ok) in table.values() if not ok]
    assert 4e-7 < min(errors) and max(errors) < 2e-5
    assert len(failing(cli("--h", "1e-9"))) == 25


def test_a_real_bug_fails_at_every_h_with_the_same_error():
    errors = [rows(cli("--break", "kl", *h))["full", "encoder.W0"][2]
              for h in ((), ("--h", "1e-3"), ("--h", "1e-7"))]
    assert errors[0] == pytest.approx(7.26e-2, rel=1e-2)
    assert max(errors) - min(errors) < 1e-6


def test_float32_cannot_take_a_step_of_1e_5():
    h = np.float32(1e-5)
    step_at_1 = float((np.float32(1.0) + h) - np.float32(1.0))
    assert 1.0013e-5 < step_at_1 < 1.0014e-5  # 0.14 % more than the h the formula divides by
    assert float((np.float32(100.0) + h) - np.float32(100.0)) == pytest.approx(7.629395e-6,
                                                                               rel=1e-6)
    assert (np.float32(300.0) + h) - np.float32(300.0) == 0  # no step at all
    assert (1.0 + 1e-5) - 1.0 == pytest.approx(1e-5, rel=1e-10)  # float64 takes it


def test_in_float32_a_central_difference_is_wrong_in_the_third_digit():
    h, exact = 1e-5, float(sigmoid(np.array(1.0)))
    slopes = {}
    for dtype in (np.float32, np.float64):
        x = np.array([1.0], dtype=dtype)
        slopes[dtype] = float(((softplus(x + dtype(h)) - softplus(x - dtype(h))) / dtype(2 * h))[0])
    assert abs(slopes[np.float32] - exact) / exact > 1e-3
    assert abs(slopes[np.float64] - exact) / exact < 1e-9

    params, grads, _, _ = _default_problem()
    p32 = {key: value.astype(np.float32) for key, value in params.items()}
    _, x, eps = random_problem(DEFAULT, 2, np.random.default_rng(0))
    W = p32["encoder.W_logvar"]
    numerical = np.zeros(W.shape)
    for i in np.ndindex(W.shape):
        old = W[i]
        W[i] = old + np.float32(h)
        f_plus = loss_and_grads(p32, x, eps, DEFAULT)[0]
        W[i] = old - np.float32(h)
        f_minus = loss_and_grads(p32, x, eps, DEFAULT)[0]
        W[i] = old
        numerical[i] = (f_plus - f_minus) / (2 * h)
    assert rel_error(grads["encoder.W_logvar"], numerical) > 1e-3  # 10,000 times the threshold


# ---- 3. the relative error ----

def test_an_entry_by_entry_error_fails_a_correct_gradient_that_rel_error_passes():
    config = VAEConfig(input_dim=13, hidden_dims=(16, 16), latent_dim=3)
    rng = np.random.default_rng(1)
    params = init_params(config, rng)
    x = (rng.random((5, 13)) < 0.5).astype(float)
    eps = rng.standard_normal((5, 3))
    loss, grads, _ = loss_and_grads(params, x, eps, config)
    a = grads["encoder.W_logvar"]
    n = numerical_gradient(lambda: loss_and_grads(params, x, eps, config)[0],
                           params["encoder.W_logvar"])
    per_entry = np.abs(a - n) / np.maximum(1e-8, np.abs(a) + np.abs(n))
    worst = np.unravel_index(np.argmax(per_entry), a.shape)
    rounding_floor = np.finfo(float).eps * loss / 1e-5  # ε|L|/h, eq. (3)'s rounding term
    assert abs(a[worst] - n[worst]) < rounding_floor  # rounding, not a bug ...
    assert per_entry.max() > 1e-5  # ... that fails entry by entry
    assert rel_error(a, n) < 1e-7  # and passes against the largest entry


# ---- 4. ReLU's kink ----

def test_a_central_difference_across_relus_kink_measures_one_half_plus_x_over_2h():
    h = 1e-5
    for x0, slope in [(3e-6, 0.65), (0.0, 0.5), (-3e-6, 0.35), (2e-5, 1.0), (-2e-5, 0.0)]:
        x = np.array([x0])
        numerical = numerical_gradient(lambda x=x: relu_forward(x)[0].sum(), x, h)[0]
        assert numerical == pytest.approx(slope, abs=1e-9)
        if abs(x0) < h:
            assert numerical == pytest.approx(0.5 + x0 / (2 * h), abs=1e-9)
            assert relu_backward(np.ones(1), relu_forward(x)[1])[0] in (0.0, 1.0)  # neither is ½


KINK_ROWS = every(("full", "recon"), HEADS_MU + HEADS_LOGVAR + ["decoder.W0", "decoder.b0"])


def test_seed_6961_puts_a_decoder_unit_within_h_of_the_kink_and_fails_exactly_its_upstream_rows():
    result = cli("--seed", "6961")
    assert "smallest |pre-activation| = 7.23e-07 (WARNING" in result.stdout
    assert failing(result) == KINK_ROWS

    # The rows are exactly the parameters with an entry whose ±h step carries the pre-activation
    # a = z W0 + b0 of decoder unit 0, example 0, across 0.
    params, x, eps = random_problem(DEFAULT, 2, np.random.default_rng(6961))

    def pre_activation():
        mu, log_var = encode(params, x, DEFAULT)
        z = mu + np.exp(0.5 * log_var) * eps
        return (z @ params["decoder.W0"] + params["decoder.b0"])[0, 0]

    a0 = pre_activation()
    assert a0 == pytest.approx(-7.23e-7, rel=1e-3)
    crossing = set()
    for key, value in params.items():
        for i in np.ndindex(value.shape):
            old = value[i]
            value[i] = old + 1e-5
            plus = pre_activation()
            value[i] = old - 1e-5
            minus = pre_activation()
            value[i] = old
            if np.sign(plus) != np.sign(minus):
                crossing.add(key)
    assert every(("full", "recon"), crossing) == KINK_ROWS


def test_a_smaller_step_moves_the_kinks_error_by_the_factor_one_half_plus_a_over_2h():
    a = -7.225788e-7
    diffs = []
    for result in (cli("--seed", "6961"), cli("--seed", "6961", "--h", "1e-6")):
        # the line under the row
        note = result.stdout.split("full   decoder.b0", 1)[1].splitlines()[1]
        analytic, numerical = map(float, NOTE.search(note).groups())
        diffs.append(numerical - analytic)
    factor = (0.5 + a / 2e-5) / (0.5 + a / 2e-6)
    assert factor == pytest.approx(3.34, abs=0.01)
    assert diffs[0] / diffs[1] == pytest.approx(factor, rel=1e-3)
    assert failing(cli("--seed", "6961", "--h", "1e-6")) == every(("full", "recon"), ["decoder.b0"])
    assert cli("--seed", "6961", "--h", "1e-7").returncode == 0
    assert len(failing(cli("--seed", "6961", "--h", "1e-8"))) == 6  # and with a smaller h, rounding


# ---- 5. each --break fails exactly the rows the page says ----

def relu_parity_rows(hidden_dims) -> set:
    """The rows --break relu fails: those whose path to a term crosses an odd number of ReLU
    layers."""
    k = len(hidden_dims)
    config = VAEConfig(input_dim=5, hidden_dims=hidden_dims, latent_dim=2)
    crossings = {}  # parameter -> (ReLU layers to the recon loss, to the KL or None)
    for name in keys(config):
        part, _, leaf = name.partition(".")
        i = int(leaf[1:]) if leaf[1:].isdigit() else None
        if part == "encoder":
            own = k - i if i is not None else 0  # a hidden layer's own ReLU and those after it
            crossings[name] = (own + k, own)
        else:
            crossings[name] = (k - i if i is not None else 0, None)
    fails = set()
    for name, (recon, kl) in crossings.items():
        odd_recon, odd_kl = recon % 2 == 1, kl is not None and kl % 2 == 1
        if odd_recon or odd_kl:
            fails.add(("full", name))
        if odd_recon:
            fails.add(("recon", name))
        if odd_kl:
            fails.add(("kl", name))
    return fails


def test_break_relu_fails_the_rows_behind_an_odd_number_of_relu_layers():
    expected = every(("full", "recon"), ["encoder.W1", "encoder.b1", "decoder.W1", "decoder.b1"]) \
        | every(["kl"], ["encoder.W1", "encoder.b1"])
    assert relu_parity_rows((4, 3)) == expected  # the table of §2.1
    table = rows(cli("--break", "relu"))
    assert failing(cli("--break", "relu")) == expected
    for key in expected:  # a pure sign flip: equal norms, rel. error exactly 1
        analytic, numerical, err, _ = table[key]
        assert analytic == pytest.approx(numerical, rel=1e-6)
        assert err == pytest.approx(1.0, abs=1e-9)


def test_exercise_2e_break_relu_with_one_hidden_layer():
    assert failing(cli("--break", "relu", "--hidden", "7")) == relu_parity_rows((7,))


def test_break_kl_fails_the_encoder_rows_of_full_and_kl_except_the_mu_head():
    result = cli("--break", "kl")
    wrong = ENC_HIDDEN + HEADS_LOGVAR
    assert failing(result) == every(("full", "kl"), wrong)
    table = rows(result)
    for key in HEADS_LOGVAR:  # the KL's log σ² head gradient is the flipped derivative alone
        analytic, numerical, err, _ = table["kl", key]
        assert analytic == pytest.approx(numerical, rel=1e-6)
        assert err == pytest.approx(1.0, abs=1e-9)
    assert all(0.6 < table["kl", key][2] < 0.9 for key in ENC_HIDDEN)
    assert all(0.05 < table["full", key][2] < 0.2 for key in wrong)


def test_exercise_2a_break_tanh():
    assert failing(cli("--break", "tanh")) == (every(("full", "recon"), keys()[:-2])
                                               | every(["kl"], ENC_HIDDEN))


def test_exercise_2b_break_bernoulli():
    result = cli("--break", "bernoulli")
    assert failing(result) == every(("full", "recon"), keys())
    recon_errors = [row[2] for (term, _), row in rows(result).items() if term == "recon"]
    # exactly minus the truth
    assert all(err == pytest.approx(1.0, abs=1e-9) for err in recon_errors)


@pytest.mark.parametrize("B", [2, 5])
def test_exercise_2c_break_dense_fails_every_bias_row_by_b_minus_1_over_b_plus_1(B):
    result = cli("--break", "dense", *(("--batch-size", "5") if B == 5 else ()))
    biases = [k for k in keys() if ".b" in k]
    expected = (every(("full", "recon"), biases)
                | every(["kl"], [k for k in biases if k.startswith("encoder")]))
    assert failing(result) == expected
    table = rows(result)
    for key in expected:
        analytic, numerical, err, _ = table[key]
        assert err == pytest.approx((B - 1) / (B + 1), abs=2e-3)
        assert numerical / analytic == pytest.approx(B, rel=1e-5)


def test_exercise_2d_break_gaussian_logvar():
    config = VAEConfig(input_dim=5, hidden_dims=(4, 3), latent_dim=2,
                       likelihood="gaussian-learned-variance")
    names = [k for k in keys(config) if k not in ("decoder.W_out", "decoder.b_out")]
    assert failing(cli("--break", "gaussian-logvar")) == every(("full", "recon"), names)


# ---- 6. the rounding floor: the one formula of eq. (3), printed under every FAIL row ----

def test_the_rounding_floor_printed_under_a_fail_row_is_the_rounding_term_of_eq_3():
    from tinyvae.classroom.diagnosis import rounding_floor

    page = PAGE.read_text(encoding="utf-8")
    eq3 = page[page.index("E(h) \\approx"):page.index("\\tag{3}")]
    # ε|L|/h, not ε|L|/2h
    assert "\\frac{\\epsilon\\,\\lvert L\\rvert}{h}}_{\\text{rounding}}" in eq3
    assert "/2h" not in page.replace("ε|loss|/h", "")[page.index("### 2.3"):page.index("## 3.")]
    _, _, f, loss = _default_problem()
    note = next(line for line in cli("--break", "relu").stdout.splitlines()
                if "rounding floor" in line)
    printed = re.search(r"rounding floor ε\|loss\|/h ≈ (\S+) ", note)
    assert printed, note
    assert float(printed.group(1)) == float(f"{rounding_floor(loss, 1e-5):.0e}")
    assert rounding_floor(loss, 1e-5) == pytest.approx(np.finfo(float).eps * loss / 1e-5)
    # and the floor is what a correct gradient's central difference actually scatters within
    params, grads, f, loss = _default_problem()
    worst = np.max(np.abs(numerical_gradient(f, params["decoder.b_out"]) - grads["decoder.b_out"]))
    assert worst < rounding_floor(loss, 1e-5) * 10
