"""Exercise gaussian: the Gaussian NLL's gradient (fixed σ).

Write the body of gaussian_nll() below, then check it with either of

    python gaussian.py
    python -m tinyvae exercise check gaussian

(the second from the folder that holds tinyvae-exercises/, or with --dir FOLDER). The check
puts your function into a small VAE in place of tinyvae's own, compares every gradient of the
model with central finite differences, and explains what fails. Your function runs in a
process of its own, on inputs it must not change, where tinyvae's own version is out of reach.
The derivation is docs/04-gradients.md eq. (10): try it on paper first.
"""

import math


def gaussian_nll(mean, x, std):
    """−log N(x; m, σ²) with a fixed σ, summed over pixels, and its gradient with respect to m.

        nll = Σ_d ½ [(x − m)²/σ² + log σ² + log 2π]         docs/04-gradients.md eq. (9)
        dmean = d nll / d m                                 docs/04-gradients.md eq. (10)

    mean (B, D), x (B, D), std = σ > 0 (a float) -> nll (B,), dmean (B, D).
    The check runs with σ = 0.6: why not σ = 1 (docs/05-classroom.md §4)?
    """
    var = float(std) ** 2
    diff = mean - x  # (B, D)
    nll = 0.5 * (diff * diff / var + math.log(var) + math.log(2 * math.pi))  # (B, D)
    dmean = None  # (B, D): write it
    if dmean is None:
        raise NotImplementedError("gaussian_nll's gradient: docs/04-gradients.md eq. (10)")
    return nll.sum(axis=1), dmean


if __name__ == "__main__":  # `python gaussian.py`: this file checks itself
    from tinyvae.classroom.exercises import check_file

    check_file(__file__, "gaussian")
