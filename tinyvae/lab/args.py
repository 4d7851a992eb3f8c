"""argparse types shared by the command-line programs (examples/, bench, gradcheck).

A bad value ends with argparse's "argument --x: expected ..." and exit status 2, never a
traceback.
"""

from __future__ import annotations

import argparse
from functools import partial

from .. import _checks


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


positive_int = _argument_type(int, _checks.positive_int, "an integer > 0")
nonnegative_int = _argument_type(int, _checks.nonnegative_int, "an integer >= 0")
positive_float = _argument_type(float, partial(_checks.finite_real, minimum=0.0, strict=True), "a number > 0")
nonnegative_float = _argument_type(float, partial(_checks.finite_real, minimum=0.0), "a number >= 0")


def hidden_sizes(text: str) -> tuple[int, ...]:
    """"400" -> (400,), "200,200" -> (200, 200): the encoder's hidden layers (the decoder mirrors them)."""
    try:
        sizes = tuple(int(part) for part in text.split(","))
    except ValueError:
        sizes = ()
    if not sizes or min(sizes) < 1:
        raise argparse.ArgumentTypeError(
            f"expected comma-separated positive integers such as 400 or 200,200 "
            f"(hidden sizes must be positive), got {text!r}")
    return sizes
