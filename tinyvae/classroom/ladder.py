"""The backprop ladder: from one dense layer's backward to the whole VAE's, and one Adam step.

Each rung names the function the student writes, the equation that derives it, the model the
check runs (the setting that puts the function on the model's path), and how the student's
function is plugged in. Plugging in never edits tinyvae: swap.py puts the student's function
where the model looks it up, for the length of the check. Where tinyvae's function computes a
value and its gradient together (the losses), only the student's gradient is used: the value
stays tinyvae's forward pass, so the check measures the student's gradient against finite
differences of the true loss, never against tinyvae's own gradient.

Shapes: B batch, D data, H hidden, Z latent.
"""

from __future__ import annotations

import contextlib
from typing import Callable, NamedTuple

import numpy as np

from .. import layers, losses, vae
from .student import StudentError
from .swap import registered, swapped
from ..config import param_shapes


class Exercise(NamedTuple):
    """One rung: what to write, where it is derived, and how the grader runs it.

    kind "model": the whole-VAE table with ``plug(student_fn)`` in effect, on the model
    ``setting`` (VAEConfig fields); kind "loss": the student's loss_and_grads gives the
    analytic gradients; kind "adam" and "probability": graded by their own checks.
    """

    name: str
    title: str
    function: str
    equation: str
    kind: str
    setting: dict
    plug: Callable | None = None


def _shape(what: str, value, expected: tuple) -> np.ndarray:
    """The student's array, or StudentError if it is not an array of the expected shape."""
    got = getattr(value, "shape", None)
    if got != tuple(expected):
        raise StudentError(f"{what} has shape {got}, expected {tuple(expected)}")
    return value


def _returns(fn: Callable, n: int, name: str) -> Callable:
    """fn, checked to return a tuple of n values (a clear error instead of an unpacking one)."""
    def checked(*args):
        out = fn(*args)
        if not isinstance(out, tuple) or len(out) != n:
            raise StudentError(f"{name} must return {n} values, got {type(out).__name__}"
                               + (f" of length {len(out)}" if isinstance(out, tuple) else ""))
        return out
    return checked


def plug_dense(fn):
    """The student's dense_backward in the model, its three outputs checked against x, W, b's shapes.

    With fn None, the model as it is (every plug_* does this: the numerical side of the check).
    """
    if fn is None:  # the model as it is, nothing of the student's in it
        return contextlib.nullcontext()
    fn = _returns(fn, 3, "dense_backward")

    def dense_backward(dout, cache):
        x, W = cache
        dx, dW, db = fn(dout, cache)
        return (_shape("dx", dx, x.shape), _shape("dW", dW, W.shape), _shape("db", db, W.shape[1:]))
    return swapped(layers.dense_backward, dense_backward)


def plug_activation(original: Callable, name: str):
    """A plug for an activation's backward: the student's dx, checked to have dout's shape."""
    def plug(fn):
        if fn is None:
            return contextlib.nullcontext()

        def backward(dout, cache):
            return _shape(f"{name}'s dx", fn(dout, cache), dout.shape)
        return swapped(original, backward)
    return plug


@contextlib.contextmanager
def plug_softplus(fn):
    """softplus is no activation of tinyvae's: the check registers it for its own run.

    With fn None, tinyvae's own softplus_backward: the numerical side of the check.
    """
    def checked(dout, cache):
        return _shape("softplus_backward's dx", fn(dout, cache), dout.shape)
    backward = layers.softplus_backward if fn is None else checked
    with registered(layers.ACTIVATIONS, "softplus", layers.Activation(layers.softplus_forward, backward)):
        yield


def plug_loss(original: Callable, name: str, grad_names: tuple[str, ...]):
    """tinyvae's value of the loss with the student's gradients (every output after the first).

    Each gradient must have the shape of the function's first argument (logits, mean or mu).
    """
    def plug(student):
        if student is None:
            return contextlib.nullcontext()

        def mixed(*args):
            truth = original(*args)
            out = student(*args)
            if not isinstance(out, tuple) or len(out) != len(truth):
                raise StudentError(f"{name} must return {len(truth)} values (the loss and its gradients), "
                                   f"got {type(out).__name__}")
            grads = [_shape(f"{name}'s {g_name}", g, args[0].shape) for g_name, g in zip(grad_names, out[1:])]
            return (truth[0], *grads)
        return swapped(original, mixed)
    return plug


