"""The whole VAE: config, parameters, the gradient of every parameter, and the sampler."""

import dataclasses

import numpy as np
import pytest

from tinyvae import vae
from tinyvae.config import VAEConfig, init_params, param_shapes
from tinyvae.gradcheck import check_params
from tinyvae.losses import LIKELIHOODS

THRESHOLD = 1e-7


def check_model(config, seed=0, B=4, terms="both"):
    """Random non-zero parameters (larger than the training init, so every path carries a
    real gradient), data in [0, 1], fixed eps; returns the rows of the gradient check."""
    rng = np.random.default_rng(seed)
    params = init_params(config, rng)
    params = {k: (2 * v if ".W" in k else rng.normal(0, 0.5, v.shape)) for k, v in params.items()}
    x = rng.random((B, config.input_dim))
    eps = rng.standard_normal((B, config.latent_dim))
    _, grads, _ = vae.loss_and_grads(params, x, eps, config, terms=terms)
    return check_params(lambda: vae.loss_and_grads(params, x, eps, config, terms=terms)[0],
                        params, grads, threshold=THRESHOLD)


@pytest.mark.parametrize("likelihood", LIKELIHOODS)
@pytest.mark.parametrize("activation", ["relu", "tanh"])
@pytest.mark.parametrize("hidden_dims", [(7,), (6, 5)])
def test_every_parameter_gradient_matches_central_differences(likelihood, activation, hidden_dims):
    config = VAEConfig(input_dim=9, hidden_dims=hidden_dims, latent_dim=3, activation=activation,
                       likelihood=likelihood, beta=0.7)
    rows = check_model(config)
    assert [r.name for r in rows] == list(param_shapes(config))
    failed = [(r.name, r.rel_error) for r in rows if not r.passed]
    assert not failed


@pytest.mark.parametrize("terms", ["recon", "kl"])
def test_each_term_alone_matches_central_differences(terms):
    config = VAEConfig(input_dim=11, hidden_dims=(7,), latent_dim=3,
                       likelihood="gaussian-learned-variance")
    assert all(r.passed for r in check_model(config, seed=3, terms=terms))


def test_the_kl_term_gives_the_decoder_no_gradient():
    config = VAEConfig(input_dim=9, hidden_dims=(7,), latent_dim=3)
    rng = np.random.default_rng(0)
    params = init_params(config, rng)
    _, grads, _ = vae.loss_and_grads(params, rng.random((4, 9)), rng.standard_normal((4, 3)),
                                     config, terms="kl")
    for key, g in grads.items():
        if key.startswith("decoder."):
            np.testing.assert_array_equal(g, 0.0)
        else:
            assert np.any(g != 0)


def test_the_loss_is_the_batch_mean_of_recon_plus_beta_kl():
    config = VAEConfig(input_dim=9, hidden_dims=(7,), latent_dim=3, beta=2.5)
    rng = np.random.default_rng(4)
    params = init_params(config, rng)
    x, eps = rng.random((5, 9)), rng.standard_normal((5, 3))
    loss, _, stats = vae.loss_and_grads(params, x, eps, config)
    per_example, recon, kl = vae.negative_elbo(params, x, eps, config)
    assert loss == pytest.approx(np.mean(recon + 2.5 * kl), rel=1e-12)
    assert loss == pytest.approx(per_example.mean(), rel=1e-12)
    assert stats["recon"] == pytest.approx(recon.mean()) and stats["kl"] == pytest.approx(kl.mean())
    # beta overrides the config's (KL warm-up passes its own).
    assert vae.loss_and_grads(params, x, eps, config, beta=0.0)[0] == pytest.approx(recon.mean(),
                                                                                    rel=1e-12)


def test_parameter_keys_and_shapes_are_the_documented_ones():
    config = VAEConfig(input_dim=10, hidden_dims=(8, 6), latent_dim=2,
                       likelihood="gaussian-learned-variance")
    params = init_params(config, np.random.default_rng(0))
    assert {k: v.shape for k, v in params.items()} == {
        "encoder.W0": (10, 8), "encoder.b0": (8,), "encoder.W1": (8, 6), "encoder.b1": (6,),
        "encoder.W_mu": (6, 2), "encoder.b_mu": (2,),
        "encoder.W_logvar": (6, 2), "encoder.b_logvar": (2,),
        "decoder.W0": (2, 6), "decoder.b0": (6,), "decoder.W1": (6, 8), "decoder.b1": (8,),
        "decoder.W_out": (8, 10), "decoder.b_out": (10,),
        "decoder.W_logvar": (8, 10), "decoder.b_logvar": (10,),
    }


def test_the_parameters_dtype_decides_the_arithmetic():
    config = VAEConfig(input_dim=9, hidden_dims=(7,), latent_dim=3)
    rng = np.random.default_rng(0)
    params64 = init_params(config, rng)
    params32 = {k: v.astype(np.float32) for k, v in params64.items()}
    x, eps = rng.random((4, 9)), rng.standard_normal((4, 3))
    loss32, grads32, _ = vae.loss_and_grads(params32, x, eps, config)
    loss64, grads64, _ = vae.loss_and_grads(params64, x, eps, config)
    assert all(g.dtype == np.float32 for g in grads32.values())
    assert loss32 == pytest.approx(loss64, rel=1e-5)
    for key in grads64:
        np.testing.assert_allclose(grads32[key], grads64[key], rtol=1e-3, atol=1e-5)
    assert vae.sample(params32, 3, rng, config).dtype == np.float32


