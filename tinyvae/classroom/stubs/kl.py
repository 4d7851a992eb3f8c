"""Exercise kl: the KL's gradients.

Write the body of kl_standard_normal() below, then check it with either of

    python kl.py
    python -m tinyvae exercise check kl

(the second from the folder that holds tinyvae-exercises/, or with --dir FOLDER). The check
puts your function into a small VAE in place of tinyvae's own, compares every gradient of the
model with central finite differences, and explains what fails. Your function runs in a
process of its own, on inputs it must not change, where tinyvae's own version is out of reach.
The derivation is docs/04-gradients.md eq. (13): try it on paper first.
"""

import numpy as np


def kl_standard_normal(mu, log_var):
    """KL(N(μ, diag σ²) ‖ N(0, I)) per example, summed over latent dimensions, and its gradients.

        kl = ½ Σ_j (μ_j² + σ_j² − 1 − log σ_j²)   docs/02-variational-inference.md eq. (10)
        dmu = d kl / d μ,  dlog_var = d kl / d log σ²      docs/04-gradients.md eq. (13)

    mu (B, Z), log_var (B, Z) -> kl (B,), dmu (B, Z), dlog_var (B, Z). Return new arrays,
    never mu or log_var themselves (nor views of them): an output must not share memory
    with an input.
    """
    kl = 0.5 * np.sum(mu * mu + np.exp(log_var) - 1 - log_var, axis=1)  # (B,)
    dmu, dlog_var = None, None  # (B, Z) each: write them
    if dmu is None or dlog_var is None:
        raise NotImplementedError("kl_standard_normal's gradients: docs/04-gradients.md eq. (13)")
    return kl, dmu, dlog_var


if __name__ == "__main__":  # `python kl.py`: this file checks itself
    from tinyvae.classroom.exercises import check_file

    check_file(__file__, "kl")
