'''The student's side of the exercises beyond backprop: the files `exercise start NAME` writes.

Each stub: the signature, a docstring with the shapes and where the lecture derives it (never
the answer), and a body that raises NotImplementedError. numeric.py and probability.py check them.
'''

from __future__ import annotations

HEADER = '''"""Exercise {name}: {title}.

Fill in the function(s) below, then run, from the folder that holds tinyvae-exercises/:

    python -m tinyvae exercise check {name}

The check compares what your function computes with numbers found another way (quadrature,
sampling, a finite difference): {equation}.
"""

import math

import numpy as np
'''

STUBS = {
    "discrete-kl": '''

def kl_divergence(p, q, base=math.e):
    """KL(P ‖ Q) = Σ_x P(x) log(P(x)/Q(x)) for two discrete distributions, in the given base.

    docs/03-kl-worked-example.md eq. (1) and (2): base e gives nats, base 2 bits. p, q: sequences
    of probabilities of one length. Conventions: an outcome with P(x) = 0 contributes 0, and
    the result is +inf (math.inf) where Q(x) = 0 < P(x). Return a float.
    """
    p = np.asarray(p, dtype=float)
    q = np.asarray(q, dtype=float)
    raise NotImplementedError("kl_divergence: docs/03-kl-worked-example.md eq. (1)")
''',
    "gaussian-kl": '''

def kl_normal(mu_q, var_q, mu_p, var_p):
    """KL(N(μ_q, σ_q²) ‖ N(μ_p, σ_p²)) between two 1-D Gaussians, in nats (a float).

    Derive it from the definition E_q[log q(z) − log p(z)] using E_q[z] = μ_q and
    E_q[(z − μ_q)²] = σ_q²; docs/02-variational-inference.md eq. (10) is its special case
    μ_p = 0, σ_p = 1. var_q, var_p > 0 are variances, not standard deviations.
    """
    raise NotImplementedError("kl_normal: docs/02-variational-inference.md eq. (10), generalised")
''',
    "kl-monte-carlo": '''

def kl_monte_carlo(mu, log_var, n, rng):
    """A Monte-Carlo estimate of KL(N(μ, diag σ²) ‖ N(0, I)) and its standard error.

    Draw n samples z ~ q = N(μ, diag σ²) with rng (a numpy Generator), average
    log q(z) − log p(z), and return (estimate, standard error of that average) as floats.
    mu, log_var (Z,). The check compares the estimate with the closed form,
    docs/02-variational-inference.md eq. (10), within 4 standard errors.
    """
    raise NotImplementedError("kl_monte_carlo: KL = E_q[log q(z) − log p(z)]")
''',
    "elbo-identity": '''

def elbo(mu_q, var_q, w, b, sigma, x):
    """The ELBO E_q[log p(x|z)] + E_q[log p(z)] − E_q[log q(z)] of q = N(μ_q, var_q), in closed form.

    The model has one latent number: z ~ N(0, 1) and x | z ~ N(w z + b, σ² I_D), with
    w, b, x of shape (D,) and sigma > 0 a float. Use E_q[z] = μ_q and E_q[z²] = var_q + μ_q².
    The check verifies log p(x) = KL(q ‖ p(z|x)) + ELBO for several q, with log p(x) and the KL
    found by quadrature: docs/02-variational-inference.md eq. (5). Return a float.
    """
    raise NotImplementedError("elbo: docs/02-variational-inference.md eq. (5)")
''',
    "estimators": '''

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
''',
}
