"""`python -m tinyvae reconstruct CKPT`: test images above their reconstructions by a saved model.

    # runs/mnist/reconstructions-0-9.png:
    python -m tinyvae reconstruct runs/mnist/checkpoint.npz
    python -m tinyvae reconstruct runs/mnist/checkpoint.npz --npz  # the .npz beside it instead
    python -m tinyvae reconstruct runs/mnist/checkpoint.npz --start 100 --n 20 --npz r.npz

The images are the run's test set as it was scored (its binarization,
tinyvae/lab/training/run_settings.py); each reconstruction is the decoder's mean at one
z = μ + σ ⊙ ε drawn with --seed (Model.reconstruct). The .npz holds x (n, D), x_rec (n, D) and
index (n,), the test-set rows.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

from ..lab.errors import UsageError
from ..lab.figures import plots
from ..lab.training import runfolder
from . import saved
from .args import nonnegative_int, positive_int, seed
from .saved import BESIDE


def build_parser():
    p = saved.parser("reconstruct", "Test images and their reconstructions by a saved model.",
                     data=True)
    p.add_argument("--n", type=positive_int, default=10, metavar="N", help="how many test images")
    p.add_argument("--start", type=nonnegative_int, default=0, metavar="I",
                   help="the first test image (its row in the test set)")
    p.add_argument("--seed", type=seed, default=0, metavar="S",
                   help="seed of the ε of z = μ + σ ⊙ ε")
    p.add_argument("--png", type=Path, metavar="FILE",
                   help="the figure (default: reconstructions-<first>-<last>.png beside CKPT, "
                        "unless only --npz is given)")
    p.add_argument("--npz", type=Path, metavar="FILE", nargs="?", const=BESIDE,
                   help="the images and reconstructions as an .npz (--npz alone: "
                        "reconstructions-<first>-<last>.npz beside CKPT)")
    return p


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)

    def body(say) -> int:
        saved.check_data_dir(args.data_dir)
        png = saved.check_output(args.png, ".png", "--png")
        npz = args.npz
        if npz is not saved.BESIDE:
            npz = saved.check_output(npz, ".npz", "--npz")
        model = saved.load_model(args.checkpoint)
        x_test = saved.test_set(model, args.data_dir).x_test
        if args.start >= len(x_test):
            raise UsageError(f"--start {args.start}: the test set has {len(x_test)} images "
                                   f"(0..{len(x_test) - 1})")
        index = np.arange(args.start, min(args.start + args.n, len(x_test)))  # (n,)
        x = x_test[index]
        x_rec = model.reconstruct(x, seed=args.seed)  # (n, D)
        saved.finite("the reconstructions", x_rec)
        name = f"reconstructions-{index[0]}-{index[-1]}"
        if npz is saved.BESIDE:
            npz = saved.beside(args.checkpoint, f"{name}.npz")
        if png is None and npz is None:
            png = saved.beside(args.checkpoint, f"{name}.png")
        with runfolder.writing_into(png, npz):
            if png is not None:
                plots.plot_reconstructions(png, x, np.clip(x_rec, 0.0, 1.0), n=len(index))
                say(f"wrote {png}: test images {index[0]}..{index[-1]} above their reconstructions")
            if npz is not None:
                saved.write_npz(npz, x=x, x_rec=x_rec, index=index)
                say(f"wrote {npz}: x and x_rec {x.shape}, index {index.shape}")
        return 0

    return saved.run_verb(parser.prog, body)


if __name__ == "__main__":
    sys.exit(main())
