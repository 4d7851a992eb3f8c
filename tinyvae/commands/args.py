"""What every verb's command line shares: one help style, and argparse types.

verb_parser(VERB, ...) is every verb's parser: its usage line names `python -m tinyvae VERB`,
and each option's default is printed once, as "(default: X)" at the end of its help, by
HelpFormatter (an option whose help says its default in words keeps those words; an option with
no default, or a flag, shows none). Options that take a value name it with a metavar from one
vocabulary (DIR, FILE, N, K, S, ...), the same for the same flag in every verb
(tests/test_help.py holds all of this across the verbs).

The types: a bad value ends with argparse's "argument --x: expected ..." and exit status 2,
never a traceback.
"""

from __future__ import annotations

import argparse
from functools import partial
from pathlib import Path

from .. import _checks

PROGRAM = "python -m tinyvae"


class HelpFormatter(argparse.HelpFormatter):
    """argparse's help, with each option's default appended once as "(default: X)"."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        default = action.default
        if (not action.option_strings or default is None or default is False
                or default == argparse.SUPPRESS or "(default" in text):
            return text
        shown = ",".join(map(str, default)) if isinstance(default, (tuple, list)) else \
            f"{default:g}" if isinstance(default, float) else str(default)
        return f"{text} (default: {shown.replace('%', '%%')})"


def verb_parser(verb: str, description: str, **kwargs) -> argparse.ArgumentParser:
    """The parser of `python -m tinyvae VERB`, in the one help style of every verb."""
    kwargs.setdefault("prog", f"{PROGRAM} {verb}")
    return argparse.ArgumentParser(description=description, formatter_class=HelpFormatter,
                                   **kwargs)


def _argument_type(cast, check, expected: str):
    """An argparse type: ``check(cast(text))``, the package's own check, so that a command line
    refuses exactly what the functions it calls would refuse ("expected <expected>" if not)."""
    def parse(text: str):
        try:
            return check("value", cast(text))
        except ValueError:  # cast's "not a number" and check's "out of range" alike
            raise argparse.ArgumentTypeError(f"expected {expected}, got {text!r}") from None
    parse.__name__ = expected  # argparse names the type in some messages
    return parse


# No count or size a command takes (epochs, images, units, samples) is meaningful beyond 2^31 - 1;
# larger ones (10^20) only fail later, deep inside numpy, as an allocation or an overflow.
MAX_INT = 2**31 - 1
MAX_SEED = 2**63 - 1  # a seed is kept as an int64 (checkpoints, numpy's SeedSequence takes more)


def _at_most(top: int, check):
    def bounded(name, value):
        value = check(name, value)
        if value > top:
            raise ValueError(f"{name} must be at most {top}, got {value}")
        return value
    return bounded


positive_int = _argument_type(int, _at_most(MAX_INT, _checks.positive_int), f"an integer from 1 to {MAX_INT}")
nonnegative_int = _argument_type(int, _at_most(MAX_INT, _checks.nonnegative_int), f"an integer from 0 to {MAX_INT}")
seed = _argument_type(int, _at_most(MAX_SEED, _checks.nonnegative_int), "a seed, an integer from 0 to 2**63 - 1")
positive_float = _argument_type(float, partial(_checks.finite_real, minimum=0.0, strict=True), "a number > 0")
nonnegative_float = _argument_type(float, partial(_checks.finite_real, minimum=0.0), "a number >= 0")


def hidden_sizes(text: str) -> tuple[int, ...]:
    """"400" -> (400,), "200,200" -> (200, 200): the encoder's hidden layers (the decoder mirrors them)."""
    try:
        sizes = tuple(int(part) for part in text.split(","))
    except ValueError:
        sizes = ()
    if not sizes or min(sizes) < 1 or max(sizes) > MAX_INT:
        raise argparse.ArgumentTypeError(
            f"expected comma-separated positive integers such as 400 or 200,200 "
            f"(hidden sizes must be positive, at most {MAX_INT}), got {text!r}")
    return sizes


def output_file(text: str) -> Path:
    """A file to write (a figure, a JSON): its folder must exist now, before any work is done."""
    path = Path(text)
    if not text or path.is_dir() or not path.parent.is_dir():
        raise argparse.ArgumentTypeError(f"expected a file path in an existing folder, got {text!r}")
    return path


def _std_in_range(name, value):
    value = _checks.finite_real(name, value, minimum=0.0, strict=True)
    if not 1e-100 <= value <= 1e100:  # VAEConfig's range: σ² neither under- nor overflows
        raise ValueError(f"{name} out of range")
    return value


gaussian_std = _argument_type(float, _std_in_range, "a standard deviation from 1e-100 to 1e100")
