"""Recipes: a published paper's experiment written down as data, and the evaluation it reports
at the end of every stage.

IWAE_VAE is the VAE row of Burda, Grosse & Salakhutdinov, "Importance Weighted Autoencoders"
(ICLR 2016), Table 1, MNIST, one stochastic layer, trained with k = 1: test NLL 86.76 nats,
19 active units (appendix D: 88.71 nats on Larochelle & Murray's fixed binarization). Every
choice is in the Recipe below; docs/06-results.md ("Reproducing Burda et al.") says where each
comes from, and where the authors' public code (github.com/yburda/iwae) differs from the paper.

The run itself is tinyvae.lab.training.runner.fit with the recipe's step, the whole schedule as
its lr_schedule (so a run of the first stages and the full run are the same run, and resume
into each other exactly) and a StageEvaluation as its after_epoch. commands/reproduce.py
is the command line.

Shapes: N images, D data, Z latent.
"""

from __future__ import annotations

import statistics
import time
from dataclasses import dataclass, field, replace
from functools import partial
from pathlib import Path
from typing import TextIO

import numpy as np

from ... import evaluate
from ...config import VAEConfig, init_params
from ...optim import make_optimizer
from ...speed import halves
from ...speed.step import make_step
from .. import values
from ..datasets.binarize import fixed_binarization
from ..datasets.data import load_dataset, shown
from .kept_bound import KeptBound
from .progress import CountProgress, clock
from .schedule import iwae_stages, schedule_of_stages

# the one draw of the dynamic protocol's test set (as the train command's)
TEST_BINARIZATION_SEED = 0


@dataclass(frozen=True)
class Variant:
    """One data protocol of a recipe and the number the paper reports for it."""
    dataset: str  # a lab.datasets.data.FILES name
    binarize: str  # "dynamic": redrawn every epoch; "fixed": the published binary images
    n_train: int
    paper_nll: float  # nats
    paper_active_units: int | None
    paper_source: str


@dataclass(frozen=True)
class Recipe:
    """Everything that fixes a reproduction: model, initialization, optimizer, schedule,
    evaluation."""
    name: str
    config: VAEConfig
    init: str  # init_params scheme
    output_bias_from_data: bool  # decoder.b_out = logit of the training images' mean pixel
    optimizer: dict  # make_optimizer arguments, lr excluded (the schedule sets it)
    batch_size: int
    stages: list = field(default_factory=list)  # lab.training.schedule.iwae_stages
    iw_k: int = 5000
    active_threshold: float = 0.01
    dtype: str = "float32"
    variants: dict = field(default_factory=dict)


IWAE_VAE = Recipe(
    name="iwae-vae",
    config=VAEConfig(input_dim=784, hidden_dims=(200, 200), latent_dim=50, activation="tanh",
                     likelihood="bernoulli", beta=1.0),
    init="glorot", output_bias_from_data=True,
    optimizer={"name": "adam", "beta1": 0.9, "beta2": 0.999, "eps": 1e-4},
    batch_size=20, stages=iwae_stages(8),
    variants={
        "dynamic": Variant("mnist", "dynamic", 60_000, 86.76, 19,
                           "Burda et al. 2016, Table 1 (VAE, k = 1)"),
        "fixed": Variant("binarized-mnist", "fixed", 50_000, 88.71, None,
                         "Burda et al. 2016, appendix D"),
    },
)
# Table 1's k = 5 rows: the same protocol, five samples of z per image in every training step.
# "VAE, k = 5" averages the ELBO over the five samples (Burda et al.'s equation 7); here its KL is
# in closed form, where the authors' code samples it too (docs/06-results.md says why that is
# allowed).
# "IWAE, k = 5" trains on L_5 itself (their equation 14).
IWAE_VAE_K5 = replace(
    IWAE_VAE, name="iwae-vae-k5", config=replace(IWAE_VAE.config, k=5, objective="elbo"),
    variants={
        "dynamic": Variant("mnist", "dynamic", 60_000, 86.47, 20,
                           "Burda et al. 2016, Table 1 (VAE, k = 5)"),
        "fixed": Variant("binarized-mnist", "fixed", 50_000, 88.83, 19,
                         "Burda et al. 2016, appendix D, Table 3"),
    },
)
IWAE_IWAE_K5 = replace(
    IWAE_VAE, name="iwae-iwae-k5", config=replace(IWAE_VAE.config, k=5, objective="iwae"),
    variants={
        "dynamic": Variant("mnist", "dynamic", 60_000, 85.54, 22,
                           "Burda et al. 2016, Table 1 (IWAE, k = 5)"),
        "fixed": Variant("binarized-mnist", "fixed", 50_000, 87.63, 22,
                         "Burda et al. 2016, appendix D, Table 3"),
    },
)
RECIPES = {recipe.name: recipe for recipe in (IWAE_VAE, IWAE_VAE_K5, IWAE_IWAE_K5)}


