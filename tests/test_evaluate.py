"""Evaluation: the test ELBO, the importance-weighted bound L_k, per-dimension KL, active units.

The strongest check of L_k is the last one of its group: for a model with a 2-D latent
space, log p(x) = log ∫ p(x|z) p(z) dz can be computed by brute force on a grid, and
L_k must approach it from below as k grows (docs/02-variational-inference.md eq. (13)).

L_k is written twice: readably in tinyvae/evaluate.py, and fast in tinyvae/speed/iw.py.
The fast one is held to the readable one on the same seed, for every likelihood, activation
and depth; its own tricks (chunks, the overflow fallback, progress) are tested on it.
"""

import io
import sys
import threading

import numpy as np
import pytest

from tinyvae import evaluate, vae
from tinyvae.config import VAEConfig, init_params
from tinyvae.lab.training.progress import CountProgress
from tinyvae.layers import ACTIVATIONS
from tinyvae.losses import LIKELIHOODS, log_mean_exp
from tinyvae.speed import iw
from tinyvae.speed.mlp import IN_PLACE


def tiny_model(latent_dim=2, likelihood="bernoulli", input_dim=12, seed=0, dtype=np.float64,
               decoder_scale=3.0, activation="relu", hidden_dims=(16,)):
    """A small random model; the decoder weights are scaled up so that p(x|z) depends on z
    strongly, the posterior differs from q, and the ELBO is several nats below log p(x)."""
    config = VAEConfig(input_dim=input_dim, hidden_dims=hidden_dims, latent_dim=latent_dim,
                       likelihood=likelihood, activation=activation)
    rng = np.random.default_rng(seed)
    params = init_params(config, rng)
    params = {k: (decoder_scale * v if k.startswith("decoder.") else v).astype(dtype)
              for k, v in params.items()}
    x = (rng.random((5, input_dim)) < 0.4).astype(dtype)  # binary images
    return config, params, x


def brute_force_log_px(params, x, config, n=201, limit=7.0):
    """log p(x) = log ∫ p(x|z) N(z; 0, I) dz on an n × n grid over [−limit, limit]², Z = 2.

    The integrand is smooth and negligible beyond ±7, so a Riemann sum is accurate to
    ~1e−4 nats here (doubling n changes it by less than that)."""
    g = np.linspace(-limit, limit, n)
    z0, z1 = np.meshgrid(g, g, indexing="ij")
    z = np.stack([z0.ravel(), z1.ravel()], axis=1)  # (n², 2)
    log_prior = -0.5 * np.sum(z * z, axis=1) - np.log(2 * np.pi)  # (n²,)
    B, G = len(x), len(z)
    log_px_z = vae.log_likelihood(params, np.repeat(x, G, axis=0), np.tile(z, (B, 1)),
                                  config).reshape(B, G)
    cell = (g[1] - g[0]) ** 2
    return log_mean_exp(log_px_z + log_prior, axis=1) + np.log(G * cell)  # log Σ e^a · cell


# ---- the test ELBO ----


def test_test_elbo_is_the_mean_negative_elbo_with_one_eps_per_image():
    config, params, _ = tiny_model(latent_dim=3)
    x = np.random.default_rng(1).random((23, config.input_dim))
    got = evaluate.test_elbo(params, x, config, np.random.default_rng(7), batch_size=5)
    eps = np.random.default_rng(7).standard_normal((23, 3))  # the same stream, drawn at once
    loss, recon, kl = vae.negative_elbo(params, x, eps, config)
    assert got == pytest.approx({"loss": loss.mean(), "recon": recon.mean(), "kl": kl.mean()},
                                rel=1e-12)


def test_test_elbo_uses_the_models_beta():
    config, params, x = tiny_model(latent_dim=3)
    config = VAEConfig(**{**config.to_dict(), "hidden_dims": (16,), "beta": 4.0})
    got = evaluate.test_elbo(params, x, config, np.random.default_rng(0))
    assert got["loss"] == pytest.approx(got["recon"] + 4.0 * got["kl"], rel=1e-12)


# ---- the importance-weighted bound ----


@pytest.mark.parametrize("likelihood", LIKELIHOODS)
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("activation", sorted(ACTIVATIONS))
def test_the_chunked_bound_equals_the_reference_formula(likelihood, dtype, activation):
    # speed.iw.iw_bound_per_example (fast decoder, chunks) against log_importance_weights (the
    # formula, written with the model's own functions), on the same ε.
    config, params, _ = tiny_model(latent_dim=3, likelihood=likelihood, dtype=dtype,
                                   activation=activation)
    x = np.random.default_rng(2).random((7, config.input_dim)).astype(dtype)
    eps = np.random.default_rng(3).standard_normal((7, 40, 3), dtype=dtype)
    want = log_mean_exp(evaluate.log_importance_weights(params, x, eps, config).astype(np.float64),
                        axis=1)
    got = iw.iw_bound_per_example(params, x, config, np.random.default_rng(3), k=40, chunk_size=9)
    tol = 1e-11 if dtype == np.float64 else 2e-6
    np.testing.assert_allclose(got, want, rtol=tol)


