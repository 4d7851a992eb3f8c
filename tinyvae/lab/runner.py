"""The training loop: minibatches, the reparameterized gradient, an optimizer step, repeated.

One step (train_step) is the whole algorithm of Kingma & Welling (2014), Algorithm 1:

    x  ← a minibatch                      (shuffled, and freshly binarized if dynamic)
    ε  ← N(0, I), one row per image       (B, Z)
    g  ← ∇θ [recon + β·KL](x, ε)          vae.loss_and_grads, docs/02-variational-inference.md eq. (11)
    θ  ← optimizer step with g

fit() repeats it for a number of epochs and adds what makes a long run trustworthy:

- One Generator drives everything random in training (the shuffle, the dynamic binarization
  and ε), so a seed fixes the run. The test ELBO after each epoch draws its ε from a separate
  Generator, np.random.default_rng([eval_seed, epoch]), so evaluating never disturbs the
  training stream.
- KL warm-up: β rises linearly from 0 to config.beta over `warmup_epochs`, batch by batch
  (smoother than a jump each epoch), then stays there (kl_weight).
- After every epoch, a checkpoint (tinyvae/checkpoint.py) holding the parameters, the
  optimizer's state, the generator's state and the history, and history.json / history.csv
  beside it, all written atomically. `resume=` restores all of it, so an interrupted and
  resumed run ends with exactly the same parameters as one that ran straight through.
- Ctrl-C keeps the checkpoint of the last finished epoch and raises TrainingInterrupted,
  which says where it is; a NaN or infinite loss raises TrainingDiverged naming the epoch
  and batch, before anything bad is saved.

History: one dict per epoch, nats per example (means over the epoch's examples for train,
over the test set for test):
    {"epoch", "beta", "train_loss", "train_recon", "train_kl", "test_loss", "test_recon",
     "test_kl", "seconds", "samples_per_sec", "elapsed"}
"beta" is the β of the epoch's last batch; train_loss = recon + β·KL with the β of each batch.
"seconds" is the epoch's wall time (training and test ELBO), "samples_per_sec" counts the
training part only, "elapsed" adds up "seconds" over all epochs, across resumes.

Shapes: B batch, D data, Z latent.
"""

from __future__ import annotations

import csv
import io
import math
import os
import sys
import time
from pathlib import Path
from typing import TextIO

import numpy as np

from .. import evaluate
from .checkpoint import (WRITE_TEST_NAME, CheckpointError, atomic_write, check_writable_folder,
                         load_checkpoint, load_optimizer_state, save_checkpoint, write_json)
from .data import binarization_buffer, minibatches
from ..speed.step import make_step
from ..optim import SGD, Adagrad, Adam, Optimizer
from ..train import kl_weight, train_step
from ..vae import VAEConfig, check_batch

CHECKPOINT_NAME = "checkpoint.npz"
HISTORY_FIELDS = ("epoch", "beta", "train_loss", "train_recon", "train_kl", "test_loss", "test_recon",
                  "test_kl", "seconds", "samples_per_sec", "elapsed")


class TrainingDiverged(RuntimeError):
    """The loss (or a parameter) became NaN or infinite; the message names the epoch and batch."""


class TrainingInterrupted(KeyboardInterrupt):
    """Ctrl-C during fit. ``checkpoint`` is the file to resume from (None if nothing was saved)
    and ``epoch`` the number of finished epochs it holds."""

    def __init__(self, message: str, checkpoint: Path | None, epoch: int):
        super().__init__(message)
        self.checkpoint = checkpoint
        self.epoch = epoch


