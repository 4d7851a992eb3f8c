"""A typical wrong normalized_weights: divided by the weights' mean, as in L_K, not their sum."""
import numpy as np


def normalized_weights(log_w, axis=0):
    shifted = np.exp(log_w - np.max(log_w, axis=axis, keepdims=True))
    return shifted / np.mean(shifted, axis=axis, keepdims=True)
