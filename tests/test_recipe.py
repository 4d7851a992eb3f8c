"""The reproduction recipe (tinyvae/lab/training/recipes.py, `python -m tinyvae reproduce`) in
miniature: Burda et al.'s schedule, the evaluations at the end of every stage, and exact resume
mid-stage.

The miniature is the real command on 100 training and 30 test images, stages 0-2 (1 + 3 + 9
epochs of 5 steps), with L_10 instead of L_5000.
"""

from __future__ import annotations

import json
import math
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from tinyvae import evaluate
from tinyvae.commands import reproduce
from tinyvae.config import VAEConfig, init_params, param_shapes
from tinyvae.lab.figures import plots
from tinyvae.lab.storage.checkpoint import load_checkpoint
from tinyvae.lab.training import kept_bound
from tinyvae.lab.training.recipes import (
    IWAE_VAE,
    load_data,
    markdown_rows,
    parse_stages,
    stage_summary,
)
from tinyvae.lab.training.schedule import iwae_stages, schedule_of_stages, scheduled_lr
from tinyvae.speed import iw
from tinyvae.speed.step import FastStep

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "docs" / "06-results.md"
# written by `reproduce iwae-vae --summary`
SUMMARY = ROOT / "docs" / "results" / "iwae-vae-dynamic.json"
TABLE_HEADER = "| stage | passes, to |"
MINI = ["iwae-vae", "--train-limit", "100", "--test-limit", "30", "--iw-samples", "10"]
TIMING = ("seconds", "samples_per_sec", "elapsed", "eval_seconds")


def run(out, stages, *extra):
    return reproduce.main([*MINI, "--stages", stages, "--out", str(out), *extra])


@pytest.fixture
def lr_log(monkeypatch):
    """Record the learning rate of every optimizer step the fast step takes."""
    seen = []
    original = FastStep.step

    def step(self, x, eps, beta=None):
        seen.append(self.optimizer.lr)
        return original(self, x, eps, beta)

    monkeypatch.setattr(FastStep, "step", step)
    return seen


def without_timing(history):
    return [{k: v for k, v in record.items() if k not in TIMING} for record in history]


def test_the_schedule_is_burdas_3_to_the_i_passes_at_a_tenfold_decay_over_seven_stages():
    stages = iwae_stages(8)
    assert [s["epochs"] for s in stages] == [3**i for i in range(8)]
    assert sum(s["epochs"] for s in stages) == 3280 and stages[-1]["last_epoch"] == 3280
    assert stages[0]["lr"] == 1e-3 and math.isclose(stages[7]["lr"], 1e-4, rel_tol=1e-12)
    ratios = [b["lr"] / a["lr"] for a, b in zip(stages, stages[1:])]
    assert np.allclose(ratios, 10 ** (-1 / 7), rtol=1e-12)
    schedule = schedule_of_stages(stages)
    for s in stages:  # every epoch of a stage trains at that stage's rate
        assert (scheduled_lr(schedule, s["first_epoch"]) == scheduled_lr(schedule, s["last_epoch"])
                == s["lr"])


@pytest.mark.slow
def test_the_miniature_trains_each_epoch_at_its_stages_rate_and_evaluates_each_stage(tmp_path,
                                                                                     lr_log):
    assert run(tmp_path, "0-2") == 0
    stages = IWAE_VAE.stages[:3]
    steps_per_epoch = 100 // IWAE_VAE.batch_size
    expected = [s["lr"] for s in stages for _ in range(s["epochs"] * steps_per_epoch)]
    assert lr_log == expected
    history = json.loads((tmp_path / "history.json").read_text())
    assert len(history) == 13
    ends = {s["last_epoch"]: s["stage"] for s in stages}
    for record in history:
        if record["epoch"] in ends:
            assert record["stage"] == ends[record["epoch"]] and record["iw_k"] == 10
            assert 0 <= record["active_units"] <= 50
            # L_k is a tighter bound than the ELBO: above minus the test loss.
            assert -record["test_loss"] < record["iw_bound"] < 0
        else:
            assert "iw_bound" not in record
    summary = json.loads((tmp_path / "stages.json").read_text())
    assert [row["stage"] for row in summary["stages"]] == [0, 1, 2] and not summary["complete"]
    assert [row["iw_bound"] for row in summary["stages"]] == [history[e - 1]["iw_bound"]
                                                              for e in ends]


