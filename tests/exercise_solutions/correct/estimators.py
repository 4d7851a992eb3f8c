"""Reference solution: the score-function and reparameterization gradient estimators."""


def score_function_grad(f, mu, sigma, n, rng):
    z = mu + sigma * rng.standard_normal(n)
    return f(z) * (z - mu) / sigma**2


def reparam_grad(df, mu, sigma, n, rng):
    return df(mu + sigma * rng.standard_normal(n))
