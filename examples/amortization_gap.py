"""The two gaps between the ELBO and log p(x): the approximation gap and the amortization gap.

    python examples/mnist.py                                               # the default model
    python examples/amortization_gap.py --checkpoint runs/mnist/checkpoint.npz \\
        --plot docs/figures/amortization_gap.png --json docs/results/amortization_gap.json

For a trained VAE and image x, log p(x) − ELBO(q_encoder) = KL(q_encoder ‖ p(z|x)) splits in two
(Cremer, Li & Duvenaud 2018, "Inference suboptimality in variational autoencoders"):

    log p(x) − ELBO(q*)          the approximation gap: even the best diagonal Gaussian q* for
                                 this one image is not the true posterior
    ELBO(q*) − ELBO(q_encoder)   the amortization gap: one encoder network serves every image,
                                 and gives this image a worse Gaussian than its best one

q* is found here by gradient ascent on the ELBO of each image separately: its own μ and log σ²
(Z numbers each), started at the encoder's, moved by Adam with reparameterized gradients of S
samples per step (the decoder's backward pass to z, docs/04-gradients.md eq. (15)-(16)), the
decoder held fixed. log p(x) is estimated by the importance-weighted bound L_k
(docs/02-variational-inference.md eq. (12)) with q* as the proposal, and with the encoder's q;
the larger estimate is used (both are lower bounds in expectation, and the better proposal
gives the tighter one). Every ELBO is estimated with --eval-samples samples of z per image
(only the reconstruction term is sampled; the KL is exact). All in float64, on the first
--images test images (binarized once with seed 0, as examples/mnist.py).

Without --checkpoint the program first trains a model itself (784-400-20, 10 epochs, the
settings of examples/mnist.py; --epochs and --train-limit shorten this for a quick look).

Shapes: N images, S samples per image, K importance samples, D pixels, Z latent.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from tinyvae import layers, losses, vae
from tinyvae.commands.args import output_file, positive_float, positive_int, seed
from tinyvae.commands.lesson import run_lesson
from tinyvae.config import VAEConfig, init_params
from tinyvae.lab.datasets.binarize import fixed_binarization
from tinyvae.lab.datasets.data import load_dataset
from tinyvae.lab.storage.checkpoint import CheckpointError, load_checkpoint
from tinyvae.lab.training.runner import fit
from tinyvae.optim import make_optimizer
from tinyvae.speed.step import make_step


def elbo_of(params, config: VAEConfig, x, mu, log_var, eps) -> np.ndarray:
    """ELBO(q) per image for q = N(μ, diag σ²), the reconstruction term averaged over eps (S, N, Z).

        ELBO = (1/S) Σ_s log p(x | μ + σ ⊙ ε_s) − KL(q ‖ N(0, I))

    (docs/02-variational-inference.md eq. (7)). x (N, D), mu, log_var (N, Z) -> (N,).
    """
    S, N, Z = eps.shape
    z = mu + np.exp(0.5 * log_var) * eps  # (S, N, Z)
    log_lik = vae.log_likelihood(params, np.tile(x, (S, 1)), z.reshape(S * N, Z),
                                 config).reshape(S, N)
    kl, _, _ = losses.kl_standard_normal(mu, log_var)  # (N,)
    return log_lik.mean(axis=0) - kl


def negative_elbo_grads(params, config: VAEConfig, x, mu, log_var, eps):
    """The gradient of −ELBO with respect to each image's own μ and log σ², S samples each.

    The decoder is fixed; only the code's parameters move. The same two paths as in training,
    through z and through the KL (docs/04-gradients.md eq. (16)).
    eps (S, N, Z) -> dmu, dlog_var (N, Z).
    """
    S, N, Z = eps.shape
    z, rep_cache = layers.reparameterize_forward(np.tile(mu, (S, 1)), np.tile(log_var, (S, 1)),
                                                 eps.reshape(S * N, Z))  # (S·N, Z)
    out, out_log_var, dec_cache = vae.decoder_forward(params, z, config)  # (S·N, D)
    _, dout, dout_log_var = vae.reconstruction_nll(out, out_log_var, np.tile(x, (S, 1)), config)
    dout = dout / S  # the reconstruction term is a mean over the S samples
    dout_log_var = None if dout_log_var is None else dout_log_var / S
    dz, _ = vae.decoder_backward(dout, dout_log_var, dec_cache, config)  # (S·N, Z)
    dmu_z, dlog_var_z = layers.reparameterize_backward(dz, rep_cache)  # (S·N, Z)
    _, dmu_kl, dlog_var_kl = losses.kl_standard_normal(mu, log_var)  # (N, Z)
    dmu = dmu_z.reshape(S, N, Z).sum(axis=0) + dmu_kl  # (N, Z)
    dlog_var = dlog_var_z.reshape(S, N, Z).sum(axis=0) + dlog_var_kl  # (N, Z)
    return dmu, dlog_var


def optimize_q(params, config: VAEConfig, x, mu0, log_var0, rng, *, steps: int, samples: int,
               lr: float):
    """q* per image: Adam on its own (μ, log σ²) from the encoder's, the decoder fixed.

    Returns mu (N, Z), log_var (N, Z) and the trace [(step, mean ELBO over the images)].
    """
    code = {"mu": mu0.copy(), "log_var": log_var0.copy()}
    adam = make_optimizer("adam", lr)
    trace = []
    for t in range(steps):
        eps = rng.standard_normal((samples, *mu0.shape))  # (S, N, Z)
        dmu, dlog_var = negative_elbo_grads(params, config, x, code["mu"], code["log_var"], eps)
        adam.step(code, {"mu": dmu, "log_var": dlog_var})
        if t % max(1, steps // 20) == 0 or t == steps - 1:
            probe = rng.standard_normal((samples, *mu0.shape))
            elbo = elbo_of(params, config, x, code["mu"], code["log_var"], probe)  # (N,)
            trace.append((t + 1, float(elbo.mean())))
    return code["mu"], code["log_var"], trace


def iw_bound(params, config: VAEConfig, x, mu, log_var, rng, k: int) -> np.ndarray:
    """L_k per image with proposal q = N(μ, diag σ²), k samples, in chunks: (N,)."""
    N, Z = mu.shape
    log_w = []
    for start in range(0, k, 500):
        eps = rng.standard_normal((min(500, k - start), N, Z))  # (K', N, Z)
        z = mu + np.exp(0.5 * log_var) * eps  # (K', N, Z)
        log_lik = vae.log_likelihood(params, np.tile(x, (len(eps), 1)), z.reshape(-1, Z),
                                     config).reshape(-1, N)
        log_prior = losses.gaussian_log_density(z, np.zeros(Z), np.zeros(Z))  # (K', N)
        log_q = losses.gaussian_log_density(z, mu, log_var)  # (K', N)
        log_w.append(log_lik + log_prior - log_q)
    return losses.log_mean_exp(np.concatenate(log_w), axis=0)  # (N,)


def trained_model(args):
    """(params in float64, config, a description): from --checkpoint, or trained here."""
    if args.checkpoint is not None:
        ckpt = load_checkpoint(args.checkpoint)
        if ckpt.config.input_dim != 784:
            raise CheckpointError(f"{ckpt.path}: a model of {ckpt.config.input_dim} pixels; "
                                  "this needs MNIST's 784")
        params, config, source = ckpt.params, ckpt.config, f"{ckpt.path}, epoch {ckpt.epoch}"
    else:
        config = VAEConfig(hidden_dims=(400,), latent_dim=20)
        rng = np.random.default_rng(args.seed)
        step = make_step("fast", config, init_params(config, rng, np.float32),
                         make_optimizer("adam", 1e-3), 128)
        x_train = load_dataset("mnist", args.data_dir).x_train[:args.train_limit]
        fit(step, x_train, rng=rng, epochs=args.epochs, binarize="dynamic", stream=sys.stdout)
        params, source = step.params, f"trained here: {len(x_train)} images, {args.epochs} epochs"
    return {key: value.astype(np.float64) for key, value in params.items()}, config, source


def measure(args) -> dict:
    params, config, source = trained_model(args)
    x_test = load_dataset("mnist", args.data_dir).x_test
    x = fixed_binarization(x_test, 0)[:args.images].astype(np.float64)  # (N, D)
    rng = np.random.default_rng([args.seed, 13])
    mu_e, log_var_e = vae.encode(params, x, config)  # (N, Z): the encoder's q
    mu_o, log_var_o, trace = optimize_q(params, config, x, mu_e, log_var_e, rng,
                                        steps=args.steps, samples=args.samples, lr=args.lr)
    # the same z noise for both
    eval_eps = rng.standard_normal((args.eval_samples, len(x), config.latent_dim))
    elbo_e = elbo_of(params, config, x, mu_e, log_var_e, eval_eps)  # (N,)
    elbo_o = elbo_of(params, config, x, mu_o, log_var_o, eval_eps)  # (N,)
    lk_e = iw_bound(params, config, x, mu_e, log_var_e, rng, args.k)  # (N,)
    lk_o = iw_bound(params, config, x, mu_o, log_var_o, rng, args.k)  # (N,)
    log_px = np.maximum(lk_e, lk_o)  # (N,): the tighter of the two estimates
    return {"model": source,
            "settings": {k: v for k, v in vars(args).items()
                         if k not in ("plot", "json", "data_dir", "checkpoint")},
            "elbo_encoder": elbo_e.tolist(), "elbo_optimized": elbo_o.tolist(),
            "iw_encoder": lk_e.tolist(), "iw_optimized": lk_o.tolist(), "log_px": log_px.tolist(),
            "mean": {"elbo_encoder": float(elbo_e.mean()), "elbo_optimized": float(elbo_o.mean()),
                     "iw_encoder": float(lk_e.mean()), "iw_optimized": float(lk_o.mean()),
                     "log_px": float(log_px.mean()), "total_gap": float((log_px - elbo_e).mean()),
                     "amortization_gap": float((elbo_o - elbo_e).mean()),
                     "approximation_gap": float((log_px - elbo_o).mean())},
            "trace": trace}


def report(res: dict) -> str:
    m, s = res["mean"], res["settings"]
    return "\n".join([
        f"model: {res['model']}",
        f"{s['images']} test images; q* by Adam (lr {s['lr']:g}), {s['steps']} steps of "
        f"{s['samples']} samples; ELBOs from {s['eval_samples']} samples; L_k with k = {s['k']}",
        f"ELBO, encoder's q                 {m['elbo_encoder']:9.2f} nats (mean over the images)",
        f"ELBO, optimized q* per image      {m['elbo_optimized']:9.2f}",
        f"L_k, proposal encoder's q         {m['iw_encoder']:9.2f}",
        f"L_k, proposal q*                  {m['iw_optimized']:9.2f}",
        f"log p(x) estimate (the larger)    {m['log_px']:9.2f}",
        f"total gap  log p(x) - ELBO(q)     {m['total_gap']:9.2f}",
        f"  amortization  ELBO(q*) - ELBO(q) {m['amortization_gap']:8.2f}",
        f"  approximation log p(x) - ELBO(q*) {m['approximation_gap']:7.2f}"])


def plot(res: dict, path: str) -> None:
    """Left: each image's two gaps, stacked; right: the mean ELBO of q* during its optimization."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(10, 3.8), dpi=90, layout="constrained")
    FigureCanvasAgg(fig)
    left, right = fig.subplots(1, 2, width_ratios=[1.3, 1])
    e, o, p = (np.array(res[k]) for k in ("elbo_encoder", "elbo_optimized", "log_px"))
    order = np.argsort(p - e)
    idx = np.arange(len(e))
    left.bar(idx, (o - e)[order], color="tab:orange", label="amortization gap  ELBO(q*) − ELBO(q)")
    left.bar(idx, (p - o)[order], bottom=(o - e)[order], color="tab:blue",
             label="approximation gap  log p(x) − ELBO(q*)")
    left.set_xlabel("test image (sorted by total gap)")
    left.set_ylabel("nats")
    left.set_title("log p(x) − ELBO(encoder's q), split in two")
    left.legend(fontsize=8)
    steps, values = zip(*res["trace"])
    m = res["mean"]
    right.plot(steps, values, "o-", ms=3, color="tab:green",
               label="ELBO of q*, during its optimization")
    right.axhline(m["elbo_encoder"], color="tab:orange", ls="--", label="ELBO of the encoder's q")
    right.axhline(m["log_px"], color="black", label="log p(x) (L_k estimate)")
    right.set_xscale("log")
    right.set_xlabel("Adam steps on each image's own μ, log σ²")
    right.set_ylabel("nats, mean over the images")
    right.legend(fontsize=8)
    right.set_title("Closing the amortization gap")
    fig.savefig(path, dpi=90)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        description="The approximation and amortization gaps of a trained VAE (tinyvae).")
    p.add_argument("--checkpoint", type=Path,
                   help="a trained MNIST model (examples/mnist.py's checkpoint.npz)")
    p.add_argument("--data-dir", type=Path,
                   help="a data root holding mnist/ (default: $TINYVAE_DATA)")
    p.add_argument("--images", type=positive_int, default=10, help="test images (default 10)")
    p.add_argument("--steps", type=positive_int, default=300,
                   help="Adam steps for each q* (default 300)")
    p.add_argument("--samples", type=positive_int, default=16,
                   help="samples of z per step (default 16)")
    p.add_argument("--lr", type=positive_float, default=0.01,
                   help="Adam's learning rate for q* (default 0.01)")
    p.add_argument("--eval-samples", type=positive_int, default=1000,
                   help="samples for each ELBO (default 1000)")
    p.add_argument("--k", type=positive_int, default=2000,
                   help="importance samples for log p(x) (default 2000)")
    p.add_argument("--seed", type=seed, default=0, help="seed (default 0)")
    p.add_argument("--epochs", type=positive_int, default=10,
                   help="without --checkpoint: epochs to train (default 10)")
    p.add_argument("--train-limit", type=positive_int, default=60_000,
                   help="without --checkpoint: training images")
    p.add_argument("--plot", type=output_file, help="save the figure to this PNG")
    p.add_argument("--json", type=output_file, help="save the numbers to this JSON file")
    args = p.parse_args(argv)  # the lab's argparse types have refused nonsense already
    return run_lesson(p.prog, args, measure, report, plot)


if __name__ == "__main__":
    sys.exit(main())
