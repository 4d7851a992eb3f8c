"""A trained VAE held in Python: its config, its parameters, and what one does with them.

    model = tinyvae.load("runs/mnist/checkpoint.npz")
    model.evaluate()                             # the numbers the training run printed
    x = model.test_images()                      # its test set, binarized as the run scored it
    mu, log_var = model.encode(x[0])             # one image (D,) or a batch (B, D)
    images = model.sample(16, seed=0)            # (16, D), decoded draws from the prior
    model.elbo(x, seed=0)                        # per image, nats
    model.save("model.npz")                      # just the model: no optimizer, no history

A thin convenience over the functional API the docs derive (tinyvae/vae.py, evaluate.py and
the fast L_k of tinyvae/speed/iw.py): every method is one call of those, with the array
shapes checked and named in the message, and its randomness drawn from a seed.

On disk, a model file is an .npz of plain arrays (read with ``allow_pickle=False``), written
atomically: format_version (0-d int64), kind (0-d str "model"), config (0-d str, JSON of
VAEConfig.to_dict()) and param/<key>. A training checkpoint (checkpoint.py) holds the same
config and parameters and more (optimizer, generator, history); `load` takes either, and from
a checkpoint also keeps the run's settings (tinyvae/lab/training/run_settings.py: the train
command's, checked as its flags are, or a reproduction's protocol), its history and its
number of finished epochs, which evaluate() and test_images() use.

Shapes: B batch, D data, Z latent.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from ... import evaluate, vae
from ...config import VAEConfig, check_params_fit
from ...speed import iw
from ..training import run_settings
from ..training.progress import CountProgress, watched
from .checkpoint import (
    FORMAT_VERSION,
    CheckpointError,
    checked_params,
    int_scalar,
    json_array,
    json_scalar,
    load_checkpoint,
    read_npz,
    saved_config_of,
)
from .files import atomic_write


class Model:
    """A VAE's config and parameters (a dict keyed as config.param_shapes), ready to use.

    settings, history, epochs: the training run's, when loaded from its checkpoint (else None,
    [] and 0); settings is the run's protocol (which data, binarized how, which seeds).
    """

    def __init__(self, config: VAEConfig, params: dict[str, np.ndarray], *,
                 settings: dict | None = None, history: list[dict] | None = None, epochs: int = 0):
        check_params_fit(config, params)
        self.config = config
        self.params = dict(params)
        self.settings = settings
        self.history = list(history or [])
        self.epochs = epochs

    def __repr__(self) -> str:
        c = self.config
        sizes = "-".join(map(str, (c.input_dim, *c.hidden_dims, c.latent_dim)))
        return f"Model({sizes} {c.activation}, {c.likelihood}, {self.dtype.name})"

    @property
    def dtype(self) -> np.dtype:
        return self.params["encoder.W_mu"].dtype

    # ---- shapes: one image or a batch

    def _images(self, x, name: str = "x") -> tuple[np.ndarray, bool]:
        """x as a (B, D) batch, and whether it was a single image (D,)."""
        x = np.asarray(x)
        D = self.config.input_dim
        if x.ndim == 1 and x.shape[0] == D:
            return x[None, :], True
        if x.ndim == 2 and x.shape[1] == D:
            return x, False
        raise ValueError(f"{name} must be one image of shape ({D},) or a batch of shape (B, {D}), "
                         f"got {x.shape}")

    def _codes(self, z) -> tuple[np.ndarray, bool]:
        z = np.asarray(z)
        Z = self.config.latent_dim
        if z.ndim == 1 and z.shape[0] == Z:
            return z[None, :], True
        if z.ndim == 2 and z.shape[1] == Z:
            return z, False
        raise ValueError(f"z must be one latent code of shape ({Z},) or a batch of shape (B, {Z}) "
                         f"(this model has latent_dim = {Z}), got {z.shape}")

    # ---- the model's functions

    def encode(self, x) -> tuple[np.ndarray, np.ndarray]:
        """q(z|x) = N(μ, diag σ²): (mu, log_var), each (Z,) for one image or (B, Z) for a batch."""
        x, single = self._images(x)
        mu, log_var = vae.encode(self.params, x, self.config)
        return (mu[0], log_var[0]) if single else (mu, log_var)

    def decode(self, z) -> np.ndarray:
        """E[x|z], the decoder's mean: (D,) for one code or (B, D) for a batch."""
        z, single = self._codes(z)
        images = vae.decode(self.params, z, self.config)
        return images[0] if single else images

    def sample(self, n: int = 1, *, seed: int | np.random.Generator | None = None) -> np.ndarray:
        """n draws z ~ N(0, I) from the prior, decoded: (n, D)."""
        return vae.sample(self.params, n, np.random.default_rng(seed), self.config)

    def reconstruct(self, x, *, seed: int | np.random.Generator | None = 0) -> np.ndarray:
        """Encode, draw one z = μ + σ ⊙ ε, decode: the shape of x."""
        x, single = self._images(x)
        images = vae.reconstruct(self.params, x, np.random.default_rng(seed), self.config)
        return images[0] if single else images

    def elbo(self, x, *, seed: int | np.random.Generator | None = 0) -> np.ndarray | float:
        """The ELBO of each image (β = 1, one ε per image), in nats: a float for one image, else
        (B,)."""
        x, single = self._images(x)
        eps = np.random.default_rng(seed).standard_normal((len(x), self.config.latent_dim))
        eps = eps.astype(self.dtype)
        loss, _, _ = vae.negative_elbo(self.params, x, eps, self.config, beta=1.0)
        return float(-loss[0]) if single else -loss

    def iw_bound(self, x, *, k: int = 1000,
                 seed: int | np.random.Generator | None = 0) -> np.ndarray | float:
        """L_k, the importance-weighted bound on log p(x) of each image, in nats (speed/iw.py)."""
        x, single = self._images(x)
        bounds = iw.iw_bound_per_example(self.params, x, self.config, np.random.default_rng(seed),
                                         k=k)
        return float(bounds[0]) if single else bounds

    def active_units(self, x, threshold: float = 0.01) -> int:
        """How many latent dimensions the encoder uses on the images x (Burda et al.)."""
        return evaluate.active_units(self.params, self._images(x)[0], self.config,
                                     threshold=threshold)[0]

    # ---- the run's protocol

    def run_protocol(self) -> dict:
        """The run's settings with every key filled in (the defaults for a bare model file)."""
        return run_settings.complete(self.settings, self.config)

    def test_images(self, data_dir: str | os.PathLike | None = None) -> np.ndarray:
        """The test set (M, D) exactly as the run scored it: its dataset, limit and binarization."""
        return run_settings.load_run_data(self.run_protocol(), data_dir, test_only=True).x_test

    def evaluate(self, x=None, *, k: int | None = None, data_dir=None, progress=True) -> dict:
        """The numbers the training command printed: {"elbo", "loss" (recon + β·KL), "recon", "kl",
        "iw_bound", "active_units", ...}, on the run's test set unless x is given, with the run's
        seeds and k (settings["iw_samples"], 0 skips L_k).

        The cost is L_k's: k decoder passes for every image. L_1000 on the 10,000 MNIST test
        images of the default model is 10 million of them, about a minute on a 2-core laptop CPU
        and several on a busy machine; the test ELBO and the active units take a second. So by
        default a progress line follows L_k where a person is watching (stderr a terminal, or a
        notebook): progress=True. False is silent; a function progress(done, total) is called
        after every batch of images instead.
        """
        x = self.test_images(data_dir) if x is None else self._images(x)[0]
        k = self.run_protocol()["iw_samples"] if k is None else k
        if progress is True:
            progress = CountProgress(f"L_{k}", in_place=True) if watched() else None
        return run_settings.evaluate_run(self.params, self.config, x, self.run_protocol(),
                                         self.epochs, k=k, progress=progress or None)

    def save(self, path: str | os.PathLike) -> Path:
        """Write just the model (config and parameters) to an .npz, atomically (save_model)."""
        return save_model(path, self.config, self.params)


