"""A typical wrong score_function_grad: the score (z − μ)/σ² without its 1/σ² (biased by a
factor σ²)."""


def score_function_grad(f, mu, sigma, n, rng):
    z = mu + sigma * rng.standard_normal(n)
    return f(z) * (z - mu)


def reparam_grad(df, mu, sigma, n, rng):
    return df(mu + sigma * rng.standard_normal(n))
