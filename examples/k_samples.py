"""What training with k samples per image buys, and what it costs the encoder's gradient.

    python examples/k_samples.py models --json docs/results/k_samples.json \\
        --plot docs/figures/k_samples.png
    python examples/k_samples.py snr --json docs/results/k_samples_snr.json \\
        --plot docs/figures/k_samples_snr.png

`models` trains Burda et al.'s Table 1 model (784-200-200-50 tanh, Bernoulli, their
initialization, Adam, batch 20, dynamic binarization) with the ELBO averaged over k samples and
with the importance-weighted bound L_k (docs/04-gradients.md section 7), for k = 1, 5, 20, for
the first --epochs passes of their schedule (stages 0-1: 1 pass at 1e-3, 3 at 7.2e-4; the paper
runs 3,280). Each model is kept in ~/.cache/tinyvae/k_samples/ and loaded from there the next
time (an interrupted run resumes). Then, on the test set binarized once (seed 0): the active
units (all 10,000 images), and on the first --images images the ELBO (the reconstruction term
averaged over --elbo-samples samples, the KL exact), L_k' with k' = --iw-k, and their gap
L_k' − ELBO, image by image, with its standard error.

`snr` takes one of those models (--model, default the one trained with L_5), or with
--checkpoint a saved model of Table 1's size, such as the reproduction's run after stage 5
(364 passes):

    python -m tinyvae reproduce iwae-iwae-k5 --stages 0-5
    python examples/k_samples.py snr --json docs/results/k_samples_snr_trained.json \\
        --checkpoint ~/.cache/tinyvae/runs/iwae-iwae-k5-dynamic/checkpoint.npz

It measures, for the gradient of L_k at k = 1, 5, 20, 100 on a fixed batch of --batch test
images, the signal-to-noise ratio of every parameter's gradient over --repeats draws of the
noise ε:

    SNR_j = |mean of g_j| / std of g_j                  docs/04-gradients.md eq. (21)

in float64, from the core's vae.loss_and_grads; then each network's mean over its parameters,
with a standard error from the jackknife over --groups groups of draws.

`long` reads the summaries of the three reproductions of Table 1's rows (python -m tinyvae
reproduce iwae-vae, iwae-vae-k5, iwae-iwae-k5 --summary FILE; by default the committed ones in
docs/results/) and prints and draws, stage by stage, their NLL, the gap L_5000 − ELBO and the
active units:

    python examples/k_samples.py long --plot docs/figures/k_samples_long.png

Shapes: B batch, D pixels, Z latent, K samples per image, R draws of ε, P parameters.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np

from tinyvae import evaluate, vae
from tinyvae.commands.args import output_file, positive_int, seed
from tinyvae.commands.lesson import run_lesson
from tinyvae.config import VAEConfig
from tinyvae.lab.datasets.data import user_cache_dir
from tinyvae.lab.errors import UsageError
from tinyvae.lab.storage.checkpoint import CheckpointError, load_checkpoint
from tinyvae.lab.training import recipes
from tinyvae.lab.training.runner import CHECKPOINT_NAME, fit
from tinyvae.speed import iw

OBJECTIVES = ("elbo", "iwae")
TRAIN_KS = (1, 5, 20)
SNR_KS = (1, 5, 20, 100)
DEFAULT_SNR_MODEL = "iwae-5"  # the model the snr part trains, objective-k


# ---- the models: trained with the ELBO or with L_k, k samples per image ----

def recipe_for(objective: str, k: int) -> recipes.Recipe:
    """Table 1's recipe (tinyvae/lab/training/recipes.py), k samples, the given objective."""
    base = recipes.IWAE_VAE
    return replace(base, name=f"k-samples-{objective}-k{k}",
                   config=replace(base.config, k=k, objective=objective))


def model_folder(args, objective: str, k: int, n_train: int) -> Path:
    """Where a model lives: one folder per run, whatever its number of epochs."""
    return args.cache_dir / f"{objective}-k{k}-seed{args.seed}-n{n_train}"


