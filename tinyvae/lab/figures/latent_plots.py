"""The latent space in pictures: where the codes lie, and what the decoder makes of each z.

    plot_latent_scatter    the codes μ of test images, coloured by label; or each q(z|x) as a
                           1-σ ellipse: distributions, not points (the lecture's central picture)
    plot_manifold          for Z = 2, the decoder over a grid of z (Kingma & Welling, Fig. 4)
    plot_interpolation     decoded steps on the straight line between the codes of two images
    plot_traversal         one latent dimension varied at a time (the lecture's "smile slider")

Drawn and saved with the tools of tinyvae/lab/figures/plots.py (image mosaics on an Agg canvas, PNGs
written atomically); each function returns the matplotlib Figure, written to `path` unless
that is None. A latent dimension is named z_j with j its index in the code vector, counting
from 0.

Shapes: N images, P pairs, T steps, D pixels (a square, 784 = 28 × 28), Z latent.
"""

from __future__ import annotations

import math

import numpy as np
from matplotlib.collections import PatchCollection
from matplotlib.figure import Figure
from matplotlib.patches import Ellipse

from ... import vae
from ...config import VAEConfig
from .plots import (
    CELL_INCHES,
    as_images,
    finish,
    grid_ticks,
    mosaic,
    new_figure,
    show_grid,
    square_side,
)


def _signed(v: float, spec: str) -> str:
    """A number formatted with a typographic minus sign, as matplotlib's own tick labels.

    Zero is written without a sign, even where the spec asks for one ("+0" reads oddly).
    """
    if float(v) == 0.0:
        return format(0.0, spec.replace("+", ""))
    return format(float(v), spec).replace("-", "−")


def _dim_label(j: int, kl_per_dim) -> str:
    if kl_per_dim is None:
        return f"z_{j}"
    return f"z_{j} (KL {float(kl_per_dim[j]):.1f} nats)"


# ---- where the codes lie ----


def _choose_dims(mu, kl_per_dim):
    """The two dimensions to scatter: those with the largest KL, else the largest variance of μ."""
    Z = mu.shape[1]
    if Z == 2:
        return (0, 1), "the only two"
    if kl_per_dim is not None:
        order = np.argsort(-np.asarray(kl_per_dim), kind="stable")
        return tuple(int(j) for j in sorted(order[:2])), "the two with the largest KL"
    order = np.argsort(-mu.var(axis=0), kind="stable")
    return tuple(int(j) for j in sorted(order[:2])), "the two whose μ varies most"


def _scatter_dims(mu, labels, dims, kl_per_dim):
    """Check plot_latent_scatter's arguments; returns (labels or None, dims to show, how they
    were chosen)."""
    N, Z = mu.shape
    if labels is not None:
        labels = np.asarray(labels)
        if labels.shape != (N,):
            raise ValueError(f"labels must have shape ({N},) to match mu, got {labels.shape}")
    if kl_per_dim is not None and np.shape(kl_per_dim) != (Z,):
        raise ValueError(f"kl_per_dim must have shape ({Z},), one value per latent dimension, "
                         f"got {np.shape(kl_per_dim)}")
    if dims is None and Z == 1:
        return labels, (0,), "the only one"
    if dims is None:
        return labels, *_choose_dims(mu, kl_per_dim)
    dims = tuple(int(j) for j in dims)
    if len(dims) != 2 or not all(0 <= j < Z for j in dims):
        raise ValueError(f"dims must be two latent dimensions in 0..{Z - 1}, got {dims}")
    return labels, dims, "chosen"


def _label_names(labels, class_names) -> dict:
    """label value -> the legend's text: the class name if there is one, else the number."""
    classes = np.unique(labels)
    if class_names is None:
        return {c: str(c) for c in classes}
    return {c: class_names[int(c)] if 0 <= int(c) < len(class_names) else str(c) for c in classes}


def _draw_ellipses(ax, mu, std, dims, colours) -> None:
    """Each code's q(z|x) as its 1-σ ellipse: centre μ, semi-axes σ_i and σ_j (axis-aligned, since
    q(z|x) has a diagonal covariance)."""
    i, j = dims
    patches = [Ellipse((m[i], m[j]), width=2 * s[i], height=2 * s[j]) for m, s in zip(mu, std)]
    ax.add_collection(PatchCollection(patches, facecolors=colours, edgecolors=colours, alpha=0.18,
                                      linewidths=0.6))
    lo, hi = (mu - std)[:, dims].min(axis=0), (mu + std)[:, dims].max(axis=0)  # (2,) each
    ax.update_datalim([lo, hi])  # the ellipses, not only their centres, must fit


