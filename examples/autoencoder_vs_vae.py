"""A plain autoencoder next to a VAE:
the gaps in the latent space, and the KL term that closes them.

    python examples/autoencoder_vs_vae.py            # MNIST, Z = 2, 10 epochs per model, ~2 minutes
    python examples/autoencoder_vs_vae.py --figures-from runs/mnist/checkpoint.npz \\
        --out runs/mnist_figures

Two models are trained with the same architecture (784-400-2-400-784, ReLU, Bernoulli decoder),
the same initial weights, the same minibatches and the same noise ε. They differ in one number,
β, the weight of the KL term in docs/01-autoencoder-to-vae.md eq. (6):

    β = 0   the plain autoencoder of docs/01 section 2. Strictly it is an autoencoder with a
            noisy code z = μ + σ ⊙ ε, but with β = 0 nothing rewards a large σ and the noise
            only hurts the reconstruction, so training shrinks σ until the code is as good as
            deterministic. The run measures how far σ has shrunk, next to the spread of μ.
    β = 1   the VAE: the negative ELBO, docs/02-variational-inference.md eq. (11).

With Z = 2 the latent space can be drawn as it is. The script writes to --out:

    ae_latent.png, vae_latent.png
        left: the codes μ(x) of the test images, coloured by digit, with the circle that holds
        95 % of the prior N(0, I) and the square [−3, 3]²; right: the decoder on a grid of z
        over that square, the region where draws from the prior fall
    ae_vs_vae_samples.png   both decoders at the same 64 draws z ~ N(0, I)
    ae_vs_vae_ellipses.png  q(z|x) of 300 test images as 1-σ ellipses, for both models: the
                            lecture's "a point or a distribution" picture
    numbers.json            the numbers printed at the end (below)
    ae/, vae/               each model's checkpoint.npz and history (tinyvae.train.fit); an
                            earlier run in --out is replaced

The numbers, all on the 10,000 test images (binarized once with seed 0, as examples/mnist.py):
the reconstruction term and the KL of each model, the KL split into its μ² part and its σ part
(docs/01-autoencoder-to-vae.md eq. (5)), the ELBO each would score as a VAE, mean |μ| and mean
σ, the fraction of test codes inside the prior's 95 % circle, and for 10,000 draws
z ~ N(0, I) from the prior: how many land where the decoder was trained, i.e. within 2
standard deviations of some test image's q(z|x) (Σ_j (z_j − μ_j)² / σ_j² ≤ 4); the median of
that distance; and which digits they reach (the label of the nearest test code), summed up
as an effective number of digits exp(entropy), 10 if all ten are reached equally often.

--figures-from CHECKPOINT skips the training and instead draws the figures of docs/01 sections
7 and 8 for an already trained VAE (examples/mnist.py's checkpoint.npz): reconstructions, prior
samples (the decoder's means E[x|z]), the same kind of means beside draws x ~ p(x|z) from the
model, interpolations, a latent traversal of the six most informative dimensions and, for
Z = 2, the manifold, all with tinyvae.plots, and stored compactly enough for docs/figures/.

Shapes: N test images, M prior draws, D pixels, Z latent.
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

import numpy as np
from matplotlib.patches import Circle, Ellipse, Rectangle
from PIL import Image

from tinyvae import evaluate
from tinyvae.commands.args import hidden_sizes, nonnegative_int, positive_int
from tinyvae.config import VAEConfig, init_params
from tinyvae.lab.datasets.binarize import fixed_binarization
from tinyvae.lab.datasets.data import load_dataset
from tinyvae.lab.datasets.readers import DataError
from tinyvae.lab.figures import latent_plots, plots
from tinyvae.lab.storage.checkpoint import CheckpointError, load_checkpoint
from tinyvae.lab.storage.files import OutputError, check_writable_folder, write_json
from tinyvae.lab.training.runner import fit
from tinyvae.optim import make_optimizer
from tinyvae.speed.step import make_step
from tinyvae.vae import decode, encode, reconstruct, sample

# radius of the disc holding 95 % of N(0, I) in 2-D: 2.448
PRIOR_95 = math.sqrt(-2 * math.log(0.05))
DPI = 90
GRID = 3.0  # the decoded grid covers [−GRID, GRID]², where 99.5 % of the prior's draws fall
TEST_BINARIZATION_SEED = 0  # the same fixed test binarization as examples/mnist.py
MODELS = (("ae", 0.0, "β = 0: plain autoencoder"), ("vae", 1.0, "β = 1: VAE"))


def compact_png(path: Path) -> Path:
    """Re-store a figure's PNG in fewer bytes, for docs/figures/: a figure whose pixels are all
    gray (R = G = B, opaque) as 8-bit gray, the same picture; any other as at most 256 colours,
    which a plot with a few line and marker colours does not visibly miss."""
    image = Image.open(path).convert("RGBA")
    rgba = np.asarray(image)
    if ((rgba[..., 3] == 255).all() and (rgba[..., 0] == rgba[..., 1]).all()
            and (rgba[..., 1] == rgba[..., 2]).all()):
        small = Image.fromarray(rgba[..., 0], mode="L")
    else:
        small = image.convert("RGB").quantize(256, method=Image.Quantize.FASTOCTREE,
                                              dither=Image.Dither.NONE)
    tmp = path.with_name(f".{path.name}.tmp")
    small.save(tmp, format="PNG", optimize=True)
    tmp.replace(path)  # a reader never sees half a file
    return path


# ---- the comparison -------------------------------------------------------------------------

def _nearest(z: np.ndarray, mu: np.ndarray, scale: np.ndarray):
    """For each row of z (M, Z), the code μ_n nearest to it in units of scale_n (N, Z):

        d²(z, n) = Σ_j ((z_j − μ_nj) / scale_nj)²   ->   (min_n d² (M,), argmin_n (M,))

    Expanded as Σ z²/s² − 2 Σ z·μ/s² + Σ μ²/s²: three matrix products instead of an (M, N, Z)
    array, with the codes 1000 at a time so that the (M, 1000) block stays small.
    """
    best, where = np.full(len(z), np.inf), np.zeros(len(z), dtype=np.int64)
    for start in range(0, len(mu), 1000):
        m, w = mu[start:start + 1000], scale[start:start + 1000] ** -2.0  # (n, Z) each
        d2 = (z ** 2) @ w.T - 2 * z @ (m * w).T + (m ** 2 * w).sum(1)  # (M, n)
        closer = d2.min(axis=1) < best
        where[closer] = start + d2.argmin(axis=1)[closer]
        best = np.minimum(best, d2.min(axis=1))
    return np.maximum(best, 0.0), where  # rounding can leave a tiny negative number


def latent_numbers(mu: np.ndarray, log_var: np.ndarray, labels: np.ndarray,
                   z_prior: np.ndarray) -> dict:
    """Where the test codes μ (N, Z), with their σ, sit relative to draws from the prior
    z_prior (M, Z)."""
    sigma = np.exp(0.5 * log_var)  # (N, Z)
    # The two parts of the KL, docs/01-autoencoder-to-vae.md eq. (5), averaged over the images.
    kl_mu = 0.5 * (mu ** 2).sum(1).mean()
    kl_sigma = 0.5 * (sigma ** 2 - 1 - log_var).sum(1).mean()
    # A draw with Σ_j (z_j − μ_j)²/σ_j² ≤ 4 for some test image is a typical sample of that
    # image's q(z|x) (within 2 standard deviations): a z like those the decoder was trained on.
    d2_sd, _ = _nearest(z_prior, mu, sigma)  # (M,)
    # Which digit each draw reaches: the label of the test code nearest to it.
    _, nearest = _nearest(z_prior, mu, np.ones_like(mu))  # (M,)
    shares = np.bincount(labels[nearest], minlength=10) / len(z_prior)  # (10,)
    entropy = -(shares[shares > 0] * np.log(shares[shares > 0])).sum()
    return {
        "kl_from_mu": float(kl_mu), "kl_from_sigma": float(kl_sigma),
        "mean_abs_mu": float(np.abs(mu).mean()),
        "mean_sigma": float(sigma.mean()),
        "median_sigma": float(np.median(sigma)),
        "std_of_mu_per_dim": [float(v) for v in mu.std(axis=0)],
        "sigma_over_spread": float(sigma.mean() / mu.std(axis=0).mean()),
        "codes_inside_prior_95": float((np.sqrt((mu ** 2).sum(1)) <= PRIOR_95).mean()),
        "prior_draws_within_2sd_of_a_code": float((d2_sd <= 4.0).mean()),
        "prior_draw_sd_to_nearest_code_median": float(np.median(np.sqrt(d2_sd))),
        "prior_draws_digit_shares": [float(v) for v in shares],
        "prior_draws_effective_digits": float(np.exp(entropy)),
    }


def decoded_grid(params, config: VAEConfig, n: int = 15) -> np.ndarray:
    """The decoder's mean on an n × n grid over [−GRID, GRID]², z_0 to the right, z_1 upwards,
    as one mosaic."""
    axis = np.linspace(-GRID, GRID, n)
    z0, z1 = np.meshgrid(axis, axis[::-1])  # rows from the top: z_1 decreasing
    return plots.mosaic(decode(params, np.stack([z0.ravel(), z1.ravel()], axis=1), config), ncol=n)


def plot_latent(path: Path, mu: np.ndarray, labels: np.ndarray, grid: np.ndarray,
                title: str) -> Path:
    """Left: the codes μ (N, 2) coloured by digit, the prior's 95 % circle and the square
    [−GRID, GRID]²; right: the decoded grid over that square."""
    fig = plots.new_figure(10.5, 4.6, dpi=DPI)
    scatter, images = fig.subplots(1, 2, width_ratios=[1.25, 1])
    for digit in range(10):
        sel = labels == digit
        scatter.scatter(mu[sel, 0], mu[sel, 1], s=1.5, color=f"C{digit}", linewidths=0, alpha=0.7,
                        label=str(digit), rasterized=True)
    scatter.add_patch(Circle((0, 0), PRIOR_95, fill=False, color="black", linestyle="--",
                             linewidth=1.2, label="95 % of N(0, I)"))
    scatter.add_patch(Rectangle((-GRID, -GRID), 2 * GRID, 2 * GRID, fill=False, color="black",
                                linestyle=":", linewidth=1.2, label=f"[−{GRID:g}, {GRID:g}]²"))
    scatter.set_aspect("equal", adjustable="datalim")
    scatter.grid(alpha=0.3)
    scatter.set_xlabel("μ_0")
    scatter.set_ylabel("μ_1")
    scatter.set_title(f"Codes μ(x) of {len(mu):,} test images")
    scatter.legend(loc="center left", bbox_to_anchor=(1.0, 0.5), markerscale=6, frameon=False,
                   fontsize=8)
    # "antialiased": the mosaic has more pixels than the panel, and "nearest" would drop rows.
    images.imshow(grid, cmap="gray", vmin=0.0, vmax=1.0, interpolation="antialiased")
    images.set_xticks([])
    images.set_yticks([])
    images.set_title(f"Decoder on a grid over [−{GRID:g}, {GRID:g}]²")
    fig.suptitle(title)
    return compact_png(plots.save_png(fig, path, dpi=DPI))


def plot_samples_side_by_side(path: Path, mosaics: dict) -> Path:
    """The two models' decoded prior draws next to each other."""
    fig = plots.new_figure(10.0, 5.4, dpi=DPI)
    for ax, (name, _, title) in zip(fig.subplots(1, 2), MODELS):
        ax.imshow(mosaics[name], cmap="gray", vmin=0.0, vmax=1.0, interpolation="nearest")
        ax.set_xticks([])
        ax.set_yticks([])
        ax.set_title(title)
    fig.suptitle("The same 64 draws z ~ N(0, I), decoded by each model")
    return compact_png(plots.save_png(fig, path, dpi=DPI))


