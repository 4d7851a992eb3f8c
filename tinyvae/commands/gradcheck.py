"""python -m tinyvae gradcheck: the whole VAE checked against central differences, as a table.

One row per (term, parameter): the full loss, the reconstruction term and the KL term, each
checked parameter by parameter (tinyvae/gradcheck.py does the checking). Under a FAIL row, a
note says whether the worst entry is rounding or a wrong gradient; for ReLU, the header says how
close the random model comes to a kink (tinyvae/classroom/diagnosis.py). ``--break NAME``
plants one of the classroom's deliberate bugs (tinyvae/classroom/breaks.py).

Exit status: 0 all rows pass, 1 a row fails, 2 a bad option, or a --break that changed nothing.
"""

from __future__ import annotations

import argparse
import contextlib
import sys
import time

import numpy as np

from tinyvae import layers
from tinyvae.classroom.breaks import BREAKS, broken
from tinyvae.classroom.diagnosis import explain_vae_failures, vae_relu_margin
from tinyvae.classroom.report import format_model_table
from tinyvae.commands.args import (
    gaussian_std,
    hidden_sizes,
    nonnegative_float,
    positive_float,
    positive_int,
    seed,
    verb_parser,
)
from tinyvae.gradcheck import DEFAULT_H, DEFAULT_THRESHOLD, check_vae

from ..config import OBJECTIVES, VAEConfig, param_shapes
from ..lab import memory
from ..lab.errors import UsageError
from ..losses import LIKELIHOODS

DEFAULT_SEED = 0


def build_parser() -> argparse.ArgumentParser:
    parser = verb_parser("gradcheck", "Check the VAE's analytic gradients against central finite "
                         "differences, parameter by parameter, in float64.")
    parser.add_argument("--likelihood", choices=list(LIKELIHOODS),
                        help="p(x|z) (default: bernoulli; --all: every one)")
    parser.add_argument("--activation", choices=sorted(layers.ACTIVATIONS),
                        help="hidden activation (default: relu; --all: every one)")
    parser.add_argument("--hidden", type=hidden_sizes, default=(4, 3), metavar="SIZES",
                        help="hidden sizes, e.g. 7 or 7,5")
    parser.add_argument("--latent-dim", type=positive_int, default=2, metavar="Z", help="Z")
    parser.add_argument("--input-dim", type=positive_int, default=5, metavar="D", help="D")
    parser.add_argument("--batch-size", type=positive_int, default=2, metavar="B", help="B")
    parser.add_argument("--beta", type=nonnegative_float, default=1.0, metavar="BETA",
                        help="weight of the KL in the full loss")
    parser.add_argument("--gaussian-std", type=gaussian_std, default=0.5, metavar="SIGMA",
                        help="σ of the fixed-variance Gaussian (0.5: σ = 1 would hide a missing "
                             "1/σ²)")
    parser.add_argument("--seed", type=seed, default=DEFAULT_SEED, metavar="S",
                        help="seed of the random model and data")
    parser.add_argument("--h", type=positive_float, default=DEFAULT_H, metavar="H",
                        help="finite-difference step")
    # Finite: with --threshold inf every row passes, even under --break.
    parser.add_argument("--threshold", type=positive_float, default=DEFAULT_THRESHOLD, metavar="T",
                        help="largest relative error that passes")
    parser.add_argument("--k", type=positive_int, default=1, metavar="K",
                        help="samples of z per image")
    parser.add_argument("--objective", choices=list(OBJECTIVES), default="elbo",
                        help="elbo: the ELBO averaged over the k samples; iwae: the bound L_k")
    parser.add_argument("--all", action="store_true",
                        help="every likelihood × activation combination, then each objective at "
                             "k = 1, 2, 5")
    parser.add_argument("--break", dest="break_", choices=sorted(BREAKS), metavar="NAME",
                        help="plant a deliberate bug to see the check fail: one of "
                             + ", ".join(sorted(BREAKS)))
    return parser


ALL_K = (1, 2, 5)


def models_to_check(args, parser) -> list[tuple[str, str, str, int]]:
    """The (likelihood, activation, objective, k) models to check: with --all, every likelihood ×
    activation (with --objective and --k), then every likelihood × objective × k in ALL_K (ReLU
    for the Bernoulli, tanh for the Gaussians: with ReLU, their decoder's hidden gradients under
    L_k come out so small beside the loss that a central difference cannot resolve them);
    else the one asked for.

    A --break fills in the setting its bug needs (and refuses one that contradicts it).
    """
    if args.break_ and args.all:
        parser.error("--break checks one model; leave out --all")
    if args.all:
        models = [(lik, act, args.objective, args.k)
                  for lik in LIKELIHOODS for act in sorted(layers.ACTIVATIONS)]
        for lik in LIKELIHOODS:
            for obj in OBJECTIVES:
                for k in ALL_K:
                    model = (lik, "relu" if lik == "bernoulli" else "tanh", obj, k)
                    if model not in models:
                        models.append(model)
        return models
    setting = {"likelihood": args.likelihood, "activation": args.activation}
    if args.break_:
        for field, value in BREAKS[args.break_][1].items():
            if setting[field] not in (None, value):
                parser.error(f"--break {args.break_} needs --{field} {value}")
            setting[field] = value
    return [(setting["likelihood"] or "bernoulli", setting["activation"] or "relu",
             args.objective, args.k)]