@pytest.mark.slow
def test_the_recorded_bound_is_the_bound_of_the_saved_model(tmp_path):
    assert run(tmp_path, "0-1") == 0
    ckpt = load_checkpoint(tmp_path / "checkpoint.npz")
    _, x_test, _, _ = load_data(IWAE_VAE, "dynamic", test_limit=30)
    rng = np.random.default_rng([0, 1, 10])  # the stage's own Generator([seed, stage, k])
    readable = evaluate.iw_bound(ckpt.params, x_test, IWAE_VAE.config, rng, k=10)
    assert ckpt.history[-1]["iw_bound"] == pytest.approx(readable, abs=1e-3)


@pytest.mark.slow
def test_a_prefix_then_an_interruption_mid_stage_then_the_same_command_ends_bit_identical(
        tmp_path, monkeypatch):
    straight, pieces = tmp_path / "straight", tmp_path / "pieces"
    assert run(straight, "0-2") == 0
    assert run(pieces, "0-1") == 0  # a prefix of the stages ...
    calls, original = [], FastStep.step

    def interrupted(self, x, eps, beta=None):
        calls.append(1)
        if len(calls) == 12:  # ... then Ctrl-C in epoch 7 (5 steps each), the middle of stage 2
            raise KeyboardInterrupt
        return original(self, x, eps, beta)

    monkeypatch.setattr(FastStep, "step", interrupted)
    assert run(pieces, "0-2") == 130
    assert len(load_checkpoint(pieces / "checkpoint.npz").history) == 6
    monkeypatch.setattr(FastStep, "step", original)
    assert run(pieces, "0-2") == 0  # the same command again resumes
    a, b = load_checkpoint(straight / "checkpoint.npz"), load_checkpoint(pieces / "checkpoint.npz")
    for key in a.params:
        assert np.array_equal(a.params[key], b.params[key]), key
    assert without_timing(a.history) == without_timing(b.history)


@pytest.mark.slow
def test_bad_requests_get_one_line_and_status_2(tmp_path, capsys):
    with pytest.raises(SystemExit) as exc:
        run(tmp_path, "0-8")
    assert exc.value.code == 2 and "--stages" in capsys.readouterr().err
    assert run(tmp_path / "fresh", "2-3") == 2  # stages 0-1 never ran there
    assert "no checkpoint" in capsys.readouterr().err
    assert run(tmp_path / "other", "0") == 0
    capsys.readouterr()
    assert run(tmp_path / "other", "0-1", "--seed", "1") == 2  # another run's checkpoint
    err = capsys.readouterr().err
    assert "is not this run" in err and len(err.strip().splitlines()) == 1
    with pytest.raises(ValueError, match="0 <= A <= B <= 7"):
        parse_stages("5-2", IWAE_VAE)


def has_dataset(name: str) -> bool:
    """Whether the program would find dataset `name`'s files without downloading them."""
    from tinyvae.lab.datasets import data
    try:
        folders = data.default_data_dirs(name)
    except data.DatasetNotFound:
        return False
    files = [f.name for f in data.FILES[name].values()]
    return any(all((d / n).exists() or (d / (n + ".gz")).exists() for n in files) for d in folders)


@pytest.mark.slow
def test_the_fixed_variant_is_larochelle_and_murrays_binary_images_one_flag_away():
    # `--binarization fixed` loads these (the command itself is the same code path as above).
    if not has_dataset("binarized-mnist"):
        pytest.skip("Larochelle & Murray's binarized MNIST is not where the program looks")
    x_train, x_test, binarize, _ = load_data(IWAE_VAE, "fixed")
    assert binarize == "none" and set(np.unique(x_train)) == set(np.unique(x_test)) == {0.0, 1.0}
    assert len(x_train) == IWAE_VAE.variants["fixed"].n_train == 50_000 and len(x_test) == 10_000
    assert IWAE_VAE.variants["fixed"].paper_nll == 88.71