# What defines a reproduction's bits, kept in its checkpoint as extra["recipe"] and compared on
# resume: the invocation's flags, checked as `python -m tinyvae reproduce` checks them.
IDENTITY_CHECKS = {
    "recipe": partial(values.choice, tuple(sorted(RECIPES))),
    "binarization": partial(values.choice, ("dynamic", "fixed")), "seed": values.nonnegative_int,
    "train_limit": values.optional(values.positive_int),
    "test_limit": values.optional(values.positive_int),
    "iw_k": values.positive_int, "step": partial(values.choice, ("fast", "reference")),
}
# Runs recorded before the step was (it was not part of extra["recipe"] then) ran the default one.
UNRECORDED_STEP = "fast"


def check_identity(identity: object) -> dict:
    """A reproduction's extra["recipe"], each entry checked as its flag is (IDENTITY_CHECKS);
    a "step" missing from an older checkpoint is UNRECORDED_STEP. A ValueError names what is
    wrong."""
    if not isinstance(identity, dict):
        raise ValueError("the reproduction's settings must be a JSON object, got "
                         f"{type(identity).__name__}")
    missing = sorted(set(IDENTITY_CHECKS) - {"step"} - set(identity))
    unknown = sorted(map(str, set(identity) - set(IDENTITY_CHECKS)))
    if missing or unknown:
        raise ValueError(f"the reproduction's settings lack {missing} or have unknown {unknown}")
    checked = {key: IDENTITY_CHECKS[key](key, value) for key, value in identity.items()}
    return {**checked, "step": checked.get("step", UNRECORDED_STEP)}


def scoring_protocol(identity: dict, epochs: int) -> dict:
    """How a reproduction's checkpoint after `epochs` epochs is scored, as its stage evaluations
    score it: the run settings of training/run_settings.py (its test set and limit, the
    recipe's model, k = its iw_k) and "iw_seed", the L_k noise of the stage that the epoch ends
    or lies in, Generator([seed, stage, k]) (StageEvaluation.evaluate)."""
    identity = check_identity(identity)
    recipe = RECIPES[identity["recipe"]]
    variant, config = recipe.variants[identity["binarization"]], recipe.config
    stage = next((s for s in recipe.stages if epochs <= s["last_epoch"]), recipe.stages[-1])
    k, seed = identity["iw_k"], identity["seed"]
    return {"dataset": variant.dataset, "binarize": variant.binarize, "epochs": epochs,
            "batch_size": recipe.batch_size, "lr": stage["lr"],
            "optimizer": recipe.optimizer["name"],
            "hidden": list(config.hidden_dims), "latent_dim": config.latent_dim,
            "activation": config.activation, "likelihood": config.likelihood, "beta": config.beta,
            "seed": seed, "dtype": recipe.dtype, "train_limit": identity["train_limit"],
            "test_limit": identity["test_limit"], "iw_samples": k, "step": identity["step"],
            "k": config.k, "objective": config.objective, "iw_seed": [seed, stage["stage"], k],
            "scored_by": f"as the {recipe.name} reproduction's stage {stage['stage']} evaluation "
                         f"scores it (L_{k} noise seed {[seed, stage['stage'], k]})"}


def load_data(recipe: Recipe, binarization: str, data_dir=None, *, train_limit: int | None = None,
              test_limit: int | None = None) -> tuple[np.ndarray, np.ndarray, str, str]:
    """(x_train (N, D), x_test (M, D) binary, binarize for fit, a sentence saying what was loaded).

    Dynamic: MNIST's 60,000 intensities, redrawn every epoch by fit; the test set binarized
    once (seed TEST_BINARIZATION_SEED), so that every stage and every run is scored on the same
    bits. Fixed: Larochelle & Murray's binary images (50,000 train, 10,000 test).
    """
    variant = recipe.variants[binarization]
    ds = load_dataset(variant.dataset, data_dir)
    x_train, x_test = ds.x_train[:train_limit], ds.x_test[:test_limit]
    name = variant.dataset + ("" if ds.folder is None else f" from {shown(ds.folder)}")
    if variant.binarize == "dynamic":
        return (x_train, fixed_binarization(x_test, TEST_BINARIZATION_SEED), "dynamic",
                f"{name}, dynamically binarized "
                f"(test set binarized once, seed {TEST_BINARIZATION_SEED})")
    return x_train, x_test, "none", f"{name} (Larochelle & Murray 2011, fixed binarization)"