def _keys(what: str, grads, expected) -> dict:
    """The student's grads dict, checked key by key and shape by shape."""
    if not isinstance(grads, dict):
        raise StudentError(f"{what} must be a dict of gradients, got {type(grads).__name__}")
    missing, extra = sorted(set(expected) - set(grads)), sorted(set(grads) - set(expected))
    if missing or extra:
        raise StudentError(f"{what} has the wrong keys: missing {missing}, unexpected {extra}")
    return {key: _shape(f"{what}[{key!r}]", grads[key], shape) for key, shape in expected.items()}


def _part(config, prefix: str) -> dict:
    return {k: s for k, s in param_shapes(config).items() if k.startswith(prefix)}


def plug_encoder(fn):
    """The student's encoder_backward in the model, its grads dict checked key by key."""
    if fn is None:
        return contextlib.nullcontext()
    def encoder_backward(dmu, dlog_var, cache, config):
        return _keys("encoder_backward's grads", fn(dmu, dlog_var, cache, config), _part(config, "encoder."))
    return swapped(vae.encoder_backward, encoder_backward)


def plug_decoder(fn):
    """The student's decoder_backward in the model: dz (B, Z) and the decoder's grads, checked."""
    if fn is None:
        return contextlib.nullcontext()
    fn = _returns(fn, 2, "decoder_backward")

    def decoder_backward(dout, dout_log_var, cache, config):
        dz, grads = fn(dout, dout_log_var, cache, config)
        z_shape = (dout.shape[0], config.latent_dim)
        return _shape("dz", dz, z_shape), _keys("decoder_backward's grads", grads, _part(config, "decoder."))
    return swapped(vae.decoder_backward, decoder_backward)


def plug_reparameterize(fn):
    """The student's reparameterize_backward in the model: dmu and dlog_var, each (B, Z)."""
    if fn is None:
        return contextlib.nullcontext()
    fn = _returns(fn, 2, "reparameterize_backward")

    def reparameterize_backward(dz, cache):
        dmu, dlog_var = fn(dz, cache)
        return _shape("dmu", dmu, dz.shape), _shape("dlog_var", dlog_var, dz.shape)
    return swapped(layers.reparameterize_backward, reparameterize_backward)


EQ = "docs/04-gradients.md eq. "
LADDER = [
    Exercise("dense", "the dense layer's backward", "dense_backward", EQ + "(2)", "model", {}, plug_dense),
    Exercise("relu", "ReLU's backward", "relu_backward", EQ + "(3)", "model", {"activation": "relu"},
             plug_activation(layers.relu_backward, "relu_backward")),
    Exercise("tanh", "tanh's backward", "tanh_backward", EQ + "(4)", "model", {"activation": "tanh"},
             plug_activation(layers.tanh_backward, "tanh_backward")),
    Exercise("softplus", "softplus' backward, and softplus as a new activation", "softplus_backward",
             EQ + "(6)", "model", {"activation": "softplus"}, plug_softplus),
    Exercise("bernoulli", "the Bernoulli NLL's gradient", "bernoulli_nll", EQ + "(8)", "model",
             {"likelihood": "bernoulli"}, plug_loss(losses.bernoulli_nll, "bernoulli_nll", ("dlogits",))),
    Exercise("gaussian", "the Gaussian NLL's gradient (fixed σ)", "gaussian_nll", EQ + "(10)", "model",
             {"likelihood": "gaussian"}, plug_loss(losses.gaussian_nll, "gaussian_nll", ("dmean",))),
    Exercise("gaussian-learned", "the Gaussian NLL's gradients (learned variance)", "gaussian_nll_learned",
             EQ + "(12)", "model", {"likelihood": "gaussian-learned-variance"},
             plug_loss(losses.gaussian_nll_learned, "gaussian_nll_learned", ("dmean", "dlog_var"))),
    Exercise("kl", "the KL's gradients", "kl_standard_normal", EQ + "(13)", "model", {},
             plug_loss(losses.kl_standard_normal, "kl_standard_normal", ("dmu", "dlog_var"))),
    Exercise("reparameterize", "the reparameterization's backward", "reparameterize_backward", EQ + "(15)",
             "model", {}, plug_reparameterize),
    Exercise("encoder", "the encoder's backward", "encoder_backward", EQ + "(2)", "model", {}, plug_encoder),
    Exercise("decoder", "the decoder's backward", "decoder_backward", EQ + "(2)", "model", {}, plug_decoder),
    Exercise("loss", "the whole VAE's backward: two paths into μ and log σ², and the 1/B",
             "loss_and_grads", "docs/04-gradients.md eqs. (15)-(17)", "loss", {}),
    Exercise("adam", "one Adam step", "adam_update", "Kingma & Ba (2015), Algorithm 1", "adam", {}),
]
