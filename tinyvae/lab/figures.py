"""Every figure of a run, drawn from its model and its test set.

The training command draws them at the end of a run; the same function redraws them from a
checkpoint. Each figure is one function of tinyvae/lab/plots.py or latent_plots.py.

Shapes: M test images, D data, Z latent.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..vae import VAEConfig, encode, reconstruct, sample
from . import latent_plots, plots


def make_figures(out: Path, params, config: VAEConfig, x_test, y_test, history, kl_per_dim, seed: int) -> list[Path]:
    """Reconstructions, samples, loss curves, the latent space, interpolations and a traversal
    (and the manifold for Z = 2), from the test set x_test (M, D); returns the paths written."""
    rng = np.random.default_rng([seed, 7])  # figures draw their own noise, apart from training
    x = x_test[:10]
    x_rec = np.clip(reconstruct(params, x, rng, config), 0.0, 1.0)
    mu, _ = encode(params, x_test, config)  # (M, Z)
    paths = [
        plots.plot_reconstructions(out / "reconstructions.png", x, x_rec, n=len(x)),
        plots.plot_samples(out / "samples.png", np.clip(sample(params, 64, rng, config), 0.0, 1.0)),
        plots.plot_loss_curves(out / "loss_curves.png", history),
        latent_plots.plot_latent_scatter(out / "latent_scatter.png", mu, y_test, kl_per_dim=kl_per_dim),
    ]
    if config.latent_dim == 2:
        paths.append(latent_plots.plot_manifold(out / "manifold.png", params, config))
    pairs = min(5, len(x_test) // 2)
    paths.append(latent_plots.plot_interpolation(out / "interpolation.png", params, config,
                                                 x_test[:pairs], x_test[pairs:2 * pairs]))
    paths.append(latent_plots.plot_traversal(out / "traversal.png", params, config, x_test[0],
                                            kl_per_dim=kl_per_dim))
    return paths
