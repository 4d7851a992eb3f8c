"""Checking analytic gradients against central finite differences: for tests and for the classroom.

Every gradient in tinyvae is derived on paper and then checked here. The check perturbs one
number at a time and watches the loss move:

    ∂f/∂x_i ≈ (f(x + h e_i) − f(x − h e_i)) / (2h)        (central difference; error O(h²))

With h = 1e-5 in float64 the truncation error (≈ h² f''' / 6) and the rounding error
(≈ 1e-16 |f| / h) are both around 1e-11 to 1e-10, so a correct gradient entry of size 0.1 agrees
to a relative 1e-9 or so, while a wrong one (a flipped sign, a missing factor) is off by 1e-3 or
far more. Anything in float32 is too coarse for this: the checks run in float64.

Run ``python -m tinyvae.gradcheck`` to see the whole VAE checked, parameter by parameter, for the
full loss and for its two terms separately; ``--break relu`` (or tanh, dense, kl, bernoulli,
gaussian-logvar) plants a deliberate bug in one backward pass to show what a failing check looks
like.

Why the error is relative to the largest entry. The numerical gradient carries an absolute
noise of about ε·|f|/2h ≈ 1e-11·|f| (the rounding of the loss, divided by the step). Measured
against each entry on its own, as CS231n's rel_error does, a correct entry a thousand times
smaller than the loss fails a 1e-7 threshold on that noise alone, and a random model with
hundreds of entries usually has one. So ``rel_error`` divides the worst absolute difference by
the largest magnitude in the array: a correct gradient scores about 1e-10, a wrong one (a flipped
sign, a missing factor, a forgotten path) scores 1e-3 to 1, and a bug confined to a tiny entry
still shows as far above the rounding noise. Under a FAIL row the command line prints the worst
entry next to that rounding floor, so the two cases can be told apart.
"""

from __future__ import annotations

import argparse
import contextlib
import sys
import time
from collections.abc import Callable, Iterable, Mapping
from typing import NamedTuple

import numpy as np

from .lab.args import hidden_sizes

DEFAULT_H = 1e-5
DEFAULT_THRESHOLD = 1e-7
DEFAULT_SEED = 0


def numerical_gradient(f: Callable[[], float], x: np.ndarray, h: float = DEFAULT_H) -> np.ndarray:
    """The gradient of the scalar ``f()`` with respect to the array ``x``, by central differences.

        df/dx_i ≈ (f(x + h e_i) − f(x − h e_i)) / (2h)

    ``f`` takes no arguments: it must read ``x`` itself (typically ``x`` is one array of a params
    dict that ``f`` closes over). This function changes ``x[i]`` IN PLACE, calls ``f()``, and puts
    the original value back exactly, even if ``f`` raises (the style of CS231n's
    ``eval_numerical_gradient``). That way the model code runs unchanged, with no copying.

    x must be a float64 array (in float32, h = 1e-5 is below the resolution of most entries).
    Returns an array of x's shape, float64. Costs 2·x.size calls of f.
    """
    if not isinstance(x, np.ndarray) or x.dtype != np.float64:
        raise ValueError(
            "numerical_gradient needs x as a float64 ndarray that f reads and that can be "
            f"perturbed in place, got {type(x).__name__} of dtype {getattr(x, 'dtype', None)}"
        )
    if not h > 0:
        raise ValueError(f"h must be > 0, got {h!r}")
    grad = np.zeros(x.shape, dtype=np.float64)
    for i in np.ndindex(x.shape):
        old = x[i]
        try:
            x[i] = old + h
            f_plus = float(f())
            x[i] = old - h
            f_minus = float(f())
        finally:
            x[i] = old  # restore the exact original value, not old + h − h
        grad[i] = (f_plus - f_minus) / (2.0 * h)
    return grad


