"""What training with k samples per image buys, measured: docs/04-gradients.md section 8.

examples/k_samples.py trains Table 1's model with the ELBO and with L_k at several k and
measures the active units and the gap L_k' − ELBO; its --snr part measures the signal-to-noise
ratio of the gradient estimates of L_k. The tests here re-run a reduced version of each
computation on a small model, in seconds, and hold the text of section 8 to the committed
docs/results/k_samples.json (Monte-Carlo numbers to their standard errors). The bench's --k
(what an epoch at k = 5 costs against k = 1) is tested in tests/test_bench.py.
"""

from __future__ import annotations

import importlib.util
import json
import math
import os
import re
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from tinyvae import optim, vae
from tinyvae.config import VAEConfig, init_params
from tinyvae.speed.step import FastStep
from tinyvae.train import train_epochs

ROOT = Path(__file__).resolve().parents[1]


def load_example(name: str):
    """Import examples/<name>.py as a module (examples/ is not a package)."""
    path = ROOT / "examples" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(f"lesson_{name}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def rel_error(a, b) -> float:
    """max |a − b| / max(|a| + |b|), both maxima over the array (as tinyvae/gradcheck.py)."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return float(np.max(np.abs(a - b)) / max(1e-8, np.max(np.abs(a) + np.abs(b))))


# ---- the fast step at large k: tiny weights, no subnormal numbers ----

def test_the_fast_iwae_step_drops_negligible_weights_and_stays_out_of_subnormals():
    # A wide q(z|x) (σ = e) sends samples far into its tails: an image's log-weights spread
    # over 50-100 nats, and a third of its normalized weights fall below float32's eps². The
    # fast step counts those as zero, which leaves its gradient the core's to float32
    # precision, and no gradient of the decoder's output is a subnormal number (multiplying
    # one costs ~100 times a normal multiply).
    config = VAEConfig(input_dim=784, hidden_dims=(40,), latent_dim=10, activation="tanh",
                       k=20, objective="iwae")
    rng = np.random.default_rng(0)
    params = init_params(config, rng, np.float32)
    params["encoder.b_logvar"][:] = 2.0
    x = (rng.random((6, 784)) < 0.3).astype(np.float32)
    eps = rng.standard_normal((6, 20, 10)).astype(np.float32)
    _, grads, _ = vae.loss_and_grads(params, x, eps, config)
    fast = FastStep(config, params, optim.SGD(lr=0.1), max_batch=6, threads=1)
    fast.step(x, eps)
    for key in grads:
        assert rel_error(fast.grads[key], grads[key]) < 1e-5, key
    d_out = fast._cut[6].d_out
    assert np.all((d_out == 0) | (np.abs(d_out) >= np.finfo(np.float32).tiny))
    assert np.any(d_out == 0)  # weights were dropped: the case is the one meant


# ---- the signal-to-noise ratio: the estimator, and the effect on a small model ----

@pytest.fixture(scope="module")
def lesson():
    return load_example("k_samples")


def test_the_snr_from_grouped_sums_is_the_plain_one(lesson):
    # Sums of g − g₀ in groups, recombined, give |mean g| / std g of the draws themselves.
    rng = np.random.default_rng(0)
    g = rng.normal(loc=[0.0, 0.3, -2.0, 5.0], scale=[1.0, 1.0, 0.5, 0.0], size=(60, 4))
    shift, sums, squares, counts = lesson.moments(iter(g), groups=4)
    snr = lesson.snr_of(shift, sums.sum(0), squares.sum(0), counts.sum())
    plain = np.abs(g.mean(0)[:3]) / g.std(0, ddof=1)[:3]
    np.testing.assert_allclose(snr[:3], plain, rtol=1e-10)
    assert np.isnan(snr[3])  # a gradient that never varies has no SNR


def test_a_gradient_of_mean_zero_reads_the_floor(lesson):
    # Pure noise: E |mean| / std = sqrt(2 / (π R)) for R draws, the floor the docs print.
    R, P = 200, 4000
    g = np.random.default_rng(0).standard_normal((R, P))
    mean, _, _ = lesson.network_snr(*lesson.moments(iter(g), groups=10), np.ones(P, bool))
    assert mean == pytest.approx(math.sqrt(2 / (math.pi * R)), rel=0.02)


def test_the_jackknife_error_of_the_mean_snr_matches_its_spread_over_repeats(lesson):
    # Gradients of varied SNR whose noise is partly shared by all parameters (one ε moves them
    # all): the jackknife's standard error must be the spread of the estimate over independent
    # repeats of the whole measurement, within the precision 20 repeats give (~ ±30 %).
    R, P = 200, 2000
    means, ses = [], []
    for seed in range(20):
        rng = np.random.default_rng(seed)
        g = rng.random(P) + rng.standard_normal((R, P)) + rng.standard_normal((R, 1))
        mean, se, _ = lesson.network_snr(*lesson.moments(iter(g), groups=10), np.ones(P, bool))
        means.append(mean)
        ses.append(se)
    assert 0.7 < np.std(means, ddof=1) / np.mean(ses) < 1.4


def small_trained_model():
    """A 30-pixel VAE trained for a few seconds on noisy copies of five prototypes."""
    config = VAEConfig(input_dim=30, hidden_dims=(16,), latent_dim=4, activation="tanh")
    rng = np.random.default_rng(0)
    params = init_params(config, rng)
    prototypes = rng.random((5, 30)) < 0.3
    x = (prototypes[rng.integers(0, 5, 400)] ^ (rng.random((400, 30)) < 0.05)).astype(float)
    train_epochs(params, optim.Adam(lr=3e-3), config, x, rng, epochs=30, batch_size=20)
    return params, config, x


def test_more_samples_raise_the_decoders_snr_and_lower_the_encoders(lesson):
    # The reduced version of `examples/k_samples.py snr`: the decoder's mean SNR grows about as
    # √k (√100 = 10; measured ~6.5), the encoder's falls (measured ~0.74 of its k = 1 value),
    # each beyond its jackknife standard error.
    params, config, x = small_trained_model()
    rows = lesson.gradient_snr(params, x[:10], config, (1, 100), 400, 10, np.random.default_rng(1))
    enc = [r["encoder"] for r in rows]
    dec = [r["decoder"] for r in rows]
    assert dec[1]["mean"] > 4 * dec[0]["mean"]
    assert enc[0]["mean"] - enc[1]["mean"] > 3 * math.hypot(enc[0]["se"], enc[1]["se"])
    assert dec[1]["share_below_first"] < 0.1 < 0.5 < enc[1]["share_below_first"]


# ---- docs/04 section 8: the text is the committed numbers' ----

DOCS, RESULTS = ROOT / "docs", ROOT / "docs" / "results"


def committed(name: str) -> dict:
    return json.loads((RESULTS / name).read_text(encoding="utf-8"))


def section_8() -> str:
    text = (DOCS / "04-gradients.md").read_text(encoding="utf-8")
    section = text[text.index("## 8. What k samples buy"):]
    return " ".join(section.split())  # one line, single spaces


def pasted_block(command: str) -> list[str]:
    """The lines of the fenced block after `<!-- output of: COMMAND -->` in docs/04."""
    text = (DOCS / "04-gradients.md").read_text(encoding="utf-8")
    marker = f"<!-- output of: {command} -->"
    assert marker in text, f"docs/04 has no block marked {marker}"
    block = re.search(r"```[a-z]*\n(.*?)```", text[text.index(marker):], re.S).group(1)
    return [line for line in block.splitlines() if line.strip()]


def test_section_8_pastes_what_the_models_part_prints_for_the_committed_numbers(lesson):
    printed = lesson.report_models(committed("k_samples.json")).splitlines()
    assert pasted_block("python examples/k_samples.py models") == printed


def rows_by(res: dict) -> dict:
    return {(r["objective"], r["k"]): r for r in res["rows"]}


def test_the_reading_of_the_models_quotes_the_committed_numbers():
    res = committed("k_samples.json")
    by, text = rows_by(res), section_8()
    for objective in ("iwae", "elbo"):
        gaps = " to ".join(f"{by[objective, k]['gap']:.2f}" for k in (1, 5, 20))
        assert gaps in text, gaps
    for name in ("elbo", "iw_bound"):
        quoted = ", ".join(f"{by['iwae', k][name]:.2f}" for k in (1, 5, 20)).replace("-", "−")
        assert quoted in text, quoted
    gains = [by[o, 20]["iw_bound"] - by[o, 1]["iw_bound"] for o in ("elbo", "iwae")]
    assert f"{gains[0]:.2f} and {gains[1]:.2f} nats" in text
    pairs = [p["iw_bound"] for p in res["pairs"]]
    ses = [p["iw_bound_se"] for p in res["pairs"]]
    assert f"by {-max(pairs):.2f}–{-min(pairs):.2f} nat" in text
    assert f"standard errors {min(ses):.2f}–{max(ses):.2f}" in text
    units = {o: sorted(by[o, k]["active_units"] for k in (1, 5, 20)) for o in ("elbo", "iwae")}
    iwae, elbo = units["iwae"], units["elbo"]
    assert f"{iwae[0]}–{iwae[-1]} against {elbo[0]}–{elbo[-1]}" in text


def test_what_the_reading_claims_holds_beyond_the_standard_errors():
    res = committed("k_samples.json")
    by = rows_by(res)
    for a, b in ((1, 5), (5, 20)):  # the gap grows with k under L_k, shrinks under the ELBO
        for objective, sign in (("iwae", 1), ("elbo", -1)):
            step = sign * (by[objective, b]["gap"] - by[objective, a]["gap"])
            assert step > 3 * math.hypot(by[objective, a]["gap_se"], by[objective, b]["gap_se"])
    for p in res["pairs"]:  # L_1000 favours the ELBO-trained model at every k ...
        assert p["iw_bound"] < -3 * p["iw_bound_se"]
    first, last = res["pairs"][0], res["pairs"][-1]  # ... by the same at k = 1 as at k = 20
    assert abs(first["iw_bound"] - last["iw_bound"]) < 2 * math.hypot(first["iw_bound_se"],
                                                                     last["iw_bound_se"])


def test_the_first_row_is_the_reproductions_run_after_its_first_two_stages():
    # The same recipe and seed as docs/06's reproduction: 37 active units after 4 passes.
    stages = committed("iwae-vae-dynamic.json")["stages"]
    first = rows_by(committed("k_samples.json"))["elbo", 1]
    assert stages[1]["last_epoch"] == committed("k_samples.json")["settings"]["epochs"] == 4
    assert first["active_units"] == stages[1]["active_units"]
    text = section_8()
    assert f"also had {stages[1]['active_units']} after these 4 passes, and " \
           f"{stages[-1]['active_units']} after all {stages[-1]['last_epoch']:,}" in text


def needs_data() -> None:
    root = os.environ.get("TINYVAE_DATA")
    if not root or not Path(root, "mnist").is_dir():
        pytest.skip("TINYVAE_DATA is not set to a folder holding mnist/ (the real MNIST files)")


def test_the_models_part_reduced_trains_once_resumes_and_then_only_scores(lesson, tmp_path,
                                                                           capsys):
    # Table 1's model on 200 images: trained into its folder, then loaded (the same numbers,
    # nothing trained), then resumed for one more epoch. L_k' lies above the ELBO.
    needs_data()
    small = ["models", "--train-limit", "200", "--ks", "1,3", "--images", "40", "--iw-k", "50",
             "--elbo-samples", "4", "--cache-dir", str(tmp_path)]
    runs = []
    for epochs in ("1", "1", "2"):
        assert lesson.main([*small, "--epochs", epochs, "--json", str(tmp_path / "m.json")]) == 0
        runs.append((capsys.readouterr().out, json.loads((tmp_path / "m.json").read_text())))
    assert runs[0][0].count("training ") == 4 and "training " not in runs[1][0]
    assert runs[0][1] == runs[1][1]
    assert runs[2][0].count("epochs 2-2") == 4
    for res in (runs[0][1], runs[2][1]):
        assert all(r["gap"] > 3 * r["gap_se"] for r in res["rows"])


def test_section_8_pastes_what_the_snr_part_prints_for_the_committed_numbers(lesson):
    printed = lesson.report_snr(committed("k_samples_snr.json")).splitlines()
    assert pasted_block("python examples/k_samples.py snr") == printed


def test_the_snr_moves_as_the_reading_says_beyond_its_standard_errors():
    rows = committed("k_samples_snr.json")["rows"]
    for a, b in zip(rows, rows[1:]):  # every step in k: the decoder's up, the encoder's down
        for net, sign in (("decoder", 1), ("encoder", -1)):
            step = sign * (b[net]["mean"] - a[net]["mean"])
            assert step > 3 * math.hypot(a[net]["se"], b[net]["se"]), (net, a["k"], b["k"])
    last = rows[-1]
    assert last["encoder"]["share_below_first"] > 0.5 > last["decoder"]["share_below_first"]


def test_the_reading_of_the_snr_quotes_the_committed_numbers():
    res, text = committed("k_samples_snr.json"), section_8()
    rows, s = res["rows"], res["settings"]
    first, last = rows[0], rows[-1]
    assert f"from {first['decoder']['mean']:.2f} to {last['decoder']['mean']:.2f}" in text
    assert f"from {first['encoder']['mean']:.3f} to {last['encoder']['mean']:.3f}" in text
    assert f"{last['encoder']['share_below_first']:.0%}".replace("%", " %") in text
    assert f"against {last['decoder']['share_below_first']:.0%}".replace("%", " %") in text
    k20 = next(r for r in rows if r["k"] == 20)
    slopes = [math.log(last[net]["mean"] / k20[net]["mean"]) / math.log(last["k"] / 20)
              for net in ("decoder", "encoder")]
    assert f"{slopes[0]:+.2f} and {slopes[1]:+.2f}".replace("-", "−") in text
    assert f"= {s['floor']:.3f}" in text
    assert f"decoder's {s['parameters']['decoder']:,}" in text
    assert f"encoder's {s['parameters']['encoder']:,}" in text
    model = rows_by(committed("k_samples.json"))["iwae", 5]
    assert s["model"] == "trained with iwae, k = 5, 4 epochs, seed 0"
    assert f"the ELBO lies {model['gap']:.2f} nats below" in text


def test_the_pixels_left_out_of_the_encoders_snr_are_those_off_in_the_whole_batch():
    needs_data()
    from tinyvae.lab.training import recipes
    s = committed("k_samples_snr.json")["settings"]
    _, x, _, _ = recipes.load_data(recipes.IWAE_VAE, "dynamic", None, train_limit=1,
                                   test_limit=s["batch"])
    off = int((x.max(axis=0) == 0).sum())
    hidden = recipes.IWAE_VAE.config.hidden_dims[0]
    assert f"the {off} pixels that are 0 in all {s['batch']} images, {off * hidden:,} of them" \
        in section_8()


def test_the_papers_numbers_quoted_are_the_recipes():
    from tinyvae.lab.training import recipes
    k1, vae5, iwae5 = (recipes.RECIPES[name].variants["dynamic"]
                       for name in ("iwae-vae", "iwae-vae-k5", "iwae-iwae-k5"))
    text = section_8()
    units = [v.paper_active_units for v in (k1, vae5, iwae5)]
    assert (f"Burda et al. report {units[0]} (VAE, $K = 1$), {units[1]} (VAE, $K = 5$) and "
            f"{units[2]} (IWAE, $K = 5$)") in text
    nll = f"({vae5.paper_nll} nats for the VAE at $K = 5$ against {iwae5.paper_nll} for the IWAE)"
    assert nll in text


# ---- what an epoch at k = 5 costs: docs/04 section 8 against docs/results/bench_k5.json ----

def bench_runs() -> dict:
    """{objective: {"command", "output"}} of the committed bench runs."""
    return {run["command"].rsplit(" ", 1)[1]: run for run in committed("bench_k5.json")["runs"]}


def printed(run: dict, pattern: str) -> re.Match:
    match = next((m for m in map(re.compile(pattern).fullmatch, run["output"]) if m), None)
    assert match, f"no line {pattern!r} in the output of {run['command']}"
    return match


def test_the_speed_table_is_the_committed_bench_output_and_meets_the_target():
    text = section_8()
    for objective, run in bench_runs().items():
        ratio, epoch, epoch_1 = (float(g) for g in printed(
            run, r"epoch at k = 5 / epoch at k = 1: ([\d.]+) \(medians ([\d.]+) s / ([\d.]+) s\)"
        ).groups())
        assert ratio == pytest.approx(epoch / epoch_1, abs=0.006)  # the printed ratio is its own
        assert ratio <= 2.5
        time, flops = printed(run, r"matmuls alone at k = 5 / at k = 1: ([\d.]+) in time, "
                                   r"([\d.]+) in FLOPs \(.*\)").groups()
        assert f"(`--objective {objective}`) | **{ratio:.2f}** | {time} | {flops} |" in text
        assert printed(run, r"model: 784-200-200-50 tanh bernoulli, k 5, objective (\w+), "
                            r"batch 20, .*").group(1) == objective
    ratios = sorted(printed(run, r"epoch at k = 5 / epoch at k = 1: ([\d.]+) .*").group(1)
                    for run in bench_runs().values())
    times = sorted(printed(run, r"matmuls alone at k = 5 / at k = 1: ([\d.]+) in time.*").group(1)
                   for run in bench_runs().values())
    assert f"costs {ratios[0]}–{ratios[-1]} times the epoch at $K = 1$" in text
    assert f"less than their FLOPs, {times[0]}–{times[-1]} times" in text
    commands = {o: run["command"] for o, run in bench_runs().items()}
    assert commands["elbo"] == commands["iwae"].replace("iwae", "elbo")
    block = (DOCS / "04-gradients.md").read_text(encoding="utf-8")
    assert commands["iwae"] in " ".join(block.replace("\\\n", " ").split())


def test_the_flops_the_speed_text_counts_are_the_fast_steps_own():
    # Table 1's model, one batch of 20 images, recorded from a real step at k = 1 and at k = 5.
    from tinyvae.config import param_shapes
    from tinyvae.lab.bench import bench
    from tinyvae.lab.training.recipes import IWAE_VAE

    per_image = {}
    for k in (1, 5):
        config = replace(IWAE_VAE.config, k=k, objective="iwae")
        params = init_params(config, np.random.default_rng(0), np.float32)
        plan = bench.matmul_plan(config, params, optim.Adam(), [20], np.float32,
                                 np.random.default_rng(1))
        per_image[k] = bench.plan_flops(plan, [20])[1] / 20
    decoder = (per_image[5] - per_image[1]) / 4  # per row
    encoder = per_image[1] - decoder
    text = section_8()
    assert (f"{encoder:,.0f} FLOPs, without the one that would give the images' gradient), the "
            f"decoder on $K$ rows per image ({decoder:,.0f} FLOPs per row)") in text
    assert f"{per_image[5]:,.0f} FLOPs at $K = 5$ against {per_image[1]:,.0f} at $K = 1$, " \
           f"{per_image[5] / per_image[1]:.2f} times" in text
    n_params = sum(math.prod(shape) for shape in param_shapes(IWAE_VAE.config).values())
    assert f"update of the {n_params:,} parameters" in text
    phases = printed(bench_runs()["iwae"], r"where the time goes .*: matmuls ([\d.]+) s, "
                                           r"optimizer ([\d.]+) s, .*").groups()
    assert f"({phases[1]} s against {phases[0]} s, with" in text
    assert float(phases[1]) > float(phases[0])


def test_the_snr_part_reduced_runs_from_the_command_line(lesson, tmp_path, capsys):
    # Table 1's model trained on 200 images for one epoch, the SNR at k = 1 and 4 from 40 draws:
    # the command's whole path (cache, float64, table, JSON), not the effect (too few draws).
    needs_data()
    args = ["snr", "--train-limit", "200", "--epochs", "1", "--model", "iwae-2", "--snr-ks", "1,4",
            "--batch", "5", "--repeats", "40", "--groups", "4", "--cache-dir", str(tmp_path),
            "--json", str(tmp_path / "s.json")]
    assert lesson.main(args) == 0
    out, res = capsys.readouterr().out, json.loads((tmp_path / "s.json").read_text())
    assert [r["k"] for r in res["rows"]] == [1, 4]
    assert res["settings"]["floor"] == pytest.approx(math.sqrt(2 / (math.pi * 40)))
    assert out.splitlines()[-2:] == lesson.report_snr(res).splitlines()[-2:]
    for row in res["rows"]:
        assert all(row[net]["mean"] > res["settings"]["floor"] for net in ("encoder", "decoder"))


def saved(path: Path, config: VAEConfig, epochs: int) -> Path:
    """A checkpoint as a run leaves it after `epochs` epochs (its history's numbers made up)."""
    from tinyvae.lab.storage.checkpoint import save_checkpoint
    from tinyvae.lab.storage.state_checks import HISTORY_FIELDS

    params = init_params(config, np.random.default_rng(3))
    history = [{**dict.fromkeys(HISTORY_FIELDS, 1.0), "epoch": n} for n in range(1, epochs + 1)]
    return save_checkpoint(path, params=params, config=config, epoch=epochs, history=history,
                           optimizer=optim.Adam(), rng=np.random.default_rng(0))


def test_the_snr_part_measures_a_saved_model_and_says_which(lesson, tmp_path, capsys):
    # A checkpoint of Table 1's input size (a small model, so that it runs in a second) stands
    # for the reproduction's run after a stage; the table names the model it measured.
    needs_data()
    config = VAEConfig(input_dim=784, hidden_dims=(16,), latent_dim=4, activation="tanh",
                       k=5, objective="iwae")
    path = saved(tmp_path / "run.npz", config, 7)
    params = init_params(config, np.random.default_rng(3))
    args = ["snr", "--checkpoint", str(path), "--snr-ks", "1,3", "--batch", "4",
            "--repeats", "8", "--groups", "4", "--json", str(tmp_path / "s.json")]
    assert lesson.main(args) == 0
    res = json.loads((tmp_path / "s.json").read_text())
    assert res["settings"]["model"] == ("784-16-4 tanh from a checkpoint, trained with iwae, "
                                        "k = 5, 7 epochs")
    assert res["settings"]["parameters"] == {
        net: sum(v.size for key, v in params.items() if key.startswith(net))
        for net in ("encoder", "decoder")}
    assert "model 784-16-4 tanh from a checkpoint, trained" in capsys.readouterr().out
    # the same noise and model give the same numbers: the gradients are the core's
    assert lesson.main(args) == 0
    assert json.loads((tmp_path / "s.json").read_text()) == res


def test_the_snr_part_refuses_a_checkpoint_it_cannot_use_in_one_line(lesson, tmp_path, capsys):
    saved(tmp_path / "small.npz", VAEConfig(input_dim=16, hidden_dims=(8,), latent_dim=2), 1)
    (tmp_path / "junk.npz").write_bytes(b"not a checkpoint")
    for argv, words in (
            (["snr", "--checkpoint", str(tmp_path / "small.npz")], "model of 16 inputs"),
            (["snr", "--checkpoint", str(tmp_path / "junk.npz")], "junk.npz"),
            (["snr", "--checkpoint", str(tmp_path / "none.npz")], "none.npz"),
            (["models", "--checkpoint", str(tmp_path / "small.npz")], "only for the snr part"),
            (["snr", "--model", "iwae-5", "--checkpoint", str(tmp_path / "small.npz")],
             "instead of --model")):
        try:
            status = lesson.main(argv + ["--data-dir", str(tmp_path)])
        except SystemExit as exc:  # argparse's refusals
            status = exc.code
        err = capsys.readouterr().err
        assert status == 2 and "Traceback" not in err, argv
        assert words in err.strip().splitlines()[-1] and err.count("error:") == 1, err


# ---- the SNR on a trained model: the reproduction's IWAE k = 5 after stage 5 ----

def test_section_8_pastes_the_snr_of_the_trained_model_and_reads_it_right(lesson):
    from tinyvae.lab.training import recipes

    res = committed("k_samples_snr_trained.json")
    assert pasted_block("python examples/k_samples.py snr --checkpoint") == \
        lesson.report_snr(res).splitlines()
    rows, early = res["rows"], committed("k_samples_snr.json")["rows"]
    # the same batch, draws and k as the 4-pass model's table; the model after stage 5
    assert [r["k"] for r in rows] == [r["k"] for r in early]
    stages = committed("iwae-iwae-k5-dynamic.json")["stages"]
    assert res["settings"]["model"].endswith(f"iwae, k = 5, {stages[5]['last_epoch']} epochs")
    first, last = rows[0], rows[-1]
    for a, b in zip(rows, rows[1:]):  # the pattern holds beyond the standard errors
        for net, sign in (("decoder", 1), ("encoder", -1)):
            assert sign * (b[net]["mean"] - a[net]["mean"]) > \
                3 * math.hypot(a[net]["se"], b[net]["se"]), (net, a["k"], b["k"])
    text = section_8()
    assert (f"the encoder's from {early[0]['encoder']['mean']:.3f} to "
            f"{first['encoder']['mean']:.3f}, the decoder's from {early[0]['decoder']['mean']:.2f} "
            f"to {first['decoder']['mean']:.2f}") in text
    for net in ("encoder", "decoder"):  # "lowered both": by more than their standard errors
        assert early[0][net]["mean"] - first[net]["mean"] > \
            3 * math.hypot(early[0][net]["se"], first[net]["se"])
    assert f"from {first['encoder']['mean']:.3f} to {last['encoder']['mean']:.3f}, with " \
           f"{last['encoder']['share_below_first']:.0%}".replace("%", " %") in text
    assert f"gains, from {first['decoder']['mean']:.2f} to {last['decoder']['mean']:.2f}" in text
    k20 = next(r for r in rows if r["k"] == 20)
    slopes = [math.log(last[net]["mean"] / k20[net]["mean"]) / math.log(last["k"] / 20)
              for net in ("decoder", "encoder")]
    assert f"{slopes[0]:+.2f} and {slopes[1]:+.2f}, are still".replace("-", "−") in text
    gap = stages[5]["iw_bound"] - stages[5]["test_elbo"]
    assert f"lies {gap:.2f} nats above the ELBO" in text
    early_units = rows_by(committed("k_samples.json"))["iwae", 5]["active_units"]
    units = stages[5]["active_units"]
    assert (f"the model after 4 passes had {early_units} active units and this one has {units}"
            f" (docs/06 section 7), the parameters tied to the "
            f"{recipes.IWAE_VAE.config.latent_dim - units} inactive ones") in text
    epochs_early = committed("k_samples.json")["settings"]["epochs"]
    assert "Ninety times more training" in text and \
        round(stages[5]["last_epoch"] / epochs_early) == 91


# ---- after the long runs: docs/04 section 8 against docs/06 section 7's committed summaries ----

LONG_RUNS = (("ELBO", 1, "iwae-vae-dynamic.json"), ("ELBO", 5, "iwae-vae-k5-dynamic.json"),
             ("$\\mathcal L_K$ (IWAE)", 5, "iwae-iwae-k5-dynamic.json"))


def long_runs_section() -> str:
    text = (DOCS / "04-gradients.md").read_text(encoding="utf-8")
    start = text.index("### After the long runs")
    return text[start:text.index("\n### ", start + 1)]


def test_the_long_runs_table_is_the_committed_summaries_after_one_stage():
    section = long_runs_section()
    stage = int(re.search(r"after the same stage (\d+)", " ".join(section.split()), re.I)[1])
    rows = [line for line in section.splitlines()
            if line.startswith("| ELBO |") or line.startswith("| $\\mathcal L_K$")]
    expected = []
    for label, k, name in LONG_RUNS:
        s = committed(name)["stages"][stage]
        expected.append(f"| {label} | {k} | {s['last_epoch']:,} | {s['test_elbo']:.2f} | "
                        f"{s['iw_bound']:.2f} | {s['iw_bound'] - s['test_elbo']:.2f} | "
                        f"{s['active_units']} |")
    assert rows == expected


def test_the_reading_of_the_long_runs_is_their_committed_numbers():
    text = " ".join(long_runs_section().split())
    stage = int(re.search(r"after the same stage (\d+)", text, re.I)[1])
    runs = [committed(name)["stages"] for _, _, name in LONG_RUNS]
    gap = [r[stage]["iw_bound"] - r[stage]["test_elbo"] for r in runs]
    assert (f"gap is {gap[2]:.2f} nats, against {gap[0]:.2f} and {gap[1]:.2f} for the models "
            f"trained with the ELBO") in text
    assert gap[2] > max(gap[0], gap[1])  # "the gap holds"
    early = rows_by(committed("k_samples.json"))
    assert (f"The early difference ({early['elbo', 5]['active_units']} against "
            f"{early['iwae', 5]['active_units']} at $K = 5$ after 4 passes)") in text
    units = [r[stage]["active_units"] for r in runs]
    assert f"is gone: {units[0]}, {units[1]} and {units[2]} active units" in text
    assert max(units) - min(units) <= 2  # "converge"
    # VAE k = 5 minus IWAE k = 5, stage by stage: positive while the VAE leads
    lead = [v["iw_bound"] - i["iw_bound"] for v, i in zip(runs[1][:stage + 1], runs[2])]
    turn = next(s for s, d in enumerate(lead) if d < 0)
    assert all(d > 0 for d in lead[:turn]) and all(d < 0 for d in lead[turn:])
    assert (f"the VAE at $K = 5$ led the IWAE up to stage {turn - 1}, and the IWAE has led since "
            f"stage {turn}, by {-lead[-1]:.2f} nats after stage {stage}") in text
    # after 4 passes (the short runs) the ELBO-trained model led at the same K
    assert early["elbo", 5]["iw_bound"] > early["iwae", 5]["iw_bound"]


def test_the_long_part_prints_and_draws_the_committed_summaries(lesson, tmp_path, capsys):
    assert lesson.main(["long", "--plot", str(tmp_path / "long.png"),
                        "--json", str(tmp_path / "long.json")]) == 0
    out = capsys.readouterr().out.splitlines()
    res = json.loads((tmp_path / "long.json").read_text())
    runs = [committed(name)["stages"] for _, _, name in LONG_RUNS]
    assert [len(r["stages"]) for r in res["runs"]] == [len(r) for r in runs]
    for stage, line in enumerate(line for line in out if re.match(r"^\s+\d+\s+[\d,]+\s", line)):
        cells = line.split()
        assert int(cells[0]) == stage
        for i, run in enumerate(runs):
            if stage < len(run):
                s = run[stage]
                assert cells[2 + i] == f"{-s['iw_bound']:.2f}"
                assert cells[5 + i] == f"{s['iw_bound'] - s['test_elbo']:.2f}"
                assert cells[8 + i] == str(s["active_units"])
            else:
                assert cells[2 + i] == cells[5 + i] == cells[8 + i] == "—"
    assert (tmp_path / "long.png").stat().st_size > 20_000
    assert "python examples/k_samples.py long --plot docs/figures/k_samples_long.png" in \
        (DOCS / "04-gradients.md").read_text(encoding="utf-8")


def test_the_long_part_refuses_a_file_that_is_not_a_summary(lesson, tmp_path, capsys):
    (tmp_path / "bad.json").write_text('{"recipe": "iwae-vae", "stages": []}')
    good = [str(RESULTS / name) for _, _, name in LONG_RUNS]
    for bad in (str(tmp_path / "bad.json"), str(tmp_path / "none.json"), good[2]):
        status = lesson.main(["long", "--summaries", bad, good[1], good[2]])
        err = capsys.readouterr().err
        assert status == 2 and "is not a summary of the iwae-vae run" in err, err
        assert len(err.strip().splitlines()) == 1
