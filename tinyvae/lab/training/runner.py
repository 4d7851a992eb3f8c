"""The crash-safe training run: the steps of tinyvae/train.py, plus what a long run needs.

`fit(step, x_train, ...)` trains for a number of epochs with a *step object* that owns the
run's state for the whole run: `step.params` and `step.optimizer` are the live parameters and
optimizer (tinyvae.train.ReferenceStep, the readable one, or tinyvae.speed.step.FastStep,
the same mathematics faster). The run evaluates and checkpoints exactly what the step holds;
nothing is copied back and forth. Around the steps it adds:

- One Generator drives everything random in training (the shuffle, the dynamic binarization
  and ε), so a seed fixes the run. The test ELBO after each epoch draws its ε from a separate
  Generator, np.random.default_rng([eval_seed, epoch]), so evaluating never disturbs the
  training stream.
- KL warm-up: β rises linearly from 0 to config.beta over `warmup_epochs`, batch by batch
  (train.kl_weight), then stays there.
- After every epoch, a checkpoint (tinyvae/lab/storage/checkpoint.py) holding the parameters, the
  optimizer's state, the generator's state and the history, and history.json / history.csv
  beside it, all written atomically. `resume=` restores all of it into the step, so an
  interrupted and resumed run ends with exactly the same parameters as one that ran straight
  through.
- A learning-rate schedule (`lr_schedule`, piecewise constant: [[first epoch, lr], ...]) is
  kept in the checkpoint with the other settings, and `after_epoch(epoch, step)` may add
  numbers to an epoch's history record before it is saved.
- Long work after an epoch (`evaluation`, a recipe's stage-end L_5000, which can take half an
  hour) runs after the epoch is saved, so a stop inside it keeps the epoch: the checkpoint
  says the epoch's evaluation is due (extra["evaluation_due"]), and a resume runs it first.
- The output folder is the run's alone (files.run_folder: another run there is refused).
  Ctrl-C, SIGTERM or SIGHUP (lab/signals.py) keeps the checkpoint of the last finished epoch
  and raises TrainingInterrupted, which says where it is; a NaN or infinite loss (or
  parameter) raises TrainingDiverged naming the epoch and batch, before anything bad is saved.

History: one dict per epoch (HISTORY_FIELDS), nats per example (means over the epoch's
examples for train, over the test set for test). "beta" is the β of the epoch's last batch;
train_loss = recon + β·KL with the β of each batch.
"seconds" is the epoch's wall time (training and test ELBO), "samples_per_sec" counts the
training part only, "elapsed" adds up "seconds" over all epochs, across resumes.

Shapes: B batch, D data, Z latent.
"""

from __future__ import annotations

import contextlib
import csv
import io
import math
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import TextIO

import numpy as np

from ... import evaluate
from ..._checks import check_batch, finite_real, nonnegative_int, positive_int
from ..datasets.binarize import binarization_buffer
from ..signals import stops_as_ctrl_c
from ..storage.checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from ..storage.files import OutputError, atomic_write, run_folder, write_json
from ..storage.state_checks import HISTORY_FIELDS
from .epoch import TrainingDiverged, train_epoch
from .progress import EpochProgress
from .schedule import check_schedule, scheduled_lr

CHECKPOINT_NAME = "checkpoint.npz"


class ResumeMismatch(CheckpointError):
    """The checkpoint to resume from was trained differently; the message says how."""


class TrainingInterrupted(KeyboardInterrupt):
    """Ctrl-C during fit. ``checkpoint`` is the file to resume from (None if nothing was saved)
    and ``epoch`` the number of finished epochs it holds."""

    def __init__(self, message: str, checkpoint: Path | None, epoch: int):
        super().__init__(message)
        self.checkpoint = checkpoint
        self.epoch = epoch