def test_the_sampler_variance_is_sigma_squared_not_its_square():
    # z = μ + exp(½ log σ²) ε has variance exp(log σ²) = σ²; a classic bug uses exp(log σ²) as
    # the standard deviation, which gives σ⁴.
    config = VAEConfig(input_dim=4, hidden_dims=(), latent_dim=3)
    params = init_params(config, np.random.default_rng(0))
    params["encoder.W_mu"][:] = 0
    params["encoder.W_logvar"][:] = 0
    params["encoder.b_mu"][:] = [1.0, -2.0, 0.5]
    params["encoder.b_logvar"][:] = [np.log(4.0), np.log(0.25), 0.0]  # σ² = 4, 1/4, 1
    captured = {}
    original = vae.decoder_forward

    def spy(params, z, config):
        captured["z"] = z
        return original(params, z, config)

    rng = np.random.default_rng(1)
    n = 200_000
    x = np.full((n, 4), 0.5)
    vae.decoder_forward = spy
    try:
        vae.negative_elbo(params, x, rng.standard_normal((n, 3)), config)
    finally:
        vae.decoder_forward = original
    z = captured["z"]
    np.testing.assert_allclose(z.mean(axis=0), [1.0, -2.0, 0.5], atol=0.02)
    np.testing.assert_allclose(z.var(axis=0), [4.0, 0.25, 1.0], rtol=0.02)


def test_sample_and_reconstruct_give_pixel_means():
    config = VAEConfig(input_dim=9, hidden_dims=(7,), latent_dim=2)
    rng = np.random.default_rng(0)
    params = init_params(config, rng)
    samples = vae.sample(params, 5, rng, config)
    assert samples.shape == (5, 9) and np.all((samples > 0) & (samples < 1))
    x = rng.random((3, 9))
    assert vae.reconstruct(params, x, rng, config).shape == (3, 9)
    mu, log_var = vae.encode(params, x, config)
    assert mu.shape == log_var.shape == (3, 2)
    # log p(x|z) at the reconstruction's code is the negative reconstruction term.
    _, recon, _ = vae.negative_elbo(params, x, np.zeros((3, 2)), config)
    np.testing.assert_allclose(vae.log_likelihood(params, x, mu, config), -recon, rtol=1e-12)


def test_same_seed_same_parameters_bit_for_bit():
    config = VAEConfig()
    a = init_params(config, np.random.default_rng(7))
    b = init_params(config, np.random.default_rng(7))
    assert all(np.array_equal(a[k], b[k]) for k in a)


@pytest.mark.parametrize("field, value", [
    ("input_dim", 0), ("latent_dim", -1), ("latent_dim", 2.5), ("hidden_dims", (400, 0)),
    ("hidden_dims", "400"), ("activation", "sigmoid"), ("likelihood", "poisson"),
    ("beta", -1.0), ("beta", float("nan")), ("beta", True), ("gaussian_std", 0.0),
])
def test_invalid_config_raises_value_error_naming_the_field(field, value):
    with pytest.raises(ValueError, match=field):
        VAEConfig(**{field: value})


def test_config_round_trips_through_a_dict():
    config = VAEConfig(hidden_dims=[200, 200], latent_dim=2, likelihood="gaussian", beta=0.5)
    assert config.hidden_dims == (200, 200)
    assert VAEConfig.from_dict(config.to_dict()) == config
    with pytest.raises(ValueError, match="unknown"):
        VAEConfig.from_dict({**config.to_dict(), "depth": 3})
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.beta = 2.0


@pytest.mark.parametrize("bad, message", [
    (np.full((2, 8), 0.5), r"shape \(batch, 9\)"),
    (np.full((2, 9), np.nan), "NaN"),
    (np.full((2, 9), 255.0), r"\[0, 1\]"),
])
def test_data_the_model_cannot_score_is_refused(bad, message):
    config = VAEConfig(input_dim=9, hidden_dims=(7,), latent_dim=3)
    params = init_params(config, np.random.default_rng(0))
    with pytest.raises(ValueError, match=message):
        vae.loss_and_grads(params, bad, np.zeros((2, 3)), config)


def test_eps_of_the_wrong_shape_is_refused():
    config = VAEConfig(input_dim=9, hidden_dims=(7,), latent_dim=3)
    params = init_params(config, np.random.default_rng(0))
    with pytest.raises(ValueError, match="eps"):
        vae.loss_and_grads(params, np.full((2, 9), 0.5), np.zeros((2, 4)), config)


def test_encode_and_log_likelihood_refuse_pixels_outside_0_1_for_bernoulli():
    config = VAEConfig(input_dim=9, hidden_dims=(7,), latent_dim=3)
    params = init_params(config, np.random.default_rng(0))
    raw = np.full((2, 9), 200.0)  # forgot to divide by 255
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        vae.encode(params, raw, config)
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        vae.log_likelihood(params, raw, np.zeros((2, 3)), config)


@pytest.mark.parametrize("std", [1e-200, 1e-101, 1e150])
def test_a_gaussian_std_whose_variance_under_or_overflows_is_refused(std):
    with pytest.raises(ValueError, match="gaussian_std must lie in"):
        VAEConfig(likelihood="gaussian", gaussian_std=std)
