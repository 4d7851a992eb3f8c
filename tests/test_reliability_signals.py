"""Runs, signals and holds: every command ends the same way whatever stops it.

SIGTERM and SIGHUP stop every command as Ctrl-C does (status 130, one line, no temporary file
left), unless they are ignored (nohup); Ctrl-C while a verb's modules load is no traceback.
A command writing into a run's folder holds it. reproduce records what fixes a run's bits
(--step too) and refuses a change. One exit status convention (commands/status.py): a full disk
is 1 everywhere, and a read-only folder is "cannot write X" for every command.
"""

from __future__ import annotations

import os
import random
import resource
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from conftest import TINY, cli, default_signals

# `python -m tinyvae ARGS`, with every atomic write pausing once its temporary file holds bytes
# (the first write whose name ends in .png.*.tmp, .json.*.tmp or .npz.*.tmp), saying WRITING:
# the moment a signal is sent.
PAUSING = textwrap.dedent("""
    import os, runpy, sys, time
    fsync, paused = os.fsync, []
    def pausing(fd):
        name = os.readlink(f"/proc/self/fd/{fd}")
        ours = any(f"{suffix}." in name for suffix in (".png", ".json", ".npz"))
        if name.endswith(".tmp") and ours and not paused:
            paused.append(name)
            print("WRITING", name, flush=True)
            time.sleep(60)
        return fsync(fd)
    os.fsync = pausing
    sys.argv = ["tinyvae", *sys.argv[1:]]
    runpy.run_module("tinyvae", run_name="__main__", alter_sys=True)
""")


def run_until_writing(args, env, cwd):
    process = subprocess.Popen([sys.executable, "-c", PAUSING, *args], env=env, cwd=cwd,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               preexec_fn=default_signals)
    for line in process.stdout:
        if line.startswith("WRITING"):
            return process
    raise AssertionError(f"never wrote: {process.communicate()[1]}")


def temporaries(folder: Path) -> list[str]:
    return [p.name for p in Path(folder).rglob("*") if p.name.endswith((".tmp", ".part"))]


VERBS = {
    "figures": ["figures", "{ckpt}", "--out", "{tmp}"],
    "sample": ["sample", "{ckpt}", "--png", "{tmp}/s.png"],
    "reconstruct": ["reconstruct", "{ckpt}", "--npz", "{tmp}/r.npz"],
    "explore": ["explore", "{ckpt}", "--png", "{tmp}/e.png"],
    "evaluate": ["evaluate", "{ckpt}", "--iw-samples", "0", "--json", "{tmp}/m.json"],
}


@pytest.mark.parametrize("name", VERBS)
@pytest.mark.parametrize("signame", ["SIGTERM", "SIGHUP"])
def test_sigterm_and_sighup_stop_every_verb_as_ctrl_c_does_leaving_no_temporary(
        tiny_run, data_env, tmp_path, name, signame):
    out, _ = tiny_run
    args = [a.replace("{ckpt}", str(out / "checkpoint.npz")).replace("{tmp}", str(tmp_path))
            for a in VERBS[name]]
    process = run_until_writing(args, data_env, tmp_path)
    process.send_signal(getattr(signal, signame))
    _, err = process.communicate(timeout=60)
    assert process.returncode == 130 and "Traceback" not in err, (process.returncode, err)
    assert err.strip().endswith("interrupted") and len(err.strip().splitlines()) == 1, err
    assert temporaries(tmp_path) == [] and temporaries(out) == []


def test_an_ignored_sighup_stays_ignored_as_nohup_wants(tiny_run, data_env, tmp_path):
    out, _ = tiny_run
    command = [sys.executable, "-c", PAUSING, "sample", str(out / "checkpoint.npz"), "--png",
               str(tmp_path / "s.png")]
    process = subprocess.Popen(command, env=data_env, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True,
                               preexec_fn=lambda: signal.signal(signal.SIGHUP, signal.SIG_IGN))
    assert process.stdout.readline().startswith("WRITING")
    process.send_signal(signal.SIGHUP)  # nohup's: the command goes on
    time.sleep(0.5)
    assert process.poll() is None
    process.send_signal(signal.SIGTERM)
    process.communicate(timeout=60)
    assert process.returncode == 130


def test_ctrl_c_while_a_verb_loads_is_an_interruption_not_a_traceback(tmp_path, data_env):
    """A verb's modules take a second or so to import (matplotlib); Ctrl-C at seeded moments of
    it, and of what follows, ends in status 130 and one line (the package's own imports come
    before the command line exists: READY marks their end)."""
    script = ("import tinyvae, sys; print('READY', flush=True); "
              "from tinyvae.__main__ import run; sys.exit(run())")
    chance = random.Random(23)
    for _ in range(6):
        command = [sys.executable, "-c", script, "figures", str(tmp_path / "none.npz")]
        process = subprocess.Popen(command, env=data_env, stdout=subprocess.PIPE,
                                   stderr=subprocess.PIPE, text=True, preexec_fn=default_signals)
        assert process.stdout.readline() == "READY\n"
        time.sleep(chance.uniform(0.0, 0.6))
        process.send_signal(signal.SIGINT)
        _, err = process.communicate(timeout=60)
        assert "Traceback" not in err and process.returncode in (130, 2), err
        assert len(err.strip().splitlines()) == 1, err


