"""The backprop ladder: from one dense layer's backward to the whole VAE's, and one Adam step.

Each rung names the function the student writes, the equation that derives it, the model the
check runs (the setting that puts the function on the model's path), and how the student's
function enters the model: ``plug(fn)`` swaps ``checked(fn)`` in for tinyvae's function (swap.py)
for the length of a ``with``, in the grader's child process (child.py). Where tinyvae's
function computes a value and its gradient together (the losses), only the student's gradient
matters: the check measures it against finite differences of tinyvae's own loss, computed in
the grader's process.

``checked(fn)`` has the library's signature and calls the student's fn on read-only views of its
inputs (a backward never changes dout or the cache), inside guards.student_code() (tinyvae's
answer refuses to run there), then checks every output: a numpy array of floats, of the
expected shape, finite, and sharing no memory with any input. Anything else is a StudentError
with one line, or a RuleBroken naming the rule.

Shapes: B batch, D data, H hidden, Z latent, K samples of z per image.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from typing import NamedTuple

import numpy as np

from .. import layers, losses, vae
from ..config import param_shapes
from . import guards
from .student import RuleBroken, StudentError
from .swap import registered, swapped


class Exercise(NamedTuple):
    """One exercise: what to write, where it is derived, and how the grader runs it.

    kind "model": the whole-VAE table with ``plug(student_fn)`` in effect, on the model
    ``setting`` (VAEConfig fields); "loss": the student's loss_and_grads gives the analytic
    gradients; "adam" and "probability": graded by checks of their own (numeric.py, probability.py).
    """

    name: str
    title: str
    function: str
    equation: str
    kind: str
    setting: dict
    plug: Callable | None = None


def readonly(value):
    """Read-only views of every array in value (through tuples, lists and dicts);
    the rest as it is."""
    if isinstance(value, np.ndarray):
        view = value.view()
        view.flags.writeable = False
        return view
    if type(value) in (tuple, list):  # the caches: plain tuples
        return type(value)(readonly(v) for v in value)
    if isinstance(value, dict):
        return {k: readonly(v) for k, v in value.items()}
    return value


def arrays_in(value, name: str) -> list[tuple[str, np.ndarray]]:
    """(name, array) for every array in value, for the rule that no output aliases an input."""
    if isinstance(value, np.ndarray):
        return [(name, value)]
    if isinstance(value, (tuple, list)):
        return [pair for v in value for pair in arrays_in(v, name)]
    if isinstance(value, dict):
        return [pair for k, v in value.items() for pair in arrays_in(v, f"{name}[{k!r}]")]
    return []


_active: set[int] = set()  # the student's functions being called now (through the model's names)


def call(fn: Callable, names: tuple[str, ...], *args):
    """fn(*args) on read-only views, as the student's code;
    returns (its output, the inputs' arrays).

    A student's function that calls tinyvae's name for itself (vae.encoder_backward inside
    encoder_backward) reaches itself again, since the check put it there: said in one line.
    """
    if id(fn) in _active:
        raise StudentError(f"{getattr(fn, '__name__', 'your function')}() calls tinyvae's own name "
                           "for it, which during the check is your function again "
                           "(tinyvae's own is out of reach)")
    views = readonly(args)
    _active.add(id(fn))
    try:
        with guards.student_code():
            out = fn(*views)
    finally:
        _active.discard(id(fn))
    return out, [pair for name, v in zip(names, views) for pair in arrays_in(v, name)]


def array(what: str, value, shape: tuple, inputs: list, finite: bool = True) -> np.ndarray:
    """value, if it is a finite float array of ``shape`` that shares no memory with the inputs.

    finite False lets NaN and inf through, for a check that grades them (a row that fails).
    """
    if not isinstance(value, np.ndarray):
        raise StudentError(f"{what} is a {type(value).__name__}, "
                           f"not a numpy array of shape {tuple(shape)}")
    if value.dtype.kind != "f":
        raise StudentError(f"{what} has dtype {value.dtype}; a gradient is an array of floats")
    if value.shape != tuple(shape):
        turned = (" (transposed: a missing or extra .T?)" if value.shape == tuple(shape)[::-1]
                  else "")
        raise StudentError(f"{what} has shape {value.shape}, expected {tuple(shape)}{turned}")
    if finite and not np.all(np.isfinite(value)):
        raise StudentError(f"{what} has NaN or infinite entries")
    for name, given in inputs:
        if np.shares_memory(value, given):
            raise RuleBroken(f"{what} shares memory with the input {name}: return a new array, "
                             "never an input or a view of one (the caller may change it; "
                             "docs/05-classroom.md §4)")
    return value


def returns(out, n: int, name: str) -> tuple:
    """out, checked to be a tuple of n values (a clear error instead of an unpacking one)."""
    if not isinstance(out, tuple) or len(out) != n:
        got = type(out).__name__ + (f" of length {len(out)}" if isinstance(out, tuple) else "")
        raise StudentError(f"{name} must return {n} values, got {got}")
    return out


def grads_dict(what: str, grads, expected: dict, inputs: list) -> dict:
    """The student's dict of gradients, checked key by key and array by array."""
    if not isinstance(grads, dict):
        raise StudentError(f"{what} must be a dict of gradients, got {type(grads).__name__}")
    missing, extra = sorted(set(expected) - set(grads)), sorted(set(grads) - set(expected))
    if missing or extra:
        raise StudentError(f"{what} has the wrong keys: missing {missing} (an output left out?), "
                           f"unexpected {extra}")
    return {key: array(f"{what}[{key!r}]", grads[key], shape, inputs)
            for key, shape in expected.items()}


def checked_dense(fn):
    def dense_backward(dout, cache):
        x, W = cache
        out, inputs = call(fn, ("dout", "cache"), dout, cache)
        dx, dW, db = returns(out, 3, "dense_backward")
        return (array("dx", dx, x.shape, inputs), array("dW", dW, W.shape, inputs),
                array("db", db, W.shape[1:], inputs))
    return dense_backward


def checked_activation(name: str):
    def checked(fn):
        def backward(dout, cache):
            out, inputs = call(fn, ("dout", "cache"), dout, cache)
            return array(f"{name}'s dx", out, dout.shape, inputs)
        return backward
    return checked


def checked_loss(name: str, arg_names: tuple[str, ...], grad_names: tuple[str, ...]):
    """A loss term: the student's values (B,) and gradients (each of the first argument's shape)."""
    def checked(fn):
        def loss(*args):
            out, inputs = call(fn, arg_names, *args)
            out = returns(out, 1 + len(grad_names), f"{name} (the loss and its gradients)")
            value = array(f"{name}'s value", out[0], args[0].shape[:1], inputs)
            return (value, *(array(f"{name}'s {g}", v, args[0].shape, inputs)
                             for g, v in zip(grad_names, out[1:])))
        return loss
    return checked


def checked_reparameterize(fn):
    def reparameterize_backward(dz, cache):
        out, inputs = call(fn, ("dz", "cache"), dz, cache)
        dmu, dlog_var = returns(out, 2, "reparameterize_backward")
        return array("dmu", dmu, dz.shape, inputs), array("dlog_var", dlog_var, dz.shape, inputs)
    return reparameterize_backward


def checked_weights(fn, finite: bool = True):
    """normalized_weights: the student's w̃, of log w's shape.

    The model needs w̃ finite; the check of the function on its own (units.py) lets NaN and
    inf through, and fails the row that shows them.
    """
    def normalized_weights(log_w, axis=0):
        out, inputs = call(fn, ("log_w", "axis"), log_w, axis)
        return array("normalized_weights' w̃", out, log_w.shape, inputs, finite)
    return normalized_weights


def _part(config, prefix: str) -> dict:
    return {k: s for k, s in param_shapes(config).items() if k.startswith(prefix)}


def checked_encoder(fn):
    def encoder_backward(dmu, dlog_var, cache, config):
        out, inputs = call(fn, ("dmu", "dlog_var", "cache", "config"), dmu, dlog_var, cache, config)
        return grads_dict("encoder_backward's grads", out, _part(config, "encoder."), inputs)
    return encoder_backward


def checked_decoder(fn):
    def decoder_backward(dout, dout_log_var, cache, config):
        out, inputs = call(fn, ("dout", "dout_log_var", "cache", "config"),
                           dout, dout_log_var, cache, config)
        dz, grads = returns(out, 2, "decoder_backward")
        z_shape = (dout.shape[0], config.latent_dim)
        return (array("dz", dz, z_shape, inputs),
                grads_dict("decoder_backward's grads", grads, _part(config, "decoder."), inputs))
    return decoder_backward


def plug(module, attribute: str, checked: Callable) -> Callable:
    """The plug of a rung: swap checked(fn) in for what module.attribute holds at that moment.

    Looked up when plugged, not when this file is imported: in the child the attribute holds
    a Guard by then, and the Guard is what the model's modules hold too.
    """
    return lambda fn: swapped(getattr(module, attribute), checked(fn))


@contextlib.contextmanager
def plug_softplus(fn):
    """softplus is no activation of tinyvae's: the check registers it,
    with fn's backward, for its own run.

    With fn None, tinyvae's own softplus_backward: the numerical side of the check.
    """
    backward = (layers.softplus_backward if fn is None
                else checked_activation("softplus_backward")(fn))
    with registered(layers.ACTIVATIONS, "softplus",
                    layers.Activation(layers.softplus_forward, backward)):
        yield


CHECKED = {  # rung -> checked(fn): the student's function with the library's signature
    "dense": checked_dense,
    "relu": checked_activation("relu_backward"),
    "tanh": checked_activation("tanh_backward"),
    "softplus": checked_activation("softplus_backward"),
    "bernoulli": checked_loss("bernoulli_nll", ("logits", "x"), ("dlogits",)),
    "gaussian": checked_loss("gaussian_nll", ("mean", "x", "std"), ("dmean",)),
    "gaussian-learned": checked_loss("gaussian_nll_learned", ("mean", "log_var", "x"),
                                     ("dmean", "dlog_var")),
    "kl": checked_loss("kl_standard_normal", ("mu", "log_var"), ("dmu", "dlog_var")),
    "reparameterize": checked_reparameterize,
    "encoder": checked_encoder,
    "decoder": checked_decoder,
    # for units.py alone (the plug below keeps w̃ finite): there a NaN is a failing row
    "iwae-weights": lambda fn: checked_weights(fn, finite=False),
}
EQ = "docs/04-gradients.md eq. "
LADDER = [
    Exercise("dense", "the dense layer's backward", "dense_backward", EQ + "(2)", "model", {},
             plug(layers, "dense_backward", checked_dense)),
    Exercise("relu", "ReLU's backward", "relu_backward", EQ + "(3)", "model",
             {"activation": "relu"}, plug(layers, "relu_backward", CHECKED["relu"])),
    Exercise("tanh", "tanh's backward", "tanh_backward", EQ + "(4)", "model",
             {"activation": "tanh"}, plug(layers, "tanh_backward", CHECKED["tanh"])),
    Exercise("softplus", "softplus' backward, and softplus as a new activation",
             "softplus_backward", EQ + "(6)", "model", {"activation": "softplus"}, plug_softplus),
    Exercise("bernoulli", "the Bernoulli NLL's gradient", "bernoulli_nll", EQ + "(8)", "model",
             {"likelihood": "bernoulli"}, plug(losses, "bernoulli_nll", CHECKED["bernoulli"])),
    Exercise("gaussian", "the Gaussian NLL's gradient (fixed σ)", "gaussian_nll", EQ + "(10)",
             "model", {"likelihood": "gaussian"},
             plug(losses, "gaussian_nll", CHECKED["gaussian"])),
    Exercise("gaussian-learned", "the Gaussian NLL's gradients (learned variance)",
             "gaussian_nll_learned", EQ + "(12)", "model",
             {"likelihood": "gaussian-learned-variance"},
             plug(losses, "gaussian_nll_learned", CHECKED["gaussian-learned"])),
    Exercise("kl", "the KL's gradients", "kl_standard_normal", EQ + "(13)", "model", {},
             plug(losses, "kl_standard_normal", CHECKED["kl"])),
    Exercise("reparameterize", "the reparameterization's backward", "reparameterize_backward",
             EQ + "(15)", "model", {},
             plug(layers, "reparameterize_backward", checked_reparameterize)),
    Exercise("encoder", "the encoder's backward", "encoder_backward", EQ + "(2)", "model", {},
             plug(vae, "encoder_backward", checked_encoder)),
    Exercise("decoder", "the decoder's backward", "decoder_backward", EQ + "(2)", "model", {},
             plug(vae, "decoder_backward", checked_decoder)),
    Exercise("loss", "the whole VAE's backward: two paths into μ and log σ², and the 1/B",
             "loss_and_grads", "docs/04-gradients.md eqs. (15)-(17)", "loss", {}),
    Exercise("iwae-weights", "the importance weights of L_K, normalized stably",
             "normalized_weights", EQ + "(19)", "model", {"k": 5, "objective": "iwae"},
             plug(losses, "normalized_weights", checked_weights)),
    Exercise("adam", "one Adam step", "adam_update", "Kingma & Ba (2015), Algorithm 1", "adam", {}),
]
