"""The training loop: one Generator fixes the run, a resumed run is the same run, β warms up
as documented, divergence and Ctrl-C stop cleanly with the last good checkpoint intact."""

from __future__ import annotations

import csv
import io
import json
import math

import numpy as np
import pytest

from tinyvae import train  # the core: train_step, which the fault tests below replace
from tinyvae.config import VAEConfig, init_params
from tinyvae.lab.storage.checkpoint import CheckpointError, load_checkpoint
from tinyvae.lab.storage.files import OutputError
from tinyvae.lab.training import runner
from tinyvae.lab.training.runner import TrainingDiverged, TrainingInterrupted, fit
from tinyvae.optim import make_optimizer
from tinyvae.speed import step as speed_step
from tinyvae.train import ReferenceStep, kl_weight

CONFIG = VAEConfig(input_dim=17, hidden_dims=(11,), latent_dim=3)
N_TRAIN, BATCH = 150, 32  # 5 batches per epoch, the last one smaller (22)


def images(n, seed):
    """Grayscale stand-ins for digits: smooth random intensities in [0, 1]."""
    rng = np.random.default_rng(seed)
    return rng.beta(0.5, 0.5, size=(n, CONFIG.input_dim)).astype(np.float32)


X_TRAIN, X_TEST = images(N_TRAIN, 1), (images(40, 2) > 0.5).astype(np.float32)


def run(out_dir=None, epochs=3, seed=0, resume=None, lr=1e-2, optimizer="adam", warmup_epochs=1.5,
        step="reference", **kw):
    # The reference path by default: it calls train.train_step, which the fault tests below replace
    # to inject a NaN or a Ctrl-C. The fast path has its own tests at the end of this file, and
    # its faults are exercised end to end by test_faults.py and test_cli.py (the example uses it).
    """A fresh model and Generator from `seed`, trained by fit; returns (params, history)."""
    rng = np.random.default_rng(seed)
    params = init_params(CONFIG, rng, np.float32)
    stepper = speed_step.make_step(step, CONFIG, params, make_optimizer(optimizer, lr), BATCH)
    history = fit(stepper, X_TRAIN, rng=rng, epochs=epochs, x_test=X_TEST, batch_size=BATCH,
                  warmup_epochs=warmup_epochs, out_dir=out_dir, resume=resume, stream=None, **kw)
    return stepper.params, history


def assert_params_equal(a, b):
    assert a.keys() == b.keys()
    for key in a:
        np.testing.assert_array_equal(a[key], b[key], err_msg=key)


def test_resumed_run_equals_uninterrupted_run_bit_for_bit(tmp_path):
    straight, history = run(tmp_path / "straight", epochs=3)
    run(tmp_path / "split", epochs=2)
    resumed, resumed_history = run(epochs=3, resume=tmp_path / "split" / "checkpoint.npz")
    assert_params_equal(resumed, straight)
    # The losses match too (the test ELBO's ε come from their own per-epoch generator).
    for a, b in zip(history, resumed_history):
        for key in ("beta", "train_loss", "train_recon", "train_kl", "test_loss", "test_recon",
                    "test_kl"):
            assert a[key] == b[key], key
    assert load_checkpoint(tmp_path / "split" / "checkpoint.npz", CONFIG).epoch == 3


def test_same_seed_same_result_different_seed_different_result():
    a, _ = run(epochs=2, seed=5)
    b, _ = run(epochs=2, seed=5)
    c, _ = run(epochs=2, seed=6)
    assert_params_equal(a, b)
    assert not np.array_equal(a["decoder.W_out"], c["decoder.W_out"])


def test_kl_weight_rises_linearly_from_zero_then_stays():
    assert kl_weight(0, 10, 2, 1.0) == 0.0
    assert kl_weight(5, 10, 2, 1.0) == pytest.approx(0.25)
    assert kl_weight(19, 10, 2, 0.5) == pytest.approx(0.5 * 19 / 20)
    assert kl_weight(20, 10, 2, 0.5) == 0.5 and kl_weight(1000, 10, 2, 0.5) == 0.5
    assert kl_weight(0, 10, 0, 0.7) == 0.7  # no warm-up: the target β from the first batch