def test_glorot_initialization_has_its_bounds_and_zero_biases():
    config = VAEConfig(hidden_dims=(30, 20), latent_dim=7, activation="tanh")
    params = init_params(config, np.random.default_rng(3), scheme="glorot")
    for key, shape in param_shapes(config).items():
        if len(shape) == 1:
            assert not params[key].any(), key
        else:
            bound = math.sqrt(6.0 / sum(shape))
            assert (np.abs(params[key]).max() <= bound
                    and np.abs(params[key]).max() > 0.9 * bound), key
    with pytest.raises(ValueError, match="scheme"):
        init_params(config, np.random.default_rng(0), scheme="xavier")


def test_the_default_initialization_is_unchanged_by_the_scheme_option():
    config = VAEConfig(hidden_dims=(30,), latent_dim=5)
    default = init_params(config, np.random.default_rng(7))
    rng = np.random.default_rng(7)  # the same draws, written out: ±1/√fan_in, key by key
    shapes = param_shapes(config)
    for key, shape in shapes.items():
        bound = 1.0 / math.sqrt(shapes[key.replace(".b", ".W", 1)][0])
        assert np.array_equal(default[key], rng.uniform(-bound, bound, size=shape)), key


def test_the_fast_bound_of_the_recipe_uses_the_speed_wing():
    # The stage evaluation is speed/iw.py's L_k, the same numbers as the readable one.
    config = IWAE_VAE.config
    params = init_params(config, np.random.default_rng(0), scheme="glorot")
    x = (np.random.default_rng(1).random((6, 784)) < 0.3).astype(np.float64)
    fast = iw.iw_bound(params, x, config, np.random.default_rng(2), k=7)
    readable = evaluate.iw_bound(params, x, config, np.random.default_rng(2), k=7)
    assert fast == pytest.approx(readable, abs=1e-9)


@pytest.mark.slow
def test_summary_and_plot_read_the_run_and_train_nothing(tmp_path, capsys):
    assert run(tmp_path, "0-1") == 0
    capsys.readouterr()
    png, summary = tmp_path / "run.PNG", tmp_path / "s.json"  # any case of .png
    # 0-3 is not trained
    assert run(tmp_path, "0-3", "--plot", str(png), "--summary", str(summary)) == 0
    assert (png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
            and len(json.loads(summary.read_text())["stages"]) == 2)
    out = capsys.readouterr().out
    assert "partial: 2 of 8 stages done; the run has trained 4 of 3,280 epochs" in out
    assert f"wrote {png}: 4 epochs, 2 of 8 stages" in out
    assert len(load_checkpoint(tmp_path / "checkpoint.npz").history) == 4


@pytest.mark.slow
def test_the_commands_figure_shows_the_runs_own_numbers_beside_the_papers(tmp_path, monkeypatch):
    assert run(tmp_path, "0-1") == 0
    drawn, real = [], plots.plot_reproduction
    monkeypatch.setattr(plots, "plot_reproduction",
                        lambda *a, **k: drawn.append(real(*a, **k)) or drawn[-1])
    assert run(tmp_path, "0-1", "--plot", str(tmp_path / "run.png")) == 0
    history = load_checkpoint(tmp_path / "checkpoint.npz").history
    rows = stage_summary(IWAE_VAE, history)
    ends = [s["last_epoch"] for s in IWAE_VAE.stages]
    fig, = drawn
    left, right = fig.axes[:2]
    lines = {line.get_label(): line for line in left.lines}
    nll = next(line for label, line in lines.items() if label.startswith("test NLL"))
    assert (list(nll.get_xdata()) == [1, 4]
            and list(nll.get_ydata()) == [-r["iw_bound"] for r in rows])
    assert list(lines["test −ELBO"].get_xdata()) == [1, 2, 3, 4]
    assert list(lines["test −ELBO"].get_ydata()) == [h["test_loss"] for h in history]
    train = next(line for label, line in lines.items() if label.startswith("train −ELBO"))
    assert list(train.get_ydata()) == [h["train_loss"] for h in history]
    assert (set(lines["paper, after all 8 stages: 86.76"].get_ydata())
            == {IWAE_VAE.variants["dynamic"].paper_nll})
    assert [tuple(line.get_xdata()) for line in left.lines if line.get_label().startswith("_")] == \
        [(e, e) for e in ends]  # a thin line at the end of every stage of the schedule, run or not
    assert left.get_xlim()[1] > ends[-1]  # the whole schedule, so a partial run shows what is left
    ours = next(line for line in right.lines if line.get_label() == "this run")
    assert list(ours.get_ydata()) == [r["active_units"] for r in rows]
    assert (fig.get_suptitle().endswith(": 2 of 8 stages (partial)")
            and "Burda" in fig.get_suptitle())