def trained(args, objective: str, k: int, x_train: np.ndarray, binarize: str) -> dict:
    """The model after args.epochs epochs: loaded from its folder, resumed there, or trained there.

    Returns {"params", "config", "train_seconds"}."""
    recipe = recipe_for(objective, k)
    folder = model_folder(args, objective, k, len(x_train))
    path = folder / CHECKPOINT_NAME
    epochs_done = load_checkpoint(path, recipe.config).epoch if path.exists() else 0
    if epochs_done > args.epochs:
        raise CheckpointError(f"{path} holds {epochs_done} epochs, more than --epochs "
                              f"{args.epochs}: ask for {epochs_done}, or use another --cache-dir")
    step, rng = recipes.build_step(recipe, x_train, args.seed)
    if epochs_done < args.epochs:
        print(f"training {objective}, k = {k}: epochs {epochs_done + 1}-{args.epochs} "
              f"into {folder}", flush=True)
        folder.mkdir(parents=True, exist_ok=True)
        fit(step, x_train, rng=rng, epochs=args.epochs, batch_size=recipe.batch_size,
            binarize=binarize, out_dir=folder, resume=path if epochs_done else None,
            lr_schedule=recipes.lr_schedule(recipe), stream=None)
    ckpt = load_checkpoint(path, recipe.config)
    return {"params": ckpt.params, "config": ckpt.config,
            "train_seconds": sum(h["seconds"] for h in ckpt.history)}


def elbo_per_image(params, x: np.ndarray, config, rng: np.random.Generator,
                   samples: int) -> np.ndarray:
    """The ELBO of each image, its reconstruction term averaged over `samples` draws of z and
    its KL exact (docs/02-variational-inference.md eq. (11)): (N,) in nats, float64."""
    total = np.zeros(len(x))
    for _ in range(samples):
        eps = rng.standard_normal((len(x), config.latent_dim)).astype(x.dtype)  # (N, Z)
        loss, _, _ = vae.negative_elbo(params, x, eps, config, beta=1.0)  # (N,)
        total -= loss
    return total / samples


def scores(args, model: dict, x_test: np.ndarray, index: int) -> tuple[dict, dict]:
    """Active units, ELBO, L_k' and their gap for one trained model (each its own noise).

    Returns the row of numbers and the per-image ELBO and L_k' (N,), for comparisons in pairs."""
    params, config = model["params"], model["config"]
    x = x_test[:args.images]
    elbo = elbo_per_image(params, x, config, np.random.default_rng([args.seed, index, 1]),
                          args.elbo_samples)
    rng = np.random.default_rng([args.seed, index, 2])
    bound = iw.iw_bound_per_example(params, x, config, rng, k=args.iw_k)
    n_active, activity = evaluate.active_units(params, x_test, config)
    gap = bound - elbo  # (N,): L_k' − ELBO, image by image
    return {"objective": config.objective, "k": config.k, "active_units": n_active,
            "elbo": float(elbo.mean()), "iw_bound": float(bound.mean()),
            "iw_bound_se": float(bound.std(ddof=1) / math.sqrt(len(x))),
            "gap": float(gap.mean()), "gap_se": float(gap.std(ddof=1) / math.sqrt(len(x))),
            "train_seconds": round(model["train_seconds"], 1),
            "activity": [round(float(a), 4) for a in activity]}, {"elbo": elbo, "iw_bound": bound}


def measure_models(args) -> dict:
    x_train, x_test, binarize, described = recipes.load_data(
        recipes.IWAE_VAE, "dynamic", args.data_dir, train_limit=args.train_limit)
    rows, per_image = [], {}
    for objective in OBJECTIVES:
        for k in args.ks:
            model = trained(args, objective, k, x_train, binarize)
            row, per_image[objective, k] = scores(args, model, x_test, len(rows))
            rows.append(row)
    pairs = []  # L_k against the ELBO as the training objective, at the same k, image by image
    for k in args.ks:
        pair = {"k": k}
        for name in ("iw_bound", "elbo"):
            d = per_image["iwae", k][name] - per_image["elbo", k][name]  # (N,)
            pair[name] = float(d.mean())
            pair[name + "_se"] = float(d.std(ddof=1) / math.sqrt(len(d)))
        pairs.append(pair)
    settings = {"epochs": args.epochs, "seed": args.seed, "train_images": len(x_train),
                "test_images_active_units": len(x_test),
                "test_images": min(args.images, len(x_test)),
                "elbo_samples": args.elbo_samples, "iw_k": args.iw_k, "data": described}
    return {"settings": settings, "rows": rows, "pairs": pairs}


