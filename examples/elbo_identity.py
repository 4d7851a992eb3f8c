"""The lecture's last slide in numbers: log p(x) = KL(q(z|x) ‖ p(z|x)) + ELBO.

docs/02-variational-inference.md derives the identity (eq. (5)); here it is checked
on a model where every term has a closed form, the linear-Gaussian latent model

    z ~ N(0, I_Z),   x | z ~ N(W z + b, σ² I_D)

with a fixed random W and b. Its evidence and posterior are Gaussian:

    p(x)   = N(x; b, W Wᵀ + σ² I)
    p(z|x) = N(m, S),   S = (I + WᵀW/σ²)⁻¹,   m = S Wᵀ (x − b)/σ²

A family of Gaussians q_t(z|x) runs from the prior N(0, I) at t = 0 (an encoder
that ignores x) to the true posterior at t = 1, and a little beyond. For each t
the program prints log p(x), KL(q_t ‖ p(z|x)), the ELBO, their sum, and how far
the sum is from log p(x): rounding error, ~1e-15. The ELBO peaks at t = 1, where
the KL is 0. Then it estimates the importance-weighted bound L_k (eq. (12)) for
q = q_0.5 and k = 1 ... 10 000 samples, and shows it climbing toward log p(x).

    python examples/elbo_identity.py
    python examples/elbo_identity.py --plot docs/figures/elbo_identity.png

Shapes: D data, Z latent, K importance samples, R repetitions.
"""

from __future__ import annotations

import argparse
import math

import numpy as np

from tinyvae.commands.args import output_file, positive_int, seed
from tinyvae.losses import log_mean_exp

LOG_2PI = math.log(2 * math.pi)
SAMPLE_BUDGET = 2_000_000  # samples of z behind each L_k row, at least


def make_model(
    rng: np.random.Generator, latent_dim: int = 2, data_dim: int = 5, sigma: float = 0.7
) -> dict:
    """A random linear-Gaussian model and one x drawn from it.

    Returns {"W": (D, Z), "b": (D,), "sigma": float, "x": (D,)}.
    """
    W = rng.normal(size=(data_dim, latent_dim))  # (D, Z)
    b = rng.normal(size=data_dim)  # (D,)
    z = rng.normal(size=latent_dim)  # (Z,) the latent cause of our one observation
    x = W @ z + b + sigma * rng.normal(size=data_dim)  # (D,)
    return {"W": W, "b": b, "sigma": float(sigma), "x": x}


def mvn_log_density(v: np.ndarray, mean: np.ndarray, cov: np.ndarray) -> np.ndarray:
    """log N(v; mean, cov) for a full covariance, over the last axis of v.

        log N = −½ [ (v − mean)ᵀ cov⁻¹ (v − mean) + log det cov + n log 2π ]

    With cov = L Lᵀ (Cholesky), the quadratic form is ‖L⁻¹(v − mean)‖² and
    log det cov = 2 Σ log L_ii. v (..., n) -> (...).
    """
    L = np.linalg.cholesky(cov)
    diff = np.asarray(v) - mean  # (..., n)
    # Solve L y = diffᵀ for all rows at once; y's squared norm is the quadratic form.
    y = np.linalg.solve(L, diff.reshape(-1, diff.shape[-1]).T)  # (n, N)
    quad = np.sum(y * y, axis=0).reshape(diff.shape[:-1])
    log_det = 2.0 * np.sum(np.log(np.diag(L)))
    return -0.5 * (quad + log_det + diff.shape[-1] * LOG_2PI)


def log_evidence(model: dict) -> float:
    """log p(x) = log N(x; b, W Wᵀ + σ² I): z integrated out in closed form."""
    W, b, sigma, x = model["W"], model["b"], model["sigma"], model["x"]
    cov = W @ W.T + sigma**2 * np.eye(len(b))  # (D, D)
    return float(mvn_log_density(x, b, cov))


def posterior(model: dict) -> tuple[np.ndarray, np.ndarray]:
    """The exact posterior p(z|x) = N(m, S), from Bayes' rule for Gaussians.

        S = (I + WᵀW/σ²)⁻¹,   m = S Wᵀ (x − b)/σ²
    """
    W, b, sigma, x = model["W"], model["b"], model["sigma"], model["x"]
    S = np.linalg.inv(np.eye(W.shape[1]) + W.T @ W / sigma**2)  # (Z, Z)
    S = 0.5 * (S + S.T)  # exactly symmetric, so that Cholesky accepts it
    m = S @ W.T @ (x - b) / sigma**2  # (Z,)
    return m, S


