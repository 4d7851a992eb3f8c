"""A typical wrong normalized_weights: normalized along axis 0 whatever axis it is given."""
import numpy as np


def normalized_weights(log_w, axis=0):
    shifted = np.exp(log_w - np.max(log_w, axis=0, keepdims=True))
    return shifted / np.sum(shifted, axis=0, keepdims=True)