def test_fit_warms_beta_up_batch_by_batch(monkeypatch):
    betas = []
    real_make_step = speed_step.make_step

    def recording_make_step(*args, **kwargs):
        stepper = real_make_step(*args, **kwargs)
        real_step = stepper.step

        def step(x, eps, beta=None):
            betas.append(beta)
            return real_step(x, eps, beta)

        stepper.step = step
        return stepper

    monkeypatch.setattr(speed_step, "make_step", recording_make_step)
    _, history = run(epochs=3, warmup_epochs=2, step="fast")
    n = math.ceil(N_TRAIN / BATCH)
    np.testing.assert_allclose(betas[:2 * n], np.arange(2 * n) / (2 * n))
    assert betas[2 * n:] == [1.0] * n
    assert [h["beta"] for h in history] == [pytest.approx((n - 1) / (2 * n)),
                                            pytest.approx((2 * n - 1) / (2 * n)), 1.0]


def test_history_json_and_csv_are_written_after_every_epoch(tmp_path):
    _, history = run(tmp_path, epochs=2)
    assert json.loads((tmp_path / "history.json").read_text()) == history
    rows = list(csv.DictReader(io.StringIO((tmp_path / "history.csv").read_text())))
    assert [int(r["epoch"]) for r in rows] == [1, 2]
    assert float(rows[1]["test_loss"]) == history[1]["test_loss"]
    expected = {"epoch", "beta", "train_loss", "train_recon", "train_kl", "test_loss", "test_recon",
                "test_kl", "seconds", "samples_per_sec", "elapsed"}
    for record in history:
        assert set(record) == expected
        assert record["train_loss"] > 0 and record["samples_per_sec"] > 0
    assert history[1]["elapsed"] == pytest.approx(history[0]["seconds"] + history[1]["seconds"])


@pytest.mark.filterwarnings("ignore::RuntimeWarning")  # numpy's overflow warnings on the way to inf
def test_a_huge_learning_rate_stops_with_epoch_and_batch_and_keeps_the_checkpoint(tmp_path):
    with pytest.raises(TrainingDiverged) as info:
        run(tmp_path, epochs=3, optimizer="sgd", lr=1e6)
    message = str(info.value)
    assert "epoch 1, batch" in message and str(tmp_path / "checkpoint.npz") in message
    checkpoint = load_checkpoint(tmp_path / "checkpoint.npz", CONFIG)  # the epoch-0 state, finite
    assert checkpoint.epoch == 0
    initial = init_params(CONFIG, np.random.default_rng(0), np.float32)
    assert_params_equal(checkpoint.params, initial)


def test_divergence_in_a_later_epoch_keeps_the_last_good_epoch(tmp_path, monkeypatch):
    good, _ = run(epochs=1)
    calls = []
    real_step = train.train_step

    def nan_at_epoch_2_batch_3(params, optimizer, x, eps, config, beta):
        calls.append(1)
        stats = real_step(params, optimizer, x, eps, config, beta)
        return {**stats, "loss": float("nan")} if len(calls) == 5 + 3 else stats

    monkeypatch.setattr(train, "train_step", nan_at_epoch_2_batch_3)
    with pytest.raises(TrainingDiverged, match=r"epoch 2, batch 3/5.*checkpoint \(epoch 1\)"):
        run(tmp_path, epochs=3)
    assert_params_equal(load_checkpoint(tmp_path / "checkpoint.npz", CONFIG).params, good)


def test_ctrl_c_keeps_the_last_finished_epoch_and_resuming_completes_the_same_run(tmp_path,
                                                                                  monkeypatch):
    straight, _ = run(epochs=3)
    calls = []
    real_step = train.train_step

    def interrupted_in_epoch_2(*args):
        calls.append(1)
        if len(calls) == 5 + 2:
            raise KeyboardInterrupt
        return real_step(*args)

    monkeypatch.setattr(train, "train_step", interrupted_in_epoch_2)
    with pytest.raises(TrainingInterrupted) as info:
        run(tmp_path, epochs=3)
    assert info.value.epoch == 1 and info.value.checkpoint == tmp_path / "checkpoint.npz"
    assert str(tmp_path / "checkpoint.npz") in str(info.value)
    monkeypatch.undo()
    resumed, _ = run(epochs=3, resume=tmp_path / "checkpoint.npz")
    assert_params_equal(resumed, straight)


