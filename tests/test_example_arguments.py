"""The lesson examples refuse nonsense arguments with one argparse line and exit 2, before any
work: a negative seed, a count of 10^20, a figure in a folder that does not exist."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
CASES = [("amortization_gap.py", "--seed", "-1"), ("amortization_gap.py", "--steps", "1e20"),
         ("decoder_sigma_as_beta.py", "--sigmas", "inf"), ("decoder_sigma_as_beta.py", "--json", "/nonexistent/a.json"),
         ("elbo_identity.py", "--repeats", "100000000000000000000"), ("elbo_identity.py", "--plot", "/nonexistent/a.png"),
         ("elbo_surgery.py", "--images", "0"), ("elbo_surgery.py", "--json", "/nonexistent/a.json"),
         ("reparameterization_vs_score_function.py", "--seed", "-1"),
         ("reparameterization_vs_score_function.py", "--repeats", "0"),
         ("k_samples.py", "--ks", "5,1"), ("k_samples.py", "--repeats", "0")]


@pytest.mark.parametrize("script, flag, value", CASES)
def test_a_nonsense_argument_is_one_line_and_exit_2(script, flag, value):
    result = subprocess.run([sys.executable, str(EXAMPLES / script), flag, value], capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert f"argument {flag}: expected" in result.stderr.strip().splitlines()[-1]


@pytest.mark.parametrize("verb", ["train", "gradcheck"])
def test_a_gaussian_std_whose_variance_would_underflow_is_refused_on_the_command_line(verb):
    result = subprocess.run([sys.executable, "-m", "tinyvae", verb, "--likelihood", "gaussian",
                             "--gaussian-std", "1e-200"], capture_output=True, text=True, timeout=120)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "argument --gaussian-std: expected" in result.stderr


def test_the_lessons_shared_ending_reports_one_line_or_writes_and_draws(tmp_path, capsys):
    import argparse
    from tinyvae.commands.lesson import run_lesson
    from tinyvae.lab.datasets.readers import DataError

    def missing(args):
        raise DataError("mnist/t10k-images-idx3-ubyte.gz: no such file")

    args = argparse.Namespace(json=tmp_path / "res.json", plot=tmp_path / "fig.png")
    assert run_lesson("lesson", args, missing, str) == 1
    assert capsys.readouterr().err == "lesson: error: mnist/t10k-images-idx3-ubyte.gz: no such file\n"
    assert not args.json.exists()
    drawn = []
    assert run_lesson("lesson", args, lambda a: {"gap": 1.5}, lambda r: f"gap {r['gap']}",
                      lambda r, path: drawn.append(path)) == 0
    assert capsys.readouterr().out == f"gap 1.5\nfigure written to {args.plot}\n"
    assert args.json.read_text().strip().startswith("{") and drawn == [args.plot]