@pytest.mark.parametrize("hidden_dims", [(), (9,), (9, 6)])
@pytest.mark.parametrize("likelihood", LIKELIHOODS)
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("activation", sorted(ACTIVATIONS))
def test_the_fast_bound_equals_the_readable_bound_on_the_same_seed(likelihood, dtype, activation,
                                                                   hidden_dims):
    # speed.iw against evaluate, each drawing its own ε from the same seed: the same noise,
    # so the same numbers up to rounding (the fast one sums in another order).
    config, params, _ = tiny_model(latent_dim=3, likelihood=likelihood, dtype=dtype,
                                   activation=activation, hidden_dims=hidden_dims)
    x = np.random.default_rng(2).random((7, config.input_dim)).astype(dtype)
    readable = evaluate.iw_bound_per_example(params, x, config, np.random.default_rng(4), k=60,
                                             batch_size=3)
    fast = iw.iw_bound_per_example(params, x, config, np.random.default_rng(4), k=60, batch_size=3,
                                   chunk_size=7)
    if dtype == np.float64:
        np.testing.assert_allclose(fast, readable, rtol=1e-10)
    else:
        np.testing.assert_allclose(fast, readable, rtol=1e-4, atol=1e-3)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_huge_logits_do_not_overflow_the_fast_likelihood(dtype):
    # Logits of several hundred: e^l overflows (float32 beyond 88, float64 beyond 709) and
    # those rows must be recomputed with the stable softplus, not come out as -inf.
    config, params, x = tiny_model(latent_dim=3, decoder_scale=300.0, dtype=dtype)
    eps = np.random.default_rng(3).standard_normal((5, 20, 3), dtype=dtype)
    want = log_mean_exp(evaluate.log_importance_weights(params, x, eps, config).astype(np.float64),
                        axis=1)
    got = iw.iw_bound_per_example(params, x, config, np.random.default_rng(3), k=20)
    assert np.all(np.isfinite(got))
    np.testing.assert_allclose(got, want, rtol=1e-12 if dtype == np.float64 else 2e-6)


@pytest.mark.parametrize("hidden_dims", [(), (9,), (9, 6), (9, 6, 5)])
def test_the_fast_decoder_has_every_activation_and_any_depth(hidden_dims):
    assert set(IN_PLACE) == set(ACTIVATIONS)
    config, params, x = tiny_model(latent_dim=3, hidden_dims=hidden_dims, activation="tanh")
    eps = np.random.default_rng(3).standard_normal((5, 30, 3))
    want = log_mean_exp(evaluate.log_importance_weights(params, x, eps, config), axis=1)
    got = iw.iw_bound_per_example(params, x, config, np.random.default_rng(3), k=30, chunk_size=4)
    np.testing.assert_allclose(got, want, rtol=1e-12)


def test_the_bound_does_not_depend_on_batch_or_chunk_size():
    # The ε of each image are drawn in image order, so batching and chunking only change
    # how the same numbers are grouped.
    config, params, x = tiny_model(latent_dim=3)
    runs = [iw.iw_bound_per_example(params, x, config, np.random.default_rng(11), k=37,
                                    batch_size=b, chunk_size=c)
            for b, c in [(100, None), (1, 1), (2, 5), (3, 37), (5, 100)]]
    runs += [evaluate.iw_bound_per_example(params, x, config, np.random.default_rng(11), k=37,
                                           batch_size=b)
             for b in (100, 1, 3)]
    for other in runs[1:]:
        np.testing.assert_allclose(other, runs[0], rtol=0, atol=1e-10)


@pytest.mark.parametrize("likelihood, dtype", [("bernoulli", np.float32), ("bernoulli", np.float64),
                                               ("gaussian", np.float64)])