def rel_error(a, b) -> float:
    """The relative error between two gradients of the same array:

        rel_error(a, b) = max_i |a_i − b_i| / max(1e-8, max_i (|a_i| + |b_i|))

    0 when a = b, at most 1 (reached when a = −b, or when one is 0 and the other is not),
    symmetric, and unchanged when both are scaled by the same factor (above the 1e-8 floor,
    which keeps two gradients that are both nearly zero from counting as different). Both
    maxima run over the whole array; see the module docstring for why not entry by entry.
    An empty pair has error 0; a NaN anywhere gives NaN (which fails every threshold).
    """
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    if a.shape != b.shape:
        raise ValueError(f"rel_error: a and b must have the same shape, got {a.shape} and {b.shape}")
    if a.size == 0:
        return 0.0
    return float(np.max(np.abs(a - b)) / max(1e-8, float(np.max(np.abs(a) + np.abs(b)))))


class GradCheckRow(NamedTuple):
    """One checked parameter: its key, the norms of both gradients, their rel_error, and the verdict."""

    name: str
    analytic_norm: float
    numerical_norm: float
    rel_error: float
    passed: bool


def check_params(
    loss_fn: Callable[[], float],
    params: Mapping[str, np.ndarray],
    grads: Mapping[str, np.ndarray],
    h: float = DEFAULT_H,
    threshold: float = DEFAULT_THRESHOLD,
    keys: Iterable[str] | None = None,
) -> list[GradCheckRow]:
    """Check the analytic ``grads`` against central differences of ``loss_fn``, key by key.

    ``loss_fn()`` takes no arguments and computes the loss from the arrays of ``params`` (each is
    perturbed in place in turn and restored, see ``numerical_gradient``). ``grads`` must have
    exactly the keys of ``params``, with the same shapes; ``keys`` restricts the check to some of
    them. A row passes when ``rel_error(analytic, numerical) < threshold``.
    Returns one GradCheckRow per key, in the order of ``params``.
    """
    if params.keys() != grads.keys():
        missing = sorted(params.keys() - grads.keys())
        extra = sorted(grads.keys() - params.keys())
        raise ValueError(f"grads must have exactly the keys of params: missing {missing}, unexpected {extra}")
    wanted = list(params) if keys is None else list(keys)
    unknown = [k for k in wanted if k not in params]
    if unknown:
        raise ValueError(f"keys {unknown} are not in params")
    rows = []
    for key in wanted:
        analytic = np.asarray(grads[key], dtype=np.float64)
        if analytic.shape != params[key].shape:
            raise ValueError(f"grads[{key!r}] has shape {analytic.shape}, params[{key!r}] has {params[key].shape}")
        numerical = numerical_gradient(loss_fn, params[key], h)
        err = rel_error(analytic, numerical)
        rows.append(
            GradCheckRow(key, float(np.linalg.norm(analytic)), float(np.linalg.norm(numerical)), err, err < threshold)
        )
    return rows


# ---- the command line: the whole VAE, one row per parameter and per term ----

# A bug each --break plants (the fixed backward is never touched on disk, only swapped in memory),
# and the setting it needs so that the broken function is actually used.
BREAKS = {
    "relu": ("relu_backward returns −dout ⊙ 1[x > 0] (sign flipped)", {"activation": "relu"}),
    "tanh": ("tanh_backward uses 1 − tanh(x) instead of 1 − tanh²(x)", {"activation": "tanh"}),
    "dense": ("dense_backward's db averages over the batch instead of summing", {}),
    "kl": ("kl_standard_normal's d/d log σ² is ½(1 − σ²) (sign flipped)", {}),
    "bernoulli": ("bernoulli_nll's gradient is x − σ(l) (sign flipped)", {"likelihood": "bernoulli"}),
    "gaussian-logvar": (
        "gaussian_nll_learned's d/d log σ² is ½(1 + (x − m)² e^(−s)) (sign flipped inside)",
        {"likelihood": "gaussian-learned-variance"},
    ),
}


