"""Reference solution: adam_update (Kingma & Ba 2015, Algorithm 1)."""
import numpy as np


def adam_update(theta, g, state, t, lr, beta1, beta2, eps):
    m, v = state["m"], state["v"]
    m *= beta1
    m += (1 - beta1) * g
    v *= beta2
    v += (1 - beta2) * g * g
    m_hat = m / (1 - beta1**t)
    v_hat = v / (1 - beta2**t)
    theta -= lr * m_hat / (np.sqrt(v_hat) + eps)
