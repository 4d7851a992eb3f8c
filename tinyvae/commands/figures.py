"""`python -m tinyvae figures CKPT`: every figure of a run, redrawn from its checkpoint.

    python -m tinyvae figures runs/mnist/checkpoint.npz                 # into runs/mnist/
    python -m tinyvae figures runs/mnist/checkpoint.npz --out figs/     # somewhere else

The same function that the training command draws them with (tinyvae/lab/figures/figures.py),
from the checkpoint's parameters and history and the run's test set
(tinyvae/lab/training/run_settings.py), with the run's seed: the same figures, pixel for pixel.
It holds the folder it writes into, as a run does: a run training there is not overwritten.
"""

from __future__ import annotations

import sys
from pathlib import Path

from ..lab.figures.figures import make_figures
from ..lab.storage.files import check_writable_folder
from ..lab.training import runfolder
from . import saved


def build_parser():
    p = saved.parser("figures", "Every figure of a run (reconstructions, samples, loss curves, "
                     "latent space as points and as distributions, manifold for Z = 2, "
                     "interpolation, traversal), redrawn.", data=True)
    p.add_argument("--out", type=Path, metavar="DIR",
                   help="where to write them (default: CKPT's folder)")
    return p


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)

    def body(say) -> int:
        saved.check_data_dir(args.data_dir)
        model = saved.load_model(args.checkpoint)
        out = check_writable_folder(args.out if args.out is not None else args.checkpoint.parent)
        data = saved.test_set(model, args.data_dir)
        kl_per_dim = saved.check_numbers(model, data.x_test)
        with runfolder.held(out):  # a run training there meanwhile keeps its figures
            paths = make_figures(out, model.params, model.config, data.x_test, data.y_test,
                                 model.history, kl_per_dim, model.run_protocol()["seed"],
                                 class_names=data.class_names, label_kind=data.label_kind)
        say(f"wrote {out}/: " + ", ".join(p.name for p in paths))
        return 0

    return saved.run_verb(parser.prog, body)


if __name__ == "__main__":
    sys.exit(main())
