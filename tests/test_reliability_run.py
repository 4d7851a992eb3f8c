"""Issue 12, the run and its folder: a run owns its folder (a second run there is refused while
the first lives, and the claim dies with the process), cleanup never touches what a live run
writes, orphans of killed runs are cleaned by the next run, and SIGTERM ends fit as Ctrl-C does."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest
from conftest import default_signals
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tinyvae.config import VAEConfig, init_params
from tinyvae.lab.storage.checkpoint import load_checkpoint
from tinyvae.lab.storage.files import (
    LOCK_NAME,
    OutputError,
    hold_folder,
    remove_stale_temporaries,
    run_folder,
)
from tinyvae.lab.training.runner import TrainingInterrupted, fit
from tinyvae.optim import make_optimizer
from tinyvae.speed.step import make_step

CONFIG = VAEConfig(input_dim=9, hidden_dims=(5,), latent_dim=2)
X = np.random.default_rng(3).random((60, CONFIG.input_dim)).astype(np.float32)

# A child process that runs fit on a folder with a tiny model (optionally slowed down per batch).
RUN = textwrap.dedent("""
    import sys, time, numpy as np
    from tinyvae.lab.storage.files import OutputError
    from tinyvae.lab.training.runner import TrainingInterrupted, fit
    from tinyvae.optim import make_optimizer
    from tinyvae.speed.step import make_step
    from tinyvae.config import VAEConfig, init_params
    folder, epochs, pause = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
    config = VAEConfig(input_dim=9, hidden_dims=(5,), latent_dim=2)
    x = np.random.default_rng(3).random((60, 9)).astype(np.float32)
    rng = np.random.default_rng(0)
    step = make_step("reference", config, init_params(config, rng, np.float32),
                     make_optimizer("adam", 1e-2), 20)
    inner = step.step
    def slow(*a, **k):
        time.sleep(pause)
        return inner(*a, **k)
    step.step = slow
    try:
        fit(step, x, rng=rng, epochs=epochs, batch_size=20, out_dir=folder, stream=None)
    except OutputError as exc:
        print("REFUSED", exc); sys.exit(2)
    except TrainingInterrupted as exc:
        print("INTERRUPTED", exc.epoch); sys.exit(130)
    print("TRAINED"); sys.exit(0)