# batch sizes: pairs, a batch left alone at the end, one batch
@pytest.mark.parametrize("batch_size", [1, 2, 3, 100])
def test_two_batches_at_once_give_the_same_bound_bit_for_bit(likelihood, dtype, batch_size):
    # speed/iw.py, 4.: with threads=2 two batches run at once on two threads, each with its own
    # buffers; the noise is drawn in the same order, so every image's bound is the same bits.
    config, params, x = tiny_model(latent_dim=3, hidden_dims=(7, 5), activation="tanh",
                                   likelihood=likelihood, dtype=dtype)
    one, two = (iw.iw_bound_per_example(params, x, config, np.random.default_rng(8), k=41,
                                        batch_size=batch_size, chunk_size=6, threads=t)
                for t in (1, 2))
    assert np.array_equal(one, two) and np.all(np.isfinite(one))
    seen = []
    iw.iw_bound_per_example(params, x, config, np.random.default_rng(8), k=41,
                            batch_size=batch_size, threads=2,
                            progress=lambda done, total: seen.append((done, total)))
    # rises to the end, in order
    assert seen and seen[-1] == (len(x), len(x)) and seen == sorted(seen)


def test_two_at_once_hands_every_second_batch_to_the_other_thread(monkeypatch):
    from tinyvae.speed import halves
    # 5 images: batches of 1 pair up as (0, 1), (2, 3), then 4 alone
    config, params, x = tiny_model(latent_dim=3)
    threads_seen, real = [], halves.both

    def both(here, there):
        def recorded():
            threads_seen.append(threading.current_thread().name)
            there()
        real(here, recorded)

    monkeypatch.setattr(halves, "both", both)
    iw.iw_bound_per_example(params, x, config, np.random.default_rng(8), k=5, batch_size=1,
                            threads=2)
    assert threads_seen == ["tinyvae-second-half"] * 2


@pytest.mark.parametrize("threads", [0, 3, True, 2.0])
def test_threads_of_the_bound_are_one_or_two(threads):
    config, params, x = tiny_model(latent_dim=3)
    with pytest.raises(ValueError, match="threads must be 1 or 2"):
        iw.iw_bound_per_example(params, x, config, np.random.default_rng(0), k=3, threads=threads)


@pytest.mark.parametrize("likelihood", ["bernoulli", "gaussian"])
def test_an_image_whose_noise_exceeds_the_budget_streams_with_the_same_numbers(monkeypatch,
                                                                               likelihood):
    # Issue 12: k·Z numbers of noise for one image beyond CHUNK_BYTES (as k = 2·10⁹ is for the
    # real budget) are drawn chunk by chunk from the same stream: the readable bound's numbers.
    config, params, x = tiny_model(latent_dim=3, likelihood=likelihood)
    monkeypatch.setattr(iw, "CHUNK_BYTES", 256)  # 32 float64 numbers: k = 50 is "huge" here
    fast = iw.iw_bound_per_example(params, x, config, np.random.default_rng(6), k=50)
    readable = evaluate.iw_bound_per_example(params, x, config, np.random.default_rng(6), k=50)
    assert fast == pytest.approx(readable, abs=1e-10)


def test_the_memory_of_the_fast_bound_does_not_grow_with_k(monkeypatch):
    import tracemalloc
    config, params, x = tiny_model(latent_dim=3)
    monkeypatch.setattr(iw, "CHUNK_BYTES", 4096)
    peaks = []
    for k in (2_000, 40_000):
        tracemalloc.start()
        iw.iw_bound(params, x[:1], config, np.random.default_rng(0), k=k)
        peaks.append(tracemalloc.get_traced_memory()[1])
        tracemalloc.stop()
    # 20 times the samples, the same memory: ~ a few chunks, far below the 40,000·3·8 bytes
    # (960 kB) of noise that k = 40,000 draws in all.
    assert peaks[1] < 1.5 * peaks[0] + 20_000 and peaks[1] < 200_000


def test_l1_has_the_expectation_of_the_elbo():
    # L_1 = E_q[log p(x, z) − log q(z|x)] = ELBO, eq. (13): the same expectation, reached
    # with a sampled log p(z) − log q(z|x) in place of the closed-form −KL.
    config, params, x = tiny_model(latent_dim=2)
    reps = 4000
    xs = np.repeat(x, reps, axis=0)
    l1 = evaluate.iw_bound_per_example(params, xs, config, np.random.default_rng(1),
                                       k=1).reshape(len(x), reps)
    eps = np.random.default_rng(2).standard_normal((len(xs), 2))
    elbo = -vae.negative_elbo(params, xs, eps, config)[0].reshape(len(x), reps)
    stderr = np.sqrt(l1.var(axis=1) / reps + elbo.var(axis=1) / reps)
    assert np.all(np.abs(l1.mean(axis=1) - elbo.mean(axis=1)) < 4 * stderr)


