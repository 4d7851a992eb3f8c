"""Reference solution: gaussian_nll (docs/04-gradients.md eqs. (9), (10))."""
import math


def gaussian_nll(mean, x, std):
    var = float(std) ** 2
    diff = mean - x
    nll = 0.5 * (diff * diff / var + math.log(var) + math.log(2 * math.pi))
    return nll.sum(axis=1), diff / var
