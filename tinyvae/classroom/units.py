"""Each rung's function on its own: every output against central differences of its own forward pass.

The whole-VAE table says whether the student's function is right; this says which of its outputs
is wrong. For a backward with several outputs (dense_backward's dx, dW, db; the KL's dmu and
dlog_var) each output is the gradient of one scalar, s = Σ dout ⊙ forward(inputs), with respect
to one input, and is compared with central differences of s computed from tinyvae's forward
pass alone:

    dense_backward(dout, cache)   dx, dW, db  =  ∂/∂x, ∂/∂W, ∂/∂b  of  Σ dout ⊙ (x·W + b)
    kl_standard_normal(mu, lv)    dmu, dlog_var  =  ∂/∂μ, ∂/∂ log σ²  of  Σ_i KL_i

A Unit: ``draw(rng, config)`` the inputs (float64 arrays, drawn by the grader), ``call(fn,
inputs, config)`` the student's outputs by name (run in the child, fn already checked: see
ladder.py), ``value(inputs, config)`` the scalar (run in the grader), ``wrt`` output -> input.
ReLU's inputs keep |x| >= 0.1, far from its kink. Shapes: B batch, D data, H hidden, Z latent.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import numpy as np

from .. import layers, losses, vae
from ..config import param_shapes

B, H = 3, 4  # the batch and the width of a lone layer; the model's own sizes elsewhere


class Unit(NamedTuple):
    forward: str
    draw: Callable
    call: Callable
    value: Callable
    wrt: Callable  # config -> {output: input}


def _away_from_zero(rng, shape) -> np.ndarray:
    x = rng.normal(size=shape)
    return np.sign(x) * (0.1 + np.abs(x))


def _activation(forward: Callable, draw: Callable) -> Unit:
    """An activation: dx = ∂/∂x Σ dout ⊙ act(x); the cache is what the forward leaves."""
    def call(fn, inp, config):
        _, cache = forward(inp["x"])
        return {"dx": fn(inp["dout"], cache)}

    def value(inp, config):
        return float(np.sum(inp["dout"] * forward(inp["x"])[0]))
    return Unit(forward.__name__, lambda rng, config: {"x": draw(rng, (B, H)), "dout": rng.normal(size=(B, H))},
                call, value, lambda config: {"dx": "x"})


def _dense() -> Unit:
    def draw(rng, config):
        return {"x": rng.normal(size=(B, 5)), "W": rng.normal(size=(5, H)), "b": rng.normal(size=H),
                "dout": rng.normal(size=(B, H))}

    def call(fn, inp, config):
        _, cache = layers.dense_forward(inp["x"], inp["W"], inp["b"])
        return dict(zip(("dx", "dW", "db"), fn(inp["dout"], cache)))
    return Unit("dense_forward", draw, call,
                lambda inp, config: float(np.sum(inp["dout"] * layers.dense_forward(inp["x"], inp["W"], inp["b"])[0])),
                lambda config: {"dx": "x", "dW": "W", "db": "b"})


def _loss(function: str, names: tuple[str, ...], grads: tuple[str, ...], draw: Callable) -> Unit:
    """A loss term f(first, ...) -> (values (B,), its gradients): each gradient of Σ_i values_i."""
    def call(fn, inp, config):
        return dict(zip(grads, fn(*(_arg(inp, name, config) for name in names))[1:]))

    def value(inp, config):
        return float(np.sum(getattr(losses, function)(*(_arg(inp, name, config) for name in names))[0]))
    return Unit(f"the value of {function}", draw, call, value, lambda config: dict(zip(grads, names)))


def _arg(inp: dict, name: str, config):
    return config.gaussian_std if name == "std" else inp[name]


def _reparameterize() -> Unit:
    def draw(rng, config):
        return {name: rng.normal(size=(B, 2)) for name in ("mu", "log_var", "eps", "dz")}

    def call(fn, inp, config):
        _, cache = layers.reparameterize_forward(inp["mu"], inp["log_var"], inp["eps"])
        return dict(zip(("dmu", "dlog_var"), fn(inp["dz"], cache)))

    def value(inp, config):
        return float(np.sum(inp["dz"] * layers.reparameterize_forward(inp["mu"], inp["log_var"], inp["eps"])[0]))
    return Unit("reparameterize_forward", draw, call, value, lambda config: {"dmu": "mu", "dlog_var": "log_var"})


def _keys(config, prefix: str) -> list[str]:
    return [key for key in param_shapes(config) if key.startswith(prefix)]


def _params(rng, config, prefix: str) -> dict:
    return {key: rng.normal(size=shape) for key, shape in param_shapes(config).items() if key.startswith(prefix)}


def _encoder() -> Unit:
    def draw(rng, config):
        return {**_params(rng, config, "encoder."), "x": rng.normal(size=(B, config.input_dim)),
                "dmu": rng.normal(size=(B, config.latent_dim)), "dlog_var": rng.normal(size=(B, config.latent_dim))}

    def call(fn, inp, config):
        _, _, cache = vae.encoder_forward(inp, inp["x"], config)
        return fn(inp["dmu"], inp["dlog_var"], cache, config)

    def value(inp, config):
        mu, log_var, _ = vae.encoder_forward(inp, inp["x"], config)
        return float(np.sum(inp["dmu"] * mu) + np.sum(inp["dlog_var"] * log_var))
    return Unit("encoder_forward", draw, call, value, lambda config: {k: k for k in _keys(config, "encoder.")})


def _decoder() -> Unit:
    def draw(rng, config):
        inp = {**_params(rng, config, "decoder."), "z": rng.normal(size=(B, config.latent_dim)),
               "dout": rng.normal(size=(B, config.input_dim))}
        if "decoder.W_logvar" in inp:
            inp["dout_log_var"] = rng.normal(size=(B, config.input_dim))
        return inp

    def call(fn, inp, config):
        _, _, cache = vae.decoder_forward(inp, inp["z"], config)
        dz, grads = fn(inp["dout"], inp.get("dout_log_var"), cache, config)
        return {"dz": dz, **grads}

    def value(inp, config):
        out, out_log_var, _ = vae.decoder_forward(inp, inp["z"], config)
        extra = 0.0 if out_log_var is None else float(np.sum(inp["dout_log_var"] * out_log_var))
        return float(np.sum(inp["dout"] * out)) + extra
    return Unit("decoder_forward", draw, call, value,
                lambda config: {"dz": "z", **{k: k for k in _keys(config, "decoder.")}})


def _binary(rng, shape):
    return (rng.uniform(size=shape) < 0.5).astype(np.float64)


UNITS: dict[str, Unit] = {
    "dense": _dense(),
    "relu": _activation(layers.relu_forward, _away_from_zero),
    "tanh": _activation(layers.tanh_forward, lambda rng, shape: rng.normal(size=shape)),
    "softplus": _activation(layers.softplus_forward, lambda rng, shape: 2 * rng.normal(size=shape)),
    "bernoulli": _loss("bernoulli_nll", ("logits", "x"), ("dlogits",),
                       lambda rng, config: {"logits": 2 * rng.normal(size=(B, 5)), "x": _binary(rng, (B, 5))}),
    "gaussian": _loss("gaussian_nll", ("mean", "x", "std"), ("dmean",),
                      lambda rng, config: {"mean": rng.normal(size=(B, 5)), "x": rng.normal(size=(B, 5))}),
    "gaussian-learned": _loss("gaussian_nll_learned", ("mean", "log_var", "x"), ("dmean", "dlog_var"),
                              lambda rng, config: {"mean": rng.normal(size=(B, 5)),
                                                   "log_var": rng.normal(size=(B, 5)), "x": rng.normal(size=(B, 5))}),
    "kl": _loss("kl_standard_normal", ("mu", "log_var"), ("dmu", "dlog_var"),
                lambda rng, config: {"mu": rng.normal(size=(B, 2)), "log_var": rng.normal(size=(B, 2))}),
    "reparameterize": _reparameterize(),
    "encoder": _encoder(),
    "decoder": _decoder(),
}
