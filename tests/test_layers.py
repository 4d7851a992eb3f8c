"""Every forward/backward pair in tinyvae.layers agrees with central differences.

For a layer y = f(x), we take the scalar L = Σ y ⊙ G for a fixed random G, so that the
upstream gradient dL/dy is exactly G; the backward's answer is then compared with the
numerical gradient of L. Shapes and values are drawn by hypothesis, in float64.
"""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tinyvae import layers
from tinyvae.gradcheck import numerical_gradient, rel_error

THRESHOLD = 1e-7
shapes = st.tuples(st.integers(1, 5), st.integers(1, 6))
seeds = st.integers(0, 2**32 - 1)
scales = st.sampled_from([0.1, 1.0, 3.0])


def away_from_zero(x, margin=1e-3):
    """Push entries out of (−margin, margin): a finite difference across ReLU's kink is
    meaningless."""
    return np.where(np.abs(x) < margin, np.copysign(margin, x) + x, x)


@settings(max_examples=60, deadline=None)
@given(shape=shapes, fan_out=st.integers(1, 6), seed=seeds, scale=scales)
def test_dense_backward_matches_central_differences(shape, fan_out, seed, scale):
    rng = np.random.default_rng(seed)
    B, fan_in = shape
    x = rng.normal(0, scale, (B, fan_in))
    W = rng.normal(0, scale, (fan_in, fan_out))
    b = rng.normal(0, scale, fan_out)
    G = rng.normal(size=(B, fan_out))

    def loss():
        return float(np.sum(layers.dense_forward(x, W, b)[0] * G))

    _, cache = layers.dense_forward(x, W, b)
    dx, dW, db = layers.dense_backward(G, cache)
    assert rel_error(dx, numerical_gradient(loss, x)) < THRESHOLD
    assert rel_error(dW, numerical_gradient(loss, W)) < THRESHOLD
    assert rel_error(db, numerical_gradient(loss, b)) < THRESHOLD


@pytest.mark.parametrize("name", ["relu", "tanh", "sigmoid", "softplus"])
@settings(max_examples=40, deadline=None)
@given(shape=shapes, seed=seeds, scale=scales)
def test_activation_backward_matches_central_differences(name, shape, seed, scale):
    forward = getattr(layers, f"{name}_forward")
    backward = getattr(layers, f"{name}_backward")
    rng = np.random.default_rng(seed)
    x = away_from_zero(rng.normal(0, scale, shape))
    G = rng.normal(size=shape)

    def loss():
        return float(np.sum(forward(x)[0] * G))

    _, cache = forward(x)
    dx = backward(G, cache)
    numerical = numerical_gradient(loss, x)
    # Where tanh or sigmoid saturate (|x| of 8 or more), the derivative is below 1e-6 and the
    # central difference resolves it only to about ε·|G|/h ~ 1e-11 absolute, the outputs being
    # equal but for their last bits: a relative error there measures the finite difference,
    # not the backward. So an absolute error far below any real mistake passes too.
    assert rel_error(dx, numerical) < THRESHOLD or np.max(np.abs(dx - numerical)) < 1e-9


def test_a_saturated_tanh_is_checked_to_what_the_finite_difference_resolves():
    # hypothesis's counterexample (CI, 2026-12-02): one saturated entry, x = −8.056
    x, G = np.array([[-8.05575993]]), np.array([[-0.3777]])
    _, cache = layers.tanh_forward(x)
    dx = layers.tanh_backward(G, cache)
    numerical = numerical_gradient(lambda: float(np.sum(layers.tanh_forward(x)[0] * G)), x)
    assert np.max(np.abs(dx - numerical)) < 1e-9
    exact = G * (1 / np.cosh(x)) ** 2  # sech², in a form with no cancellation
    # the backward itself is accurate there; the difference is not
    assert rel_error(dx, exact) < 1e-8


@pytest.mark.parametrize("name", ["relu", "tanh", "sigmoid", "softplus"])
def test_backward_never_modifies_dout(name):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(4, 5))
    dout = rng.normal(size=(4, 5))
    before = dout.copy()
    _, cache = getattr(layers, f"{name}_forward")(x)
    getattr(layers, f"{name}_backward")(dout, cache)
    np.testing.assert_array_equal(dout, before)


def test_dense_backward_never_modifies_dout():
    rng = np.random.default_rng(1)
    x, W, b = rng.normal(size=(3, 4)), rng.normal(size=(4, 2)), rng.normal(size=2)
    dout = rng.normal(size=(3, 2))
    before = dout.copy()
    layers.dense_backward(dout, layers.dense_forward(x, W, b)[1])
    np.testing.assert_array_equal(dout, before)


def test_sigmoid_and_softplus_are_finite_and_exact_at_extremes():
    x = np.array([-1000.0, -50.0, 0.0, 50.0, 1000.0])
    s = layers.sigmoid(x)
    assert np.all(np.isfinite(s))
    np.testing.assert_allclose(s, [0.0, np.exp(-50.0), 0.5, 1.0, 1.0], rtol=1e-12, atol=0)
    sp = layers.softplus(x)
    np.testing.assert_allclose(sp, [0.0, np.exp(-50.0), np.log(2.0), 50.0, 1000.0], rtol=1e-12,
                               atol=0)


def test_dense_layer_keeps_float32():
    rng = np.random.default_rng(2)
    x = rng.normal(size=(3, 4)).astype(np.float32)
    W = rng.normal(size=(4, 2)).astype(np.float32)
    b = rng.normal(size=2).astype(np.float32)
    out, cache = layers.dense_forward(x, W, b)
    dx, dW, db = layers.dense_backward(np.ones_like(out), cache)
    assert out.dtype == dx.dtype == dW.dtype == db.dtype == np.float32
