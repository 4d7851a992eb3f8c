"""Train a VAE on MNIST, evaluate it the way papers do, and draw what it learned.

    python examples/mnist.py                       # MNIST, dynamic binarization, 784-400-20 ReLU,
                                                   # Adam 1e-3, batch 128, 10 epochs, seed 0
    python examples/mnist.py --latent-dim 2        # a 2-D latent space: adds the manifold figure
    python examples/mnist.py --binarize none       # grayscale targets, as PyTorch's VAE example
    python examples/mnist.py --resume runs/mnist/checkpoint.npz    # continue an interrupted run
    python examples/mnist.py --help                # every option, with its default

This is `python -m tinyvae train` as a script: the command's code is in
tinyvae/commands/train.py, and the training run it drives is tinyvae/lab/training/runner.py's `fit`
around the steps of tinyvae/train.py (Kingma & Welling's Algorithm 1).

Everything goes to --out (default runs/mnist/ for the default settings, runs/<dataset>_<the
settings given that differ from the defaults>/ otherwise, e.g. runs/mnist_latent-dim=2/):
checkpoint.npz and history.json/.csv after every epoch, then metrics.json and the figures. At the
end it prints the test ELBO, the importance-weighted bound L_k (Burda et al. 2016; k =
--iw-samples, 5000 in the papers) and the number of active units; with --beta other than 1 also
the β-weighted loss that training minimized, which is not the ELBO.

Then use the trained model (`python -m tinyvae VERB --help` for each):
    python -m tinyvae evaluate runs/mnist/checkpoint.npz      # the same numbers again, or another k
    python -m tinyvae sample runs/mnist/checkpoint.npz        # a grid of samples (and/or an .npz)
    python -m tinyvae reconstruct runs/mnist/checkpoint.npz   # test images and their
                                                              # reconstructions
    python -m tinyvae figures runs/mnist/checkpoint.npz       # every figure of the run, redrawn
    python -m tinyvae explore runs/mnist/checkpoint.npz       # sliders over the latent space
or from Python: model = tinyvae.load("runs/mnist/checkpoint.npz"); model.evaluate();
model.sample(16, seed=0).

Binarization (the Bernoulli likelihood wants binary pixels; see tinyvae/lab/datasets/binarize.py):
  dynamic  the default for the Bernoulli likelihood: a fresh Bernoulli draw of every training
           image each epoch (Burda et al.); the test set is binarized once, with a fixed seed,
           so that every run is scored on the same bits.
  fixed    for mnist: the binarized MNIST of Larochelle & Murray (2011), i.e. --dataset
           binarized-mnist (50,000 training images, no labels); for fashion-mnist: one fixed
           draw of train and test.
  none     the default for the Gaussian likelihoods (σ = --gaussian-std, 0.1 by default, on
           pixels in [0, 1]): intensities as they are.

A run owns its folder: a fresh run refuses an --out that holds files unless --overwrite is given
(which replaces all of them, crash-safely); with --resume, every setting comes from the checkpoint,
and a flag that contradicts it is refused, since that would not be the same run. --epochs may be
raised to train further. Ctrl-C exits with status 130 after saying where the checkpoint of the
last finished epoch is.
"""

import sys

from tinyvae.commands.train import main

if __name__ == "__main__":
    sys.exit(main(command="python examples/mnist.py"))