def plot_ellipses(path: Path, codes: dict, labels: np.ndarray, n: int = 300) -> Path:
    """The lecture's "point versus distribution" picture, drawn from the two trained models.

    For the first n test images, each q(z|x) = N(μ, diag σ²) as its 1-σ ellipse (half-axes σ_0
    and σ_1 around μ), coloured by digit; the dashed circle is the prior's own 1-σ circle.
    codes[name] = (mu (N, 2), sigma (N, 2)).
    """
    fig = plots.new_figure(10.5, 5.0, dpi=DPI)
    for ax, (name, _, title) in zip(fig.subplots(1, 2), MODELS):
        mu, sigma = codes[name][0][:n], codes[name][1][:n]
        for (m0, m1), (s0, s1), digit in zip(mu, sigma, labels[:n]):
            ax.add_patch(Ellipse((m0, m1), 2 * s0, 2 * s1, facecolor=f"C{digit}",
                                 edgecolor=f"C{digit}", alpha=0.35, linewidth=0.6))
        ax.scatter(mu[:, 0], mu[:, 1], s=2, c=[f"C{d}" for d in labels[:n]], linewidths=0)
        ax.add_patch(Circle((0, 0), 1.0, fill=False, color="black", linestyle="--", linewidth=1.2))
        reach = np.abs(mu).max() * 1.08 + sigma.max()
        ax.set_xlim(-reach, reach)
        ax.set_ylim(-reach, reach)
        ax.set_aspect("equal")
        ax.grid(alpha=0.3)
        ax.set_xlabel("z_0")
        ax.set_ylabel("z_1")
        ax.set_title(f"{title}\nmean σ = {sigma.mean():.3g}; dashed: the prior's 1-σ circle")
    handles = [Ellipse((0, 0), 1, 1, facecolor=f"C{d}", alpha=0.5) for d in range(10)]
    fig.legend(handles, [str(d) for d in range(10)], loc="outside right center", frameon=False,
               title="digit")
    fig.suptitle(f"q(z|x) of {n} test images as 1-σ ellipses: a point per image, or a region")
    return compact_png(plots.save_png(fig, path, dpi=DPI))


