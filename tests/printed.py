"""A line the docs paste from a program's output, held to what the program prints, to the precision
that means something on any machine.

Another CPU (other SIMD paths, another summation order, another libm) moves a float64 result
by a few units in its last bit. Printed to a fixed number of digits, that shows only where the
value sits at a rounding boundary, as one unit of the last printed digit; in a column that
prints rounding error itself (|log p(x) - (KL + ELBO)| = 5.3e-15), it shows everywhere. So a
pasted line matches a printed one when their words and layout are the same and each number
agrees to what it means:

- a number whose pasted value is below `noise` in size is rounding error: it matches any
  printed number below `noise` (the same order of magnitude, within a factor of 10, when
  neither is 0), never a digit-for-digit copy;
- every other number matches within one unit of its last printed digit, or within `rel`
  (relative) or `abs` where a test says that more is noise (a Monte-Carlo figure whose
  computation another machine changes: to its error).

Integers (a count, a k, a seed) agree exactly: no machine rounds a count.
"""

from __future__ import annotations

import math
import re

NUMBER = re.compile(r"[-−]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?")


def _value(text: str) -> float:
    return float(text.replace("−", "-"))


def _last_digit(text: str) -> float:
    """The size of one unit of the last digit printed: 0.01 for -6.33, 1e-16 for 5.3e-15."""
    mantissa, _, exponent = text.replace("−", "-").lower().partition("e")
    decimals = len(mantissa.partition(".")[2])
    return 10.0 ** (int(exponent or 0) - decimals)


def numbers_agree(pasted: str, printed: str, *, noise: float = 0.0, rel: float = 0.0,
                  abs: float = 0.0) -> bool:
    """Whether the printed number stands for the pasted one (the rules of the module docstring)."""
    p, q = _value(pasted), _value(printed)
    if not re.search(r"[.eE]", pasted + printed):
        return p == q
    if math.fabs(p) < noise:
        if math.fabs(q) >= noise:
            return False
        return p == 0 or q == 0 or math.fabs(math.log10(math.fabs(p / q))) <= 1
    unit = max(_last_digit(pasted), _last_digit(printed))
    return math.fabs(p - q) <= max(unit * (1 + 1e-6), rel * math.fabs(p), abs)  # binary fractions


def lines_agree(pasted: str, printed: str, **tolerance) -> bool:
    """The same words in the same order (runs of spaces count as one: a number one digit wider
    shifts its column), and every number agreeing (numbers_agree)."""
    words_p, words_q = NUMBER.split(pasted), NUMBER.split(printed)
    if len(words_p) != len(words_q) or [" ".join(w.split()) for w in words_p] != \
            [" ".join(w.split()) for w in words_q]:
        return False
    pairs = zip(NUMBER.findall(pasted), NUMBER.findall(printed))
    return all(numbers_agree(a, b, **tolerance) for a, b in pairs)


def unmatched(pasted_lines, printed_lines, **tolerance) -> list[str]:
    """The pasted lines (blank ones skipped) that no printed line agrees with."""
    printed_lines = list(printed_lines)
    return [line for line in pasted_lines if line.strip()
            and not any(lines_agree(line, out, **tolerance) for out in printed_lines)]