@pytest.mark.slow
def test_a_run_stopped_in_its_first_epoch_has_nothing_to_plot_and_says_so(tmp_path, capsys,
                                                                           monkeypatch):
    def interrupted(self, x, eps, beta=None):
        raise KeyboardInterrupt
    monkeypatch.setattr(FastStep, "step", interrupted)
    assert run(tmp_path, "0") == 130
    capsys.readouterr()
    assert run(tmp_path, "0", "--plot", str(tmp_path / "run.png")) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "no finished epoch" in err
    assert not (tmp_path / "run.png").exists()
    with pytest.raises(ValueError, match="history is empty"):
        plots.plot_reproduction(None, [], [], stage_ends=[1, 4], paper_nll=86.76,
                                paper_active_units=19, title="")


def test_the_numbers_docs_06_and_the_readme_quote_of_the_run_are_the_committed_summarys():
    summary = json.loads(SUMMARY.read_text(encoding="utf-8"))
    last = summary["stages"][-1]
    nll, units = -last["iw_bound"], last["active_units"]
    section = " ".join(reproduction_section().split())
    readme = " ".join((ROOT / "README.md").read_text(encoding="utf-8").split())
    if summary["complete"]:
        assert f"the test NLL is **{nll:.2f} nats**, {abs(nll - 86.76):.2f} nat" in section
        assert f"with {units} active units where the paper reports 19, and a test ELBO of " \
               f"{last['test_elbo']:.2f}" in section
        assert f"gave {nll:.2f} nats and {units} active units" in readme
    else:
        assert f"After stage {last['stage']} ({last['last_epoch']:,} of the 3,280 passes) " \
               f"the test NLL stands at {nll:.2f} nats" in section
        assert f"the run has {units} active units" in section
        assert "a partial schedule" in readme


def test_the_test_draws_table_in_docs_06_is_the_five_committed_evaluations():
    draws = ROOT / "docs" / "results" / "iwae-vae-test-draws"
    runs = [json.loads((draws / f"seed{s}.json").read_text(encoding="utf-8")) for s in range(5)]
    # each is the same model on its own draw of the test images
    for seed, numbers in enumerate(runs):
        assert f"binarized once, seed {seed})" in numbers["data"]
        assert (numbers["epochs"] == 1764 and numbers["iw_samples"] == 1000
                and numbers["n_test"] == 10_000)
    lines = reproduction_section().splitlines()
    iw, elbo = [r["iw_bound"] for r in runs], [r["test_elbo"] for r in runs]
    assert "| $L_{1000}$ | " + " | ".join(f"{v:.2f}" for v in iw) + " |" in lines
    assert "| test ELBO | " + " | ".join(f"{v:.2f}" for v in elbo) + " |" in lines
    section = " ".join(reproduction_section().split())
    assert (f"lies between {min(iw):.2f} and {max(iw):.2f}, {max(iw) - min(iw):.2f} nat apart"
            in section)
    assert f"the test ELBO between {min(elbo):.2f} and {max(elbo):.2f}" in section


def test_what_docs_06_says_of_the_gap_between_elbo_and_nll_holds_for_the_committed_run():
    # "The distance between the test −ELBO and the NLL ... narrows at every stage": so it does
    # in the committed summary, and the bound is above the ELBO at every stage (L_k >= ELBO).
    section = " ".join(reproduction_section().split())
    assert "narrows at every stage" in section
    rows = json.loads(SUMMARY.read_text(encoding="utf-8"))["stages"]
    gaps = [r["iw_bound"] - r["test_elbo"] for r in rows]
    assert all(gap > 0 for gap in gaps) and all(b < a for a, b in zip(gaps, gaps[1:])), gaps


