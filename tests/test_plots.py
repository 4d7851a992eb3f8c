"""The figures: every function returns its matplotlib Figure and writes a real PNG, atomically (or
nothing, given no path), shows what it claims, and refuses what it cannot draw."""

import math
import struct

import numpy as np
import pytest
from matplotlib.collections import PatchCollection
from matplotlib.figure import Figure

from tinyvae.config import VAEConfig, init_params
from tinyvae.lab.figures import latent_plots, plots

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def png_size(path):
    """(width, height) from the PNG header, after checking the signature and the IHDR chunk."""
    data = path.read_bytes()
    assert data[:8] == PNG_SIGNATURE, f"{path.name} is not a PNG"
    assert data[12:16] == b"IHDR"
    width, height = struct.unpack(">II", data[16:24])
    assert data.endswith(b"IEND\xaeB`\x82"), f"{path.name} is truncated"
    return width, height


def assert_png(fig, path, min_side=100, max_side=3000):
    assert isinstance(fig, Figure)
    assert path.exists() and path.stat().st_size > 1000
    width, height = png_size(path)
    assert min_side <= width <= max_side and min_side <= height <= max_side
    leftovers = [p.name for p in path.parent.iterdir() if p.name.endswith(".tmp")]
    assert not leftovers


def model(latent_dim=2):
    config = VAEConfig(input_dim=784, hidden_dims=(16,), latent_dim=latent_dim)
    params = init_params(config, np.random.default_rng(0), np.float32)
    return config, params


@pytest.fixture
def images():
    return np.random.default_rng(0).random((20, 784)).astype(np.float32)


def test_reconstructions(tmp_path, images):
    fig = plots.plot_reconstructions(tmp_path / "rec.png", images[:10], images[10:], n=8)
    assert_png(fig, tmp_path / "rec.png")


def test_without_a_path_a_figure_is_drawn_and_nothing_written(tmp_path, images, monkeypatch):
    monkeypatch.chdir(tmp_path)
    fig = plots.plot_samples(None, images)
    assert isinstance(fig, Figure) and fig.axes and not list(tmp_path.iterdir())


def test_samples(tmp_path, images):
    assert_png(plots.plot_samples(tmp_path / "samples.png", images, nrow=5),
               tmp_path / "samples.png")


def test_loss_curves_with_and_without_test_values(tmp_path):
    history = [{"epoch": e, "beta": min(1.0, e / 2), "train_loss": 200 / e, "train_recon": 190 / e,
                "train_kl": 10.0, "test_loss": 199 / e, "test_recon": 189 / e, "test_kl": 10.0}
               for e in (1, 2, 3)]
    assert_png(plots.plot_loss_curves(tmp_path / "loss.png", history), tmp_path / "loss.png")
    one_epoch_no_test = [{**history[0], "test_loss": None, "test_recon": None, "test_kl": None}]
    assert_png(plots.plot_loss_curves(tmp_path / "loss1.png", one_epoch_no_test),
               tmp_path / "loss1.png")
    with pytest.raises(ValueError, match="empty"):
        plots.plot_loss_curves(tmp_path / "loss2.png", [])


@pytest.mark.parametrize("latent_dim", [1, 2, 5])
def test_latent_scatter(tmp_path, latent_dim):
    rng = np.random.default_rng(0)
    mu = rng.standard_normal((300, latent_dim))
    labels = rng.integers(0, 10, 300)
    kl = np.arange(latent_dim, dtype=float)
    assert_png(latent_plots.plot_latent_scatter(tmp_path / "scatter.png", mu, labels,
                                                kl_per_dim=kl),
               tmp_path / "scatter.png")
    assert_png(latent_plots.plot_latent_scatter(tmp_path / "nolabels.png", mu, None),
               tmp_path / "nolabels.png")
    assert_png(latent_plots.plot_latent_scatter(tmp_path / "ellipses.png", mu, labels,
                                                log_var=mu * 0 - 2),
               tmp_path / "ellipses.png")


def test_the_legend_names_the_classes_under_the_label_kind():
    rng = np.random.default_rng(0)
    labels = np.array([0, 9, 3, 9, 0])
    names = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker",
             "Bag", "Ankle boot")
    fig = latent_plots.plot_latent_scatter(None, rng.standard_normal((5, 2)), labels,
                                           class_names=names, label_kind="class")
    legend = fig.axes[0].get_legend()
    assert legend.get_title().get_text() == "class"
    assert [t.get_text() for t in legend.get_texts()] == ["T-shirt/top", "Dress", "Ankle boot"]
    digits = latent_plots.plot_latent_scatter(None, rng.standard_normal((5, 2)),
                                              labels).axes[0].get_legend()
    assert digits.get_title().get_text() == "digit" \
        and [t.get_text() for t in digits.get_texts()] == ["0", "3", "9"]


