"""Reference solution: normalized_weights (docs/04-gradients.md eq. (19))."""
import numpy as np


def normalized_weights(log_w, axis=0):
    shifted = np.exp(log_w - np.max(log_w, axis=axis, keepdims=True))  # the largest is e^0 = 1
    return shifted / np.sum(shifted, axis=axis, keepdims=True)
