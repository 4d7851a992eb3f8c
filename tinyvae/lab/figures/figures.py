"""Every figure of a run, drawn from its model and its test set.

The training command draws them at the end of a run; `python -m tinyvae figures CKPT` redraws
them from the checkpoint, the same files from the same numbers. Each figure is one function of
tinyvae/lab/figures/plots.py or latent_plots.py.

Shapes: M test images, D data, Z latent.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ...config import VAEConfig
from ...vae import encode, reconstruct, sample
from . import latent_plots, plots

FIGURE_NAMES = ("reconstructions.png", "samples.png", "loss_curves.png", "latent_scatter.png",
                "latent_ellipses.png", "manifold.png",  # manifold: Z = 2 only
                "interpolation.png", "traversal.png")


def make_figures(out: Path, params, config: VAEConfig, x_test, y_test, history, kl_per_dim,
                 seed: int, *, class_names=None, label_kind: str = "digit") -> list[Path]:
    """Reconstructions, samples, loss curves, the latent space as points and as distributions,
    interpolations and a traversal (and the manifold for Z = 2), from the test set x_test (M, D)
    and its labels y_test (M,) or None, named by class_names; returns the paths written."""
    out = Path(out)
    rng = np.random.default_rng([seed, 7])  # figures draw their own noise, apart from training
    x = x_test[:10]
    x_rec = np.clip(reconstruct(params, x, rng, config), 0.0, 1.0)
    mu, log_var = encode(params, x_test, config)  # (M, Z) each
    labels = dict(class_names=class_names, label_kind=label_kind, kl_per_dim=kl_per_dim)
    pairs = min(5, len(x_test) // 2)
    figures = {
        "reconstructions.png": lambda p: plots.plot_reconstructions(p, x, x_rec, n=len(x)),
        "samples.png": lambda p: plots.plot_samples(
            p, np.clip(sample(params, 64, rng, config), 0.0, 1.0)),
        "loss_curves.png": lambda p: plots.plot_loss_curves(p, history, beta=config.beta),
        "latent_scatter.png": lambda p: latent_plots.plot_latent_scatter(p, mu, y_test, **labels),
        "latent_ellipses.png": lambda p: latent_plots.plot_latent_scatter(
            p, mu, y_test, log_var=log_var, **labels),
        "manifold.png": lambda p: latent_plots.plot_manifold(p, params, config),
        "interpolation.png": lambda p: latent_plots.plot_interpolation(
            p, params, config, x_test[:pairs], x_test[pairs:2 * pairs]),
        "traversal.png": lambda p: latent_plots.plot_traversal(
            p, params, config, x_test[0], kl_per_dim=kl_per_dim),
    }
    if config.latent_dim != 2:
        del figures["manifold.png"]
    if not history:  # a run of 0 epochs has no curves to draw
        del figures["loss_curves.png"]
    if pairs == 0:  # one test image: nothing to interpolate between
        del figures["interpolation.png"]
    for name, draw in figures.items():  # in this order: the noise of reconstructions, then samples
        draw(out / name)
    return [out / name for name in figures]
