"""Exercise kl-monte-carlo: a Monte-Carlo check of the closed-form KL.

Fill in the function(s) below, then check them with either of

    python kl-monte-carlo.py
    python -m tinyvae exercise check kl-monte-carlo

(the second from the folder that holds tinyvae-exercises/, or with --dir FOLDER). The check
compares what your function computes with numbers found another way (quadrature, sampling, a
finite difference): docs/02-variational-inference.md eq. (10).
"""


def kl_monte_carlo(mu, log_var, n, rng):
    """A Monte-Carlo estimate of KL(N(μ, diag σ²) ‖ N(0, I)) and its standard error.

    Draw n samples z ~ q = N(μ, diag σ²) with rng (a numpy Generator), average
    log q(z) − log p(z), and return (estimate, standard error of that average) as floats.
    mu, log_var (Z,). The check compares the estimate with the closed form,
    docs/02-variational-inference.md eq. (10), within 4 standard errors.
    """
    raise NotImplementedError("kl_monte_carlo: KL = E_q[log q(z) − log p(z)]")


if __name__ == "__main__":  # `python kl-monte-carlo.py`: this file checks itself
    from tinyvae.classroom.exercises import check_file

    check_file(__file__, "kl-monte-carlo")
