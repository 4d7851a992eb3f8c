"""`python -m tinyvae explore CKPT`: sliders over a saved model's latent space (the "smile slider").

    # a window (tinyvae/lab/figures/explorer.py):
    python -m tinyvae explore runs/mnist/checkpoint.npz
    python -m tinyvae explore runs/mnist/checkpoint.npz --image 7 --other 12 --sliders 10

One slider per latent dimension, largest KL first, starting at the code μ(x) of a test image,
and the decoded image following them; a second mode walks the line between the codes of two
test images. Without a display (no window can open: the Agg backend, a server, a notebook's
inline images) it says so and writes the same exploration as a traversal PNG instead; but
asked for a window (MPLBACKEND=TkAgg, QtAgg, ...) where none can open, it says why in one
line and exits with status 1, writing nothing. tests/test_explore_window.py drives the real
window on a virtual display (Xvfb), dragging a slider with the mouse.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import matplotlib

from ..lab.errors import UsageError
from ..lab.figures import latent_plots
from ..lab.figures.explorer import Explorer, dims_by_kl, has_display, opens_windows
from ..lab.training import runfolder
from . import saved
from .args import nonnegative_int, positive_int

WITHOUT_WINDOW = ("run it on a desktop (or under xvfb-run), or leave MPLBACKEND unset to write "
                  "what the sliders would show as a PNG")


class NoWindow(OSError):
    """A window was asked for (an interactive backend) and cannot open: one line, status 1."""


def build_parser():
    p = saved.parser("explore", "Sliders over a saved model's latent space, and the decoded image "
                     "following them.", data=True)
    p.add_argument("--sliders", type=positive_int, default=6, metavar="N",
                   help="how many latent dimensions get a slider, largest KL first")
    p.add_argument("--image", type=nonnegative_int, default=0, metavar="I",
                   help="the test image to start from (a)")
    p.add_argument("--other", type=nonnegative_int, default=1, metavar="J",
                   help="the test image to interpolate to (b)")
    p.add_argument("--png", type=Path, metavar="FILE",
                   help="without a display, the traversal PNG to write "
                        "(default: explore-image<I>.png beside CKPT)")
    return p


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)

    def body(say) -> int:
        model, png, data = saved.model_and_test_set(args, args.png, ".png", "--png")
        x_test = data.x_test
        for flag, i in (("--image", args.image), ("--other", args.other)):
            if i >= len(x_test):
                raise UsageError(f"{flag} {i}: the test set has {len(x_test)} images "
                                 f"(0..{len(x_test) - 1})")
        kl = saved.check_numbers(model, x_test)
        asked = matplotlib.get_backend()  # MPLBACKEND's, or the one matplotlib picked
        try:
            window = has_display()
        except ImportError as exc:  # the backend asked for needs a toolkit that is not installed
            raise NoWindow(f"matplotlib's backend {asked!r} cannot be used here ({exc}); "
                           f"{WITHOUT_WINDOW}") from None
        if not window and opens_windows(asked):
            where = "DISPLAY is not set" if not os.environ.get("DISPLAY") else "none could open"
            raise NoWindow(f"matplotlib's backend {asked!r} needs a display to open a window on "
                           f"({where}); {WITHOUT_WINDOW}")
        if not window:
            png = png or saved.beside(args.checkpoint, f"explore-image{args.image}.png")
            dims = dims_by_kl(kl, min(args.sliders, model.config.latent_dim))
            with runfolder.writing_into(png):
                latent_plots.plot_traversal(png, model.params, model.config, x_test[args.image],
                                            dims=dims, kl_per_dim=kl)
            say(f"explore: no display to open a window on (matplotlib's backend is "
                f"{matplotlib.get_backend()!r}); wrote what the sliders would show, as a traversal "
                f"of test image {args.image}: {png}")
            say("(where a window can open, e.g. on a desktop, or with MPLBACKEND=TkAgg or QtAgg, "
                "the sliders open)")
            return 0
        import matplotlib.pyplot as plt
        explorer = Explorer(model, x_test, n_sliders=args.sliders, index=args.image,
                            other=args.other)
        say(f"explore: {len(explorer.dims)} sliders (latent dims {explorer.dims}, "
            "largest KL first); close the window to end")
        plt.show()
        return 0

    return saved.run_verb(parser.prog, body)


if __name__ == "__main__":
    sys.exit(main())
