"""A trained model held in Python: the front door's load/save and the Model's methods, each one
call of the functional API, for one image or a batch, with shapes refused by name."""

from __future__ import annotations

import numpy as np
import pytest

import tinyvae
from tinyvae import evaluate, vae
from tinyvae.lab.storage.checkpoint import CheckpointError, save_checkpoint
from tinyvae.speed import iw

CONFIG = tinyvae.VAEConfig(input_dim=12, hidden_dims=(7,), latent_dim=3)


def model(dtype=np.float64):
    return tinyvae.Model(CONFIG, tinyvae.init_params(CONFIG, np.random.default_rng(0), dtype))


def images(n, seed=1):
    return (np.random.default_rng(seed).random((n, CONFIG.input_dim)) < 0.4).astype(np.float64)


def test_a_model_trained_in_python_saves_and_loads_without_any_training_state(tmp_path):
    m = model()
    path = m.save(tmp_path / "model.npz")
    loaded = tinyvae.load(path)
    assert loaded.config == CONFIG
    for key, arr in m.params.items():
        np.testing.assert_array_equal(loaded.params[key], arr, err_msg=key)
    with np.load(path, allow_pickle=False) as npz:
        assert not any(key.startswith(("optim/", "rng", "history")) for key in npz.files)


def test_a_training_checkpoint_loads_as_a_model(tmp_path):
    m = model(np.float32)
    save_checkpoint(tmp_path / "checkpoint.npz", params=m.params, optimizer=tinyvae.Adam(),
                    config=CONFIG, epoch=0, history=[], rng=np.random.default_rng(0))
    loaded = tinyvae.load(tmp_path / "checkpoint.npz")
    assert loaded.config == CONFIG and loaded.dtype == np.float32
    np.testing.assert_array_equal(loaded.params["decoder.W_out"], m.params["decoder.W_out"])


def test_a_file_that_is_not_a_model_is_refused_by_name(tmp_path):
    bad = tmp_path / "bad.npz"
    np.savez(bad, kind=np.array("model"), format_version=np.array(1), config=np.array("{}"))
    with pytest.raises(CheckpointError, match="bad.npz"):
        tinyvae.load(bad)
    with pytest.raises(CheckpointError, match="missing.npz"):
        tinyvae.load(tmp_path / "missing.npz")


def test_every_method_takes_one_image_or_a_batch_and_agrees_with_the_functional_api():
    m, x = model(), images(5)
    mu, log_var = m.encode(x)
    ref_mu, ref_log_var = vae.encode(m.params, x, CONFIG)
    np.testing.assert_array_equal(mu, ref_mu)
    one_mu, one_log_var = m.encode(x[2])
    assert one_mu.shape == (3,) and one_log_var.shape == (3,)
    # one row through BLAS may round differently from the same row inside a batch
    np.testing.assert_allclose(one_mu, ref_mu[2], rtol=1e-12)
    np.testing.assert_allclose(one_log_var, ref_log_var[2], rtol=1e-12)
    assert m.decode(mu).shape == (5, 12) and m.decode(mu[0]).shape == (12,)
    np.testing.assert_allclose(m.decode(mu[0]), vae.decode(m.params, mu[:1], CONFIG)[0])
    assert m.reconstruct(x).shape == (5, 12) and m.reconstruct(x[0]).shape == (12,)
    elbo = m.elbo(x, seed=3)
    eps = np.random.default_rng(3).standard_normal((5, 3))
    np.testing.assert_allclose(elbo, -vae.negative_elbo(m.params, x, eps, CONFIG, beta=1.0)[0])
    assert isinstance(m.elbo(x[0]), float)


def test_sample_is_reproducible_from_a_seed_and_differs_between_seeds():
    m = model()
    a, b, c = m.sample(4, seed=7), m.sample(4, seed=7), m.sample(4, seed=8)
    assert a.shape == (4, 12) and np.array_equal(a, b) and not np.array_equal(a, c)
    assert np.all((a >= 0) & (a <= 1))  # Bernoulli means


def test_iw_bound_is_the_fast_bound_and_lies_above_the_elbo_on_average():
    m, x = model(), images(20)
    bounds = m.iw_bound(x, k=50, seed=2)
    np.testing.assert_array_equal(bounds, iw.iw_bound_per_example(m.params, x, CONFIG,
                                                                   np.random.default_rng(2), k=50))
    assert bounds.mean() > m.elbo(x, seed=2).mean()
    assert evaluate.active_units(m.params, x, CONFIG)[0] == m.active_units(x)