def plot_latent_scatter(path, mu, labels=None, *, log_var=None, dims=None, kl_per_dim=None,
                        class_names=None, label_kind: str = "digit",
                        max_ellipses: int = 300) -> Figure:
    """The codes μ(x) of test images as points, coloured by label; with log_var, as distributions.

    mu (N, Z), labels (N,) ints or None; class_names[c] names label c in the legend (else the
    number), under the title label_kind. For Z > 2, two dimensions are shown: `dims`, or else
    the two with the largest KL (kl_per_dim, from evaluate.kl_per_dimension): these carry the
    most information about the image. log_var (N, Z): draw each q(z|x) = N(μ, diag σ²) as its
    1-σ ellipse, for the first max_ellipses images: where an autoencoder has a point per image,
    the VAE has a region, and the regions of neighbours overlap.
    """
    mu = np.asarray(mu, dtype=np.float64)
    if mu.ndim != 2 or len(mu) == 0:
        raise ValueError(f"mu must be a non-empty array of shape (N, Z), got shape {mu.shape}")
    if log_var is not None and np.shape(log_var) != mu.shape:
        raise ValueError(f"log_var must have mu's shape {mu.shape}, got {np.shape(log_var)}")
    labels, dims, how = _scatter_dims(mu, labels, dims, kl_per_dim)
    if log_var is not None and len(dims) == 2:  # the ellipses of the first max_ellipses codes
        n = max(1, int(max_ellipses))
        mu, std, labels = mu[:n], np.exp(0.5 * np.asarray(log_var, dtype=np.float64)[:n]), \
            None if labels is None else labels[:n]
    N, Z = mu.shape
    fig = new_figure(6.6, 5.4)
    ax = fig.add_subplot()
    size = 4 if N > 2000 else 12
    if len(dims) == 1:  # one latent dimension: spread the points vertically by label
        xs = mu[:, 0]
        ys = ((labels if labels is not None else np.zeros(N))
              + np.random.default_rng(0).uniform(-0.3, 0.3, N))
        ax.set_ylabel("label (jittered)")  # the jitter is for display only
    else:
        xs, ys = mu[:, dims[0]], mu[:, dims[1]]
        ax.set_ylabel(_dim_label(dims[1], kl_per_dim))
    ax.set_xlabel(_dim_label(dims[0], kl_per_dim))
    names = _label_names(labels, class_names) if labels is not None else {None: None}
    # a label keeps its colour
    colour_of = {c: (f"C{int(c) % 10}" if c is not None else "tab:blue") for c in names}
    if log_var is not None and len(dims) == 2:
        _draw_ellipses(ax, mu, std, dims,
                       [colour_of[c] for c in (labels if labels is not None else [None] * N)])
    for c, name in names.items():
        sel = labels == c if c is not None else slice(None)
        ax.scatter(xs[sel], ys[sel], s=size, alpha=0.6, color=colour_of[c], linewidths=0,
                   label=name)
    if labels is not None:
        ax.legend(title=label_kind, loc="center left", bbox_to_anchor=(1.01, 0.5),
                  markerscale=12 / size * 1.5, frameon=False)
    ax.set_aspect("equal" if len(dims) == 2 else "auto", adjustable="datalim")
    ax.grid(alpha=0.3)
    shown = (f"latent dims {dims[0]} and {dims[1]}, {how}" if len(dims) == 2
             else "the one latent dim")
    ellipses = log_var is not None and len(dims) == 2
    what = "q(z|x) = N(μ, σ²) as 1-σ ellipses" if ellipses else "Means μ(x) of q(z|x)"
    ax.set_title(f"{what} for {N:,} test images\n({shown} of Z = {Z})")
    return finish(fig, path)


# ---- what the decoder makes of each z ----


