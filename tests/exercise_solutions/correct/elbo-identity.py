"""Reference solution: the ELBO of the linear-Gaussian model with one latent number."""
import math


def elbo(mu_q, var_q, w, b, sigma, x):
    D = len(x)
    resid = x - w * mu_q - b
    expected_log_lik = (-0.5 * D * math.log(2 * math.pi * sigma**2)
                        - (resid @ resid + var_q * (w @ w)) / (2 * sigma**2))
    expected_log_prior = -0.5 * (math.log(2 * math.pi) + var_q + mu_q**2)
    entropy = 0.5 * math.log(2 * math.pi * math.e * var_q)
    return float(expected_log_lik + expected_log_prior + entropy)