def fit(params: dict[str, np.ndarray], optimizer: Optimizer, config: VAEConfig, x_train: np.ndarray, *,
        rng: np.random.Generator, epochs: int, x_test: np.ndarray | None = None, batch_size: int = 128,
        binarize: str = "dynamic", warmup_epochs: float = 0.0, out_dir: str | os.PathLike | None = None,
        resume: str | os.PathLike | None = None, eval_seed: int = 0, extra: dict | None = None,
        stream: TextIO | None = sys.stdout, step: str = "fast") -> list[dict]:
    """Train `params` (in place) until `epochs` epochs are finished; return the history.

    x_train (N, D) and x_test (M, D): the images, checked once here. binarize: "dynamic"
    (a fresh Bernoulli draw of x_train every epoch) or "none". out_dir: where the checkpoint
    and the history files go (nothing is saved if None). resume: a checkpoint to continue from;
    its config, optimizer and settings must match these (a CheckpointError says what differs).
    extra: more JSON-able facts to keep in the checkpoint (e.g. the command line's settings).
    stream: where progress goes (None for silence). step: "fast" (tinyvae/fast.py: the same
    mathematics over preallocated float32-friendly buffers, tested against vae.loss_and_grads)
    or "reference" (train_step itself, the readable path the docs follow); the fast path needs
    SGD, Adagrad or Adam and falls back to the reference path for anything else.
    """
    if isinstance(epochs, bool) or not isinstance(epochs, (int, np.integer)) or epochs < 0:
        raise ValueError(f"epochs must be an integer >= 0, got {epochs!r}")
    if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")
    if step not in ("fast", "reference"):
        raise ValueError(f"step must be 'fast' or 'reference', got {step!r}")
    if binarize not in ("dynamic", "none"):
        raise ValueError(f"binarize must be 'dynamic' or 'none' (fix a binarization before calling fit), "
                         f"got {binarize!r}")
    if not (math.isfinite(warmup_epochs) and warmup_epochs >= 0):
        raise ValueError(f"warmup_epochs must be a finite number >= 0, got {warmup_epochs!r}")
    # The data are checked once, as whole arrays, rather than batch by batch.
    check_batch(x_train, config, "x_train")
    if len(x_train) == 0:
        raise ValueError("x_train is empty")
    if binarize == "dynamic" and (x_train.min() < 0 or x_train.max() > 1):
        raise ValueError("x_train must lie in [0, 1] for dynamic binarization (pixel = probability of 1)")
    if x_test is not None:
        check_batch(x_test, config, "x_test")

    settings = {"batch_size": int(batch_size), "binarize": binarize, "warmup_epochs": float(warmup_epochs),
                "eval_seed": int(eval_seed), "n_train": int(len(x_train)),
                "n_test": None if x_test is None else int(len(x_test))}
    if out_dir is None and resume is not None:
        out_dir = Path(resume).parent
    checkpoint_path = None
    if out_dir is not None:
        checkpoint_path = check_writable_folder(out_dir) / CHECKPOINT_NAME
        remove_stale_temporaries(checkpoint_path.parent)
    dtype = params["encoder.W_mu"].dtype
    history: list[dict] = []
    if resume is not None:
        history = _restore(resume, params, optimizer, config, rng, dtype, settings)
    # Built after a resume, so that it starts from the restored parameters and optimizer state.
    # The reference path is train_step itself (stepper None).
    stepper = None
    if step == "fast" and isinstance(optimizer, (SGD, Adagrad, Adam)):
        stepper = make_step("fast", config, params, optimizer, batch_size)
    log = _Progress(stream)

    def save():
        save_checkpoint(checkpoint_path, params=params, optimizer=optimizer, config=config,
                        epoch=len(history), history=history, rng=rng,
                        extra={"train": settings, **(extra or {})})
        write_history(checkpoint_path.parent, history)

    if resume is not None:
        log.line(f"resuming from {resume} after epoch {len(history)} of {epochs}")
    elif checkpoint_path is not None:
        save()  # epoch 0: a run interrupted in its first epoch can resume too

    binarized = binarization_buffer(x_train, binarize)  # every epoch's binary draw goes into this one array
    saved_epoch = len(history)  # finished epochs held by the checkpoint on disk
    at_epoch_end = True  # params, optimizer and rng are exactly as at the end of epoch len(history)
    try:
        for epoch in range(len(history) + 1, epochs + 1):
            at_epoch_end = False  # from here on the rng and the params move
            t_start = time.perf_counter()
            try:
                record = _train_epoch(stepper, params, optimizer, config, x_train, rng, epoch=epoch, epochs=epochs,
                                      batch_size=batch_size, binarize=binarize, binarized=binarized,
                                      warmup_epochs=warmup_epochs, log=log)
            except TrainingDiverged as exc:
                log.end()
                raise TrainingDiverged(f"{exc} {_last_good(checkpoint_path, saved_epoch)} "
                                       "Try a smaller learning rate.") from None
            t_train = time.perf_counter() - t_start
            if x_test is not None:
                test = evaluate.test_elbo(params, x_test, config, np.random.default_rng([eval_seed, epoch]))
                record.update(test_loss=test["loss"], test_recon=test["recon"], test_kl=test["kl"])
            seconds = time.perf_counter() - t_start
            record.update(seconds=seconds, samples_per_sec=len(x_train) / t_train,
                          elapsed=(history[-1]["elapsed"] if history else 0.0) + seconds)
            # A model that overflowed on the last step must not be saved over a good checkpoint.
            bad = [key for key, value in record.items() if value is not None and not math.isfinite(value)]
            bad += [f"parameter {key}" for key, arr in params.items() if not np.all(np.isfinite(arr))]
            if bad:
                log.end()
                raise TrainingDiverged(f"training diverged: {', '.join(bad)} became NaN or inf at the end of "
                                       f"epoch {epoch}. {_last_good(checkpoint_path, saved_epoch)} "
                                       "Try a smaller learning rate.")
            history.append(record)
            at_epoch_end = True
            log.epoch(record, epochs)
            if checkpoint_path is not None:
                save()
                saved_epoch = epoch
    except KeyboardInterrupt:
        log.end()
        if checkpoint_path is not None and at_epoch_end and saved_epoch < len(history):
            # Ctrl-C arrived between the end of an epoch and the end of its save: save it now.
            try:
                save()
                saved_epoch = len(history)
            except (KeyboardInterrupt, CheckpointError):
                pass
        if checkpoint_path is None:
            message = f"interrupted after {len(history)} finished epoch(s); nothing saved (no out_dir)"
            raise TrainingInterrupted(message, None, len(history)) from None
        message = (f"interrupted; the checkpoint of epoch {saved_epoch} is {checkpoint_path}; "
                   f"resume from it to continue")
        raise TrainingInterrupted(message, checkpoint_path, saved_epoch) from None
    return history


