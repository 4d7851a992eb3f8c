"""A typical wrong dense_backward: dx without W's transpose (docs/05-classroom.md exercise 5)."""


def dense_backward(dout, cache):
    x, W = cache
    dx = dout @ W  # should be dout @ W.T
    return dx, x.T @ dout, dout.sum(axis=0)
