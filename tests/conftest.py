"""The tests find the data the way the program does, and say where they found it.

`python -m tinyvae train` looks for MNIST in $TINYVAE_DATA, then in the per-user cache
(~/.cache/tinyvae, where it downloads to): tinyvae.lab.datasets.data.default_data_dirs. The
tests that need the real files read $TINYVAE_DATA; so when it is unset and the program would
find the files in the cache, it is set to the cache here, before any test module is imported.
Where there are no files at all, those tests are skipped, and the summary says why and how to
run them.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tinyvae.lab.datasets import data

from helpers import FUNCTION_NOTE_LINES, MODULE_NOTE_LINES, has_mnist, large_rooms

REPO = Path(__file__).resolve().parents[1]
EXAMPLE = REPO / "examples" / "mnist.py"
# A run that takes seconds: few images, a tiny model, one epoch, a small k.
TINY = ["--epochs", "1", "--hidden", "16", "--latent-dim", "2", "--iw-samples", "10",
        "--train-limit", "3000", "--test-limit", "500"]

_FOUND: dict[str, str] = {}


def data_root() -> tuple[Path | None, str]:
    """The data root holding mnist/ that the program would use, and where that came from."""
    try:
        dirs = data.default_data_dirs("mnist")
    except data.DatasetNotFound as exc:  # TINYVAE_DATA names a file
        return None, str(exc)
    names = [f.name for f in data.FILES["mnist"].values()]
    for folder in dirs:
        if all((folder / n).exists() or (folder / (n + ".gz")).exists() for n in names):
            source = "TINYVAE_DATA" if os.environ.get("TINYVAE_DATA") and folder.parent == Path(
                os.environ["TINYVAE_DATA"]) else "the per-user cache"
            return folder.parent, source
    return None, "looked in " + ", ".join(str(d) for d in dirs)


def pytest_addoption(parser):
    parser.addoption("--rerun-results", action="store_true",
                     help="also rerun the long runs whose committed results the docs quote "
                          "(minutes each)")


def pytest_configure(config):
    config.addinivalue_line("markers", "needs_mnist: needs the real MNIST files "
                                       "(skipped when none are found)")
    config.addinivalue_line("markers", "slow: takes more than a few seconds; "
                                       "-m 'not slow' leaves these out")
    config.addinivalue_line("markers", "rerun: reruns a long run whose committed results the docs "
                                       "quote; only with --rerun-results")
    root, source = data_root()
    if root is not None and not os.environ.get("TINYVAE_DATA"):
        # where the program itself would have found the files
        os.environ["TINYVAE_DATA"] = str(root)
    _FOUND.update(root="" if root is None else str(root), source=source)


def pytest_report_header(config):
    if _FOUND.get("root"):
        return f"tinyvae data: {_FOUND['root']} (from {_FOUND['source']})"
    return (f"tinyvae data: none found ({_FOUND.get('source')}); "
            "the tests that need MNIST will be skipped")


# Fixtures that run a program on the real MNIST files: data_env (a command in a process of its
# own, which loads the data and often trains) and test_lessons' walkthrough (minutes). A test
# that uses one is slow, and -m "not slow" leaves it out.
SLOW_FIXTURES = {"data_env", "walkthrough"}


def pytest_collection_modifyitems(config, items):
    for item in items:
        if SLOW_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.slow)


def pytest_runtest_setup(item):
    if item.get_closest_marker("needs_mnist") and not has_mnist():
        pytest.skip("the MNIST files were not found (see the note at the end of the test run)")
    if item.get_closest_marker("rerun") and not item.config.getoption("--rerun-results"):
        pytest.skip("reruns a long run: pass --rerun-results to include it")


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    notes = large_rooms(sorted((REPO / "tinyvae").rglob("*.py")), REPO)
    if notes:
        terminalreporter.write_line(f"modules and functions past the note sizes "
                                    f"({MODULE_NOTE_LINES} and {FUNCTION_NOTE_LINES} lines; "
                                    f"not limits, worth a look): " + "; ".join(notes))
    skipped = len(terminalreporter.stats.get("skipped", []))
    if skipped and not _FOUND.get("root"):
        terminalreporter.write_line(
            f"{skipped} tests skipped: most need the real MNIST files, which were not found "
            f"({_FOUND.get('source')}). Download them once into ~/.cache/tinyvae with "
            "`python -c \"import tinyvae.lab.datasets.data as d; d.load_dataset('mnist')\"`, "
            "or set TINYVAE_DATA to a folder holding mnist/.")


@pytest.fixture(scope="session")
def data_env():
    """The environment of a command-line test: the data where the program finds it,
    figures headless."""
    if not has_mnist():
        pytest.skip("the MNIST files were not found (see the note at the end of the test run)")
    return {**os.environ, "MPLBACKEND": "Agg"}


def default_signals() -> None:
    """A child process's preexec_fn, for the tests that send it signals: SIGINT, SIGTERM and
    SIGHUP at their defaults, as in a terminal, whatever this test run inherited. A background
    job (`pytest &`, CI runners, a batch job) ignores SIGINT and nohup ignores SIGHUP; a child
    inherits what is ignored, and Python (and tinyvae's commands) then leave it ignored."""
    for name in ("SIGINT", "SIGTERM", "SIGHUP"):
        signal.signal(getattr(signal, name), signal.SIG_DFL)


def cli(*args, env, timeout=300, program=(str(EXAMPLE),)):
    """Run the training command (examples/mnist.py, or program=("-m", "tinyvae", VERB))."""
    return subprocess.run([sys.executable, *program, *args], env=env, capture_output=True,
                          text=True, timeout=timeout)


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory, data_env):
    """One tiny training run, shared by the tests of the training command and of the verbs."""
    out = tmp_path_factory.mktemp("run")
    result = cli(*TINY, "--out", str(out), env=data_env)
    assert result.returncode == 0, result.stderr
    return out, result
