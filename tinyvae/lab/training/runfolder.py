"""A run owns its output folder: every file in it belongs to that run, and nothing of another run
is lost on the way.

    claim(out, resume, overwrite)   the folder checked to be this run's; with overwrite, what it
                                    held is moved into a hidden .replaced-* folder inside it
    holding(out, settings, command) what a fresh run finds in its folder: this run (finished,
                                    or how far), or another; and the command that goes on
    discard_replaced(out)           once this run's checkpoint exists there, the moved files go
    restore(out, aside)             this run failed before it had a checkpoint: they come back
    recover(out)                    what an --overwrite killed before its first checkpoint (no
                                    restore ran) set aside comes back, or the folder is refused
    held(folder), writing_into(path)  a command that writes into a run's folder holds it
                                    (files.hold_folder), after recover

So --overwrite is crash-safe: until the new run's first checkpoint is on disk the previous run
is still there (hidden, whole), and a crash loses nothing; after it, nothing of the old run is
left beside the new one. Whatever next takes a folder that a killed --overwrite left (another
run, figures --out, reproduce) first puts the old run back, or refuses the folder with a line
saying how to recover it: it never writes a checkpoint beside it, which would let it be deleted.
A fresh run into a folder that holds files, or a resumed run into a folder that holds another
run, is refused with a message saying what to do.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import time
from collections.abc import Iterator
from pathlib import Path

from ..errors import UsageError
from ..storage.checkpoint import CheckpointError, load_checkpoint
from ..storage.files import LOCK_NAME, check_writable_folder, hold_folder
from ..storage.targets import output_kind
from . import run_settings
from .runner import CHECKPOINT_NAME

ASIDE_PREFIX = ".replaced-"


def claim(out: Path, resume: Path | None, overwrite: bool) -> tuple[Path, Path | None]:
    """The output folder, created and checked to be writable and this run's to write; the hidden
    folder its previous files were moved to (with overwrite), else None. Call it holding `out`."""
    out = check_writable_folder(out)  # fail now, not after an hour of training
    recover(out)
    existing = out / CHECKPOINT_NAME
    if resume is not None and os.path.samefile(Path(resume).parent, out):
        if overwrite:
            raise UsageError(f"--overwrite would delete the run that --resume {resume} continues; "
                             "leave out --overwrite")
        if existing.exists() and os.path.samefile(existing, resume):
            return out, None  # the same run, continued in its own folder
    held = sorted(p for p in out.iterdir() if not p.name.startswith("."))
    if held and not overwrite:
        what = (f"another run ({existing})" if existing.exists()
                else f"{len(held)} files ({held[0].name}, ...)")
        hint = (f"continue it with --resume {existing}, " if existing.exists() and resume is None
                else "")
        raise UsageError(f"{out} already holds {what}; {hint}replace it with --overwrite, "
                         "or choose another --out")
    if not held:
        return out, None
    folders = [p.name for p in held if p.is_dir() and not p.is_symlink()]
    if folders:  # a run writes only files: this is someone's folder, not a run's
        raise UsageError(f"not replacing {out}: it holds folders ({', '.join(folders)}), so it is "
                         "not a run's folder; choose another --out")
    aside = out / f"{ASIDE_PREFIX}{os.getpid()}-{time.time_ns()}"
    aside.mkdir()
    for path in held:
        # a rename within the folder: nothing is copied, nothing lost
        os.replace(path, aside / path.name)
    return out, aside


def holding(out: Path, settings: dict, command: str) -> tuple[str, bool] | None:
    """What a fresh run with `settings` finds in `out`, if a run's checkpoint is there: one
    sentence saying whose run it is and how far it got, with the command that uses or continues
    it; and whether it is this very run, unfinished, so that resuming is what was meant.
    None if out holds no readable checkpoint (claim then says what it holds)."""
    checkpoint = Path(out) / CHECKPOINT_NAME
    try:
        ckpt = load_checkpoint(checkpoint)
    except (CheckpointError, OSError):
        return None
    theirs = run_settings.complete(ckpt.extra.get("cli"))
    differ = [f"--{key.replace('_', '-')} {theirs[key]} there, {settings[key]} here"
              for key in run_settings.RUN_DEFAULTS
              if key != "epochs" and theirs[key] != settings[key]]
    if differ:
        return (f"{out} holds another run ({'; '.join(differ)}); choose another --out, or replace "
                "it with --overwrite"), False
    done, epochs = len(ckpt.history), settings["epochs"]
    more = f" --epochs {epochs}" if epochs != theirs["epochs"] else ""
    go_on = f"{command} --resume {checkpoint}{more}"
    metrics = Path(out) / "metrics.json"
    if not (done >= theirs["epochs"] and metrics.is_file()):
        how_far = f"stopped after {done} of {theirs['epochs']} epochs" if done < theirs["epochs"] \
            else "trained, stopped before its evaluation"
        return (f"{out} holds this run, {how_far}; continue it: {go_on} (or start again with "
                "--overwrite)"), True
    numbers = json.loads(metrics.read_text(encoding="utf-8"))
    bound = "" if numbers.get("iw_bound") is None else \
        f", L_{numbers['iw_samples']} {numbers['iw_bound']:.2f}"
    finished = (f"{out} holds this run, finished after {done} epoch{'s' * (done != 1)} (test ELBO "
                f"{numbers['test_elbo']:.2f}{bound})")
    if epochs > done:
        return f"{finished}; train it further, to {epochs} epochs: {go_on}", True
    return (f"{finished}. Use it: python -m tinyvae evaluate {checkpoint} (or sample, "
            f"reconstruct, figures, explore); train it further: {command} --resume {checkpoint} "
            f"--epochs {2 * done}; or start again with --overwrite"), False


def discard_replaced(out: Path) -> None:
    """Delete what overwrite moved aside (this run's, and any a crash left), once `out` holds a
    checkpoint."""
    if (Path(out) / CHECKPOINT_NAME).exists():
        for folder in Path(out).glob(ASIDE_PREFIX + "*"):
            shutil.rmtree(folder, ignore_errors=True)


def restore(out: Path, aside: Path | None) -> None:
    """Move the previous run back, if this run ends before it has a checkpoint of its own."""
    if aside is None or not aside.is_dir() or (out / CHECKPOINT_NAME).exists():
        return
    for path in aside.iterdir():
        if not (out / path.name).exists():
            os.replace(path, out / path.name)
    try:
        aside.rmdir()
    except OSError:  # something of this run had the same name: both are kept, nothing is lost
        pass


def recover(out: Path) -> None:
    """Bring back what an --overwrite set aside in `out` and could not restore itself (it was
    killed before its first checkpoint); once `out` holds a checkpoint written after the aside
    was made (the new run's), the aside goes as discard_replaced says. If the files cannot all
    come back (two set-aside runs, or files of the same names in `out`), a UsageError says how
    to recover them by hand. Call it holding `out`."""
    asides = sorted(p for p in Path(out).glob(ASIDE_PREFIX + "*") if p.is_dir())
    if not asides:
        return
    checkpoint = Path(out) / CHECKPOINT_NAME
    if checkpoint.exists():
        if all(_made_ns(aside) <= checkpoint.stat().st_mtime_ns for aside in asides):
            discard_replaced(out)
            return
    back = list(asides[0].iterdir()) if len(asides) == 1 and not checkpoint.exists() else [None]
    if None not in back and not any(os.path.lexists(Path(out) / p.name) for p in back):
        restore(Path(out), asides[0])  # an empty one (killed as it was made) just goes
        return
    aside = asides[0]
    raise UsageError(f"{out} holds a run that an interrupted --overwrite set aside in "
                     f"{aside.name}/ "
                     f"({len(asides)} such folder(s)); nothing was changed. Recover it with "
                     f"`mv {aside}/* {out}/ && rmdir {aside}`, or delete {aside} to let it go")


def _made_ns(aside: Path) -> float:
    """When claim made `aside` (its name's time_ns); infinitely late for a name it did not make."""
    try:
        return int(aside.name.rsplit("-", 1)[1])
    except (IndexError, ValueError):
        return float("inf")


def is_run_folder(folder: Path) -> bool:
    """Whether `folder` is a run's: it holds a checkpoint, a run holds it, or a run was set
    aside in it."""
    folder = Path(folder)
    return folder.is_dir() and ((folder / CHECKPOINT_NAME).exists() or (folder / LOCK_NAME).exists()
                                or any(folder.glob(ASIDE_PREFIX + "*")))


@contextlib.contextmanager
def held(folder: Path) -> Iterator[Path]:
    """Hold `folder` (files.hold_folder: another run there is refused at once) for a command that
    writes into it, after recover has put back what a killed --overwrite set aside there."""
    with hold_folder(folder) as folder:
        recover(folder)
        yield folder


@contextlib.contextmanager
def writing_into(*paths: Path | None) -> Iterator[None]:
    """Hold the folder of each output file given that is a run's folder (is_run_folder)."""
    folders = {os.path.realpath(Path(p).parent): Path(p).parent for p in paths
               if p is not None and output_kind(p) == "file"}
    with contextlib.ExitStack() as stack:
        for folder in folders.values():
            if is_run_folder(folder):
                stack.enter_context(held(folder))
        yield
