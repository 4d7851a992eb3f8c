"""Training with K samples per image: the ELBO averaged over them, and the importance-weighted
bound L_K.

The gradients are written by hand (vae.loss_and_grads, vae.iwae_loss_and_grads); here they are
held to central differences, to the mathematics they come from (the average of K one-sample
losses; Σ_i w̃_i ∇ log w_i), and the fast step is held to them.
"""

import numpy as np
import pytest

from tinyvae import optim
from tinyvae.config import VAEConfig, init_params
from tinyvae.gradcheck import check_params, random_problem
from tinyvae.losses import LIKELIHOODS, log_mean_exp, log_posterior, log_prior
from tinyvae.speed.step import FastStep
from tinyvae.train import train_epochs
from tinyvae.vae import decoder_forward, encode, loss_and_grads, reconstruction_nll


def problem(likelihood="bernoulli", objective="elbo", k=3, activation="tanh", B=3, seed=0):
    config = VAEConfig(input_dim=5, hidden_dims=(4, 3), latent_dim=2, activation=activation,
                       likelihood=likelihood, k=k, objective=objective)
    params, x, eps = random_problem(config, B, np.random.default_rng(seed))
    return config, params, x, eps


@pytest.mark.parametrize("likelihood", LIKELIHOODS)
@pytest.mark.parametrize("objective", ["elbo", "iwae"])
@pytest.mark.parametrize("k", [1, 2, 5])
def test_every_gradient_of_both_objectives_matches_central_differences(likelihood, objective, k):
    config, params, x, eps = problem(likelihood, objective, k)
    _, grads, _ = loss_and_grads(params, x, eps, config)
    rows = check_params(lambda: loss_and_grads(params, x, eps, config)[0], params, grads)
    assert all(row.passed for row in rows), [(r.name, r.rel_error) for r in rows if not r.passed]


def test_a_planted_bug_in_the_iwae_backward_is_caught(monkeypatch):
    # The check has teeth: drop the path through log q into log σ² and the encoder's log-variance
    # rows fail.
    from tinyvae import vae
    config, params, x, eps = problem(objective="iwae", k=4)
    original = vae.normalized_weights
    monkeypatch.setattr(vae, "normalized_weights", lambda log_w, axis: original(log_w, axis) ** 2)
    _, grads, _ = loss_and_grads(params, x, eps, config)
    rows = check_params(lambda: loss_and_grads(params, x, eps, config)[0], params, grads)
    assert not all(row.passed for row in rows)


def test_the_k_sample_elbo_is_the_mean_of_k_one_sample_losses_and_so_is_its_gradient():
    config, params, x, eps = problem("gaussian", "elbo", k=4)
    one = VAEConfig(**{**config.to_dict(), "hidden_dims": config.hidden_dims, "k": 1})
    loss, grads, _ = loss_and_grads(params, x, eps, config)
    singles = [loss_and_grads(params, x, eps[:, i], one) for i in range(4)]
    assert loss == pytest.approx(np.mean([s[0] for s in singles]), rel=1e-12)
    for key in params:
        np.testing.assert_allclose(grads[key], np.mean([s[1][key] for s in singles], axis=0),
                                   rtol=1e-10, atol=1e-13)


def log_weights(params, x, eps, config):
    """log w = log p(x|z) + log p(z) − log q(z|x), straight from the definitions: (B, K)."""
    B, K, Z = eps.shape
    mu, log_var = encode(params, x, config)
    z = mu[:, None] + np.exp(0.5 * log_var)[:, None] * eps
    out, out_log_var, _ = decoder_forward(params, z.reshape(B * K, Z), config)
    recon, _, _ = reconstruction_nll(out, out_log_var, np.repeat(x, K, axis=0), config)
    diff = z - mu[:, None]
    log_q = -0.5 * np.sum(diff ** 2 / np.exp(log_var)[:, None] + log_var[:, None]
                          + np.log(2 * np.pi), axis=-1)
    return -recon.reshape(B, K) + log_prior(z)[0] - log_q


def test_the_iwae_loss_is_minus_the_mean_log_of_the_mean_importance_weight():
    config, params, x, eps = problem("bernoulli", "iwae", k=6)
    loss, _, _ = loss_and_grads(params, x, eps, config)
    log_w = log_weights(params, x, eps, config)
    expected = -np.mean(np.log(np.mean(np.exp(log_w), axis=1)))
    assert loss == pytest.approx(expected, rel=1e-10)


def test_log_q_written_in_eps_is_log_q_written_in_z():
    rng = np.random.default_rng(1)
    mu, log_var, eps = (rng.normal(size=(3, 1, 4)), rng.normal(size=(3, 1, 4)),
                        rng.normal(size=(3, 5, 4)))
    z = mu + np.exp(0.5 * log_var) * eps
    by_z = -0.5 * np.sum((z - mu) ** 2 / np.exp(log_var) + log_var + np.log(2 * np.pi), axis=-1)
    np.testing.assert_allclose(log_posterior(eps, log_var), by_z, rtol=1e-12)