def inverse_normal_cdf(u):
    """Φ⁻¹(u), the quantile function of N(0, 1), for u in (0, 1); float or array in, same out.

    Φ(z) = ½ erfc(−z/√2) is increasing, so Φ⁻¹(u) is found by bisection: keep an interval
    [lo, hi] with Φ(lo) < u ≤ Φ(hi) and halve it. 100 halvings of [−40, 40] reach the
    spacing of floating-point numbers, so the result is as exact as Φ itself
    (Φ⁻¹(0.975) = 1.959963984540054). Slow, but the plots need a few dozen values.
    """
    u_arr = np.asarray(u, dtype=np.float64)
    if not np.all((u_arr > 0) & (u_arr < 1)):
        raise ValueError("inverse_normal_cdf needs probabilities strictly between 0 and 1, "
                         f"got {u!r}")

    def phi(z):
        return 0.5 * math.erfc(-z / math.sqrt(2.0))

    def one(p):
        lo, hi = -40.0, 40.0  # Φ(−40) ≈ 4e−350 is below every positive double
        for _ in range(100):
            mid = 0.5 * (lo + hi)
            if phi(mid) < p:
                lo = mid
            else:
                hi = mid
        return 0.5 * (lo + hi)

    out = np.array([one(float(p)) for p in u_arr.ravel()]).reshape(u_arr.shape)
    return float(out) if out.ndim == 0 else out


def plot_manifold(path, params, config: VAEConfig, *, n: int = 20) -> Figure:
    """For a 2-D latent space: the decoder's mean on an n × n grid of z (Kingma & Welling, Fig. 4).

    The grid is evenly spaced in probability, not in z: z_j = Φ⁻¹(u) for u = (i + ½)/n,
    so each cell covers the same prior mass and the grid reaches into the tails as far
    as the prior puts samples there. z_0 grows to the right, z_1 upwards.
    """
    if config.latent_dim != 2:
        raise ValueError(f"plot_manifold draws a 2-D latent space; this model has latent_dim = "
                         f"{config.latent_dim} (use plot_traversal or plot_latent_scatter instead)")
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 2:
        raise ValueError(f"n must be an integer >= 2 (grid points per axis), got {n!r}")
    square_side(config.input_dim, "the model's outputs")
    q = inverse_normal_cdf((np.arange(n) + 0.5) / n)  # (n,) increasing
    z0, z1 = np.meshgrid(q, q[::-1])  # rows from the top: z_1 decreasing
    z = np.stack([z0.ravel(), z1.ravel()], axis=1)  # (n², 2), row-major like the mosaic
    images = vae.decode(params, z, config)  # (n², D)
    fig = new_figure(CELL_INCHES * 0.6 * n + 1.0, CELL_INCHES * 0.6 * n + 1.0)
    ax = fig.add_subplot()
    show_grid(ax, mosaic(images, ncol=n))
    span = f"from {_signed(q[0], '.2f')} to {_signed(q[-1], '.2f')} →"
    ax.set_xlabel(f"z_0 = Φ⁻¹(u), {span}")
    ax.set_ylabel(f"z_1 = Φ⁻¹(u), {span}")
    ax.set_title("Decoded latent space: decoder mean on a grid\nevenly spaced in prior probability")
    return finish(fig, path)


def plot_interpolation(path, params, config: VAEConfig, x_a, x_b, *, steps: int = 10) -> Figure:
    """Decoded codes on the straight line from μ(x_a) to μ(x_b), one row per pair of images.

        z(t) = (1 − t) μ(x_a) + t μ(x_b),   t = 0, 1/(steps−1), ..., 1

    x_a, x_b (P, D) or (D,). Each row shows x_a, then the decoded steps, then x_b.
    """
    x_a, x_b = as_images(x_a, "x_a"), as_images(x_b, "x_b")
    if x_a.shape != x_b.shape:
        raise ValueError("x_a and x_b must have the same shape (pairs of images), "
                         f"got {x_a.shape} and {x_b.shape}")
    if isinstance(steps, bool) or not isinstance(steps, (int, np.integer)) or steps < 2:
        raise ValueError(f"steps must be an integer >= 2, got {steps!r}")
    mu_a, _ = vae.encode(params, x_a, config)  # (P, Z)
    mu_b, _ = vae.encode(params, x_b, config)  # (P, Z)
    t = np.linspace(0.0, 1.0, steps)[None, :, None]  # (1, T, 1)
    z = (1 - t) * mu_a[:, None, :] + t * mu_b[:, None, :]  # (P, T, Z)
    P, D = x_a.shape
    decoded = vae.decode(params, z.reshape(P * steps, -1), config).reshape(P, steps, D)
    rows = np.concatenate([x_a[:, None], decoded, x_b[:, None]], axis=1)  # (P, T + 2, D)
    ncol = steps + 2
    fig = new_figure(CELL_INCHES * ncol + 0.6, CELL_INCHES * P + 0.8)
    ax = fig.add_subplot()
    show_grid(ax, mosaic(rows.reshape(P * ncol, D), ncol=ncol))
    ticks = grid_ticks(ncol, square_side(D))
    ax.set_xticks([ticks[0], ticks[1], ticks[-2], ticks[-1]], ["x_a", "t = 0", "t = 1", "x_b"])
    ax.tick_params(length=0)
    ax.set_title("Interpolation: decoded (1 − t)·μ(x_a) + t·μ(x_b); "
                 "ends: the test images themselves")
    return finish(fig, path)


