"""A typical wrong kl_normal: the variances used as if they were standard deviations."""
import math


def kl_normal(mu_q, var_q, mu_p, var_p):
    return 0.5 * (math.log(var_p**2 / var_q**2) + (var_q**2 + (mu_q - mu_p) ** 2) / var_p**2 - 1)