def q_family(t: float, m: np.ndarray, S: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """q_t = N(t m, L_t L_tᵀ): the prior N(0, I) at t = 0, the posterior N(m, S) at t = 1.

    The mean moves on the straight line from 0 to m. The covariance moves through
    its Cholesky factor: with S = L Lᵀ, the off-diagonal entries of L_t are t times
    those of L and its diagonal is diag(L)^t (linear in log scale). L_t stays a
    valid Cholesky factor for every t, also past t = 1, where q_t overshoots.
    """
    L = np.linalg.cholesky(S)
    diag = np.diag(L) ** t
    L_t = t * np.tril(L, k=-1) + np.diag(diag)
    return t * m, L_t @ L_t.T


def gaussian_kl(mu0: np.ndarray, cov0: np.ndarray, mu1: np.ndarray, cov1: np.ndarray) -> float:
    """KL( N(μ0, Σ0) ‖ N(μ1, Σ1) ) in closed form.

        KL = ½ [ tr(Σ1⁻¹ Σ0) + (μ1 − μ0)ᵀ Σ1⁻¹ (μ1 − μ0) − n + log det Σ1 − log det Σ0 ]
    """
    n = len(mu0)
    cov1_inv = np.linalg.inv(cov1)
    d = mu1 - mu0
    _, logdet0 = np.linalg.slogdet(cov0)
    _, logdet1 = np.linalg.slogdet(cov1)
    return float(0.5 * (np.trace(cov1_inv @ cov0) + d @ cov1_inv @ d - n + logdet1 - logdet0))


def elbo_terms(mu_q: np.ndarray, cov_q: np.ndarray, model: dict) -> dict:
    """The ELBO of q = N(μ_q, Σ_q), every expectation in closed form.

    For z ~ q, E[z] = μ_q and E[z zᵀ] = Σ_q + μ_q μ_qᵀ, which gives

        E_q[log p(x|z)] = −D/2 log(2πσ²) − (‖x − W μ_q − b‖² + tr(W Σ_q Wᵀ)) / (2σ²)
        E_q[log p(z)]   = −Z/2 log 2π − (‖μ_q‖² + tr Σ_q) / 2
        H[q]            =  Z/2 log(2πe) + ½ log det Σ_q

    The ELBO is E_q[log p(x, z) − log q(z|x)] = E_q[log p(x|z)] + E_q[log p(z)] + H[q]
    (docs/02-variational-inference.md eq. (5)); it also equals
    E_q[log p(x|z)] − KL(q ‖ p(z)) (eq. (7)), which is returned as a check.
    """
    W, b, sigma, x = model["W"], model["b"], model["sigma"], model["x"]
    D, Z = W.shape
    resid = x - W @ mu_q - b  # (D,)
    expected_loglik = -0.5 * D * math.log(2 * math.pi * sigma**2) - (
        resid @ resid + np.trace(W @ cov_q @ W.T)
    ) / (2 * sigma**2)
    expected_logprior = -0.5 * Z * LOG_2PI - 0.5 * (mu_q @ mu_q + np.trace(cov_q))
    _, logdet_q = np.linalg.slogdet(cov_q)
    entropy = 0.5 * Z * (LOG_2PI + 1) + 0.5 * logdet_q
    kl_prior = gaussian_kl(mu_q, cov_q, np.zeros(Z), np.eye(Z))
    return {
        "elbo": float(expected_loglik + expected_logprior + entropy),
        # eq. (7): reconstruction − KL to the prior
        "elbo_split": float(expected_loglik - kl_prior),
        "recon": float(expected_loglik),
        "kl_prior": kl_prior,
    }


def iw_bound(
    k: int, mu_q: np.ndarray, cov_q: np.ndarray, model: dict, rng: np.random.Generator, repeats: int
) -> np.ndarray:
    """`repeats` independent one-shot estimates of the importance-weighted bound L_k.

        L_k = E[ log (1/k) Σ_i p(x, z_i)/q(z_i|x) ],   z_1..z_k ~ q independently

    (docs/02-variational-inference.md eq. (12)), each evaluated with log-mean-exp so
    that the weights p(x, z_i)/q(z_i|x) are never exponentiated directly.
    Returns (R,); their mean estimates L_k.
    """
    W, b, sigma, x = model["W"], model["b"], model["sigma"], model["x"]
    D, Z = W.shape
    L = np.linalg.cholesky(cov_q)
    block = max(1, 100_000 // k)  # repetitions per block, to bound the memory at large k
    out = []
    for start in range(0, repeats, block):
        r = min(block, repeats - start)
        # z = μ + L ε, the reparameterization
        z = mu_q + rng.normal(size=(r, k, Z)) @ L.T  # (R, K, Z)
        resid = x - z @ W.T - b  # (R, K, D)
        log_lik = -0.5 * (np.sum(resid * resid, axis=-1) / sigma**2
                          + D * math.log(2 * math.pi * sigma**2))
        log_prior = -0.5 * (np.sum(z * z, axis=-1) + Z * LOG_2PI)  # (R, K)
        log_q = mvn_log_density(z, mu_q, cov_q)  # (R, K)
        log_w = log_lik + log_prior - log_q  # (R, K): log p(x, z_i) − log q(z_i|x)
        out.append(log_mean_exp(log_w, axis=1))  # (R,)
    return np.concatenate(out)


def identity_over_family(model: dict, ts: np.ndarray) -> dict:
    """log p(x), KL(q_t ‖ p(z|x)) and the ELBO of q_t for each t (closed forms only).

    Returns {"log_px": float, "t": (T,), "kl": (T,), "elbo": (T,), "elbo_split": (T,)}.
    """
    m, S = posterior(model)
    kl, elbo, elbo_split = [], [], []
    for t in ts:
        mu_q, cov_q = q_family(t, m, S)
        kl.append(gaussian_kl(mu_q, cov_q, m, S))
        terms = elbo_terms(mu_q, cov_q, model)
        elbo.append(terms["elbo"])
        elbo_split.append(terms["elbo_split"])
    return {
        "log_px": log_evidence(model),
        "t": np.asarray(ts, dtype=np.float64),
        "kl": np.array(kl),
        "elbo": np.array(elbo),
        "elbo_split": np.array(elbo_split),
    }


def run(
    seed: int = 0,
    ts: np.ndarray | None = None,
    ks: tuple[int, ...] = (1, 10, 100, 1000, 10000),
    t_iw: float = 0.5,
    repeats: int = 500,
) -> dict:
    """Every number the program prints, as a dict (the tests read it).

    Returns the keys of identity_over_family (log_px, t, kl, elbo, elbo_split) and
    "model", "t_iw", "elbo_iw" (closed-form ELBO of q at t_iw, = L_1), "ks" (N,),
    "iw_mean" (N,), "iw_stderr" (N,) (mean and standard error over `repeats`).
    """
    rng = np.random.default_rng(seed)
    model = make_model(rng)
    if ts is None:
        ts = np.round(np.arange(0.0, 1.5001, 0.1), 10)
    res = identity_over_family(model, ts)

    m, S = posterior(model)
    mu_q, cov_q = q_family(t_iw, m, S)
    iw_mean, iw_stderr, iw_repeats = [], [], []
    for k in ks:
        # At least `repeats` estimates, and more for small k (cheap there), so that every row's
        # standard error is small: R·k ≥ SAMPLE_BUDGET samples per row.
        r = max(repeats, SAMPLE_BUDGET // k)
        est = iw_bound(k, mu_q, cov_q, model, rng, r)
        iw_mean.append(est.mean())
        iw_stderr.append(est.std(ddof=1) / math.sqrt(r))
        iw_repeats.append(r)
    terms = elbo_terms(mu_q, cov_q, model)
    res.update(
        model=model,
        t_iw=t_iw,
        elbo_iw=terms["elbo"],
        elbo_iw_split=terms["elbo_split"],
        elbo_iw_identity=res["log_px"] - gaussian_kl(mu_q, cov_q, m, S),
        ks=np.array(ks),
        iw_mean=np.array(iw_mean),
        iw_stderr=np.array(iw_stderr),
        iw_repeats=np.array(iw_repeats),
        repeats=repeats,
    )
    return res


ROUNDING = 1e-14  # a few units in the last place of float64 numbers near 6, like log p(x) here


def format_report(res: dict) -> str:
    """The two tables of the program's output."""
    lines = [
        f"{'t':>5} {'log p(x)':>11} {'KL(q||p(z|x))':>14} {'ELBO':>11} {'KL + ELBO':>11} "
        f"{'|log p(x) - (KL+ELBO)|':>23}"
    ]
    for t, kl, elbo in zip(res["t"], res["kl"], res["elbo"]):
        gap = abs(res["log_px"] - (kl + elbo))
        # Rounding leaves a few units in the last place (8.9e-16 near 6.3); which few depends on
        # the machine and the NumPy version, so only its order of magnitude is printed.
        shown = "< 1e-14" if gap < ROUNDING else f"{gap:.1e}"
        lines.append(f"{t:>5.2f} {res['log_px']:>11.6f} {kl:>14.6f} {elbo:>11.6f} "
                     f"{kl + elbo:>11.6f} {shown:>23}")
    best = int(np.argmax(res["elbo"]))
    lines.append(f"ELBO is largest at t = {res['t'][best]:.2f}, where KL = {res['kl'][best]:.1e}")
    lines.append("")
    lines.append(f"the ELBO of q = q_t at t = {res['t_iw']}, three ways "
                 "(docs/02-variational-inference.md section 5):")
    lines.append(f"  log p(x) - KL(q || p(z|x))             {res['elbo_iw_identity']:.6f}   "
                 "(the identity, eq. (5))")
    lines.append(f"  E_q[log p(x, z)] + H[q]                {res['elbo_iw']:.6f}   "
                 "(the entropy form)")
    lines.append(f"  E_q[log p(x|z)] - KL(q || p(z))        {res['elbo_iw_split']:.6f}   (eq. (7))")
    lines.append(f"  E_q[log w], Monte Carlo (L_1 below)    {res['iw_mean'][0]:.6f}   "
                 "(Jensen: the same expectation, sampled)")
    lines.append("")
    lines.append(
        f"importance-weighted bound L_k for q = q_t at t = {res['t_iw']}, "
        f"each row the mean of R repetitions, R·k >= {SAMPLE_BUDGET:,} samples"
    )
    lines.append(f"{'k':>6} {'R':>8} {'L_k':>11} {'± stderr':>9} {'log p(x) - L_k':>15}")
    for k, r, mean, se in zip(res["ks"], res["iw_repeats"], res["iw_mean"], res["iw_stderr"]):
        lines.append(f"{k:>6d} {r:>8d} {mean:>11.6f} {se:>9.6f} {res['log_px'] - mean:>15.6f}")
    lines.append(f"{'':>6} {res['log_px']:>11.6f} {'':>9} {'(log p(x))':>15}")
    return "\n".join(lines)


def plot(res: dict, path: str) -> None:
    """Two panels: the identity over the family q_t, and L_k against k."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fine = identity_over_family(res["model"], np.linspace(res["t"][0], res["t"][-1], 151))
    t, kl, elbo, log_px = fine["t"], fine["kl"], fine["elbo"], fine["log_px"]
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 3.9), dpi=100)
    ax1.axhline(log_px, color="black", lw=1.5, label="log p(x)")
    ax1.plot(t, elbo, color="tab:blue", lw=2, label="ELBO")
    ax1.fill_between(t, elbo, log_px, color="tab:blue", alpha=0.12, lw=0)
    ax1.plot(t, kl, color="tab:red", lw=2, label="KL(q ‖ p(z|x))")
    ax1.plot(res["t"], res["kl"] + res["elbo"], ls="none", marker="o", ms=3.5, color="black",
             label="KL + ELBO")
    ax1.axvline(1.0, color="gray", ls=":", lw=1)
    ax1.annotate("gap = KL", xy=(0.3, 0.5 * (log_px + np.interp(0.3, t, elbo))),
                 ha="center", va="center", color="tab:blue", fontsize=9)
    ax1.annotate("q = p(z|x)\nKL = 0", xy=(1.0, log_px), xytext=(1.08, log_px - 7), fontsize=8,
                 color="gray", arrowprops=dict(arrowstyle="->", color="gray", lw=0.8))
    ax1.set_xlabel("t   (q_t: the prior at t = 0, the true posterior at t = 1)")
    ax1.set_ylabel("nats")
    ax1.set_title("log p(x) = KL + ELBO for every q")
    ax1.legend(loc="upper right", fontsize=8)

    ks, mean, se = res["ks"], res["iw_mean"], res["iw_stderr"]
    ax2.axhline(log_px, color="black", lw=1.5, label="log p(x)")
    ax2.axhline(res["elbo_iw"], color="tab:blue", ls="--", lw=1, label="ELBO of this q = L_1")
    ax2.errorbar(ks, mean, yerr=2 * se, color="tab:green", marker="o", ms=4, capsize=3,
                 label="L_k estimate (± 2 s.e.)")
    ax2.set_ylim(min(res["elbo_iw"], (mean - 2 * se).min()) - 0.25, log_px + 0.25)
    ax2.set_xscale("log")
    ax2.set_xlabel("k (importance samples)")
    ax2.set_ylabel("nats")
    ax2.set_title(f"L_k climbs to log p(x)   (q = q_t at t = {res['t_iw']})")
    ax2.legend(loc="center right", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seed", type=seed, default=0,
                        help="seed of the model, the observation and the sampling")
    parser.add_argument("--repeats", type=positive_int, default=500,
                        help="repetitions averaged for each L_k")
    parser.add_argument("--plot", type=output_file, metavar="PATH",
                        help="save the two-panel figure to PATH (PNG)")
    args = parser.parse_args(argv)

    res = run(seed=args.seed, repeats=args.repeats)
    print(format_report(res))
    if args.plot:
        plot(res, args.plot)
        print(f"figure written to {args.plot}")


if __name__ == "__main__":
    main()
