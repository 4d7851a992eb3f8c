"""Deliberate bugs, planted for the length of a ``with``, so that students see the check fail.

``python -m tinyvae gradcheck --break NAME`` runs the whole-VAE check inside ``broken(NAME)``.
Each bug is a classic of hand-written backward passes (a flipped sign, a missing square, a
mean where a sum belongs); docs/05-classroom.md §2 works out which rows each one fails.
The code on disk is never touched: the wrong function is swapped in memory and swapped back.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator

from .. import layers, losses
from .swap import swapped

# Each bug: what it does (printed above the table), and the setting it needs so that the
# broken function is actually on the model's path.
BREAKS = {
    "relu": ("relu_backward returns −dout ⊙ 1[x > 0] (sign flipped)", {"activation": "relu"}),
    "tanh": ("tanh_backward uses 1 − tanh(x) instead of 1 − tanh²(x)", {"activation": "tanh"}),
    "dense": ("dense_backward's db averages over the batch instead of summing", {}),
    "kl": ("kl_standard_normal's d/d log σ² is ½(1 − σ²) (sign flipped)", {}),
    "bernoulli": ("bernoulli_nll's gradient is x − σ(l) (sign flipped)",
                  {"likelihood": "bernoulli"}),
    "gaussian-logvar": (
        "gaussian_nll_learned's d/d log σ² is ½(1 + (x − m)² e^(−s)) (sign flipped inside)",
        {"likelihood": "gaussian-learned-variance"},
    ),
}


def wrong_version(name: str) -> tuple[Callable, Callable]:
    """(the correct function, its broken replacement) for the bug ``name`` of BREAKS."""
    if name == "relu":
        original = layers.relu_backward

        def wrong(dout, cache):
            return -original(dout, cache)

    elif name == "tanh":
        original = layers.tanh_backward

        def wrong(dout, cache):
            return dout * (1 - cache)  # cache is tanh(x): the square is missing

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

    return original, wrong


@contextlib.contextmanager
def broken(name: str) -> Iterator[None]:
    """Swap one of tinyvae's functions for a deliberately wrong version while a ``with`` lasts.

    The swap reaches every place the model finds the function (module attributes of layers,
    losses and vae, and the entries of the activation registry; see swap.py),
    and is undone on exit, even if the body raises.
    """
    if name not in BREAKS:
        raise ValueError(f"unknown --break {name!r}; choose one of {sorted(BREAKS)}")
    original, wrong = wrong_version(name)
    with swapped(original, wrong):
        yield
