"""What every verb's command line shares: one help style, and argparse types.

verb_parser(VERB, ...) is every verb's parser: its usage line names `python -m tinyvae VERB`,
and each option's default is printed once, as "(default: X)" at the end of its help, by
HelpFormatter (an option whose help says its default in words keeps those words; an option with
no default, or a flag, shows none). Options that take a value name it with a metavar from one
vocabulary (DIR, FILE, N, K, S, ...), the same for the same flag in every verb
(tests/test_help.py holds all of this across the verbs).

The types: a bad value ends with argparse's "argument --x: expected ..." and exit status 2,
never a traceback. Each type is one of tinyvae/lab/values.py's checks, which also check the
settings a checkpoint keeps: a checkpoint can hold nothing these would refuse.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from ..lab import values

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


MAX_INT, MAX_SEED = values.MAX_INT, values.MAX_SEED

positive_int = _argument_type(int, values.positive_int, f"an integer from 1 to {MAX_INT}")
nonnegative_int = _argument_type(int, values.nonnegative_int, f"an integer from 0 to {MAX_INT}")
seed = _argument_type(int, values.seed, "a seed, an integer from 0 to 2**63 - 1")
positive_float = _argument_type(float, values.positive_float, "a number > 0")
nonnegative_float = _argument_type(float, values.nonnegative_float, "a number >= 0")


def hidden_sizes(text: str) -> tuple[int, ...]:
    """"400" -> (400,), "200,200" -> (200, 200): the encoder's hidden layers (the decoder mirrors
    them)."""
    try:
        return values.hidden_sizes("value", [int(part) for part in text.split(",")])
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected comma-separated positive integers such as 400 or 200,200 "
            f"(hidden sizes must be positive, at most {MAX_INT}), got {text!r}") from None


def output_file(text: str) -> Path:
    """A file to write (a figure, a JSON): its folder must exist now, before any work is done."""
    path = Path(text)
    if not text or path.is_dir() or not path.parent.is_dir():
        raise argparse.ArgumentTypeError(f"expected a file path in an existing folder, "
                                         f"got {text!r}")
    return path


gaussian_std = _argument_type(float, values.gaussian_std,
                              "a standard deviation from 1e-100 to 1e100")
