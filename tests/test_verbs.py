"""The commands on a saved run (python -m tinyvae evaluate, sample, reconstruct, figures, explore),
each on the checkpoint of one tiny training run: the numbers and figures the run made, again;
a missing or invalid file or argument is one line and status 2."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import matplotlib
import numpy as np
import pytest
from conftest import TINY, cli
from matplotlib.figure import Figure

import tinyvae
from tinyvae.lab.figures.explorer import MODES, Explorer, dims_by_kl, has_display
from tinyvae.lab.figures.figures import FIGURE_NAMES
from tinyvae.lab.training import run_settings


def verb(name, *args, env):
    return cli(*args, env=env, program=("-m", "tinyvae", name))


def report(stdout: str) -> list[str]:
    """The lines of the final numbers."""
    return [line for line in stdout.splitlines()
            if line.startswith(("test ELBO", "L_", "β-loss", "active units"))
            and "images (" not in line]


def test_evaluate_prints_exactly_the_numbers_the_training_run_printed(tiny_run, data_env):
    out, trained = tiny_run
    result = verb("evaluate", str(out / "checkpoint.npz"), env=data_env)
    assert result.returncode == 0, result.stderr
    assert len(report(trained.stdout)) == 3 and report(result.stdout) == report(trained.stdout)
    assert "data: mnist from" in result.stdout and "evaluating: test ELBO, L_10" in result.stdout


def test_evaluate_takes_another_k_and_writes_json(tiny_run, data_env, tmp_path):
    out, _ = tiny_run
    result = verb("evaluate", str(out / "checkpoint.npz"), "--iw-samples", "0",
                  "--json", str(tmp_path / "m.json"), env=data_env)
    assert result.returncode == 0, result.stderr
    numbers = json.loads((tmp_path / "m.json").read_text())
    metrics = json.loads((out / "metrics.json").read_text())
    assert numbers["iw_bound"] is None and "L_" not in "".join(report(result.stdout))
    for key in ("test_elbo", "test_loss", "test_recon", "test_kl", "active_units", "kl_per_dim"):
        assert numbers[key] == metrics[key], key


def test_evaluate_on_another_draw_of_the_test_images(tiny_run, data_env, tmp_path):
    out, trained = tiny_run
    own = verb("evaluate", str(out / "checkpoint.npz"), "--test-binarization-seed", "0",
               env=data_env)
    assert own.returncode == 0, own.stderr
    assert report(own.stdout) == report(trained.stdout)  # seed 0 is the run's own draw
    other = verb("evaluate", str(out / "checkpoint.npz"), "--test-binarization-seed", "1",
                 "--iw-samples", "0", "--json", str(tmp_path / "m1.json"), env=data_env)
    assert other.returncode == 0, other.stderr
    assert "binarized once, seed 1" in other.stdout and "binarized once, seed 0" in own.stdout
    numbers = json.loads((tmp_path / "m1.json").read_text())
    metrics = json.loads((out / "metrics.json").read_text())
    # other bits, other ELBO
    assert "seed 1" in numbers["data"] and numbers["test_elbo"] != metrics["test_elbo"]
    x0 = run_settings.load_run_data(run_settings.complete({"test_limit": 500}),
                                    test_only=True).x_test
    x1 = run_settings.load_run_data(run_settings.complete({"test_limit": 500}),
                                    test_only=True, test_seed=1).x_test
    gray = run_settings.load_run_data(
        run_settings.complete({"likelihood": "gaussian", "test_limit": 500}), test_only=True).x_test
    assert set(np.unique(x1)) == {0.0, 1.0} and not np.array_equal(x0, x1)
    # Another draw of the same images: where the intensity is 0 or 1 every draw agrees with it.
    for x in (x0, x1):
        assert np.all(x[gray == 0] == 0) and np.all(x[gray == 1] == 1)


def test_a_grayscale_run_has_no_other_test_draw_and_a_data_error_stays_a_data_error(
        tiny_run, data_env, tmp_path):
    gray = tmp_path / "gray"
    trained = cli(*TINY, "--binarize", "none", "--iw-samples", "0", "--out", str(gray),
                  env=data_env)
    assert trained.returncode == 0, trained.stderr
    refused = verb("evaluate", str(gray / "checkpoint.npz"), "--test-binarization-seed", "1",
                   env=data_env)
    assert refused.returncode == 2 and len(refused.stderr.strip().splitlines()) == 1
    assert "--test-binarization-seed" in refused.stderr and "grayscale" in refused.stderr
    empty = tmp_path / "empty-data"
    empty.mkdir()
    out, _ = tiny_run
    # missing data: status 1, named as missing data
    for extra in ([], ["--test-binarization-seed", "1"]):
        missing = verb("evaluate", str(out / "checkpoint.npz"), "--data-dir", str(empty), *extra,
                       env=data_env)
        assert missing.returncode == 1 and "--test-binarization-seed" not in missing.stderr, \
            missing.stderr


@pytest.mark.parametrize("settings, what",
                         [({"likelihood": "gaussian"}, "grayscale"),
                          ({"binarize": "fixed"}, "the published binarized-mnist")])
def test_a_test_set_that_is_not_a_seeded_draw_has_no_other_draw(settings, what):
    with pytest.raises(ValueError, match=f"it is {what}"):
        run_settings.load_run_data(run_settings.complete(settings), test_only=True, test_seed=1)


def test_the_model_from_python_gives_the_same_numbers(tiny_run):
    out, _ = tiny_run
    model = tinyvae.load(out / "checkpoint.npz")
    metrics = json.loads((out / "metrics.json").read_text())
    results = model.evaluate()
    assert results["elbo"] == metrics["test_elbo"] and results["iw_bound"] == metrics["iw_bound"]
    assert model.epochs == 1 and model.settings["test_limit"] == 500 and len(model.history) == 1
    x = model.test_images()
    # binarized, as the run scored it
    assert x.shape == (500, 784) and set(np.unique(x)) == {0.0, 1.0}


def test_sample_writes_a_grid_and_the_draws_of_model_sample(tiny_run, data_env, tmp_path):
    out, _ = tiny_run
    result = verb("sample", str(out / "checkpoint.npz"), "--n", "12", "--seed", "3",
                  "--png", str(tmp_path / "s.png"), "--npz", str(tmp_path / "s.npz"), env=data_env)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "s.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with np.load(tmp_path / "s.npz", allow_pickle=False) as npz:
        images, z = npz["images"], npz["z"]
    model = tinyvae.load(out / "checkpoint.npz")
    np.testing.assert_array_equal(images, model.sample(12, seed=3))
    np.testing.assert_array_equal(model.decode(z), images)
    default = verb("sample", str(out / "checkpoint.npz"), "--n", "4", env=data_env)
    assert default.returncode == 0 and (out / "samples-seed0.png").is_file()
    (out / "samples-seed0.png").unlink()  # the shared run's folder stays as the run wrote it


def test_reconstruct_uses_the_run_s_test_images(tiny_run, data_env, tmp_path):
    out, _ = tiny_run
    result = verb("reconstruct", str(out / "checkpoint.npz"), "--start", "5", "--n", "3",
                  "--seed", "2", "--npz", str(tmp_path / "r.npz"), "--png", str(tmp_path / "r.png"),
                  env=data_env)
    assert result.returncode == 0, result.stderr
    model = tinyvae.load(out / "checkpoint.npz")
    with np.load(tmp_path / "r.npz", allow_pickle=False) as npz:
        np.testing.assert_array_equal(npz["index"], [5, 6, 7])
        np.testing.assert_array_equal(npz["x"], model.test_images()[5:8])
        np.testing.assert_array_equal(npz["x_rec"], model.reconstruct(npz["x"], seed=2))
    assert (tmp_path / "r.png").stat().st_size > 1000


def test_outputs_without_a_file_name_go_beside_the_checkpoint_not_the_cwd(tiny_run, data_env,
                                                                         tmp_path):
    out, _ = tiny_run
    run = tmp_path / "run"  # a copy: the shared run's folder stays as the run wrote it
    run.mkdir()
    (run / "checkpoint.npz").write_bytes((out / "checkpoint.npz").read_bytes())
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    for name, args, written in [("sample", ["--npz"], ["samples-seed0.npz"]),
                                ("reconstruct", ["--n", "3", "--npz"],
                                 ["reconstructions-0-2.npz"]),
                                ("figures", [], ["reconstructions.png", "samples.png"])]:
        command = [sys.executable, "-m", "tinyvae", name, str(run / "checkpoint.npz"), *args]
        result = subprocess.run(command, cwd=cwd, env=data_env, capture_output=True, text=True,
                                timeout=300)
        assert result.returncode == 0, result.stderr
        assert all((run / w).is_file() for w in written) and f"wrote {run}/" in result.stdout
    assert list(cwd.iterdir()) == []


def test_figures_redraws_the_run_s_figures_pixel_for_pixel(tiny_run, data_env, tmp_path):
    out, _ = tiny_run
    result = verb("figures", str(out / "checkpoint.npz"), "--out", str(tmp_path), env=data_env)
    assert result.returncode == 0, result.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(FIGURE_NAMES)
    for name in FIGURE_NAMES:
        assert (tmp_path / name).read_bytes() == (out / name).read_bytes(), name


def test_explore_without_a_display_says_so_and_writes_a_traversal(tiny_run, data_env, tmp_path):
    out, _ = tiny_run
    result = verb("explore", str(out / "checkpoint.npz"), "--png", str(tmp_path / "t.png"),
                  env=data_env)
    assert result.returncode == 0, result.stderr
    assert "no display" in result.stdout and "'Agg'" in result.stdout
    assert str(tmp_path / "t.png") in result.stdout
    assert (tmp_path / "t.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_explore_asked_for_a_window_where_none_can_open_says_so_and_fails(tiny_run, data_env,
                                                                           tmp_path):
    out, _ = tiny_run
    env = {key: value for key, value in data_env.items()
           if key not in ("DISPLAY", "WAYLAND_DISPLAY")}
    result = verb("explore", str(out / "checkpoint.npz"), env={**env, "MPLBACKEND": "TkAgg"})
    assert result.returncode == 1 and result.stdout == "" and "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines() == [
        "python -m tinyvae explore: error: matplotlib's backend 'TkAgg' needs a display to open a "
        "window on (DISPLAY is not set); run it on a desktop (or under xvfb-run), or leave "
        "MPLBACKEND unset to write what the sliders would show as a PNG"]
    assert not (out / "explore-image0.png").exists()


@pytest.mark.parametrize("name", ["evaluate", "sample", "reconstruct", "figures", "explore"])
def test_a_missing_or_invalid_checkpoint_is_one_line_and_status_2(name, data_env, tmp_path):
    missing = verb(name, str(tmp_path / "nope.npz"), env=data_env)
    assert missing.returncode == 2 and "Traceback" not in missing.stderr
    assert missing.stderr.strip().splitlines() == [
        f"python -m tinyvae {name}: error: CKPT {tmp_path / 'nope.npz'}: "
        "no such file (give a run's checkpoint.npz or a model file)"]
    bad = tmp_path / "bad.npz"
    bad.write_bytes(b"not a zip at all")
    invalid = verb(name, str(bad), env=data_env)
    assert invalid.returncode == 2 and len(invalid.stderr.strip().splitlines()) == 1
    assert str(bad) in invalid.stderr


@pytest.mark.parametrize("args, named", [
    (["--png", "out.jpg"], "--png out.jpg: expected a file name ending in .png"),
    (["--npz", "/nonexistent/s.npz"], "the folder /nonexistent does not exist"),
    (["--n", "0"], "--n"),
])
def test_bad_sample_arguments_are_refused_with_status_2(tiny_run, data_env, args, named):
    out, _ = tiny_run
    result = verb("sample", str(out / "checkpoint.npz"), *args, env=data_env)
    assert result.returncode == 2 and named in result.stderr and "Traceback" not in result.stderr


def test_a_missing_data_dir_is_refused_by_the_verbs(tiny_run, data_env, tmp_path):
    out, _ = tiny_run
    result = verb("evaluate", str(out / "checkpoint.npz"), "--data-dir", str(tmp_path / "none"),
                  env=data_env)
    assert result.returncode == 2
    assert f"--data-dir {tmp_path / 'none'} does not exist" in result.stderr


def test_every_verb_s_help_shows_its_defaults(data_env):
    result = verb("sample", "--help", env=data_env)
    assert result.returncode == 0
    assert "(default: 64)" in result.stdout and "(default: 0)" in result.stdout


# ---- the explorer, headless: the widgets moved as a hand would move them

CONFIG = tinyvae.VAEConfig(input_dim=16, hidden_dims=(8,), latent_dim=5)


@pytest.fixture
def explorer():
    assert matplotlib.get_backend().lower() == "agg" and not has_display()
    rng = np.random.default_rng(0)
    model = tinyvae.Model(CONFIG, tinyvae.init_params(CONFIG, rng))
    images = (rng.random((6, 16)) < 0.5).astype(np.float64)
    return Explorer(model, images, n_sliders=3, index=2, other=4, figure=Figure())


def test_the_sliders_are_the_dims_with_the_largest_kl(explorer):
    assert explorer.dims == dims_by_kl(explorer.kl, 3) and len(explorer.sliders) == 3
    assert np.all(np.diff(explorer.kl[explorer.dims]) <= 0)
    mu = explorer.model.encode(explorer.images[2])[0]
    np.testing.assert_allclose([s.val for s in explorer.sliders], mu[explorer.dims], rtol=1e-6)


def test_moving_a_slider_shows_what_the_decoder_makes_of_that_z(explorer):
    before = explorer.shown().copy()
    explorer.sliders[0].set_val(2.5)
    explorer.sliders[2].set_val(-1.0)
    z = explorer.model.encode(explorer.images[2])[0].astype(np.float64)
    z[explorer.dims[0]], z[explorer.dims[2]] = 2.5, -1.0
    expected = np.clip(explorer.model.decode(z), 0, 1).reshape(4, 4)
    np.testing.assert_allclose(explorer.shown(), expected, rtol=1e-12)
    assert not np.allclose(explorer.shown(), before)
    explorer.reset_button.eventson = True
    explorer.choose(explorer.a, explorer.b)  # what the reset button does
    np.testing.assert_allclose(explorer.shown(), before, rtol=1e-12)


def test_the_interpolation_mode_walks_the_line_between_two_codes(explorer):
    explorer.radio.set_active(1)
    assert explorer.mode == MODES[1]
    mu = explorer.model.encode(explorer.images)[0].astype(np.float64)
    for t in (0.0, 0.3, 1.0):
        explorer.t.set_val(t)
        z = (1 - t) * mu[2] + t * mu[4]
        np.testing.assert_allclose(explorer.shown(),
                                   np.clip(explorer.model.decode(z), 0, 1).reshape(4, 4),
                                   rtol=1e-12)
        np.testing.assert_allclose([s.val for s in explorer.sliders],
                                   np.clip(z[explorer.dims], -3, 3), rtol=1e-12)
    explorer.choose(4, 5)  # the "next image" button
    np.testing.assert_allclose(explorer.shown(),
                               np.clip(explorer.model.decode(mu[4]), 0, 1).reshape(4, 4),
                               rtol=1e-12)


def test_the_run_protocol_of_a_model_file_is_the_default_for_its_likelihood():
    gaussian = tinyvae.VAEConfig(input_dim=16, hidden_dims=(8,), latent_dim=2,
                                 likelihood="gaussian", gaussian_std=0.2)
    settings = run_settings.complete(None, gaussian)
    assert settings["binarize"] == "none" and settings["gaussian_std"] == 0.2
    assert settings["iw_samples"] == 1000
    assert run_settings.complete(None, CONFIG)["binarize"] == "dynamic"
    assert run_settings.complete({"dataset": "binarized-mnist"})["binarize"] == "fixed"


def test_the_readme_pastes_the_report_as_the_commands_print_it():
    """Every report pasted into the README is what report_lines prints for its own numbers."""
    text = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")
    fenced = text.split("\n```")[1::2]  # the insides of the fenced blocks, each after its ``` line
    blocks = [block for block in fenced if "test ELBO    " in block]
    assert len(blocks) >= 2  # the training run's and the evaluate command's
    for block in blocks:
        lines = report(block)
        number = r"(-?[\d.]+)"
        elbo, recon, kl = map(float, re.match(
            rf"test ELBO +{number} .*recon {number} \+ KL {number}", lines[0]).groups())
        k, bound = re.match(rf"L_(\d+) +{number} nats", lines[1]).groups()
        active, latent = map(int, re.match(r"active units (\d+) of (\d+)", lines[2]).groups())
        results = {"elbo": elbo, "loss": recon + kl, "recon": recon, "kl": kl,
                   "iw_bound": float(bound), "iw_samples": int(k), "active_units": active}
        config = tinyvae.VAEConfig(latent_dim=latent)
        assert run_settings.report_lines(results, config, run_settings.complete({})) == lines
