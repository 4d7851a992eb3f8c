"""What a checkpoint says about its run is input, and a model's numbers are numbers.

The settings a checkpoint keeps (extra["cli"], a reproduction's extra["recipe"]) are checked
with the checks the command line uses, in one place (run_settings.check, recipes.check_identity),
before evaluate, figures, explore, sample, reconstruct or train --resume use them; train
--resume refuses before it copies anything. A reproduction's checkpoint is scored as its stage
evaluation scored it. A model of another input size, a model whose weights overflow, and a
model too large for the machine are each one line and an exit status, never a traceback.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
from conftest import cli

import tinyvae
from tinyvae.config import VAEConfig, init_params
from tinyvae.lab.storage.checkpoint import CheckpointError, save_checkpoint
from tinyvae.optim import make_optimizer

CONFIG = VAEConfig(input_dim=784, hidden_dims=(5,), latent_dim=2)
SETTINGS = {"dataset": "mnist", "binarize": "dynamic", "epochs": 1, "batch_size": 128, "lr": 1e-3,
            "optimizer": "adam", "hidden": [5], "latent_dim": 2, "activation": "relu",
            "likelihood": "bernoulli", "gaussian_std": None, "beta": 1.0, "warmup_epochs": 0.0,
            "seed": 0, "dtype": "float32", "train_limit": None, "test_limit": 50, "iw_samples": 5,
            "step": "fast", "k": 1, "objective": "elbo"}
# The values that tracebacks, wrong numbers, ignored settings or a hang came from, and more of
# each kind: (setting, value); None as the setting replaces the whole settings object.
BAD = [("test_limit", "abc"), ("test_limit", 0), ("test_limit", -5), ("test_limit", 2.5),
       ("seed", -1), ("seed", "x"), ("seed", 2**64), ("dataset", "../../../../etc"),
       ("dataset", None),
       ("iw_samples", "x"), ("iw_samples", 2.5), ("iw_samples", True), ("iw_samples", 10**11),
       ("binarize", "weird"), ("binarize", 7),
       ("dtype", "int8"), ("dtype", "float64"), ("gaussian_std", -1), ("likelihood", "gaussian"),
       ("hidden", []), ("hidden", "5"), ("latent_dim", 3), ("epochs", -1), ("lr", 0), ("beta", 0.5),
       ("activation", "sigmoid"), ("no_such_setting", 1), (None, [1, 2]), (None, "mnist")]


def checkpoint(path: Path, *, extra=None, params=None, config=CONFIG) -> Path:
    rng = np.random.default_rng(0)
    params = init_params(config, rng, np.float32) if params is None else params
    path.parent.mkdir(parents=True, exist_ok=True)
    save_checkpoint(path, params=params, optimizer=make_optimizer("adam", 1e-3), config=config,
                    epoch=0, history=[], rng=rng,
                    extra={"cli": dict(SETTINGS)} if extra is None else extra)
    return path


def with_bad(settings: dict, key, value):
    return value if key is None else {**settings, key: value}


def one_line(result, status: int) -> str:
    assert result.returncode == status, (result.returncode, result.stdout[-2000:], result.stderr)
    assert "Traceback" not in result.stderr, result.stderr
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    return result.stderr.strip()


def verb(name: str, *args, env):
    return cli(*args, env=env, program=("-m", "tinyvae", name))


# ---- a checkpoint's settings are checked as the command line checks them ----


@pytest.mark.parametrize("key, value", BAD, ids=lambda v: repr(v)[:20])
def test_a_setting_the_command_line_would_refuse_makes_the_checkpoint_invalid(tmp_path, key, value):
    path = checkpoint(tmp_path / "checkpoint.npz", extra={"cli": with_bad(SETTINGS, key, value)})
    with pytest.raises(CheckpointError, match="its run settings: ") as info:
        tinyvae.load(path)
    assert str(path) in str(info.value) and (key is None or key in str(info.value))


def test_the_settings_of_older_checkpoints_still_load(tmp_path):
    """Checkpoints of older versions lack later settings (k, objective, step, ...): the defaults."""
    older = {key: SETTINGS[key] for key in ("dataset", "hidden", "latent_dim", "seed",
                                            "test_limit")}
    model = tinyvae.load(checkpoint(tmp_path / "c.npz", extra={"cli": older}))
    assert model.run_protocol()["iw_samples"] == 1000 and model.run_protocol()["test_limit"] == 50


@pytest.mark.parametrize("key, value", [("test_limit", -5), ("binarize", "weird"),
                                        ("iw_samples", 10**11), (None, "mnist")])
@pytest.mark.parametrize("name", ["evaluate", "figures"])
def test_evaluate_and_figures_refuse_such_a_checkpoint_in_one_line(tmp_path, data_env, key, value,
                                                                    name):
    path = checkpoint(tmp_path / "checkpoint.npz", extra={"cli": with_bad(SETTINGS, key, value)})
    assert "its run settings" in one_line(verb(name, str(path), env=data_env), 2)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["checkpoint.npz"]


@pytest.mark.parametrize("key, value", [("test_limit", "abc"), ("seed", -1), ("iw_samples", 2.5),
                                        ("dataset", None), (None, [1])])
def test_train_resume_refuses_such_a_checkpoint_before_it_copies_anything(tmp_path, key, value,
                                                                          capsys):
    from tinyvae.commands import train
    path = checkpoint(tmp_path / "old" / "checkpoint.npz",
                      extra={"cli": with_bad(SETTINGS, key, value)})
    assert train.main(["--resume", str(path), "--out", str(tmp_path / "new"), "--epochs", "2"]) == 2
    err = capsys.readouterr().err
    assert "its run settings" in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "new").exists()


# ---- every checkpoint says how to score it: a reproduction's too ----


def test_evaluate_scores_a_reproduction_as_its_stage_evaluation_did(tmp_path, data_env):
    out = tmp_path / "rep"
    run = verb("reproduce", "iwae-vae", "--stages", "0-1", "--train-limit", "100", "--test-limit",
               "40", "--iw-samples", "30", "--out", str(out), env=data_env)
    assert run.returncode == 0, run.stderr
    record = json.loads((out / "history.json").read_text())[-1]  # stage 1's end: its evaluation
    scored = verb("evaluate", str(out / "checkpoint.npz"), "--json", str(tmp_path / "m.json"),
                  env=data_env)
    assert scored.returncode == 0, scored.stderr
    assert ": 40 test images" in scored.stdout and "stage 1 evaluation" in scored.stdout
    numbers = json.loads((tmp_path / "m.json").read_text())
    # The same noise and images; the run's OpenBLAS had one thread, this one its default, which
    # may round a product differently: the same numbers to far below what is printed.
    assert numbers["iw_samples"] == 30
    assert numbers["iw_bound"] == pytest.approx(record["iw_bound"], rel=1e-7)
    assert numbers["test_loss"] == pytest.approx(record["test_loss"], rel=1e-7)
    assert numbers["active_units"] == record["active_units"]
    other = verb("evaluate", str(out / "checkpoint.npz"), "--iw-samples", "7", env=data_env)
    assert "but for k = 7 (--iw-samples; the run's is 30)" in other.stdout  # told so, and says so


def test_the_scoring_of_a_reproduction_checkpoint_follows_its_stages():
    from tinyvae.lab.training.recipes import scoring_protocol
    identity = {"recipe": "iwae-iwae-k5", "binarization": "fixed", "seed": 3, "train_limit": None,
                "test_limit": 1000, "iw_k": 5000}  # as today's checkpoints keep it: no step
    for epochs, stage in ((0, 0), (1, 0), (2, 1), (4, 1), (5, 2), (3280, 7)):
        protocol = scoring_protocol(identity, epochs)
        assert protocol["iw_seed"] == [3, stage, 5000] and protocol["test_limit"] == 1000
        assert protocol["dataset"] == "binarized-mnist" and protocol["iw_samples"] == 5000
        assert protocol["step"] == "fast" and protocol["k"] == 5 and protocol["objective"] == "iwae"


# ---- a model of another input size, weights that overflow, a model too large ----


@pytest.fixture(scope="module")
def other_sizes(tmp_path_factory):
    folder = tmp_path_factory.mktemp("sizes")
    for D in (5, 1024):
        config = VAEConfig(input_dim=D, hidden_dims=(4,), latent_dim=2)
        params = init_params(config, np.random.default_rng(0))
        tinyvae.save_model(folder / f"d{D}.npz", config, params)
    return folder


@pytest.mark.parametrize("D", [5, 1024])
@pytest.mark.parametrize("name", ["evaluate", "reconstruct", "figures", "explore"])
def test_a_model_of_another_input_size_is_one_line_and_status_2(other_sizes, data_env, tmp_path, D,
                                                                 name):
    extra = ["--png", str(tmp_path / "e.png")] if name == "explore" else []
    message = one_line(verb(name, str(other_sizes / f"d{D}.npz"), *extra, env=data_env), 2)
    assert f"takes images of {D} pixels" in message and "784" in message


def test_train_resume_refuses_a_model_of_another_input_size(tmp_path, capsys):
    from tinyvae.commands import train
    small = VAEConfig(input_dim=5, hidden_dims=(5,), latent_dim=2)
    path = checkpoint(tmp_path / "old" / "checkpoint.npz", config=small)
    assert train.main(["--resume", str(path), "--out", str(tmp_path / "new"), "--epochs", "2"]) == 2
    assert "takes images of 5 pixels" in capsys.readouterr().err
    assert not (tmp_path / "new").exists()


def test_sample_draws_any_square_model_and_refuses_to_draw_another(other_sizes, data_env, tmp_path):
    assert verb("sample", str(other_sizes / "d1024.npz"), "--png", str(tmp_path / "s.png"),
                env=data_env).returncode == 0
    square = verb("sample", str(other_sizes / "d5.npz"), "--png", str(tmp_path / "t.png"),
                  env=data_env)
    assert "not a square" in one_line(square, 2)
    assert verb("sample", str(other_sizes / "d5.npz"), "--npz", str(tmp_path / "s.npz"),
                env=data_env).returncode == 0


@pytest.fixture(scope="module")
def overflowing(tmp_path_factory):
    """A valid checkpoint whose encoder log-variance bias is 1e30: finite, and every σ overflows."""
    path = tmp_path_factory.mktemp("overflow") / "checkpoint.npz"
    params = init_params(CONFIG, np.random.default_rng(0), np.float32)
    params["encoder.b_logvar"][...] = 1e30
    return checkpoint(path, params=params)


@pytest.mark.parametrize("name, args", [("evaluate", []), ("evaluate", ["--json", "{tmp}/m.json"]),
                                        ("reconstruct", ["--png", "{tmp}/r.png"]),
                                        ("figures", ["--out", "{tmp}"]),
                                        ("explore", ["--png", "{tmp}/e.png"])])
def test_weights_that_overflow_are_an_error_never_nan_and_exit_0(overflowing, data_env, tmp_path,
                                                                 name, args):
    args = [a.replace("{tmp}", str(tmp_path)) for a in args]
    message = one_line(verb(name, str(overflowing), *args, env=data_env), 1)
    assert "NaN or infinite" in message
    assert list(tmp_path.iterdir()) == []  # nothing drawn or written from NaN


@pytest.mark.parametrize("argv", [["train", "--hidden", "99999999"],
                                  ["train", "--latent-dim", "2000000000"],
                                  ["train", "--hidden", "200000", "--k", "1000000"],
                                  ["bench", "--random-data", "--train-images", "2147483647"],
                                  ["bench", "--random-data", "--hidden", "99999999"],
                                  ["gradcheck", "--input-dim", "2147483647"]])
def test_a_model_or_buffer_too_large_for_the_machine_is_a_usage_error_before_any_work(
        argv, tmp_path, capsys, monkeypatch):
    from tinyvae.__main__ import main
    monkeypatch.chdir(tmp_path)
    try:
        status = main(argv)
    except SystemExit as exc:  # argparse's own way (gradcheck)
        status = exc.code
    err = capsys.readouterr().err
    assert status == 2 and re.search(r"needs at least [\d,.]+ GiB of memory", err), err
    assert list(tmp_path.iterdir()) == []  # not even the output folder


def test_sample_refuses_more_images_than_memory_holds(overflowing, tmp_path, capsys):
    from tinyvae.commands import sample
    argv = [str(overflowing), "--n", "2147483647", "--npz", str(tmp_path / "s.npz")]
    assert sample.main(argv) == 2
    assert "GiB of memory" in capsys.readouterr().err and list(tmp_path.iterdir()) == []