def lose_a_ctrl_c_in_a_callback() -> None:
    """What the race above can do: a KeyboardInterrupt raised in a weak reference's callback
    (importlib's module locks have one), where Python cannot raise it and only reports it."""
    import weakref

    class Lock:
        pass

    def callback(_):
        raise KeyboardInterrupt

    lock = Lock()
    ref = weakref.ref(lock, callback)
    del lock  # the callback runs here; its exception goes to sys.unraisablehook
    assert ref() is None


def test_a_ctrl_c_lost_in_a_callback_is_kept_and_raised_where_the_command_can_stop(capsys):
    from tinyvae.lab.signals import raise_lost_interrupt, stops_as_ctrl_c

    hook = sys.unraisablehook
    after = []
    with pytest.raises(KeyboardInterrupt), stops_as_ctrl_c():
        lose_a_ctrl_c_in_a_callback()
        after.append("went on")  # Python carries on after a callback's exception...
        raise_lost_interrupt()  # ...until the command asks
        after.append("not reached")
    assert after == ["went on"]
    # a block that ends well still ends as interrupted, and nothing was printed
    with pytest.raises(KeyboardInterrupt), stops_as_ctrl_c():
        lose_a_ctrl_c_in_a_callback()
    assert "Exception ignored" not in capsys.readouterr().err
    assert sys.unraisablehook is hook  # put back
    # outside the block, nothing is kept: Python's own reporting is untouched
    seen = []
    sys.unraisablehook = seen.append
    try:
        lose_a_ctrl_c_in_a_callback()
    finally:
        sys.unraisablehook = hook
    assert len(seen) == 1 and seen[0].exc_type is KeyboardInterrupt
    raise_lost_interrupt()  # nothing kept: no exception


def test_a_ctrl_c_wrapped_by_an_extensions_initialization_is_known_for_one():
    from tinyvae.lab.signals import caused_by_ctrl_c

    def init_with(error):
        try:
            try:
                raise KeyboardInterrupt
            except KeyboardInterrupt as exc:
                raise error from exc  # what a failed module initialization does
        except Exception as wrapped:
            return wrapped

    assert caused_by_ctrl_c(init_with(ImportError("initialization failed")))
    assert caused_by_ctrl_c(init_with(RuntimeError("Error calling __set_name__")))
    assert not caused_by_ctrl_c(ImportError("No module named 'nothing'"))
    looped = ValueError("a")
    looped.__context__ = ValueError("b")
    looped.__context__.__context__ = looped  # a cycle ends the walk
    assert not caused_by_ctrl_c(looped)


# ---- holds ----


