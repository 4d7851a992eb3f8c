"""Reference solution: relu_backward (docs/04-gradients.md eq. (3))."""


def relu_backward(dout, cache):
    return dout * (cache > 0)
