"""Posterior collapse, and the decoder's σ playing the part of β.

    python examples/decoder_sigma_as_beta.py --plot docs/figures/sigma_as_beta.png \\
        --json docs/results/sigma_as_beta.json

With a Gaussian decoder of fixed standard deviation σ, the per-image loss is
(docs/04-gradients.md eq. (9) plus the KL)

    −log p(x|z) + KL = SSE / (2σ²) + D/2 · log(2πσ²) + KL
                     = [ ½ SSE + σ² · KL ] / σ²  +  const(σ),      SSE = Σ_d (x_d − m_d)²

so, up to a constant and an overall scale, it is the loss ½ SSE + β · KL with β = σ². A larger
σ says "pixels are noisy, do not try hard to reconstruct them"; it weighs the KL more, exactly as
a larger β would. Adam divides out the overall scale of the gradient, so a run with (σ, β = 1)
and a run with (σ = 1, β = σ²) take nearly the same steps (tests/test_lessons.py checks the
gradient identity exactly).

The program trains one VAE per σ on grayscale MNIST (784-400-20 ReLU, Adam 1e-3, batch 128,
float32, the first --train-limit training images for --epochs epochs, the same seed for all)
with β = 1, and for the σ values of --as-beta also as (σ = 1, β = σ²), and reports for each: the KL
term on the first --test-limit test images, the reconstruction's mean squared error per pixel, and
the number of active units (Burda et al. 2016: dimensions whose mean code Var_x μ_u(x) exceeds 0.01;
the others carry nothing about the image: KL_u ≈ 0, "posterior collapse"). As σ grows the KL's
weight grows and the code carries less and less. In the documented run (docs/01 section 9) the units
do not switch off one by one: all 20 stay active, more and more thinly, up to σ = 1; one is left at
σ = 2 and none at σ = 4, where the decoder draws the same average digit for every code.

A small experiment for a 2-core machine: a few epochs on a subset, not a converged model.

Shapes: N images, D pixels, Z latent.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from tinyvae import evaluate, vae
from tinyvae.commands.args import output_file, positive_float, positive_int, seed
from tinyvae.commands.lesson import run_lesson
from tinyvae.config import VAEConfig, init_params
from tinyvae.lab.datasets.data import load_dataset
from tinyvae.lab.training.runner import fit
from tinyvae.optim import make_optimizer
from tinyvae.speed.step import make_step

SIGMAS = (0.05, 0.1, 0.2, 0.4, 1.0, 2.0, 4.0)
AS_BETA = (0.2,)


def train_one(x_train, x_test, sigma: float, beta: float, args) -> dict:
    """Train one model from the seed; return its test KL, MSE per pixel and active units."""
    config = VAEConfig(hidden_dims=(400,), latent_dim=20, likelihood="gaussian", gaussian_std=sigma,
                       beta=beta)
    rng = np.random.default_rng(args.seed)  # the same initial weights, batches and ε for every run
    step = make_step("fast", config, init_params(config, rng, np.float32),
                     make_optimizer("adam", 1e-3), 128)
    fit(step, x_train, rng=rng, epochs=args.epochs, binarize="none", stream=None)
    mu, _ = vae.encode(step.params, x_test, config)  # (N, Z)
    # at the mean code, no noise
    mse = float(np.mean((vae.decode(step.params, mu, config) - x_test) ** 2))
    n_active, activity = evaluate.active_units(step.params, x_test, config)
    kl = evaluate.kl_per_dimension(step.params, x_test, config)  # (Z,)
    return {"sigma": sigma, "beta": beta, "kl": float(kl.sum()), "mse_per_pixel": mse,
            "active_units": n_active, "kl_per_dim": sorted((float(v) for v in kl), reverse=True)}


def measure(args) -> dict:
    ds = load_dataset("mnist", args.data_dir)
    x_train, x_test = ds.x_train[:args.train_limit], ds.x_test[:args.test_limit]
    # The σ sweep with β = 1, then the same losses written as σ = 1 with β = σ² (--as-beta).
    plan = [(sigma, 1.0) for sigma in args.sigmas] + [(1.0, sigma ** 2) for sigma in args.as_beta]
    runs = []
    for sigma, beta in plan:
        runs.append(train_one(x_train, x_test, sigma, beta, args))
        r = runs[-1]
        print(f"σ = {sigma:<5g} β = {beta:<7.4g} KL {r['kl']:6.2f} nats, "
              f"MSE {r['mse_per_pixel']:.4f}, active units {r['active_units']:2d} of 20",
              flush=True)
    return {"settings": {"epochs": args.epochs, "train_limit": len(x_train),
                         "test_limit": len(x_test), "seed": args.seed,
                         "sigmas": list(args.sigmas), "as_beta": list(args.as_beta)},
            "runs": runs}


def report(res: dict) -> str:
    """One row per run: σ, β, and the weight σ²·β that the KL has against ½ SSE."""
    lines = [f"{'sigma':>6} {'beta':>7} {'sigma^2 * beta':>14} {'KL (nats)':>10} {'MSE/pixel':>10} "
             f"{'active units':>13}"]
    for r in res["runs"]:
        lines.append(f"{r['sigma']:>6g} {r['beta']:>7.4g} {r['sigma'] ** 2 * r['beta']:>14.4g} "
                     f"{r['kl']:>10.2f} {r['mse_per_pixel']:>10.4f} {r['active_units']:>13d}")
    return "\n".join(lines)


def plot(res: dict, path: str) -> None:
    """Active units and the KL against the KL's weight σ²·β: the σ sweep, and the β runs on it."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(10, 3.8), dpi=90, layout="constrained")
    FigureCanvasAgg(fig)
    left, right = fig.subplots(1, 2)
    series = (("Gaussian decoder σ, β = 1", [r for r in res["runs"] if r["beta"] == 1.0],
               "o-", "tab:blue", 6),
              ("σ = 1, β = σ²", [r for r in res["runs"] if r["beta"] != 1.0],
               "x", "tab:red", 10))
    for label, rs, style, colour, size in series:
        weight = [r["sigma"] ** 2 * r["beta"] for r in rs]
        left.plot(weight, [r["active_units"] for r in rs], style, color=colour, label=label,
                  markersize=size)
        right.plot(weight, [r["kl"] for r in rs], style, color=colour, label=label, markersize=size)
    for ax, ylabel in ((left, "active units (of 20)"), (right, "KL(q(z|x) ‖ N(0, I)), nats")):
        ax.set_xscale("log")
        ax.set_xlabel("weight of the KL against ½·SSE:  σ²·β")
        ax.set_ylabel(ylabel)
        ax.grid(alpha=0.3, which="both")
        ax.legend(fontsize=8)
    left.set_title("Units in use")
    right.set_title("Information in the code")
    fig.suptitle("A fixed-σ Gaussian decoder is a β-VAE with β = σ²: "
                 "as σ grows, the code collapses")
    fig.savefig(path, dpi=90)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description="Decoder σ as β, and posterior collapse (tinyvae).")
    p.add_argument("--data-dir", type=Path,
                   help="a data root holding mnist/ (default: $TINYVAE_DATA)")
    p.add_argument("--sigmas", type=positive_float, nargs="+", default=SIGMAS,
                   help=f"decoder σ values (default {SIGMAS})")
    p.add_argument("--as-beta", type=positive_float, nargs="*", default=AS_BETA,
                   help=f"σ values also trained as σ = 1, β = σ² (default {AS_BETA})")
    p.add_argument("--epochs", type=positive_int, default=3, help="epochs per model (default 3)")
    p.add_argument("--train-limit", type=positive_int, default=5_000,
                   help="training images (default 5000)")
    p.add_argument("--test-limit", type=positive_int, default=1_000,
                   help="test images measured (default 1000)")
    p.add_argument("--seed", type=seed, default=0, help="seed, shared by every run (default 0)")
    p.add_argument("--plot", type=output_file, help="save the figure to this PNG")
    p.add_argument("--json", type=output_file, help="save the numbers to this JSON file")
    args = p.parse_args(argv)  # the lab's argparse types have refused nonsense already
    return run_lesson(p.prog, args, measure, report, plot)


if __name__ == "__main__":
    sys.exit(main())
