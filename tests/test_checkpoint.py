"""Checkpoints: an exact round trip, a clear refusal of every bad file, and writes that a
failure half-way cannot corrupt."""

from __future__ import annotations

import errno
import io
import os
import subprocess
import sys
import textwrap
import zipfile

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tinyvae.config import VAEConfig, init_params
from tinyvae.lab.storage.checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from tinyvae.lab.storage.files import OutputError, atomic_write, check_writable_folder
from tinyvae.optim import make_optimizer
from tinyvae.vae import loss_and_grads

CONFIG = VAEConfig(input_dim=13, hidden_dims=(7,), latent_dim=3)
HISTORY = [{"epoch": e, "beta": 1.0, "train_loss": loss, "train_recon": loss - 1, "train_kl": 1.0,
            "test_loss": None, "test_recon": None, "test_kl": None, "seconds": 0.5,
            "samples_per_sec": 10.0, "elapsed": 0.5 * e}
           for e, loss in [(1, 9.5), (2, 8.25)]]


def make_state(seed=0, dtype=np.float32):
    """Parameters after two Adam steps (so the optimizer has non-trivial memory) and a used rng."""
    rng = np.random.default_rng(seed)
    params = init_params(CONFIG, rng, dtype)
    optimizer = make_optimizer("adam", 1e-2)
    for _ in range(2):
        x = rng.random((5, CONFIG.input_dim))
        eps = rng.standard_normal((5, CONFIG.latent_dim))
        _, grads, _ = loss_and_grads(params, x, eps, CONFIG)
        optimizer.step(params, grads)
    return {"params": params, "optimizer": optimizer, "config": CONFIG, "epoch": 2,
            "history": HISTORY, "rng": rng, "extra": {"train": {"batch_size": 5}}}


def save(path, **changes):
    state = {**make_state(), **changes}
    save_checkpoint(path, **state)
    return state


def rewrite(path, change):
    """Read a saved checkpoint's arrays, let `change` edit the dict, and write it back as .npz."""
    with np.load(path, allow_pickle=False) as npz:
        arrays = {key: npz[key] for key in npz.files}
    change(arrays)
    np.savez(path, **arrays)


def refusal(path, config=CONFIG, **kw) -> str:
    with pytest.raises(CheckpointError) as info:
        load_checkpoint(path, config, **kw)
    return str(info.value)


def assert_same_state(checkpoint, state):
    assert checkpoint.config == state["config"]
    assert checkpoint.epoch == state["epoch"] and checkpoint.history == state["history"]
    assert checkpoint.extra == state["extra"]
    assert checkpoint.params.keys() == state["params"].keys()
    for key, arr in state["params"].items():
        assert checkpoint.params[key].dtype == arr.dtype
        np.testing.assert_array_equal(checkpoint.params[key], arr)
    saved, restored = state["optimizer"].state_dict(), checkpoint.optimizer.state_dict()
    assert saved.keys() == restored.keys()
    for key in saved:
        np.testing.assert_array_equal(restored[key], saved[key])
    assert checkpoint.optimizer.hparams() == state["optimizer"].hparams()


# ---- the round trip ----

@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_round_trip_restores_every_bit(tmp_path, dtype):
    state = save(tmp_path / "c.npz", **make_state(dtype=dtype))
    checkpoint = load_checkpoint(tmp_path / "c.npz", CONFIG, dtype=dtype)
    assert_same_state(checkpoint, state)
    # The restored generator continues the very same stream (PCG64's 128-bit state survives JSON).
    np.testing.assert_array_equal(checkpoint.rng.random(5), state["rng"].random(5))


def test_a_resumed_optimizer_takes_the_same_step(tmp_path):
    state = save(tmp_path / "c.npz")
    checkpoint = load_checkpoint(tmp_path / "c.npz", CONFIG)
    grads = {key: np.full_like(arr, 0.3) for key, arr in state["params"].items()}
    state["optimizer"].step(state["params"], grads)
    checkpoint.optimizer.step(checkpoint.params, grads)
    for key in grads:
        np.testing.assert_array_equal(checkpoint.params[key], state["params"][key])


def test_the_file_is_a_plain_npz_without_pickles(tmp_path):
    save(tmp_path / "c.npz")
    with np.load(tmp_path / "c.npz", allow_pickle=False) as npz:
        assert all(npz[key].dtype != object for key in npz.files)
        assert ({"format_version", "epoch", "config", "history", "rng_state", "optimizer"}
                <= set(npz.files))


# ---- refusals: each names the file and what is wrong ----

@pytest.mark.parametrize("keep", [0.0, 0.1, 0.5, 0.9, 0.999])
def test_refuses_a_truncated_file(tmp_path, keep):
    path = tmp_path / "c.npz"
    save(path)
    data = path.read_bytes()
    path.write_bytes(data[:int(len(data) * keep)])
    assert str(path) in refusal(path)


def test_refuses_garbage_bytes(tmp_path):
    path = tmp_path / "c.npz"
    path.write_bytes(np.random.default_rng(0).integers(0, 256, 5000, dtype=np.uint8).tobytes())
    message = refusal(path)
    assert str(path) in message and "not an .npz" in message