@pytest.mark.parametrize("where", ["run.txt", "missing/run.png", "folder.png"])
def test_a_plot_path_that_cannot_be_a_png_is_refused_before_anything_is_read(tmp_path, capsys,
                                                                              where):
    (tmp_path / "folder.png").mkdir()
    with pytest.raises(SystemExit) as exc:
        run(tmp_path, "0", "--plot", str(tmp_path / where))  # no checkpoint there: it was not read
    err = capsys.readouterr().err
    assert (exc.value.code == 2
            and "argument --plot: expected a file name ending in .png" in err and where in err)


def reproduction_section() -> str:
    text = RESULTS.read_text(encoding="utf-8")
    start = text.index("## 6. Reproducing Burda et al.")
    end = text.find("\n## ", start + 1)
    return text[start:] if end < 0 else text[start:end]


def test_the_reproduction_table_in_the_docs_is_the_committed_summary_of_the_run():
    summary = json.loads(SUMMARY.read_text(encoding="utf-8"))
    section = reproduction_section()
    lines = section.splitlines()
    first = next(i for i, line in enumerate(lines) if line.startswith(TABLE_HEADER))
    table, after = [], None
    # after the header and its |---| line
    for i, line in enumerate(lines[first + 2:], start=first + 2):
        if not line.startswith("|"):
            # the first line below the table
            after = next((rest for rest in lines[i:] if rest.strip()), "")
            break
        table.append(line)
    pasted = [line for line in table if re.match(r"^\| \d+ \|", line)]
    assert pasted and pasted == markdown_rows(summary["stages"])
    # The summary is of this recipe: its stages are the recipe's, in order, from stage 0.
    for row, stage in zip(summary["stages"], IWAE_VAE.stages):
        assert ((row["stage"], row["last_epoch"], row["lr"])
                == (stage["stage"], stage["last_epoch"], stage["lr"]))
        assert row["iw_k"] == IWAE_VAE.iw_k
    assert summary["paper"]["nll"] == IWAE_VAE.variants["dynamic"].paper_nll == 86.76
    assert summary["complete"] == (len(summary["stages"]) == len(IWAE_VAE.stages))
    if not summary["complete"]:  # a partial schedule is labelled as one, right below the table
        n = len(summary["stages"])
        assert after.startswith(f"(partial: {n} of {len(IWAE_VAE.stages)} stages"), after


