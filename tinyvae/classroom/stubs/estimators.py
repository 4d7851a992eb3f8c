"""Exercise estimators: score-function against reparameterization gradients: their variances.

Fill in the function(s) below, then check them with either of

    python estimators.py
    python -m tinyvae exercise check estimators

(the second from the folder that holds tinyvae-exercises/, or with --dir FOLDER). The check
compares what your function computes with numbers found another way (quadrature, sampling, a
finite difference): docs/04-gradients.md eq. (14).
"""


def score_function_grad(f, mu, sigma, n, rng):
    """n single-sample estimates of d/dμ E_{z ~ N(μ, σ²)}[f(z)] by the score function (REINFORCE).

    Each is f(z) · d/dμ log N(z; μ, σ²) for one z drawn with rng. f takes and returns arrays.
    Return an array of shape (n,). The check prints the variance of one estimate.
    """
    raise NotImplementedError("score_function_grad: ∇_μ E[f] = E[f(z) ∇_μ log q(z)]")


def reparam_grad(df, mu, sigma, n, rng):
    """n single-sample estimates of the same gradient by the reparameterization z = μ + σ ε.

    df is f's derivative f'. Each estimate is d/dμ f(μ + σ ε) for one ε ~ N(0, 1) drawn with
    rng (docs/04-gradients.md eq. (14)). Return an array of shape (n,).
    """
    raise NotImplementedError("reparam_grad: docs/04-gradients.md eq. (14)")


if __name__ == "__main__":  # `python estimators.py`: this file checks itself
    from tinyvae.classroom.exercises import check_file

    check_file(__file__, "estimators")
