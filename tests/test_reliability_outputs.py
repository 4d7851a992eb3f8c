"""Nothing of a run is lost, and an output never replaces what it points at.

A train --overwrite killed after it set the old run aside (OV/.replaced-*) and before its first
checkpoint: whatever takes the folder next puts the old run back, or refuses the folder with a
line saying how to recover it; never does a new checkpoint land beside it (which would let it be
deleted). An output path that is a link is written through (the link stays a link, the file it
points to is replaced atomically); a device, a FIFO or /dev/stdout is written directly, never
replaced by a regular file; anything else is refused, and every failed write says "cannot write X".
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import TINY, cli, default_signals

from tinyvae.lab.errors import UsageError
from tinyvae.lab.storage.files import OutputError, write_atomically, write_json
from tinyvae.lab.training import runfolder

OLD_RUN = {"checkpoint.npz": b"the old run", "metrics.json": b"{}", "samples.png": b"old figure"}


def crashed_overwrite(folder: Path) -> Path:
    """The state a train --overwrite killed before its first checkpoint leaves: the old run's
    files in a hidden .replaced-* folder, and nothing else."""
    aside = folder / f"{runfolder.ASIDE_PREFIX}4242-1"
    aside.mkdir(parents=True)
    for name, content in OLD_RUN.items():
        (aside / name).write_bytes(content)
    return aside


def contents(folder: Path) -> dict:
    return {p.name: p.read_bytes() for p in folder.iterdir() if p.is_file()}


# ---- a set-aside run comes back, whoever takes the folder next ----

def holding(context):
    with context:
        pass


TAKERS = {
    "a plain train (claim)": lambda out: runfolder.claim(out, None, overwrite=False),
    "train --overwrite (claim)": lambda out: runfolder.claim(out, None, overwrite=True),
    "figures --out, reproduce (held)": lambda out: holding(runfolder.held(out)),
    "sample --png beside it (writing_into)":
        lambda out: holding(runfolder.writing_into(out / "s.png")),
}


@pytest.mark.parametrize("taker", TAKERS)
def test_a_set_aside_run_comes_back_before_anything_takes_its_folder(tmp_path, taker):
    out = tmp_path / "OV"
    crashed_overwrite(out)
    try:
        TAKERS[taker](out)
    except UsageError as exc:  # a plain train is then refused: the folder holds a run again
        assert "already holds another run" in str(exc)
    if "overwrite" in taker:  # set aside again, by this run, and whole
        (aside,) = out.glob(".replaced-*")
        assert contents(aside) == OLD_RUN
    else:
        assert contents(out) == OLD_RUN and not list(out.glob(".replaced-*"))


def test_a_set_aside_run_that_cannot_come_back_is_refused_with_the_way_to_recover_it(tmp_path):
    out = tmp_path / "OV"
    aside = crashed_overwrite(out)
    (out / "samples.png").write_bytes(b"drawn since")  # a name of the old run: not overwritten
    for take in TAKERS.values():
        with pytest.raises(UsageError, match=r"interrupted --overwrite .*mv .*\.replaced-4242-1"):
            take(out)
    assert contents(aside) == OLD_RUN and (out / "samples.png").read_bytes() == b"drawn since"


def test_once_the_new_run_has_a_checkpoint_what_it_replaced_goes(tmp_path):
    out = tmp_path / "OV"
    crashed_overwrite(out)
    (out / "checkpoint.npz").write_bytes(b"the new run's first checkpoint")
    runfolder.claim(out, out / "checkpoint.npz", overwrite=False)  # resuming it
    assert sorted(p.name for p in out.iterdir()) == ["checkpoint.npz"]


def test_a_train_killed_between_setting_the_old_run_aside_and_its_checkpoint_loses_nothing(
        tmp_path, data_env):
    """The whole story, through the command: the kill lands while the data load (after claim,
    before the first checkpoint); the next plain `train --out OV` puts the old run back and is
    refused, and the old run is whole."""
    out = tmp_path / "OV"
    first = cli(*TINY, "--out", str(out), env=data_env)
    assert first.returncode == 0, first.stderr
    old = contents(out)
    command = [sys.executable, "-m", "tinyvae", "train", *TINY, "--latent-dim", "3",
               "--out", str(out), "--overwrite"]
    killed = subprocess.Popen(command, env=data_env, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL, preexec_fn=default_signals)
    end = time.monotonic() + 60
    while not list(out.glob(".replaced-*")) and killed.poll() is None and time.monotonic() < end:
        time.sleep(0.002)
    killed.send_signal(signal.SIGKILL)
    killed.wait(timeout=60)
    assert list(out.glob(".replaced-*")), "the kill missed its window"
    assert not (out / "checkpoint.npz").exists(), "the kill missed its window"
    again = cli(*TINY, "--out", str(out), env=data_env)
    assert again.returncode == 2 and "already holds another run" in again.stderr, again.stderr
    assert {name: content for name, content in contents(out).items()} == old


def test_a_checkpoint_older_than_the_aside_does_not_let_it_go(tmp_path):
    """Only the new run's checkpoint (written after claim set the old run aside) lets the aside
    go; a checkpoint from before (put there by hand, say) does not."""
    out = tmp_path / "OV"
    aside = crashed_overwrite(out).rename(out / f"{runfolder.ASIDE_PREFIX}4242-{time.time_ns()}")
    (out / "checkpoint.npz").write_bytes(b"some other checkpoint")
    os.utime(out / "checkpoint.npz", ns=(0, 0))
    with pytest.raises(UsageError, match="interrupted --overwrite"):
        holding(runfolder.held(out))
    assert contents(aside) == OLD_RUN


# ---- an output path: a link is written through, a stream written directly, the rest refused ----


def test_a_link_to_a_file_is_written_through_and_stays_a_link(tmp_path):
    (tmp_path / "shared").mkdir()
    real = tmp_path / "shared" / "metrics.json"
    real.write_text("old")
    link = tmp_path / "metrics.json"
    link.symlink_to(real)
    write_json(link, {"new": 1})
    assert link.is_symlink() and os.readlink(link) == str(real)
    assert real.read_text().startswith('{\n  "new"')
    assert [p.name for p in (tmp_path / "shared").iterdir()] == ["metrics.json"]  # no temporary
    dangling = tmp_path / "new.json"
    dangling.symlink_to(tmp_path / "shared" / "not-yet.json")
    write_json(dangling, [])
    assert dangling.is_symlink() and (tmp_path / "shared" / "not-yet.json").read_text() == "[]\n"


def test_a_fifo_is_written_into_and_stays_a_fifo(tmp_path):
    fifo = tmp_path / "out.json"
    os.mkfifo(fifo)
    with pytest.raises(OutputError, match="cannot write .*out.json: a pipe that nobody reads"):
        write_json(fifo, {"x": 1})  # refused at once: no reader, no wait
    reader = subprocess.Popen(["cat", str(fifo)], stdout=subprocess.PIPE)
    time.sleep(0.2)
    write_json(fifo, {"x": 1})
    assert reader.communicate(timeout=10)[0] == b'{\n  "x": 1\n}\n'
    assert fifo.is_fifo()


def test_an_open_descriptor_is_written_directly(tmp_path):
    """/dev/stdout is a link to /proc/self/fd/1, the file the process has open (as /dev/fd/N,
    what `>(...)` gives): written as a stream, appended, never replaced, whatever it is (here a
    regular file). The link is made here, not used in /dev, so that a writer that replaces
    links would replace only this test's."""
    target, stdout = tmp_path / "log.txt", tmp_path / "stdout"
    stdout.symlink_to("/proc/self/fd/1")
    script = ("import sys; from tinyvae.lab.storage.files import write_atomically; "
              "print('printed', flush=True); "
              f"write_atomically({str(stdout)!r}, lambda f: f.write(b'written\\n'))")
    with open(target, "w") as out:
        done = subprocess.run([sys.executable, "-c", script], stdout=out, stderr=subprocess.PIPE,
                              text=True)
    assert done.returncode == 0, done.stderr
    assert target.read_text() == "printed\nwritten\n" and stdout.is_symlink()


