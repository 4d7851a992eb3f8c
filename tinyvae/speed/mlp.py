"""vae.mlp_forward and vae.mlp_backward's twins: h ← act(h·W_i + b_i), each layer into a buffer.

The one fast copy of the hidden layers that vae.py writes readably; the fast training step
(speed/step.py) runs its encoder and its decoder through it and the fast L_k (speed/iw.py)
its decoder, so the two cannot drift apart (tests/test_speed_twins.py ties them to the core).
Two speed tricks live here:

1. Into buffers. Every layer writes its output with np.matmul(..., out=buffer) and adds the
   bias in place, into an array the caller allocated once for its largest batch. A fresh
   (128, 400) array per layer costs more than the arithmetic: glibc hands large freed blocks
   back to the operating system and every new one is faulted in again, page by page.
2. Activations in place. IN_PLACE holds, for each activation of layers.ACTIVATIONS that has
   one, a forward a ← act(a) and a backward dh ← da that overwrite their argument. The table
   is keyed by the same names as the core's registry; a name missing here is refused
   (fast_form), never replaced by another activation.

All products are np.matmul calls, never `@`: the bench (tinyvae/lab/bench/bench.py) records and
times the step's products by wrapping np.matmul.

Shapes: R rows (a batch, or a batch's samples), H_i the width of hidden layer i.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import NamedTuple

import numpy as np


class InPlaceActivation(NamedTuple):
    """forward(a, scratch): a ← act(a); scratch (like a) keeps what backward needs, or is None
    when no backward will follow. backward(dh, h, scratch): dh ← da, from h = act(a)."""

    forward: Callable[[np.ndarray, np.ndarray | None], None]
    backward: Callable[[np.ndarray, np.ndarray, np.ndarray], None]


def _relu_forward(a, mask=None) -> None:
    """relu(a) = max(a, 0), docs/04-gradients.md eq. (3);
    with a mask, keeps 1[a > 0] for the backward."""
    if mask is None:
        np.maximum(a, 0, out=a)  # one pass when nothing is needed later
    else:
        np.greater(a, 0, out=mask)  # 1[a > 0]
        a *= mask  # relu(a) = a ⊙ 1[a > 0]


def _relu_backward(dh, h, mask) -> None:
    """da = dh ⊙ 1[a > 0], docs/04-gradients.md eq. (3), from the mask the forward kept."""
    dh *= mask


def _tanh_forward(a, scratch=None) -> None:
    """tanh(a), docs/04-gradients.md eq. (4): the backward needs only the output, kept in a."""
    np.tanh(a, out=a)


def _tanh_backward(dh, h, scratch) -> None:
    """da = dh ⊙ (1 − h²), docs/04-gradients.md eq. (4); scratch receives 1 − h²."""
    np.multiply(h, h, out=scratch)
    np.subtract(1, scratch, out=scratch)
    dh *= scratch


# The activations of layers.ACTIVATIONS that the fast path has in-place forms of, by the same names.
IN_PLACE: dict[str, InPlaceActivation] = {
    "relu": InPlaceActivation(_relu_forward, _relu_backward),
    "tanh": InPlaceActivation(_tanh_forward, _tanh_backward),
}


def fast_form(table: dict, name, what: str, known: Iterable, instead: str):
    """table[name], the fast path's form of a registered name; else a ValueError that says why.

    `known` is the core's registry (layers.ACTIVATIONS): a name it lacks is
    unknown everywhere; a name it has but `table` lacks has no fast form, and the message says
    what the fast path supports and what to use `instead`. Never a substitute.
    """
    if not isinstance(name, str) or name not in known:
        raise ValueError(f"unknown {what} {name!r}; choose one of {sorted(known)}")
    if name not in table:
        raise ValueError(f"the fast path has no form of the {what} {name!r}; "
                         f"it supports {sorted(table)}; use {instead}")
    return table[name]


def mlp_forward(W: dict, prefix: str, h: np.ndarray, outs: list, act: InPlaceActivation,
                scratch: list | None = None) -> np.ndarray:
    """The hidden layers of the encoder or decoder `prefix`: h_i = act(h_{i−1}·W_i + b_i),
    into outs[i].

    docs/04-gradients.md eq. (1), then the activation, in place; outs[i] (R, H_i) are the
    caller's buffers (or views of them), scratch[i] like them for the backward, or None for
    a forward alone. Returns the last h (R, H), or h itself when there are no hidden layers.
    """
    for i, out in enumerate(outs):
        np.matmul(h, W[f"{prefix}.W{i}"], out=out)  # (R, H_i)
        out += W[f"{prefix}.b{i}"]
        act.forward(out, None if scratch is None else scratch[i])
        h = out
    return h


def mlp_backward(W: dict, dW: dict, prefix: str, inputs: list, hs: list, dhs: list, scratch: list,
                 act: InPlaceActivation, d_input: np.ndarray | None) -> None:
    """The mirror of mlp_forward, last layer first: docs/04-gradients.md eq. (2) per layer.

    inputs[i] is what layer i read and hs[i] what it wrote; dhs[-1] holds dL/dh of the last
    layer on entry, and each dhs[i] is overwritten with dL/da_i and then passes dL/dh_{i−1}
    on. dL/d(input) goes to d_input, or is not computed when it is None (the images need no
    gradient). Fills dW's "{prefix}.W{i}" and "{prefix}.b{i}".
    """
    for i in reversed(range(len(hs))):
        act.backward(dhs[i], hs[i], scratch[i])  # dh_i ← da_i
        np.matmul(inputs[i].T, dhs[i], out=dW[f"{prefix}.W{i}"])  # (H_{i−1}, H_i): dW = xᵀ · da
        np.sum(dhs[i], axis=0, out=dW[f"{prefix}.b{i}"])
        d_in = dhs[i - 1] if i > 0 else d_input
        if d_in is not None:
            np.matmul(dhs[i], W[f"{prefix}.W{i}"].T, out=d_in)  # (R, H_{i−1}): dx = da · Wᵀ
