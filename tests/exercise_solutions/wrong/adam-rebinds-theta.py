"""A typical wrong adam_update: `theta = theta - ...` makes a new array; the model's parameter never
moves."""
import numpy as np


def adam_update(theta, g, state, t, lr, beta1, beta2, eps):
    m, v = state["m"], state["v"]
    m *= beta1
    m += (1 - beta1) * g
    v *= beta2
    v += (1 - beta2) * g * g
    theta = theta - lr * (m / (1 - beta1**t)) / (np.sqrt(v / (1 - beta2**t)) + eps)