def save_model(path: str | os.PathLike, config: VAEConfig, params: dict[str, np.ndarray]) -> Path:
    """Write config and params (no training state) to `path`, atomically; NaN or inf is refused."""
    check_params_fit(config, params)
    for key, arr in params.items():
        if not np.all(np.isfinite(arr)):
            raise CheckpointError(f"not saving {path}: parameter {key!r} contains NaN or inf")
    arrays = {"format_version": np.array(FORMAT_VERSION, dtype=np.int64), "kind": np.array("model"),
              "config": json_array(config.to_dict())}
    arrays.update({f"param/{key}": np.asarray(arr) for key, arr in params.items()})
    return atomic_write(path, lambda f: np.savez(f, **arrays))


def load(path: str | os.PathLike) -> Model:
    """The model saved in `path`: a model file (save_model) or a training checkpoint.

    Everything is checked before anything is returned; a CheckpointError names the file and
    what is wrong with it.
    """
    path = Path(path)
    arrays = read_npz(path)
    if "kind" not in arrays:  # a training checkpoint: it says what is wrong with it, if anything
        checkpoint = load_checkpoint(path)
        try:  # the run's settings are input too: checked as the command line checks its flags
            settings = run_settings.from_checkpoint(checkpoint.extra, checkpoint.config,
                                                    next(iter(checkpoint.params.values())).dtype,
                                                    checkpoint.epoch)
        except ValueError as exc:
            raise CheckpointError(f"{path} is not a valid tinyvae checkpoint: its run settings: "
                                  f"{exc}") from None
        return Model(checkpoint.config, checkpoint.params, settings=settings,
                     history=checkpoint.history, epochs=checkpoint.epoch)

    def fail(what: str):
        raise CheckpointError(f"{path} is not a valid tinyvae model file: {what}")

    expected = {"format_version", "kind", "config"}
    unexpected = sorted(key for key in arrays
                        if key not in expected and not key.startswith("param/"))
    if unexpected or not expected <= set(arrays):
        fail(f"expected the keys {sorted(expected)} and param/<key>; "
             f"missing {sorted(expected - set(arrays))}, unexpected {unexpected}")
    if int_scalar(arrays["format_version"], "format_version", fail) != FORMAT_VERSION:
        fail(f"format_version is not {FORMAT_VERSION}")
    if arrays["kind"].shape != () or str(arrays["kind"]) != "model":
        fail("'kind' must be the string 'model'")
    config = saved_config_of(json_scalar(arrays["config"], "config", fail), None, path, fail)
    return Model(config, checked_params(arrays, config, None, fail))
