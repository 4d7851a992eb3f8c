"""The training command end to end (examples/mnist.py = python -m tinyvae train): a tiny run writes
every file and prints the ELBO apart from the β-weighted loss; bad flags end with an argparse
message and status 2, files and settings that cannot be used with one line and status 2; a run owns
its folder (no silent replacement, --overwrite leaves nothing of the old run); output trouble never
costs training."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import EXAMPLE, TINY, cli

from tinyvae.lab.figures.figures import FIGURE_NAMES
from tinyvae.lab.storage.checkpoint import load_checkpoint

FIGURES = list(FIGURE_NAMES)


def load_example():
    spec = importlib.util.spec_from_file_location("mnist_example", EXAMPLE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


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
    assert metrics["test_elbo"] == -(metrics["test_recon"] + metrics["test_kl"])
    assert metrics["beta"] == 1
    assert metrics["test_loss"] == pytest.approx(-metrics["test_elbo"], rel=1e-6)
    # L_k is a tighter bound than the ELBO on average (a log-likelihood, so a negative number).
    assert metrics["test_elbo"] - 1.0 < metrics["iw_bound"] < 0
    assert 0 <= metrics["active_units"] <= 2 and len(metrics["kl_per_dim"]) == 2
    assert metrics["settings"]["hidden"] == [16] and metrics["n_train"] == 3000
    assert len(metrics["timing"]["epoch_seconds"]) == 1
    history = json.loads((out / "history.json").read_text())
    assert metrics["test_loss"] == history[-1]["test_loss"]  # the same ε as the last epoch's
    assert f"{metrics['test_elbo']:.2f}" in result.stdout and "β-loss" not in result.stdout
    assert f"{metrics['iw_bound']:.2f}" in result.stdout and "L_10" in result.stdout
    assert f"active units {metrics['active_units']} of 2" in result.stdout


def test_it_says_where_the_data_came_from_and_how_long_evaluation_will_take(tiny_run, data_env):
    _, result = tiny_run
    lines = result.stdout.splitlines()
    assert lines[0].startswith(f"data: mnist from {Path(data_env['TINYVAE_DATA']) / 'mnist'}, "
                               "dynamically binarized")
    first_epoch = next(i for i, line in enumerate(lines) if line.startswith("epoch 1/1"))
    announced = [i for i, line in enumerate(lines)
                 if line.startswith("after training, the evaluation: test ELBO, L_10")]
    assert announced and announced[0] < first_epoch
    assert "on 500 test images, about 0:" in lines[announced[0]]
    assert "(timed on one batch now)" in lines[announced[0]]
    # The run's ETA says what it covers, and covers the evaluation after the last epoch too.
    epoch_line = lines[first_epoch]
    assert "  run ETA 0:" in epoch_line and "(the evaluation, about 0:" in epoch_line
    assert lines[first_epoch + 1].startswith("evaluating: test ELBO, L_10")
    # Not a terminal: evaluation progress comes as plain lines, ending at 100 %.
    assert "L_10: 500/500 images (100 %)" in result.stdout and "\r" not in result.stdout


def test_with_beta_not_1_the_elbo_and_the_beta_loss_are_reported_apart(tmp_path, data_env):
    result = cli(*TINY, "--beta", "4", "--train-limit", "500", "--test-limit", "100",
                 "--out", str(tmp_path), env=data_env)
    assert result.returncode == 0, result.stderr
    m = json.loads((tmp_path / "metrics.json").read_text())
    assert m["beta"] == 4 and m["test_elbo"] == -(m["test_recon"] + m["test_kl"])
    assert m["test_loss"] == pytest.approx(m["test_recon"] + 4 * m["test_kl"], rel=1e-6)
    assert f"test ELBO    {m['test_elbo']:.2f} nats per image " \
           f"(= −(recon {m['test_recon']:.2f} + KL {m['test_kl']:.2f}))" in result.stdout
    assert f"β-loss       {m['test_loss']:.2f} nats per image " \
           f"(recon {m['test_recon']:.2f} + 4 × KL" in result.stdout
    assert f"ELBO {m['test_elbo']:.2f})" in result.stdout  # the epoch line too


def test_resume_continues_with_the_checkpoint_settings(tiny_run, data_env, tmp_path):
    out, _ = tiny_run
    copy = tmp_path / "continued"
    copy.mkdir()
    (copy / "checkpoint.npz").write_bytes((out / "checkpoint.npz").read_bytes())
    result = cli("--resume", str(copy / "checkpoint.npz"), "--epochs", "2", env=data_env)
    assert result.returncode == 0, result.stderr
    checkpoint = load_checkpoint(copy / "checkpoint.npz")
    assert checkpoint.epoch == 2 and checkpoint.config.hidden_dims == (16,)
    assert "resuming from" in result.stdout and (copy / "samples.png").is_file()
    assert "L_10 " in result.stdout  # the run's own k, not the default 1000
    for flags, named in [(["--latent-dim", "5"], "--latent-dim 5"),
                         (["--iw-samples", "0"], "--iw-samples 0"),
                         (["--step", "reference"], "--step 'reference'")]:
        refused = cli("--resume", str(copy / "checkpoint.npz"), *flags, env=data_env)
        assert refused.returncode == 2 and "Traceback" not in refused.stderr
        assert named in refused.stderr and "the checkpoint has" in refused.stderr


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
    (["--gaussian-std", "0"], "--gaussian-std"),
    (["--gaussian-std", "0.1"], "--gaussian-std"),  # the default likelihood is Bernoulli: no σ
    (["--likelihood", "gaussian-learned-variance", "--gaussian-std", "0.1"], "--gaussian-std"),
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


def resolved(*argv):
    from tinyvae.commands import train
    parser = train.build_parser()
    return train.resolve(parser.parse_args(list(argv)), parser)


def test_the_gaussian_likelihood_gets_a_pixel_scale_sigma_and_no_binarization():
    args = resolved("--likelihood", "gaussian")
    assert args.binarize == "none" and args.gaussian_std == 0.1
    assert resolved("--likelihood", "gaussian", "--gaussian-std", "0.05").gaussian_std == 0.05
    assert resolved("--likelihood", "gaussian-learned-variance").binarize == "none"
    bernoulli = resolved()
    assert bernoulli.binarize == "dynamic" and bernoulli.gaussian_std is None
    # if asked for
    assert resolved("--likelihood", "gaussian", "--binarize", "dynamic").binarize == "dynamic"


def test_default_output_folders_are_named_for_the_settings_that_differ():
    assert resolved().out == Path("runs/mnist")
    assert resolved("--latent-dim", "2").out == Path("runs/mnist_latent-dim=2")
    # the defaults, given
    assert resolved("--latent-dim", "20", "--seed", "0").out == Path("runs/mnist")
    folders = {resolved(*argv).out
               for argv in [(), ("--beta", "4"), ("--beta", "0.5"), ("--hidden", "200,200"),
                            ("--dataset", "fashion-mnist"), ("--likelihood", "gaussian"),
                            ("--train-limit", "3000"), ("--lr", "1e-4", "--seed", "3")]}
    assert len(folders) == 8 and Path("runs/mnist_hidden=200,200") in folders
    assert Path("runs/mnist_lr=0.0001_seed=3") in folders


@pytest.mark.slow
def test_the_real_command_exits_2_on_a_bad_flag():
    result = subprocess.run([sys.executable, str(EXAMPLE), "--hidden", "400,abc"],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 2
    assert "argument --hidden: expected comma-separated positive integers" in result.stderr


def one_line_error(result, status=1):
    assert result.returncode == status, result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    return result.stderr.strip()


def test_an_unusable_output_folder_is_one_line_on_stderr(tmp_path, data_env):
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    message = one_line_error(cli(*TINY, "--out", str(blocker / "run"), env=data_env))
    assert len(message.splitlines()) == 1 and "a-file" in message


def test_a_missing_data_dir_is_refused_not_replaced(tmp_path, data_env):
    message = one_line_error(cli(*TINY, "--data-dir", str(tmp_path / "nonexistent"),
                                 "--out", str(tmp_path / "o"), env=data_env), status=2)
    assert len(message.splitlines()) == 1
    assert f"--data-dir {tmp_path / 'nonexistent'} does not exist" in message
    assert not (tmp_path / "o").exists()


def test_a_corrupt_data_file_is_one_line_on_stderr(tmp_path, data_env):
    message = one_line_error(cli(*TINY, "--data-dir", str(corrupt_data_root(tmp_path, data_env)),
                                 "--out", str(tmp_path / "out"),
                                 env=data_env))
    assert "t10k-labels-idx1-ubyte" in message


def test_a_fresh_run_does_not_overwrite_an_existing_checkpoint(tiny_run, data_env):
    out, _ = tiny_run
    before = (out / "checkpoint.npz").read_bytes()
    message = one_line_error(cli(*TINY, "--out", str(out), env=data_env), status=2)
    assert "--resume" in message and "--overwrite" in message
    assert str(out / "checkpoint.npz") in message
    assert (out / "checkpoint.npz").read_bytes() == before


def test_a_second_run_says_what_its_folder_holds_and_how_to_use_or_continue_it(tiny_run,
                                                                              data_env):
    out, _ = tiny_run
    metrics = json.loads((out / "metrics.json").read_text())
    message = one_line_error(cli(*TINY, "--out", str(out), env=data_env), status=2)
    assert (f"{out} holds this run, finished after 1 epoch "
            f"(test ELBO {metrics['test_elbo']:.2f}, L_10 {metrics['iw_bound']:.2f})") in message
    assert f"python -m tinyvae evaluate {out / 'checkpoint.npz'}" in message
    assert f"python examples/mnist.py --resume {out / 'checkpoint.npz'} --epochs 2" in message
    message = one_line_error(cli(*TINY, "--out", str(out), "--seed", "3", env=data_env), status=2)
    assert f"{out} holds another run (--seed 0 there, 3 here)" in message


def test_in_a_terminal_a_second_run_offers_to_continue_the_first(tmp_path, data_env, monkeypatch,
                                                                  capsys):
    from tinyvae.commands import train

    class Terminal:
        def isatty(self):
            return True

        def write(self, text):
            return len(text)

        def flush(self):
            pass

    argv = [*TINY, "--out", str(tmp_path)]
    assert cli(*argv, env=data_env).returncode == 0
    asked = []
    monkeypatch.setattr("builtins.input", lambda prompt: asked.append(prompt) or "")
    monkeypatch.setattr(sys, "stdin", Terminal())
    monkeypatch.setattr(sys, "stdout", Terminal())
    assert train.main([*argv, "--epochs", "2"]) == 0  # Enter: yes
    assert "holds this run, finished after 1 epoch" in asked[0]
    assert asked[0].endswith("continue it now? [Y/n] ")
    assert load_checkpoint(tmp_path / "checkpoint.npz").epoch == 2
    monkeypatch.setattr("builtins.input", lambda prompt: "n")
    assert train.main([*argv, "--epochs", "3"]) == 2
    assert "not continued; nothing was changed" in capsys.readouterr().err
    assert load_checkpoint(tmp_path / "checkpoint.npz").epoch == 2


def test_resume_into_a_folder_holding_another_run_is_refused(tiny_run, data_env, tmp_path):
    out, _ = tiny_run
    other = tmp_path / "other"
    other.mkdir()
    files = {"checkpoint.npz": b"another run's checkpoint", "metrics.json": b"{}",
             "samples.png": b"png"}
    for name, content in files.items():
        (other / name).write_bytes(content)
    message = one_line_error(cli("--resume", str(out / "checkpoint.npz"), "--out", str(other),
                                 env=data_env), 2)
    assert f"{other} already holds another run" in message
    assert {p.name: p.read_bytes() for p in other.iterdir()} == files  # nothing replaced


def test_overwrite_leaves_nothing_of_the_previous_run(tmp_path, data_env):
    out = tmp_path / "run"
    out.mkdir()
    old = {"checkpoint.npz": b"old", "manifold.png": b"old figure",
           "notes-of-the-old-run.txt": b"old"}
    for name, content in old.items():
        (out / name).write_bytes(content)
    again = cli(*TINY, "--latent-dim", "3", "--out", str(out), "--overwrite", env=data_env)
    assert again.returncode == 0, again.stderr
    names = sorted(p.name for p in out.iterdir())
    assert names == sorted(["checkpoint.npz", "history.json", "history.csv", "metrics.json",
                            # Z = 3: no manifold, old one gone
                            *[f for f in FIGURES if f != "manifold.png"]])
    assert load_checkpoint(out / "checkpoint.npz").config.latent_dim == 3


def test_overwrite_keeps_the_old_run_until_the_new_one_has_a_checkpoint(tmp_path):
    """A crash between moving the old run aside and the new run's first checkpoint loses nothing;
    a failure there (bad data, Ctrl-C) puts it back."""
    from tinyvae.lab.errors import UsageError
    from tinyvae.lab.training import runfolder
    out = tmp_path / "run"
    out.mkdir()
    old = {"checkpoint.npz": b"old run", "metrics.json": b"old metrics"}
    for name, content in old.items():
        (out / name).write_bytes(content)
    _, aside = runfolder.claim(out, None, overwrite=True)
    # the old files, moved, not deleted
    assert sorted(p.name for p in out.iterdir()) == [aside.name]
    runfolder.discard_replaced(out)  # no new checkpoint yet ("a crash here"): the old run is kept
    assert {p.name: p.read_bytes() for p in aside.iterdir()} == old
    runfolder.restore(out, aside)  # the new run failed before its first checkpoint
    assert {p.name: p.read_bytes() for p in out.iterdir()} == old
    _, aside = runfolder.claim(out, None, overwrite=True)
    (out / "checkpoint.npz").write_bytes(b"the new run's first checkpoint")
    runfolder.restore(out, aside)  # too late to restore: the new run has a checkpoint
    runfolder.discard_replaced(out)
    assert sorted(p.name for p in out.iterdir()) == ["checkpoint.npz"]
    (out / "sub").mkdir()
    with pytest.raises(UsageError, match="holds folders"):
        runfolder.claim(out, None, overwrite=True)


def corrupt_data_root(tmp_path, data_env) -> Path:
    """A data root whose MNIST test labels are garbage (the other files are the real ones)."""
    root = tmp_path / "data"
    (root / "mnist").mkdir(parents=True)
    for name in ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte"):
        (root / "mnist" / f"{name}.gz").symlink_to(
            Path(data_env["TINYVAE_DATA"], "mnist", f"{name}.gz"))
    (root / "mnist" / "t10k-labels-idx1-ubyte").write_bytes(b"\x00\x00\x08\x01garbage")
    return root


def test_an_overwrite_run_that_fails_before_its_first_checkpoint_gives_the_old_run_back(tmp_path,
                                                                                       data_env):
    out = tmp_path / "run"
    out.mkdir()
    old = {"checkpoint.npz": b"old run", "samples.png": b"old figure"}
    for name, content in old.items():
        (out / name).write_bytes(content)
    result = cli(*TINY, "--data-dir", str(corrupt_data_root(tmp_path, data_env)), "--out", str(out),
                 "--overwrite", env=data_env)
    assert "t10k-labels-idx1-ubyte" in one_line_error(result)
    assert {p.name: p.read_bytes() for p in out.iterdir()} == old  # and no hidden folder left


def test_a_huge_batch_size_is_bounded_by_the_number_of_images(tmp_path, data_env):
    result = cli("--epochs", "1", "--hidden", "8", "--latent-dim", "2", "--iw-samples", "0",
                 "--train-limit", "500", "--test-limit", "50", "--batch-size", "10000000",
                 "--out", str(tmp_path), env=data_env)
    assert result.returncode == 0, result.stderr  # not a 29 GiB allocation
    assert load_checkpoint(tmp_path / "checkpoint.npz").extra["train"]["batch_size"] == 500


def test_a_closed_stdout_pipe_costs_no_training(tmp_path, data_env):
    command = " ".join([sys.executable, str(EXAMPLE), *TINY, "--epochs", "2",
                        "--train-limit", "1000", "--out", str(tmp_path)])
    result = subprocess.run(["bash", "-c",
                             command + " | head -3; echo \"status ${PIPESTATUS[0]}\""],
                            env=data_env, capture_output=True, text=True, timeout=300)
    assert result.stdout.splitlines()[-1] == "status 0", result.stderr
    assert len(result.stdout.splitlines()) == 4 and "Traceback" not in result.stderr
    assert load_checkpoint(tmp_path / "checkpoint.npz").epoch == 2
    assert (tmp_path / "metrics.json").exists()


def test_a_bad_checkpoint_is_one_line_on_stderr(tmp_path, data_env):
    bad = tmp_path / "checkpoint.npz"
    bad.write_bytes(b"PK\x03\x04 not really a zip")
    message = one_line_error(cli("--resume", str(bad), env=data_env), status=2)
    assert len(message.splitlines()) == 1 and str(bad) in message
    missing = one_line_error(cli("--resume", str(tmp_path / "nope.npz"), env=data_env), status=2)
    assert "nope.npz: no such file" in missing


def test_divergence_is_reported_with_epoch_and_batch(tmp_path, data_env):
    result = cli(*TINY, "--optimizer", "sgd", "--lr", "1e6", "--out", str(tmp_path), env=data_env)
    message = one_line_error(result).splitlines()[-1]
    assert "epoch 1, batch" in message and str(tmp_path / "checkpoint.npz") in message
    assert load_checkpoint(tmp_path / "checkpoint.npz").epoch == 0
    assert np.isfinite(load_checkpoint(tmp_path / "checkpoint.npz").params["decoder.W_out"]).all()


class ClosedPipe:
    """A stream as stdout is after `| head -3` ended: every write fails."""

    def __init__(self):
        self.tries = 0

    def write(self, text):
        self.tries += 1
        raise BrokenPipeError(32, "Broken pipe")

    def flush(self):
        raise BrokenPipeError(32, "Broken pipe")

    def isatty(self):
        return False


def test_progress_written_to_a_closed_pipe_is_dropped_not_raised():
    from tinyvae.lab.training.progress import CountProgress, EpochProgress, tolerant
    pipe = ClosedPipe()
    stream = tolerant(pipe)
    stream.write("one line\n")
    stream.write("and another\n")
    stream.flush()
    assert pipe.tries == 1 and not stream.isatty()  # after the first failure, nothing more is tried
    record = {"epoch": 1, "train_loss": 1.0, "train_recon": 1.0, "train_kl": 0.0, "test_loss": None,
              "beta": 1.0, "samples_per_sec": 1.0, "seconds": 1.0}
    EpochProgress(ClosedPipe()).epoch(record, 2)
    CountProgress("L_10", ClosedPipe())(5, 10)


def test_evaluation_progress_in_a_log_file_is_a_line_per_tenth():
    import io

    from tinyvae.lab.training.progress import CountProgress
    log = io.StringIO()
    progress = CountProgress("L_1000", log)
    for done in range(100, 1001, 100):
        progress(done, 1000)
    lines = log.getvalue().splitlines()
    assert len(lines) == 10 and "\r" not in log.getvalue()
    assert lines[0].startswith("L_1000: 100/1,000 images (10 %)") and "ETA" in lines[0]
    assert lines[-1].startswith("L_1000: 1,000/1,000 images (100 %)")