def test_the_iwae_bound_is_at_least_the_average_of_its_log_weights():
    # Jensen: log of a mean >= mean of the logs, so -L_K <= the sampled ELBO of the same noise.
    for seed in range(5):
        config, params, x, eps = problem("bernoulli", "iwae", k=5, seed=seed)
        loss, _, _ = loss_and_grads(params, x, eps, config)
        assert loss <= -np.mean(log_weights(params, x, eps, config)) + 1e-12


def test_with_one_sample_iwae_is_the_elbo_with_a_sampled_kl():
    config, params, x, eps = problem("bernoulli", "iwae", k=1)
    loss, _, stats = loss_and_grads(params, x, eps, config)
    log_w = log_weights(params, x, eps[:, None], config)
    assert loss == pytest.approx(-np.mean(log_w), rel=1e-12)
    assert stats["loss"] == pytest.approx(stats["recon"] + stats["kl"], rel=1e-12)


def test_the_iwae_gradient_is_the_normalized_weights_times_each_samples_gradient():
    # ∇L_K = Σ_i w̃_i ∇ log w_i (docs/04-gradients.md eq. (19)), checked for one image: each
    # ∇(−log w_i) is the one-sample iwae gradient with that sample's noise.
    config, params, x, eps = problem("gaussian-learned-variance", "iwae", k=4, B=1)
    _, grads, _ = loss_and_grads(params, x, eps, config)
    one = VAEConfig(**{**config.to_dict(), "hidden_dims": config.hidden_dims, "k": 1})
    log_w = log_weights(params, x, eps, config)[0]
    w_tilde = np.exp(log_w - log_mean_exp(log_w)) / len(log_w)
    per_sample = [loss_and_grads(params, x, eps[:, i], one)[1] for i in range(4)]
    for key in params:
        np.testing.assert_allclose(grads[key], sum(w * g[key] for w, g in zip(w_tilde, per_sample)),
                                   rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("likelihood", LIKELIHOODS)
@pytest.mark.parametrize("objective", ["elbo", "iwae"])
@pytest.mark.parametrize("k", [1, 2, 5])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_the_fast_step_computes_the_cores_loss_and_gradients(likelihood, objective, k, dtype):
    config = VAEConfig(input_dim=9, hidden_dims=(7, 5), latent_dim=3, activation="relu",
                       likelihood=likelihood, k=k, objective=objective)
    rng = np.random.default_rng(3)
    params = init_params(config, rng, dtype)
    x = ((rng.random((4, 9)) < 0.4).astype(dtype) if likelihood == "bernoulli"
         else rng.random((4, 9)).astype(dtype))
    eps = rng.standard_normal((4, k, 3)).astype(dtype)
    loss, grads, stats = loss_and_grads(params, x, eps, config)
    fast = FastStep(config, params, optim.SGD(lr=1e-30), max_batch=6, threads=1)
    fast_stats = fast.step(x, eps)
    tol = 1e-4 if dtype == np.float32 else 1e-10
    for name in ("loss", "recon", "kl"):
        assert fast_stats[name] == pytest.approx(stats[name], rel=tol, abs=tol), name
    for key in params:
        scale = max(1e-6, float(np.max(np.abs(grads[key]))))
        assert np.max(np.abs(fast.grads[key] - grads[key])) / scale < 10 * tol, key


def test_the_door_refuses_what_the_objectives_cannot_take():
    config, params, x, eps = problem("bernoulli", "iwae", k=3)
    with pytest.raises(ValueError,
                       match=r"eps must have shape \(batch, k, latent_dim\) = \(3, 3, 2\)"):
        loss_and_grads(params, x, eps[:, :2], config)
    with pytest.raises(ValueError, match="iwae"):
        loss_and_grads(params, x, eps, config, beta=0.5)
    with pytest.raises(ValueError, match="iwae"):
        loss_and_grads(params, x, eps, config, terms="recon")
    with pytest.raises(ValueError, match="beta = 1"):
        VAEConfig(objective="iwae", beta=2.0)
    with pytest.raises(ValueError, match="VAEConfig.k"):
        VAEConfig(k=0)
    with pytest.raises(ValueError, match="VAEConfig.objective"):
        VAEConfig(objective="vimco")


def test_one_sample_noise_is_taken_as_b_z_or_b_1_z_with_the_same_result():
    config, params, x, eps = problem("bernoulli", "elbo", k=1)
    a = loss_and_grads(params, x, eps, config)
    b = loss_and_grads(params, x, eps[:, None], config)
    assert a[0] == b[0] and all(np.array_equal(a[1][key], b[1][key]) for key in params)


@pytest.mark.parametrize("objective", ["elbo", "iwae"])
def test_the_readable_loop_trains_with_k_samples(objective):
    config = VAEConfig(input_dim=12, hidden_dims=(8,), latent_dim=2, k=4, objective=objective)
    rng = np.random.default_rng(0)
    x = (rng.random((64, 12)) < np.linspace(0.1, 0.9, 12)).astype(float)
    params = init_params(config, rng)
    losses = train_epochs(params, optim.Adam(lr=1e-2), config, x, rng, epochs=15, batch_size=16)
    assert losses[-1] < 0.9 * losses[0]
