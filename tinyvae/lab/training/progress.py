"""Progress lines for long work: training epochs and evaluation passes.

On a terminal a line is redrawn in place (with \\r, at most ten times a second); in a log
file or a pipe, where \\r would pile up, only finished lines are written: one per epoch,
and one per tenth of an evaluation pass. The library's loops take a plain callback
(`progress(done, total)`), so the core and the speed wing never import this display; the
lab and the commands hand one in.

Progress is never worth a run: every stream is written through `tolerant`, which drops what
cannot be written (a closed pipe, `... | head -3`; a full disk) instead of raising.
"""

from __future__ import annotations

import os
import statistics
import sys
import time
from typing import TextIO


class _Tolerant:
    """A text stream whose write failures are dropped, with everything written after them.

    After the first failure the stream's file descriptor is pointed at /dev/null, so that
    Python's own flush at exit does not fail on the same closed pipe either.
    """

    def __init__(self, stream: TextIO):
        self.stream = stream
        self.broken = False

    def _drop(self) -> None:
        self.broken = True
        try:
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, self.stream.fileno())
            os.close(devnull)
        # no file descriptor (a StringIO): nothing to redirect
        except (OSError, ValueError, AttributeError):
            pass

    def write(self, text: str) -> int:
        if not self.broken:
            try:
                self.stream.write(text)
            # BrokenPipeError is an OSError; ValueError: a closed file
            except (OSError, ValueError):
                self._drop()
        return len(text)

    def flush(self) -> None:
        if not self.broken:
            try:
                self.stream.flush()
            except (OSError, ValueError):
                self._drop()

    def isatty(self) -> bool:
        try:
            return not self.broken and self.stream.isatty()
        except (OSError, ValueError, AttributeError):
            return False


def tolerant(stream: TextIO | None) -> TextIO | None:
    """`stream` with its write errors dropped (None stays None: silence)."""
    if stream is None or isinstance(stream, _Tolerant):
        return stream
    return _Tolerant(stream)


