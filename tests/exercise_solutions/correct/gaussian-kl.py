"""Reference solution: the KL between two 1-D Gaussians."""
import math


def kl_normal(mu_q, var_q, mu_p, var_p):
    return 0.5 * (math.log(var_p / var_q) + (var_q + (mu_q - mu_p) ** 2) / var_p - 1)