def _traversal_dims(dims, kl_per_dim, Z: int, max_dims: int) -> list[int]:
    """The rows of plot_traversal: `dims` checked, or by default the largest KL first (else
    index order)."""
    if kl_per_dim is not None and np.shape(kl_per_dim) != (Z,):
        raise ValueError(f"kl_per_dim must have shape ({Z},), got {np.shape(kl_per_dim)}")
    if dims is None:
        order = (np.argsort(-np.asarray(kl_per_dim), kind="stable") if kl_per_dim is not None
                 else np.arange(Z))
        return [int(j) for j in order[:max_dims]]
    dims = [int(j) for j in dims]
    if not dims or not all(0 <= j < Z for j in dims):
        raise ValueError(f"dims must be latent dimensions in 0..{Z - 1}, got {dims}")
    return dims


def plot_traversal(path, params, config: VAEConfig, x, *, dims=None, values=None,
                   kl_per_dim=None, max_dims: int = 16) -> Figure:
    """Vary one latent dimension at a time, the others held at the image's code μ(x).

    Row j decodes z = μ(x) with z_j replaced by each of `values` (by default -3 to 3 in steps of
    0.75; the prior's N(0, 1) puts 99.7 % of its mass in ±3): what that one dimension controls,
    the lecture's "smile slider". A dimension the model does not use (KL ≈ 0) gives a constant row.
    x: one image (D,) or (1, D). dims: which rows; by default the dims with the largest
    KL first if kl_per_dim is given, else in index order, at most max_dims of them.
    """
    x = as_images(x, "x")[:1]
    Z = config.latent_dim
    if values is None:
        values = np.linspace(-3, 3, 9)
    values = np.asarray(values, dtype=np.float64).ravel()
    if values.size == 0:
        raise ValueError("values must hold at least one value for the varied dimension")
    dims = _traversal_dims(dims, kl_per_dim, Z, max_dims)
    mu, _ = vae.encode(params, x, config)  # (1, Z)
    R, V = len(dims), len(values)
    z = np.repeat(mu, R * V, axis=0).reshape(R, V, Z)  # (R, V, Z)
    for r, j in enumerate(dims):
        z[r, :, j] = values
    images = vae.decode(params, z.reshape(-1, Z), config)  # (R·V, D)
    fig = new_figure(CELL_INCHES * V + 2.0, CELL_INCHES * R + 1.0)
    ax = fig.add_subplot()
    show_grid(ax, mosaic(images, ncol=V))
    side = square_side(config.input_dim)
    ax.set_yticks(grid_ticks(R, side), [_dim_label(j, kl_per_dim) for j in dims])
    ax.set_xticks(grid_ticks(V, side), [_signed(v, "+.3g") for v in values])
    ax.tick_params(length=0)
    ax.set_xlabel("value of the varied dimension")
    shown = ""
    if len(dims) < Z:
        shown = (f"\n({len(dims)} of the Z = {Z} dims"
                 f"{', largest KL first' if kl_per_dim is not None else ''})")
    ax.set_title("Latent traversal: one dimension varied per row,\n"
                 f"the others held at the image's code μ(x){shown}")
    return finish(fig, path)