def train_pair(args, x_train, x_test) -> dict:
    """Train the β = 0 and β = 1 models from identical starts; return their params by name."""
    params = {}
    for name, beta, title in MODELS:
        config = VAEConfig(hidden_dims=args.hidden, latent_dim=args.latent_dim, beta=beta)
        rng = np.random.default_rng(args.seed)  # same seed: same weights, batches and ε for both
        step = make_step("fast", config, init_params(config, rng, np.float32),
                         make_optimizer("adam", 1e-3), 128)
        print(f"{title}:")
        fit(step, x_train, rng=rng, epochs=args.epochs, x_test=x_test, binarize="dynamic",
            out_dir=args.out / name, eval_seed=args.seed)
        params[name] = step.params  # the trained model the step holds
    return params


def compare(args) -> int:
    ds = load_dataset("mnist", args.data_dir)
    x_train = ds.x_train[:args.train_limit]
    x_test = fixed_binarization(ds.x_test, TEST_BINARIZATION_SEED)[:args.test_limit]
    y_test = ds.y_test[:args.test_limit]
    print(f"MNIST, dynamically binarized: {len(x_train)} train, {len(x_test)} test images; "
          f"784-{'-'.join(map(str, args.hidden))}-{args.latent_dim}, seed {args.seed}, "
          f"{args.epochs} epochs each")
    params = train_pair(args, x_train, x_test)
    return analyse(args, params, x_test, y_test, n_train=len(x_train))


