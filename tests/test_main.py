"""`python -m tinyvae VERB`: every listed verb runs its command; a wrong verb gets one line and
exit 2."""

from __future__ import annotations

import importlib
import subprocess
import sys

import pytest

from tinyvae.__main__ import VERBS, main


def run(*args):
    return subprocess.run([sys.executable, "-m", "tinyvae", *args], capture_output=True, text=True,
                          timeout=120)


def test_help_lists_every_verb():
    result = run("--help")
    assert result.returncode == 0
    for verb in VERBS:
        assert f"  {verb} " in result.stdout


@pytest.mark.parametrize("args", [["trian"], ["bench.py"], ["--bogus"]])
def test_a_misspelled_verb_gets_one_line_and_exit_2(args):
    result = run(*args)
    assert result.returncode == 2
    assert "unknown verb" in result.stderr and "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_no_verb_shows_the_usage_and_exits_2(capsys):
    assert main([]) == 2
    assert "usage: python -m tinyvae VERB" in capsys.readouterr().out


@pytest.mark.slow
@pytest.mark.parametrize("verb", list(VERBS))
def test_every_verb_is_a_command_with_a_main_and_help(verb):
    module = importlib.import_module(VERBS[verb][0])
    assert callable(module.main)
    result = run(verb, "--help")
    assert result.returncode == 0 and "usage:" in result.stdout and "Traceback" not in result.stderr


def test_a_reader_that_stops_early_is_no_error():
    # `python -m tinyvae --help | head -3`: here the reader is gone before anything is written
    process = subprocess.Popen([sys.executable, "-m", "tinyvae", "--help"], stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE)
    process.stdout.close()
    stderr = process.stderr.read().decode()
    assert process.wait(timeout=120) == 0
    assert "Traceback" not in stderr and "BrokenPipeError" not in stderr
