"""The lecture's worked KL example, in numbers: docs/03-kl-worked-example.md.

The slide takes P = (0.36, 0.48, 0.16) over three outcomes and Q uniform, writes
Q as 0.33, and quotes KL(P ‖ Q) = 0.0414 and KL(Q ‖ P) = 0.0375. This program
prints both directions in nats, bits and base 10,

  - with the exact uniform Q = 1/3, through tinyvae.losses.kl_divergence, and
  - with the slide's rounded Q = 0.33, as the raw sum Σ a log(a/b) written on the
    slide. kl_divergence refuses this Q, because 3 × 0.33 = 0.99 is not a
    probability distribution, so the raw sum is not a true KL divergence;

and then shows which base and which rounding reproduce the slide's two figures.

    python examples/kl_divergence.py
"""

from __future__ import annotations

import argparse
import math

import numpy as np

from tinyvae.losses import kl_divergence

P = np.array([0.36, 0.48, 0.16])
Q_EXACT = np.full(3, 1 / 3)
Q_SLIDE = np.full(3, 0.33)  # as printed on the slide: sums to 0.99
SLIDE_FIGURES = {"KL(P||Q)": 0.0414, "KL(Q||P)": 0.0375}
UNITS = {"nats": math.e, "bits": 2.0, "base 10": 10.0}


def raw_kl_sum(a: np.ndarray, b: np.ndarray, base: float) -> float:
    """Σ_x a(x) log_base(a(x)/b(x)), exactly as written on the slide.

    No check that a and b are distributions: with b = 0.33 everywhere this is
    not a KL divergence (b sums to 0.99), only the same arithmetic.
    """
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    return float(np.sum(a * np.log(a / b)) / math.log(base))


def kl_table() -> list[dict]:
    """Both directions, both Qs, all three units, as a list of rows.

    Each row: {"q": "1/3" or "0.33", "direction": "KL(P||Q)" or "KL(Q||P)",
    "method": how it was computed, "nats": float, "bits": float, "base 10": float}.
    """
    rows = []
    for q_name, q in (("1/3", Q_EXACT), ("0.33", Q_SLIDE)):
        for direction, (a, b) in (("KL(P||Q)", (P, q)), ("KL(Q||P)", (q, P))):
            row = {"q": q_name, "direction": direction}
            for unit, base in UNITS.items():
                if q_name == "1/3":
                    row[unit] = kl_divergence(a, b, base=base)
                else:
                    row[unit] = raw_kl_sum(a, b, base)
            row["method"] = ("tinyvae.losses.kl_divergence" if q_name == "1/3"
                             else "raw sum (Q sums to 0.99: not a true KL)")
            rows.append(row)
    return rows


def truncate(value: float, decimals: int = 4) -> float:
    """Cut `value` after `decimals` decimal places (toward zero), without rounding."""
    scale = 10**decimals
    return math.trunc(value * scale) / scale


def slide_reproduction() -> dict:
    """Which (Q, base) reproduces the slide's 0.0414 and 0.0375, and with which rounding.

    For every Q and unit, both directions are rounded and truncated to four
    decimals; a combination "matches" when both slide figures come out.
    Returns {"matches_rounded": [(q, unit), ...], "matches_truncated": [...],
    "base10_q033": {direction: value}} so that the explanation in the docs can be
    asserted by the tests.
    """
    rows = kl_table()
    matches_rounded, matches_truncated = [], []
    for q_name in ("1/3", "0.33"):
        for unit in UNITS:
            values = {r["direction"]: r[unit] for r in rows if r["q"] == q_name}
            if all(round(values[d], 4) == SLIDE_FIGURES[d] for d in SLIDE_FIGURES):
                matches_rounded.append((q_name, unit))
            if all(truncate(values[d]) == SLIDE_FIGURES[d] for d in SLIDE_FIGURES):
                matches_truncated.append((q_name, unit))
    base10 = {r["direction"]: r["base 10"] for r in rows if r["q"] == "0.33"}
    return {"matches_rounded": matches_rounded, "matches_truncated": matches_truncated,
            "base10_q033": base10}


def format_table(rows: list[dict]) -> str:
    """The rows as a fixed-width text table."""
    lines = [f"{'Q':<5} {'direction':<9} {'nats':>10} {'bits':>10} {'base 10':>10}  computed with"]
    for r in rows:
        lines.append(
            f"{r['q']:<5} {r['direction']:<9} {r['nats']:>10.7f} {r['bits']:>10.7f} "
            f"{r['base 10']:>10.7f}  {r['method']}"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.parse_args(argv)

    print(f"P = {P.tolist()},  Q uniform over 3 outcomes\n")
    print(format_table(kl_table()))

    rep = slide_reproduction()
    b10 = rep["base10_q033"]
    print(f"\nslide: KL(P||Q) = {SLIDE_FIGURES['KL(P||Q)']},  "
          f"KL(Q||P) = {SLIDE_FIGURES['KL(Q||P)']}")
    print(f"base 10 with Q = 0.33: KL(P||Q) = {b10['KL(P||Q)']:.6f},  "
          f"KL(Q||P) = {b10['KL(Q||P)']:.6f}")
    print(f"  rounded to 4 decimals:   {round(b10['KL(P||Q)'], 4):.4f}, "
          f"{round(b10['KL(Q||P)'], 4):.4f}")
    print(f"  truncated to 4 decimals: {truncate(b10['KL(P||Q)']):.4f}, "
          f"{truncate(b10['KL(Q||P)']):.4f}")
    print(f"(Q, unit) giving both slide figures when rounded:   {rep['matches_rounded'] or 'none'}")
    print("(Q, unit) giving both slide figures when truncated: "
          f"{rep['matches_truncated'] or 'none'}")


if __name__ == "__main__":
    main()