def test_figures_into_a_folder_a_run_holds_is_refused(tiny_run, data_env, tmp_path):
    """A command that writes into a run's folder takes its hold: another model's figures do not
    replace a training run's while it trains."""
    out, _ = tiny_run
    busy = tmp_path / "B"
    holder = subprocess.Popen([sys.executable, "-c", textwrap.dedent(f"""
        import time
        from tinyvae.lab.storage.files import hold_folder
        with hold_folder({str(busy)!r}):
            print("HOLDING", flush=True)
            time.sleep(60)
        """)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline() == "HOLDING\n"
        for args in (["figures", str(out / "checkpoint.npz"), "--out", str(busy)],
                     ["reproduce", "iwae-vae", "--stages", "0", "--out", str(busy)]):
            result = cli(*args, env=data_env, program=("-m", "tinyvae"))
            assert result.returncode == 1, result.stderr
            assert "in use by another run" in result.stderr, result.stderr
        assert sorted(p.name for p in busy.iterdir()) == [".tinyvae.lock"]
    finally:
        holder.kill()
        holder.wait()


def test_the_verbs_hold_a_run_folder_they_write_into(tiny_run, data_env, tmp_path):
    out, _ = tiny_run
    run = tmp_path / "run"
    run.mkdir()
    shutil.copy(out / "checkpoint.npz", run / "checkpoint.npz")
    holder = subprocess.Popen([sys.executable, "-c", textwrap.dedent(f"""
        import time
        from tinyvae.lab.storage.files import hold_folder
        with hold_folder({str(run)!r}):
            print("HOLDING", flush=True)
            time.sleep(60)
        """)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline() == "HOLDING\n"
        ckpt = str(run / "checkpoint.npz")
        for args in (["sample", ckpt], ["reconstruct", ckpt],
                     ["evaluate", ckpt, "--iw-samples", "0", "--json", str(run / "m.json")]):
            result = cli(*args, env=data_env, program=("-m", "tinyvae"))
            assert result.returncode == 1, (args, result.stderr)
            assert "in use by another run" in result.stderr, (args, result.stderr)
        assert sorted(p.name for p in run.iterdir()) == [".tinyvae.lock", "checkpoint.npz"]
    finally:
        holder.kill()
        holder.wait()


# ---- reproduce records what fixes a run's bits ----

REPRODUCE = ["reproduce", "iwae-vae", "--train-limit", "60", "--test-limit", "20",
             "--iw-samples", "5"]


def test_reproduce_refuses_another_step_on_resume_and_older_checkpoints_resume_bit_for_bit(
        tmp_path, data_env):
    from tinyvae.lab.storage.checkpoint import load_checkpoint, save_checkpoint

    def reproduce(*args, out="run"):
        return cli(*REPRODUCE, *args, "--out", str(tmp_path / out), env=data_env,
                   program=("-m", "tinyvae"))
    assert reproduce("--stages", "0").returncode == 0
    other = reproduce("--stages", "0-1", "--step", "reference")
    assert other.returncode == 2, other.stderr
    assert "--step 'reference' (the run has 'fast')" in other.stderr, other.stderr
    assert load_checkpoint(tmp_path / "run" / "checkpoint.npz").epoch == 1  # nothing trained
    # A checkpoint written before the step was recorded: its run took the default, fast, and
    # continues bit for bit as the run that was never stopped.
    ckpt = load_checkpoint(tmp_path / "run" / "checkpoint.npz")
    older = {**ckpt.extra, "recipe": {k: v for k, v in ckpt.extra["recipe"].items() if k != "step"}}
    save_checkpoint(tmp_path / "run" / "checkpoint.npz", params=ckpt.params,
                    optimizer=ckpt.optimizer, config=ckpt.config, epoch=ckpt.epoch,
                    history=ckpt.history, rng=ckpt.rng, extra=older)
    assert reproduce("--stages", "0-1", "--step", "reference").returncode == 2
    assert reproduce("--stages", "0-1").returncode == 0
    assert reproduce("--stages", "0-1", out="straight").returncode == 0
    resumed, straight = (load_checkpoint(tmp_path / name / "checkpoint.npz")
                         for name in ("run", "straight"))
    assert resumed.epoch == straight.epoch == 4 and resumed.extra["recipe"]["step"] == "fast"
    assert all((resumed.params[key] == straight.params[key]).all() for key in straight.params)


# ---- one exit status convention: a full disk is 1, a read-only folder "cannot write X" ----


def test_a_full_disk_during_reproduce_exits_1_as_everywhere(tmp_path, data_env):
    """A file larger than the process may write (RLIMIT_FSIZE: EFBIG, what a full quota gives)."""
    def small_files():
        default_signals()
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # EFBIG, not death by signal
        resource.setrlimit(resource.RLIMIT_FSIZE, (200_000, 200_000))
    command = [sys.executable, "-m", "tinyvae", *REPRODUCE, "--stages", "0", "--out", str(tmp_path)]
    result = subprocess.run(command, env=data_env, capture_output=True, text=True, timeout=300,
                            preexec_fn=small_files)
    assert result.returncode == 1 and "Traceback" not in result.stderr, result.stderr
    assert "cannot write" in result.stderr and "File too large" in result.stderr
    assert temporaries(tmp_path) == []


@pytest.fixture
def read_only(tmp_path):
    """A read-only folder: chmod for a user; for root (whom chmod does not stop), a read-only
    tmpfs."""
    folder = tmp_path / "ro"
    folder.mkdir()
    if os.geteuid() != 0:
        folder.chmod(0o555)
        yield folder
        folder.chmod(0o755)
        return
    mount = ["mount", "-t", "tmpfs", "-o", "ro,size=1m", "tmpfs", str(folder)]
    if subprocess.run(mount).returncode != 0:
        pytest.skip("root without a way to mount a read-only folder")
    try:
        yield folder
    finally:
        subprocess.run(["umount", str(folder)], check=True)


def test_a_read_only_folder_is_cannot_write_for_every_command(tiny_run, data_env, read_only):
    ckpt = str(tiny_run[0] / "checkpoint.npz")
    commands = [["train", *TINY, "--out", f"{read_only}/run"],
                ["figures", ckpt, "--out", str(read_only)],
                ["sample", ckpt, "--png", f"{read_only}/s.png"],
                ["reconstruct", ckpt, "--npz", f"{read_only}/r.npz"],
                ["explore", ckpt, "--png", f"{read_only}/e.png"],
                ["evaluate", ckpt, "--iw-samples", "0", "--json", f"{read_only}/m.json"],
                [*REPRODUCE, "--stages", "0", "--out", f"{read_only}/rep"]]
    for args in commands:
        result = cli(*args, env=data_env, program=("-m", "tinyvae"))
        assert result.returncode == 1 and "Traceback" not in result.stderr, (args, result.stderr)
        assert "cannot write" in result.stderr, (args, result.stderr)
        assert len(result.stderr.strip().splitlines()) == 1, (args, result.stderr)
        assert "Errno" not in result.stderr and ".tmp" not in result.stderr, (args, result.stderr)