""")


def start(folder, epochs=2, pause=0.0):
    return subprocess.Popen([sys.executable, "-c", RUN, str(folder), str(epochs), str(pause)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=default_signals)  # SIGTERM acts even if this run ignores it


def tiny_step(seed=0):
    rng = np.random.default_rng(seed)
    return make_step("reference", CONFIG, init_params(CONFIG, rng, np.float32),
                     make_optimizer("adam", 1e-2), 20), rng


def wait_for(condition, seconds=60.0):
    end = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < end, "timed out"
        time.sleep(0.02)


# ---- a run owns its folder ----

@pytest.mark.slow
def test_runs_started_together_on_one_folder_one_trains_the_others_are_refused(tmp_path):
    for attempt in range(2):
        folder = tmp_path / f"out{attempt}"
        # within a few ms of each other
        runs = [start(folder, epochs=2, pause=0.01) for _ in range(3)]
        outputs = [run.communicate(timeout=120) for run in runs]
        codes = sorted(run.returncode for run in runs)
        assert codes.count(0) >= 1 and set(codes) <= {0, 2}, outputs
        for (out, err), run in zip(outputs, runs):
            assert "Traceback" not in err
            if run.returncode == 2:
                assert "in use by another run" in out
        # every file in the folder belongs to a finished run: a checkpoint that loads, its histories
        assert sorted(p.name for p in folder.iterdir()) == ["checkpoint.npz", "history.csv",
                                                            "history.json"]
        assert load_checkpoint(folder / "checkpoint.npz").epoch == 2


def test_the_claim_dies_with_the_process_even_on_sigkill(tmp_path):
    holder = start(tmp_path, epochs=1000, pause=0.05)
    wait_for(lambda: (tmp_path / "checkpoint.npz").exists())
    step, rng = tiny_step()
    with pytest.raises(OutputError, match=f"in use by another run \\(process {holder.pid}\\)"):
        fit(step, X, rng=rng, epochs=1, batch_size=20, out_dir=tmp_path, stream=None)
    holder.kill()
    holder.wait(timeout=30)
    step, rng = tiny_step()
    assert len(fit(step, X, rng=rng, epochs=1, batch_size=20, out_dir=tmp_path / "other",
                   stream=None)) == 1
    step, rng = tiny_step()
    # free again at once
    fit(step, X, rng=rng, epochs=1, batch_size=20, out_dir=tmp_path, stream=None)
    assert not (tmp_path / LOCK_NAME).exists()


def test_cleanup_never_removes_a_file_that_a_live_run_is_writing(tmp_path):
    """A temporary in a held folder belongs to a live run: another run is refused before it
    cleans anything, and the file is intact; once its owner is gone, the next run removes it."""
    live = tmp_path / ".checkpoint.npz.k2j4_x9q.tmp"
    script = textwrap.dedent(f"""
        import time
        from tinyvae.lab.storage.files import hold_folder
        with hold_folder({str(tmp_path)!r}):
            open({str(live)!r}, "wb").write(b"half of a checkpoint")
            print("held", flush=True)
            time.sleep(600)
    """)
    holder = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        for _ in range(3):
            step, rng = tiny_step()
            with pytest.raises(OutputError, match="in use"):
                fit(step, X, rng=rng, epochs=1, batch_size=20, out_dir=tmp_path, stream=None)
            assert live.read_bytes() == b"half of a checkpoint"
    finally:
        holder.kill()
        holder.wait(timeout=30)
    step, rng = tiny_step()
    fit(step, X, rng=rng, epochs=1, batch_size=20, out_dir=tmp_path, stream=None)
    assert not live.exists()


@settings(max_examples=30, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(names=st.lists(st.sampled_from(["checkpoint.npz", "history.json", "history.csv",
                                       "metrics.json", "reconstructions.png", "samples.png",
                                       "latent.png", "x.part.npz"]),
                      min_size=1, max_size=6),
       random=st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789_", min_size=8, max_size=8),
       suffix=st.sampled_from([".tmp", ".part"]))
def test_orphan_temporaries_of_any_output_are_removed_and_nothing_else(tmp_path_factory, names,
                                                                       random, suffix):
    """What SIGKILL leaves of any atomic write (checkpoint, histories, metrics, figures) is removed
    by the next run that holds the folder; the user's own files are not."""
    folder = tmp_path_factory.mktemp("orphans")
    orphans = [folder / f".{name}.{random}{suffix}" for name in names]
    keep = [folder / "notes.txt", folder / ".hidden", folder / f"{random}.tmp",
            folder / f".{names[0]}.short.tmp"]
    for path in orphans + keep:
        path.write_bytes(b"x")
    with run_folder(folder):
        assert not any(path.exists() for path in orphans)
        assert all(path.exists() for path in keep)


def test_holding_is_reentrant_within_a_process_and_leaves_no_lock_file(tmp_path):
    with hold_folder(tmp_path):
        with hold_folder(tmp_path):
            assert (tmp_path / LOCK_NAME).exists()
        assert (tmp_path / LOCK_NAME).exists()
    assert not (tmp_path / LOCK_NAME).exists()
    assert remove_stale_temporaries(tmp_path) == []


# ---- SIGTERM behaves as Ctrl-C ----

def terminating_step(epoch_batch: int):
    """A step that sends this process SIGTERM just before its `epoch_batch`-th call."""
    step, rng = tiny_step()
    inner, calls = step.step, [0]

    def step_then_term(*args, **kwargs):
        calls[0] += 1
        if calls[0] == epoch_batch:
            os.kill(os.getpid(), signal.SIGTERM)
        return inner(*args, **kwargs)
    step.step = step_then_term
    return step, rng