def test_a_wrong_shape_is_refused_with_the_expected_shape_named():
    m = model()
    with pytest.raises(ValueError, match=r"latent_dim = 3.*\(2, 5\)"):
        m.decode(np.zeros((2, 5)))
    with pytest.raises(ValueError, match=r"\(12,\).*\(B, 12\).*\(784,\)"):
        m.encode(np.zeros(784))
    with pytest.raises(ValueError, match="decoder.W_out"):
        tinyvae.Model(CONFIG, {**m.params, "decoder.W_out": np.zeros((2, 2))})


def test_a_checkpoint_keeps_the_run_s_settings_and_history_and_a_model_file_does_not(tmp_path):
    m = model(np.float32)
    history = [{"epoch": 1, "beta": 1.0, "train_loss": 2.0, "train_recon": 1.5, "train_kl": 0.5,
                "test_loss": 1.0, "test_recon": 0.75, "test_kl": 0.25, "seconds": 1.0,
                "samples_per_sec": 10.0, "elapsed": 1.0}]
    save_checkpoint(tmp_path / "checkpoint.npz", params=m.params, optimizer=tinyvae.Adam(),
                    config=CONFIG, epoch=1, history=history, rng=np.random.default_rng(0),
                    extra={"cli": {"seed": 4, "test_limit": 7, "iw_samples": 0}})
    loaded = tinyvae.load(tmp_path / "checkpoint.npz")
    assert loaded.epochs == 1 and loaded.history == history and loaded.settings["seed"] == 4
    assert (loaded.run_protocol()["test_limit"] == 7
            and loaded.run_protocol()["binarize"] == "dynamic")
    bare = tinyvae.load(m.save(tmp_path / "model.npz"))
    assert bare.settings is None and bare.epochs == 0 and bare.run_protocol()["seed"] == 0


def test_evaluate_on_given_images_is_the_run_protocol_s_evaluation():
    m, x = model(), images(30)
    m.settings, m.epochs = {"seed": 3, "iw_samples": 20}, 2
    results = m.evaluate(x)
    test = evaluate.test_elbo(m.params, x, CONFIG, np.random.default_rng([3, 2]))
    assert results["elbo"] == -(test["recon"] + test["kl"]) and results["loss"] == test["loss"]
    assert results["iw_bound"] == iw.iw_bound(m.params, x, CONFIG, np.random.default_rng([3, 5]),
                                              k=20)
    assert m.evaluate(x, k=0)["iw_bound"] is None
    assert results["active_units"] == evaluate.active_units(m.params, x, CONFIG)[0]


def test_a_checkpoint_written_by_fit_alone_keeps_its_evaluation_seed(tmp_path):
    from tinyvae.lab.training.runner import fit
    from tinyvae.speed.step import make_step
    rng = np.random.default_rng(0)
    step = make_step("reference", CONFIG, tinyvae.init_params(CONFIG, rng), tinyvae.Adam(), 8)
    history = fit(step, images(16), rng=rng, epochs=1, x_test=images(8, seed=2), batch_size=8,
                  binarize="none", out_dir=tmp_path, eval_seed=6, stream=None)
    loaded = tinyvae.load(tmp_path / "checkpoint.npz")
    assert loaded.settings["seed"] == 6 and "no test set" in loaded.settings["scored_by"]
    # the run's own number, again: the test ELBO of its last epoch
    assert loaded.evaluate(images(8, seed=2), k=0)["loss"] == history[-1]["test_loss"]


def test_evaluate_shows_its_progress_only_where_a_person_is_watching(capsys, monkeypatch):
    from tinyvae.lab.storage import model as model_module
    m, x = model(), images(30)
    m.settings = {"iw_samples": 20}
    quiet = m.evaluate(x)  # under pytest stderr is captured: no terminal, no notebook
    assert capsys.readouterr().err == ""
    monkeypatch.setattr(model_module, "watched", lambda: True)  # a terminal, or a notebook
    assert m.evaluate(x)["iw_bound"] == quiet["iw_bound"]  # the same numbers, and a line in place
    err = capsys.readouterr().err
    assert err.startswith("\rL_20: 30/30 images (100 %)") and err.endswith("\n")
    assert m.evaluate(x, progress=False)["iw_bound"] == quiet["iw_bound"]
    assert capsys.readouterr().err == ""
    seen = []
    m.evaluate(x, progress=lambda done, total: seen.append((done, total)))
    assert seen == [(30, 30)]