def initial_params(recipe: Recipe, x_train: np.ndarray,
                   rng: np.random.Generator) -> dict[str, np.ndarray]:
    """init_params with the recipe's scheme; then, as the authors' code does, the decoder's output
    bias at the log-odds of the mean training pixel, clipped to [0.001, 0.999], so that the first
    decoder outputs the average image: b = log(p / (1 − p))."""
    params = init_params(recipe.config, rng, np.dtype(recipe.dtype), scheme=recipe.init)
    if recipe.output_bias_from_data:
        p = np.clip(x_train.mean(axis=0, dtype=np.float64), 0.001, 0.999)  # (D,)
        params["decoder.b_out"][...] = np.log(p / (1.0 - p))
    return params


def build_step(recipe: Recipe, x_train: np.ndarray, seed: int, path: str = "fast"):
    """(step, rng): the recipe's model and optimizer in a step object, and the run's one
    Generator."""
    rng = np.random.default_rng(seed)
    kw = {key: value for key, value in recipe.optimizer.items() if key != "name"}
    optimizer = make_optimizer(recipe.optimizer["name"], recipe.stages[0]["lr"], **kw)
    return make_step(path, recipe.config, initial_params(recipe, x_train, rng), optimizer,
                     recipe.batch_size), rng


def lr_schedule(recipe: Recipe) -> list[list]:
    """The whole recipe's schedule, whichever stages a call runs: a prefix resumes into the rest."""
    return schedule_of_stages(recipe.stages)


def stage_ending_at(recipe: Recipe, epoch: int) -> dict | None:
    """The stage whose last epoch is `epoch`, or None."""
    return next((s for s in recipe.stages if s["last_epoch"] == epoch), None)


class StageEvaluation:
    """fit's evaluation: at the end of each stage, L_k (speed/iw.py, Burda et al.'s k = 5000),
    the active units, and the time they took; these join the epoch's history record (whose
    test_loss is the test ELBO's negative).

    Nothing of it is thrown away by a stop: fit saves the epoch before it evaluates, and L_k
    keeps its finished parts in the run's folder as it goes (stage<N>-L<k>.npz, kept_bound.py),
    so a resumed run goes on from the last part, with the same numbers, bit for bit. A finished
    file stays: each test image's L_k at the end of that stage.

    Before each evaluation it says what it computes and about how long that takes (this
    evaluation's own pace if it resumes, else the last one's, else timed on one batch); after
    it, the numbers. eta_extra tells fit's ETA lines how long the evaluations to come will take.
    """

    def __init__(self, recipe: Recipe, x_test: np.ndarray, *, seed: int, last_epoch: int, folder,
                 params, iw_k: int | None = None, stream: TextIO | None = None,
                 eval_seconds: float | None = None):
        self.recipe, self.x_test, self.seed, self.last_epoch = recipe, x_test, seed, last_epoch
        # params: the run's, only for timing an evaluation before there is one to measure
        self.folder, self.params = Path(folder), params
        self.iw_k = recipe.iw_k if iw_k is None else iw_k
        self.stream = stream
        self.eval_seconds = eval_seconds  # the last evaluation's, in this run (None: none yet)
        self.probed: float | None = None  # an evaluation's seconds, timed on one batch
        # L_k runs two batches of images at once where a second core is free beside a one-thread
        # OpenBLAS (halves.default_threads, as the recipe runs): the same numbers, bit for bit
        # (speed/iw.py), in about 0.6 of the time.
        self.threads = halves.default_threads()

    def due(self, epoch: int) -> bool:
        return stage_ending_at(self.recipe, epoch) is not None

    def __call__(self, epoch: int, step) -> dict:
        stage = stage_ending_at(self.recipe, epoch)
        result = self.evaluate(stage, step.params)
        self.eval_seconds = result["eval_seconds"]
        self.say(f"stage {stage['stage']} done (epoch {epoch}, lr {stage['lr']:.4g}): "
                 f"L_{result['iw_k']} {result['iw_bound']:.2f} nats, "
                 f"{result['active_units']} active units, "
                 f"evaluation {clock(result['eval_seconds'])}")
        return result

    def evaluate(self, stage: dict, params) -> dict:
        """The stage's numbers; L_k's noise from its own Generator([seed, stage, k])."""
        config, k, n = self.recipe.config, self.iw_k, len(self.x_test)
        rng = np.random.default_rng([self.seed, stage["stage"], k])
        kept = KeptBound(self.folder / f"stage{stage['stage']}-L{k}.npz", params, self.x_test,
                         config, rng, k=k, threads=self.threads)
        left = (kept.seconds / kept.found if kept.found else self.seconds() / n) * (n - kept.found)
        self.say(f"stage {stage['stage']} evaluation (epoch {stage['last_epoch']}): L_{k} and "
                 f"active units on {n:,} test images, about {clock(left)}"
                 + (f" for the {n - kept.found:,} images left" if kept.found else ""))
        progress = None
        if self.stream is not None:
            progress = CountProgress(f"stage {stage['stage']} L_{k}", self.stream)
            if kept.found:
                progress.begin(kept.found, n)
        bound = float(np.mean(kept.run(progress)))
        t0 = time.perf_counter()
        n_active, _ = evaluate.active_units(params, self.x_test, config,
                                            threshold=self.recipe.active_threshold)
        return {"stage": stage["stage"], "iw_k": k, "iw_bound": bound,
                "active_units": int(n_active),
                "eval_seconds": kept.seconds + time.perf_counter() - t0}

    def seconds(self) -> float:
        """An evaluation's seconds: the last one's, or before there is one, timed on one batch."""
        if self.eval_seconds is not None:
            return self.eval_seconds
        if self.probed is None:
            from .run_settings import estimate_seconds  # run_settings imports this module

            self.probed = estimate_seconds(self.params, self.recipe.config, len(self.x_test),
                                           self.iw_k, threads=self.threads, test_elbo=False)
        return self.probed

    def eta_extra(self, epoch: int, epoch_seconds: list[float]) -> tuple[float, str]:
        """For fit's ETA: the seconds of the stage evaluations still to come once epoch `epoch` is
        trained (its own, if it ends a stage), up to last_epoch, and what they are."""
        left = sum(1 for s in self.recipe.stages if epoch <= s["last_epoch"] <= self.last_epoch)
        if not left:
            return 0.0, ""
        each = self.seconds()
        how = "as the last one took" if self.eval_seconds is not None else "as timed on one batch"
        many = f"{left} stage evaluations at about {clock(each)} each" if left > 1 else \
            f"1 stage evaluation of about {clock(each)}"
        return left * each, f"{many}, {how}"

    def say(self, text: str) -> None:
        if self.stream is not None:
            self.stream.write(text + "\n")
            self.stream.flush()


