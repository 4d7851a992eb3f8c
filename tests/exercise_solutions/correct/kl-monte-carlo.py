"""Reference solution: a Monte-Carlo estimate of KL(q ‖ N(0, I))."""
import math

import numpy as np


def kl_monte_carlo(mu, log_var, n, rng):
    std = np.exp(0.5 * log_var)
    eps = rng.standard_normal((n, len(mu)))
    z = mu + std * eps
    log_q = -0.5 * np.sum(eps**2 + log_var + math.log(2 * math.pi), axis=1)
    log_p = -0.5 * np.sum(z**2 + math.log(2 * math.pi), axis=1)
    terms = log_q - log_p
    return float(terms.mean()), float(terms.std(ddof=1) / math.sqrt(n))