def test_ctrl_c_in_the_first_epoch_resumes_from_the_epoch_0_checkpoint(tmp_path, monkeypatch):
    straight, _ = run(epochs=2)
    real_step = train.train_step

    def interrupted(*args):
        raise KeyboardInterrupt

    monkeypatch.setattr(train, "train_step", interrupted)
    with pytest.raises(TrainingInterrupted) as info:
        run(tmp_path, epochs=2)
    assert info.value.epoch == 0
    monkeypatch.setattr(train, "train_step", real_step)
    resumed, _ = run(epochs=2, resume=tmp_path / "checkpoint.npz")  # Adam with no state yet
    assert_params_equal(resumed, straight)


def test_ctrl_c_during_a_checkpoint_save_saves_that_epoch_again(tmp_path, monkeypatch):
    straight, _ = run(epochs=3)
    real_save = runner.save_checkpoint

    def interrupted_save_of_epoch_2(path, **state):
        if state["epoch"] == 2 and not getattr(interrupted_save_of_epoch_2, "done", False):
            interrupted_save_of_epoch_2.done = True
            raise KeyboardInterrupt
        return real_save(path, **state)

    monkeypatch.setattr(runner, "save_checkpoint", interrupted_save_of_epoch_2)
    with pytest.raises(TrainingInterrupted) as info:
        run(tmp_path, epochs=3)
    assert info.value.epoch == 2
    monkeypatch.undo()
    resumed, _ = run(epochs=3, resume=tmp_path / "checkpoint.npz")
    assert_params_equal(resumed, straight)


def test_resume_refuses_a_different_optimizer_or_batch_size(tmp_path):
    run(tmp_path, epochs=1)
    with pytest.raises(CheckpointError, match="lr"):
        run(epochs=2, resume=tmp_path / "checkpoint.npz", lr=3e-3)
    rng = np.random.default_rng(0)
    params = init_params(CONFIG, rng, np.float32)
    with pytest.raises(CheckpointError, match="batch_size: checkpoint has 32, now 16"):
        fit(ReferenceStep(CONFIG, params, make_optimizer("adam", 1e-2)), X_TRAIN, rng=rng, epochs=2,
            x_test=X_TEST, batch_size=16, warmup_epochs=1.5, resume=tmp_path / "checkpoint.npz",
            stream=None)


def test_bad_data_and_an_unwritable_folder_are_refused_before_training(tmp_path, monkeypatch):
    monkeypatch.setattr(train, "train_step", lambda *a: pytest.fail("trained despite bad input"))
    rng = np.random.default_rng(0)
    params = init_params(CONFIG, rng, np.float32)
    opt = make_optimizer("adam", 1e-3)
    bad = X_TRAIN.copy()
    bad[7, 3] = np.nan
    with pytest.raises(ValueError, match="x_train contains NaN"):
        fit(ReferenceStep(CONFIG, params, opt), bad, rng=rng, epochs=1, stream=None)
    with pytest.raises(ValueError, match=r"x_train has values in .*Bernoulli"):
        fit(ReferenceStep(CONFIG, params, opt), X_TRAIN * 2, rng=rng, epochs=1, stream=None)
    with pytest.raises(ValueError, match="x_test must have shape"):
        fit(ReferenceStep(CONFIG, params, opt), X_TRAIN, x_test=X_TEST[:, :5], rng=rng, epochs=1,
            stream=None)
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    with pytest.raises(OutputError, match="a-file"):
        fit(ReferenceStep(CONFIG, params, opt), X_TRAIN, rng=rng, epochs=1, out_dir=blocker / "run",
            stream=None)


class FakeTerminal(io.StringIO):
    def isatty(self):
        return True