def test_refuses_a_single_npy_array(tmp_path):
    path = tmp_path / "c.npz"
    with open(path, "wb") as f:
        np.save(f, np.zeros(3))
    assert ".npy" in refusal(path)


def test_refuses_a_folder_and_a_missing_file(tmp_path):
    assert "folder" in refusal(tmp_path)
    assert str(tmp_path / "nothing.npz") in refusal(tmp_path / "nothing.npz")


def test_refuses_a_checkpoint_of_another_model_naming_the_fields(tmp_path):
    save(tmp_path / "c.npz")
    message = refusal(tmp_path / "c.npz", VAEConfig(input_dim=13, hidden_dims=(7,), latent_dim=4))
    assert "latent_dim: checkpoint has 3, requested 4" in message
    assert "hidden_dims" not in message


def test_refuses_a_missing_key(tmp_path):
    path = tmp_path / "c.npz"
    save(path)
    rewrite(path, lambda a: a.pop("param/decoder.b_out"))
    assert "param/decoder.b_out" in refusal(path)
    rewrite(path, lambda a: a.pop("rng_state"))
    assert "rng_state" in refusal(path)


def test_refuses_a_parameter_of_the_wrong_shape(tmp_path):
    path = tmp_path / "c.npz"
    save(path)
    rewrite(path, lambda a: a.update({"param/encoder.W0": np.zeros((13, 8), np.float32)}))
    message = refusal(path)
    assert "param/encoder.W0" in message and "(13, 8)" in message and "(13, 7)" in message


@pytest.mark.parametrize("dtype", [np.float16, np.int32])
def test_refuses_a_parameter_of_the_wrong_dtype(tmp_path, dtype):
    path = tmp_path / "c.npz"
    save(path)
    rewrite(path, lambda a: a.update({"param/encoder.b0": a["param/encoder.b0"].astype(dtype)}))
    message = refusal(path)
    assert "param/encoder.b0" in message and np.dtype(dtype).name in message


def test_refuses_float64_parameters_when_float32_is_requested(tmp_path):
    save(tmp_path / "c.npz", **make_state(dtype=np.float64))
    assert "float64" in refusal(tmp_path / "c.npz", dtype=np.float32)


def test_refuses_nan_parameters(tmp_path):
    path = tmp_path / "c.npz"
    save(path)

    def poison(arrays):
        arrays["param/decoder.W_out"][0, 0] = np.nan
    rewrite(path, poison)
    message = refusal(path)
    assert "param/decoder.W_out" in message and "NaN" in message


def test_refuses_a_pickled_object_array(tmp_path):
    path = tmp_path / "c.npz"
    save(path)
    with np.load(path, allow_pickle=False) as npz:
        arrays = {key: npz[key] for key in npz.files}
    # np.savez pickles an object array without complaint; loading it could run arbitrary code.
    arrays["extra"] = np.array([{"innocent": "dict"}], dtype=object)
    np.savez(path, **arrays)
    message = refusal(path)
    assert "pickled" in message and "extra" in message


def test_refuses_a_header_claiming_a_trillion_elements_without_allocating_them(tmp_path):
    path = tmp_path / "c.npz"
    save(path)
    with zipfile.ZipFile(path) as zf:
        members = {name: zf.read(name) for name in zf.namelist()}
    header = io.BytesIO()
    np.lib.format.write_array_header_1_0(header, {"descr": "<f4", "fortran_order": False,
                                                  "shape": (10**12,)})
    members["param/encoder.b0.npy"] = header.getvalue() + bytes(28)  # 4 TB claimed, 28 bytes held
    with zipfile.ZipFile(path, "w") as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    message = refusal(path)
    assert "param/encoder.b0" in message and "1000000000000" in message


def test_refuses_an_optimizer_state_that_does_not_fit(tmp_path):
    path = tmp_path / "c.npz"
    save(path)
    rewrite(path, lambda a: a.update({"optim/m/encoder.W0": np.zeros((2, 2), np.float32)}))
    assert "encoder.W0" in refusal(path)


def test_refuses_a_bad_json_field(tmp_path):
    path = tmp_path / "c.npz"
    save(path)
    rewrite(path, lambda a: a.update({"config": np.array("{not json")}))
    assert "'config' is not valid JSON" in refusal(path)


# Corruption anywhere: one documented error type, or (a harmless byte such as a timestamp)
# exactly the original checkpoint; never another exception, never a hang.
@pytest.fixture(scope="module")
def original(tmp_path_factory):
    path = tmp_path_factory.mktemp("orig") / "c.npz"
    state = save(path)
    return path.read_bytes(), state, tmp_path_factory.mktemp("corrupt")