def clock(seconds: float) -> str:
    """Seconds as m:ss, or h:mm:ss from an hour on."""
    m, s = divmod(int(round(seconds)), 60)
    h, m = divmod(m, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


def is_terminal(stream: TextIO | None) -> bool:
    return stream is not None and hasattr(stream, "isatty") and stream.isatty()


def in_a_notebook() -> bool:
    """Whether this is a Jupyter kernel (whose cells redraw a line on \\r as a terminal does)."""
    shell = sys.modules.get("IPython")
    get = getattr(shell, "get_ipython", None)
    return get is not None and type(get()).__name__ == "ZMQInteractiveShell"


def watched() -> bool:
    """Whether a person is likely watching this process's progress: stderr is a terminal, or
    this is a notebook. (A log file or a pipe is read later, if at all.)"""
    return is_terminal(sys.stderr) or in_a_notebook()


class CountProgress:
    """`progress(done, total)` for a pass over images: "L_1000: 2,000/10,000 images (20 %) ...".

    In place on a terminal or in a notebook; a plain line per 10 % otherwise. The line ends when
    done == total. The ETA is measured, not guessed: this pass's pace so far times what is left.
    begin(done, total) says that a pass continues from `done` images finished earlier (kept on
    disk): the pace then counts only the images done from here on.
    """

    def __init__(self, what: str, stream: TextIO | None = None, *, in_place: bool | None = None):
        self.what = what
        self.stream = tolerant(sys.stderr if stream is None else stream)
        self.tty = is_terminal(self.stream) if in_place is None else in_place
        self.t0 = time.perf_counter()
        self.start = 0
        self.last_tenth = 0
        self.width = 0  # of the line shown in place

    def begin(self, done: int, total: int) -> None:
        """The pass goes on from `done` images finished before: say so, time only what follows."""
        self.t0, self.start, self.last_tenth = time.perf_counter(), done, done * 10 // total
        self.stream.write(f"{self.what}: {done:,}/{total:,} images done before, kept; "
                          "going on from there\n")
        self.stream.flush()

    def __call__(self, done: int, total: int) -> None:
        elapsed = time.perf_counter() - self.t0
        eta = elapsed / (done - self.start) * (total - done) if done > self.start else 0.0
        line = (f"{self.what}: {done:,}/{total:,} images ({100 * done / total:.0f} %), "
                f"{clock(elapsed)} elapsed, ETA {clock(eta)}")
        if self.tty:
            self.stream.write("\r" + line.ljust(self.width))  # spaces clear a longer line's rest
            self.width = len(line)
            if done == total:
                self.stream.write("\n")
        elif done * 10 // total > self.last_tenth or done == total:
            self.last_tenth = done * 10 // total
            self.stream.write(line + "\n")
        self.stream.flush()


class EpochProgress:
    """The training run's lines: a batch counter redrawn in place on a terminal, and one
    finished line per epoch (the only thing written when output goes to a file).

    Each line but the last ends with the run's ETA and what it covers: the epochs left at the
    median pace of this process's epochs (re-estimated every epoch, so a machine that slows
    down or speeds up moves it), plus what `eta_extra(epoch, epoch_seconds)` says the run will
    spend beyond its epochs (evaluations), as (seconds, "what that is").
    """

    def __init__(self, stream: TextIO | None, eta_extra=None):
        self.stream = tolerant(stream)
        self.tty = is_terminal(self.stream)
        self.eta_extra = eta_extra
        self.width = 0  # length of the line currently shown, to blank it out when rewriting
        self.last = 0.0
        # the epochs finished in this process, for the run's ETA
        self.epoch_seconds: list[float] = []

    def _run_eta(self, epoch: int, epochs: int, this_epoch_left: float,
                 this_epoch_total: float) -> tuple[float, str]:
        """(seconds until the whole run ends, what they are): this epoch's rest, then the others at
        the median pace of the epochs finished so far (this one's estimate while there are none),
        then the work beyond the epochs. The median, not the mean: one slow epoch must not
        multiply the estimate of every other."""
        per_epoch = (statistics.median(self.epoch_seconds) if self.epoch_seconds
                     else this_epoch_total)
        seconds = this_epoch_left + (epochs - epoch) * per_epoch
        left = epochs - epoch
        parts = [f"{left:,} epoch{'s' * (left > 1)} at {per_epoch:.1f} s"] if left > 0 else []
        if self.eta_extra is not None:
            extra, extra_what = self.eta_extra(epoch, self.epoch_seconds)
            if extra_what:
                seconds += extra
                parts.append(extra_what)
        return seconds, ", then ".join(parts)

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
        left = (n - i) * seconds / i
        run_left, _ = self._run_eta(epoch, epochs, left, n * seconds / i)
        self._show(f"epoch {epoch}/{epochs}  batch {i}/{n}  loss {running_loss:.2f}  "
                   f"{rate:,.0f} samples/s  epoch ETA {clock(left)}, run ETA {clock(run_left)}")

    def epoch(self, record: dict, epochs: int) -> None:
        self.epoch_seconds.append(record["seconds"])
        if self.stream is None:
            return
        text = (f"epoch {record['epoch']}/{epochs}  train {record['train_loss']:.2f} "
                f"(recon {record['train_recon']:.2f}, KL {record['train_kl']:.2f})")
        if record["test_loss"] is not None:
            recon, kl = record["test_recon"], record["test_kl"]
            text += f"  test {record['test_loss']:.2f} (recon {recon:.2f}, KL {kl:.2f}"
            # beyond float32 rounding
            if abs(record["test_loss"] - (recon + kl)) > 1e-5 * abs(recon + kl):
                text += f"; ELBO {-(recon + kl):.2f}"  # β ≠ 1: the loss is recon + β·KL, not −ELBO
            text += ")"
        text += (f"  β {record['beta']:.3g}  {record['samples_per_sec']:,.0f} samples/s  "
                 f"{record['seconds']:.1f} s")
        seconds, what = self._run_eta(record["epoch"], epochs, 0.0, record["seconds"])
        if what:  # nothing is left after the last epoch of a run with no evaluation to come
            text += f"  run ETA {clock(seconds)} ({what})"
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


def evaluation_eta(probed: float, epoch_seconds: list[float]) -> tuple[float, str]:
    """For the epochs' ETA: the evaluation after training, as timed on one batch before it,
    scaled by how the epochs' pace has changed since (the median of all this process's epochs
    against that of its first three): a machine that stays slower slows both, and one slow
    epoch moves neither median much."""
    scale = 1.0
    if epoch_seconds:
        scale = statistics.median(epoch_seconds) / statistics.median(epoch_seconds[:3])
    return probed * scale, f"the evaluation, about {clock(probed * scale)}"
