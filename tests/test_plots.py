"""The figures: every function writes a real PNG, atomically, and refuses what it cannot draw."""

import math
import struct

import numpy as np
import pytest

from tinyvae import vae
from tinyvae.lab import latent_plots, plots
from tinyvae.vae import VAEConfig

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def png_size(path):
    """(width, height) from the PNG header, after checking the signature and the IHDR chunk."""
    data = path.read_bytes()
    assert data[:8] == PNG_SIGNATURE, f"{path.name} is not a PNG"
    assert data[12:16] == b"IHDR"
    width, height = struct.unpack(">II", data[16:24])
    assert data.endswith(b"IEND\xaeB`\x82"), f"{path.name} is truncated"
    return width, height


def assert_png(path, min_side=100, max_side=3000):
    assert path.exists() and path.stat().st_size > 1000
    width, height = png_size(path)
    assert min_side <= width <= max_side and min_side <= height <= max_side
    leftovers = [p.name for p in path.parent.iterdir() if p.name.endswith(".tmp")]
    assert not leftovers


def model(latent_dim=2):
    config = VAEConfig(input_dim=784, hidden_dims=(16,), latent_dim=latent_dim)
    params = vae.init_params(config, np.random.default_rng(0), np.float32)
    return config, params


@pytest.fixture
def images():
    return np.random.default_rng(0).random((20, 784)).astype(np.float32)


def test_reconstructions(tmp_path, images):
    path = plots.plot_reconstructions(tmp_path / "rec.png", images[:10], images[10:], n=8)
    assert path == tmp_path / "rec.png"
    assert_png(path)


def test_samples(tmp_path, images):
    assert_png(plots.plot_samples(tmp_path / "samples.png", images, nrow=5))


def test_loss_curves_with_and_without_test_values(tmp_path):
    history = [{"epoch": e, "beta": min(1.0, e / 2), "train_loss": 200 / e, "train_recon": 190 / e, "train_kl": 10.0,
                "test_loss": 199 / e, "test_recon": 189 / e, "test_kl": 10.0} for e in (1, 2, 3)]
    assert_png(plots.plot_loss_curves(tmp_path / "loss.png", history))
    one_epoch_no_test = [{**history[0], "test_loss": None, "test_recon": None, "test_kl": None}]
    assert_png(plots.plot_loss_curves(tmp_path / "loss1.png", one_epoch_no_test))
    with pytest.raises(ValueError, match="empty"):
        plots.plot_loss_curves(tmp_path / "loss2.png", [])


@pytest.mark.parametrize("latent_dim", [1, 2, 5])
def test_latent_scatter(tmp_path, latent_dim):
    rng = np.random.default_rng(0)
    mu = rng.standard_normal((300, latent_dim))
    labels = rng.integers(0, 10, 300)
    kl = np.arange(latent_dim, dtype=float)
    assert_png(latent_plots.plot_latent_scatter(tmp_path / "scatter.png", mu, labels, kl_per_dim=kl))
    assert_png(latent_plots.plot_latent_scatter(tmp_path / "nolabels.png", mu, None))


def test_latent_scatter_picks_the_two_dims_with_the_largest_kl():
    mu = np.zeros((10, 5))
    dims, _ = latent_plots._choose_dims(mu, np.array([0.1, 3.0, 0.0, 5.0, 1.0]))
    assert dims == (1, 3)


def test_manifold(tmp_path):
    config, params = model(latent_dim=2)
    assert_png(latent_plots.plot_manifold(tmp_path / "manifold.png", params, config, n=6))


def test_the_manifold_refuses_a_latent_space_that_is_not_2d(tmp_path):
    config, params = model(latent_dim=3)
    with pytest.raises(ValueError, match="2-D latent space; this model has latent_dim = 3"):
        latent_plots.plot_manifold(tmp_path / "manifold.png", params, config)
    assert not list(tmp_path.iterdir())


def test_interpolation(tmp_path, images):
    config, params = model(latent_dim=3)
    assert_png(latent_plots.plot_interpolation(tmp_path / "interp.png", params, config, images[:3], images[3:6],
                                               steps=7))
    assert_png(latent_plots.plot_interpolation(tmp_path / "one.png", params, config, images[0], images[1]))


def test_traversal(tmp_path, images):
    config, params = model(latent_dim=4)
    kl = np.array([0.5, 2.0, 0.0, 1.0])
    assert_png(latent_plots.plot_traversal(tmp_path / "trav.png", params, config, images[0], kl_per_dim=kl))
    assert_png(latent_plots.plot_traversal(tmp_path / "trav2.png", params, config, images[:1], dims=[2],
                                           values=[-1.0, 0.0, 1.0]))


@pytest.mark.parametrize("u, z", [(0.5, 0.0), (0.975, 1.959963984540054), (0.025, -1.959963984540054),
                                  (0.8413447460685429, 1.0), (1e-10, -6.361340902404056),
                                  (0.999, 3.090232306167813)])
def test_inverse_normal_cdf_matches_known_quantiles(u, z):
    assert latent_plots.inverse_normal_cdf(u) == pytest.approx(z, abs=1e-12)


def test_inverse_normal_cdf_inverts_the_cdf_on_arrays():
    u = np.linspace(0.001, 0.999, 37).reshape(37, 1)
    z = latent_plots.inverse_normal_cdf(u)
    assert z.shape == u.shape and np.all(np.diff(z.ravel()) > 0)
    back = np.array([0.5 * math.erfc(-v / math.sqrt(2)) for v in z.ravel()])
    np.testing.assert_allclose(back, u.ravel(), rtol=1e-13)
    with pytest.raises(ValueError, match="strictly between 0 and 1"):
        latent_plots.inverse_normal_cdf([0.5, 1.0])


def test_a_failed_write_leaves_no_file(tmp_path, images, monkeypatch):
    def broken(self, *args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(plots.Figure, "savefig", broken)
    with pytest.raises(OSError, match="disk full"):
        plots.plot_samples(tmp_path / "samples.png", images)
    assert not list(tmp_path.iterdir())


def test_an_existing_figure_is_replaced(tmp_path, images):
    path = tmp_path / "samples.png"
    path.write_bytes(b"old")
    plots.plot_samples(path, images)
    assert_png(path)


def test_bad_paths_and_shapes_are_refused_clearly(tmp_path, images):
    with pytest.raises(ValueError, match="must end in .png"):
        plots.plot_samples(tmp_path / "samples.jpg", images)
    with pytest.raises(FileNotFoundError, match="does not exist"):
        plots.plot_samples(tmp_path / "missing" / "samples.png", images)
    with pytest.raises(ValueError, match="not a square number"):
        plots.plot_samples(tmp_path / "samples.png", images[:, :780])


def test_tick_labels_use_a_typographic_minus_and_leave_zero_unsigned():
    labels = [latent_plots._signed(v, "+.3g") for v in (-3.0, -0.75, 0.0, -0.0, 0.75, 3.0)]
    assert labels == ["−3", "−0.75", "0", "0", "+0.75", "+3"]
    assert latent_plots._signed(-1.5, ".2f") == "−1.50" and latent_plots._signed(0.0, ".2f") == "0.00"