@settings(max_examples=150, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_corruption_anywhere_gives_checkpoint_error_or_the_original(original, data):
    blob, state, folder = original
    kind = data.draw(st.sampled_from(["truncate", "overwrite", "insert"]))
    at = data.draw(st.integers(0, len(blob) - 1))
    if kind == "truncate":
        corrupt = blob[:at]
    else:
        junk = data.draw(st.binary(min_size=1, max_size=16))
        corrupt = blob[:at] + junk + blob[at + (len(junk) if kind == "overwrite" else 0):]
    path = folder / "c.npz"
    path.write_bytes(corrupt)
    try:
        checkpoint = load_checkpoint(path, CONFIG)
    except CheckpointError as exc:
        assert str(path) in str(exc)
        return
    assert_same_state(checkpoint, state)


# ---- writes that fail half-way leave the previous checkpoint ----

def listing(folder):
    return sorted(p.name for p in folder.iterdir())


@pytest.mark.parametrize("failure", [OSError(errno.ENOSPC, "No space left on device"),
                                     KeyboardInterrupt()])
def test_a_write_failing_half_way_leaves_the_old_checkpoint(tmp_path, monkeypatch, failure):
    path = tmp_path / "checkpoint.npz"
    old = save(path)
    real_savez = np.savez

    def half_then_fail(f, **arrays):
        real_savez(f, **arrays)  # the whole archive is in the temporary file...
        f.truncate(f.tell() // 2)  # ...then half of it is lost, and the write fails
        raise failure

    monkeypatch.setattr(np, "savez", half_then_fail)
    new = make_state(seed=1)
    expected = CheckpointError if isinstance(failure, OSError) else KeyboardInterrupt
    with pytest.raises(expected) as info:
        save_checkpoint(path, **new)
    if expected is CheckpointError:
        assert str(path) in str(info.value) and "No space left" in str(info.value)
    assert listing(tmp_path) == ["checkpoint.npz"]  # no temporary file left behind
    assert_same_state(load_checkpoint(path, CONFIG), old)


@pytest.mark.parametrize("step", ["replace", "fsync"])
def test_a_failing_rename_or_fsync_leaves_the_old_checkpoint(tmp_path, monkeypatch, step):
    path = tmp_path / "checkpoint.npz"
    old = save(path)

    def fail(*args, **kwargs):
        raise OSError(errno.ENOSPC if step == "replace" else errno.EIO, "simulated failure")

    monkeypatch.setattr(os, step, fail)
    with pytest.raises(CheckpointError, match="simulated failure"):
        save_checkpoint(path, **make_state(seed=1))
    monkeypatch.undo()
    assert listing(tmp_path) == ["checkpoint.npz"]
    assert_same_state(load_checkpoint(path, CONFIG), old)


def test_an_unwritable_folder_gives_checkpoint_error(tmp_path):
    # Tests may run as root, whom chmod does not stop; a path "inside" a regular file fails for
    # anyone.
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    with pytest.raises(CheckpointError, match="a-file"):
        save_checkpoint(blocker / "checkpoint.npz", **make_state())


def test_an_unwritable_output_folder_or_file_gives_output_error(tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    with pytest.raises(OutputError, match="a-file"):
        check_writable_folder(blocker / "run")
    with pytest.raises(OutputError, match="/proc"):
        atomic_write("/proc/tinyvae-checkpoint.npz", lambda f: f.write(b"x"))


def test_nan_parameters_are_never_saved(tmp_path):
    path = tmp_path / "checkpoint.npz"
    old = save(path)
    bad = make_state(seed=1)
    bad["params"]["encoder.b0"][0] = np.inf
    with pytest.raises(CheckpointError, match="encoder.b0"):
        save_checkpoint(path, **bad)
    assert_same_state(load_checkpoint(path, CONFIG), old)


def test_a_full_disk_gives_checkpoint_error_and_keeps_the_old_file(tmp_path):
    """A real size limit (RLIMIT_FSIZE) in a child process: writes beyond it fail with EFBIG,
    as they would with ENOSPC on a full disk."""
    path = tmp_path / "checkpoint.npz"
    old = save(path)
    script = textwrap.dedent(f"""
        import resource, signal, sys
        import numpy as np
        from tinyvae.lab.storage.checkpoint import CheckpointError, save_checkpoint
        from tinyvae.optim import make_optimizer
        from tinyvae.config import VAEConfig, init_params
        big = VAEConfig(input_dim=784, hidden_dims=(64,), latent_dim=8)  # ~0.8 MB of float32
        rng = np.random.default_rng(0)
        params = init_params(big, rng, np.float32)
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # get EFBIG instead of being killed
        resource.setrlimit(resource.RLIMIT_FSIZE, (100_000, 100_000))
        try:
            save_checkpoint({str(path)!r}, params=params, optimizer=make_optimizer("adam", 1e-3),
                            config=big, epoch=0, history=[], rng=rng)
        except CheckpointError as exc:
            print(exc)
            sys.exit(3)
    """)
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                            timeout=60)
    assert result.returncode == 3, result.stderr
    assert str(path) in result.stdout and "File too large" in result.stdout
    assert listing(tmp_path) == ["checkpoint.npz"]
    assert_same_state(load_checkpoint(path, CONFIG), old)


def test_zip_members_must_be_npy_arrays(tmp_path):
    path = tmp_path / "c.npz"
    save(path)
    with zipfile.ZipFile(path, "a") as zf:
        zf.writestr("notes.txt", "hello")
    assert "notes.txt" in refusal(path)