@pytest.mark.skipif(os.geteuid() != 0, reason="only root can make a device node")
def test_a_device_is_written_directly_never_replaced_by_a_regular_file(tmp_path):
    null = tmp_path / "null"
    subprocess.run(["mknod", str(null), "c", "1", "3"], check=True)  # /dev/null's own numbers
    write_atomically(null, lambda f: f.write(b"x" * 100))
    assert null.is_char_device() and sorted(p.name for p in tmp_path.iterdir()) == ["null"]


def test_what_is_neither_a_file_nor_a_stream_is_refused_naming_it(tmp_path):
    folder = tmp_path / "figure.png"
    folder.mkdir()
    sock = socket.socket(socket.AF_UNIX)
    sock.bind(str(tmp_path / "s.json"))
    for target in (folder, tmp_path / "s.json"):
        with pytest.raises(OSError, match=f"cannot write {target}: not a regular file"):
            write_atomically(target, lambda f: f.write(b"x"))
    sock.close()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["figure.png", "s.json"]


def test_a_failed_write_names_the_file_asked_for_never_its_temporary(tmp_path):
    missing = tmp_path / "no" / "such" / "folder" / "m.json"
    with pytest.raises(OSError) as info:
        write_atomically(missing, lambda f: f.write(b"x"))
    assert str(info.value).startswith(f"cannot write {missing}: ") and ".tmp" not in str(info.value)
    with pytest.raises(OutputError, match=f"cannot write {missing}: "):
        write_json(missing, {})


def test_the_verbs_write_through_links_and_into_fifos(tiny_run, data_env, tmp_path):
    out, _ = tiny_run
    real = tmp_path / "real.png"
    real.write_bytes(b"old")
    (tmp_path / "link.png").symlink_to(real)
    done = cli(str(out / "checkpoint.npz"), "--png", str(tmp_path / "link.png"), "--n", "4",
               env=data_env, program=("-m", "tinyvae", "sample"))
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "link.png").is_symlink() and real.read_bytes()[:4] == b"\x89PNG"
    fifo = tmp_path / "metrics"  # a FIFO needs no .json in its name
    os.mkfifo(fifo)
    reader = subprocess.Popen(["cat", str(fifo)], stdout=subprocess.PIPE)
    done = cli(str(out / "checkpoint.npz"), "--iw-samples", "0", "--json", str(fifo), env=data_env,
               program=("-m", "tinyvae", "evaluate"))
    assert done.returncode == 0, done.stderr
    assert b'"test_elbo"' in reader.communicate(timeout=30)[0] and not fifo.is_file()
