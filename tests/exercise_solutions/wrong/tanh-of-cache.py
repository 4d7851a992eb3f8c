"""A typical wrong tanh_backward: tanh applied again to its cache, which already holds tanh(x)."""
import numpy as np


def tanh_backward(dout, cache):
    return dout * (1 - np.tanh(cache) ** 2)