def fit(step, x_train: np.ndarray, *, rng: np.random.Generator, epochs: int,
        x_test: np.ndarray | None = None, batch_size: int = 128, binarize: str = "dynamic",
        warmup_epochs: float = 0.0, out_dir: str | os.PathLike | None = None,
        resume: str | os.PathLike | None = None, eval_seed: int = 0, extra: dict | None = None,
        stream: TextIO | None = sys.stdout,
        lr_schedule: list[tuple[int, float]] | None = None,
        after_epoch: Callable[[int, object], dict | None] | None = None, evaluation=None,
        eta_extra: Callable[[int, list[float]], tuple[float, str]] | None = None) -> list[dict]:
    """Train the step's model until `epochs` epochs are finished; return the history.

    step: a ReferenceStep or FastStep (speed.step.make_step builds either); it is trained in
    place. x_train (N, D) and x_test (M, D): the images, checked once here. binarize: "dynamic"
    (a fresh Bernoulli draw of x_train every epoch) or "none". out_dir: where the checkpoint
    and the history files go (nothing is saved if None). resume: a checkpoint to continue from;
    its config, optimizer and settings must match (a ResumeMismatch says what differs); one in
    another folder than out_dir is saved there once it has been checked and restored.
    extra: more JSON-able facts to keep in the checkpoint (e.g. the command line's settings).
    stream: where progress goes (None for silence). lr_schedule: [[first epoch, lr], ...] in
    rising epochs from epoch 1; each epoch trains at the lr of the last pair that has begun.
    after_epoch(epoch, step): called after each epoch's test ELBO; a dict it returns joins the
    epoch's history record (JSON-able numbers) before the checkpoint is written.
    evaluation: long work at some epochs' ends, with due(epoch) -> bool and evaluation(epoch,
    step) -> dict (recipes.StageEvaluation). A due epoch is saved first, marked so; the dict
    joins its record ("eval_seconds" its "seconds") and is saved again. Stopped inside, the
    evaluation runs again on resume, first (keeping its partial results is its own affair).
    eta_extra(epoch, epoch_seconds of this process): (seconds, what) the run spends after
    `epoch` beyond its epochs (evaluations), for the ETA on each epoch's line.
    """
    settings = _check_arguments(step, x_train, x_test, epochs, batch_size, binarize, warmup_epochs,
                                eval_seed)
    settings["lr_schedule"] = check_schedule(lr_schedule)
    if out_dir is None and resume is not None:
        out_dir = Path(resume).parent
    # np.errstate: overflow is judged by the explicit checks (TrainingDiverged), not by warnings
    held = contextlib.nullcontext() if out_dir is None else run_folder(out_dir)
    with held as folder, stops_as_ctrl_c(), np.errstate(over="ignore", invalid="ignore",
                                                        divide="ignore"):
        run = _Run(step, rng, settings, extra, folder, stream, after_epoch, evaluation, eta_extra)
        if resume is not None:
            run.history, due = _restore(resume, step, rng, settings)
            due = due and evaluation is not None  # nothing to run it with: it stays undone
            run.saved_epoch, run.evaluation_due, run.saved_due = len(run.history), due, due
            unfinished = " (its evaluation unfinished)" if due else ""
            run.log.line(f"resuming from {resume} after epoch {len(run.history)} of {epochs}"
                         + unfinished)
            if run.checkpoint_path is not None and not _same_file(run.checkpoint_path, resume):
                run.save()  # resumed into another folder, once checked: it holds its own run
        elif run.checkpoint_path is not None:
            run.save()  # epoch 0: a run interrupted in its first epoch can resume too
        return run.train(x_train, x_test, epochs)


def _same_file(a: Path, b) -> bool:
    return a.exists() and os.path.samefile(a, b)


def _check_arguments(step, x_train, x_test, epochs, batch_size, binarize, warmup_epochs,
                     eval_seed) -> dict:
    """Refuse bad arguments before any work; return the settings a resume must match."""
    epochs, batch_size = nonnegative_int("epochs", epochs), positive_int("batch_size", batch_size)
    if batch_size > getattr(step, "max_batch", batch_size):
        raise ValueError(f"batch_size {batch_size} exceeds the step's max_batch {step.max_batch}")
    if binarize not in ("dynamic", "none"):
        raise ValueError(f"binarize must be 'dynamic' or 'none' (fix a binarization before "
                         f"calling fit), got {binarize!r}")
    finite_real("warmup_epochs", warmup_epochs, minimum=0)
    # The data are checked once, as whole arrays, rather than batch by batch.
    check_batch(x_train, step.config, "x_train")
    if len(x_train) == 0:
        raise ValueError("x_train is empty")
    if binarize == "dynamic" and (x_train.min() < 0 or x_train.max() > 1):
        raise ValueError("x_train must lie in [0, 1] for dynamic binarization "
                         "(pixel = probability of 1)")
    if x_test is not None:
        check_batch(x_test, step.config, "x_test")
    return {"batch_size": batch_size, "binarize": binarize, "warmup_epochs": float(warmup_epochs),
            "eval_seed": int(eval_seed), "n_train": int(len(x_train)),
            "n_test": None if x_test is None else int(len(x_test))}


