"""examples/mnist.py end to end: a tiny run writes every file; bad flags end with an argparse
message and status 2; unusable output folders, data and checkpoints end with one line on stderr."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tinyvae.lab.checkpoint import load_checkpoint

REPO = Path(__file__).resolve().parents[1]
EXAMPLE = REPO / "examples" / "mnist.py"
TINY = ["--epochs", "1", "--hidden", "16", "--latent-dim", "2", "--iw-samples", "10",
        "--train-limit", "3000", "--test-limit", "500"]
FIGURES = ["reconstructions.png", "samples.png", "loss_curves.png", "latent_scatter.png", "manifold.png",
           "interpolation.png", "traversal.png"]


def load_example():
    spec = importlib.util.spec_from_file_location("mnist_example", EXAMPLE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def data_env():
    if not os.environ.get("TINYVAE_DATA") or not Path(os.environ["TINYVAE_DATA"], "mnist").is_dir():
        pytest.skip("TINYVAE_DATA is not set to a folder holding mnist/ (the real MNIST files)")
    return {**os.environ, "MPLBACKEND": "Agg"}


def cli(*args, env, timeout=300):
    return subprocess.run([sys.executable, str(EXAMPLE), *args], env=env, capture_output=True, text=True,
                          timeout=timeout)


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory, data_env):
    out = tmp_path_factory.mktemp("run")
    result = cli(*TINY, "--out", str(out), env=data_env)
    assert result.returncode == 0, result.stderr
    return out, result


def test_a_tiny_run_writes_every_file(tiny_run):
    out, _ = tiny_run
    for name in ["checkpoint.npz", "history.json", "history.csv", "metrics.json", *FIGURES]:
        assert (out / name).is_file() and (out / name).stat().st_size > 0, name
    for name in FIGURES:
        assert (out / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", name
    assert not list(out.glob(".*"))  # no temporary files left behind


def test_metrics_hold_the_numbers_it_printed(tiny_run):
    out, result = tiny_run
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["iw_samples"] == 10 and metrics["config"]["latent_dim"] == 2
    assert metrics["test_elbo"] == -metrics["test_loss"]
    # L_k is a tighter bound than the ELBO on average (a log-likelihood, so a negative number).
    assert metrics["test_elbo"] - 1.0 < metrics["iw_bound"] < 0
    assert 0 <= metrics["active_units"] <= 2 and len(metrics["kl_per_dim"]) == 2
    assert metrics["settings"]["hidden"] == [16] and metrics["n_train"] == 3000
    assert len(metrics["timing"]["epoch_seconds"]) == 1
    history = json.loads((out / "history.json").read_text())
    assert metrics["test_loss"] == history[-1]["test_loss"]  # the same ε as the last epoch's
    assert f"{metrics['test_elbo']:.2f}" in result.stdout
    assert f"{metrics['iw_bound']:.2f}" in result.stdout and "L_10" in result.stdout
    assert f"active units {metrics['active_units']} of 2" in result.stdout
    assert load_checkpoint(out / "checkpoint.npz").epoch == 1


def test_resume_continues_with_the_checkpoint_settings(tiny_run, data_env, tmp_path):
    out, _ = tiny_run
    copy = tmp_path / "continued"
    copy.mkdir()
    (copy / "checkpoint.npz").write_bytes((out / "checkpoint.npz").read_bytes())
    result = cli("--resume", str(copy / "checkpoint.npz"), "--epochs", "2", "--iw-samples", "0", env=data_env)
    assert result.returncode == 0, result.stderr
    checkpoint = load_checkpoint(copy / "checkpoint.npz")
    assert checkpoint.epoch == 2 and checkpoint.config.hidden_dims == (16,)
    assert "resuming from" in result.stdout and (copy / "samples.png").is_file()
    refused = cli("--resume", str(copy / "checkpoint.npz"), "--latent-dim", "5", env=data_env)
    assert refused.returncode == 1 and "Traceback" not in refused.stderr
    assert "--latent-dim 5" in refused.stderr and "checkpoint has 2" in refused.stderr


BAD_FLAGS = [
    (["--epochs", "-1"], "--epochs"),
    (["--latent-dim", "0"], "--latent-dim"),
    (["--dataset", "cifar10"], "--dataset"),
    (["--hidden", "400,abc"], "--hidden"),
    (["--hidden", "400,0"], "--hidden"),
    (["--hidden", ""], "--hidden"),
    (["--batch-size", "1.5"], "--batch-size"),
    (["--lr", "0"], "--lr"),
    (["--lr", "nan"], "--lr"),
    (["--beta", "-0.5"], "--beta"),
    (["--warmup-epochs", "inf"], "--warmup-epochs"),
    (["--binarize", "sometimes"], "--binarize"),
    (["--optimizer", "rmsprop"], "--optimizer"),
    (["--activation", "gelu"], "--activation"),
    (["--likelihood", "poisson"], "--likelihood"),
    (["--dtype", "float16"], "--dtype"),
    (["--iw-samples", "-5"], "--iw-samples"),
    (["--seed", "x"], "--seed"),
    (["--dataset", "binarized-mnist", "--binarize", "dynamic"], "--binarize"),
    (["--no-such-flag"], "unrecognized arguments"),
]


@pytest.mark.parametrize("argv, named", BAD_FLAGS, ids=[" ".join(a) for a, _ in BAD_FLAGS])
def test_a_bad_flag_value_is_an_argparse_error_with_status_2(argv, named, capsys):
    with pytest.raises(SystemExit) as info:
        load_example().main(argv)
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert "error:" in err and named in err and "Traceback" not in err


def test_the_real_command_exits_2_on_a_bad_flag():
    result = subprocess.run([sys.executable, str(EXAMPLE), "--hidden", "400,abc"], capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 2
    assert "argument --hidden: expected comma-separated positive integers" in result.stderr


def one_line_error(result):
    assert result.returncode == 1, result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    return result.stderr.strip()


def test_an_unusable_output_folder_is_one_line_on_stderr(tmp_path, data_env):
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    message = one_line_error(cli(*TINY, "--out", str(blocker / "run"), env=data_env))
    assert len(message.splitlines()) == 1 and "a-file" in message


def test_a_corrupt_data_file_is_one_line_on_stderr(tmp_path, data_env):
    bad_root = tmp_path / "data"
    (bad_root / "mnist").mkdir(parents=True)
    (bad_root / "mnist" / "t10k-labels-idx1-ubyte").write_bytes(b"\x00\x00\x08\x01garbage")
    message = one_line_error(cli(*TINY, "--data-dir", str(bad_root), "--out", str(tmp_path / "out"),
                                 env=data_env))
    assert "t10k-labels-idx1-ubyte" in message


def test_a_fresh_run_does_not_overwrite_an_existing_checkpoint(tiny_run, data_env):
    out, _ = tiny_run
    before = (out / "checkpoint.npz").read_bytes()
    message = one_line_error(cli(*TINY, "--out", str(out), env=data_env))
    assert "--resume" in message and "--overwrite" in message and str(out / "checkpoint.npz") in message
    assert (out / "checkpoint.npz").read_bytes() == before


def test_overwrite_starts_a_new_run_in_the_same_folder(tmp_path, data_env):
    out = tmp_path / "run"
    assert cli(*TINY, "--out", str(out), env=data_env).returncode == 0
    first = (out / "metrics.json").read_text()
    again = cli(*TINY, "--seed", "1", "--out", str(out), "--overwrite", env=data_env)
    assert again.returncode == 0, again.stderr
    assert (out / "metrics.json").read_text() != first  # a different seed: a genuinely new run


def test_a_bad_checkpoint_is_one_line_on_stderr(tmp_path, data_env):
    bad = tmp_path / "checkpoint.npz"
    bad.write_bytes(b"PK\x03\x04 not really a zip")
    message = one_line_error(cli("--resume", str(bad), env=data_env))
    assert len(message.splitlines()) == 1 and str(bad) in message


def test_divergence_is_reported_with_epoch_and_batch(tmp_path, data_env):
    result = cli(*TINY, "--optimizer", "sgd", "--lr", "1e6", "--out", str(tmp_path), env=data_env)
    message = one_line_error(result).splitlines()[-1]
    assert "epoch 1, batch" in message and str(tmp_path / "checkpoint.npz") in message
    assert load_checkpoint(tmp_path / "checkpoint.npz").epoch == 0
    assert np.isfinite(load_checkpoint(tmp_path / "checkpoint.npz").params["decoder.W_out"]).all()