def _train_epoch(stepper, params, optimizer: Optimizer, config: VAEConfig, x_train: np.ndarray,
                 rng: np.random.Generator, *, epoch: int, epochs: int, batch_size: int, binarize: str,
                 binarized: np.ndarray | None, warmup_epochs: float, log: "_Progress") -> dict:
    """One pass over x_train in shuffled minibatches; returns the epoch's partial history record.

    The train losses are means over the epoch's examples (each batch mean weighted by its size,
    so a smaller last batch counts for what it holds). Raises TrainingDiverged naming the epoch
    and batch where the loss stops being finite. With a `stepper` (fast.FastStep) it takes the
    steps, and at the end of the epoch its parameters and optimizer state are copied back into
    `params` and `optimizer`, which are what evaluation and the checkpoint read; with None,
    train_step does, on `params` itself.
    """
    n_batches = math.ceil(len(x_train) / batch_size)
    dtype = params["encoder.W_mu"].dtype
    totals = np.zeros(3)  # Σ over examples of loss, recon, kl
    seen = 0
    t_start = time.perf_counter()
    for i, x in enumerate(minibatches(x_train, batch_size, rng, binarize=binarize, out=binarized), start=1):
        beta = kl_weight((epoch - 1) * n_batches + i - 1, n_batches, warmup_epochs, config.beta)
        eps = rng.standard_normal((len(x), config.latent_dim), dtype=dtype)  # (B, Z)
        if stepper is None:
            stats = train_step(params, optimizer, x, eps, config, beta)
        else:
            stats = stepper.step(x, eps, beta)
        if not math.isfinite(stats["loss"]):
            raise TrainingDiverged(f"training diverged: the loss became {stats['loss']} at epoch {epoch}, "
                                   f"batch {i}/{n_batches} (β = {beta:.3g}, lr = {optimizer.lr:g}).")
        totals += len(x) * np.array([stats["loss"], stats["recon"], stats["kl"]])
        seen += len(x)
        log.batch(epoch, epochs, i, n_batches, totals[0] / seen, seen, time.perf_counter() - t_start)
    if stepper is not None:  # the fast path trains its own flat copy: bring it back
        for key, arr in params.items():
            arr[...] = stepper.params[key]
        stepper.sync_optimizer()
    return {"epoch": epoch, "beta": float(beta), "train_loss": float(totals[0] / seen),
            "train_recon": float(totals[1] / seen), "train_kl": float(totals[2] / seen),
            "test_loss": None, "test_recon": None, "test_kl": None}


def _last_good(checkpoint_path: Path | None, saved_epoch: int) -> str:
    if checkpoint_path is None:
        return "Nothing was saved (no out_dir)."
    return f"The last good checkpoint (epoch {saved_epoch}) is {checkpoint_path}."


