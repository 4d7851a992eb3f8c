"""Train a VAE on MNIST, evaluate it the way papers do, and draw what it learned.

    python examples/mnist.py                       # MNIST, dynamic binarization, 784-400-20 ReLU,
                                                   # Adam 1e-3, batch 128, 10 epochs, seed 0
    python examples/mnist.py --latent-dim 2        # a 2-D latent space: adds the manifold figure
    python examples/mnist.py --binarize none       # grayscale targets, as PyTorch's VAE example
    python examples/mnist.py --resume runs/mnist/checkpoint.npz    # continue an interrupted run
    python examples/mnist.py --help                # every option, with its default

This is `python -m tinyvae train` as a script: the command's code is in
tinyvae/commands/train.py, and the training run it drives is tinyvae/lab/runner.py's `fit`
around the steps of tinyvae/train.py (Kingma & Welling's Algorithm 1).

Everything goes to --out (default runs/mnist/): checkpoint.npz and history.json/.csv after every
epoch, then metrics.json and the figures (reconstructions, samples, loss curves, latent scatter,
manifold for Z = 2, interpolation, traversal). At the end it prints the test ELBO, the
importance-weighted bound L_k (Burda et al. 2016; k = --iw-samples, 5000 in the papers) and
the number of active units.

Binarization (the Bernoulli likelihood wants binary pixels; see tinyvae/lab/data.py):
  dynamic  a fresh Bernoulli draw of every training image each epoch (Burda et al.); the test
           set is binarized once, with a fixed seed, so that every run is scored on the same bits.
  fixed    for mnist: the binarized MNIST of Larochelle & Murray (2011), i.e. --dataset
           binarized-mnist (50,000 training images, no labels); for fashion-mnist: one fixed
           draw of train and test.
  none     grayscale intensities in [0, 1] as targets of the Bernoulli likelihood.

A fresh run refuses an --out that already holds a checkpoint unless --overwrite is given; with
--resume, every setting not given on the command line is taken from the checkpoint, and one
given that differs from it is refused, since that would not be the same run. --epochs may be
raised to train further. Ctrl-C exits with status 130 after saying where the checkpoint of the
last finished epoch is.
"""

import sys

from tinyvae.commands.train import main

if __name__ == "__main__":
    sys.exit(main(command="python examples/mnist.py"))
