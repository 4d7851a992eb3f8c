"""A typical wrong relu_backward: the sign flipped (the bug of `gradcheck --break relu`)."""


def relu_backward(dout, cache):
    return -dout * (cache > 0)
