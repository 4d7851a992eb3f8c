"""A typical wrong normalized_weights: the weights w (shifted stably), not divided by their sum."""
import numpy as np


def normalized_weights(log_w, axis=0):
    return np.exp(log_w - np.max(log_w, axis=axis, keepdims=True))
