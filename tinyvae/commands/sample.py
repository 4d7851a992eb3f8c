"""`python -m tinyvae sample CKPT`: images drawn from a saved model's prior, as a PNG grid
and/or an .npz.

    python -m tinyvae sample runs/mnist/checkpoint.npz        # runs/mnist/samples-seed0.png
    python -m tinyvae sample runs/mnist/checkpoint.npz --npz  # runs/mnist/samples-seed0.npz
    python -m tinyvae sample runs/mnist/checkpoint.npz --n 16 --seed 3 --png s.png --npz s.npz

Each image is the decoder's mean at one z ~ N(0, I) (Model.sample: the same seed gives the same
images). The .npz holds plain arrays: images (n, D), the decoder means, unclipped; z (n, Z), the
codes they were decoded from; seed.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

from ..lab import memory
from ..lab.figures import plots
from ..lab.training import runfolder
from . import saved
from .args import positive_int, seed
from .saved import BESIDE


def build_parser():
    p = saved.parser("sample", "Images drawn from a saved model's prior: z ~ N(0, I), decoded.")
    p.add_argument("--n", type=positive_int, default=64, metavar="N", help="how many images")
    p.add_argument("--seed", type=seed, default=0, metavar="S", help="seed of the draws of z")
    p.add_argument("--nrow", type=positive_int, default=8, metavar="N",
                   help="images per row of the PNG grid")
    p.add_argument("--png", type=Path, metavar="FILE",
                   help="the grid as a PNG (default: samples-seed<S>.png beside CKPT, unless only "
                        "--npz is given)")
    p.add_argument("--npz", type=Path, metavar="FILE", nargs="?", const=BESIDE,
                   help="the images and their z as an .npz (--npz alone: samples-seed<S>.npz "
                        "beside CKPT)")
    return p


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)

    def body(say) -> int:
        if args.npz is saved.BESIDE:
            args.npz = saved.beside(args.checkpoint, f"samples-seed{args.seed}.npz")
        png = saved.check_output(args.png, ".png", "--png")
        npz = saved.check_output(args.npz, ".npz", "--npz")
        model = saved.load_model(args.checkpoint)
        if png is None and npz is None:
            png = saved.beside(args.checkpoint, f"samples-seed{args.seed}.png")
        if png is not None:
            saved.check_drawable(model, "--png")
        c = model.config  # z and the images, and the decoder's widest layer for each of them
        per_image = c.latent_dim + 2 * c.input_dim + max(c.hidden_dims)
        memory.check_fits(f"--n {args.n}", args.n * per_image, model.dtype)
        # The draws of Model.sample, kept: z first, then its decoding.
        z = (np.random.default_rng(args.seed)
             .standard_normal((args.n, model.config.latent_dim)).astype(model.dtype))
        images = model.decode(z)  # (n, D)
        saved.finite("the decoded samples", images)
        with runfolder.writing_into(png, npz):
            if png is not None:
                plots.plot_samples(png, np.clip(images, 0.0, 1.0), nrow=args.nrow,
                                   title=f"{args.n} sample{'s' * (args.n > 1)} from the prior "
                                         f"(seed {args.seed})\ndecoder mean at z ~ N(0, I)")
                say(f"wrote {png}")
            if npz is not None:
                saved.write_npz(npz, images=images, z=z, seed=np.int64(args.seed))
                say(f"wrote {npz}: images {images.shape}, z {z.shape}")
        return 0

    return saved.run_verb(parser.prog, body)


if __name__ == "__main__":
    sys.exit(main())