@contextlib.contextmanager
def broken(name: str):
    """Swap one of tinyvae's functions for a deliberately wrong version for the duration of a ``with``.

    The swap reaches every place the model finds the function (module attributes of layers,
    losses and vae, and the activation table), and is undone on exit.
    """
    from . import layers, losses, vae

    if name not in BREAKS:
        raise ValueError(f"unknown --break {name!r}; choose one of {sorted(BREAKS)}")
    if name == "relu":
        original = layers.relu_backward

        def wrong(dout, cache):
            return -original(dout, cache)

    elif name == "tanh":
        original = layers.tanh_backward

        def wrong(dout, cache):
            return dout * (1 - cache)  # cache is tanh(x)

    elif name == "dense":
        original = layers.dense_backward

        def wrong(dout, cache):
            dx, dW, db = original(dout, cache)
            return dx, dW, db / dout.shape[0]

    elif name == "kl":
        original = losses.kl_standard_normal

        def wrong(mu, log_var):
            kl, dmu, dlog_var = original(mu, log_var)
            return kl, dmu, -dlog_var

    elif name == "bernoulli":
        original = losses.bernoulli_nll

        def wrong(logits, x):
            nll, dlogits = original(logits, x)
            return nll, -dlogits

    else:
        original = losses.gaussian_nll_learned

        def wrong(mean, log_var, x):
            nll, dmean, dlog_var = original(mean, log_var, x)
            return nll, dmean, 1.0 - dlog_var  # ½(1 − sq) becomes ½(1 + sq)

    undo = []
    for module in (layers, losses, vae):
        for attr, value in list(vars(module).items()):
            if value is original:
                setattr(module, attr, wrong)
                undo.append(lambda m=module, a=attr: setattr(m, a, original))
    for act, (fwd, bwd) in list(layers.ACTIVATIONS.items()):
        if bwd is original:
            layers.ACTIVATIONS[act] = (fwd, wrong)
            undo.append(lambda a=act, pair=(fwd, bwd): layers.ACTIVATIONS.__setitem__(a, pair))
    try:
        yield
    finally:
        for restore in reversed(undo):
            restore()


def random_problem(config, batch_size: int, rng: np.random.Generator):
    """Random float64 params (no entry zero), a batch x suited to the likelihood, and noise eps.

    The params are twice init_params' draw plus N(0, 0.1²) noise. The noise makes sure no entry
    is zero (a zero bias would hide a wrong bias gradient: a wrong db times zero is still zero).
    The factor 2 makes the decoder depend strongly on z, so that the reconstruction gradient
    reaching the encoder is not tiny next to the loss: tiny gradient entries are where rounding
    shows up in the relative error (see rel_error and the notes printed under a FAIL row).
    x is binary for the Bernoulli likelihood (pixels in {0, 1}), standard normal for the
    Gaussian ones.
    """
    from .vae import init_params

    params = init_params(config, rng, dtype=np.float64)
    for key in params:
        params[key] = 2.0 * params[key] + 0.1 * rng.standard_normal(params[key].shape)
    shape = (batch_size, config.input_dim)
    if config.likelihood == "bernoulli":
        x = (rng.uniform(size=shape) < 0.5).astype(np.float64)
    else:
        x = rng.standard_normal(shape)
    eps = rng.standard_normal((batch_size, config.latent_dim))
    return params, x, eps


def relu_margin(params, x, eps, config) -> float:
    """The smallest |pre-activation| of any hidden ReLU unit for this batch (inf for tanh).

    A central difference that moves a pre-activation across 0 measures the kink, not the
    gradient; with a margin well above h no perturbation of size h gets there.
    """
    from .layers import ACTIVATIONS
    from .vae import encode

    if config.activation != "relu":
        return float("inf")
    act_forward, _ = ACTIVATIONS["relu"]
    mu, log_var = encode(params, x, config)
    z = mu + np.exp(0.5 * log_var) * eps  # (B, Z)
    margin = float("inf")
    for prefix, h in (("encoder", x), ("decoder", z)):
        for i in range(len(config.hidden_dims)):
            a = h @ params[f"{prefix}.W{i}"] + params[f"{prefix}.b{i}"]  # (B, H_i) pre-activation
            margin = min(margin, float(np.min(np.abs(a))))
            h, _ = act_forward(a)
    return margin