def test_progress_is_one_plain_line_per_epoch_in_a_log_and_redrawn_on_a_terminal():
    log, terminal = io.StringIO(), FakeTerminal()
    for stream in (log, terminal):
        rng = np.random.default_rng(0)
        params = init_params(CONFIG, rng, np.float32)
        fit(ReferenceStep(CONFIG, params, make_optimizer("adam", 1e-2)), X_TRAIN, rng=rng, epochs=2,
            x_test=X_TEST, batch_size=BATCH, stream=stream)
    lines = log.getvalue().splitlines()
    assert "\r" not in log.getvalue() and len(lines) == 2
    assert lines[0].startswith("epoch 1/2") and "test" in lines[0] and "samples/s" in lines[0]
    assert "\r" in terminal.getvalue() and "batch 5/5" in terminal.getvalue()
    assert terminal.getvalue().count("\n") == 2


def test_the_fast_path_resumes_bit_for_bit(tmp_path):
    straight, _ = run(epochs=3, step="fast")
    run(tmp_path, epochs=2, step="fast")
    resumed, _ = run(epochs=3, resume=tmp_path / "checkpoint.npz", step="fast")
    assert_params_equal(resumed, straight)


def test_a_checkpoint_from_one_path_resumes_on_the_other(tmp_path):
    run(tmp_path, epochs=2, step="fast")
    from_fast, history = run(epochs=3, resume=tmp_path / "checkpoint.npz", step="reference")
    assert len(history) == 3 and all(np.all(np.isfinite(v)) for v in from_fast.values())


def test_the_fast_and_reference_paths_train_the_same_model():
    fast, fast_history = run(epochs=3, step="fast")
    reference, reference_history = run(epochs=3, step="reference")
    # Same mathematics, different rounding (fused heads, another order of float32 sums).
    for key in fast:
        np.testing.assert_allclose(fast[key], reference[key], rtol=1e-3, atol=1e-4, err_msg=key)
    assert fast_history[-1]["test_loss"] == pytest.approx(reference_history[-1]["test_loss"],
                                                          rel=1e-4)


def test_a_learning_rate_schedule_sets_each_epochs_rate_and_a_resumed_run_keeps_it(tmp_path):
    schedule = [(1, 1e-2), (3, 1e-3)]
    seen = []

    def lr_of_epoch(epoch, step):
        seen.append(step.optimizer.lr)
        return {"lr": step.optimizer.lr}

    straight, history = run(epochs=4, lr_schedule=schedule, after_epoch=lr_of_epoch)
    assert seen == [1e-2, 1e-2, 1e-3, 1e-3] and [h["lr"] for h in history] == seen
    run(tmp_path, epochs=2, lr_schedule=schedule)
    resumed, _ = run(epochs=4, resume=tmp_path / "checkpoint.npz", lr_schedule=schedule)
    assert_params_equal(resumed, straight)
    with pytest.raises(CheckpointError, match="lr_schedule"):
        run(epochs=4, resume=tmp_path / "checkpoint.npz", lr_schedule=[(1, 1e-2), (2, 1e-3)])
    with pytest.raises(ValueError, match="lr_schedule"):
        run(epochs=1, lr_schedule=[(2, 1e-3)])


def test_what_after_epoch_returns_is_saved_in_the_history(tmp_path):
    _, history = run(tmp_path, epochs=2, after_epoch=lambda epoch, step: {"stage_end": epoch == 2})
    assert [h["stage_end"] for h in history] == [False, True]
    assert json.loads((tmp_path / "history.json").read_text())[1]["stage_end"] is True


def test_each_epoch_line_but_the_last_says_when_the_whole_run_ends():
    log = io.StringIO()
    rng = np.random.default_rng(0)
    fit(ReferenceStep(CONFIG, init_params(CONFIG, rng, np.float32), make_optimizer("adam", 1e-2)),
        X_TRAIN, rng=rng, epochs=3, batch_size=BATCH, stream=log)
    lines = log.getvalue().splitlines()
    assert ["run ETA" in line for line in lines] == [True, True, False]
