"""Progress lines for long work: training epochs and evaluation passes.

On a terminal a line is redrawn in place (with \\r, at most ten times a second); in a log
file or a pipe, where \\r would pile up, only finished lines are written. The library's
loops take a plain callback (`progress(done, total)`), so the core and the speed wing
never import this display; the lab and the commands hand one in.
"""

from __future__ import annotations

import sys
import time
from typing import TextIO


def clock(seconds: float) -> str:
    """Seconds as m:ss."""
    m, s = divmod(int(round(seconds)), 60)
    return f"{m}:{s:02d}"


def is_terminal(stream: TextIO | None) -> bool:
    return stream is not None and hasattr(stream, "isatty") and stream.isatty()


class CountProgress:
    """`progress(done, total)` for a pass over images: "L_1000: 2,000/10,000 images (20 %) ...".

    In place on a terminal; a plain line per 10 % otherwise. The line ends when done == total.
    """

    def __init__(self, what: str, stream: TextIO | None = None):
        self.what = what
        self.stream = sys.stderr if stream is None else stream
        self.tty = is_terminal(self.stream)
        self.t0 = time.perf_counter()
        self.last_tenth = 0

    def __call__(self, done: int, total: int) -> None:
        elapsed = time.perf_counter() - self.t0
        eta = elapsed / done * (total - done)
        line = (f"{self.what}: {done:,}/{total:,} images ({100 * done / total:.0f} %), "
                f"{clock(elapsed)} elapsed, ETA {clock(eta)}")
        if self.tty:
            self.stream.write("\r" + line + "\033[K")  # \033[K clears what a longer line left
            if done == total:
                self.stream.write("\n")
        elif done * 10 // total > self.last_tenth or done == total:
            self.last_tenth = done * 10 // total
            self.stream.write(line + "\n")
        self.stream.flush()


class EpochProgress:
    """The training run's lines: a batch counter redrawn in place on a terminal, and one
    finished line per epoch (the only thing written when output goes to a file)."""

    def __init__(self, stream: TextIO | None):
        self.stream = stream
        self.tty = is_terminal(stream)
        self.width = 0  # length of the line currently shown, to blank it out when rewriting
        self.last = 0.0
        self.epoch_seconds: list[float] = []  # the epochs finished in this process, for the run's ETA

    def _run_eta(self, epoch: int, epochs: int, this_epoch_left: float, this_epoch_total: float) -> float:
        """Seconds until the whole run ends: this epoch's rest, then the others at the mean pace
        of the epochs finished so far (this one's estimate while there are none)."""
        per_epoch = sum(self.epoch_seconds) / len(self.epoch_seconds) if self.epoch_seconds else this_epoch_total
        return this_epoch_left + (epochs - epoch) * per_epoch

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
        run_left = self._run_eta(epoch, epochs, left, n * seconds / i)
        self._show(f"epoch {epoch}/{epochs}  batch {i}/{n}  loss {running_loss:.2f}  "
                   f"{rate:,.0f} samples/s  ETA {clock(left)} (run {clock(run_left)})")

    def epoch(self, record: dict, epochs: int) -> None:
        self.epoch_seconds.append(record["seconds"])
        if self.stream is None:
            return
        text = (f"epoch {record['epoch']}/{epochs}  train {record['train_loss']:.2f} "
                f"(recon {record['train_recon']:.2f}, KL {record['train_kl']:.2f})")
        if record["test_loss"] is not None:
            text += (f"  test {record['test_loss']:.2f} "
                     f"(recon {record['test_recon']:.2f}, KL {record['test_kl']:.2f})")
        text += f"  β {record['beta']:.3g}  {record['samples_per_sec']:,.0f} samples/s  {record['seconds']:.1f} s"
        if record["epoch"] < epochs:
            text += f"  run ETA {clock(self._run_eta(record['epoch'], epochs, 0.0, record['seconds']))}"
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
