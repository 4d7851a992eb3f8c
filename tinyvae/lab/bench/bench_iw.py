"""What bounds L_k: the decoder's products, and the passes over every sample's numbers.

L_k (speed/iw.py) runs the decoder for each of the n·k samples, so its cost is the
decoder's matrix products (iw_decoder_flops, at best their FLOPs at the BLAS's peak) plus
the passes NumPy makes over each sample's numbers: the activation of every hidden unit and,
for the Bernoulli likelihood, softplus of every one of the D logits, which speed/iw.py
computes as exp, + 1, log (elementwise_floor times them at NumPy's speed on this machine).
tinyvae/commands/bench.py prints both beside the measured time of L_k.

Shapes: D data, H hidden; n images, k samples per image.
"""

from __future__ import annotations

import math
import time

import numpy as np

from ...config import VAEConfig, param_shapes
from ...speed.mlp import IN_PLACE


def iw_decoder_flops(config: VAEConfig, n_images: int, k: int) -> float:
    """FLOPs of the decoder's matrix multiplies in L_k: every layer for each of the n·k samples.

    These are the bulk of L_k's cost: the encoder runs once per image, not per sample.
    Every decoder weight matrix counts (a learned variance's second head too); for the
    Bernoulli likelihood, speed/iw.py's output product has one more row (the bias), its row
    sums are a product with ones, and its x·l shortcut is one dot product per sample.
    """
    shapes = param_shapes(config)
    per_sample = sum(2 * math.prod(shape) for key, shape in shapes.items()
                     if key.startswith("decoder.W"))
    if config.likelihood == "bernoulli":
        H, D = shapes["decoder.W_out"]
        per_sample += 2 * D + 2 * D + 2 * H  # the bias row, the sum over pixels, x·l
    return float(per_sample) * n_images * k


def seconds_per_element(operations, dtype, n: int = 2**20, repeats: int = 5) -> float:
    """The best time per element of `operations(a)` (in place on one (n,) array of moderate
    values)."""
    a = np.random.default_rng(0).uniform(-3, 3, n).astype(dtype)
    best = math.inf
    for _ in range(repeats):
        b = a.copy()
        start = time.perf_counter()
        operations(b)
        best = min(best, time.perf_counter() - start)
    return best / n


def _softplus(a):
    np.exp(a, out=a)
    a += 1
    np.log(a, out=a)


def elementwise_floor(config: VAEConfig, n_images: int, k: int, dtype) -> dict[str, float]:
    """Seconds of L_k's elementwise passes at NumPy's measured speed: {"softplus", "activation"}.

    "softplus": exp, + 1 and log over the D logits of every sample (Bernoulli only, else 0);
    "activation": the decoder's activation over its hidden units of every sample.
    """
    samples = n_images * k
    hidden = sum(config.hidden_dims)
    act = IN_PLACE[config.activation].forward  # what speed/iw.py runs, in place
    seconds = {"softplus": 0.0, "activation": 0.0}
    if config.likelihood == "bernoulli":
        seconds["softplus"] = samples * config.input_dim * seconds_per_element(_softplus, dtype)
    if hidden:
        per_element = seconds_per_element(lambda a: act(a, None), dtype)
        seconds["activation"] = samples * hidden * per_element
    return seconds
