"""A test suite that passes on any machine, in the background as in the foreground.

Docs hold a program's output to the precision that means something (tests/printed.py): a
column of rounding error to its order of magnitude, every other number to its last printed
digit or a stated tolerance, never floating-point noise to the digit. Tests that send a child
signals set its handlers themselves (conftest.default_signals): a background run ignores
SIGINT and its children inherit that. OpenBLAS's threads on a busy machine are detected.
"""

from __future__ import annotations

import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import default_signals
from printed import lines_agree, numbers_agree, unmatched

from tinyvae.speed.blas_threads import contention

ROOT = Path(__file__).resolve().parents[1]


def pasted(page: str, command: str) -> list[str]:
    """Every line pasted under `<!-- output of: COMMAND -->` in docs/PAGE."""
    text = (ROOT / "docs" / page).read_text(encoding="utf-8")
    marker = f"<!-- output of: {command} -->"
    parts = text.split(marker)[1:]
    blocks = [re.search(r"```[a-z]*\n(.*?)```", part, re.S).group(1) for part in parts]
    return [line for block in blocks for line in block.splitlines() if line.strip()]


def another_cpu(line: str, noise: float) -> str:
    """What another CPU may print for `line`: every rounding-error number another one of its size
    (or 0), every other number rounded the other way in its last digit."""
    def move(match):
        text = match.group(0)
        if abs(float(text)) < noise:
            return "0.0e+00" if float(text) else "8.9e-16"
        if not re.search(r"[.e]", text):
            return text
        digits = text.rstrip("0123456789")
        last = int(text[len(digits)]) if len(digits) < len(text) else 0
        return digits + str((last + 1) % 10) if last < 9 else digits + "8"
    return re.sub(r"-?\d+\.\d+(?:e[-+]\d+)?|\d+", move, line)


# The identity's table as docs/02 once pasted it: its last column is rounding error, and
# another CPU printed 3.6e-15 where this one printed 5.3e-15.
ROUNDING_TABLE = """\
    t    log p(x)  KL(q||p(z|x))        ELBO   KL + ELBO  |log p(x) - (KL+ELBO)|
 0.00   -6.332260      10.397004  -16.729264   -6.332260                 5.3e-15
 0.90   -6.332260       0.087896   -6.420155   -6.332260                 0.0e+00
 1.00   -6.332260       0.000000   -6.332260   -6.332260                 8.9e-16""".splitlines()


DOCS_02 = pasted("02-variational-inference.md", "python examples/elbo_identity.py")


@pytest.mark.parametrize("lines", [ROUNDING_TABLE, DOCS_02],
                         ids=["a rounding-error column", "docs/02 today"])
def test_a_pasted_block_holds_on_another_cpu_and_fails_on_a_wrong_number(lines):
    moved = [another_cpu(line, 1e-12) for line in lines]
    assert moved != lines and not unmatched(lines, moved, noise=1e-12)
    wrong = [line.replace("-6.332260", "-6.332290", 1) for line in lines]
    assert unmatched(lines, wrong, noise=1e-12)
    magnified = [line.replace("e-15", "e-11") for line in ROUNDING_TABLE]
    assert unmatched(ROUNDING_TABLE, magnified, noise=1e-12)


@pytest.mark.parametrize("pasted_number, printed_number, noise, agree", [
    ("5.3e-15", "3.6e-15", 1e-12, True), ("5.3e-15", "0.0e+00", 1e-12, True),
    ("5.3e-15", "2.1e-13", 1e-12, False), ("5.3e-15", "4.0e-11", 1e-12, False),
    ("-8.666794", "-8.666795", 0, True), ("-8.666794", "-8.666796", 0, False),
    ("0.0002538", "0.0002537", 0, True), ("86.02", "86.04", 0, False),
    ("19", "20", 0, False), ("19", "19", 0, True),
])
def test_a_number_agrees_to_what_it_means(pasted_number, printed_number, noise, agree):
    assert numbers_agree(pasted_number, printed_number, noise=noise) is agree


def test_words_and_layout_must_agree_and_column_widths_may_not():
    assert lines_agree("L_5000   -86.02 nats", "L_5000  -86.02 nats")
    assert not lines_agree("L_5000   -86.02 nats", "L_5000   -86.02 bits")
    assert not lines_agree("active units 19 of 50", "active units 19 of 50 (and more)")
    assert lines_agree("ELBO -98.66", "ELBO -98.70", abs=0.05)
    assert not lines_agree("ELBO -98.66", "ELBO -98.80", abs=0.05)


# ---- signals: a background run ignores SIGINT, and its children inherit that ----

SLEEPER = "import time; print('READY', flush=True); time.sleep(30)"


def test_a_child_of_a_background_run_takes_ctrl_c_only_when_the_test_restores_it():
    # as under `pytest &`, a CI runner, a batch job
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        children = {name: subprocess.Popen([sys.executable, "-c", SLEEPER], stdout=subprocess.PIPE,
                                           stderr=subprocess.PIPE, text=True, preexec_fn=setup)
                    for name, setup in (("inherited", None), ("restored", default_signals))}
    finally:
        signal.signal(signal.SIGINT, previous)
    for child in children.values():
        assert child.stdout.readline() == "READY\n"
        child.send_signal(signal.SIGINT)
    time.sleep(1)
    assert children["inherited"].poll() is None  # Ctrl-C ignored: the trap the tests fell into
    children["restored"].communicate(timeout=30)
    assert children["restored"].returncode != 0
    children["inherited"].kill()
    children["inherited"].communicate()


def test_every_test_that_signals_a_child_sets_its_handlers():
    """A signal other than SIGKILL, sent to a child process, needs default_signals (or a
    handler the test sets itself) in that test module."""
    for path in sorted(ROOT.glob("tests/test_*.py")):
        text = path.read_text(encoding="utf-8")
        if re.search(r"send_signal\((?!signal\.SIGKILL)", text):
            assert "preexec_fn=" in text, f"{path.name} signals a child, its handlers unset"


# ---- OpenBLAS's threads on a busy machine ----


@pytest.mark.parametrize("threads, cores, load, warned", [
    (2, 2, 0.1, False),  # an idle 2-core machine: two threads fit
    (2, 2, 1.0, True),  # one core taken (a reproduction running): the second thread waits
    (1, 2, 3.0, False),  # one thread: nothing to wait for
    (None, 2, 5.0, False),  # not an OpenBLAS tinyvae can see: nothing to say
    (4, 8, 3.0, False), (4, 8, 5.0, True),
])
def test_openblas_threads_that_outnumber_the_free_cores_are_named(threads, cores, load, warned):
    message = contention(threads, cores, load)
    assert (message is not None) is warned
    if warned:
        assert f"{threads} threads" in message and "OPENBLAS_NUM_THREADS=1" in message
