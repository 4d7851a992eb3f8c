"""What training with k samples per image buys, measured: docs/04-gradients.md section 8.

examples/k_samples.py trains Table 1's model with the ELBO and with L_k at several k and
measures the active units and the gap L_k' − ELBO; its --snr part measures the signal-to-noise
ratio of the gradient estimates of L_k. The tests here re-run a reduced version of each
computation on a small model, in seconds, and hold the text of section 8 to the committed
docs/results/k_samples.json (Monte-Carlo numbers to their standard errors). The bench's --k
(what an epoch at k = 5 costs against k = 1) is tested in tests/test_bench.py.
"""

from __future__ import annotations

import numpy as np

from tinyvae import optim, vae
from tinyvae.config import VAEConfig, init_params
from tinyvae.speed.step import FastStep


def rel_error(a, b) -> float:
    """max |a − b| / max(|a| + |b|), both maxima over the array (as tinyvae/gradcheck.py)."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return float(np.max(np.abs(a - b)) / max(1e-8, np.max(np.abs(a) + np.abs(b))))


# ---- the fast step at large k: tiny weights, no subnormal numbers ----

def test_the_fast_iwae_step_drops_negligible_weights_and_stays_out_of_subnormals():
    # A wide q(z|x) (σ = e) sends samples far into its tails: an image's log-weights spread
    # over 50-100 nats, and a third of its normalized weights fall below float32's eps². The
    # fast step counts those as zero, which leaves its gradient the core's to float32
    # precision, and no gradient of the decoder's output is a subnormal number (multiplying
    # one costs ~100 times a normal multiply).
    config = VAEConfig(input_dim=784, hidden_dims=(40,), latent_dim=10, activation="tanh",
                       k=20, objective="iwae")
    rng = np.random.default_rng(0)
    params = init_params(config, rng, np.float32)
    params["encoder.b_logvar"][:] = 2.0
    x = (rng.random((6, 784)) < 0.3).astype(np.float32)
    eps = rng.standard_normal((6, 20, 10)).astype(np.float32)
    _, grads, _ = vae.loss_and_grads(params, x, eps, config)
    fast = FastStep(config, params, optim.SGD(lr=0.1), max_batch=6, threads=1)
    fast.step(x, eps)
    for key in grads:
        assert rel_error(fast.grads[key], grads[key]) < 1e-5, key
    d_out = fast._cut[6].d_out
    assert np.all((d_out == 0) | (np.abs(d_out) >= np.finfo(np.float32).tiny))
    assert np.any(d_out == 0)  # weights were dropped: the case is the one meant