class _Run:
    """One fit call's bookkeeping: the step, the history, what is saved where."""

    def __init__(self, step, rng, settings: dict, extra: dict | None, out_dir, stream,
                 after_epoch=None, evaluation=None, eta_extra=None):
        self.step, self.rng, self.settings = step, rng, settings
        self.extra, self.after_epoch = extra or {}, after_epoch
        self.evaluation = evaluation
        self.checkpoint_path = None if out_dir is None else Path(out_dir) / CHECKPOINT_NAME
        self.log = EpochProgress(stream, eta_extra)
        self.history: list[dict] = []
        self.saved_epoch = 0  # finished epochs held by the checkpoint on disk
        # the last finished epoch awaits its evaluation; the checkpoint on disk says so
        self.evaluation_due = self.saved_due = False

    def save(self) -> None:
        step = self.step
        due = {"evaluation_due": len(self.history)} if self.evaluation_due else {}
        save_checkpoint(self.checkpoint_path, params=step.params, optimizer=step.optimizer,
                        config=step.config, epoch=len(self.history), history=self.history,
                        rng=self.rng, extra={"train": self.settings, **self.extra, **due})
        write_history(self.checkpoint_path.parent, self.history)
        self.saved_epoch = len(self.history)
        self.saved_due = bool(due)

    def last_good(self) -> str:
        if self.checkpoint_path is None:
            return "Nothing was saved (no out_dir)."
        return f"The last good checkpoint (epoch {self.saved_epoch}) is {self.checkpoint_path}."

    def train(self, x_train, x_test, epochs: int) -> list[dict]:
        """Epochs len(history)+1 .. epochs, each evaluated, checked and saved; Ctrl-C handled."""
        # one array for every epoch's draw
        binarized = binarization_buffer(x_train, self.settings["binarize"])
        # params, optimizer and rng are exactly as at the end of epoch len(history)
        at_epoch_end = True
        try:
            if self.evaluation_due:  # a resumed run whose last epoch was stopped in its evaluation
                self.evaluate(len(self.history))
            for epoch in range(len(self.history) + 1, epochs + 1):
                at_epoch_end = False  # from here on the rng and the params move
                record = self.epoch(epoch, epochs, x_train, x_test, binarized)
                # The epoch is saved before its evaluation: a stop inside that loses no training.
                self.evaluation_due = self.evaluation is not None and self.evaluation.due(epoch)
                self.history.append(record)
                at_epoch_end = True
                self.log.epoch(record, epochs)
                if self.checkpoint_path is not None:
                    self.save()
                if self.evaluation_due:
                    self.evaluate(epoch)
        except KeyboardInterrupt:
            self.interrupted(at_epoch_end)
        return self.history

    def epoch(self, epoch: int, epochs: int, x_train, x_test, binarized) -> dict:
        """Train one epoch, then the test ELBO; refuse a diverged model before it is saved."""
        t_start = time.perf_counter()
        if self.settings["lr_schedule"] is not None:
            self.step.optimizer.lr = scheduled_lr(self.settings["lr_schedule"], epoch)
        try:
            record = train_epoch(self.step, x_train, self.rng, epoch=epoch, epochs=epochs,
                                 settings=self.settings, binarized=binarized, log=self.log)
        except TrainingDiverged as exc:
            self.log.end()
            raise TrainingDiverged(f"{exc} {self.last_good()} "
                                   "Try a smaller learning rate.") from None
        t_train = time.perf_counter() - t_start
        self.refuse_diverged(record, epoch)  # before the test ELBO, which refuses NaN parameters
        if x_test is not None:
            test = evaluate.test_elbo(self.step.params, x_test, self.step.config,
                                      np.random.default_rng([self.settings["eval_seed"], epoch]))
            record.update(test_loss=test["loss"], test_recon=test["recon"], test_kl=test["kl"])
        if self.after_epoch is not None:
            record.update(self.after_epoch(epoch, self.step) or {})
        seconds = time.perf_counter() - t_start
        record.update(seconds=seconds, samples_per_sec=len(x_train) / t_train,
                      elapsed=(self.history[-1]["elapsed"] if self.history else 0.0) + seconds)
        self.refuse_diverged(record, epoch)
        return record

    def evaluate(self, epoch: int) -> None:
        """The due evaluation of the last finished epoch: its numbers join the epoch's record
        (its time the epoch's seconds), and the epoch is saved again, no longer due."""
        record = self.history[-1]
        result = self.evaluation(epoch, self.step)
        seconds = result.get("eval_seconds", 0.0)
        record.update(result)
        record.update(seconds=record["seconds"] + seconds, elapsed=record["elapsed"] + seconds)
        self.refuse_diverged(record, epoch)
        self.evaluation_due = False
        if self.checkpoint_path is not None:
            self.save()

    def refuse_diverged(self, record: dict, epoch: int) -> None:
        """A model that overflowed on the last step must not be saved over a good checkpoint."""
        bad = [key for key, value in record.items()
               if isinstance(value, float) and not math.isfinite(value)]
        bad += [f"parameter {key}" for key, arr in self.step.params.items()
                if not np.all(np.isfinite(arr))]
        if bad:
            self.log.end()
            raise TrainingDiverged(f"training diverged: {', '.join(bad)} became NaN or inf at the "
                                   f"end of epoch {epoch}. {self.last_good()} "
                                   "Try a smaller learning rate.")

    def interrupted(self, at_epoch_end: bool):
        """Ctrl-C: save a finished epoch that was not saved yet, then say where to resume from."""
        self.log.end()
        if self.checkpoint_path is None:
            message = (f"interrupted after {len(self.history)} finished epoch(s); "
                       "nothing saved (no out_dir)")
            raise TrainingInterrupted(message, None, len(self.history)) from None
        if at_epoch_end and self.saved_epoch < len(self.history):
            # Ctrl-C arrived between the end of an epoch and the end of its save: save it now.
            try:
                self.save()
            except (KeyboardInterrupt, OutputError):
                pass
        unfinished = " (its evaluation unfinished, resumed first)" if self.saved_due else ""
        message = (f"interrupted; the checkpoint of epoch {self.saved_epoch}{unfinished} is "
                   f"{self.checkpoint_path}; resume from it to continue")
        raise TrainingInterrupted(message, self.checkpoint_path, self.saved_epoch) from None


