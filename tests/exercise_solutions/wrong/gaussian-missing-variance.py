"""A typical wrong gaussian_nll: dmean without the 1/σ² (invisible at σ = 1)."""
import math


def gaussian_nll(mean, x, std):
    var = float(std) ** 2
    diff = mean - x
    nll = 0.5 * (diff * diff / var + math.log(var) + math.log(2 * math.pi))
    return nll.sum(axis=1), diff
