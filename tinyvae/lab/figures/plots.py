"""What people would rather see than read: the figures of a trained VAE, as PNG files.

This module draws the images and the training; tinyvae/lab/figures/latent_plots.py draws the latent
space with the same tools, which live here:

    plot_reconstructions   test images above their reconstructions
    plot_samples           a grid of images, e.g. decoded samples from the prior
    plot_loss_curves       total, reconstruction and KL per epoch, train and test
    plot_reproduction      a staged run (reproduce): −ELBO per pass, each stage's NLL and active
                           units, beside the paper's

    mosaic, grid_ticks     (N, D) images tiled into one 2-D array, and where its cells' centres are
    new_figure, show_grid  a figure on its own Agg canvas, and a mosaic shown in it on a fixed scale
    save_png, finish       the figure written atomically; what every plot function returns
    as_images, square_side the checks that an array holds square images

The figures are drawn on matplotlib's Agg canvas directly (Figure + FigureCanvasAgg), not
through pyplot: nothing is registered globally, so nothing needs closing, and the caller's
backend (a notebook's, say) is never switched. Each function returns the matplotlib Figure
(a notebook shows it inline) and, given a path, also writes it there as a PNG, atomically
(a temporary file in the same folder, then os.replace, so a reader never sees half a file);
path=None only draws.

Images are shown as the data stores them: intensity 1 (ink) white, 0 black, on a fixed
[0, 1] scale; values outside it (a Gaussian decoder's mean) are clipped for display.

Shapes: N images, D pixels (a square, 784 = 28 × 28).
"""

from __future__ import annotations

import math
import textwrap
from pathlib import Path

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import FixedFormatter, FixedLocator, MaxNLocator, NullLocator

from ..storage.files import write_atomically

DPI = 100
CELL_INCHES = 0.55  # the size of one 28 × 28 image in a figure
SEPARATOR = 0.45  # the gray of the lines between images


# ---- the tools: image grids, figures and atomic saving ----


def square_side(D: int, what: str = "images") -> int:
    """The side of a square image of D pixels (28 for 784); a ValueError if D is not a square."""
    side = math.isqrt(D)
    if side * side != D:
        raise ValueError(f"{what} must be square images to be drawn; got {D} pixels per image, "
                         "not a square number")
    return side


def as_images(x, name: str) -> np.ndarray:
    """x as float64 (N, D) square images; one image (D,) becomes (1, D)."""
    x = np.asarray(x, dtype=np.float64)
    if x.ndim == 1:
        x = x[None, :]
    if x.ndim != 2 or len(x) == 0:
        raise ValueError(f"{name} must be a non-empty array of images of shape (N, D), "
                         f"got shape {x.shape}")
    square_side(x.shape[1], name)
    return x


