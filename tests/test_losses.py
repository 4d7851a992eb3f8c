"""The terms of the ELBO: values, gradients, stability, and the lecture's KL table."""

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tinyvae import losses
from tinyvae.gradcheck import numerical_gradient, rel_error

THRESHOLD = 1e-7
shapes = st.tuples(st.integers(1, 5), st.integers(1, 7))
seeds = st.integers(0, 2**32 - 1)


@settings(max_examples=50, deadline=None)
@given(shape=shapes, seed=seeds, scale=st.sampled_from([0.5, 3.0, 10.0]), binary=st.booleans())
def test_bernoulli_gradient_is_sigmoid_minus_x(shape, seed, scale, binary):
    rng = np.random.default_rng(seed)
    logits = rng.normal(0, scale, shape)
    x = (rng.random(shape) < 0.5).astype(float) if binary else rng.random(shape)
    _, dlogits = losses.bernoulli_nll(logits, x)
    numerical = numerical_gradient(lambda: losses.bernoulli_nll(logits, x)[0].sum(), logits)
    assert rel_error(dlogits, numerical) < THRESHOLD


def test_bernoulli_nll_equals_the_textbook_formula_where_that_is_finite():
    rng = np.random.default_rng(0)
    logits = rng.normal(0, 3, (4, 6))
    x = rng.random((4, 6))
    p = 1 / (1 + np.exp(-logits))
    textbook = -np.sum(x * np.log(p) + (1 - x) * np.log(1 - p), axis=1)
    np.testing.assert_allclose(losses.bernoulli_nll(logits, x)[0], textbook, rtol=1e-12)


def test_bernoulli_nll_is_finite_and_exact_for_logits_of_plus_minus_1000():
    logits = np.array([[1000.0, -1000.0, 1000.0, -1000.0]])
    x = np.array([[1.0, 0.0, 0.0, 1.0]])
    nll, dlogits = losses.bernoulli_nll(logits, x)
    # Right with certainty costs 0 nats; wrong with certainty costs |logit| nats.
    assert nll[0] == pytest.approx(2000.0, rel=1e-15)
    np.testing.assert_array_equal(dlogits, [[0.0, 0.0, 1.0, -1.0]])
    assert np.all(np.isfinite(dlogits))


@settings(max_examples=40, deadline=None)
@given(shape=shapes, seed=seeds, std=st.sampled_from([0.1, 1.0, 2.5]))
def test_gaussian_fixed_std_gradient(shape, seed, std):
    rng = np.random.default_rng(seed)
    mean, x = rng.normal(size=shape), rng.random(shape)
    _, dmean = losses.gaussian_nll(mean, x, std)
    numerical = numerical_gradient(lambda: losses.gaussian_nll(mean, x, std)[0].sum(), mean)
    assert rel_error(dmean, numerical) < THRESHOLD


@settings(max_examples=40, deadline=None)
@given(shape=shapes, seed=seeds)
def test_gaussian_learned_variance_gradients(shape, seed):
    rng = np.random.default_rng(seed)
    mean, log_var, x = rng.normal(size=shape), rng.normal(0, 2, shape), rng.random(shape)
    _, dmean, dlog_var = losses.gaussian_nll_learned(mean, log_var, x)

    def f():
        return losses.gaussian_nll_learned(mean, log_var, x)[0].sum()

    assert rel_error(dmean, numerical_gradient(f, mean)) < THRESHOLD
    assert rel_error(dlog_var, numerical_gradient(f, log_var)) < THRESHOLD


def normal_logpdf(x, mean, var):
    """log N(x; mean, var) written out independently of the code under test."""
    return -0.5 * np.log(2 * np.pi * var) - (x - mean) ** 2 / (2 * var)


def test_gaussian_nll_is_the_negative_log_density():
    rng = np.random.default_rng(1)
    mean, x, log_var = rng.normal(size=(3, 5)), rng.random((3, 5)), rng.normal(size=(3, 5))
    np.testing.assert_allclose(losses.gaussian_nll(mean, x, 0.3)[0],
                               -normal_logpdf(x, mean, 0.09).sum(axis=1), rtol=1e-12)
    np.testing.assert_allclose(losses.gaussian_nll_learned(mean, log_var, x)[0],
                               -normal_logpdf(x, mean, np.exp(log_var)).sum(axis=1), rtol=1e-12)


def test_gaussian_learned_variance_is_finite_for_log_var_of_plus_minus_50():
    mean = np.zeros((1, 2))
    x = np.full((1, 2), 0.5)
    log_var = np.array([[50.0, -50.0]])
    nll, dmean, dlog_var = losses.gaussian_nll_learned(mean, log_var, x)
    assert np.all(np.isfinite(nll)) and np.all(np.isfinite(dmean)) and np.all(np.isfinite(dlog_var))