def test_lk_is_above_the_elbo_and_rises_with_k():
    # ELBO = L_1 ≤ L_10 ≤ L_100, eq. (13); averaged over repetitions so that the ordering is
    # far outside the noise (the gaps here are ~3.5 and ~0.2 nats).
    config, params, x = tiny_model(latent_dim=2)
    xs = np.repeat(x, 200, axis=0)
    elbo = -evaluate.test_elbo(params, xs, config, np.random.default_rng(0))["loss"]
    bounds = [evaluate.iw_bound(params, xs, config, np.random.default_rng(k), k=k)
              for k in (1, 10, 100)]
    assert abs(bounds[0] - elbo) < 0.5
    assert elbo + 2.0 < bounds[1] < bounds[2] - 0.1


def test_lk_approaches_the_brute_force_log_likelihood_from_below():
    config, params, x = tiny_model(latent_dim=2)
    log_px = brute_force_log_px(params, x, config)  # (5,)
    # L_100 is below log p(x) by ~0.02 nats here: averaged over 5 × 400 runs (standard
    # error ~0.004), that is clearly visible. L_5000 is within its noise (~0.003 nats).
    l100 = evaluate.iw_bound(params, np.repeat(x, 400, axis=0), config, np.random.default_rng(0),
                             k=100)
    assert 0.005 < log_px.mean() - l100 < 0.05
    l5000 = evaluate.iw_bound_per_example(params, np.repeat(x, 8, axis=0), config,
                                          np.random.default_rng(1), k=5000).reshape(5, 8)
    assert abs(l5000.mean() - log_px.mean()) < 0.015
    np.testing.assert_allclose(l5000.mean(axis=1), log_px, atol=0.04)


@pytest.mark.parametrize("bound", [evaluate.iw_bound, iw.iw_bound], ids=["readable", "fast"])
def test_the_bound_rejects_bad_arguments(bound):
    config, params, x = tiny_model()
    with pytest.raises(ValueError, match="k must be a positive integer"):
        bound(params, x, config, np.random.default_rng(0), k=0)
    with pytest.raises(ValueError, match="batch_size"):
        bound(params, x, config, np.random.default_rng(0), k=5, batch_size=0)
    with pytest.raises(ValueError, match="shape"):
        bound(params, x[:, :5], config, np.random.default_rng(0), k=5)
    if bound is iw.iw_bound:
        with pytest.raises(ValueError, match="chunk_size"):
            bound(params, x, config, np.random.default_rng(0), k=5, chunk_size=0)


def test_progress_is_silent_by_default_and_a_plain_line_when_not_a_terminal(capsys):
    config, params, x = tiny_model()
    iw.iw_bound(params, x, config, np.random.default_rng(0), k=3, batch_size=2)
    assert capsys.readouterr().err == ""
    iw.iw_bound(params, x, config, np.random.default_rng(0), k=3, batch_size=2,
                progress=CountProgress("L_3"))
    err = capsys.readouterr().err
    assert "\r" not in err  # captured stderr is not a terminal
    assert err.splitlines()[-1].startswith("L_3: 5/5 images (100 %)")


def test_progress_updates_one_line_in_place_on_a_terminal(monkeypatch):
    class Terminal(io.StringIO):
        def isatty(self):
            return True

    terminal = Terminal()
    monkeypatch.setattr(sys, "stderr", terminal)
    config, params, x = tiny_model()
    iw.iw_bound(params, x, config, np.random.default_rng(0), k=3, batch_size=2,
                progress=CountProgress("L_3"))
    out = terminal.getvalue()
    assert out.count("\r") == 3 and out.count("\n") == 1 and out.endswith("\n")
    assert "L_3: 5/5 images (100 %)" in out.split("\r")[-1]


# ---- how much of the latent space is used ----


def test_kl_per_dimension_sums_to_the_mean_kl():
    config, params, x = tiny_model(latent_dim=3)
    per_dim = evaluate.kl_per_dimension(params, x, config, batch_size=2)
    assert per_dim.shape == (3,) and np.all(per_dim >= 0)
    eps = np.zeros((len(x), 3))
    _, _, kl = vae.negative_elbo(params, x, eps, config)
    assert per_dim.sum() == pytest.approx(kl.mean(), rel=1e-12)


def test_a_dimension_whose_mean_does_not_vary_is_inactive():
    config, params, _ = tiny_model(latent_dim=3)
    params["encoder.W_mu"] = params["encoder.W_mu"] * 20  # clearly active...
    params["encoder.W_mu"][:, 1] = 0.0  # ...except dim 1, whose μ is the constant b_mu[1]
    x = np.random.default_rng(5).random((50, config.input_dim))
    n_active, variance = evaluate.active_units(params, x, config, batch_size=7)
    assert variance[1] == pytest.approx(0.0, abs=1e-20)
    assert n_active == 2
    mu, _ = vae.encode(params, x, config)
    np.testing.assert_allclose(variance, mu.var(axis=0), rtol=1e-12)