def mosaic(images: np.ndarray, ncol: int) -> np.ndarray:
    """Tile (N, D) images into one 2-D array, ncol per row, with 1-pixel separator lines."""
    images = np.clip(np.asarray(images, dtype=np.float64), 0.0, 1.0)
    N, D = images.shape
    side = square_side(D)
    nrow = -(-N // ncol)  # ceil
    cell = side + 1
    grid = np.full((nrow * cell + 1, ncol * cell + 1), SEPARATOR)
    for i, img in enumerate(images):
        r, c = divmod(i, ncol)
        grid[1 + r * cell:1 + r * cell + side,
             1 + c * cell:1 + c * cell + side] = img.reshape(side, side)
    return grid


def grid_ticks(n: int, side: int) -> np.ndarray:
    """The centres of n cells of a mosaic, in mosaic pixels: where row/column labels go."""
    return 1 + (side + 1) * np.arange(n) + (side - 1) / 2


def show_grid(ax, grid: np.ndarray) -> None:
    """Show a mosaic on the fixed [0, 1] scale (1 white), with no ticks and no frame."""
    ax.imshow(grid, cmap="gray", vmin=0.0, vmax=1.0, interpolation="nearest")
    ax.set_xticks([])
    ax.set_yticks([])
    for spine in ax.spines.values():
        spine.set_visible(False)


def new_figure(width: float, height: float, dpi: int = DPI) -> Figure:
    """A figure of width × height inches on its own Agg canvas."""
    fig = Figure(figsize=(width, height), dpi=dpi, layout="constrained")
    FigureCanvasAgg(fig)  # the Agg canvas renders the PNG; no pyplot, no global state
    return fig


def finish(fig: Figure, path) -> Figure:
    """What every plot function returns: the figure, its titles fitted to its width, written to
    path first unless path is None."""
    fit_titles(fig)
    if path is not None:
        save_png(fig, path)
    return fig


def fit_titles(fig: Figure) -> None:
    """Break every title wider than the figure at spaces into lines that fit (a grid of a few
    images is narrower than a sentence); a title that fits is left as it is."""
    renderer = fig.canvas.get_renderer()
    room = 0.96 * fig.bbox.width
    titles = [ax.title for ax in fig.axes] + [text for text in fig.texts if text is fig._suptitle]
    for title in titles:
        words = title.get_text()
        width = max(map(len, words.splitlines()), default=0)
        while width > 10 and title.get_window_extent(renderer).width > room:
            width -= 2
            title.set_text("\n".join(textwrap.fill(line, width) for line in words.splitlines()))


def save_png(fig: Figure, path, dpi: int = DPI) -> Path:
    """Write fig as a PNG at path, atomically (tinyvae/lab/storage/files.py)."""
    path = Path(path)
    if path.suffix.lower() != ".png":
        raise ValueError("figures are written as PNG; the path must end in .png, "
                         f"got {str(path)!r}")
    if not path.parent.is_dir():
        raise FileNotFoundError(f"cannot write {path}: the folder {path.parent} does not exist")
    return write_atomically(path, lambda f: fig.savefig(f, format="png", dpi=dpi))


# ---- images ----


def plot_reconstructions(path, x, x_rec, *, n: int = 10) -> Figure:
    """The first n images of x (top row) above their reconstructions x_rec (bottom row).

    x, x_rec (N, D) in [0, 1]; x_rec is what the caller reconstructed, typically the
    decoder's mean at one z ~ q(z|x) (vae.reconstruct).
    """
    x, x_rec = as_images(x, "x"), as_images(x_rec, "x_rec")
    if x.shape != x_rec.shape:
        raise ValueError(f"x and x_rec must have the same shape, got {x.shape} and {x_rec.shape}")
    n = min(n, len(x))
    grid = mosaic(np.concatenate([x[:n], x_rec[:n]]), ncol=n)
    fig = new_figure(max(4.0, CELL_INCHES * n + 1.2), 2 * CELL_INCHES + 0.8)
    ax = fig.add_subplot()
    show_grid(ax, grid)
    side = square_side(x.shape[1])
    ax.set_yticks(grid_ticks(2, side), ["data", "recon."])
    ax.tick_params(length=0)
    ax.set_title("Top: test images · bottom: reconstructions (decoder mean)")
    return finish(fig, path)


def plot_samples(path, images, *, nrow: int = 8,
                 title: str = "Samples from the prior: decoder mean at z ~ N(0, I)") -> Figure:
    """A grid of images, nrow per row (as torchvision's make_grid), e.g. vae.sample's output.

    images (N, D) in [0, 1].
    """
    images = as_images(images, "images")
    ncol = max(1, min(nrow, len(images)))
    rows = -(-len(images) // ncol)
    fig = new_figure(max(4.0, CELL_INCHES * ncol + 0.3), CELL_INCHES * rows + 0.5)
    ax = fig.add_subplot()
    show_grid(ax, mosaic(images, ncol))
    ax.set_title(title)
    return finish(fig, path)


# ---- training curves ----

_CURVES = (("loss", "Loss: reconstruction + β · KL"),
           ("recon", "Reconstruction: −log p(x|z)"),
           ("kl", "KL(q(z|x) ‖ p(z))"))


def plot_loss_curves(path, history, *, beta: float | None = None) -> Figure:
    """Total loss, reconstruction and KL per epoch, train and test: three panels, nats per image.

    history: the training loop's list of per-epoch dicts, with "epoch" and "train_loss",
    "train_recon", "train_kl", "test_loss", ... (test values may be None: not drawn).
    beta: the run's β (config.beta). When it is not 1 the loss is not −ELBO, so the first
    panel also draws −ELBO = recon + KL, the β = 1 number, beside it.
    """
    history = list(history)
    if not history:
        raise ValueError("history is empty; there is nothing to plot before the first epoch")
    epochs = [int(h["epoch"]) for h in history]
    fig = new_figure(12.0, 3.6)
    axes = fig.subplots(1, 3)
    for ax, (key, title) in zip(axes, _CURVES):
        for split, style in (("train", "o-"), ("test", "s--")):
            points = [(e, h.get(f"{split}_{key}")) for e, h in zip(epochs, history)]
            points = [(e, v) for e, v in points if v is not None]
            if points:
                ax.plot(*zip(*points), style, label=split, markersize=4)
            if key == "loss" and beta is not None and beta != 1:
                points = [(e, h.get(f"{split}_recon"), h.get(f"{split}_kl"))
                          for e, h in zip(epochs, history)]
                points = [(e, r + k) for e, r, k in points if r is not None and k is not None]
                if points:
                    ax.plot(*zip(*points), style, label=f"{split} −ELBO (β = 1)", markersize=3,
                            alpha=0.5)
        ax.set_title(title)
        ax.set_xlabel("epoch")
        if len(epochs) <= 12:
            ax.set_xticks(epochs)  # every epoch, and only whole ones, even for a single point
        else:
            ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(alpha=0.3)
        ax.legend()
    axes[0].set_ylabel("nats per image")
    betas = {h.get("beta") for h in history} - {None}
    if len(betas) > 1:
        fig.suptitle(f"Training curves (β warm-up from {min(betas):g} to {max(betas):g})")
    else:
        fig.suptitle("Training curves"
                     + (f" (β = {beta:g})" if beta is not None and beta != 1 else ""))
    return finish(fig, path)


def plot_reproduction(path, history, rows, *, stage_ends: list[int], paper_nll: float,
                      paper_active_units: int | None, title: str) -> Figure:
    """A staged run beside its paper: −ELBO per epoch, NLL = −L_k and active units per stage.

    Left, on a logarithmic axis of passes over the training data (one pass = one epoch),
    across the whole schedule (`stage_ends`: the last epoch of each of the recipe's stages,
    drawn as thin vertical lines, so a partial run shows how much is left): the training
    −ELBO of every epoch (the mean over its batches, while the model was still learning)
    and the test −ELBO after it; at the end of each completed stage, the test NLL = −L_k
    (docs/02-variational-inference.md eq. (12)); and the paper's NLL, a dashed line, which
    is its value after all the stages. Right: the active units after each stage beside the
    paper's count. `history` is the run's per-epoch list (epochs beyond the last completed
    stage are drawn too: they ran); `rows` are recipes.stage_summary's, one per completed
    stage. The title says how many of the stages ran.
    """
    history = list(history)
    if not history:
        raise ValueError("history is empty; there is nothing to plot before the first epoch")
    n_stages = len(stage_ends)
    fig = new_figure(11.0, 4.4)
    left, right = fig.subplots(1, 2, width_ratios=[3, 1])
    _draw_passes(left, history, rows, paper_nll, n_stages)
    _mark_stage_ends(left, stage_ends, max(int(h["epoch"]) for h in history))
    _draw_active_units(right, rows, n_stages, paper_active_units)
    fig.suptitle(f"{title}: {len(rows)} of {n_stages} stages"
                 + ("" if len(rows) == n_stages else " (partial)"))
    return finish(fig, path)


def _draw_passes(ax, history, rows, paper_nll: float, n_stages: int) -> None:
    """plot_reproduction's left panel: the −ELBO per epoch and the NLL per stage, on log passes."""
    epochs = [int(h["epoch"]) for h in history]
    train = [h["train_loss"] for h in history]
    test = [(e, h["test_loss"]) for e, h in zip(epochs, history) if h.get("test_loss") is not None]
    ax.plot(epochs, train, color="0.6", linewidth=0.8,
            label="train −ELBO (mean over the epoch's batches)")
    if test:
        ax.plot(*zip(*test), color="tab:blue", linewidth=0.8, label="test −ELBO")
    nll = [-r["iw_bound"] for r in rows]
    if rows:
        ends = [r["last_epoch"] for r in rows]
        ax.plot(ends, nll, "o-", color="black", markersize=5,
                label=f"test NLL = $-\\mathcal{{L}}_{{{rows[-1]['iw_k']}}}$ "
                      "at the end of each stage")
        # above and to the right: the line falls away below, the ELBO is higher
        for e, v in zip(ends, nll):
            ax.annotate(f"{v:.2f}", (e, v), textcoords="offset points", xytext=(4, 4), fontsize=8)
    ax.axhline(paper_nll, color="tab:red", linestyle="--", linewidth=1.2,
               label=f"paper, after all {n_stages} stages: {paper_nll:g}")
    ax.set_xscale("log")
    # Every number drawn is in range, except the first epochs' train −ELBO above the test
    # curve, cut off at the top so that the stages' differences are not squeezed flat.
    low = min([paper_nll, *nll, *train, *(v for _, v in test)])
    high = max([paper_nll, *nll, *(v for _, v in test)] if test else [paper_nll, *nll, *train])
    ax.set_ylim(low - 2.0, high + 2.0)
    ax.set_xlabel("passes over the training data (epochs), log scale")
    ax.set_ylabel("nats per image")
    ax.grid(alpha=0.3, axis="y")
    ax.legend(fontsize=8, loc="upper right")  # the upper right is empty: the curves fall


def _mark_stage_ends(ax, stage_ends: list[int], last_epoch: int) -> None:
    """A thin line at the end of every stage of the schedule, numbered on a top axis; the x range
    runs to the schedule's end (or the history's, if longer), so a partial run shows what is
    left."""
    for e in stage_ends:  # where each stage ends and the next one's lower rate begins
        ax.axvline(e, color="0.8", linewidth=0.8, zorder=0)
    ax.set_xlim(0.8, max(stage_ends[-1], last_epoch) * 1.3)
    top = ax.twiny()  # the same logarithmic axis, with the stages' numbers for ticks
    top.set_xscale("log")
    top.set_xlim(ax.get_xlim())
    top.xaxis.set_major_locator(FixedLocator(stage_ends))
    top.xaxis.set_major_formatter(FixedFormatter([str(i) for i in range(len(stage_ends))]))
    top.xaxis.set_minor_locator(NullLocator())
    top.tick_params(labelsize=8)
    top.set_xlabel("end of stage", fontsize=8)


def _draw_active_units(ax, rows, n_stages: int, paper_active_units: int | None) -> None:
    """plot_reproduction's right panel: the active units after each stage, and the paper's."""
    if rows:
        ax.plot([r["stage"] for r in rows], [r["active_units"] for r in rows], "o-", color="black",
                markersize=5, label="this run")
    if paper_active_units is not None:
        ax.axhline(paper_active_units, color="tab:red", linestyle="--", linewidth=1.2,
                   label=f"paper, all stages: {paper_active_units}")
    ax.set_xlim(-0.5, n_stages - 0.5)
    ax.set_xticks(range(n_stages))
    ax.set_ylim(bottom=0)
    ax.set_xlabel("stage")
    ax.set_title("active units", fontsize=10)
    ax.grid(alpha=0.3)
    # nothing to name before stage 0 ends, without a paper count
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=8)
