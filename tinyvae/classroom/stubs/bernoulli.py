"""Exercise bernoulli: the Bernoulli NLL's gradient.

Write the body of bernoulli_nll() below, then check it with either of

    python bernoulli.py
    python -m tinyvae exercise check bernoulli

(the second from the folder that holds tinyvae-exercises/, or with --dir FOLDER). The check
puts your function into a small VAE in place of tinyvae's own, compares every gradient of the
model with central finite differences, and explains what fails. Your function runs in a
process of its own, on inputs it must not change, where tinyvae's own version is out of reach.
The derivation is docs/04-gradients.md eq. (8): try it on paper first.
"""

import numpy as np

from tinyvae.layers import sigmoid  # noqa: F401  σ(x) = 1 / (1 + e^(−x)), safe for any x


def bernoulli_nll(logits, x):
    """−log p(x|z) for Bernoulli pixels with logits l, summed over pixels, and its gradient.

        nll = Σ_d [max(l, 0) − x·l + log(1 + e^(−|l|))]     docs/04-gradients.md eq. (7)
        dlogits = d nll / d l                               docs/04-gradients.md eq. (8)

    logits (B, D), x (B, D) in {0, 1} -> nll (B,), dlogits (B, D). The check scores your
    gradient against central differences of the forward pass (the nll line, given).
    """
    nll = np.maximum(logits, 0) - x * logits + np.log1p(np.exp(-np.abs(logits)))  # (B, D)
    dlogits = None  # (B, D): write it
    if dlogits is None:
        raise NotImplementedError("bernoulli_nll's gradient: docs/04-gradients.md eq. (8)")
    return nll.sum(axis=1), dlogits


if __name__ == "__main__":  # `python bernoulli.py`: this file checks itself
    from tinyvae.classroom.exercises import check_file

    check_file(__file__, "bernoulli")