def format_table(rows, shapes, notes=None) -> str:
    """The table: one line per (term, parameter), with a note line under each failing row.

    The same table `python -m tinyvae exercise check` prints (tinyvae/classroom/report.py).
    """
    table = [(term, r.name, {"shape": str(shapes[r.name]), "analytic_norm": r.analytic_norm,
                             "numerical_norm": r.numerical_norm, "rel_error": r.rel_error},
              r.passed)
             for term, r in rows]
    return format_model_table(table, notes)


def print_header(config: VAEConfig, args, margin: float) -> None:
    """What was checked, how, and (for ReLU) how close the random model comes to a kink."""
    print("gradcheck: tinyvae.vae.loss_and_grads against central differences, float64")
    print(f"  model: likelihood={config.likelihood} activation={config.activation} "
          f"input_dim={args.input_dim} "
          f"hidden_dims={args.hidden} latent_dim={args.latent_dim} beta={config.beta:g}"
          + (f" gaussian_std={args.gaussian_std:g}" if config.likelihood == "gaussian" else "")
          + (f" objective={config.objective} k={config.k}"
             if (config.objective, config.k) != ("elbo", 1) else ""))
    print(f"  data: batch_size={args.batch_size} seed={args.seed}; h={args.h:g}")
    print(f"  rel. error = max_i |a_i - n_i| / max(1e-8, max_i (|a_i| + |n_i|)); "
          f"PASS if < {args.threshold:g} (threshold)")
    if config.objective == "iwae":
        print("  terms: full = -L_k, one term (every part of it sampled; nothing to check apart)")
    else:
        print("  terms: full = recon + beta*kl; recon and kl alone "
              "(the KL's decoder gradients must be 0)"
              + ("; recon averaged over the k samples" if config.k > 1 else ""))
    if config.activation == "relu":
        verdict = "no step of size h reaches a kink" if margin > 10 * args.h else \
            "WARNING: within 10 h of a kink; a FAIL may be the kink, not a bug: try another --seed"
        print(f"  ReLU: smallest |pre-activation| = {margin:.2e} ({verdict})")
    if args.break_:
        print(f"  BROKEN ON PURPOSE (--break {args.break_}): {BREAKS[args.break_][0]}")


def check_and_print(config: VAEConfig, args) -> tuple[int, int]:
    """Check one model, print its header and table; returns (rows checked, rows failed)."""
    rows = check_vae(config, args.batch_size, args.seed, args.h, args.threshold)
    notes = explain_vae_failures(config, args.batch_size, args.seed, args.h, rows)
    print_header(config, args, vae_relu_margin(config, args.batch_size, args.seed))
    print(format_table(rows, param_shapes(config), notes))
    print()
    return len(rows), sum(not r.passed for _, r in rows)


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    combos = models_to_check(args, parser)
    try:  # the largest of them, in float64: a model that cannot fit is refused before any work
        config = VAEConfig(input_dim=args.input_dim, hidden_dims=args.hidden,
                           latent_dim=args.latent_dim, k=max(k for *_, k in combos))
        memory.check_fits("--input-dim, --hidden, --latent-dim, --batch-size and --k",
                          memory.training_numbers(config, args.batch_size), np.float64)
    except UsageError as exc:
        parser.error(str(exc))

    start = time.perf_counter()
    total = failed = 0
    with broken(args.break_) if args.break_ else contextlib.nullcontext():
        for likelihood, activation, objective, k in combos:
            try:
                config = VAEConfig(input_dim=args.input_dim, hidden_dims=args.hidden,
                                   latent_dim=args.latent_dim, activation=activation,
                                   likelihood=likelihood,
                                   beta=1.0 if objective == "iwae" and args.all else args.beta,
                                   gaussian_std=args.gaussian_std, k=k, objective=objective)
            except ValueError as exc:
                parser.error(str(exc))
            checked, failures = check_and_print(config, args)
            total, failed = total + checked, failed + failures
    seconds = time.perf_counter() - start
    # Not the "N passed, M failed" form: CI reads lines of that form as a test runner's summary.
    if failed:
        print(f"gradcheck: {failed} of {total} checks FAIL ({seconds:.1f} s)")
        return 1
    print(f"gradcheck: all {total} checks PASS ({seconds:.1f} s)")
    if args.break_:
        print(f"gradcheck: --break {args.break_} changed nothing; "
              "the broken function is not on this model's path")
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
