"""Why the reparameterization trick: two unbiased estimators of one gradient, and their variances.

    python examples/reparameterization_vs_score_function.py
    python examples/reparameterization_vs_score_function.py \\
        --plot docs/figures/gradient_estimators.png

The VAE needs the gradient of an expectation over its own samples, ∇_μ E_{z~q}[f(z)] with
q = N(μ, diag σ²). The expectation is an ordinary smooth function of μ; what has no derivative
is one drawn number z. There are two standard ways to estimate the gradient from samples
(docs/01-autoencoder-to-vae.md section 4):

    score function (REINFORCE, the likelihood-ratio trick): ∇_μ E_q[f] = E_q[ f(z) ∇_μ log q(z) ]
        ĝ = (1/S) Σ_s f(z_s) (z_s − μ)/σ²            needs only values of f, works for any q
    score function with a baseline: f(z_s) replaced by f(z_s) − b_s, with b_s the mean of f
        over the other S − 1 samples (a leave-one-out control variate; still unbiased)
    reparameterization: z = μ + σ ⊙ ε, so ∇_μ E_q[f] = E_ε[ ∇_z f(μ + σ ⊙ ε) ]
        ĝ = (1/S) Σ_s ∇f(z_s)                         needs the gradient of f: backpropagation

All three are unbiased. The program measures their variance against the number of samples S
on a function whose exact answer is known,

    f(z) = −½ ‖z − a‖²,   E_q[f] = −½ (‖μ − a‖² + Σ_j σ_j²),   ∇_μ E_q[f] = a − μ,

in Z = 1 and Z = 20 dimensions (20 is the default model's latent size), with R independent
repetitions per S. The reported variance is that of one coordinate of ĝ, averaged over the
coordinates. For Z = 1 both variances have closed forms (d = μ − a):

    reparameterization  σ² / S
    score function      (¼ (d⁴/σ² + 18 d² + 15 σ²) − d²) / S

Shapes: R repetitions, S samples, Z latent.
"""

from __future__ import annotations

import argparse
import math
from statistics import NormalDist

import numpy as np

from tinyvae.commands.args import output_file, positive_int, seed

MU, SIGMA, A = 0.5, 0.5, 2.0  # every coordinate: q = N(0.5, 0.5²), f pulls z towards 2
SAMPLES = (1, 10, 100, 1000)
DIMS = (1, 20)


def f_and_grad(z: np.ndarray, a: float):
    """f(z) = −½ ‖z − a‖² over the last axis, and its gradient a − z.
    z (..., Z) -> (...), (..., Z)."""
    diff = z - a
    return -0.5 * np.sum(diff * diff, axis=-1), -diff


def estimates(rng: np.random.Generator, Z: int, S: int, R: int) -> dict:
    """R independent estimates of ∇_μ E_q[f] from S samples each, by every estimator:
    name -> (R, Z)."""
    mu, sigma = np.full(Z, MU), np.full(Z, SIGMA)
    eps = rng.standard_normal((R, S, Z))  # (R, S, Z): the same draws for every estimator
    z = mu + sigma * eps  # (R, S, Z): the reparameterization; as draws from q, the same numbers
    f, grad_f = f_and_grad(z, A)  # (R, S), (R, S, Z)
    score = (z - mu) / sigma**2  # (R, S, Z): ∇_μ log q(z) = (z − μ)/σ²
    out = {"score function": np.mean(f[..., None] * score, axis=1),
           "reparameterization": np.mean(grad_f, axis=1)}
    if S > 1:
        # Leave-one-out baseline: b_s does not depend on z_s, so E[b_s ∇ log q(z_s)] = 0 and
        # the estimate stays unbiased, while f − b is far smaller than f.
        baseline = (f.sum(axis=1, keepdims=True) - f) / (S - 1)  # (R, S)
        out["score function, baseline"] = np.mean((f - baseline)[..., None] * score, axis=1)
    return out


def closed_form_variances(S: int) -> dict:
    """The per-coordinate variance of each estimator for Z = 1 (module docstring)."""
    d = MU - A
    score_one = 0.25 * (d**4 / SIGMA**2 + 18 * d**2 + 15 * SIGMA**2) - d**2
    return {"score function": score_one / S, "reparameterization": SIGMA**2 / S}


def run(seed: int = 0, repeats: int = 2000) -> list[dict]:
    """Every row of the program's table: Z, S, estimator,
    mean error in standard errors, variance."""
    rng = np.random.default_rng(seed)
    rows = []
    for Z in DIMS:
        exact = A - MU  # every coordinate of ∇_μ E_q[f] = a − μ
        for S in SAMPLES:
            for name, g in estimates(rng, Z, S, repeats).items():  # g (R, Z)
                var = g.var(axis=0, ddof=1)  # (Z,)
                bias_in_se = (g.mean(axis=0) - exact) / np.sqrt(var / repeats)  # (Z,)
                rows.append({"Z": Z, "S": S, "estimator": name, "variance": float(var.mean()),
                             "max_bias_in_se": float(np.abs(bias_in_se).max())})
    return rows