def analyse(args, params: dict, x_test: np.ndarray, y_test: np.ndarray, n_train: int) -> int:
    """The numbers and figures of the two trained models (params["ae"], params["vae"])."""
    rng = np.random.default_rng([args.seed, 7])
    z_prior = rng.standard_normal((10_000, args.latent_dim))  # (M, Z), the same draws for both
    numbers, figures, mosaics, codes = {}, [], {}, {}
    for name, beta, title in MODELS:
        config = VAEConfig(hidden_dims=args.hidden, latent_dim=args.latent_dim, beta=beta)
        p = params[name]
        mu, log_var = encode(p, x_test, config)  # (N, Z) each
        mu, log_var = mu.astype(np.float64), log_var.astype(np.float64)
        test = evaluate.test_elbo(p, x_test, config,
                                  np.random.default_rng([args.seed, args.epochs]))
        numbers[name] = {"beta": beta, "test_recon": test["recon"], "test_kl": test["kl"],
                         "test_loss": test["loss"],  # what this model was trained on: recon + β·KL
                         "test_elbo": -(test["recon"] + test["kl"]),  # the same yardstick for both
                         **latent_numbers(mu, log_var, y_test, z_prior)}
        mosaics[name] = plots.mosaic(decode(p, z_prior[:64], config), ncol=8)
        codes[name] = (mu, np.exp(0.5 * log_var))
        if args.latent_dim == 2:
            figures.append(plot_latent(args.out / f"{name}_latent.png", mu, y_test,
                                       decoded_grid(p, config), title))
    figures.append(plot_samples_side_by_side(args.out / "ae_vs_vae_samples.png", mosaics))
    if args.latent_dim == 2:
        figures.append(plot_ellipses(args.out / "ae_vs_vae_ellipses.png", codes, y_test))
    settings = {"epochs": args.epochs, "latent_dim": args.latent_dim, "hidden": list(args.hidden),
                "seed": args.seed, "n_train": n_train, "n_test": len(x_test),
                "n_prior_draws": len(z_prior)}
    write_json(args.out / "numbers.json", {"settings": settings, **numbers})
    report(numbers)
    print(f"wrote {args.out}/: numbers.json, " + ", ".join(f.name for f in figures) + ", ae/, vae/")
    return 0


