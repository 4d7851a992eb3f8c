"""A typical wrong adam_update: the bias correction left out (the first steps are far too small or
large)."""
import numpy as np


def adam_update(theta, g, state, t, lr, beta1, beta2, eps):
    m, v = state["m"], state["v"]
    m *= beta1
    m += (1 - beta1) * g
    v *= beta2
    v += (1 - beta2) * g * g
    theta -= lr * m / (np.sqrt(v) + eps)
