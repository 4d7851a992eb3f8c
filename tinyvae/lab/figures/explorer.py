"""The lecture's "smile slider": move a latent dimension, watch the decoded image change.

    explorer = Explorer(model, x_test)            # a window of matplotlib widgets
    explorer.sliders[0].set_val(2.0)              # what a drag of the first slider does
    explorer.shown()                              # the image on screen: model.decode(explorer.z())

Two modes, chosen with the radio buttons:

- sliders: one slider per latent dimension, those with the largest KL first (the dimensions
  that carry information about the image; a dimension with KL ≈ 0 changes nothing). They
  start at μ(x) of a test image; "next image" takes the next one, "reset" goes back to it.
- interpolate: a slider t from 0 to 1 walks the straight line z(t) = (1 − t)·μ(x_a) + t·μ(x_b)
  between the codes of two test images (shown beside it); the latent sliders follow z(t).

Built on matplotlib's widgets only (Slider, RadioButtons, Button), so it runs wherever
matplotlib opens a window; `has_display()` says whether it can. Headless (the Agg backend),
the same object works without a window: the tests move the sliders with set_val.

Shapes: M test images, D data (a square), Z latent.
"""

from __future__ import annotations

import matplotlib
import numpy as np
from matplotlib.widgets import Button, RadioButtons, Slider

from ... import evaluate
from .plots import square_side

MODES = ("sliders", "interpolate a → b")
RANGE = 3.0  # sliders span ±3: 99.7 % of the prior N(0, 1)


def opens_windows(backend: str) -> bool:
    """Whether a matplotlib backend is one that opens windows (not Agg, not a notebook's inline
    images)."""
    try:  # matplotlib >= 3.9
        from matplotlib.backends import BackendFilter, backend_registry
        interactive = backend_registry.list_builtin(BackendFilter.INTERACTIVE)
    except ImportError:
        interactive = matplotlib.rcsetup.interactive_bk
    return backend.lower() in {name.lower() for name in interactive}


def has_display() -> bool:
    """Whether a window can open: the backend pyplot settles on opens windows. (Asked for a
    window backend where there is no display, pyplot falls back to Agg, silently.)"""
    import matplotlib.pyplot  # noqa: F401  settles the backend
    return opens_windows(matplotlib.get_backend())


def dims_by_kl(kl_per_dim: np.ndarray, n: int) -> list[int]:
    """The n latent dimensions with the largest KL, largest first."""
    return [int(j) for j in np.argsort(-np.asarray(kl_per_dim), kind="stable")[:n]]