def stage_summary(recipe: Recipe, history: list[dict]) -> list[dict]:
    """One row per completed stage from a run's history: its epochs, lr, wall clock (training,
    test ELBO each epoch and the stage's evaluation), the median epoch's seconds (training and
    test ELBO), the evaluation's, test ELBO, L_k, active units."""
    rows = []
    for stage in recipe.stages:
        if stage["last_epoch"] > len(history):
            break
        record = history[stage["last_epoch"] - 1]
        if "iw_bound" not in record:
            break  # trained, but stopped inside its evaluation
        epochs = history[stage["first_epoch"] - 1:stage["last_epoch"]]
        rows.append({"stage": stage["stage"], "epochs": stage["epochs"],
                     "last_epoch": stage["last_epoch"], "lr": stage["lr"],
                     "seconds": sum(h["seconds"] for h in epochs), "elapsed": record["elapsed"],
                     # an epoch's training and test ELBO; the stage's last epoch also holds its
                     # evaluation
                     "median_epoch_seconds": statistics.median(
                         h["seconds"] - h.get("eval_seconds", 0.0) for h in epochs),
                     "eval_seconds": record.get("eval_seconds"),
                     "test_elbo": -record["test_loss"], "iw_k": record.get("iw_k"),
                     "iw_bound": record.get("iw_bound"),
                     "active_units": record.get("active_units")})
    return rows


def parse_stages(text: str, recipe: Recipe) -> tuple[int, int]:
    """"A-B" or "B" -> (A, B), stage numbers of the recipe, A <= B; ValueError otherwise."""
    parts = text.split("-")
    try:
        first, last = (int(parts[0]), int(parts[-1])) if 1 <= len(parts) <= 2 else (None, None)
    except ValueError:
        first = last = None
    if len(parts) == 1 and last is not None:
        first = 0
    n = len(recipe.stages)
    if first is None or not 0 <= first <= last < n:
        raise ValueError(f"expected stages as A-B or B with 0 <= A <= B <= {n - 1} (e.g. 0-5), "
                         f"got {text!r}")
    return first, last


def markdown_rows(rows: list[dict]) -> list[str]:
    """stage_summary's rows as the lines of docs/06-results.md's reproduction table (the test
    tests/test_recipe.py checks the pasted lines against the committed summary with this)."""
    return [f"| {r['stage']} | {r['last_epoch']:,} | {r['lr']:.4g} | {r['seconds'] / 60:.1f} min | "
            f"{r['median_epoch_seconds']:.1f} s | {r['eval_seconds']:,.0f} s | "
            f"{r['test_elbo']:.2f} | {r['iw_bound']:.2f} | **{-r['iw_bound']:.2f}** | "
            f"{r['active_units']} |"
            for r in rows]
