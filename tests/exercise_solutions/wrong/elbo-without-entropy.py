"""A typical wrong elbo: the entropy of q forgotten (E_q[log p(x, z)] alone)."""
import math


def elbo(mu_q, var_q, w, b, sigma, x):
    D = len(x)
    resid = x - w * mu_q - b
    expected_log_lik = (-0.5 * D * math.log(2 * math.pi * sigma**2)
                        - (resid @ resid + var_q * (w @ w)) / (2 * sigma**2))
    expected_log_prior = -0.5 * (math.log(2 * math.pi) + var_q + mu_q**2)
    return float(expected_log_lik + expected_log_prior)