@pytest.mark.slow
def test_a_second_invocation_on_a_held_run_folder_is_refused_and_changes_nothing(tmp_path, capsys,
                                                                                 monkeypatch):
    out = tmp_path / "run"
    assert run(out, "0-0") == 0
    real_load_data = reproduce.load_data

    def load_data(*args, **kwargs):
        loaded.append(True)
        return real_load_data(*args, **kwargs)

    loaded = []
    monkeypatch.setattr(reproduce, "load_data", load_data)
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    holder = subprocess.Popen([sys.executable, "-c", textwrap.dedent(f"""
        import time
        from tinyvae.lab.storage.files import hold_folder
        with hold_folder({str(out)!r}):
            print("held", flush=True)
            time.sleep(600)
    """)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        capsys.readouterr()
        assert run(out, "0-1") == 1
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and "in use" in err and str(holder.pid) in err
        assert not loaded  # refused at once, before the data or the model were built
        after = {p.name: p.read_bytes() for p in out.iterdir() if p.name != ".tinyvae.lock"}
        assert after == before
    finally:
        holder.kill()
        holder.wait(timeout=30)
    assert run(out, "0-1") == 0  # free again once the holder is gone


@pytest.mark.slow
def test_a_stop_inside_a_stage_evaluation_keeps_the_epoch_and_its_parts_and_resumes_bit_identical(
        tmp_path, monkeypatch, capsys):
    # Small batches and parts, so that stage 1's L_10 on 30 images runs in four parts:
    # 4 images a batch at k = 10, Z = 50, float32; parts of 8 images.
    monkeypatch.setattr(iw, "CHUNK_BYTES", 10 * 50 * 4 * 4)
    monkeypatch.setattr(kept_bound, "PART_IMAGES", 8)
    straight, pieces = tmp_path / "straight", tmp_path / "pieces"
    assert run(straight, "0-1") == 0
    original, kept = iw.iw_bound_per_example, pieces / "stage1-L10.npz"

    def stopped(*args, **kwargs):
        if kept.exists() and len(np.load(kept)["bound"]) == 16:  # Ctrl-C in stage 1's third part
            raise KeyboardInterrupt
        return original(*args, **kwargs)

    monkeypatch.setattr(iw, "iw_bound_per_example", stopped)
    capsys.readouterr()
    assert run(pieces, "0-1") == 130
    err = capsys.readouterr().err
    assert "the checkpoint of epoch 4 (its evaluation unfinished, resumed first)" in err
    ckpt = load_checkpoint(pieces / "checkpoint.npz")
    # the epoch is kept, unevaluated
    assert len(ckpt.history) == 4 and "iw_bound" not in ckpt.history[-1]
    assert ckpt.extra["evaluation_due"] == 4
    with np.load(kept) as f:
        assert len(f["bound"]) == 16  # two finished parts of 8 images
    assert "no stage" not in capsys.readouterr().out

    monkeypatch.setattr(iw, "iw_bound_per_example", original)
    assert run(pieces, "0-1") == 0  # the same command again: the evaluation goes on from image 16
    out = capsys.readouterr().out
    assert "resuming from" in out and "stage 1 L_10: 16/30 images done before, kept" in out
    a, b = load_checkpoint(straight / "checkpoint.npz"), load_checkpoint(pieces / "checkpoint.npz")
    for key in a.params:
        assert np.array_equal(a.params[key], b.params[key]), key
    assert without_timing(a.history) == without_timing(b.history)  # L_10 and active units included
    assert "evaluation_due" not in b.extra
    with np.load(straight / "stage1-L10.npz") as x, np.load(pieces / "stage1-L10.npz") as y:
        assert np.array_equal(x["bound"], y["bound"])


@pytest.mark.slow
def test_each_stage_s_epoch_line_comes_before_its_evaluation_and_its_time(tmp_path, capsys):
    assert run(tmp_path, "0-1") == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[1].startswith("data: mnist from ") and "BLAS threads" in lines[1]  # the folder
    start = "stage 1 evaluation (epoch 4): L_10 and active units on 30 test images, about "
    at = [i for i, line in enumerate(lines) if line.startswith(start)]
    assert len(at) == 1 and lines[at[0] - 1].startswith("epoch 4/4 ")
    assert lines[at[0] + 1].startswith("stage 1 L_10: ")
    assert "stage 1 done (epoch 4" in lines[at[0] + 2]
    # every epoch's run ETA says what it covers, the stage evaluations still to come included
    assert "run ETA" in lines[3] and "then 2 stage evaluations at about" in lines[3]
    assert "each, as timed on one batch" in lines[3]
    last = lines[at[0] - 1]
    assert "(1 stage evaluation of about" in last and ", as the last one took)" in last


@pytest.mark.slow
def test_summary_of_a_run_with_no_finished_stage_says_so(tmp_path, capsys, monkeypatch):
    original, calls = FastStep.step, []

    def interrupted(self, x, eps, beta=None):
        calls.append(1)
        if len(calls) == 3:  # Ctrl-C in epoch 1: stage 0 is not finished
            raise KeyboardInterrupt
        return original(self, x, eps, beta)

    monkeypatch.setattr(FastStep, "step", interrupted)
    assert run(tmp_path, "0-1") == 130
    capsys.readouterr()
    assert run(tmp_path, "0-1", "--summary", str(tmp_path / "s.json")) == 0
    out = capsys.readouterr().out
    assert "no stage of the run" in out and "is finished yet: 0 of 3,280 epochs trained" in out
    assert "stage  epochs" not in out and "table rows" not in out
    assert json.loads((tmp_path / "s.json").read_text())["stages"] == []


K5_SUMMARIES = {"iwae-iwae-k5": ROOT / "docs" / "results" / "iwae-iwae-k5-dynamic.json",
                "iwae-vae-k5": ROOT / "docs" / "results" / "iwae-vae-k5-dynamic.json"}


def k_samples_section() -> str:
    text = RESULTS.read_text(encoding="utf-8")
    return text[text.index("## 7. Training with k samples"):]


def test_the_k5_recipes_are_the_vae_recipe_with_five_samples_and_their_objective():
    from tinyvae.lab.training.recipes import RECIPES
    for name, objective, nll, units in (("iwae-vae-k5", "elbo", 86.47, 20),
                                        ("iwae-iwae-k5", "iwae", 85.54, 22)):
        recipe = RECIPES[name]
        assert (recipe.config.k, recipe.config.objective) == (5, objective)
        assert recipe.config.to_dict() | {"k": 1, "objective": "elbo"} == IWAE_VAE.config.to_dict()
        assert (recipe.stages, recipe.optimizer, recipe.init, recipe.iw_k) == \
            (IWAE_VAE.stages, IWAE_VAE.optimizer, IWAE_VAE.init, IWAE_VAE.iw_k)
        variant = recipe.variants["dynamic"]
        assert (variant.paper_nll, variant.paper_active_units) == (nll, units)


def test_the_k5_tables_in_docs_06_are_the_committed_summaries():
    section = k_samples_section()
    for name, path in K5_SUMMARIES.items():
        summary = json.loads(path.read_text(encoding="utf-8"))
        assert summary["recipe"] == name
        rows = [line for line in section.split(f"results/{path.name}", 1)[1].splitlines()
                if re.match(r"^\| \d+ \|", line)]
        rows = rows[:len(summary["stages"]) + 1]
        expected = [f"| {s['stage']} | {s['last_epoch']} | {s['lr']:.4g} | {s['test_elbo']:.2f} | "
                    f"{s['iw_bound']:.2f} | **{-s['iw_bound']:.2f}** | {s['active_units']} |"
                    for s in summary["stages"]]
        assert rows[:len(expected)] == expected
        # the headline row: the last finished stage's NLL and active units, and which stage it is
        last = summary["stages"][-1]
        label = "IWAE, k = 5" if name == "iwae-iwae-k5" else "VAE, k = 5"
        headline = next(line for line in section.splitlines() if line.startswith(f"| {label} |"))
        cells = [cell.strip() for cell in headline.strip("|").split("|")]
        assert cells[3:6] == [f"{-last['iw_bound']:.2f}", str(last["active_units"]),
                              f"stage {last['stage']} of 0–7 ({last['last_epoch']:,} passes)"]
        assert (float(cells[1]), int(cells[2])) == (summary["paper"]["nll"],
                                                    summary["paper"]["active_units"])


def test_the_stage_by_stage_table_is_the_three_runs_committed_summaries():
    section = k_samples_section()
    runs = [json.loads(path.read_text(encoding="utf-8"))["stages"]
            for path in (SUMMARY, K5_SUMMARIES["iwae-vae-k5"], K5_SUMMARIES["iwae-iwae-k5"])]
    header = ("| stage | passes, to | NLL: VAE, k = 1 | VAE, k = 5 | IWAE, k = 5 | "
              "units: VAE, k = 1 | VAE, k = 5 | IWAE, k = 5 |")
    lines = section[section.index(header):].splitlines()[2:]
    rows = lines[:next(i for i, line in enumerate(lines) if not line.startswith("|"))]
    # one row per stage that either k = 5 run has finished; "—" where one has not yet
    expected = []
    for stage in range(max(len(runs[1]), len(runs[2]))):
        cells = [f"{-r[stage]['iw_bound']:.2f}" if stage < len(r) else "—" for r in runs]
        cells += [str(r[stage]["active_units"]) if stage < len(r) else "—" for r in runs]
        expected.append(f"| {stage} | {runs[0][stage]['last_epoch']:,} | " + " | ".join(cells)
                        + " |")
    assert rows == expected


def test_the_k5_prose_compares_the_same_stage_of_both_runs():
    section = " ".join(k_samples_section().split())  # one line, single spaces
    k1 = json.loads(SUMMARY.read_text(encoding="utf-8"))["stages"]
    k5 = json.loads(K5_SUMMARIES["iwae-iwae-k5"].read_text(encoding="utf-8"))["stages"]
    stage = len(k5) - 1
    m = re.search(r"stood at ([\d.]+) nats after stage (\d+)\s+\(section 6's table\), "
                  r"the IWAE at k = 5 at ([\d.]+): ([\d.]+) nats? lower after the same "
                  r"([\d,]+) passes", section)
    assert m, "the comparison sentence"
    assert int(m[2]) == stage and float(m[1]) == round(-k1[stage]["iw_bound"], 2)
    assert float(m[3]) == round(-k5[stage]["iw_bound"], 2)
    assert float(m[4]) == round(k5[stage]["iw_bound"] - k1[stage]["iw_bound"], 2)
    assert int(m[5].replace(",", "")) == k5[stage]["last_epoch"]
    leads = re.search(r"Stage by\s+stage the IWAE's lead was ([\d., and]+) nats "
                      r"\(stages 0 to (\d+)\)", section)
    assert int(leads[2]) == stage
    assert [float(v) for v in re.split(r", | and ", leads[1])] == \
        [round(b["iw_bound"] - a["iw_bound"], 2) for a, b in zip(k1, k5)]
    paper = re.search(r"the paper's after all 3,280 passes is ([\d.]+) nats \(([\d.]+)\s+against "
                      r"([\d.]+)\)", section)
    assert (float(paper[2]), float(paper[3])) == (86.76, 85.54)
    assert float(paper[1]) == round(86.76 - 85.54, 1)
    gap = re.search(r"([\d.]+) nats after stage (\d+) against ([\d.]+) for the k = 1 VAE", section)
    assert int(gap[2]) == stage
    assert float(gap[1]) == round(k5[stage]["iw_bound"] - k5[stage]["test_elbo"], 1)
    assert float(gap[3]) == round(k1[stage]["iw_bound"] - k1[stage]["test_elbo"], 1)
    vae = json.loads(K5_SUMMARIES["iwae-vae-k5"].read_text(encoding="utf-8"))["stages"][stage]
    assert f"against {gap[3]} for the k = 1 VAE and " \
           f"{vae['iw_bound'] - vae['test_elbo']:.1f} for the VAE at k = 5" in section


def test_the_same_k_comparison_is_the_two_k5_runs_committed_numbers():
    section = " ".join(k_samples_section().split())
    k1 = json.loads(SUMMARY.read_text(encoding="utf-8"))["stages"]
    vae, iwae = (json.loads(K5_SUMMARIES[name].read_text(encoding="utf-8"))["stages"]
                 for name in ("iwae-vae-k5", "iwae-iwae-k5"))
    stage = min(len(vae), len(iwae)) - 1  # the last stage both have finished
    lead = [v["iw_bound"] - i["iw_bound"] for v, i in zip(vae, iwae)][:stage + 1]
    m = re.search(r"The VAE at k = 5 led after stages ([\d, and]+) \(by ([\d., and]+) nats\), "
                  r"the IWAE after stages ([\d, and]+) \(by ([\d., and]+) nats\)", section)
    assert m, "the same-k sentence"

    def numbers(text):
        return [float(v) for v in re.split(r", | and ", text)]

    vae_stages, iwae_stages = numbers(m[1]), numbers(m[3])
    assert vae_stages + iwae_stages == list(range(stage + 1))
    assert numbers(m[2]) == [round(lead[s], 2) for s in map(int, vae_stages)]
    assert numbers(m[4]) == [round(-lead[s], 2) for s in map(int, iwae_stages)]
    assert all(lead[int(s)] > 0 for s in vae_stages) and all(lead[int(s)] < 0 for s in iwae_stages)
    if "a lead that has grown at every stage since" in section:
        behind = [lead[int(s)] for s in iwae_stages]
        assert all(b < a for a, b in zip(behind, behind[1:]))
    samples = vae[stage]["iw_bound"] - k1[stage]["iw_bound"]
    whole = iwae[stage]["iw_bound"] - k1[stage]["iw_bound"]
    assert (f"after stage {stage} the VAE at k = 5 has an NLL {samples:.2f} nats lower than the "
            f"k = 1 VAE's too, which leaves {whole - samples:.2f} of the IWAE's {whole:.2f} to the "
            f"objective") in section
    assert "Most of the IWAE's lead over the k = 1 VAE so far comes from the five samples" in \
        section and samples > whole / 2
    assert "0.29 nats from the samples (86.76 against 86.47) and 0.93 from the objective " \
           "(86.47 against 85.54)" in section
    assert round(86.76 - 86.47, 2) == 0.29 and round(86.47 - 85.54, 2) == 0.93
