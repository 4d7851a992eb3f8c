"""Every figure a user gets has all its text inside its canvas: no title cut at the ends, no
label off the edge. Each figure is drawn as the commands draw it (the training run's figures,
sample's grid, reconstruct's, the reproduction's plot, explore's traversal and window), at the
sizes users ask for, and every visible piece of text is measured against the PNG's bounds."""

from __future__ import annotations

import numpy as np
import pytest
from matplotlib.figure import Figure
from matplotlib.text import Text

import tinyvae
from tinyvae.commands import sample
from tinyvae.config import VAEConfig, init_params
from tinyvae.lab.datasets.data import CLASS_NAMES
from tinyvae.lab.figures import latent_plots, plots
from tinyvae.lab.figures.explorer import Explorer
from tinyvae.lab.figures.figures import make_figures
from tinyvae.lab.training.recipes import IWAE_VAE, stage_summary


def text_outside(fig: Figure) -> list[str]:
    """What of fig's drawn text reaches beyond its canvas (by more than a pixel): the titles,
    the axes' labels and drawn tick labels, texts and legends, and the figure's own."""
    if not hasattr(fig.canvas, "get_renderer"):
        plots.FigureCanvasAgg(fig)
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    width, height = fig.bbox.width, fig.bbox.height
    pieces = [(text.get_text(), text) for text in fig.texts]
    pieces += [("a legend", legend) for legend in fig.legends]
    for ax in fig.axes:
        titles = (ax.title, ax._left_title, ax._right_title)
        pieces += [(title.get_text(), title) for title in titles]
        pieces += [(f"the {name} of {ax.get_title()!r}", axis)
                   for name, axis in (("x axis", ax.xaxis), ("y axis", ax.yaxis))]
        pieces += [(text.get_text(), text) for text in ax.texts]
        pieces += [("a legend", ax.get_legend())] if ax.get_legend() else []
    outside = []
    for what, artist in pieces:
        empty = isinstance(artist, Text) and not artist.get_text().strip()
        if not artist.get_visible() or empty:
            continue
        box = artist.get_tightbbox(renderer) if not isinstance(artist, Text) else \
            artist.get_window_extent(renderer)
        if box is not None and (box.x0 < -1 or box.y0 < -1 or box.x1 > width + 1
                                or box.y1 > height + 1):
            outside.append(f"{what!r} at x {box.x0:.0f}..{box.x1:.0f} of {width:.0f}, "
                           f"y {box.y0:.0f}..{box.y1:.0f} of {height:.0f}")
    return outside


@pytest.fixture
def drawn(monkeypatch):
    """The figures the code under test writes, kept as they are saved."""
    figures, save = [], plots.save_png
    monkeypatch.setattr(plots, "save_png",
                        lambda fig, path, **kw: figures.append(fig) or save(fig, path, **kw))
    return figures


def trained_looking(latent_dim: int):
    config = VAEConfig(input_dim=784, hidden_dims=(16,), latent_dim=latent_dim)
    return config, init_params(config, np.random.default_rng(0), np.float32)


def history(epochs: int) -> list[dict]:
    return [{"epoch": e, "train_loss": 200.0 / e, "train_recon": 180.0 / e, "train_kl": 20.0,
             "beta": 1.0, "test_loss": 190.0 / e, "test_recon": 170.0 / e, "test_kl": 20.0,
             "seconds": 3.0, "samples_per_sec": 2e4, "elapsed": 3.0 * e}
            for e in range(1, epochs + 1)]


@pytest.mark.slow
@pytest.mark.parametrize("latent_dim, names",
                         [(2, None), (20, None), (5, CLASS_NAMES["fashion-mnist"])])
def test_the_training_runs_figures(tmp_path, drawn, latent_dim, names):
    config, params = trained_looking(latent_dim)
    rng = np.random.default_rng(1)
    x = (rng.random((200, 784)) < 0.3).astype(np.float32)
    labels = rng.integers(0, 10, 200)
    kl = rng.random(latent_dim)
    make_figures(tmp_path, params, config, x, labels, history(10), kl, 0, class_names=names,
                 label_kind="class" if names else "digit")
    assert len(drawn) >= 7
    for fig in drawn:
        assert not text_outside(fig)


@pytest.mark.parametrize("n", [1, 4, 16, 64, 100])
def test_samples_as_the_sample_command_draws_them(tmp_path, drawn, n):
    config, params = trained_looking(20)
    model = tinyvae.Model(config, params).save(tmp_path / "model.npz")
    png = str(tmp_path / "s.png")
    assert sample.main([str(model), "--n", str(n), "--seed", "12345", "--png", png]) == 0
    fig, = drawn
    assert not text_outside(fig)


@pytest.mark.parametrize("n", [1, 3, 10, 20])
def test_reconstructions_as_the_reconstruct_command_draws_them(n):
    x = np.random.default_rng(0).random((n, 784))
    assert not text_outside(plots.plot_reconstructions(None, x, x, n=n))


@pytest.mark.parametrize("epochs", [1, 13, 3280])
def test_the_reproductions_plot(epochs):
    records = history(epochs)
    ends = [s["last_epoch"] for s in IWAE_VAE.stages]
    for record in records:
        if record["epoch"] in ends:
            record.update(iw_bound=-90.0, iw_k=5000, active_units=20, eval_seconds=100.0)
    rows = stage_summary(IWAE_VAE, records)
    variant = IWAE_VAE.variants["dynamic"]
    fig = plots.plot_reproduction(None, records, rows, stage_ends=ends,
                                  paper_nll=variant.paper_nll,
                                  paper_active_units=variant.paper_active_units,
                                  title="iwae-vae (dynamic binarization) beside "
                                        + variant.paper_source)
    assert not text_outside(fig)


@pytest.mark.parametrize("latent_dim, sliders", [(2, 6), (20, 6), (50, 10)])
def test_explores_traversal_and_window(latent_dim, sliders):
    config, params = trained_looking(latent_dim)
    x = (np.random.default_rng(2).random((5, 784)) < 0.3).astype(np.float32)
    kl = np.random.default_rng(3).random(latent_dim)
    assert not text_outside(latent_plots.plot_traversal(None, params, config, x[0], kl_per_dim=kl))
    window = Explorer(tinyvae.Model(config, params), x, n_sliders=sliders,
                      figure=Figure(figsize=(10, 6)))
    assert not text_outside(window.fig)
