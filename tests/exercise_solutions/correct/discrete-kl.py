"""Reference solution: the discrete KL (docs/03-kl-worked-example.md eqs. (1), (2))."""
import math

import numpy as np


def kl_divergence(p, q, base=math.e):
    p, q = np.asarray(p, dtype=float), np.asarray(q, dtype=float)
    support = p > 0
    if np.any(q[support] == 0):
        return math.inf
    return float(np.sum(p[support] * np.log(p[support] / q[support])) / math.log(base))
