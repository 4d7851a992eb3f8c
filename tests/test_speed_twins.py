"""Each function of the speed wing that rearranges the core's mathematics is tied to its twin.

speed/losses.py mirrors losses.py and speed/mlp.py mirrors vae.mlp_forward/mlp_backward, by
name; here each pair computes the same numbers on the same inputs (in float64, to rounding).
"""

import numpy as np
import pytest

from tinyvae import losses, vae
from tinyvae.config import VAEConfig, init_params
from tinyvae.speed import layout
from tinyvae.speed import losses as fast
from tinyvae.speed.mlp import IN_PLACE, mlp_backward, mlp_forward

RTOL = 1e-12


def buffers(likelihood, rows=6, D=10):
    config = VAEConfig(input_dim=D, hidden_dims=(4,), latent_dim=3, likelihood=likelihood)
    n_out = 2 * D if config.learned_variance else D
    return layout.Buffers(config, rows, np.float64, n_out)


@pytest.fixture
def data():
    rng = np.random.default_rng(0)
    return (rng.normal(scale=3.0, size=(6, 10)), (rng.random((6, 10)) < 0.5).astype(float),
            rng.normal(size=(6, 10)))


@pytest.mark.parametrize("per_row", [False, True])
def test_bernoulli_nll_and_its_twin(data, per_row):
    logits, x, _ = data
    a = buffers("bernoulli")
    nll, dlogits = losses.bernoulli_nll(logits, x)
    got = fast.bernoulli_nll(logits, x, a, per_row)
    np.testing.assert_allclose(got, nll if per_row else nll.sum(), rtol=RTOL)
    np.testing.assert_allclose(a.d_out, dlogits, rtol=RTOL, atol=1e-15)


@pytest.mark.parametrize("per_row", [False, True])
def test_gaussian_nll_and_its_twin(data, per_row):
    mean, _, x = data
    a = buffers("gaussian")
    nll, dmean = losses.gaussian_nll(mean, x, 0.3)
    got = fast.gaussian_nll(mean, x, a, 0.3, per_row)
    np.testing.assert_allclose(got, nll if per_row else nll.sum(), rtol=RTOL)
    np.testing.assert_allclose(a.d_out, dmean, rtol=RTOL)


@pytest.mark.parametrize("per_row", [False, True])
def test_gaussian_nll_learned_and_its_twin(data, per_row):
    mean, _, x = data
    log_var = np.random.default_rng(1).normal(size=mean.shape)
    a = buffers("gaussian-learned-variance")
    nll, dmean, dlog_var = losses.gaussian_nll_learned(mean, log_var, x)
    got = fast.gaussian_nll_learned(np.hstack([mean, log_var]), x, a, per_row)
    np.testing.assert_allclose(got, nll if per_row else nll.sum(), rtol=RTOL)
    np.testing.assert_allclose(a.d_out[:, :10], dmean, rtol=RTOL)
    np.testing.assert_allclose(a.d_out[:, 10:], dlog_var, rtol=RTOL)


def test_kl_standard_normal_and_its_twin():
    rng = np.random.default_rng(2)
    mu, log_var = rng.normal(size=(6, 3)), rng.normal(size=(6, 3))
    a = buffers("bernoulli")
    kl, _, dlog_var = losses.kl_standard_normal(mu, log_var)
    assert fast.kl_standard_normal(mu, log_var, a) == pytest.approx(kl.sum(), rel=RTOL)
    np.testing.assert_allclose(0.5 * a.var_m1, dlog_var, rtol=RTOL)  # the gradient's σ² − 1, kept


@pytest.mark.parametrize("activation", sorted(IN_PLACE))
def test_mlp_forward_and_backward_and_their_twins(activation):
    config = VAEConfig(input_dim=7, hidden_dims=(6, 5), latent_dim=3, activation=activation)
    rng = np.random.default_rng(3)
    params = init_params(config, rng)
    x = rng.normal(size=(4, 7))
    h, caches = vae.mlp_forward(params, x, "encoder", config)
    dh = rng.normal(size=h.shape)
    grads = {}
    dx = vae.mlp_backward(dh, caches, "encoder", config, grads)

    outs = [np.empty((4, n)) for n in config.hidden_dims]
    scratch = [np.empty((4, n)) for n in config.hidden_dims]
    h_fast = mlp_forward(params, "encoder", x, outs, IN_PLACE[activation], scratch)
    np.testing.assert_allclose(h_fast, h, rtol=RTOL)
    dhs = [np.empty((4, n)) for n in config.hidden_dims]
    dhs[-1][...] = dh
    dW = {key: np.empty_like(value) for key, value in params.items()}
    dx_fast = np.empty_like(x)
    mlp_backward(params, dW, "encoder", [x, *outs[:-1]], outs, dhs, scratch, IN_PLACE[activation],
                 dx_fast)
    np.testing.assert_allclose(dx_fast, dx, rtol=1e-10, atol=1e-14)
    for key, value in grads.items():
        np.testing.assert_allclose(dW[key], value, rtol=1e-10, atol=1e-14, err_msg=key)
