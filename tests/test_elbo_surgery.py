"""The KL term carved up, and its two estimators: examples/elbo_surgery.py.

docs/02-variational-inference.md section 10 derives
E_x KL(q(z|x) ‖ p(z)) = I(x; z) + KL(q(z) ‖ p(z)) (eq. (15)) and pastes the program's first
table; for Burda et al.'s model, read from a checkpoint, its first and third (unit by unit,
docs/results/elbo_surgery_table1.json). Section 7 pastes its second, the one-sample ELBO with
the KL in closed form and sampled. The fast tests check the estimators on small problems whose
answers are known, and that the pasted text and the numbers in the prose are those of the
committed JSON files. The slow one re-runs the documented command (about a minute on 2 cores)
and compares with the committed numbers, to their standard errors:

    python -m pytest tests/test_elbo_surgery.py --rerun-results
"""

from __future__ import annotations

import importlib.util
import json
import math
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tinyvae import losses
from tinyvae.config import VAEConfig, init_params

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "02-variational-inference.md"
COMMITTED = ROOT / "docs" / "results" / "elbo_surgery.json"
COMMAND = "python examples/elbo_surgery.py"


@pytest.fixture(scope="module")
def surgery():
    path = ROOT / "examples" / "elbo_surgery.py"
    spec = importlib.util.spec_from_file_location("lesson_elbo_surgery", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def committed():
    return json.loads(COMMITTED.read_text(encoding="utf-8"))


def doc_text() -> str:
    return " ".join(DOC.read_text(encoding="utf-8").split())  # line breaks as spaces


# ---- the estimators, on problems with known answers ----


def test_the_aggregate_density_is_the_mean_of_the_posteriors_densities(surgery):
    rng = np.random.default_rng(0)
    mu, log_var = rng.normal(size=(5, 3)), rng.normal(scale=0.5, size=(5, 3))
    z = rng.normal(size=(7, 3))
    each = np.stack([losses.gaussian_log_density(z, mu[n], log_var[n]) for n in range(5)],
                    axis=1)  # (7, 5)
    np.testing.assert_allclose(surgery.log_q_all(z, mu, log_var), each, rtol=1e-12)
    np.testing.assert_allclose(surgery.log_aggregate(z, mu, log_var),
                               np.log(np.mean(np.exp(each), axis=1)), rtol=1e-12)


def test_the_kl_term_is_information_plus_the_aggregate_posteriors_kl(surgery):
    rng = np.random.default_rng(1)
    mu, log_var = rng.normal(size=(6, 3)), rng.normal(scale=0.5, size=(6, 3))
    r = surgery.surgery(mu, log_var, rng, draws_per_image=20_000)
    assert r["sum"] == pytest.approx(r["info"] + r["marginal_kl"], abs=1e-9)  # an identity
    assert abs(r["sum"] - r["kl"]) < 4 * r["sum_se"]  # the sampled KL estimates the closed form
    assert 0 < r["info"] < math.log(6)  # overlapping posteriors: some information, less than log N


def test_a_collapsed_encoder_carries_no_information_and_matches_the_prior(surgery):
    zeros = np.zeros((4, 3))  # q(z|x_n) = N(0, I) for every image: full posterior collapse
    r = surgery.surgery(zeros, zeros, np.random.default_rng(2), draws_per_image=50)
    for key in ("kl", "info", "marginal_kl", "sum"):
        assert r[key] == pytest.approx(0.0, abs=1e-12), key


def test_one_shared_posterior_carries_no_information_and_all_its_kl_is_the_mismatch(surgery):
    rng = np.random.default_rng(3)
    mu = np.tile(rng.normal(size=3), (5, 1))
    log_var = np.tile(rng.normal(scale=0.5, size=3), (5, 1))
    r = surgery.surgery(mu, log_var, rng, draws_per_image=20)
    assert r["info"] == pytest.approx(0.0, abs=1e-12)
    assert r["marginal_kl"] == pytest.approx(r["sum"], abs=1e-12)


def test_far_apart_narrow_posteriors_carry_log_n_nats(surgery):
    N = 8
    mu = 50.0 * np.eye(N)[:, :4] + 50.0 * np.arange(N)[:, None]  # (8, 4): codes far apart
    r = surgery.surgery(mu, np.full((N, 4), -4.0), np.random.default_rng(4), draws_per_image=10)
    assert r["info"] == pytest.approx(math.log(N), abs=1e-9)


def test_unit_by_unit_a_collapsed_unit_has_no_information_and_a_spread_one_has_log_n(surgery):
    # Unit 0 collapsed (N(0, 1) for every image), unit 1 far apart and narrow, unit 2 between.
    N = 8
    rng = np.random.default_rng(5)
    mu = np.stack([np.zeros(N), 50.0 * np.arange(N), rng.normal(size=N)], axis=1)  # (8, 3)
    log_var = np.stack([np.zeros(N), np.full(N, -4.0), rng.normal(scale=0.5, size=N)], axis=1)
    active = np.array([False, True, True])
    r = surgery.surgery_per_unit(mu, log_var, active, rng, draws_per_image=20_000)
    assert r["info"][0] == pytest.approx(0.0, abs=1e-12)
    assert r["marginal_kl"][0] == pytest.approx(0.0, abs=1e-12) and r["kl"][0] == 0.0
    assert r["info"][1] == pytest.approx(math.log(N), abs=1e-9)
    assert 0 < r["info"][2] < math.log(N)
    assert r["kl"] == pytest.approx(
        list(0.5 * (mu**2 + np.exp(log_var) - 1 - log_var).mean(axis=0)), rel=1e-12)
    # the identity, unit by unit: information + marginal KL estimates the closed-form KL
    unit_se = r["active"]["info_se"] + r["active"]["marginal_kl_se"]
    assert r["info"][2] + r["marginal_kl"][2] == pytest.approx(r["kl"][2], abs=6 * unit_se)
    # the groups' sums are the units' sums
    for key in ("kl", "info", "marginal_kl"):
        assert r["inactive"][key] == pytest.approx(r[key][0], abs=1e-12)
        assert r["active"][key] == pytest.approx(r[key][1] + r[key][2], rel=1e-12)
        assert r["all"][key] == pytest.approx(sum(r[key]), rel=1e-12)
    assert (r["active"]["units"], r["inactive"]["units"], r["all"]["units"]) == (2, 1, 3)


def test_one_unit_alone_is_the_joint_decomposition_in_one_dimension(surgery):
    rng = np.random.default_rng(6)
    mu, log_var = rng.normal(size=(6, 1)), rng.normal(scale=0.5, size=(6, 1))
    joint = surgery.surgery(mu, log_var, np.random.default_rng(7), draws_per_image=50)
    unit = surgery.surgery_per_unit(mu, log_var, np.array([True]), np.random.default_rng(7),
                                    draws_per_image=50)
    # the same draws: the same numbers, computed through the per-unit path
    assert unit["info"][0] == pytest.approx(joint["info"], rel=1e-10)
    assert unit["marginal_kl"][0] == pytest.approx(joint["marginal_kl"], rel=1e-10)
    assert unit["kl"][0] == pytest.approx(joint["kl"], rel=1e-12)


def test_both_kl_estimators_estimate_the_same_elbo(surgery):
    config = VAEConfig(input_dim=12, hidden_dims=(9,), latent_dim=3)
    params = init_params(config, np.random.default_rng(5))
    x = (np.random.default_rng(6).uniform(size=(20, 12)) > 0.5).astype(np.float64)
    e = surgery.kl_estimators(params, config, x, np.random.default_rng(7), draws=2000)
    assert abs(e["difference"]) < 4 * e["difference_se"]
    assert e["closed_variance"] > 0 and e["sampled_variance"] > 0 and e["kl_sampled_variance"] > 0


# ---- what docs/02 quotes ----


def pasted_lines() -> list[str]:
    text = DOC.read_text(encoding="utf-8")
    marker = f"<!-- output of: {COMMAND} -->"
    parts = text.split(marker)[1:]
    assert len(parts) == 2, f"docs/02 should paste two blocks of {COMMAND}"
    blocks = [re.search(r"```[a-z]*\n(.*?)```", part, re.DOTALL).group(1) for part in parts]
    return [line for block in blocks for line in block.splitlines() if line.strip()]


def test_docs_paste_what_the_program_prints_for_the_committed_numbers(surgery, committed):
    printed = set(surgery.report(committed).splitlines())
    missing = [line for line in pasted_lines() if line not in printed]
    assert not missing, f"docs/02 quotes lines {COMMAND} does not print for the committed run: " \
                        f"{missing}"


TABLE1 = ROOT / "docs" / "results" / "elbo_surgery_table1.json"


def test_docs_paste_the_table1_models_tables_for_its_committed_numbers(surgery):
    res = json.loads(TABLE1.read_text(encoding="utf-8"))
    text = DOC.read_text(encoding="utf-8")
    marker = f"<!-- output of: {COMMAND} --checkpoint -->"
    block = re.search(r"```[a-z]*\n(.*?)```", text[text.index(marker):], re.DOTALL).group(1)
    printed = surgery.report(res).splitlines()
    pasted = [line for line in block.splitlines() if line.strip()]
    assert all(line in printed for line in pasted)
    assert pasted[0].startswith("model: 784-200-200-50, from a checkpoint, 364 epochs")
    assert any(line.startswith("per unit") for line in pasted)  # the third table is there


def test_the_unit_by_unit_prose_is_the_committed_numbers(committed):
    t1 = json.loads(TABLE1.read_text(encoding="utf-8"))
    u, d = t1["per_unit"], committed["per_unit"]
    act, ina, every = u["active"], u["inactive"], u["all"]
    info = np.array(u["info"])
    is_active = np.array(u["is_active"])
    text = doc_text()
    # the default model: all active, its KL mostly information
    assert d["inactive"]["units"] == 0 and d["active"]["units"] == committed["latent_dim"]
    da = d["active"]
    assert (f"together they hold {da['info']:.2f} of its {da['kl']:.2f} nats of KL as "
            f"information") in text
    assert (f"{min(d['info']):.2f} to {max(d['info']):.2f} nats each; their marginals lie "
            f"{da['marginal_kl']:.2f} nats in all") in text
    # the Table 1 model: the stage-5 IWAE k = 5 of docs/06
    stages = json.loads((ROOT / "docs" / "results" / "iwae-iwae-k5-dynamic.json")
                        .read_text(encoding="utf-8"))["stages"]
    assert t1["active_units"] == act["units"] == stages[5]["active_units"] == 23
    assert f"The {ina['units']} inactive units" in text
    assert f"carry {ina['info']:.2f} nats of information between them, none more than " \
           f"{info[~is_active].max():.3f}" in text
    assert f"the least informative active unit carries {info[is_active].min():.2f}" in text
    assert f"Their KL, {ina['kl']:.2f} nats in all" in text
    assert f"Of the active units' {act['kl']:.2f} nats, {act['info']:.2f} ± " \
           f"{act['info_se']:.2f} are information and {act['marginal_kl']:.2f} the distance" in text
    parts = act["info"] + act["marginal_kl"]
    assert f"add up to {parts:.2f}, two standard errors from the exact {act['kl']:.2f}" in text
    assert 1.5 < abs(parts - act["kl"]) / math.hypot(act["info_se"], act["marginal_kl_se"]) < 2.5
    row = next(r for r in t1["surgery"] if r["images"] == u["images"] == 1000)
    tc = every["info"] - row["info"]
    assert f"The {row['marginal_kl']:.2f} nats of" in text
    assert f"which account for {every['marginal_kl']:.2f} of them" in text
    assert f"less the joint one: {tc:.2f} nats" in text
    floor = every["info"] - row["log_images"]  # I(x; z) <= log N
    assert (f"add up to {every['info']:.2f}, so the total correlation is at least "
            f"${every['info']:.2f} - {row['log_images']:.2f} = {floor:.2f}$ nats") in text
    assert 0 <= tc - floor < 0.1  # "forced": the measured value sits on its floor
    # TC + the marginals' KL is the joint mismatch, to the standard errors
    se = math.hypot(every["info_se"], row["info_se"], every["marginal_kl_se"],
                    row["marginal_kl_se"])
    assert abs(tc + every["marginal_kl"] - row["marginal_kl"]) < 4 * se
    # and the identity per group: information + marginal KL estimates the closed-form KL
    for g in (act, ina):
        assert abs(g["info"] + g["marginal_kl"] - g["kl"]) < \
            4 * math.hypot(g["info_se"], g["marginal_kl_se"]) + 0.01


def test_the_committed_run_is_the_documented_command(committed):
    assert committed["model"] == "5 epochs on 60,000 images, seed 0"
    assert committed["config"]["latent_dim"] == 20 and committed["config"]["hidden_dims"] == [400]
    assert [r["images"] for r in committed["surgery"]] == [100, 1000, 10_000]


def test_the_prose_of_section_10_is_the_committed_numbers(committed):
    rows = committed["surgery"]
    last = rows[-1]
    ceiling = max(r["log_images"] - r["info"] for r in rows)
    assert ceiling < 0.07  # "within 0.07 nats of its ceiling log N in every row"
    text = doc_text()
    for quoted in (f"{last['info']:.2f} of the {last['log_images']:.2f} nats",
                   f"{last['marginal_kl']:.2f} nats or two thirds of the KL term",
                   f"like the test images' {last['kl']:.2f}",
                   f"the mismatch is at least {last['kl'] - math.log(60_000):.1f}"):
        assert quoted in text, quoted
    assert 0.6 < last["marginal_kl"] / last["kl"] < 0.7  # "two thirds"
    for r in rows:  # the sum of the two sampled terms is the closed form, to its standard error
        assert abs(r["sum"] - r["kl"]) < 4 * r["sum_se"] + 0.005
    assert all(25 < r["kl"] < 28 for r in rows)  # "about 26.5 nats whichever images are taken"


def test_the_prose_of_section_7_is_the_committed_numbers(committed):
    e = committed["kl_estimators"]
    covariance = (e["closed_variance"] + e["kl_sampled_variance"] - e["sampled_variance"]) / 2
    correlation = covariance / math.sqrt(e["closed_variance"] * e["kl_sampled_variance"])
    text = doc_text()
    for quoted in (f"({e['difference']:.3f} ± {e['difference_se']:.3f} nats apart)",
                   f"(variance {e['kl_sampled_variance']:.1f})",
                   (f"total variance is {e['sampled_variance']:.1f} against the closed form's "
                    f"{e['closed_variance']:.1f}"),
                   f"a correlation of {correlation:.2f}"):
        assert quoted in text, quoted
    assert abs(e["difference"]) < 3 * e["difference_se"]  # both unbiased: "the two means agree"
    assert e["sampled_variance"] < e["closed_variance"]  # "here the cancellation wins"


# ---- the documented command, re-run ----


def close(new: dict, old: dict, key: str) -> bool:
    """Two Monte Carlo estimates agree to their standard errors, plus the 0.05 nat the two
    trainings may differ by."""
    return abs(new[key] - old[key]) < 4 * math.hypot(new[f"{key}_se"], old[f"{key}_se"]) + 0.05


@pytest.mark.needs_mnist
@pytest.mark.rerun
def test_the_documented_command_gives_the_committed_numbers(tmp_path, data_env, committed):
    out = tmp_path / "surgery.json"
    command = [sys.executable, "examples/elbo_surgery.py", "--json", str(out)]
    done = subprocess.run(command, cwd=ROOT, env=data_env, capture_output=True, text=True,
                          timeout=900, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    fresh = json.loads(out.read_text(encoding="utf-8"))
    assert fresh["active_units"] == committed["active_units"]
    # The model is trained in float32 on BLAS, whose sums may differ between machines: the exact
    # numbers (the closed-form KL) agree to a few hundredths of a nat, the Monte Carlo ones to
    # their standard errors on top of that.
    for new, old in zip(fresh["surgery"], committed["surgery"]):
        assert new["kl"] == pytest.approx(old["kl"], abs=0.05)
        for key in ("info", "marginal_kl", "sum"):
            assert close(new, old, key), key
    new, old = fresh["kl_estimators"], committed["kl_estimators"]
    for key in ("closed", "sampled", "difference"):
        assert close(new, old, key), key
    for key in ("closed_variance", "sampled_variance", "kl_sampled_variance"):
        assert new[key] == pytest.approx(old[key], rel=0.05), key
    new, old = fresh["per_unit"]["active"], committed["per_unit"]["active"]
    assert new["kl"] == pytest.approx(old["kl"], abs=0.05)
    for key in ("info", "marginal_kl"):
        assert close(new, old, key), key
