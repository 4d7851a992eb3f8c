"""Exercise gaussian-learned: the Gaussian NLL's gradients (learned variance).

Write the body of gaussian_nll_learned() below, then check it with either of

    python gaussian-learned.py
    python -m tinyvae exercise check gaussian-learned

(the second from the folder that holds tinyvae-exercises/, or with --dir FOLDER). The check
puts your function into a small VAE in place of tinyvae's own, compares every gradient of the
model with central finite differences, and explains what fails. Your function runs in a
process of its own, on inputs it must not change, where tinyvae's own version is out of reach.
The derivation is docs/04-gradients.md eq. (12): try it on paper first.
"""

import math

import numpy as np


def gaussian_nll_learned(mean, log_var, x):
    """−log N(x; m, e^s) with a per-pixel log-variance s from the decoder, and its two gradients.

        nll = Σ_d ½ [(x − m)² e^(−s) + s + log 2π]          docs/04-gradients.md eq. (11)
        dmean = d nll / d m,  dlog_var = d nll / d s        docs/04-gradients.md eq. (12)

    mean (B, D), log_var (B, D), x (B, D) -> nll (B,), dmean (B, D), dlog_var (B, D).
    """
    diff = mean - x  # (B, D)
    inv_var = np.exp(-log_var)  # (B, D)
    nll = 0.5 * (diff * diff * inv_var + log_var + math.log(2 * math.pi))  # (B, D)
    dmean, dlog_var = None, None  # (B, D) each: write them
    if dmean is None or dlog_var is None:
        raise NotImplementedError("gaussian_nll_learned's gradients: docs/04-gradients.md eq. (12)")
    return nll.sum(axis=1), dmean, dlog_var


if __name__ == "__main__":  # `python gaussian-learned.py`: this file checks itself
    from tinyvae.classroom.exercises import check_file

    check_file(__file__, "gaussian-learned")