def report_models(res: dict) -> str:
    s = res["settings"]
    lines = [f"{s['epochs']} epochs of Table 1's schedule on {s['train_images']:,} images, "
             f"seed {s['seed']}",
             f"L_{s['iw_k']} and ELBO ({s['elbo_samples']} samples) on {s['test_images']:,} test "
             f"images, active units on {s['test_images_active_units']:,}",
             f"{'trained with':<14}{'k':>3}{'L_' + str(s['iw_k']):>10}{'ELBO':>9}"
             f"{'gap L - ELBO':>16}{'active units':>14}"]
    for r in res["rows"]:
        name = "ELBO" if r["objective"] == "elbo" else "L_k (IWAE)"
        lines.append(f"{name:<14}{r['k']:>3}{r['iw_bound']:>10.2f}{r['elbo']:>9.2f}"
                     f"{r['gap']:>9.2f} ± {r['gap_se']:.2f}{r['active_units']:>14}")
    lines.append("trained with L_k minus trained with the ELBO, the same k, image by image:")
    for p in res["pairs"]:
        lines.append(f"  k = {p['k']:<3} L_{s['iw_k']} {p['iw_bound']:+.2f} ± "
                     f"{p['iw_bound_se']:.2f}, ELBO {p['elbo']:+.2f} ± {p['elbo_se']:.2f}")
    return "\n".join(lines)