def _restore(path, step, rng: np.random.Generator, settings: dict) -> tuple[list[dict], bool]:
    """Load a checkpoint into the step (parameters, optimizer state) and rng; return its history,
    and whether its last epoch's evaluation is due (it was stopped inside it)."""
    dtype = step.params["encoder.W_mu"].dtype
    ckpt = load_checkpoint(path, step.config, dtype=dtype)
    saved = ckpt.extra.get("train", {})
    diffs = [f"{key}: checkpoint has {saved.get(key)!r}, now {value!r}"
             for key, value in settings.items() if saved.get(key) != value]
    saved_hparams, hparams = ckpt.optimizer.hparams(), step.optimizer.hparams()
    # the schedule sets lr epoch by epoch (and is compared above)
    if settings["lr_schedule"] is not None:
        saved_hparams, hparams = {**saved_hparams, "lr": None}, {**hparams, "lr": None}
    if saved_hparams != hparams:
        diffs.append(f"optimizer: checkpoint has {ckpt.optimizer.hparams()}, "
                     f"now {step.optimizer.hparams()}")
    if type(ckpt.rng.bit_generator) is not type(rng.bit_generator):
        diffs.append(f"random generator: checkpoint has {type(ckpt.rng.bit_generator).__name__}, "
                     f"now {type(rng.bit_generator).__name__}")
    if diffs:
        raise ResumeMismatch(f"cannot resume from {path}: it was trained differently "
                             f"({'; '.join(diffs)})")
    for key, arr in step.params.items():
        arr[...] = ckpt.params[key]  # in place: the step's own arrays take the saved values
    step.load_optimizer_state_dict(ckpt.optimizer.state_dict())
    rng.bit_generator.state = ckpt.rng.bit_generator.state
    due = ckpt.extra.get("evaluation_due")
    return ckpt.history, due is not None and due == len(ckpt.history) > 0


def write_history(folder: str | os.PathLike, history: list[dict]) -> None:
    """history.json (a list of per-epoch objects) and history.csv (one row per epoch),
    atomically."""
    folder = Path(folder)
    write_json(folder / "history.json", history)
    text = io.StringIO()
    writer = csv.DictWriter(text, fieldnames=HISTORY_FIELDS, extrasaction="ignore",
                            lineterminator="\n")
    writer.writeheader()
    writer.writerows(history)
    atomic_write(folder / "history.csv", lambda f: f.write(text.getvalue().encode("utf-8")))
