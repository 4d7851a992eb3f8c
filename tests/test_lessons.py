"""The lessons the docs teach with experiments: each claim checked, each pasted number kept true.

examples/reparameterization_vs_score_function.py  -> docs/01-autoencoder-to-vae.md section 4
examples/walkthrough.py                           -> docs/02-variational-inference.md section 5
                                                     (and docs/README.md: run cell by cell)
examples/amortization_gap.py                      -> docs/02-variational-inference.md section 9
examples/decoder_sigma_as_beta.py                 -> docs/01-autoencoder-to-vae.md section 9
examples/results_anchors.py                       -> docs/06-results.md section 1

The fast tests check the properties on small problems, and that the text pasted into the docs
is the text the programs print or the numbers in the committed docs/results/*.json. The slow
ones re-run the documented commands (minutes on 2 cores) and compare with what is committed:

    python -m pytest tests/test_lessons.py --rerun-results
"""

from __future__ import annotations

import importlib.util
import json
import math
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from printed import unmatched

from tinyvae import vae
from tinyvae.config import VAEConfig, init_params

from helpers import has_mnist

ROOT = Path(__file__).resolve().parents[1]
DOCS, RESULTS = ROOT / "docs", ROOT / "docs" / "results"


def load_example(name: str):
    """Import examples/<name>.py as a module (examples/ is not a package)."""
    spec = importlib.util.spec_from_file_location(f"lesson_{name}",
                                                  ROOT / "examples" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def run_example(*args: str, timeout: float = 600) -> str:
    done = subprocess.run([sys.executable, *args], cwd=ROOT, env=dict(os.environ, MPLBACKEND="Agg"),
                          capture_output=True, text=True, timeout=timeout, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


def pasted_block(page: str, command: str) -> list[str]:
    """The lines of the fenced block that follows `<!-- output of: COMMAND -->` in docs/PAGE."""
    text = (DOCS / page).read_text(encoding="utf-8")
    marker = f"<!-- output of: {command} -->"
    assert marker in text, f"docs/{page} has no block marked {marker}"
    block = re.search(r"```[a-z]*\n(.*?)```", text[text.index(marker):], re.S).group(1)
    return [line for line in block.splitlines() if line.strip()]


def assert_pasted(page: str, command: str, output: str) -> None:
    """Every line pasted under the marker is a line the program printed (rows may be left out),
    its numbers to the precision that means something on any CPU (tests/printed.py): the
    last printed digit may round the other way; a computation's own noise is not pinned."""
    missing = unmatched(pasted_block(page, command), output.splitlines())
    assert not missing, f"docs/{page} quotes lines that `{command}` no longer prints: {missing}"


def committed(name: str) -> dict:
    return json.loads((RESULTS / name).read_text(encoding="utf-8"))


def assert_quoted(page: str, *numbers: str) -> None:
    text = (DOCS / page).read_text(encoding="utf-8")
    missing = [n for n in numbers if n not in text]
    assert not missing, f"docs/{page} does not quote {missing} (from docs/results/)"


# ---- the reparameterization trick: two estimators of one gradient ----

GRADIENTS = "examples/reparameterization_vs_score_function.py"


@pytest.fixture(scope="module")
def estimators():
    return load_example("reparameterization_vs_score_function")


def test_both_estimators_are_unbiased_and_the_score_function_is_far_noisier(estimators):
    rows = estimators.run(seed=1, repeats=400)
    by = {(r["Z"], r["S"], r["estimator"]): r for r in rows}
    assert max(r["max_bias_in_se"] for r in rows) < 5  # unbiased: every mean within 5 s.e. of a − μ
    for S in estimators.SAMPLES:
        assert (by[(20, S, "score function")]["variance"]
                > 1000 * by[(20, S, "reparameterization")]["variance"])
        assert (by[(1, S, "score function")]["variance"]
                > 10 * by[(1, S, "reparameterization")]["variance"])
    for name in ("score function", "reparameterization"):  # variance falls as 1/S
        ratio = by[(20, 1, name)]["variance"] / by[(20, 100, name)]["variance"]
        assert 60 < ratio < 160, (name, ratio)


def test_the_variances_match_their_closed_forms_in_one_dimension(estimators):
    rng = np.random.default_rng(3)
    g = estimators.estimates(rng, Z=1, S=10, R=40_000)
    closed = estimators.closed_form_variances(10)
    for name in ("score function", "reparameterization"):
        assert g[name].var() == pytest.approx(closed[name], rel=0.1), name


def test_a_baseline_lowers_the_score_functions_variance_without_bias(estimators):
    g = estimators.estimates(np.random.default_rng(4), Z=20, S=10, R=2000)
    assert (g["score function, baseline"].var(axis=0).mean()
            < 0.1 * g["score function"].var(axis=0).mean())
    se = g["score function, baseline"].std(axis=0) / math.sqrt(2000)
    assert np.all(np.abs(g["score function, baseline"].mean(axis=0)
                         - (estimators.A - estimators.MU)) < 5 * se)


@pytest.mark.slow
def test_docs_paste_what_the_gradient_estimator_example_prints():
    assert_pasted("01-autoencoder-to-vae.md", f"python {GRADIENTS}", run_example(GRADIENTS))


def test_the_chance_of_a_large_bias_in_standard_errors_is_what_the_example_says(estimators):
    # docs/01 section 4 puts the Z = 20 rows' |bias|/se in context with the example's last
    # lines: the largest |N(0, 1)| of 20 has median 2.12, and 3.37 comes in 1.5 % of rows.
    rows = [{"Z": 20, "S": 1, "estimator": "reparameterization", "variance": 0.25,
             "max_bias_in_se": 3.37}]
    lines = estimators.chance_lines(rows)
    assert "median 2.12" in lines[0] and "comes by chance in 1.5% of rows" in lines[1]
    largest = np.abs(np.random.default_rng(5).standard_normal((400_000, 20))).max(axis=1)
    assert np.median(largest) == pytest.approx(2.12, abs=0.01)
    assert np.mean(largest >= 3.37) == pytest.approx(0.015, abs=0.001)
    # For the reparameterization the estimate is exactly a − μ − σ ε̄: its error in standard errors
    # is a standard normal (up to the estimated se), which is what the context assumes.
    g = estimators.estimates(np.random.default_rng(6), Z=20, S=1, R=2000)["reparameterization"]
    assert g.std(axis=0, ddof=1).mean() == pytest.approx(estimators.SIGMA, rel=0.05)


# ---- the walkthrough ----


WALKTHROUGH = "examples/walkthrough.py"
# The Monte Carlo lines of the walkthrough that docs/02 section 5 quotes: a value and its
# standard error.
ESTIMATE = re.compile(r"^(\(a\)|\(b\)|\(c\)|L_2000)\D*?(-?[0-9]+\.[0-9]+) ± ([0-9]+\.[0-9]+)",
                      re.MULTILINE)


@pytest.fixture(scope="module")
def walkthrough() -> str:
    if not has_mnist():
        pytest.skip("the MNIST files were not found (see the note at the end of the test run)")
    return run_example(WALKTHROUGH)


def estimates(text: str) -> dict[str, tuple[float, float]]:
    return {name: (float(value), float(se)) for name, value, se in ESTIMATE.findall(text)}


def test_the_walkthrough_runs_and_its_numbers_agree_with_the_library(walkthrough):
    out = walkthrough
    assert "step by step == loss_and_grads: True" in out  # with the 1/B of the batch mean
    rel = float(re.search(r"relative error ([0-9.e+-]+)", out).group(1))
    assert rel < 1e-6
    e = estimates(out)
    (a, a_se), (b, _), (c, c_se) = e["(a)"], e["(b)"], e["(c)"]
    assert abs(a - b) <= 0.001  # the same samples, two ways of writing the same expectation
    assert abs(a - c) < 4 * math.hypot(a_se, c_se)  # one expectation, estimated two ways
    assert e["L_2000"][0] > e["(c)"][0]  # the tighter bound
    gap_line = re.search(r"([\d.]+) ± ([\d.]+) nats above the ELBO \(c\)", out)
    gap, gap_se = map(float, gap_line.groups())
    assert gap == pytest.approx(e["L_2000"][0] - c, abs=0.006)
    assert gap_se == pytest.approx(math.hypot(e["L_2000"][1], c_se), abs=0.006)
    assert "x: (4, 784)" in out and "z:   (4, 20)" in out  # a batch of B = 4


def test_the_walkthrough_trains_with_the_cores_step_on_minibatches():
    text = (ROOT / WALKTHROUGH).read_text(encoding="utf-8")
    assert "train_step(params, optimizer, x_batch, eps, config)" in text  # Algorithm 1, visible
    assert "speed" not in text and "make_step" not in text  # not the fast path
    assert "dlogits / B" in text  # the batch mean's 1/B, written out


def test_the_walkthrough_generates_from_the_prior_means_and_draws(walkthrough):
    line = re.search(r"ink expected per image: \[([0-9. ]+)\] ; ink drawn: \[([0-9. ]+)\]",
                     walkthrough)
    expected, drawn = (np.array(group.split(), dtype=float) for group in line.groups())
    # Each draw's ink is a sum of independent coins with those means: within 5 of its spread.
    assert np.all(np.abs(drawn - expected) < 5 * np.sqrt(expected) + 1)


def test_docs_quote_the_walkthroughs_estimates_to_their_standard_errors(walkthrough):
    block = pasted_block("02-variational-inference.md", f"python {WALKTHROUGH}")
    quoted = estimates("\n".join(block))
    printed = estimates(walkthrough)
    assert set(quoted) == {"(a)", "(b)", "(c)", "L_2000"} and set(printed) >= set(quoted)
    for name, (value, se) in quoted.items():
        # Training in float64 through BLAS may round differently on another machine; the quoted
        # numbers hold to well within their Monte Carlo standard errors.
        assert abs(printed[name][0] - value) < max(se, printed[name][1]), (name, value)
        assert printed[name][1] == pytest.approx(se, rel=0.2), name
    text = " ".join((DOCS / "02-variational-inference.md").read_text(encoding="utf-8").split())
    (a, a_se), (c, c_se) = quoted["(a)"], quoted["(c)"]
    assert f"lies ${abs(a - c):.2f}$ nats away, less than one standard error" in text
    assert abs(a - c) < max(a_se, c_se) and c_se < a_se  # "its standard error is the smaller"


def test_the_walkthrough_is_a_percent_format_notebook():
    text = (ROOT / "examples" / "walkthrough.py").read_text(encoding="utf-8")
    assert text.count("# %%\n") >= 8  # code cells
    assert text.count("# %% [markdown]\n") >= 8  # text cells


# ---- the decoder's σ is β ----


def test_a_fixed_sigma_gaussian_decoder_is_a_beta_vae_with_beta_sigma_squared():
    # loss(σ, β = 1) = [loss(σ = 1, β = σ²) − D/2 log 2π] / σ² + D/2 log(2πσ²): the gradients
    # differ by exactly the factor 1/σ².
    rng = np.random.default_rng(0)
    x = rng.uniform(size=(5, 12))
    eps = rng.standard_normal((5, 3))
    for sigma in (0.1, 0.3, 2.0):
        noisy = VAEConfig(input_dim=12, hidden_dims=(7,), latent_dim=3, likelihood="gaussian",
                          gaussian_std=sigma)
        params = init_params(noisy, np.random.default_rng(1))
        loss_s, grads_s, _ = vae.loss_and_grads(params, x, eps, noisy)
        unit = VAEConfig(input_dim=12, hidden_dims=(7,), latent_dim=3, likelihood="gaussian",
                         gaussian_std=1.0, beta=sigma ** 2)
        loss_b, grads_b, _ = vae.loss_and_grads(params, x, eps, unit)
        # D/2 = 6
        const = 6 * math.log(2 * math.pi * sigma ** 2) - 6 * math.log(2 * math.pi) / sigma ** 2
        assert loss_s == pytest.approx(loss_b / sigma ** 2 + const, rel=1e-12)
        for key in params:
            np.testing.assert_allclose(grads_s[key], grads_b[key] / sigma ** 2, rtol=1e-10,
                                       atol=1e-12)


def test_docs_quote_the_sigma_sweep_that_is_committed():
    res = committed("sigma_as_beta.json")
    sweep = sorted((r for r in res["runs"] if r["beta"] == 1.0), key=lambda r: r["sigma"])
    # docs/01 and the example's docstring: all 20 active up to σ = 1, then 1 at σ = 2, 0 at σ = 4.
    assert [(r["sigma"], r["active_units"]) for r in sweep] == \
        [(0.05, 20), (0.1, 20), (0.2, 20), (0.4, 20), (1.0, 20), (2.0, 1), (4.0, 0)]
    assert sweep[0]["kl"] > sweep[-1]["kl"]
    # "(at σ_x = 1 thinly: no unit carries more than 0.4 nats, ...)": the largest per-unit KL
    text = (ROOT / "docs" / "01-autoencoder-to-vae.md").read_text(encoding="utf-8")
    ceiling = float(re.search(r"no unit carries\s+more than ([\d.]+) nats", text)[1])
    at_one = next(r for r in sweep if r["sigma"] == 1.0)
    assert len(at_one["kl_per_dim"]) == 20
    assert ceiling - 0.05 < max(at_one["kl_per_dim"]) <= ceiling
    # σ = 1, β = s²: on the σ = s run's point
    for run in (r for r in res["runs"] if r["beta"] != 1.0):
        twin = next(r for r in sweep if r["sigma"] ** 2 == pytest.approx(run["beta"]))
        assert run["active_units"] == twin["active_units"]
        assert run["kl"] == pytest.approx(twin["kl"], rel=0.05)
    assert_pasted("01-autoencoder-to-vae.md", "python examples/decoder_sigma_as_beta.py",
                  load_example("decoder_sigma_as_beta").report(res))


# ---- the two gaps ----


@pytest.fixture(scope="module")
def gaps():
    return load_example("amortization_gap")


def tiny_model():
    config = VAEConfig(input_dim=16, hidden_dims=(9,), latent_dim=3)
    params = init_params(config, np.random.default_rng(5))
    x = (np.random.default_rng(6).uniform(size=(4, 16)) > 0.5).astype(np.float64)
    return config, params, x


def test_the_per_image_gradient_of_the_elbo_matches_finite_differences(gaps):
    config, params, x = tiny_model()
    rng = np.random.default_rng(7)
    mu, log_var = rng.normal(size=(4, 3)), rng.normal(scale=0.3, size=(4, 3))
    eps = rng.standard_normal((5, 4, 3))
    dmu, dlog_var = gaps.negative_elbo_grads(params, config, x, mu, log_var, eps)
    h = 1e-6
    for arr, grad in ((mu, dmu), (log_var, dlog_var)):
        for index in [(0, 0), (2, 1), (3, 2)]:
            old = arr[index]
            arr[index] = old + h
            plus = -gaps.elbo_of(params, config, x, mu, log_var, eps).sum()
            arr[index] = old - h
            minus = -gaps.elbo_of(params, config, x, mu, log_var, eps).sum()
            arr[index] = old
            assert (plus - minus) / (2 * h) == pytest.approx(grad[index], rel=1e-6, abs=1e-9)


def test_optimizing_q_per_image_raises_each_elbo_above_the_encoders(gaps):
    config, params, x = tiny_model()
    mu, log_var = vae.encode(params, x, config)
    rng = np.random.default_rng(8)
    mu_o, log_var_o, trace = gaps.optimize_q(params, config, x, mu, log_var, rng, steps=300,
                                             samples=16, lr=0.05)
    eps = rng.standard_normal((4000, 4, 3))
    before = gaps.elbo_of(params, config, x, mu, log_var, eps)
    after = gaps.elbo_of(params, config, x, mu_o, log_var_o, eps)
    assert np.all(after > before)
    log_px = np.maximum(gaps.iw_bound(params, config, x, mu, log_var, rng, 4000),
                        gaps.iw_bound(params, config, x, mu_o, log_var_o, rng, 4000))
    assert np.all(log_px > after)  # and log p(x) lies above even the best Gaussian's ELBO


def test_docs_quote_the_committed_gaps():
    res = committed("amortization_gap.json")
    m = res["mean"]
    assert m["total_gap"] == pytest.approx(m["amortization_gap"] + m["approximation_gap"])
    assert m["amortization_gap"] > 0 and m["approximation_gap"] > 0
    assert_pasted("02-variational-inference.md", "python examples/amortization_gap.py",
                  load_example("amortization_gap").report(res))


# ---- the results page: the default run ----


def test_docs_06_quote_the_committed_default_run():
    from tinyvae.lab.training import run_settings

    history, metrics = committed("mnist/history.json"), committed("mnist/metrics.json")
    assert metrics["settings"]["seed"] == 0 and metrics["epochs"] == 10 == len(history)
    rows = [f"| {h['epoch']} | {h['train_loss']:.2f} | {h['test_loss']:.2f} | "
            f"{h['test_recon']:.2f} | {h['test_kl']:.2f} |" for h in history]
    assert_quoted("06-results.md", *rows)
    results = {"elbo": metrics["test_elbo"], "loss": metrics["test_loss"],
               "recon": metrics["test_recon"], "kl": metrics["test_kl"],
               "iw_bound": metrics["iw_bound"], "iw_samples": metrics["iw_samples"],
               "active_units": metrics["active_units"]}
    printed = run_settings.report_lines(results, VAEConfig.from_dict(metrics["config"]),
                                        metrics["settings"])
    assert_pasted("06-results.md", "python examples/mnist.py", "\n".join(printed))
    gap = metrics["iw_bound"] - metrics["test_elbo"]
    assert_quoted("06-results.md", f"It lies {gap:.1f} nats above", f"is at least {gap:.1f} nats")
    assert_quoted("02-variational-inference.md", f"lies {gap:.1f} nats above the test ELBO")
    variances = metrics["active_unit_variance"]
    assert_quoted("06-results.md", f"between {min(variances):.2f} and {max(variances):.2f}")


def test_docs_06_and_the_readme_quote_the_committed_runs_at_pytorchs_settings():
    # docs/06 section 2: examples/mnist.py at PyTorch's example settings for seeds 0, 1, 2; their
    # metrics.json files are committed as the runs wrote them.
    losses = []
    for seed in (0, 1, 2):
        metrics = committed(f"pytorch-settings/seed{seed}/metrics.json")
        s = metrics["settings"]
        assert (s["seed"], s["binarize"], s["hidden"], s["latent_dim"], s["batch_size"], s["lr"],
                s["epochs"]) == (seed, "none", [400], 20, 128, 0.001, 10)
        assert metrics["epochs"] == 10
        losses.append(f"{metrics['test_loss']:.2f}")
    assert_quoted("06-results.md", *(f"| {seed} | {loss} |" for seed, loss in enumerate(losses)))
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    quoted = f"{losses[0]}, {losses[1]} and {losses[2]} nats for seeds 0, 1 and 2"
    assert quoted in " ".join(readme.split()), f"README.md does not quote {quoted!r}"


def test_docs_06_quote_the_committed_float64_check():
    # docs/06 section 3 pastes the benchmark's float64 line; docs/results/float64_check.json keeps
    # the command and the line it printed.
    res = committed("float64_check.json")
    assert res["command"].split("python ", 1)[1].startswith("-m tinyvae bench --float64-check")
    line = re.fullmatch(r"float64 check \(10 epochs, seed 0, \d+ s\): test ELBO float32 (-[\d.]+), "
                        r"float64 (-[\d.]+), difference ([\d.]+) nat", res["output"])
    assert line, res["output"]
    f32, f64, gap = (float(v) for v in line.groups())
    assert abs(abs(f32 - f64) - gap) <= 0.0015  # the printed difference is the two printed numbers'
    assert_quoted("06-results.md", res["command"], res["output"])


# ---- the results page's anchors ----


@pytest.mark.needs_mnist
def test_the_best_model_with_kl_zero_scores_what_the_docs_say():
    from tinyvae.lab.datasets.binarize import fixed_binarization
    from tinyvae.lab.datasets.data import load_dataset

    ds = load_dataset("mnist")
    value = load_example("results_anchors").independent_pixels_nll(
        ds.x_train, fixed_binarization(ds.x_test, 0))
    res = committed("anchors.json")
    assert value == pytest.approx(res["independent_pixels_test_loss"], abs=1e-6)
    assert_pasted("06-results.md", "python examples/results_anchors.py",
                  load_example("results_anchors").report(res))


def test_the_anchor_run_is_the_default_runs_first_epochs():
    anchors, history = committed("anchors.json")["epochs"], committed("mnist/history.json")
    for a, h in zip(anchors, history):
        assert a["train_loss"] == pytest.approx(h["train_loss"], abs=1e-9)
        assert a["test_loss"] == pytest.approx(h["test_loss"], abs=1e-9)
        # The end-of-epoch model scores the training images about as it scores the test images,
        # both far below the epoch's mean training loss in the first epoch.
        assert abs(a["train_fixed_loss"] - a["test_loss"]) < 0.05 * a["test_loss"]
    assert anchors[0]["train_loss"] > anchors[0]["train_fixed_loss"] + 20


# ---- slow: re-run the documented commands ----


def close(new, old, rel=2e-3, path="") -> None:
    """JSON trees equal up to `rel` in every number: BLAS's thread count moves the last digits."""
    if isinstance(old, dict):
        for key in old:
            close(new[key], old[key], rel, f"{path}.{key}")
    elif isinstance(old, list):
        assert len(new) == len(old), path
        for i, (a, b) in enumerate(zip(new, old)):
            close(a, b, rel, f"{path}[{i}]")
    elif isinstance(old, float):
        assert new == pytest.approx(old, rel=rel, abs=1e-3), path
    else:
        assert new == old, path


@pytest.mark.needs_mnist
@pytest.mark.rerun
@pytest.mark.parametrize("name, args", [
    ("anchors.json", ["examples/results_anchors.py"]),
    ("sigma_as_beta.json", ["examples/decoder_sigma_as_beta.py"]),
])
def test_slow_rerun_gives_the_committed_numbers(tmp_path, name, args):
    run_example(*args, "--json", str(tmp_path / name), timeout=3600)
    close(json.loads((tmp_path / name).read_text()), committed(name))


@pytest.mark.needs_mnist
@pytest.mark.rerun
def test_slow_rerun_of_the_gaps_gives_the_committed_numbers(tmp_path):
    run_example("examples/mnist.py", "--out", str(tmp_path / "mnist"), "--iw-samples", "0",
                timeout=3600)
    run_example("examples/amortization_gap.py", "--checkpoint",
                str(tmp_path / "mnist" / "checkpoint.npz"), "--json", str(tmp_path / "gaps.json"),
                timeout=3600)
    new, old = json.loads((tmp_path / "gaps.json").read_text()), committed("amortization_gap.json")
    close(new["mean"], old["mean"], rel=5e-3)