def explain_failure(loss_fn, params, grads, key: str, h: float, loss: float) -> str:
    """One line on a failing row: its worst entry, and how big the difference is next to rounding.

    A central difference cannot be more exact than the rounding of the loss itself, about
    ε·|loss| (ε = 2.2e-16 in float64), divided by the step 2h. A difference near that floor on
    a tiny entry is rounding; a real bug is off by far more, on entries of every size.
    """
    analytic = np.asarray(grads[key], dtype=np.float64)
    numerical = numerical_gradient(loss_fn, params[key], h)
    err = np.abs(analytic - numerical)
    i = np.unravel_index(np.argmax(err), err.shape)
    floor = np.finfo(np.float64).eps * max(abs(loss), 1.0) / (2 * h)
    diff = abs(analytic[i] - numerical[i])
    verdict = (
        "at the rounding floor: rounding on a tiny entry, probably not a bug"
        if diff < 10 * floor
        else "far above the rounding floor: a wrong gradient"
    )
    index = ",".join(str(int(j)) for j in i)
    return (
        f"worst entry [{index}]: analytic {analytic[i]:.6e}, numerical {numerical[i]:.6e}, "
        f"|difference| {diff:.1e} vs rounding floor ε|loss|/2h ≈ {floor:.0e} ({verdict})"
    )


def check_vae(config, batch_size: int, seed: int, h: float, threshold: float):
    """Check every parameter of a random VAE for the full loss, the reconstruction term and the KL term.

    Returns (rows, shapes, margin, notes): rows is a list of (term, GradCheckRow); notes maps
    the index of each failing row to explain_failure's line; margin is relu_margin's.
    """
    from .vae import loss_and_grads

    rng = np.random.default_rng(seed)
    params, x, eps = random_problem(config, batch_size, rng)
    rows, notes = [], {}
    for term, terms in (("full", "both"), ("recon", "recon"), ("kl", "kl")):
        loss, grads, _ = loss_and_grads(params, x, eps, config, terms=terms)

        def loss_fn(terms=terms):
            return loss_and_grads(params, x, eps, config, terms=terms)[0]

        # The KL depends on the encoder alone; its decoder rows check that their
        # analytic gradient is zero (and the numerical one is then exactly zero too).
        for row in check_params(loss_fn, params, grads, h, threshold):
            if not row.passed:
                notes[len(rows)] = explain_failure(loss_fn, params, grads, row.name, h, loss)
            rows.append((term, row))
    shapes = {key: value.shape for key, value in params.items()}
    return rows, shapes, relu_margin(params, x, eps, config), notes


