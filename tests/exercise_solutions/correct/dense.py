"""Reference solution: dense_backward (docs/04-gradients.md eq. (2))."""


def dense_backward(dout, cache):
    x, W = cache
    return dout @ W.T, x.T @ dout, dout.sum(axis=0)
