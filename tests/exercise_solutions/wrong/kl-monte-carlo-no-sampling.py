"""A wrong kl_monte_carlo: the closed form returned with a standard error of 0 (no sampling at
all)."""
import numpy as np


def kl_monte_carlo(mu, log_var, n, rng):
    return float(0.5 * np.sum(mu**2 + np.exp(log_var) - 1 - log_var)), 0.0
