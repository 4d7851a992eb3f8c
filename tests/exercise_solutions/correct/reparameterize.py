"""Reference solution: reparameterize_backward (docs/04-gradients.md eq. (15))."""


def reparameterize_backward(dz, cache):
    std, eps = cache
    return dz.copy(), dz * 0.5 * std * eps
