"""What "102 nats" is measured against:
baselines for the default run, and why test beats train early.

    python examples/results_anchors.py --json docs/results/anchors.json

docs/06-results.md quotes the default run's test loss, 102.09 nats per image. This program prints
the numbers that give it a scale, all on the same 10,000 test images (binarized once with seed 0,
as examples/mnist.py):

  the best model with KL = 0   If q(z|x) = p(z) for every x, the code says nothing about the
                               image, and the decoder can only output one picture for all of
                               them: a Bernoulli per pixel with fixed probabilities p_d. The best
                               p_d for dynamically binarized training data is the pixel's mean
                               intensity over the training images, and its loss is
                               −Σ_d [x_d log p_d + (1 − x_d) log(1 − p_d)] on each test image:
                               what a VAE scores if it learns nothing from z.
  the untrained model          the test loss of the initial parameters (seed 0)

and then trains the default model (784-400-20, seed 0, the settings and random stream of
examples/mnist.py, so its first epochs are that run's) for --epochs epochs, printing after each:
the mean training loss over the epoch (what the run's table calls "train loss"), the loss of
the end-of-epoch model on 10,000 training images binarized once (seed 1), and on the test
images. The first is an average over a model that improved all through the epoch; the second
and third measure one model at one moment, and agree.

Shapes: N images, D pixels.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from tinyvae import evaluate
from tinyvae.commands.args import output_file, positive_int, seed
from tinyvae.commands.lesson import run_lesson
from tinyvae.config import VAEConfig, init_params
from tinyvae.lab.datasets.binarize import fixed_binarization
from tinyvae.lab.datasets.data import load_dataset
from tinyvae.lab.training.runner import fit
from tinyvae.optim import make_optimizer
from tinyvae.speed.step import make_step


def independent_pixels_nll(x_train: np.ndarray, x_test: np.ndarray) -> float:
    """The test loss of the best decoder that ignores z: a Bernoulli per pixel,
    p_d = mean intensity.

    For training targets drawn as Bernoulli(intensity) each epoch, the expected log-likelihood
    E[x log p + (1 − x) log(1 − p)] is largest at p = the mean intensity.
    x (N, D) -> nats per image.
    """
    p = x_train.astype(np.float64).mean(axis=0)  # (D,)
    # a pixel never inked in training would cost log 0 if inked in test
    p = np.clip(p, 1e-6, 1 - 1e-6)
    x = x_test.astype(np.float64)  # (N, D)
    return float(-(x @ np.log(p) + (1 - x) @ np.log1p(-p)).mean())


def measure(args) -> dict:
    ds = load_dataset("mnist", args.data_dir)
    x_test = fixed_binarization(ds.x_test, 0)
    x_train_fixed = fixed_binarization(ds.x_train[:10_000], 1)
    config = VAEConfig(hidden_dims=(400,), latent_dim=20)
    # as examples/mnist.py: parameters, then the training stream
    rng = np.random.default_rng(args.seed)
    step = make_step("fast", config, init_params(config, rng, np.float32),
                     make_optimizer("adam", 1e-3), 128)
    untrained = evaluate.test_elbo(step.params, x_test, config,
                                   np.random.default_rng([args.seed, 99]))["loss"]

    def train_set_loss(epoch, step):
        # The end-of-epoch model on training images, with its own noise (the run's stream is
        # untouched).
        return {"train_fixed_loss":
                evaluate.test_elbo(step.params, x_train_fixed, config,
                                   np.random.default_rng([args.seed, 99, epoch]))["loss"]}

    history = fit(step, ds.x_train, rng=rng, epochs=args.epochs, x_test=x_test, batch_size=128,
                  binarize="dynamic", eval_seed=args.seed, stream=sys.stdout,
                  after_epoch=train_set_loss)
    return {"independent_pixels_test_loss": independent_pixels_nll(ds.x_train, x_test),
            "untrained_test_loss": untrained,
            "epochs": [{key: h[key]
                        for key in ("epoch", "train_loss", "train_fixed_loss", "test_loss")}
                       for h in history]}


def report(res: dict) -> str:
    lines = [f"best model with KL = 0 (one Bernoulli per pixel, z ignored): test loss "
             f"{res['independent_pixels_test_loss']:.2f} nats",
             "untrained model (initial parameters, seed 0):                test loss "
             f"{res['untrained_test_loss']:.2f} nats",
             f"{'epoch':>5} {'train loss (epoch mean)':>24} {'train images, end of epoch':>27} "
             f"{'test, end of epoch':>19}"]
    for h in res["epochs"]:
        lines.append(f"{h['epoch']:>5} {h['train_loss']:>24.2f} {h['train_fixed_loss']:>27.2f} "
                     f"{h['test_loss']:>19.2f}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description="Baselines for the default run's numbers (tinyvae).")
    p.add_argument("--data-dir", type=Path,
                   help="a data root holding mnist/ (default: $TINYVAE_DATA)")
    p.add_argument("--epochs", type=positive_int, default=2,
                   help="epochs of the default model to train (default 2)")
    p.add_argument("--seed", type=seed, default=0, help="seed (default 0, as examples/mnist.py)")
    p.add_argument("--json", type=output_file, help="also write the numbers to this JSON file")
    args = p.parse_args(argv)
    return run_lesson(p.prog, args, measure, report)


if __name__ == "__main__":
    sys.exit(main())
