"""Issue 12, checkpoints: every claim a file makes is checked before it costs memory or time, and
well-formed arrays holding poison (optimizer state, history, random state, JSON) are refused
with one CheckpointError that names the file and the key, never loaded, never a crash."""

from __future__ import annotations

import io
import json
import os
import struct
import subprocess
import sys
import textwrap
import time
import warnings
import zipfile

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tinyvae.config import VAEConfig, init_params
from tinyvae.lab.storage.checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from tinyvae.lab.storage.model import load
from tinyvae.lab.storage.state_checks import HISTORY_FIELDS, MAX_GRADIENT
from tinyvae.optim import make_optimizer
from tinyvae.vae import loss_and_grads

CONFIG = VAEConfig(input_dim=13, hidden_dims=(7,), latent_dim=3)
SETTINGS = settings(max_examples=60, deadline=None,
                    suppress_health_check=[HealthCheck.function_scoped_fixture])


def record(epoch: int) -> dict:
    return {"epoch": epoch, "beta": 1.0, "train_loss": 9.0, "train_recon": 8.0, "train_kl": 1.0,
            "test_loss": 9.5, "test_recon": 8.5, "test_kl": 1.0, "seconds": 0.25,
            "samples_per_sec": 100.0, "elapsed": 0.25 * epoch}


def trained_arrays(optimizer: str = "adam", steps: int = 3, **hparams) -> dict[str, np.ndarray]:
    """The arrays of a real checkpoint after a few real optimizer steps (so the state is
    genuine)."""
    rng = np.random.default_rng(1)
    params = init_params(CONFIG, rng, np.float32)
    opt = make_optimizer(optimizer, 1e-2, **hparams)
    for _ in range(steps):
        x = (rng.random((4, CONFIG.input_dim)) < 0.5).astype(np.float32)
        _, grads, _ = loss_and_grads(params, x, rng.standard_normal((4, CONFIG.latent_dim)), CONFIG)
        opt.step(params, grads)
    buffer = io.BytesIO()
    save_checkpoint_to(buffer, params, opt, rng, history=[record(1), record(2)])
    with np.load(io.BytesIO(buffer.getvalue()), allow_pickle=False) as npz:
        return {key: npz[key] for key in npz.files}


def save_checkpoint_to(buffer, params, opt, rng, history):
    import tempfile
    with tempfile.TemporaryDirectory() as folder:
        path = os.path.join(folder, "c.npz")
        save_checkpoint(path, params=params, optimizer=opt, config=CONFIG, epoch=len(history),
                        history=history, rng=rng)
        buffer.write(open(path, "rb").read())


ADAM = trained_arrays("adam")
OPTIMIZERS = {"adam": ADAM, "adagrad": trained_arrays("adagrad"),
              "sgd": trained_arrays("sgd", momentum=0.9)}


def write(path, arrays) -> None:
    np.savez(path, **arrays)


def refusal(path) -> str:
    with pytest.raises(CheckpointError) as info:
        load_checkpoint(path)
    assert str(path) in str(info.value)
    return str(info.value)


def test_a_genuine_state_of_every_optimizer_loads(tmp_path):
    for name, arrays in OPTIMIZERS.items():
        write(tmp_path / f"{name}.npz", arrays)
        assert load_checkpoint(tmp_path / f"{name}.npz").optimizer.name == name


# ---- the optimizer's memory ----

POISON = {"nan": np.nan, "inf": np.inf, "-inf": -np.inf, "negative": -1e-3, "huge": 1e30}


