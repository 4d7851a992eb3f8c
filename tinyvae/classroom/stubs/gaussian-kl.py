"""Exercise gaussian-kl: the KL between two 1-D Gaussians.

Fill in the function(s) below, then check them with either of

    python gaussian-kl.py
    python -m tinyvae exercise check gaussian-kl

(the second from the folder that holds tinyvae-exercises/, or with --dir FOLDER). The check
compares what your function computes with numbers found another way (quadrature, sampling, a
finite difference): docs/02-variational-inference.md eq. (10), generalised.
"""


def kl_normal(mu_q, var_q, mu_p, var_p):
    """KL(N(μ_q, σ_q²) ‖ N(μ_p, σ_p²)) between two 1-D Gaussians, in nats (a float).

    Derive it from the definition E_q[log q(z) − log p(z)] using E_q[z] = μ_q and
    E_q[(z − μ_q)²] = σ_q²; docs/02-variational-inference.md eq. (10) is its special case
    μ_p = 0, σ_p = 1. var_q, var_p > 0 are variances, not standard deviations.
    """
    raise NotImplementedError("kl_normal: docs/02-variational-inference.md eq. (10), generalised")


if __name__ == "__main__":  # `python gaussian-kl.py`: this file checks itself
    from tinyvae.classroom.exercises import check_file

    check_file(__file__, "gaussian-kl")