def _restore(path, params, optimizer: Optimizer, config: VAEConfig, rng: np.random.Generator, dtype,
             settings: dict) -> list[dict]:
    """Load a checkpoint into params, optimizer and rng (all in place); return its history."""
    ckpt = load_checkpoint(path, config, dtype=dtype)
    saved = ckpt.extra.get("train", {})
    diffs = [f"{key}: checkpoint has {saved.get(key)!r}, now {value!r}"
             for key, value in settings.items() if saved.get(key) != value]
    if ckpt.optimizer.hparams() != optimizer.hparams():
        diffs.append(f"optimizer: checkpoint has {ckpt.optimizer.hparams()}, now {optimizer.hparams()}")
    if type(ckpt.rng.bit_generator) is not type(rng.bit_generator):
        diffs.append(f"random generator: checkpoint has {type(ckpt.rng.bit_generator).__name__}, "
                     f"now {type(rng.bit_generator).__name__}")
    if diffs:
        raise CheckpointError(f"cannot resume from {path}: it was trained differently ({'; '.join(diffs)})")
    for key, arr in params.items():
        arr[...] = ckpt.params[key]  # in place: whoever holds params sees the restored values
    load_optimizer_state(optimizer, ckpt.optimizer.state_dict(), params)
    rng.bit_generator.state = ckpt.rng.bit_generator.state
    return ckpt.history


def remove_stale_temporaries(folder: Path) -> list[Path]:
    """Delete temporary files that a killed run left behind while writing its outputs.

    atomic_write removes its temporary file on every failure it can see; only SIGKILL or a
    power cut leaves one (".checkpoint.npz.<random>.tmp"), and the real file beside it is intact;
    check_writable_folder's probe file likewise.
    """
    names = (CHECKPOINT_NAME, "history.json", "history.csv", WRITE_TEST_NAME)
    stale = [path for name in names for path in folder.glob(f".{name}.*.tmp")]
    stale += [path for path in [folder / WRITE_TEST_NAME] if path.exists()]
    for path in stale:
        path.unlink(missing_ok=True)
    return stale


def write_history(folder: str | os.PathLike, history: list[dict]) -> None:
    """history.json (a list of per-epoch objects) and history.csv (one row per epoch), atomically."""
    folder = Path(folder)
    write_json(folder / "history.json", history)
    text = io.StringIO()
    writer = csv.DictWriter(text, fieldnames=HISTORY_FIELDS, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    writer.writerows(history)
    atomic_write(folder / "history.csv", lambda f: f.write(text.getvalue().encode("utf-8")))


class _Progress:
    """The per-epoch progress line: rewritten in place with \\r on a terminal (at most ten
    times a second), and only the finished line of each epoch when output goes to a file."""

    def __init__(self, stream: TextIO | None):
        self.stream = stream
        self.tty = stream is not None and hasattr(stream, "isatty") and stream.isatty()
        self.width = 0  # length of the line currently shown, to blank it out when rewriting
        self.last = 0.0

    def _show(self, text: str) -> None:
        self.stream.write("\r" + text.ljust(self.width))
        self.stream.flush()
        self.width = len(text)

    def batch(self, epoch, epochs, i, n, running_loss, seen, seconds) -> None:
        now = time.perf_counter()
        if not self.tty or (now - self.last < 0.1 and i < n):
            return
        self.last = now
        rate = seen / max(seconds, 1e-9)
        minutes, secs = divmod(round((n - i) * seconds / i), 60)
        self._show(f"epoch {epoch}/{epochs}  batch {i}/{n}  loss {running_loss:.2f}  "
                   f"{rate:,.0f} samples/s  ETA {minutes}:{secs:02d}")

    def epoch(self, record: dict, epochs: int) -> None:
        if self.stream is None:
            return
        text = (f"epoch {record['epoch']}/{epochs}  train {record['train_loss']:.2f} "
                f"(recon {record['train_recon']:.2f}, KL {record['train_kl']:.2f})")
        if record["test_loss"] is not None:
            text += (f"  test {record['test_loss']:.2f} "
                     f"(recon {record['test_recon']:.2f}, KL {record['test_kl']:.2f})")
        text += f"  β {record['beta']:.3g}  {record['samples_per_sec']:,.0f} samples/s  {record['seconds']:.1f} s"
        if self.tty:
            self._show(text)
            self.stream.write("\n")
            self.width = 0
        else:
            self.stream.write(text + "\n")
        self.stream.flush()

    def line(self, text: str) -> None:
        if self.stream is not None:
            self.end()
            self.stream.write(text + "\n")
            self.stream.flush()

    def end(self) -> None:
        """Finish a half-drawn progress line, so that the next message starts on its own line."""
        if self.tty and self.width:
            self.stream.write("\n")
            self.stream.flush()
            self.width = 0