class Explorer:
    """A figure of sliders over `model`'s latent space, starting at the code of images[index].

    images (M, D): the test images to start from and to interpolate between (a = index,
    b = other). n_sliders: how many latent dimensions get a slider, by KL (all if fewer).
    """

    def __init__(self, model, images, *, n_sliders: int = 6, index: int = 0, other: int = 1,
                 figure=None):
        self.model = model
        self.images = evaluate.check_images(images, model.config, "images")  # (M, D)
        M, Z = len(self.images), model.config.latent_dim
        if not (0 <= index < M and 0 <= other < M):
            raise ValueError(f"image indexes must lie in 0..{M - 1}, got {index} and {other}")
        self.side = square_side(model.config.input_dim, "the model's images")
        self.kl = evaluate.kl_per_dimension(model.params, self.images, model.config)  # (Z,)
        self.dims = dims_by_kl(self.kl, min(n_sliders, Z))
        self.mu = model.encode(self.images)[0].astype(np.float64)  # (M, Z)
        self.a, self.b = index, other
        self.latent = self.mu[index].copy()  # (Z,): the code the sliders set
        self.mode = MODES[0]
        if figure is None:
            import matplotlib.pyplot as plt  # only here: a window needs pyplot's backend
            figure = plt.figure(figsize=(10, 6))
        self.fig = figure
        self._build()
        self.redraw()

    # ---- layout

    def _build(self) -> None:
        fig, n = self.fig, len(self.dims)
        self.ax_image = fig.add_axes([0.03, 0.30, 0.36, 0.60])
        self.ax_a = fig.add_axes([0.03, 0.05, 0.15, 0.2])
        self.ax_b = fig.add_axes([0.24, 0.05, 0.15, 0.2])
        for ax in (self.ax_image, self.ax_a, self.ax_b):
            ax.set_xticks([])
            ax.set_yticks([])
        blank = np.zeros((self.side, self.side))
        self.image = self.ax_image.imshow(blank, cmap="gray", vmin=0.0, vmax=1.0,
                                          interpolation="nearest")
        self.thumb_a = self.ax_a.imshow(blank, cmap="gray", vmin=0.0, vmax=1.0)
        self.thumb_b = self.ax_b.imshow(blank, cmap="gray", vmin=0.0, vmax=1.0)
        height = min(0.08, 0.62 / max(n, 1))
        self.sliders = []
        for r, j in enumerate(self.dims):
            ax = fig.add_axes([0.55, 0.90 - (r + 1) * height, 0.32, height * 0.7])
            slider = Slider(ax, f"z_{j} (KL {self.kl[j]:.1f})", -RANGE, RANGE,
                            valinit=float(self.latent[j]))
            slider.on_changed(lambda value, j=j: self._set_dim(j, value))
            self.sliders.append(slider)
        self.t = Slider(fig.add_axes([0.55, 0.20, 0.32, 0.04]), "t (a → b)", 0.0, 1.0, valinit=0.0)
        self.t.on_changed(lambda value: self.redraw())
        self.radio = RadioButtons(fig.add_axes([0.45, 0.03, 0.2, 0.12]), MODES)
        self.radio.on_clicked(self._set_mode)
        self.next_button = Button(fig.add_axes([0.68, 0.07, 0.12, 0.06]), "next image")
        self.next_button.on_clicked(
            lambda event: self.choose(self.b, (self.b + 1) % len(self.images)))
        self.reset_button = Button(fig.add_axes([0.82, 0.07, 0.1, 0.06]), "reset")
        self.reset_button.on_clicked(lambda event: self.choose(self.a, self.b))

    # ---- what the widgets do

    def _set_dim(self, j: int, value: float) -> None:
        self.latent[j] = value
        if self.mode == MODES[0]:
            self.redraw()

    def _set_mode(self, label: str) -> None:
        self.mode = label
        if label == MODES[0]:  # back to the sliders: start from where the line had got to
            self.latent = self.z().copy()
        self.redraw()

    def choose(self, a: int, b: int) -> None:
        """Start again from test image a (and interpolate towards b)."""
        self.a, self.b = a, b
        self.latent = self.mu[a].copy()
        self._show_sliders(self.latent)
        self.t.eventson = False
        self.t.set_val(0.0)
        self.t.eventson = True
        self.redraw()

    def _show_sliders(self, z: np.ndarray) -> None:
        """Move the sliders to z without running their callbacks (the line drives them)."""
        for slider, j in zip(self.sliders, self.dims):
            slider.eventson = False
            slider.set_val(float(np.clip(z[j], -RANGE, RANGE)))
            slider.eventson = True

    def z(self) -> np.ndarray:
        """The code on screen (Z,): the sliders' one, or the point t of the line from μ(x_a) to
        μ(x_b)."""
        if self.mode == MODES[0]:
            return self.latent
        t = self.t.val
        return (1 - t) * self.mu[self.a] + t * self.mu[self.b]  # (Z,)

    def shown(self) -> np.ndarray:
        """The decoded image on screen, (side, side), clipped to the display's [0, 1]."""
        return np.asarray(self.image.get_array())

    def redraw(self) -> None:
        z = self.z()
        if self.mode != MODES[0]:
            self._show_sliders(z)
        decoded = np.clip(self.model.decode(z), 0.0, 1.0)  # (D,)
        self.image.set_data(decoded.reshape(self.side, self.side))
        self.thumb_a.set_data(self.images[self.a].reshape(self.side, self.side))
        self.thumb_b.set_data(self.images[self.b].reshape(self.side, self.side))
        self.ax_a.set_title(f"a: test image {self.a}", fontsize=8)
        self.ax_b.set_title(f"b: test image {self.b}", fontsize=8)
        where = ("z: μ(a), with the sliders' values" if self.mode == MODES[0]
                 else f"z = (1 − t)·μ(a) + t·μ(b), t = {self.t.val:.2f}")
        self.ax_image.set_title(f"decoder mean at z\n({where})", fontsize=9)
        self.fig.canvas.draw_idle()