def report(numbers: dict) -> None:
    rows = [("test reconstruction −log p(x|z)", "test_recon", ".2f"),
            ("test KL(q(z|x) ‖ N(0, I))", "test_kl", ".2f"),
            ("  of which ½ Σ μ²", "kl_from_mu", ".2f"),
            ("  of which ½ Σ (σ² − 1 − log σ²)", "kl_from_sigma", ".2f"),
            ("test ELBO (−recon − KL, both scored as a VAE)", "test_elbo", ".2f"),
            ("mean |μ|", "mean_abs_mu", ".3f"),
            ("mean σ", "mean_sigma", ".4f"),
            ("mean σ / standard deviation of μ", "sigma_over_spread", ".4f"),
            ("test codes inside the prior's 95 % circle", "codes_inside_prior_95", ".1%"),
            ("prior draws within 2 sd of some q(z|x)", "prior_draws_within_2sd_of_a_code", ".1%"),
            ("  median distance to the nearest q(z|x), in sd",
             "prior_draw_sd_to_nearest_code_median", ".1f"),
            ("digits the prior draws reach (effective number)", "prior_draws_effective_digits",
             ".1f")]
    print(f"\n{'':<48}{'β = 0 (AE)':>12}{'β = 1 (VAE)':>12}")
    for label, key, spec in rows:
        print(f"{label:<48}{format(numbers['ae'][key], spec):>12}"
              f"{format(numbers['vae'][key], spec):>12}")


# ---- the figures of docs/01 sections 7 and 8, from a trained VAE ------------------------------

def plot_means_and_draws(path: Path, params, config: VAEConfig, rng: np.random.Generator, *,
                         n: int = 10, draws: int = 2) -> Path:
    """n codes z ~ N(0, I): the decoder's mean E[x|z] (what vae.sample returns) above `draws`
    independent draws x ~ p(x|z) from the Bernoulli decoder, every pixel its own coin."""
    z = rng.standard_normal((n, config.latent_dim)).astype(params["decoder.W_out"].dtype)  # (n, Z)
    mean = np.clip(decode(params, z, config), 0.0, 1.0)  # (n, D): each pixel's probability of ink
    coins = [(rng.random(mean.shape) < mean).astype(np.float64) for _ in range(draws)]  # (n, D)
    rows = [mean, *coins]
    width, height = plots.CELL_INCHES * n + 2.2, plots.CELL_INCHES * len(rows) + 0.6
    fig = plots.new_figure(width, height, dpi=DPI)
    ax = fig.add_subplot()
    plots.show_grid(ax, plots.mosaic(np.concatenate(rows), ncol=n))
    labels = ["mean E[x|z]"] + [f"draw {i + 1}, x ~ p(x|z)" for i in range(draws)]
    ax.set_yticks(plots.grid_ticks(len(rows), plots.square_side(config.input_dim)), labels)
    ax.tick_params(length=0)
    ax.set_title(f"{n} codes z ~ N(0, I): the decoder's mean, and {draws} draws from the model")
    return compact_png(plots.save_png(fig, path, dpi=DPI))


