"""argparse types shared by the command-line programs (examples/, bench, gradcheck).

A bad value ends with argparse's "argument --x: expected ..." and exit status 2, never a
traceback.
"""

from __future__ import annotations

import argparse
import math


def _number(cast, lowest, strict: bool, name: str):
    """An argparse type: `cast(text)` that is finite and > lowest (strict) or >= lowest."""
    def parse(text: str):
        try:
            value = cast(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {name}, got {text!r}") from None
        if not math.isfinite(value) or value < lowest or (strict and value == lowest):
            raise argparse.ArgumentTypeError(f"expected {name}, got {text!r}")
        return value
    parse.__name__ = name  # argparse names the type in some messages
    return parse


positive_int = _number(int, 0, True, "an integer > 0")
nonnegative_int = _number(int, 0, False, "an integer >= 0")
positive_float = _number(float, 0.0, True, "a number > 0")
nonnegative_float = _number(float, 0.0, False, "a number >= 0")


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
