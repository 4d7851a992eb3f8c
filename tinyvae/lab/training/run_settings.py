"""A run's settings: the images it was trained and scored on, and how it was scored.

The training command, the commands that use a saved run (evaluate, figures, reconstruct,
explore) and ``tinyvae.load(checkpoint).evaluate()`` all load and score through here, with the
settings the run kept in its checkpoint (``extra["cli"]``), so that each of them prints exactly
the numbers the training run printed:

- the data: the dataset, the first --train-limit / --test-limit images, and the binarization
  (the test set of a run on binary pixels is binarized once, with TEST_BINARIZATION_SEED, so that
  every run is scored on the same bits);
- the numbers: the test ELBO with the ε of np.random.default_rng([seed, epochs]) (the ε of
  the run's last epoch, so it equals the history's last test loss), L_k with
  default_rng([seed, 5]), the KL of each latent dimension and the active units.

The ELBO (β = 1) and the loss training minimized (recon + β·KL) are different numbers when
β ≠ 1; both are reported, each under its own name.

Shapes: N training images, M test images, D data, Z latent.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from functools import partial

import numpy as np

from ... import evaluate
from ...config import OBJECTIVES, VAEConfig
from ...layers import ACTIVATIONS
from ...losses import LIKELIHOODS
from ...optim import OPTIMIZERS
from ...speed import iw
from .. import values
from ..datasets.binarize import fixed_binarization
from ..datasets.data import CLASS_NAMES, FILES, load_dataset, shown
from ..errors import ResultError
from . import recipes

# The settings that define a run, with their defaults; a checkpoint keeps them in extra["cli"].
# binarize and gaussian_std default by likelihood (default_binarize, DEFAULT_GAUSSIAN_STD).
RUN_DEFAULTS = {
    "dataset": "mnist", "binarize": None, "epochs": 10, "batch_size": 128, "lr": 1e-3,
    "optimizer": "adam", "hidden": (400,), "latent_dim": 20, "activation": "relu",
    "likelihood": "bernoulli", "gaussian_std": None, "beta": 1.0, "warmup_epochs": 0.0, "seed": 0,
    "dtype": "float32", "train_limit": None, "test_limit": None, "iw_samples": 1000, "step": "fast",
    "k": 1, "objective": "elbo",
}
BINARIZATIONS = ("dynamic", "fixed", "none")
DTYPES = ("float32", "float64")
STEPS = ("fast", "reference")
# Each setting's check (lab/values.py): the same as the train command's flag for it, so that a
# checkpoint's settings can hold nothing the command line would have refused.
SETTING_CHECKS = {
    "dataset": partial(values.choice, tuple(FILES)),
    "binarize": values.optional(partial(values.choice, BINARIZATIONS)),
    "epochs": values.nonnegative_int, "batch_size": values.positive_int,
    "lr": values.positive_float,
    "optimizer": partial(values.choice, tuple(sorted(OPTIMIZERS))), "hidden": values.hidden_sizes,
    "latent_dim": values.positive_int,
    "activation": partial(values.choice, tuple(sorted(ACTIVATIONS))),
    "likelihood": partial(values.choice, tuple(LIKELIHOODS)),
    "gaussian_std": values.optional(values.gaussian_std), "beta": values.nonnegative_float,
    "warmup_epochs": values.nonnegative_float, "seed": values.seed,
    "dtype": partial(values.choice, DTYPES), "train_limit": values.optional(values.positive_int),
    "test_limit": values.optional(values.positive_int), "iw_samples": values.nonnegative_int,
    "step": partial(values.choice, STEPS), "k": values.positive_int,
    "objective": partial(values.choice, tuple(OBJECTIVES)),
}
# How a run is scored beyond its settings, where it differs from the train command's way:
# "iw_seed", the seed of L_k's noise (default [seed, L_K_SEED]); "scored_by", which protocol.
SCORING = ("iw_seed", "scored_by")
TEST_BINARIZATION_SEED = 0  # the test set's one fixed binarization, the same for every run
FIXED_TRAIN_SEED = 1  # fashion-mnist --binarize fixed: the training set's one draw
L_K_SEED = 5  # L_k draws from default_rng([seed, 5]), apart from training and the test ELBO
# σ of the fixed-variance Gaussian on pixels in [0, 1]: about the spread of a good model's
# errors on MNIST, so that the reconstruction term outweighs the KL as it should. σ = 1 (the
# core's VAEConfig default) makes −log p(x|z) nearly flat in the pixels and the KL wins.
DEFAULT_GAUSSIAN_STD = 0.1


def default_binarize(likelihood: str) -> str:
    """Binary pixels for the Bernoulli likelihood (a fresh draw every epoch); none for a
    Gaussian."""
    return "dynamic" if likelihood == "bernoulli" else "none"


def complete(settings: dict | None, config: VAEConfig | None = None) -> dict:
    """A checkpoint's settings with every key of RUN_DEFAULTS (older checkpoints lack some), and
    the SCORING entries it has.

    A model file keeps no settings: its settings are the defaults for its likelihood."""
    settings = dict(settings or {})
    if config is not None:
        settings.setdefault("likelihood", config.likelihood)
        if config.likelihood == "gaussian":
            settings.setdefault("gaussian_std", config.gaussian_std)
    out = {key: settings.get(key, default) for key, default in RUN_DEFAULTS.items()}
    out.update({key: settings[key] for key in SCORING if key in settings})
    if out["binarize"] is None:
        out["binarize"] = ("fixed" if out["dataset"] == "binarized-mnist"
                           else default_binarize(out["likelihood"]))
    if out["gaussian_std"] is None and out["likelihood"] == "gaussian":
        out["gaussian_std"] = DEFAULT_GAUSSIAN_STD
    return out


def check(settings: object, config: VAEConfig | None = None, dtype=None) -> dict:
    """A checkpoint's settings (extra["cli"]), each checked as the train command checks its flag
    (SETTING_CHECKS), then against each other and against the model they were saved with
    (config and the parameters' dtype), which they must describe. Returns them as they are
    (keys older checkpoints lack stay missing: complete() fills them). A ValueError names the
    first setting that is wrong."""
    if not isinstance(settings, dict):
        raise ValueError(f"the run's settings must be a JSON object, got {type(settings).__name__}")
    unknown = sorted(map(str, set(settings) - set(SETTING_CHECKS)))
    if unknown:
        raise ValueError(f"unknown run setting(s) {unknown}")
    checked = {key: SETTING_CHECKS[key](key, value) for key, value in settings.items()}
    whole = complete(checked)
    if dataset_of(whole) == "binarized-mnist" and whole["binarize"] == "dynamic":
        raise ValueError("binarize 'dynamic' with dataset binarized-mnist: it is already binarized")
    if whole["likelihood"] != "gaussian" and checked.get("gaussian_std") is not None:
        raise ValueError(f"gaussian_std {checked['gaussian_std']!r} with likelihood "
                         f"{whole['likelihood']!r}: only the gaussian likelihood has a fixed σ")
    if config is not None:
        model = {"hidden": tuple(config.hidden_dims), "latent_dim": config.latent_dim,
                 "activation": config.activation, "likelihood": config.likelihood,
                 "beta": config.beta,
                 "k": config.k, "objective": config.objective,
                 "gaussian_std": config.gaussian_std if config.likelihood == "gaussian" else None}
        for key, value in model.items():
            if checked.get(key) is not None and checked[key] != value:
                raise ValueError(f"{key} {checked[key]!r} is not the model's ({value!r})")
    if dtype is not None and "dtype" in checked and np.dtype(checked["dtype"]) != np.dtype(dtype):
        raise ValueError(f"dtype {checked['dtype']!r} is not the parameters' "
                         f"({np.dtype(dtype).name})")
    return {key: list(value) if key == "hidden" else value for key, value in checked.items()}


def from_checkpoint(extra: dict, config: VAEConfig, dtype, epochs: int) -> dict | None:
    """The settings a checkpoint's run was trained and is scored with, checked (a ValueError
    names what is wrong): the train command's extra["cli"] (check), a reproduction's
    extra["recipe"] (recipes.scoring_protocol: its test set, k and per-stage L_k seeds), or,
    for a bare runner.fit checkpoint, only its seed (extra["train"]["eval_seed"]); else None."""
    if "cli" in extra:
        return {**check(extra["cli"], config, dtype),
                "scored_by": "as its training run scored it (its settings)"}
    if "recipe" in extra:
        settings = recipes.scoring_protocol(extra["recipe"], epochs)
        check({key: value for key, value in settings.items() if key not in SCORING}, config, dtype)
        return settings
    train = extra.get("train")
    if isinstance(train, dict) and "eval_seed" in train:
        return {"seed": values.seed("eval_seed", train["eval_seed"]),
                "scored_by": "by the defaults with its run's seed (it keeps no test set)"}
    return None


@dataclass
class RunData:
    """The images of a run as it used them. fit_binarize is what runner.fit is given."""
    x_train: np.ndarray  # (N, D)
    x_test: np.ndarray  # (M, D)
    y_test: np.ndarray | None  # (M,) labels, None for binarized-mnist
    fit_binarize: str
    described: str  # one line: what was loaded, from where, binarized how
    class_names: tuple[str, ...] | None  # names of the labels 0, 1, ... (None: show the numbers)
    label_kind: str  # "digit" or "class", the legend's title


def dataset_of(settings: dict) -> str:
    """The dataset a run read: MNIST with --binarize fixed is Larochelle & Murray's
    binarized-mnist."""
    name = settings["dataset"]
    return "binarized-mnist" if settings["binarize"] == "fixed" and name == "mnist" else name


def check_test_seed(settings: dict) -> None:
    """A ValueError unless the run's test set is a seeded Bernoulli draw, which another seed can
    replace."""
    name = dataset_of(settings)
    if name == "binarized-mnist" or settings["binarize"] not in ("fixed", "dynamic"):
        what = "the published binarized-mnist" if name == "binarized-mnist" else "grayscale"
        raise ValueError("this run's test set is not a seeded Bernoulli draw (it is "
                         f"{what}); "
                         "there is no other draw to score it on")


def load_run_data(settings: dict, data_dir: str | os.PathLike | None = None, *,
                  test_only: bool = False, test_seed: int | None = None) -> RunData:
    """Load the dataset of `settings` (complete()d) and prepare it as the run did; test_only:
    only the test set (x_train is empty), which is all that scoring a saved model needs.

    test_seed: the seed of the test set's one Bernoulli draw, TEST_BINARIZATION_SEED (the run's
    own) by default. Another seed scores the model on another draw of the same test images,
    which shows how much the draw itself moves the numbers; a ValueError where the test set
    is not a seeded draw (grayscale, or Larochelle & Murray's published binarization).
    """
    name = dataset_of(settings)
    if test_seed is not None:
        check_test_seed(settings)
    seed = TEST_BINARIZATION_SEED if test_seed is None else test_seed
    ds = load_dataset(name, data_dir, test_only=test_only)
    x_train, x_test, y_test = ds.x_train, ds.x_test, ds.y_test
    if settings["train_limit"] is not None:
        x_train = x_train[:settings["train_limit"]]
    if settings["test_limit"] is not None:
        x_test, y_test = (x_test[:settings["test_limit"]],
                          None if y_test is None else y_test[:settings["test_limit"]])
    source = f"from {shown(ds.folder)}" if ds.folder is not None else ""
    names = CLASS_NAMES.get(name)
    kind = "digit" if name == "mnist" else "class"

    def data(x_tr, x_te, fit_binarize, how):
        return RunData(x_tr, x_te, y_test, fit_binarize, f"{name} {source}, {how}", names, kind)

    if name == "binarized-mnist":
        return data(x_train, x_test, "none", "Larochelle & Murray's fixed binarization")
    if settings["binarize"] == "fixed":
        return data(fixed_binarization(x_train, FIXED_TRAIN_SEED), fixed_binarization(x_test, seed),
                    "none", f"one fixed binarization (seeds {FIXED_TRAIN_SEED} train, {seed} test)")
    if settings["binarize"] == "dynamic":
        return data(x_train, fixed_binarization(x_test, seed), "dynamic",
                    f"dynamically binarized (test set binarized once, seed {seed})")
    return data(x_train, x_test, "none", "grayscale")


def evaluate_run(params, config: VAEConfig, x_test: np.ndarray, settings: dict, epochs: int, *,
                 k: int | None = None, progress=None) -> dict:
    """The final numbers of a run that finished `epochs` epochs: the test ELBO (and the β-loss),
    L_k (k = settings["iw_samples"] unless given; 0 skips it), the KL per dimension, active units.

    The test ELBO uses the ε stream of the last epoch's evaluation (runner.fit), so it equals
    the history's last test loss; L_k the seed settings["iw_seed"] if the run says so (a
    reproduction's stage), else [seed, L_K_SEED]. progress(done, total) follows L_k, the slow
    part. A number that comes out NaN or infinite (weights that overflow) is a ResultError.
    """
    seed = settings["seed"]
    k = settings["iw_samples"] if k is None else k
    test = evaluate.test_elbo(params, x_test, config, np.random.default_rng([seed, epochs]))
    # before the long part
    _refuse_nonfinite(**{"the test ELBO": [test["recon"], test["kl"], test["loss"]]})
    iw_bound = None
    if k > 0:
        iw_seed = settings.get("iw_seed") or [seed, L_K_SEED]
        iw_bound = iw.iw_bound(params, x_test, config, np.random.default_rng(iw_seed), k=k,
                               progress=progress)
        _refuse_nonfinite(**{f"L_{k}": [iw_bound]})
    n_active, variances = evaluate.active_units(params, x_test, config)
    kl_per_dim = evaluate.kl_per_dimension(params, x_test, config)
    _refuse_nonfinite(**{"the active units' variances": variances,
                         "the KL per dimension": kl_per_dim})
    return {"elbo": -(test["recon"] + test["kl"]), "loss": test["loss"], "recon": test["recon"],
            "kl": test["kl"], "beta": config.beta, "iw_bound": iw_bound, "iw_samples": k,
            "kl_per_dim": kl_per_dim, "active_units": n_active, "variances": variances}


def _refuse_nonfinite(**numbers) -> None:
    bad = [name for name, array in numbers.items() if not np.all(np.isfinite(array))]
    if bad:
        raise ResultError(f"{' and '.join(bad)} came out NaN or infinite: this "
                          "model's weights overflow its arithmetic, so it has no numbers to report")


def estimate_seconds(params, config: VAEConfig, n_test: int, k: int, *, probe: int | None = None,
                     threads: int = 1, test_elbo: bool = True) -> float:
    """How long evaluate_run will take on n_test images (L_k only, without test_elbo), timed now
    on `probe` random images, by default one batch of L_k's (the evaluation's own shapes: a
    smaller probe runs smaller products, which cost more per image) and at least 32: as steady
    as the machine's load (the commands re-estimate it from measured progress as they go).

    L_k dominates (n_test·k decoder passes): its time per image is measured, not guessed, on
    the model's own parameters (the values do not change the time), with L_k's `threads`.
    """
    if probe is None:
        dtype = params["encoder.W_mu"].dtype
        probe = max(32, iw.images_at_once(k, config, dtype, threads=threads) if k else 0)
    probe = max(1, min(probe, n_test))
    x = (np.random.default_rng(0).random((probe, config.input_dim)) < 0.5).astype(
        params["encoder.W_mu"].dtype)
    t0 = time.perf_counter()
    if test_elbo:
        evaluate.test_elbo(params, x, config, np.random.default_rng(0))
    if k > 0:
        iw.iw_bound(params, x, config, np.random.default_rng(0), k=k, threads=threads)
    return (time.perf_counter() - t0) * n_test / probe


def what_is_evaluated(n_test: int, k: int) -> str:
    parts = ["test ELBO", *([f"L_{k}"] if k > 0 else []), "active units"]
    return f"{', '.join(parts)} on {n_test:,} test images"


def report_lines(results: dict, config: VAEConfig, settings: dict) -> list[str]:
    """What the training command prints at the end, and the evaluate command prints again."""
    r = results
    lines = [f"test ELBO    {r['elbo']:.2f} nats per image "
             f"(= −(recon {r['recon']:.2f} + KL {r['kl']:.2f}))"]
    if config.beta != 1:
        lines.append(f"β-loss       {r['loss']:.2f} nats per image "
                     f"(recon {r['recon']:.2f} + {config.beta:g} × KL {r['kl']:.2f}: "
                     f"what training minimized, β = {config.beta:g}; not the ELBO)")
    if r["iw_bound"] is not None:
        label = f"L_{r['iw_samples']}"
        lines.append(f"{label:<12} {r['iw_bound']:.2f} nats "
                     f"(importance-weighted bound on log p(x), k = {r['iw_samples']})")
    if (settings["binarize"] == "none" and config.likelihood == "bernoulli"
            and settings["dataset"] != "binarized-mnist"):
        lines.append("             (grayscale targets: the Bernoulli 'likelihood' is not "
                     "normalized for them, so these compare only with other grayscale runs, e.g. "
                     "PyTorch's example, not with papers' binary MNIST)")
    lines.append(f"active units {r['active_units']} of {config.latent_dim} (Cov_x E_q[z_u] > 0.01)")
    if config.objective == "iwae":
        lines.append(f"trained on   L_{config.k} (the importance-weighted objective, "
                     f"k = {config.k}); the test ELBO above is the usual one-sample ELBO")
    elif config.k > 1:
        lines.append(f"trained on   the ELBO averaged over k = {config.k} samples of z per image")
    return lines


def metrics_of(results: dict, config: VAEConfig, settings: dict, **facts) -> dict:
    """metrics.json: the final numbers, the settings that produced them, and `facts` (data, timing,
    ...)."""
    r = results
    return {
        "test_elbo": r["elbo"], "test_loss": r["loss"], "beta": config.beta,
        "test_recon": r["recon"], "test_kl": r["kl"], "iw_bound": r["iw_bound"],
        "iw_samples": r["iw_samples"], "active_units": int(r["active_units"]),
        "active_unit_variance": [float(v) for v in r["variances"]],
        "kl_per_dim": [float(v) for v in r["kl_per_dim"]], "config": config.to_dict(),
        "settings": {**settings, "hidden": list(settings["hidden"])}, **facts,
        "numpy": np.__version__,
    }