def plot_models(res: dict, path) -> None:
    """Three panels against the training k: L_k' and the ELBO, their gap, the active units."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(11, 3.6), dpi=90, layout="constrained")
    FigureCanvasAgg(fig)
    left, middle, right = fig.subplots(1, 3)
    iw_k = res["settings"]["iw_k"]
    for objective, color, label in (("elbo", "tab:blue", "trained with the ELBO"),
                                    ("iwae", "tab:orange", "trained with L_k")):
        rows = [r for r in res["rows"] if r["objective"] == objective]
        ks = [r["k"] for r in rows]
        left.plot(ks, [r["iw_bound"] for r in rows], "o-", color=color, label=f"L_{iw_k}, {label}")
        left.plot(ks, [r["elbo"] for r in rows], "s--", color=color, mfc="none",
                  label=f"ELBO, {label}")
        middle.errorbar(ks, [r["gap"] for r in rows], yerr=[r["gap_se"] for r in rows], fmt="o-",
                        color=color, capsize=3, label=label)
        right.plot(ks, [r["active_units"] for r in rows], "o-", color=color, label=label)
    left.set_ylabel("nats per test image")
    left.set_title(f"The bound L_{iw_k} and the ELBO")
    middle.set_ylabel("nats per test image")
    middle.set_title(f"The gap L_{iw_k} − ELBO")
    right.set_ylabel(f"of {len(res['rows'][0]['activity'])} latent units")
    right.set_title("Active units (Var_x μ_u(x) > 0.01)")
    for ax in (left, middle, right):
        ax.set_xscale("log")
        ax.set_xticks([r["k"] for r in res["rows"] if r["objective"] == "elbo"])
        ax.set_xticklabels([str(r["k"]) for r in res["rows"] if r["objective"] == "elbo"])
        ax.set_xlabel("k, samples per image in training")
        ax.legend(fontsize=7)
    s = res["settings"]
    fig.suptitle(f"Table 1's model after {s['epochs']} passes (a short run), dynamically "
                 f"binarized MNIST; k = 1 with L_k is the ELBO with a sampled KL", fontsize=9)
    fig.savefig(path, dpi=90)


# ---- the long runs: Table 1's schedule, from the reproductions' summaries ----

RESULTS = Path(__file__).resolve().parent.parent / "docs" / "results"
LONG_RUNS = (("VAE, k = 1", "iwae-vae", "iwae-vae-dynamic.json"),
             ("VAE, k = 5", "iwae-vae-k5", "iwae-vae-k5-dynamic.json"),
             ("IWAE, k = 5", "iwae-iwae-k5", "iwae-iwae-k5-dynamic.json"))
STAGE_FIELDS = ("stage", "last_epoch", "test_elbo", "iw_bound", "active_units")


def measure_long(args) -> dict:
    """The stages of the three runs, read from the summaries `reproduce --summary` writes."""
    runs = []
    for (label, recipe, _), path in zip(LONG_RUNS, args.summaries):
        try:
            doc = json.loads(Path(path).read_text(encoding="utf-8"))
            stages = [{key: stage[key] for key in STAGE_FIELDS} for stage in doc["stages"]]
            paper = doc["paper"]
            assert doc["recipe"] == recipe and stages and \
                [s["stage"] for s in stages] == list(range(len(stages)))
        except (OSError, ValueError, KeyError, TypeError, AssertionError):
            raise UsageError(f"argument --summaries: {path} is not a summary of the "
                             f"{recipe} run (python -m tinyvae reproduce {recipe} --summary "
                             f"FILE writes one)") from None
        runs.append({"label": label, "recipe": recipe, "paper_nll": paper["nll"],
                     "paper_active_units": paper["active_units"], "stages": stages})
    return {"runs": runs}


def report_long(res: dict) -> str:
    runs = res["runs"]
    short = [r["label"].replace(", k = ", " k") for r in runs]  # "VAE k1", "IWAE k5"
    group = "".join(f"{name:>8}" for name in short)
    lines = ["Table 1's schedule, stage by stage (the three runs' summaries)",
             f"{'':13}  {'NLL = -L_5000':^24}  {'gap L_5000 - ELBO':^24}  {'active units':^24}",
             f"{'stage':>5} {'passes':>6}  {group}  {group}  {group}"]
    for stage in range(max(len(r["stages"]) for r in runs)):
        cells = [r["stages"][stage] if stage < len(r["stages"]) else None for r in runs]
        passes = next(c["last_epoch"] for c in cells if c is not None)

        def column(value, cells=cells) -> str:
            return "".join(f"{'—' if c is None else value(c):>8}" for c in cells)

        lines.append(f"{stage:>5} {passes:>6,}  "
                     + column(lambda c: f"{-c['iw_bound']:.2f}") + "  "
                     + column(lambda c: f"{c['iw_bound'] - c['test_elbo']:.2f}") + "  "
                     + column(lambda c: str(c["active_units"])))
    lines.append("paper, after all 8 stages: " + "; ".join(
        f"{name} {r['paper_nll']} nats, {r['paper_active_units']} units"
        for name, r in zip(short, runs)))
    return "\n".join(lines)


def plot_long(res: dict, path) -> None:
    """Three panels against the passes: the NLL (with the paper's), the gap, the active units."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(11, 3.8), dpi=90, layout="constrained")
    FigureCanvasAgg(fig)
    left, middle, right = fig.subplots(1, 3)
    for run, color in zip(res["runs"], ("tab:blue", "tab:green", "tab:orange")):
        passes = [s["last_epoch"] for s in run["stages"]]
        left.plot(passes, [-s["iw_bound"] for s in run["stages"]], "o-", color=color,
                  label=run["label"])
        left.axhline(run["paper_nll"], color=color, ls="--", lw=0.8,
                     label=f"paper, {run['label']}: {run['paper_nll']}")
        middle.plot(passes, [s["iw_bound"] - s["test_elbo"] for s in run["stages"]], "o-",
                    color=color, label=run["label"])
        right.plot(passes, [s["active_units"] for s in run["stages"]], "o-", color=color,
                   label=run["label"])
    left.set_ylim(top=min(-s["iw_bound"] for r in res["runs"] for s in r["stages"][1:]) + 16)
    left.set_title("NLL = −L_5000 on the test set")
    middle.set_title("The gap L_5000 − test ELBO")
    right.set_title("Active units (Var_x μ_u(x) > 0.01)")
    for ax, label in ((left, "nats per test image"), (middle, "nats per test image"),
                      (right, "of 50 latent units")):
        ax.set_xscale("log")
        ax.set_xlabel("passes over the data (end of each stage)")
        ax.set_ylabel(label)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    fig.suptitle("Table 1's model through Burda et al.'s schedule, dynamically binarized MNIST "
                 "(the stages finished so far)", fontsize=9)
    fig.savefig(path, dpi=90)


# ---- the signal-to-noise ratio of the gradient of L_k ----

def gradient_draws(params, x: np.ndarray, config, k: int, rng: np.random.Generator, repeats: int):
    """The gradient of −L_k on the batch x for `repeats` draws of ε (B, k, Z), one at a time,
    each flattened in the order of params: yields (P,) float64 arrays."""
    config_k = replace(config, k=k, objective="iwae")
    for _ in range(repeats):
        eps = rng.standard_normal((len(x), k, config.latent_dim))  # (B, K, Z)
        _, grads, _ = vae.loss_and_grads(params, x, eps, config_k)
        yield np.concatenate([grads[key].ravel() for key in params])  # (P,)


def moments(draws, groups: int) -> tuple:
    """Sums of d = g − g₀ and of d², in `groups` groups of draws (draw r in group r mod G), g₀
    the first draw (differences keep the variance free of cancellation).

    Returns shift g₀ (P,), sums (G, P), squares (G, P), counts (G,)."""
    shift = sums = squares = None
    counts = np.zeros(groups, dtype=int)
    for r, g in enumerate(draws):
        if shift is None:
            shift, sums, squares = g.copy(), np.zeros((groups, g.size)), np.zeros((groups, g.size))
        d = g - shift
        sums[r % groups] += d
        squares[r % groups] += d * d
        counts[r % groups] += 1
    return shift, sums, squares, counts


def snr_of(shift: np.ndarray, sums: np.ndarray, squares: np.ndarray, n: int) -> np.ndarray:
    """|mean g| / std g per parameter, from the sums of g − shift and of its square over n draws:
    (P,). NaN where g never varies (a pixel that is 0 in every image of the batch leaves its
    first-layer weights a gradient of exactly 0): such a parameter has no SNR."""
    var = (squares - sums * sums / n) / (n - 1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(var > 0, np.abs(shift + sums / n) / np.sqrt(np.maximum(var, 0)), np.nan)


def network_snr(shift, sums, squares, counts, mask: np.ndarray) -> tuple[float, float, np.ndarray]:
    """The mean SNR over the parameters in `mask`, its jackknife standard error (each group of
    draws left out in turn), and the per-parameter SNR (P_mask,)."""
    G = len(counts)
    sum_all, square_all, n_all = sums.sum(0), squares.sum(0), counts.sum()
    left_out = np.array([np.nanmean(snr_of(shift, sum_all - sums[g], square_all - squares[g],
                                           n_all - counts[g])[mask]) for g in range(G)])
    se = math.sqrt((G - 1) / G * np.sum((left_out - left_out.mean())**2))
    total = snr_of(shift, sum_all, square_all, n_all)[mask]
    return float(np.nanmean(total)), se, total


def gradient_snr(params, x: np.ndarray, config, ks, repeats: int, groups: int,
                 rng: np.random.Generator) -> list[dict]:
    """For each k, each network's mean SNR (eq. (21)) with its jackknife s.e., its median, and
    the share of its parameters whose SNR is lower than at the first k."""
    keys = list(params)
    is_encoder = np.concatenate([np.full(params[key].size, key.startswith("encoder."))
                                 for key in keys])  # (P,)
    rows, first = [], {}
    for k in ks:
        row = {"k": k}
        stats = moments(gradient_draws(params, x, config, k, rng, repeats), groups)
        for net, mask in (("encoder", is_encoder), ("decoder", ~is_encoder)):
            mean, se, snr = network_snr(*stats, mask)
            first.setdefault(net, snr)
            both = np.isfinite(snr) & np.isfinite(first[net])
            row[net] = {"mean": mean, "se": se, "median": float(np.nanmedian(snr)),
                        "share_below_first": float(np.mean(snr[both] < first[net][both]))}
        rows.append(row)
    return rows


def saved_model(path: Path) -> tuple[dict, VAEConfig, str]:
    """A model of Table 1's input size from a checkpoint (e.g. a reproduction's run after some
    stage): its parameters, its config and the words that say what it is."""
    try:
        ckpt = load_checkpoint(path)
    except CheckpointError as exc:
        raise UsageError(f"argument --checkpoint: {exc}") from None
    if ckpt.config.input_dim != recipes.IWAE_VAE.config.input_dim:
        raise UsageError(f"argument --checkpoint: {path} holds a model of "
                         f"{ckpt.config.input_dim} inputs; expected an MNIST model of "
                         f"{recipes.IWAE_VAE.config.input_dim}")
    c = ckpt.config
    shape = "-".join(str(n) for n in (c.input_dim, *c.hidden_dims, c.latent_dim))
    return ckpt.params, c, (f"{shape} {c.activation} from a checkpoint, trained with "
                            f"{c.objective}, k = {c.k}, {ckpt.epoch} epochs")


def measure_snr(args) -> dict:
    if args.checkpoint is not None:
        params, config, described = saved_model(args.checkpoint)  # refused before the data
        _, x_test, _, _ = recipes.load_data(recipes.IWAE_VAE, "dynamic", args.data_dir,
                                            train_limit=1, test_limit=args.batch)
    else:
        objective, k = (args.model or DEFAULT_SNR_MODEL).split("-")
        x_train, x_test, binarize, _ = recipes.load_data(
            recipes.IWAE_VAE, "dynamic", args.data_dir, train_limit=args.train_limit,
            test_limit=args.batch)  # the training images, should the model not be cached yet
        model = trained(args, objective, int(k), x_train, binarize)
        params, config = model["params"], model["config"]
        described = f"trained with {objective}, k = {k}, {args.epochs} epochs, seed {args.seed}"
    params = {key: value.astype(np.float64) for key, value in params.items()}
    rows = gradient_snr(params, x_test.astype(np.float64), config, args.snr_ks,
                        args.repeats, args.groups, np.random.default_rng([args.seed, 21]))
    floor = math.sqrt(2 / (math.pi * args.repeats))  # E|mean|/std of a gradient whose mean is 0
    settings = {"model": described,
                "batch": len(x_test), "repeats": args.repeats, "groups": args.groups,
                "floor": floor, "parameters": {net: int(sum(v.size for key, v in params.items()
                                                             if key.startswith(net)))
                                               for net in ("encoder", "decoder")}}
    return {"settings": settings, "rows": rows}


def report_snr(res: dict) -> str:
    s = res["settings"]
    lines = [f"model {s['model']}",
             f"the gradient of L_k on {s['batch']} test images, {s['repeats']} draws of ε per k "
             f"(float64)",
             f"mean SNR over the parameters (± jackknife s.e., {s['groups']} groups); "
             f"a gradient of mean 0 reads {s['floor']:.3f}",
             f"{'k':>4}{'encoder SNR':>18}{'decoder SNR':>18}{'enc. below k=1':>16}"
             f"{'dec. below k=1':>16}"]
    for r in res["rows"]:
        e, d = r["encoder"], r["decoder"]
        lines.append(f"{r['k']:>4}{e['mean']:>10.3f} ± {e['se']:.3f}{d['mean']:>10.3f} ± "
                     f"{d['se']:.3f}{e['share_below_first']:>16.0%}"
                     f"{d['share_below_first']:>16.0%}")
    return "\n".join(lines)


def plot_snr(res: dict, path) -> None:
    """Each network's mean SNR against k, on log axes, beside the slopes ±1/2 of the theory."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(6, 4), dpi=90, layout="constrained")
    FigureCanvasAgg(fig)
    ax = fig.subplots()
    ks = np.array([r["k"] for r in res["rows"]])
    for net, color, slope in (("decoder", "tab:blue", 0.5), ("encoder", "tab:orange", -0.5)):
        mean = np.array([r[net]["mean"] for r in res["rows"]])
        se = np.array([r[net]["se"] for r in res["rows"]])
        ax.errorbar(ks, mean, yerr=se, fmt="o-", color=color, capsize=3,
                    label=f"{net} (θ)" if net == "decoder" else f"{net} (φ)")
        ax.plot(ks, mean[-1] * (ks / ks[-1]) ** slope, ":", color=color,
                label=f"the large-k rate, ∝ k^{slope:+.1f}, through the last point")
    ax.axhline(res["settings"]["floor"], color="gray", lw=0.8, label="a gradient of mean 0")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xticks(ks)
    ax.set_xticklabels([str(k) for k in ks])
    ax.minorticks_off()
    ax.set_xlabel("k, samples per image in L_k")
    ax.set_ylabel("mean over the parameters of |E g| / std g")
    ax.set_title(f"Signal-to-noise ratio of the gradient of L_k\nmodel {res['settings']['model']}",
                 fontsize=9)
    ax.legend(fontsize=7)
    fig.savefig(path, dpi=90)


def ks_list(text: str) -> tuple[int, ...]:
    """"1,5,20" -> (1, 5, 20): rising positive integers."""
    try:
        ks = tuple(int(part) for part in text.split(","))
    except ValueError:
        ks = ()
    if not ks or min(ks) < 1 or list(ks) != sorted(set(ks)):
        raise argparse.ArgumentTypeError(f"expected rising positive integers like 1,5,20, "
                                         f"got {text!r}")
    return ks


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        description="What training with k samples per image buys (tinyvae).")
    p.add_argument("part", choices=("models", "snr", "long"),
                   help="models: active units and L_k' − ELBO against k; "
                        "snr: the gradient's SNR against k; "
                        "long: the reproductions' stages, from their summaries")
    p.add_argument("--data-dir", type=Path,
                   help="a data root holding mnist/ (default: $TINYVAE_DATA)")
    p.add_argument("--cache-dir", type=Path, default=user_cache_dir() / "k_samples",
                   help="where the trained models are kept (default ~/.cache/tinyvae/k_samples)")
    p.add_argument("--epochs", type=positive_int, default=4,
                   help="passes of Table 1's schedule (4)")
    p.add_argument("--ks", type=ks_list, default=TRAIN_KS, help="k to train with (default 1,5,20)")
    p.add_argument("--train-limit", type=positive_int, default=60_000, help="training images")
    p.add_argument("--images", type=positive_int, default=1000,
                   help="test images for L_k' and the ELBO (1000)")
    p.add_argument("--iw-k", type=positive_int, default=1000, help="k' of the bound L_k' (1000)")
    p.add_argument("--elbo-samples", type=positive_int, default=20, help="samples per ELBO (20)")
    p.add_argument("--model", help=f"snr: the model, objective-k ({DEFAULT_SNR_MODEL}), "
                                   "trained for --epochs")
    p.add_argument("--checkpoint", type=Path, metavar="FILE",
                   help="snr: measure this saved model instead (e.g. a reproduction's run, "
                        "~/.cache/tinyvae/runs/iwae-iwae-k5-dynamic/checkpoint.npz)")
    p.add_argument("--snr-ks", type=ks_list, default=SNR_KS, help="snr: k of L_k (1,5,20,100)")
    p.add_argument("--batch", type=positive_int, default=20, help="snr: test images in the batch")
    p.add_argument("--repeats", type=positive_int, default=1000, help="snr: draws of ε per k")
    p.add_argument("--groups", type=positive_int, default=10, help="snr: groups for the jackknife")
    p.add_argument("--summaries", type=Path, nargs=3, metavar="FILE",
                   default=[RESULTS / name for _, _, name in LONG_RUNS],
                   help="long: the summaries of iwae-vae, iwae-vae-k5 and iwae-iwae-k5 "
                        "(default: the committed ones in docs/results/)")
    p.add_argument("--seed", type=seed, default=0, help="seed (default 0)")
    p.add_argument("--plot", type=output_file, help="save the figure to this PNG")
    p.add_argument("--json", type=output_file, help="save the numbers to this JSON file")
    args = p.parse_args(argv)
    if args.checkpoint is not None and (args.part != "snr" or args.model is not None):
        p.error("argument --checkpoint: only for the snr part, and instead of --model")
    objective, _, k = (args.model or DEFAULT_SNR_MODEL).partition("-")
    if objective not in OBJECTIVES or not k.isdigit() or int(k) < 1:
        p.error(f"argument --model: expected objective-k like iwae-5 or elbo-1, "
                f"got {args.model!r}")
    if args.groups < 2 or args.repeats < 2 * args.groups:
        p.error("argument --groups: expected at least 2 groups of at least 2 draws each")
    if args.part == "models":
        return run_lesson(p.prog, args, measure_models, report_models, plot_models)
    if args.part == "long":
        return run_lesson(p.prog, args, measure_long, report_long, plot_long)
    return run_lesson(p.prog, args, measure_snr, report_snr, plot_snr)


if __name__ == "__main__":
    sys.exit(main())
