"""Reference solution: tanh_backward (docs/04-gradients.md eq. (4))."""


def tanh_backward(dout, cache):
    return dout * (1 - cache**2)
