"""Crashes lose nothing: training killed at random moments (SIGKILL, several times) and resumed
ends with exactly the parameters of an uninterrupted run; Ctrl-C (SIGINT) exits with status 130,
says where the checkpoint is, and resuming from it completes the same run."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest
from conftest import default_signals

from tinyvae.lab.storage.checkpoint import load_checkpoint

pytestmark = pytest.mark.slow  # each test drives training processes and kills them

REPO = Path(__file__).resolve().parents[1]
EXAMPLE = REPO / "examples" / "mnist.py"

# A training process that resumes from its checkpoint if there is one. Synthetic data keep it
# quick to start (no dataset to read), so that many kill-and-resume cycles fit in seconds.
# With a second argument "stall", it freezes half-way through writing the checkpoint of
# epoch 2 (half the archive in the temporary file) and says so, to be killed right there.
DRIVER = textwrap.dedent("""
    import sys
    import time
    from pathlib import Path
    import numpy as np
    from tinyvae.optim import make_optimizer
    from tinyvae.lab.training.runner import fit
    from tinyvae.speed.step import make_step
    from tinyvae.config import VAEConfig, init_params

    if sys.argv[2:] == ["stall"]:
        real_savez = np.savez
        def stalling_savez(f, **arrays):
            real_savez(f, **arrays)
            if int(arrays["epoch"]) == 2:
                f.truncate(f.tell() // 2)
                f.flush()
                print("stalled in the middle of the checkpoint write", flush=True)
                time.sleep(600)
        np.savez = stalling_savez

    out = Path(sys.argv[1])
    config = VAEConfig(input_dim=100, hidden_dims=(128,), latent_dim=4)
    data = np.random.default_rng(123).beta(0.5, 0.5, size=(2000, 100)).astype(np.float32)
    rng = np.random.default_rng(0)
    params = init_params(config, rng, np.float32)
    checkpoint = out / "checkpoint.npz"
    fit(make_step("fast", config, params, make_optimizer("adam", 1e-3), 50), data[:1500], rng=rng,
        epochs=24, x_test=data[1500:], batch_size=50, warmup_epochs=2, out_dir=out,
        resume=checkpoint if checkpoint.exists() else None)
""")
DRIVER_EPOCHS = 24  # > the most the seeded kill schedule lets a run progress (20 epochs)
KILL_CYCLES = 10


def drive(out: Path, *extra: str) -> subprocess.Popen:
    # One BLAS thread: quicker for this small model and steadier on a busy machine. (The Ctrl-C
    # test below runs the real command with the default threads, and checks bit equality too.)
    env = {**os.environ, "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1"}
    return subprocess.Popen([sys.executable, "-c", DRIVER, str(out), *extra],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)


def finish(out: Path) -> None:
    process = drive(out)
    _, stderr = process.communicate(timeout=300)
    assert process.returncode == 0, stderr


def final_params(out: Path) -> tuple[dict[str, np.ndarray], int]:
    checkpoint = load_checkpoint(out / "checkpoint.npz")
    return checkpoint.params, checkpoint.epoch


def assert_params_equal(got, expected):
    assert got.keys() == expected.keys()
    for key in expected:
        np.testing.assert_array_equal(got[key], expected[key], err_msg=key)


@pytest.fixture(scope="module")
def straight(tmp_path_factory):
    """The uninterrupted run: its final parameters and its median epoch time."""
    out = tmp_path_factory.mktemp("straight")
    finish(out)
    params, epochs = final_params(out)
    assert epochs == DRIVER_EPOCHS
    history = json.loads((out / "history.json").read_text())
    return params, float(np.median([h["seconds"] for h in history]))


def test_sigkill_at_random_moments_then_resume_equals_an_uninterrupted_run(tmp_path, straight):
    expected, epoch_seconds = straight
    out = tmp_path / "killed"
    # Seeded: the same kill moments on every run of the test. A moment is "after n more epoch
    # lines, plus a random part of an epoch", so that the kills spread over the run however
    # fast or loaded the machine is; n = 0 kills during start-up or the first epoch of a cycle,
    # n epoch lines let at most n + 1 epochs finish.
    chance = random.Random(20240611)
    epochs_at_kill = []
    for _ in range(KILL_CYCLES):
        process = drive(out)
        wanted, seen = chance.choice([0, 1, 1, 2, 2, 3]), 0
        while seen < wanted:
            line = process.stdout.readline()
            if not line:
                break
            seen += line.startswith("epoch")  # not the "resuming from ..." line
        time.sleep(chance.uniform(0.0, 1.0) * epoch_seconds)
        assert process.poll() is None, "the run finished before its kill; lengthen DRIVER_EPOCHS"
        process.send_signal(signal.SIGKILL)
        process.communicate(timeout=60)
        # Whatever the moment, the checkpoint on disk (if one was written yet) is whole.
        if (out / "checkpoint.npz").exists():
            epochs_at_kill.append(load_checkpoint(out / "checkpoint.npz").epoch)
            json.loads((out / "history.json").read_text())
    finish(out)
    print(f"{KILL_CYCLES} SIGKILLs; the checkpoint's epoch after each: {epochs_at_kill}")
    got, epochs = final_params(out)
    assert epochs == DRIVER_EPOCHS
    assert len(set(epochs_at_kill)) >= 3, epochs_at_kill  # the kills landed all over the run
    assert_params_equal(got, expected)
    # A resumed run clears the temporary files that kills left half-written.
    assert sorted(p.name for p in out.iterdir()) == ["checkpoint.npz", "history.csv",
                                                     "history.json"]


def test_sigkill_in_the_middle_of_a_checkpoint_write_keeps_the_previous_one(tmp_path, straight):
    expected, _ = straight
    process = drive(tmp_path, "stall")
    for line in process.stdout:
        if line.startswith("stalled"):
            break
    process.send_signal(signal.SIGKILL)
    process.communicate(timeout=60)
    assert len(list(tmp_path.glob(".checkpoint.npz.*.tmp"))) == 1  # the half-written file
    assert load_checkpoint(tmp_path / "checkpoint.npz").epoch == 1  # the previous one, whole
    finish(tmp_path)
    got, _ = final_params(tmp_path)
    assert_params_equal(got, expected)
    assert not list(tmp_path.glob(".*.tmp"))


def example(out: Path, *extra: str) -> list[str]:
    return [sys.executable, str(EXAMPLE), "--epochs", "3", "--hidden", "32", "--latent-dim", "2",
            "--train-limit", "4000", "--test-limit", "300", "--iw-samples", "0", "--out", str(out),
            *extra]


def interrupt(command, env, after: str, delay: float) -> str:
    """Run `command`, press Ctrl-C `delay` seconds after a stdout line starting with `after`;
    check the documented outcome (status 130, no traceback) and return stderr."""
    # preexec_fn: Ctrl-C acts even if this test run ignores it (a background job)
    process = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True, preexec_fn=default_signals)
    for line in process.stdout:
        if line.startswith(after):
            break
    time.sleep(delay)
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == 130, stderr
    assert "Traceback" not in stderr
    return stderr


def test_ctrl_c_exits_130_names_the_checkpoint_and_resume_completes_the_same_run(tmp_path,
                                                                                 data_env):
    straight = subprocess.run(example(tmp_path / "straight"), env=data_env, capture_output=True,
                              text=True, timeout=300)
    assert straight.returncode == 0, straight.stderr
    expected, _ = final_params(tmp_path / "straight")

    out = tmp_path / "interrupted"
    checkpoint = out / "checkpoint.npz"
    resume = [sys.executable, str(EXAMPLE), "--resume", str(checkpoint)]
    # First Ctrl-C right after epoch 1 is reported: it lands in epoch 2 (or in epoch 1's save).
    stderr = interrupt(example(out), data_env, after="epoch 1/3", delay=0.0)
    assert f"the checkpoint of epoch 1 is {checkpoint}" in stderr
    assert f"resume with: python examples/mnist.py --resume {checkpoint}" in stderr
    assert load_checkpoint(checkpoint).epoch == 1
    # Second Ctrl-C at a seeded random moment of the resumed run (in training, evaluation or
    # figures).
    stderr = interrupt(resume, data_env, after="resuming", delay=random.Random(7).uniform(0.0, 1.0))
    assert str(checkpoint) in stderr and "--resume" in stderr
    load_checkpoint(checkpoint)  # the checkpoint it names is whole
    finished = subprocess.run(resume, env=data_env, capture_output=True, text=True, timeout=300)
    assert finished.returncode == 0, finished.stderr
    got, epochs = final_params(out)
    assert epochs == 3
    assert_params_equal(got, expected)
