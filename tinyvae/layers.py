"""Dense layers and activations as forward/backward pairs.

Every layer is two pure functions side by side:

    out, cache = <layer>_forward(inputs)     # remember what the backward needs
    dx = <layer>_backward(dout, cache)       # dL/d(input) from dL/d(output)

`dout` is the gradient of the loss with respect to the layer's output; a backward
never modifies it in place, because the caller may still need it (the VAE's
latent gradient feeds two paths). The derivations are in docs/04-gradients.md.

The reparameterization, z = μ + σ ⊙ ε, is a layer too (the lecture's key idea gets a pair
of its own at the end of this file): it is what lets the gradient flow from the decoder back
into the encoder through a random sample.

Shapes: B batch, I fan-in, O fan-out, Z latent.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import numpy as np


def sigmoid(x: np.ndarray) -> np.ndarray:
    """σ(x) = 1 / (1 + e^(-x)), without overflow for any x.

    exp is only ever taken of -|x| <= 0, so it lies in (0, 1] and cannot overflow.
    """
    e = np.exp(-np.abs(x))
    return np.where(x >= 0, 1.0 / (1.0 + e), e / (1.0 + e))


def softplus(x: np.ndarray) -> np.ndarray:
    """softplus(x) = log(1 + e^x) = max(x, 0) + log1p(e^(-|x|)), finite for any x."""
    return np.maximum(x, 0) + np.log1p(np.exp(-np.abs(x)))


def dense_forward(x: np.ndarray, W: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, tuple]:
    """out = x · W + b, docs/04-gradients.md eq. (1).

    x (B, I), W (I, O), b (O,) -> out (B, O).
    """
    out = x @ W + b  # (B, O)
    cache = (x, W)
    return out, cache


def dense_backward(dout: np.ndarray, cache: tuple) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """dx = dout · Wᵀ, dW = xᵀ · dout, db = Σ_batch dout, docs/04-gradients.md eq. (2).

    dout (B, O) -> dx (B, I), dW (I, O), db (O,).
    """
    x, W = cache
    dx = dout @ W.T  # (B, I)
    dW = x.T @ dout  # (I, O): each example adds its outer product x_iᵀ dout_i
    db = dout.sum(axis=0)  # (O,): the bias is added to every row
    return dx, dW, db


def relu_forward(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """out = max(x, 0), docs/04-gradients.md eq. (3)."""
    out = np.maximum(x, 0)
    cache = x
    return out, cache


def relu_backward(dout: np.ndarray, cache: np.ndarray) -> np.ndarray:
    """dx = dout ⊙ 1[x > 0], docs/04-gradients.md eq. (3).

    At x = 0 exactly the derivative does not exist; we take 0 (the subgradient
    most libraries use). A finite-difference check that straddles 0 disagrees
    with either choice, which is why `python -m tinyvae gradcheck` says how close its
    random model comes to the kink, and warns when a step of size h could reach it.
    """
    x = cache
    dx = dout * (x > 0)
    return dx


def tanh_forward(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """out = tanh(x), docs/04-gradients.md eq. (4)."""
    out = np.tanh(x)
    cache = out  # the derivative is written in terms of the output
    return out, cache


def tanh_backward(dout: np.ndarray, cache: np.ndarray) -> np.ndarray:
    """dx = dout ⊙ (1 − tanh²(x)), docs/04-gradients.md eq. (4)."""
    out = cache
    dx = dout * (1 - out * out)
    return dx


def sigmoid_forward(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """out = σ(x), docs/04-gradients.md eq. (5)."""
    out = sigmoid(x)
    cache = out
    return out, cache


def sigmoid_backward(dout: np.ndarray, cache: np.ndarray) -> np.ndarray:
    """dx = dout ⊙ σ(x)(1 − σ(x)), docs/04-gradients.md eq. (5)."""
    out = cache
    dx = dout * out * (1 - out)
    return dx


def softplus_forward(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """out = log(1 + e^x), docs/04-gradients.md eq. (6)."""
    out = softplus(x)
    cache = x
    return out, cache


def softplus_backward(dout: np.ndarray, cache: np.ndarray) -> np.ndarray:
    """dx = dout ⊙ σ(x): the derivative of softplus is the sigmoid, docs/04-gradients.md eq. (6)."""
    x = cache
    dx = dout * sigmoid(x)
    return dx


def reparameterize_forward(mu: np.ndarray, log_var: np.ndarray,
                           eps: np.ndarray) -> tuple[np.ndarray, tuple]:
    """z = μ + σ ⊙ ε with σ = exp(½ log σ²), docs/04-gradients.md eq. (14).

    A draw from q(z|x) = N(μ, diag σ²) written as a deterministic function of (μ, log σ²)
    and noise ε ~ N(0, I) that comes from outside: the randomness no longer sits between
    the loss and the encoder, so the gradient can pass through. mu, log_var, eps (B, Z) -> z (B, Z);
    with K samples per image, mu and log_var (B, 1, Z) broadcast against eps (B, K, Z).
    """
    std = np.exp(0.5 * log_var)  # (B, Z): σ; the encoder outputs log σ², any real number
    z = mu + std * eps  # (B, Z)
    cache = (std, eps)
    return z, cache


def reparameterize_backward(dz: np.ndarray, cache: tuple) -> tuple[np.ndarray, np.ndarray]:
    """dμ = dz,  d log σ² = dz ⊙ ½ σ ⊙ ε, docs/04-gradients.md eq. (15).

    ∂z/∂μ = 1, and ∂z/∂log σ² = ½ exp(½ log σ²) ε = ½ σ ε. ε itself gets no gradient: it is
    data, not a parameter. dz (B, Z) -> dmu (B, Z), dlog_var (B, Z); for K samples per image,
    (B, K, Z) each, which the caller sums over the K samples that μ and log σ² fed.
    """
    std, eps = cache
    # A fresh array, never an alias of dz, so it can be changed without touching dz.
    dmu = dz.copy()  # (B, Z)
    dlog_var = dz * 0.5 * std * eps  # (B, Z)
    return dmu, dlog_var


class Activation(NamedTuple):
    """An activation's forward/backward pair, as the registry holds it."""

    forward: Callable
    backward: Callable


# The activations by name: the model looks its config's name up here once per pass, and the
# command lines offer these names (VAEConfig refuses any other).
ACTIVATIONS: dict[str, Activation] = {
    "relu": Activation(relu_forward, relu_backward),
    "tanh": Activation(tanh_forward, tanh_backward),
}
