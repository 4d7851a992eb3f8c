"""Reference solution: bernoulli_nll (docs/04-gradients.md eqs. (7), (8))."""
import numpy as np

from tinyvae.layers import sigmoid


def bernoulli_nll(logits, x):
    nll = np.maximum(logits, 0) - x * logits + np.log1p(np.exp(-np.abs(logits)))
    return nll.sum(axis=1), sigmoid(logits) - x