def format_report(rows: list[dict], repeats: int) -> str:
    """The table the program prints: variances, and how many times the reparameterization's."""
    lines = [f"gradient of E_q[f] w.r.t. mu, q = N({MU}, {SIGMA}^2) per coordinate, "
             f"f(z) = -1/2 |z - {A}|^2, exact {A - MU}; {repeats} repetitions",
             f"{'Z':>3} {'S':>5}  {'estimator':<26} {'variance':>11} {'x reparam.':>10} "
             f"{'|bias|/se':>9}"]
    reparam = {(r["Z"], r["S"]): r["variance"]
               for r in rows if r["estimator"] == "reparameterization"}
    for r in rows:
        ratio = r["variance"] / reparam[(r["Z"], r["S"])]
        lines.append(f"{r['Z']:>3} {r['S']:>5}  {r['estimator']:<26} {r['variance']:>11.4g} "
                     f"{ratio:>10.1f} {r['max_bias_in_se']:>9.1f}")
    closed = closed_form_variances(1)
    lines.append(f"closed forms for Z = 1, S = 1: score function {closed['score function']:.4g}, "
                 f"reparameterization {closed['reparameterization']:.4g}")
    lines += chance_lines(rows)
    return "\n".join(lines)


def chance_lines(rows: list[dict]) -> list[str]:
    """How large the largest |bias|/se of the Z = 20 rows would be by chance alone.

    For an unbiased estimator, each coordinate's (mean − exact)/se is close to a standard normal
    (for the reparameterization exactly: its estimate is a − μ − σ ε̄). A row reports the largest
    |.| of its Z coordinates, which exceeds m with probability 1 − (1 − P(|N(0, 1)| ≥ m))^Z. The
    estimators of one S share their draws, and their errors move together (the score function's
    estimate holds a term −Z d² ε/(2σ) with d = μ − a, in the same ε as the reparameterization's);
    the draws of different S are independent.
    """
    Z = max(DIMS)
    big = [r for r in rows if r["Z"] == Z]
    worst = max(r["max_bias_in_se"] for r in big)
    p_one = math.erfc(worst / math.sqrt(2))  # P(|N(0, 1)| ≥ worst)
    median = NormalDist().inv_cdf((1 + 0.5 ** (1 / Z)) / 2)  # P(largest of Z ≤ m) = ½
    n_s = len({r["S"] for r in big})
    in_a_row, in_a_run = 1 - (1 - p_one) ** Z, 1 - (1 - p_one) ** (Z * n_s)
    first = (f"unbiased, each |bias|/se is about |N(0, 1)|; the largest of {Z} has median "
             f"{median:.2f}")
    return [first,
            f"the largest for Z = {Z}, {worst:.2f}, comes by chance in {in_a_row:.1%} of rows,",
            f"and in one of the {n_s} values of S in {in_a_run:.0%} of runs"]


def plot(rows: list[dict], path: str) -> None:
    """Variance against S, one panel per Z, log-log: every line falls as 1/S, at its own height."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(9.5, 3.8), dpi=90, layout="constrained")
    FigureCanvasAgg(fig)
    styles = {"score function": ("tab:red", "o-"), "score function, baseline": ("tab:orange", "s-"),
              "reparameterization": ("tab:blue", "^-")}
    for ax, Z in zip(fig.subplots(1, 2, sharey=True), DIMS):
        for name, (colour, style) in styles.items():
            pts = [(r["S"], r["variance"]) for r in rows if r["Z"] == Z and r["estimator"] == name]
            ax.plot(*zip(*pts), style, color=colour, label=name, markersize=4)
        if Z == 1:
            s = np.array(SAMPLES, dtype=float)
            for name in ("score function", "reparameterization"):
                ax.plot(s, [closed_form_variances(int(v))[name] for v in s], ":",
                        color="black", lw=1)
            ax.plot([], [], ":", color="black", lw=1, label="closed form")
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("samples S per estimate")
        ax.set_title(f"Z = {Z}")
        ax.grid(alpha=0.3, which="both")
    fig.axes[0].set_ylabel("variance of one gradient coordinate")
    fig.axes[0].legend(fontsize=8)
    fig.suptitle("Three unbiased estimators of ∇_μ E_q[f(z)]: "
                 "variance against the number of samples")
    fig.savefig(path, dpi=90)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seed", type=seed, default=0, help="seed of the draws (default 0)")
    parser.add_argument("--repeats", type=positive_int, default=2000,
                        help="estimates per (Z, S, estimator) (default 2000)")
    parser.add_argument("--plot", type=output_file, metavar="PATH",
                        help="save the figure to PATH (PNG)")
    args = parser.parse_args(argv)
    if args.repeats < 2:
        parser.error("--repeats must be at least 2 (a variance needs two estimates), "
                     f"got {args.repeats}")
    rows = run(args.seed, args.repeats)
    print(format_report(rows, args.repeats))
    if args.plot:
        plot(rows, args.plot)
        print(f"figure written to {args.plot}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
