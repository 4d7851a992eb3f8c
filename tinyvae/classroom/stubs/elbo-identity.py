"""Exercise elbo-identity: log p(x) = KL + ELBO on the exact linear-Gaussian model.

Fill in the function(s) below, then check them with either of

    python elbo-identity.py
    python -m tinyvae exercise check elbo-identity

(the second from the folder that holds tinyvae-exercises/, or with --dir FOLDER). The check
compares what your function computes with numbers found another way (quadrature, sampling, a
finite difference): docs/02-variational-inference.md eq. (5).
"""


def elbo(mu_q, var_q, w, b, sigma, x):
    """The ELBO E_q[log p(x|z)] + E_q[log p(z)] − E_q[log q(z)] of q = N(μ_q, var_q).

    In closed form. The model has one latent number: z ~ N(0, 1) and x | z ~ N(w z + b, σ² I_D),
    with w, b, x of shape (D,) and sigma > 0 a float. Use E_q[z] = μ_q and
    E_q[z²] = var_q + μ_q². The check verifies log p(x) = KL(q ‖ p(z|x)) + ELBO for several q,
    with log p(x) and the KL found by quadrature: docs/02-variational-inference.md eq. (5).
    Return a float.
    """
    raise NotImplementedError("elbo: docs/02-variational-inference.md eq. (5)")


if __name__ == "__main__":  # `python elbo-identity.py`: this file checks itself
    from tinyvae.classroom.exercises import check_file

    check_file(__file__, "elbo-identity")