@settings(max_examples=50, deadline=None)
@given(shape=shapes, seed=seeds, scale=st.sampled_from([0.1, 1.0, 3.0]))
def test_kl_gradients_are_mu_and_half_var_minus_one(shape, seed, scale):
    rng = np.random.default_rng(seed)
    mu, log_var = rng.normal(0, scale, shape), rng.normal(0, scale, shape)
    _, dmu, dlog_var = losses.kl_standard_normal(mu, log_var)
    np.testing.assert_array_equal(dmu, mu)

    def f():
        return losses.kl_standard_normal(mu, log_var)[0].sum()

    assert rel_error(dmu, numerical_gradient(f, mu)) < THRESHOLD
    assert rel_error(dlog_var, numerical_gradient(f, log_var)) < THRESHOLD


def test_kl_is_zero_when_q_equals_the_prior():
    kl, dmu, dlog_var = losses.kl_standard_normal(np.zeros((3, 4)), np.zeros((3, 4)))
    np.testing.assert_array_equal(kl, 0.0)
    np.testing.assert_array_equal(dmu, 0.0)
    np.testing.assert_array_equal(dlog_var, 0.0)


@settings(max_examples=100, deadline=None)
@given(mu=st.floats(-5, 5), log_var=st.floats(-8, 8))
def test_kl_is_positive_whenever_q_differs_from_the_prior(mu, log_var):
    kl = losses.kl_standard_normal(np.array([[mu]]), np.array([[log_var]]))[0][0]
    assert kl >= 0  # never negative, not even by rounding
    if mu == 0 and log_var == 0:
        assert kl == 0
    elif abs(mu) > 1e-7 or abs(log_var) > 1e-7:
        # Below that, KL ≈ ½μ² + ¼(log σ²)² is under float64's resolution of the terms.
        assert kl > 0


def test_kl_in_closed_form_agrees_with_monte_carlo():
    rng = np.random.default_rng(2)
    mu = np.array([[0.5, -1.2, 2.0]])
    log_var = np.array([[-1.0, 0.7, 0.0]])
    closed, _, _ = losses.kl_standard_normal(mu, log_var)
    # KL = E_q[log q(z) − log p(z)], estimated with a million samples of z ~ q.
    n = 1_000_000
    z = mu + np.exp(0.5 * log_var) * rng.standard_normal((n, 3))
    log_q = losses.gaussian_log_density(z, mu, log_var)
    log_p = losses.gaussian_log_density(z, np.zeros_like(mu), np.zeros_like(log_var))
    estimate = np.mean(log_q - log_p)
    standard_error = np.std(log_q - log_p) / math.sqrt(n)
    assert abs(estimate - closed[0]) < 4 * standard_error


def test_the_lectures_kl_table_in_nats():
    p = [0.36, 0.48, 0.16]
    q = [1 / 3, 1 / 3, 1 / 3]
    assert losses.kl_divergence(p, q) == pytest.approx(0.0852996, abs=5e-8)
    assert losses.kl_divergence(q, p) == pytest.approx(0.097455, abs=5e-7)
    # Not symmetric, and the base only rescales: bits = nats / ln 2.
    assert losses.kl_divergence(p, q, base=2) == pytest.approx(0.0852996 / math.log(2), abs=1e-7)


def test_kl_divergence_conventions_zero_log_zero_and_infinity():
    assert losses.kl_divergence([0.5, 0.5, 0.0], [0.25, 0.25, 0.5]) == pytest.approx(math.log(2))
    assert losses.kl_divergence([0.5, 0.5], [1.0, 0.0]) == math.inf
    assert losses.kl_divergence([0.2, 0.8], [0.2, 0.8]) == 0.0


@pytest.mark.parametrize("p, q, message", [
    ([0.5, 0.5], [1 / 3, 1 / 3, 1 / 3], "same shape"),
    ([1.2, -0.2], [0.5, 0.5], "negative"),
    ([0.36, 0.48, 0.16], [0.33, 0.33, 0.33], "sums to 0.99"),
    ([float("nan"), 1.0], [0.5, 0.5], "NaN"),
    ([], [], "empty"),
])
def test_kl_divergence_refuses_what_is_not_a_distribution(p, q, message):
    with pytest.raises(ValueError, match=message):
        losses.kl_divergence(p, q)


def test_log_mean_exp_is_stable_for_log_likelihood_sized_numbers():
    a = np.array([[-1000.0, -1001.0], [-1000.0, -999.0]])
    expected = -1000.0 + np.log(np.mean(np.exp(a + 1000.0), axis=0))
    np.testing.assert_allclose(losses.log_mean_exp(a, axis=0), expected, rtol=1e-14)