def figures_from(args) -> int:
    ckpt = load_checkpoint(args.figures_from)
    params, config = ckpt.params, ckpt.config
    cli = ckpt.extra.get("cli", {})  # examples/mnist.py's settings of that run
    if cli.get("dataset", "mnist") != "mnist" or config.input_dim != 784:
        raise CheckpointError(f"{ckpt.path} is a model of {cli.get('dataset', 'other data')}; "
                              "--figures-from draws MNIST test images, "
                              "so it needs a model trained on MNIST")
    ds = load_dataset("mnist", args.data_dir)
    x_test = fixed_binarization(ds.x_test, TEST_BINARIZATION_SEED)
    out = args.out
    # The run's own seed: the same draws as the figures examples/mnist.py made at the end of it.
    rng = np.random.default_rng([cli.get("seed", args.seed), 7])
    x = x_test[:10]
    x_rec = np.clip(reconstruct(params, x, rng, config), 0.0, 1.0)
    kl_per_dim = evaluate.kl_per_dimension(params, x_test, config)  # (Z,)
    # the most informative dims
    top_six = [int(j) for j in np.argsort(-kl_per_dim, kind="stable")[:6]]
    # Each plot function writes its PNG to the path it is given (and returns the Figure).
    paths = [out / name for name in ("reconstructions.png", "vae_samples.png",
                                     "interpolation.png", "traversal.png")]
    plots.plot_reconstructions(paths[0], x, x_rec)
    plots.plot_samples(paths[1], np.clip(sample(params, 64, rng, config), 0.0, 1.0))
    latent_plots.plot_interpolation(paths[2], params, config, x_test[:5], x_test[5:10])
    latent_plots.plot_traversal(paths[3], params, config, x_test[0], dims=top_six,
                                kl_per_dim=kl_per_dim)
    if config.likelihood == "bernoulli":  # a draw from a Gaussian decoder is the mean plus noise
        paths.append(out / "samples_mean_and_draw.png")
        draws_rng = np.random.default_rng([cli.get("seed", args.seed), 8])  # its own draws
        plot_means_and_draws(paths[-1], params, config, draws_rng)
    if config.latent_dim == 2:
        paths.append(out / "manifold.png")
        latent_plots.plot_manifold(paths[-1], params, config, n=15)
    for path in paths:
        compact_png(path)
    print(f"{ckpt.path}: Z = {config.latent_dim}, β = {config.beta:g}, epoch {ckpt.epoch}")
    print(f"wrote {out}/: " + ", ".join(p.name for p in paths))
    return 0


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        description="A plain autoencoder (β = 0) next to a VAE (β = 1) on MNIST (tinyvae).")
    p.add_argument("--data-dir", type=Path, metavar="DIR",
                   help="a data root holding mnist/ "
                        "(default: $TINYVAE_DATA, then ~/.cache/tinyvae)")
    p.add_argument("--epochs", type=positive_int, default=10, help="epochs per model (default 10)")
    p.add_argument("--latent-dim", type=positive_int, default=2, metavar="Z",
                   help="Z (default 2: the latent space is drawn as it is; "
                        "the scatter and grids need Z = 2)")
    p.add_argument("--hidden", type=hidden_sizes, default=(400,), metavar="SIZES",
                   help="hidden layer sizes of the encoder, e.g. 400 or 200,200 (default 400)")
    p.add_argument("--seed", type=nonnegative_int, default=0,
                   help="random seed, shared by both models (default 0)")
    p.add_argument("--out", type=Path, default=Path("runs/ae_vs_vae"), metavar="DIR",
                   help="output folder (default runs/ae_vs_vae; an earlier run there is replaced)")
    p.add_argument("--train-limit", type=positive_int, metavar="N",
                   help="use only the first N training images")
    p.add_argument("--test-limit", type=positive_int, metavar="N",
                   help="use only the first N test images")
    p.add_argument("--figures-from", type=Path, metavar="CHECKPOINT",
                   help="do not train: draw docs/01's figures of a trained VAE "
                        "(examples/mnist.py's checkpoint.npz)")
    args = p.parse_args(argv)
    try:
        args.out = check_writable_folder(args.out)
        return figures_from(args) if args.figures_from else compare(args)
    except (DataError, OutputError, OSError) as exc:
        print(f"{p.prog}: error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