@SETTINGS
@given(data=st.data())
def test_a_poisoned_optimizer_state_is_refused_naming_the_key(tmp_path, data):
    name = data.draw(st.sampled_from(sorted(OPTIMIZERS)))
    arrays = {key: arr.copy() for key, arr in OPTIMIZERS[name].items()}
    key = data.draw(st.sampled_from(sorted(k for k in arrays
                                           if k.startswith("optim/") and k != "optim/step")))
    slot = key.split("/")[1]
    # what each slot can never hold: non-finite anywhere; < 0 in a mean or sum of squares;
    # more than gradients below MAX_GRADIENT give in Adam's moments and Adagrad's sum
    kinds = ["nan", "inf", "-inf"] + (["negative"] if slot in ("v", "sum_sq") else [])
    kinds += ["huge"] if slot in ("m", "v", "sum_sq") else []
    kind = data.draw(st.sampled_from(kinds))
    flat = arrays[key].reshape(-1)
    flat[data.draw(st.integers(0, flat.size - 1))] = POISON[kind] * (
        -1 if kind == "huge" and slot == "m" and data.draw(st.booleans()) else 1)
    write(tmp_path / "c.npz", arrays)
    message = refusal(tmp_path / "c.npz")
    assert key in message


def test_adam_v_too_small_for_its_m_is_refused(tmp_path):
    arrays = dict(ADAM)
    arrays["optim/v/encoder.W0"] = np.zeros_like(arrays["optim/v/encoder.W0"])  # m ≠ 0 beside v = 0
    write(tmp_path / "c.npz", arrays)
    assert "optim/m/encoder.W0" in refusal(tmp_path / "c.npz")


def test_the_moment_bound_holds_for_real_runs_of_many_lengths_and_betas(tmp_path):
    """The Cauchy-Schwarz check never refuses a state that real Adam steps produced."""
    for steps, beta1, beta2 in [(1, 0.9, 0.999), (7, 0.5, 0.6), (40, 0.9, 0.99), (25, 0.0, 0.999)]:
        write(tmp_path / "c.npz", trained_arrays("adam", steps, beta1=beta1, beta2=beta2))
        load_checkpoint(tmp_path / "c.npz")
    assert MAX_GRADIENT ** 2 < 1e30  # the 1e30 of the issue is beyond the bound


# ---- the history ----

@SETTINGS
@given(data=st.data())
def test_a_bad_history_entry_is_refused_naming_it(tmp_path, data):
    history = [record(1), record(2)]
    entry = data.draw(st.integers(0, 1))
    field = data.draw(st.sampled_from(HISTORY_FIELDS))
    change = data.draw(st.sampled_from(["missing", "nan", "inf", "string", "list", "null", "bool",
                                        "renumber"]))
    if change == "missing":
        del history[entry][field]
    elif change == "null" and field in ("test_loss", "test_recon", "test_kl"):
        history[entry][field] = "null?"  # null is allowed there; a string is not
    elif change == "renumber":
        history[entry]["epoch"] = data.draw(st.sampled_from([0, 3, -1, 1.5, True]))
        if history[entry]["epoch"] == entry + 1:
            return
    else:
        history[entry][field] = {"nan": float("nan"), "inf": float("-inf"), "string": "1.0",
                                 "list": [1.0], "null": None, "bool": True}[change]
    arrays = dict(ADAM)
    arrays["history"] = np.array(json.dumps(history, allow_nan=True))
    write(tmp_path / "c.npz", arrays)
    # "history entry n: ..." or NaN: "not valid JSON"
    assert "history" in refusal(tmp_path / "c.npz")


def test_what_an_after_epoch_hook_adds_may_be_numbers_bools_strings_or_null(tmp_path):
    history = [dict(record(1), stage=1, stage_end=True, note="x", iw_bound=None), record(2)]
    arrays = dict(ADAM)
    arrays["history"] = np.array(json.dumps(history))
    write(tmp_path / "c.npz", arrays)
    assert load_checkpoint(tmp_path / "c.npz").history == history


# ---- JSON and the random state ----

