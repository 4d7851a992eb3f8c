"""The numbers the theory docs quote are the numbers the examples compute.

examples/elbo_identity.py   -> docs/02-variational-inference.md (eqs. (5), (7), (12))
examples/kl_divergence.py   -> docs/03-kl-worked-example.md

examples/ is not a package, so the example files are imported by path.
"""

from __future__ import annotations

import importlib.util
import math
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from printed import unmatched

import tinyvae

ROOT = Path(__file__).resolve().parents[1]


def load_example(name: str):
    """Import examples/<name>.py as a module."""
    path = ROOT / "examples" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(f"example_{name}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def run_example(args: list[str]) -> str:
    """Run an example as a student would, with the same tinyvae the tests import."""
    env = dict(os.environ, MPLBACKEND="Agg")
    package_dir = str(Path(tinyvae.__file__).resolve().parents[1])
    env["PYTHONPATH"] = os.pathsep.join([package_dir] + [p for p in [env.get("PYTHONPATH")] if p])
    done = subprocess.run(
        [sys.executable, *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


@pytest.fixture(scope="module")
def elbo():
    return load_example("elbo_identity")


@pytest.fixture(scope="module")
def kl():
    return load_example("kl_divergence")


@pytest.fixture(scope="module")
def elbo_run(elbo):
    return elbo.run(seed=0)


# ---- log p(x) = KL(q ‖ p(z|x)) + ELBO on the linear-Gaussian model ----


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_log_evidence_equals_kl_plus_elbo_over_the_whole_family(elbo, seed):
    model = elbo.make_model(np.random.default_rng(seed), latent_dim=3, data_dim=4, sigma=0.5)
    res = elbo.identity_over_family(model, np.linspace(0.0, 2.0, 41))
    np.testing.assert_allclose(res["kl"] + res["elbo"], res["log_px"], rtol=0, atol=1e-9)


def test_elbo_split_into_reconstruction_minus_kl_to_prior_equals_joint_form(elbo_run):
    # docs/02 eq. (7): E_q[log p(x|z)] − KL(q ‖ p(z)) is the same number as eq. (5)'s ELBO.
    np.testing.assert_allclose(elbo_run["elbo_split"], elbo_run["elbo"], rtol=0, atol=1e-9)


def test_elbo_is_largest_at_the_true_posterior_where_kl_is_zero(elbo_run):
    t, kl, elbo_values = elbo_run["t"], elbo_run["kl"], elbo_run["elbo"]
    best = int(np.argmax(elbo_values))
    assert t[best] == 1.0
    assert abs(kl[best]) < 1e-12
    assert abs(elbo_values[best] - elbo_run["log_px"]) < 1e-12
    # everywhere else q is not the posterior and the bound is loose
    assert np.all(kl[t != 1.0] > 1e-3)


def test_elbo_is_a_lower_bound_on_log_evidence(elbo_run):
    assert np.all(elbo_run["elbo"] <= elbo_run["log_px"] + 1e-12)


def test_closed_form_evidence_and_posterior_match_bayes_rule_pointwise(elbo):
    # log p(z|x) = log p(x|z) + log p(z) − log p(x) at a few arbitrary z.
    model = elbo.make_model(np.random.default_rng(3))
    m, S = elbo.posterior(model)
    W, b, sigma, x = model["W"], model["b"], model["sigma"], model["x"]
    D, Z = W.shape
    for z in np.random.default_rng(4).normal(size=(5, Z)):
        log_lik = elbo.mvn_log_density(x, W @ z + b, sigma**2 * np.eye(D))
        log_prior = elbo.mvn_log_density(z, np.zeros(Z), np.eye(Z))
        log_post = elbo.mvn_log_density(z, m, S)
        assert abs(log_lik + log_prior - elbo.log_evidence(model) - log_post) < 1e-10


def test_closed_form_elbo_matches_its_monte_carlo_estimate(elbo):
    # L_1 is the one-sample Monte Carlo ELBO; averaged over many samples it must agree with the
    # closed form.
    model = elbo.make_model(np.random.default_rng(0))
    m, S = elbo.posterior(model)
    mu_q, cov_q = elbo.q_family(0.8, m, S)
    est = elbo.iw_bound(1, mu_q, cov_q, model, np.random.default_rng(1), repeats=200_000)
    stderr = est.std(ddof=1) / math.sqrt(est.size)
    assert abs(est.mean() - elbo.elbo_terms(mu_q, cov_q, model)["elbo"]) < 5 * stderr


def test_importance_weighted_bound_rises_with_k_and_stays_below_log_evidence(elbo_run):
    mean, se, log_px = elbo_run["iw_mean"], elbo_run["iw_stderr"], elbo_run["log_px"]
    assert list(elbo_run["ks"]) == [1, 10, 100, 1000, 10000]
    # L_k rises with k; once the true steps are below the noise (k >= 1000 here), an estimate
    # may dip, but never by more than a few combined standard errors.
    assert np.all(np.diff(mean) > -3 * np.hypot(se[1:], se[:-1]))
    assert mean[1] - mean[0] > 1.0 and mean[2] > mean[1]
    assert np.all(elbo_run["iw_repeats"] * elbo_run["ks"] >= 2_000_000)  # every row is precise
    assert np.all(mean <= log_px + 4 * se)  # an upper bound, up to Monte Carlo noise
    assert log_px - mean[0] > 1.0  # the ELBO of q_0.5 is far below ...
    assert abs(log_px - mean[-1]) < 0.01  # ... and L_10000 has nearly closed the gap
    assert abs(mean[0] - elbo_run["elbo_iw"]) < 4 * se[0]  # L_1 is the ELBO
    assert se[0] < 0.005  # and it is estimated precisely enough for the docs to compare it


def test_docs_say_how_far_apart_the_last_two_rows_are(elbo_run):
    # docs/02 section 8: the k = 10000 row lies below the k = 1000 row, by a fraction of the
    # standard error of their difference.
    mean, se = elbo_run["iw_mean"], elbo_run["iw_stderr"]
    below, se_diff = mean[-2] - mean[-1], math.hypot(se[-1], se[-2])
    page = ROOT / "docs" / "02-variational-inference.md"
    text = " ".join(page.read_text(encoding="utf-8").split())
    assert f"comes out {below:.5f} below the $k = 1000$ row" in text
    assert f"{se[-2]:.6f}^2 + {se[-1]:.6f}^2}} = {se_diff:.5f}$" in text
    assert f"so it lies {below / se_diff:.1f} standard errors below zero" in text
    assert 0 < below < se_diff


def test_the_elbo_three_ways_agree(elbo_run):
    # docs/02 section 5: the identity, the entropy form and eq. (7), all closed forms.
    assert elbo_run["elbo_iw_identity"] == pytest.approx(elbo_run["elbo_iw"], abs=1e-12)
    assert elbo_run["elbo_iw_split"] == pytest.approx(elbo_run["elbo_iw"], abs=1e-12)


@pytest.mark.slow
def test_elbo_example_prints_the_identity_and_draws_the_figure(tmp_path):
    png = tmp_path / "elbo.png"
    out = run_example(["examples/elbo_identity.py", "--plot", str(png)])
    assert "ELBO is largest at t = 1.00" in out
    assert png.stat().st_size > 10_000
    # Every line docs/02 pastes under "<!-- output of: python examples/elbo_identity.py -->"
    # is a line the program prints now, to the precision that means something on any CPU
    # (tests/printed.py): a number below 1e-12 is rounding error (the identity's column), held
    # to its order of magnitude, never to its digits; the others to their last printed digit.
    text = (ROOT / "docs" / "02-variational-inference.md").read_text(encoding="utf-8")
    marker = "<!-- output of: python examples/elbo_identity.py -->"
    blocks = [re.search(r"```[a-z]*\n(.*?)```", part, re.S).group(1)
              for part in text.split(marker)[1:]]
    assert len(blocks) >= 3
    pasted = [line for block in blocks for line in block.splitlines()]
    assert not unmatched(pasted, out.splitlines(), noise=1e-12)


# ---- the lecture's worked KL example ----


def test_exact_kl_values_in_nats_bits_and_base_10(kl):
    rows = {(r["q"], r["direction"]): r for r in kl.kl_table()}
    pq, qp = rows[("1/3", "KL(P||Q)")], rows[("1/3", "KL(Q||P)")]
    assert pq["nats"] == pytest.approx(0.0852996, abs=5e-8)
    assert qp["nats"] == pytest.approx(0.097455, abs=5e-7)
    for r in (pq, qp):
        assert r["bits"] == pytest.approx(r["nats"] / math.log(2), rel=1e-12)
        assert r["base 10"] == pytest.approx(r["nats"] / math.log(10), rel=1e-12)


def test_kl_is_not_symmetric(kl):
    rows = {(r["q"], r["direction"]): r["nats"] for r in kl.kl_table()}
    assert rows[("1/3", "KL(Q||P)")] - rows[("1/3", "KL(P||Q)")] > 0.01


def test_kl_divergence_refuses_the_slides_rounded_q(kl):
    # 3 × 0.33 = 0.99: not a distribution, which is why the example falls back to the raw sum.
    with pytest.raises(ValueError, match="sums to"):
        kl.kl_divergence(kl.P, kl.Q_SLIDE)


def test_raw_sums_with_rounded_q_are_shifted_exact_kls(kl):
    # docs/03: Σ P log(P/0.33) = KL(P‖U) − log 0.99,
    # and Σ 0.33 log(0.33/P) = 0.99 (KL(U‖P) + log 0.99).
    exact_pq = kl.kl_divergence(kl.P, kl.Q_EXACT)
    exact_qp = kl.kl_divergence(kl.Q_EXACT, kl.P)
    assert kl.raw_kl_sum(kl.P, kl.Q_SLIDE, math.e) == pytest.approx(exact_pq - math.log(0.99),
                                                                    rel=1e-12)
    assert kl.raw_kl_sum(kl.Q_SLIDE, kl.P, math.e) == pytest.approx(
        0.99 * (exact_qp + math.log(0.99)), rel=1e-12)


def test_rounding_q_reverses_which_direction_is_larger(kl):
    rows = {(r["q"], r["direction"]): r["nats"] for r in kl.kl_table()}
    assert rows[("1/3", "KL(Q||P)")] > rows[("1/3", "KL(P||Q)")]
    assert rows[("0.33", "KL(Q||P)")] < rows[("0.33", "KL(P||Q)")]


def test_slide_figures_are_base_10_with_q_033_truncated_to_four_decimals(kl):
    # The explanation in docs/03: only base 10 with Q = 0.33 gives 0.0414 and 0.0375, and only
    # when cut after four decimals; rounded, the second figure would be 0.0376.
    rep = kl.slide_reproduction()
    assert rep["matches_truncated"] == [("0.33", "base 10")]
    assert rep["matches_rounded"] == []
    b10 = rep["base10_q033"]
    assert b10["KL(P||Q)"] == pytest.approx(0.0414100, abs=5e-8)
    assert b10["KL(Q||P)"] == pytest.approx(0.0375798, abs=5e-8)
    assert round(b10["KL(Q||P)"], 4) == 0.0376


def test_docs_quote_the_numbers_the_kl_example_prints(kl):
    text = (ROOT / "docs" / "03-kl-worked-example.md").read_text(encoding="utf-8")
    for r in kl.kl_table():
        for unit in ("nats", "bits", "base 10"):
            assert f"{r[unit]:.7f}" in text, (r["q"], r["direction"], unit)


def test_kl_example_prints_its_table():
    out = run_example(["examples/kl_divergence.py"])
    assert "0.0852996" in out and "0.0974550" in out
    assert "not a true KL" in out
    assert "[('0.33', 'base 10')]" in out


def test_elbo_document_has_the_equation_tags_the_code_cites():
    text = (ROOT / "docs" / "02-variational-inference.md").read_text(encoding="utf-8")
    for n in (5, 7, 10, 11, 12):
        assert text.count(f"\\tag{{{n}}}") == 1, n