@pytest.mark.slow
@settings(max_examples=8, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(at=st.integers(1, 12))
def test_sigterm_during_fit_keeps_the_last_epoch_and_restores_the_handler(tmp_path_factory, at):
    folder = tmp_path_factory.mktemp("term")
    seen = []
    previous = signal.signal(signal.SIGTERM, lambda *a: seen.append("outer"))
    try:
        step, rng = terminating_step(at)  # 3 batches an epoch: SIGTERM in epoch (at - 1) // 3 + 1
        with pytest.raises(TrainingInterrupted) as info:
            fit(step, X, rng=rng, epochs=4, batch_size=20, out_dir=folder, stream=None)
        finished = (at - 1) // 3
        assert (info.value.epoch == finished
                and load_checkpoint(folder / "checkpoint.npz").epoch == finished)
        assert sorted(p.name for p in folder.iterdir()) == ["checkpoint.npz", "history.csv",
                                                            "history.json"]
        os.kill(os.getpid(), signal.SIGTERM)  # after fit: the handler that was there before
        assert seen == ["outer"]
    finally:
        signal.signal(signal.SIGTERM, previous)
    # and the resumed run is the run that was never interrupted
    straight, rng = tiny_step()
    fit(straight, X, rng=rng, epochs=4, batch_size=20, out_dir=folder / "straight", stream=None)
    resumed, rng = tiny_step()
    fit(resumed, X, rng=rng, epochs=4, batch_size=20, out_dir=folder,
        resume=folder / "checkpoint.npz", stream=None)
    for key in straight.params:
        np.testing.assert_array_equal(straight.params[key], resumed.params[key])


def test_a_process_sent_sigterm_saves_and_says_where(tmp_path):
    run = start(tmp_path, epochs=1000, pause=0.02)
    wait_for(lambda: (tmp_path / "history.json").exists()
             and load_checkpoint(tmp_path / "checkpoint.npz").epoch >= 1)
    run.send_signal(signal.SIGTERM)
    out, err = run.communicate(timeout=60)
    assert run.returncode == 130 and out.startswith("INTERRUPTED"), (out, err)
    assert int(out.split()[1]) == load_checkpoint(tmp_path / "checkpoint.npz").epoch >= 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["checkpoint.npz", "history.csv",
                                                          "history.json"]


# ---- divergence is always TrainingDiverged, and the last good checkpoint stays ----

@settings(max_examples=16, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(lr=st.sampled_from([1e8, 1e15, 1e25, 1e38]),
       optimizer=st.sampled_from(["sgd", "adam", "adagrad"]),
       path=st.sampled_from(["reference", "fast"]))
def test_a_run_that_blows_up_ends_in_training_diverged_never_another_error(tmp_path_factory, lr,
                                                                           optimizer, path):
    folder = tmp_path_factory.mktemp("diverge")
    rng = np.random.default_rng(0)
    step = make_step(path, CONFIG, init_params(CONFIG, rng, np.float32),
                     make_optimizer(optimizer, lr), 20)
    with np.errstate(all="ignore"):
        try:
            fit(step, X, rng=rng, epochs=3, batch_size=20, out_dir=folder, stream=None)
        except Exception as exc:  # noqa: BLE001 - the point is which one
            assert type(exc).__name__ == "TrainingDiverged", repr(exc)
            assert "last good checkpoint" in str(exc)
    checkpoint = load_checkpoint(folder / "checkpoint.npz")  # whatever happened, it loads
    assert all(np.all(np.isfinite(arr)) for arr in checkpoint.params.values())


@pytest.mark.parametrize("errno_name", ["ENOSPC", "EDQUOT", "EIO", "EFBIG"])
def test_a_failed_write_of_any_output_names_the_file(tmp_path, errno_name):
    """Figures and downloads use write_atomically directly: its OSError must name the file too."""
    import errno

    from tinyvae.lab.storage.files import write_atomically

    def full(f):
        raise OSError(getattr(errno, errno_name), os.strerror(getattr(errno, errno_name)))
    with pytest.raises(OSError) as info:
        write_atomically(tmp_path / "samples.png", full)
    assert (str(tmp_path / "samples.png") in str(info.value)
            and os.strerror(info.value.errno) in str(info.value))
    assert list(tmp_path.iterdir()) == []