@settings(max_examples=25, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(field=st.sampled_from(["config", "history", "rng_state", "optimizer", "extra"]),
       depth=st.integers(5_000, 200_000), bracket=st.sampled_from(["[]", "{}"]))
def test_deeply_nested_json_is_one_clear_error_not_a_recursion_error(tmp_path, field, depth,
                                                                     bracket):
    opening = "[" * depth if bracket == "[]" else '{"a":' * depth
    closing = "]" * depth if bracket == "[]" else "}" * depth
    arrays = dict(ADAM)
    arrays[field] = np.array(opening + "1" + closing)
    write(tmp_path / "c.npz", arrays)
    assert field in refusal(tmp_path / "c.npz")


def rng_states():
    """States of every bit generator numpy has, with one part replaced by something else."""
    names = ["PCG64", "PCG64DXSM", "Philox", "SFC64", "MT19937"]
    junk = st.one_of(st.integers(-2**130, 2**130), st.floats(allow_nan=True), st.text(max_size=3),
                     st.none(), st.booleans(), st.lists(st.integers(-5, 2**64 + 5), max_size=700),
                     st.just({}))
    return st.tuples(st.sampled_from(names), st.integers(0, 10), junk, st.integers(0, 2**16))


def paths_of(state, prefix=()):
    for key, value in state.items():
        yield prefix + (key,)
        if isinstance(value, dict):
            yield from paths_of(value, prefix + (key,))


@settings(max_examples=100, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(case=rng_states())
def test_any_bad_random_state_is_refused_never_a_crash(tmp_path, case):
    name, which, junk, pos = case
    state = json.loads(json.dumps(getattr(np.random, name)(5).state, default=lambda a: a.tolist()))
    if name == "MT19937" and which % 2:
        state["state"]["pos"] = pos  # 0..624 is valid; past it numpy would read beyond its table
    else:
        paths = list(paths_of(state))
        path = paths[which % len(paths)]
        holder = state
        for key in path[:-1]:
            holder = holder[key]
        holder[path[-1]] = junk
    arrays = dict(ADAM)
    arrays["rng_state"] = np.array(json.dumps(state))
    write(tmp_path / "c.npz", arrays)
    try:
        checkpoint = load_checkpoint(tmp_path / "c.npz")
    except CheckpointError as exc:
        assert "rng_state" in str(exc)
        return
    checkpoint.rng.random(3)  # what was accepted works


def test_a_short_mersenne_twister_key_and_a_position_past_its_table_are_refused(tmp_path):
    state = json.loads(json.dumps(np.random.MT19937(5).state, default=lambda a: a.tolist()))
    for change in ({"key": state["state"]["key"][:3]}, {"pos": 10**6}, {"pos": -5},
                   {"key": [0] * 624}):
        arrays = dict(ADAM)
        arrays["rng_state"] = np.array(json.dumps({**state, "state": {**state["state"], **change}}))
        write(tmp_path / "c.npz", arrays)
        assert "rng_state" in refusal(tmp_path / "c.npz")


# ---- the zip's claims, checked before anything is inflated ----

def zip_bytes(members: dict[str, bytes], compression=zipfile.ZIP_STORED) -> bytes:
    buffer = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # zipfile warns about duplicate names, which are the point
        with zipfile.ZipFile(buffer, "w", compression=compression) as zf:
            for name, data in members.items() if isinstance(members, dict) else members:
                zf.writestr(name, data)
    return buffer.getvalue()


def member_bytes(arrays) -> dict[str, bytes]:
    out = {}
    for key, arr in arrays.items():
        buffer = io.BytesIO()
        np.lib.format.write_array(buffer, arr, allow_pickle=False)
        out[key + ".npy"] = buffer.getvalue()
    return out


GOOD = member_bytes(ADAM)


@pytest.mark.parametrize("name", sorted(GOOD))
def test_a_member_twice_is_refused(tmp_path, name):
    (tmp_path / "c.npz").write_bytes(zip_bytes(list(GOOD.items()) + [(name, GOOD[name])]))
    assert "twice" in refusal(tmp_path / "c.npz")


@SETTINGS
@given(name=st.text(min_size=1, max_size=40).filter(lambda n: "\x00" not in n),
       size=st.integers(0, 5000))
def test_a_member_under_an_unexpected_name_is_refused_unread(tmp_path, name, size):
    members = dict(GOOD)
    members[name] = b"\0" * size
    if name in GOOD:
        return
    (tmp_path / "c.npz").write_bytes(zip_bytes(members))
    refusal(tmp_path / "c.npz")


def patch_sizes(blob: bytes, name: str, size: int) -> bytes:
    """Rewrite the uncompressed (and compressed) size a member declares, in its local header and
    in the central directory, leaving its data as it is."""
    blob = bytearray(blob)
    encoded = name.encode()
    for signature, offset in ((b"PK\x03\x04", 18), (b"PK\x01\x02", 20)):
        start = 0
        while (at := blob.find(signature, start)) >= 0:
            name_at = at + (30 if signature == b"PK\x03\x04" else 46)
            if blob[name_at:name_at + len(encoded)] == encoded:
                blob[at + offset:at + offset + 8] = struct.pack("<II", size, size)
            start = at + 4
    return bytes(blob)


@SETTINGS
@given(name=st.sampled_from(sorted(GOOD)), size=st.integers(0, 2**32 - 1))
def test_any_declared_size_is_checked_before_reading(tmp_path, name, size):
    blob = patch_sizes(zip_bytes(GOOD), name, size)
    (tmp_path / "c.npz").write_bytes(blob)
    start = time.perf_counter()
    try:
        load_checkpoint(tmp_path / "c.npz")
    except CheckpointError as exc:
        assert str(tmp_path / "c.npz") in str(exc)
    else:
        assert size == len(GOOD[name])  # only the true size can load
    assert time.perf_counter() - start < 2


@pytest.mark.parametrize("compression", [zipfile.ZIP_DEFLATED, zipfile.ZIP_BZIP2, zipfile.ZIP_LZMA])
def test_compressed_members_are_refused_before_inflating(tmp_path, compression):
    (tmp_path / "c.npz").write_bytes(zip_bytes(GOOD, compression))
    assert "compressed" in refusal(tmp_path / "c.npz")


def zip64_claiming(blob: bytes, count: int) -> bytes:
    """The archive with a zip64 end record that claims `count` members (what a file of 200,000
    members has), inserted before the classic end record."""
    at = blob.rfind(b"PK\x05\x06")
    size, offset = blob[at + 12:at + 16], blob[at + 16:at + 20]
    record = (b"PK\x06\x06" + (44).to_bytes(8, "little") + bytes(12)
              + count.to_bytes(8, "little") * 2
              + int.from_bytes(size, "little").to_bytes(8, "little")
              + int.from_bytes(offset, "little").to_bytes(8, "little"))
    locator = b"PK\x06\x07" + bytes(4) + at.to_bytes(8, "little") + (1).to_bytes(4, "little")
    end = blob[at:at + 8] + b"\xff\xff\xff\xff" + blob[at + 12:]
    return blob[:at] + record + locator + end


@pytest.mark.parametrize("count", [5000, 200_000, 2**40])
def test_a_file_of_many_members_is_refused_at_once(tmp_path, count):
    if count == 5000:  # real members
        (tmp_path / "c.npz").write_bytes(zip_bytes({f"m{i}.npy": b"" for i in range(count)}))
    else:
        (tmp_path / "c.npz").write_bytes(zip64_claiming(zip_bytes(GOOD), count))
    start = time.perf_counter()
    assert "members" in refusal(tmp_path / "c.npz")
    assert time.perf_counter() - start < 1


@pytest.mark.parametrize("kind", ["fifo", "folder", "device", "symlink to a fifo"])
def test_a_checkpoint_path_that_is_not_a_regular_file_is_refused_without_blocking(tmp_path, kind):
    path = tmp_path / "checkpoint.npz"
    if kind == "fifo":
        os.mkfifo(path)
    elif kind == "folder":
        path.mkdir()
    elif kind == "device":
        path = "/dev/zero"
    else:
        os.mkfifo(tmp_path / "pipe")
        path.symlink_to(tmp_path / "pipe")
    code = (f"from tinyvae.lab.storage.checkpoint import load_checkpoint\n"
            f"from tinyvae.lab.storage.model import load\n"
            f"for f in (load_checkpoint, load):\n    try: f({str(path)!r})\n"
            f"    except Exception as e: print(type(e).__name__, e)\n")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            timeout=60)
    lines = result.stdout.splitlines()
    assert len(lines) == 2 and all(line.startswith("CheckpointError") for line in lines), result
    assert all("regular file" in line or "folder" in line for line in lines)


@pytest.mark.slow
def test_memory_stays_bounded_by_the_model_not_by_the_claims(tmp_path):
    """A zip bomb under an unexpected name, a 4 TB claim and a deflated parameter: each refused
    while the process never grows by more than a few MB over loading a good checkpoint."""
    good = tmp_path / "good.npz"
    good.write_bytes(zip_bytes(GOOD))
    bomb = tmp_path / "bomb.npz"
    bomb.write_bytes(zip_bytes({**GOOD, "zzz.npy": b"\0" * (300 * 2**20)}, zipfile.ZIP_DEFLATED))
    claim = tmp_path / "claim.npz"
    header = io.BytesIO()
    np.lib.format.write_array_header_1_0(header, {"descr": "<f4", "fortran_order": False,
                                                  "shape": (10**12,)})
    claim.write_bytes(zip_bytes({**GOOD, "param/encoder.b0.npy": header.getvalue() + bytes(28)}))
    assert bomb.stat().st_size < 2 * 2**20
    script = textwrap.dedent(f"""
        import resource, time
        from tinyvae.lab.storage.checkpoint import CheckpointError, load_checkpoint
        load_checkpoint({str(good)!r})
        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        start = time.perf_counter()
        for path in ({str(bomb)!r}, {str(claim)!r}):
            try:
                load_checkpoint(path)
            except CheckpointError as exc:
                pass
            else:
                raise SystemExit("accepted " + path)
        grown = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024
        print(grown, time.perf_counter() - start)
    """)
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0, result.stderr
    grown_mb, seconds = map(float, result.stdout.split())
    assert grown_mb < 20 and seconds < 2


@SETTINGS
@given(data=st.data())
def test_random_truncations_and_corruptions_of_a_model_file_are_one_error(tmp_path, data):
    """model.load reads through the same checked reader as load_checkpoint."""
    blob = zip_bytes(GOOD)
    at = data.draw(st.integers(0, len(blob) - 1))
    kind = data.draw(st.sampled_from(["truncate", "overwrite"]))
    junk = data.draw(st.binary(min_size=1, max_size=8))
    corrupt = blob[:at] if kind == "truncate" else blob[:at] + junk + blob[at + len(junk):]
    (tmp_path / "c.npz").write_bytes(corrupt)
    try:
        load(tmp_path / "c.npz")
    except CheckpointError as exc:
        assert str(tmp_path / "c.npz") in str(exc)


@settings(max_examples=80, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_corrupting_the_zip_directory_and_end_records_is_one_error(tmp_path, data):
    """The central directory and the end records are what the reader trusts first: random bytes
    there, a fake zip64 locator pointing anywhere, or huge counts give a CheckpointError, fast."""
    blob = bytearray(zip_bytes(GOOD))
    directory = blob.rfind(b"PK\x05\x06")
    start_of_directory = int.from_bytes(blob[directory + 16:directory + 20], "little")
    kind = data.draw(st.sampled_from(["bytes", "zip64 locator", "field"]))
    if kind == "bytes":
        at = data.draw(st.integers(start_of_directory, len(blob) - 1))
        junk = data.draw(st.binary(min_size=1, max_size=12))
        blob[at:at + len(junk)] = junk
    elif kind == "zip64 locator":
        offset = data.draw(st.integers(0, 2**64 - 1))
        blob[directory - 20:directory] = (b"PK\x06\x07" + bytes(4) + offset.to_bytes(8, "little")
                                          + bytes(4))
    else:  # one of the end record's counts or sizes or offsets
        field = data.draw(st.sampled_from([(8, 2), (10, 2), (12, 4), (16, 4), (20, 2)]))
        value = data.draw(st.integers(0, 2 ** (8 * field[1]) - 1))
        blob[directory + field[0]:directory + sum(field)] = value.to_bytes(field[1], "little")
    (tmp_path / "c.npz").write_bytes(bytes(blob))
    start = time.perf_counter()
    try:
        checkpoint = load_checkpoint(tmp_path / "c.npz")
    except CheckpointError as exc:
        assert str(tmp_path / "c.npz") in str(exc)
    else:
        assert checkpoint.epoch == 2
    assert time.perf_counter() - start < 2