def format_table(rows, shapes, notes=None) -> str:
    """The table: one line per (term, parameter), with a note line under each failing row."""
    notes = notes or {}
    header = ("term", "parameter", "shape", "|analytic|", "|numerical|", "rel. error", "result")
    lines = [
        (term, r.name, str(shapes[r.name]), f"{r.analytic_norm:.6e}", f"{r.numerical_norm:.6e}",
         f"{r.rel_error:.2e}", "PASS" if r.passed else "FAIL")
        for term, r in rows
    ]
    widths = [max(len(line[i]) for line in [header, *lines]) for i in range(len(header))]
    fmt = "  ".join(f"{{:<{w}}}" if i < 3 else f"{{:>{w}}}" for i, w in enumerate(widths))
    out = [fmt.format(*header), fmt.format(*("-" * w for w in widths))]
    for i, line in enumerate(lines):
        out.append(fmt.format(*line))
        if i in notes:
            out.append(f"    ^ {notes[i]}")
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    from .layers import ACTIVATIONS
    from .vae import LIKELIHOODS, VAEConfig

    parser = argparse.ArgumentParser(
        prog="python -m tinyvae.gradcheck",
        description="Check the VAE's analytic gradients against central finite differences, "
        "parameter by parameter, in float64.",
    )
    parser.add_argument("--likelihood", choices=LIKELIHOODS, help="p(x|z) (default bernoulli)")
    parser.add_argument("--activation", choices=sorted(ACTIVATIONS), help="hidden activation (default relu)")
    parser.add_argument("--hidden", type=hidden_sizes, default=(4, 3), help="hidden sizes, e.g. 7 or 7,5 (default 4,3)")
    parser.add_argument("--latent-dim", type=int, default=2, help="Z (default 2)")
    parser.add_argument("--input-dim", type=int, default=5, help="D (default 5)")
    parser.add_argument("--batch-size", type=int, default=2, help="B (default 2)")
    parser.add_argument("--beta", type=float, default=1.0, help="weight of the KL in the full loss (default 1)")
    parser.add_argument("--gaussian-std", type=float, default=0.5,
                        help="σ of the fixed-variance Gaussian (default 0.5: σ = 1 would hide a missing 1/σ²)")
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED,
                        help=f"seed of the random model and data (default {DEFAULT_SEED}, see the module docstring)")
    parser.add_argument("--h", type=float, default=DEFAULT_H, help="finite-difference step (default 1e-5)")
    parser.add_argument("--threshold", type=float, default=DEFAULT_THRESHOLD,
                        help="largest relative error that passes (default 1e-7)")
    parser.add_argument("--all", action="store_true", help="every likelihood × activation combination")
    parser.add_argument("--break", dest="break_", choices=sorted(BREAKS), metavar="NAME",
                        help=f"plant a deliberate bug to see the check fail: one of {', '.join(sorted(BREAKS))}")
    args = parser.parse_args(argv)

    for name in ("latent_dim", "input_dim", "batch_size"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be a positive integer")
    if not args.h > 0 or not args.threshold > 0:
        parser.error("--h and --threshold must be > 0")

    if args.break_ and args.all:
        parser.error("--break checks one model; leave out --all")
    setting = {"likelihood": args.likelihood, "activation": args.activation}
    if args.break_:
        for field, value in BREAKS[args.break_][1].items():
            if setting[field] not in (None, value):
                parser.error(f"--break {args.break_} needs --{field} {value}")
            setting[field] = value
    if args.all:
        combos = [(lik, act) for lik in LIKELIHOODS for act in sorted(ACTIVATIONS)]
    else:
        combos = [(setting["likelihood"] or "bernoulli", setting["activation"] or "relu")]

    start = time.perf_counter()
    total = failed = 0
    context = broken(args.break_) if args.break_ else contextlib.nullcontext()
    with context:
        for likelihood, activation in combos:
            try:
                config = VAEConfig(input_dim=args.input_dim, hidden_dims=args.hidden, latent_dim=args.latent_dim,
                                   activation=activation, likelihood=likelihood, beta=args.beta,
                                   gaussian_std=args.gaussian_std)
            except ValueError as exc:
                parser.error(str(exc))
            rows, shapes, margin, notes = check_vae(config, args.batch_size, args.seed, args.h, args.threshold)
            print("gradcheck: tinyvae.vae.loss_and_grads against central differences, float64")
            print(f"  model: likelihood={likelihood} activation={activation} input_dim={args.input_dim} "
                  f"hidden_dims={args.hidden} latent_dim={args.latent_dim} beta={args.beta:g}"
                  + (f" gaussian_std={args.gaussian_std:g}" if likelihood == "gaussian" else ""))
            print(f"  data: batch_size={args.batch_size} seed={args.seed}; h={args.h:g}")
            print(f"  rel. error = max_i |a_i - n_i| / max(1e-8, max_i (|a_i| + |n_i|)); "
                  f"PASS if < {args.threshold:g} (threshold)")
            print("  terms: full = recon + beta*kl; recon and kl alone (the KL's decoder gradients must be 0)")
            if activation == "relu":
                verdict = "no step of size h reaches a kink" if margin > 10 * args.h else \
                    "WARNING: within 10 h of a kink; a FAIL may be the kink, not a bug: try another --seed"
                print(f"  ReLU: smallest |pre-activation| = {margin:.2e} ({verdict})")
            if args.break_:
                print(f"  BROKEN ON PURPOSE (--break {args.break_}): {BREAKS[args.break_][0]}")
            print(format_table(rows, shapes, notes))
            print()
            total += len(rows)
            failed += sum(not r.passed for _, r in rows)
    seconds = time.perf_counter() - start
    # Not the "N passed, M failed" form: CI reads lines of that form as a test runner's summary.
    if failed:
        print(f"gradcheck: {failed} of {total} checks FAIL ({seconds:.1f} s)")
        return 1
    print(f"gradcheck: all {total} checks PASS ({seconds:.1f} s)")
    if args.break_:
        print(f"gradcheck: --break {args.break_} changed nothing; the broken function is not on this model's path")
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
