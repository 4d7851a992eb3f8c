"""tinyvae: a variational autoencoder in NumPy, with every gradient derived and checked.

The lecture, read in this order (each file cites docs/ by equation number):

    layers.py     dense layers, activations and the reparameterization, as forward/backward pairs
    losses.py     the ELBO's terms: the likelihoods (reconstruction) and the KL to the prior
    config.py     the model's shape: VAEConfig, its parameters and their initialization
    vae.py        encoder, sample, decoder, the loss and its backward pass
    optim.py      SGD, Adagrad, Adam
    gradcheck.py  analytic gradients against central finite differences
    train.py      Kingma & Welling's Algorithm 1: the training step and loop
    evaluate.py   the test ELBO, the importance-weighted bound L_k, active units

The engineering lives in wings that import the core and never the reverse:
speed/ (the same mathematics arranged for BLAS), lab/ (data, files, checkpoints, the
crash-safe runner, progress, plots, the benchmark), classroom/ (teaching tools) and
commands/ (the command lines: `python -m tinyvae --help`).

The public API, importable from here (a complete example; the README has more):

    >>> import numpy as np, tinyvae
    >>> config = tinyvae.VAEConfig(input_dim=784, hidden_dims=(400,), latent_dim=20)
    >>> rng = np.random.default_rng(0)
    >>> params = tinyvae.init_params(config, rng)
    >>> x = (rng.random((8, 784)) < 0.5).astype(float)     # 8 binary "images"
    >>> eps = rng.standard_normal((8, 20))                  # the noise of z = μ + σ ⊙ ε
    >>> loss, grads, stats = tinyvae.loss_and_grads(params, x, eps, config)
    >>> sorted(grads) == sorted(params)                     # a gradient for every parameter
    True

and for a trained model, `model = tinyvae.load("runs/mnist/checkpoint.npz")`, with
model.encode, decode, sample, reconstruct, elbo, iw_bound and save.
"""

from __future__ import annotations

import importlib

from .config import OBJECTIVES, VAEConfig, init_params, param_shapes
from .evaluate import active_units, iw_bound, kl_per_dimension, test_elbo
from .gradcheck import check_params, numerical_gradient, rel_error
from .layers import ACTIVATIONS
from .losses import LIKELIHOODS
from .optim import OPTIMIZERS, SGD, Adagrad, Adam, Optimizer, make_optimizer
from .train import ReferenceStep, train_epochs, train_step
from .vae import (
    decode,
    encode,
    iwae_loss_and_grads,
    log_likelihood,
    loss_and_grads,
    negative_elbo,
    reconstruct,
    sample,
)

__version__ = "0.1.0"

__all__ = [
    "VAEConfig", "init_params", "param_shapes",
    "loss_and_grads", "iwae_loss_and_grads", "negative_elbo",
    "encode", "decode", "sample", "reconstruct", "log_likelihood",
    "ACTIVATIONS", "LIKELIHOODS", "OBJECTIVES",
    "Optimizer", "SGD", "Adagrad", "Adam", "OPTIMIZERS", "make_optimizer",
    "numerical_gradient", "rel_error", "check_params",
    "train_epochs", "train_step", "ReferenceStep",
    "test_elbo", "iw_bound", "kl_per_dimension", "active_units",
    "Model", "load", "save_model",
]

# Loaded on first use: the saved-model tools of the lab (files, the fast L_k), which a reader of
# the lecture's core does not need to import.
_LAZY = {"Model": "tinyvae.lab.storage.model", "load": "tinyvae.lab.storage.model",
         "save_model": "tinyvae.lab.storage.model"}


def __getattr__(name: str):
    """The lazily loaded names of _LAZY, imported on first use."""
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'tinyvae' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))

