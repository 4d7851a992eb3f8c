"""Exercise discrete-kl: the lecture's discrete KL, in nats and in bits.

Fill in the function(s) below, then check them with either of

    python discrete-kl.py
    python -m tinyvae exercise check discrete-kl

(the second from the folder that holds tinyvae-exercises/, or with --dir FOLDER). The check
compares what your function computes with numbers found another way (quadrature, sampling, a
finite difference): docs/03-kl-worked-example.md eqs. (1), (2).
"""

import math

import numpy as np


def kl_divergence(p, q, base=math.e):
    """KL(P ‖ Q) = Σ_x P(x) log(P(x)/Q(x)) for two discrete distributions, in the given base.

    docs/03-kl-worked-example.md eq. (1) and (2): base e gives nats, base 2 bits. p, q:
    sequences of probabilities of one length. Conventions: an outcome with P(x) = 0
    contributes 0, and the result is +inf (math.inf) where Q(x) = 0 < P(x). Return a float.
    """
    p, q = np.asarray(p, dtype=float), np.asarray(q, dtype=float)
    raise NotImplementedError("kl_divergence: docs/03-kl-worked-example.md eq. (1)")


if __name__ == "__main__":  # `python discrete-kl.py`: this file checks itself
    from tinyvae.classroom.exercises import check_file

    check_file(__file__, "discrete-kl")
