"""The KL term carved up: E_x KL(q(z|x) ‖ p(z)) = I(x; z) + KL(q(z) ‖ p(z)), measured.

    python examples/elbo_surgery.py --json docs/results/elbo_surgery.json

Averaged over a set of N images x_1 ... x_N, the ELBO's KL term splits in two (Hoffman &
Johnson 2016, "ELBO surgery"; derived in docs/02-variational-inference.md section 10):

    (1/N) Σ_n KL(q(z|x_n) ‖ p(z))  =  I(x; z)  +  KL(q(z) ‖ p(z)),   q(z) = (1/N) Σ_n q(z|x_n)

    I(x; z)          the mutual information between the image (its index n, drawn uniformly)
                     and its code z: how much z says about which image it came from; ≤ log N
    KL(q(z) ‖ p(z))  how far the aggregate posterior q(z), the codes of all the images
                     together, lies from the prior, which a sampler z ~ p(z) relies on

The left side is exact (the closed-form KL, docs/02-variational-inference.md eq. (10)). The two
terms on the right are expectations over draws z ~ q(z|x_n), estimated by Monte Carlo with S
draws per image; log q(z) is exact, a mixture of N Gaussians evaluated at every draw. The ± are
the standard errors of that Monte Carlo (the numbers belong to these N images; other images
would give somewhat different ones). Their sum is the sampled KL, so it agrees with the closed
form to its standard error.

The second table compares the two ways of computing the KL in a one-sample ELBO estimate
(docs/02-variational-inference.md section 7): in closed form, and sampled as
log q(z|x) − log p(z) at the same z as the reconstruction term. Both estimates are unbiased;
their variances differ.

The third table splits the KL unit by unit, where the same identity holds for each unit's
one-dimensional marginals, E_x KL(q(z_u|x) ‖ p(z_u)) = I(x; z_u) + KL(q(z_u) ‖ p(z_u)), on the
first 1,000 images: summed over the active units and over the inactive ones (Burda et al.'s
criterion), each unit's information, and by how much the units' informations exceed the joint
I(x; z) (the total correlation of q(z), Chen et al. 2018).

The model: the default architecture (784-400-20 ReLU, Bernoulli decoder; --latent-dim changes
Z) trained here for --epochs epochs on dynamically binarized MNIST (Adam 1e-3, batch 128,
float32, the fast step, --seed); or --checkpoint, a model saved by examples/mnist.py or by
`python -m tinyvae reproduce` (a run's checkpoint.npz, the model of its last epoch). It is
measured in float64 on the first test images, binarized once with seed 0 (as examples/mnist.py).
About a minute on a 2-core machine.

Shapes: N images, S draws per image, A draws in all, D pixels, Z latent.
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

import numpy as np

from tinyvae import evaluate, vae
from tinyvae.commands.args import output_file, positive_int, seed
from tinyvae.commands.lesson import run_lesson
from tinyvae.config import VAEConfig, init_params
from tinyvae.lab.datasets.binarize import fixed_binarization
from tinyvae.lab.datasets.data import load_dataset
from tinyvae.lab.storage.checkpoint import CheckpointError, load_checkpoint
from tinyvae.lab.training.runner import fit
from tinyvae.losses import (
    LOG_2PI,
    kl_standard_normal,
    kl_terms,
    log_mean_exp,
    log_posterior,
    log_prior,
)
from tinyvae.optim import make_optimizer
from tinyvae.speed.step import make_step

IMAGES = (100, 1000, 10_000)  # the values of N in the first table
DRAWS = 20_000  # draws of z per row of the first table, N·S (S at least 2, for the standard error)
KL_IMAGES, KL_DRAWS = 1000, 100  # the second table: images, and draws per image
ROWS = 2000  # draws scored against all N components at once: a (ROWS, N) array
UNIT_IMAGES = 1000  # the third table: images (each unit's I(x; z_u) is at most log 1000 = 6.91)


def log_q_all(z: np.ndarray, mu: np.ndarray, log_var: np.ndarray) -> np.ndarray:
    """log q(z_a|x_n) for every draw a and image n: z (A, Z), mu, log_var (N, Z) -> (A, N).

        log N(z; μ, diag σ²) = −½ Σ_j [(z_j − μ_j)²/σ_j² + log σ_j² + log 2π]

    with the square expanded, Σ_j z_j²/σ_j² − 2 z_j μ_j/σ_j² + μ_j²/σ_j², so that it is two
    matrix products instead of an (A, N, Z) array.
    """
    inv_var = np.exp(-log_var)  # (N, Z)
    quad = (z * z) @ inv_var.T - 2.0 * (z @ (mu * inv_var).T)  # (A, N)
    quad += np.sum(mu * mu * inv_var, axis=1)
    return -0.5 * (quad + np.sum(log_var, axis=1) + mu.shape[1] * LOG_2PI)


def log_aggregate(z: np.ndarray, mu: np.ndarray, log_var: np.ndarray) -> np.ndarray:
    """log q(z), q(z) = (1/N) Σ_n q(z|x_n) the aggregate posterior: z (A, Z) -> (A,), exact."""
    return np.concatenate([log_mean_exp(log_q_all(z[a:a + ROWS], mu, log_var), axis=1)
                           for a in range(0, len(z), ROWS)])


def mean_and_se(values: np.ndarray) -> tuple[float, float]:
    """The mean of values (N, S) and its standard error, the N images fixed, the S draws random.

    Each image's draws are independent of the other images', so the variance of the mean is
    Σ_n Var_n / (S N²), with Var_n the sample variance of image n's S draws.
    """
    N, S = values.shape
    return float(values.mean()), float(math.sqrt(values.var(axis=1, ddof=1).sum() / S) / N)


def surgery(mu: np.ndarray, log_var: np.ndarray, rng: np.random.Generator,
            draws_per_image: int) -> dict:
    """Both sides of eq. (15) for the N images whose q(z|x) are N(mu, diag exp(log_var)).

    mu, log_var (N, Z). Returns the closed-form mean KL, and I(x; z), KL(q(z) ‖ p(z)) and their
    sum (the sampled KL) with standard errors, from draws_per_image draws z ~ q(z|x_n) each.
    """
    N, Z = mu.shape
    eps = rng.standard_normal((N, draws_per_image, Z))  # (N, S, Z)
    z = mu[:, None] + np.exp(0.5 * log_var[:, None]) * eps  # (N, S, Z): draws from q(z|x_n)
    log_q_own = log_posterior(eps, log_var[:, None])  # (N, S): log q(z|x_n), its own image's
    log_p, _ = log_prior(z)  # (N, S)
    log_q_agg = log_aggregate(z.reshape(-1, Z), mu, log_var).reshape(N, -1)  # (N, S): log q(z)
    kl, _, _ = kl_standard_normal(mu, log_var)  # (N,)
    info, info_se = mean_and_se(log_q_own - log_q_agg)  # I = E[log q(z|x) − log q(z)]
    marginal, marginal_se = mean_and_se(log_q_agg - log_p)  # E[log q(z) − log p(z)]
    total, total_se = mean_and_se(log_q_own - log_p)  # the two added up: the sampled KL
    return {"images": N, "draws_per_image": draws_per_image, "log_images": math.log(N),
            "kl": float(kl.mean()), "info": info, "info_se": info_se,
            "marginal_kl": marginal, "marginal_kl_se": marginal_se,
            "sum": total, "sum_se": total_se}


def surgery_per_unit(mu: np.ndarray, log_var: np.ndarray, active: np.ndarray,
                     rng: np.random.Generator, draws_per_image: int) -> dict:
    """Eq. (15) for each latent unit u alone, on the one-dimensional marginals:

        E_x KL(q(z_u|x) ‖ p(z_u))  =  I(x; z_u)  +  KL(q(z_u) ‖ p(z_u))

    (eq. (15) holds for any marginal; because q(z|x) and p(z) are products over the units, the
    units' KLs also add up to the whole KL term: docs/02-variational-inference.md section 10).
    mu, log_var (N, Z); active (Z,) bool. Returns, per unit, lists (Z,) of the closed-form mean
    KL and of the estimates of I(x; z_u) and KL(q(z_u) ‖ p(z_u)); and for the active units, the
    inactive ones and all of them, each group's three sums with the standard errors of the two
    estimated ones.
    """
    N, Z = mu.shape
    eps = rng.standard_normal((N, draws_per_image, Z))  # (N, S, Z)
    z = mu[:, None] + np.exp(0.5 * log_var[:, None]) * eps  # (N, S, Z)
    log_q_own = -0.5 * (eps * eps + log_var[:, None] + LOG_2PI)  # (N, S, Z): log q(z_u|x_n)
    log_p = -0.5 * (z * z + LOG_2PI)  # (N, S, Z): log p(z_u)
    log_q_agg = np.empty_like(z)  # (N, S, Z): log q(z_u), a mixture of N Gaussians, exact
    for u in range(Z):
        log_q_agg[:, :, u] = log_aggregate(z[:, :, u].reshape(-1, 1), mu[:, u:u + 1],
                                           log_var[:, u:u + 1]).reshape(N, -1)
    kl = kl_terms(mu, log_var)  # (N, Z): eq. (10), unit by unit
    info, marginal = log_q_own - log_q_agg, log_q_agg - log_p  # (N, S, Z) each
    out = {"images": N, "draws_per_image": draws_per_image, "is_active": active.tolist(),
           "kl": kl.mean(axis=0).tolist(), "info": info.mean(axis=(0, 1)).tolist(),
           "marginal_kl": marginal.mean(axis=(0, 1)).tolist()}
    for group, units in (("active", active), ("inactive", ~active), ("all", active | ~active)):
        # summed over the group's units draw by draw: the draws are shared by the units
        info_sum, info_se = mean_and_se(info[:, :, units].sum(axis=2))
        marginal_sum, marginal_se = mean_and_se(marginal[:, :, units].sum(axis=2))
        out[group] = {"units": int(units.sum()), "kl": float(kl[:, units].sum(axis=1).mean()),
                      "info": info_sum, "info_se": info_se,
                      "marginal_kl": marginal_sum, "marginal_kl_se": marginal_se}
    return out


def kl_estimators(params, config: VAEConfig, x: np.ndarray, rng: np.random.Generator,
                  draws: int) -> dict:
    """One-sample ELBO estimates with the KL in closed form and sampled, at the same z.

        closed form:  log p(x|z) − KL(q(z|x) ‖ p(z))
        sampled:      log p(x|z) + log p(z) − log q(z|x)  =  log w    (L_1 of docs/02 section 8)

    For each image, `draws` draws z ~ q(z|x). Returns both estimates' means with standard
    errors, the mean over the images of their variances over the draws, and that of the
    sampled KL alone.
    """
    mu, log_var = vae.encode(params, x, config)  # (N, Z)
    N, Z = mu.shape
    eps = rng.standard_normal((N, draws, Z))  # (N, S, Z)
    z = mu[:, None] + np.exp(0.5 * log_var[:, None]) * eps  # (N, S, Z)
    x_rows = np.repeat(x, draws, axis=0)  # (N·S, D)
    log_lik = vae.log_likelihood(params, x_rows, z.reshape(N * draws, Z), config).reshape(N, draws)
    kl, _, _ = kl_standard_normal(mu, log_var)  # (N,)
    log_p, _ = log_prior(z)  # (N, S)
    kl_sampled = log_posterior(eps, log_var[:, None]) - log_p  # (N, S): log q(z|x) − log p(z)
    closed, sampled = log_lik - kl[:, None], log_lik - kl_sampled  # (N, S) each
    out = {"images": N, "draws_per_image": draws}
    pairs = (("closed", closed), ("sampled", sampled), ("difference", sampled - closed))
    for name, values in pairs:
        out[name], out[f"{name}_se"] = mean_and_se(values)
    for name, values in (("closed", closed), ("sampled", sampled), ("kl_sampled", kl_sampled)):
        out[f"{name}_variance"] = float(values.var(axis=1, ddof=1).mean())
    return out


def trained_model(args, x_train: np.ndarray):
    """The default architecture trained for args.epochs epochs, or args.checkpoint's model."""
    if args.checkpoint is not None:
        ckpt = load_checkpoint(args.checkpoint)
        c = ckpt.config
        return ckpt.params, c, (f"from a checkpoint, {ckpt.epoch} epochs, {c.activation}, "
                                f"trained with {c.objective}, k = {c.k}")
    config = VAEConfig(hidden_dims=(400,), latent_dim=args.latent_dim)
    rng = np.random.default_rng(args.seed)
    params = init_params(config, rng, np.float32)
    step = make_step("fast", config, params, make_optimizer("adam", 1e-3), 128)
    fit(step, x_train, rng=rng, epochs=args.epochs, binarize="dynamic", stream=None)
    what = f"{args.epochs} epochs on {len(x_train):,} images, seed {args.seed}"
    return step.params, config, what


def measure(args) -> dict:
    ds = load_dataset("mnist", args.data_dir)
    x_test = fixed_binarization(ds.x_test, 0)[:max(args.images)].astype(np.float64)
    params, config, what = trained_model(args, ds.x_train)
    if config.input_dim != 784:
        raise CheckpointError(f"{args.checkpoint} is not a model of 28 × 28 images")
    params = {key: value.astype(np.float64) for key, value in params.items()}  # float64 from here
    mu, log_var = vae.encode(params, x_test, config)  # (N, Z)
    n_active, activity = evaluate.active_units(params, x_test, config)
    kl_per_dim = evaluate.kl_per_dimension(params, x_test, config)  # (Z,)
    rng = np.random.default_rng([args.seed, 1])  # the measurement's draws, apart from training's
    rows = [surgery(mu[:n], log_var[:n], rng, max(2, DRAWS // n)) for n in args.images]
    estimators = kl_estimators(params, config, x_test[:KL_IMAGES], rng, KL_DRAWS)
    n = min(UNIT_IMAGES, len(x_test))
    units = surgery_per_unit(mu[:n], log_var[:n], activity > 0.01,  # active: on all the images
                             np.random.default_rng([args.seed, 2]),  # apart from the rows above
                             max(2, DRAWS // n))
    return {"model": what, "config": config.to_dict(), "latent_dim": config.latent_dim,
            "active_units": n_active, "kl_inactive": float(kl_per_dim[activity <= 0.01].sum()),
            "surgery": rows, "kl_estimators": estimators, "per_unit": units}


def report(res: dict) -> str:
    """The two tables the docs paste (docs/02-variational-inference.md sections 7 and 10)."""
    c, e = res["config"], res["kl_estimators"]
    sizes = "-".join(str(n) for n in (c["input_dim"], *c["hidden_dims"], c["latent_dim"]))
    inactive = res["latent_dim"] - res["active_units"]
    model = (f"model: {sizes}, {res['model']}; "
             f"{res['active_units']} of {res['latent_dim']} units active")
    if inactive:
        model += f", the {inactive} others holding {res['kl_inactive']:.2f} nats of KL"
    header = (f"{'N':>6} {'log N':>6} {'E_x KL(q(z|x)||p(z))':>21} {'I(x; z)':>16} "
              f"{'KL(q(z)||p(z))':>15} {'sum (sampled)':>16}")
    lines = [model, header]
    for r in res["surgery"]:
        lines.append(f"{r['images']:>6} {r['log_images']:>6.2f} {r['kl']:>21.2f} "
                     f"{r['info']:>7.4f} ± {r['info_se']:.4f} "
                     f"{r['marginal_kl']:>8.2f} ± {r['marginal_kl_se']:.2f} "
                     f"{r['sum']:>9.2f} ± {r['sum_se']:.2f}")
    lines += ["",
              (f"one-sample ELBO estimates on {e['images']} images, "
               f"{e['draws_per_image']} draws each:"),
              f"{'KL term':<12} {'mean':>9} {'± se':>6} {'variance per image':>19}"]
    for name, key in (("closed form", "closed"), ("sampled", "sampled")):
        lines.append(f"{name:<12} {e[key]:>9.2f} {e[f'{key}_se']:>6.2f} "
                     f"{e[f'{key}_variance']:>19.1f}")
    lines.append(f"sampled - closed form: {e['difference']:.3f} ± {e['difference_se']:.3f}; "
                 f"variance of the sampled KL alone {e['kl_sampled_variance']:.1f}")
    return "\n".join(lines + [""] + report_per_unit(res))


def report_per_unit(res: dict) -> list[str]:
    """The third table: eq. (15) unit by unit, the active units against the inactive ones."""
    u = res["per_unit"]
    lines = [f"per unit, on the first {u['images']} images: "
             f"E_x KL(q(z_u|x)||p(z_u)) = I(x; z_u) + KL(q(z_u)||p(z_u))",
             f"{'units':<12} {'E_x KL':>8} {'I(x; z_u), summed':>20} "
             f"{'KL(q(z_u)||p(z_u)), summed':>27}"]
    for group in ("active", "inactive"):
        g = u[group]
        if g["units"]:
            lines.append(f"{str(g['units']) + ' ' + group:<12} {g['kl']:>8.2f} "
                         f"{g['info']:>11.4f} ± {g['info_se']:.4f} "
                         f"{g['marginal_kl']:>18.4f} ± {g['marginal_kl_se']:.4f}")
    info, active = np.array(u["info"]), np.array(u["is_active"], dtype=bool)
    ranges = []
    if active.any():
        ranges.append(f"{info[active].min():.2f} to {info[active].max():.2f} nats when active")
    if (~active).any():
        ranges.append(f"at most {info[~active].max():.4f} when inactive")
    lines.append("I(x; z_u) of one unit: " + ", ".join(ranges))
    row = next((r for r in res["surgery"] if r["images"] == u["images"]), None)
    if row is not None:  # Σ_u I(x; z_u) − I(x; z) = TC(q(z)), independent draws: errors add
        whole = u["all"]
        se = math.hypot(whole["info_se"], row["info_se"])
        lines.append(f"summed over all units, I(x; z_u) exceeds the N = {row['images']} row's "
                     f"I(x; z) by {whole['info'] - row['info']:.3f} ± {se:.3f} nats: the total "
                     f"correlation of q(z)")
    return lines


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description="The KL term as information plus the aggregate "
                                            "posterior's distance from the prior (tinyvae).")
    p.add_argument("--data-dir", type=Path,
                   help="a data root holding mnist/ (default: $TINYVAE_DATA)")
    p.add_argument("--checkpoint", type=Path,
                   help="measure this saved model instead of training one")
    p.add_argument("--epochs", type=positive_int, default=5,
                   help="epochs of the model trained here (default 5)")
    p.add_argument("--latent-dim", type=positive_int, default=20, metavar="Z",
                   help="Z of the model trained here (default 20)")
    p.add_argument("--images", type=positive_int, nargs="+", default=IMAGES,
                   help=f"the values of N, the number of test images measured (default {IMAGES})")
    p.add_argument("--seed", type=seed, default=0,
                   help="seed of the training and of the draws (default 0)")
    p.add_argument("--json", type=output_file, help="save the numbers to this JSON file")
    args = p.parse_args(argv)  # the lab's argparse types have refused nonsense already
    return run_lesson(p.prog, args, measure, report)  # bad data or checkpoint: one line, status 1


if __name__ == "__main__":
    sys.exit(main())