def test_each_code_is_drawn_as_its_one_sigma_ellipse():
    rng = np.random.default_rng(1)
    mu, log_var = rng.standard_normal((40, 3)), rng.normal(-2, 0.5, (40, 3))
    fig = latent_plots.plot_latent_scatter(None, mu, None, log_var=log_var, dims=(0, 2),
                                           max_ellipses=25)
    ellipses = [c for c in fig.axes[0].collections if isinstance(c, PatchCollection)]
    assert len(ellipses) == 1 and len(ellipses[0].get_paths()) == 25
    # The unit-circle paths are scaled by each ellipse's transform: semi-axes σ_0 and σ_2, centre μ.
    for path, m, lv in zip(ellipses[0].get_paths(), mu, log_var):
        x, y = path.vertices[:, 0], path.vertices[:, 1]
        np.testing.assert_allclose([x.max() - x.min(), y.max() - y.min()],
                                   2 * np.exp(0.5 * lv[[0, 2]]), rtol=1e-6)
        np.testing.assert_allclose([(x.max() + x.min()) / 2, (y.max() + y.min()) / 2], m[[0, 2]],
                                   atol=1e-9)
    assert "1-σ ellipses for 25 test images" in fig.axes[0].get_title()
    with pytest.raises(ValueError, match="log_var must have mu's shape"):
        latent_plots.plot_latent_scatter(None, mu, None, log_var=log_var[:, :2])


def test_with_beta_not_1_the_loss_curves_also_show_the_elbo():
    history = [{"epoch": e, "beta": 4.0, "train_loss": 100 + 4 * e, "train_recon": 100.0,
                "train_kl": e, "test_loss": 101 + 4 * e, "test_recon": 101.0, "test_kl": e}
               for e in (1, 2)]
    labels = [line.get_label()
              for line in plots.plot_loss_curves(None, history, beta=4.0).axes[0].get_lines()]
    assert labels == ["train", "train −ELBO (β = 1)", "test", "test −ELBO (β = 1)"]
    elbo = plots.plot_loss_curves(None, history, beta=4.0).axes[0].get_lines()[1]
    assert list(elbo.get_ydata()) == [101.0, 102.0]  # recon + KL, not recon + 4·KL
    assert [line.get_label()
            for line in plots.plot_loss_curves(None, history, beta=1.0).axes[0].get_lines()] == \
        ["train", "test"]


def test_latent_scatter_picks_the_two_dims_with_the_largest_kl():
    mu = np.zeros((10, 5))
    dims, _ = latent_plots._choose_dims(mu, np.array([0.1, 3.0, 0.0, 5.0, 1.0]))
    assert dims == (1, 3)


def test_manifold(tmp_path):
    config, params = model(latent_dim=2)
    assert_png(latent_plots.plot_manifold(tmp_path / "manifold.png", params, config, n=6),
               tmp_path / "manifold.png")


def test_the_manifold_refuses_a_latent_space_that_is_not_2d(tmp_path):
    config, params = model(latent_dim=3)
    with pytest.raises(ValueError, match="2-D latent space; this model has latent_dim = 3"):
        latent_plots.plot_manifold(tmp_path / "manifold.png", params, config)
    assert not list(tmp_path.iterdir())


def test_interpolation(tmp_path, images):
    config, params = model(latent_dim=3)
    assert_png(latent_plots.plot_interpolation(tmp_path / "interp.png", params, config, images[:3],
                                               images[3:6], steps=7), tmp_path / "interp.png")
    assert_png(latent_plots.plot_interpolation(tmp_path / "one.png", params, config, images[0],
                                               images[1]),
               tmp_path / "one.png")


def test_traversal(tmp_path, images):
    config, params = model(latent_dim=4)
    kl = np.array([0.5, 2.0, 0.0, 1.0])
    assert_png(latent_plots.plot_traversal(tmp_path / "trav.png", params, config, images[0],
                                           kl_per_dim=kl),
               tmp_path / "trav.png")
    assert_png(latent_plots.plot_traversal(tmp_path / "trav2.png", params, config, images[:1],
                                           dims=[2], values=[-1.0, 0.0, 1.0]),
               tmp_path / "trav2.png")


@pytest.mark.parametrize("u, z", [(0.5, 0.0), (0.975, 1.959963984540054),
                                  (0.025, -1.959963984540054), (0.8413447460685429, 1.0),
                                  (1e-10, -6.361340902404056), (0.999, 3.090232306167813)])
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
    assert_png(plots.plot_samples(path, images), path)


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
    assert latent_plots._signed(-1.5, ".2f") == "−1.50" \
        and latent_plots._signed(0.0, ".2f") == "0.00"
