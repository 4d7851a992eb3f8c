"""Reference solution: softplus_backward (docs/04-gradients.md eq. (6))."""
from tinyvae.layers import sigmoid


def softplus_backward(dout, cache):
    return dout * sigmoid(cache)
