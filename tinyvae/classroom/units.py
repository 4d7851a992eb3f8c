"""Each rung's function on its own:
every output against central differences of its own forward pass.

The whole-VAE table says whether the student's function is right; this says which of its outputs
is wrong. For a backward with several outputs (dense_backward's dx, dW, db; the KL's dmu and
dlog_var) each output is the gradient of one scalar, s = Σ dout ⊙ forward(inputs), with respect
to one input, and is compared with central differences of s computed from tinyvae's forward
pass alone:

    dense_backward(dout, cache)   dx, dW, db  =  ∂/∂x, ∂/∂W, ∂/∂b  of  Σ dout ⊙ (x·W + b)
    kl_standard_normal(mu, lv)    dmu, dlog_var  =  ∂/∂μ, ∂/∂ log σ²  of  Σ_i KL_i

    normalized_weights(log_w, axis)   w̃  =  ∂/∂ log w  of  Σ log_mean_exp(log w, axis)

A Unit: ``draw(rng, config)`` the inputs (float64 arrays, drawn by the grader), ``call(fn,
inputs, config)`` the student's outputs by name (run in the child, fn already checked: see
ladder.py), ``value(inputs, config)`` the scalar (run in the grader), ``wrt`` output -> input.
A function with properties of its own may add ``pattern(output, analytic)``, which reads a wrong
output first (diagnosis.py), and ``checks(inputs, outputs)``, rows of its properties.
ReLU's inputs keep |x| >= 0.1, far from its kink. Shapes: B batch, D data, H hidden, Z latent,
K samples of z per image.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import numpy as np

from .. import layers, losses, vae
from ..config import param_shapes
from .diagnosis import weights_pattern
from .numeric import row

B, H = 3, 4  # the batch and the width of a lone layer; the model's own sizes elsewhere


class Unit(NamedTuple):
    forward: str
    draw: Callable
    call: Callable
    value: Callable
    wrt: Callable  # config -> {output: input}
    pattern: Callable | None = None  # (output, analytic) -> diagnosis.Pattern, or None
    checks: Callable | None = None  # (inputs, outputs) -> rows ("check", name, columns, passed)


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
    return Unit(forward.__name__,
                lambda rng, config: {"x": draw(rng, (B, H)), "dout": rng.normal(size=(B, H))},
                call, value, lambda config: {"dx": "x"})


def _dense() -> Unit:
    def draw(rng, config):
        return {"x": rng.normal(size=(B, 5)), "W": rng.normal(size=(5, H)), "b": rng.normal(size=H),
                "dout": rng.normal(size=(B, H))}

    def call(fn, inp, config):
        _, cache = layers.dense_forward(inp["x"], inp["W"], inp["b"])
        return dict(zip(("dx", "dW", "db"), fn(inp["dout"], cache)))

    def value(inp, config):
        out, _ = layers.dense_forward(inp["x"], inp["W"], inp["b"])
        return float(np.sum(inp["dout"] * out))
    return Unit("dense_forward", draw, call, value,
                lambda config: {"dx": "x", "dW": "W", "db": "b"})


def _loss(function: str, names: tuple[str, ...], grads: tuple[str, ...], draw: Callable) -> Unit:
    """A loss term f(first, ...) -> (values (B,), its gradients): each gradient of Σ_i values_i."""
    def call(fn, inp, config):
        return dict(zip(grads, fn(*(_arg(inp, name, config) for name in names))[1:]))

    def value(inp, config):
        f = getattr(losses, function)
        return float(np.sum(f(*(_arg(inp, name, config) for name in names))[0]))
    return Unit(f"the value of {function}", draw, call, value,
                lambda config: dict(zip(grads, names)))


def _arg(inp: dict, name: str, config):
    return config.gaussian_std if name == "std" else inp[name]


def _reparameterize() -> Unit:
    def draw(rng, config):
        return {name: rng.normal(size=(B, 2)) for name in ("mu", "log_var", "eps", "dz")}

    def call(fn, inp, config):
        _, cache = layers.reparameterize_forward(inp["mu"], inp["log_var"], inp["eps"])
        return dict(zip(("dmu", "dlog_var"), fn(inp["dz"], cache)))

    def value(inp, config):
        z, _ = layers.reparameterize_forward(inp["mu"], inp["log_var"], inp["eps"])
        return float(np.sum(inp["dz"] * z))
    return Unit("reparameterize_forward", draw, call, value,
                lambda config: {"dmu": "mu", "dlog_var": "log_var"})


def _keys(config, prefix: str) -> list[str]:
    return [key for key in param_shapes(config) if key.startswith(prefix)]


def _params(rng, config, prefix: str) -> dict:
    return {key: rng.normal(size=shape)
            for key, shape in param_shapes(config).items() if key.startswith(prefix)}


def _encoder() -> Unit:
    def draw(rng, config):
        return {**_params(rng, config, "encoder."), "x": rng.normal(size=(B, config.input_dim)),
                "dmu": rng.normal(size=(B, config.latent_dim)),
                "dlog_var": rng.normal(size=(B, config.latent_dim))}

    def call(fn, inp, config):
        _, _, cache = vae.encoder_forward(inp, inp["x"], config)
        return fn(inp["dmu"], inp["dlog_var"], cache, config)

    def value(inp, config):
        mu, log_var, _ = vae.encoder_forward(inp, inp["x"], config)
        return float(np.sum(inp["dmu"] * mu) + np.sum(inp["dlog_var"] * log_var))
    return Unit("encoder_forward", draw, call, value,
                lambda config: {k: k for k in _keys(config, "encoder.")})


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


# normalized_weights' three calls: output -> (input, axis). The model's log w (B, K) along axis 1,
# the same shape turned around along axis 0, and rows of log w around −100, −1000 and +1000
# spread over hundreds: in float64, e^(log w) underflows to 0 below −745 and overflows above 709.
WEIGHTS = {"axis 1": ("log_w", 1), "axis 0": ("log_w_t", 0),
           "extreme log w": ("log_w_extreme", 1)}
EXTREME = (-100.0, -1000.0, 1000.0)


def _weights() -> Unit:
    """w̃ along an axis: ∂ L_K / ∂ log w with L_K = log_mean_exp, docs/04-gradients.md eq. (19)."""
    def draw(rng, config):
        K, rows = config.k, len(EXTREME)
        # Each extreme row: two log w within a few nats of its centre (they share w̃), the others
        # 100 to 300 below (w̃ ≈ 0), in a random order.
        near = min(K, 2)
        offsets = np.concatenate([rng.normal(size=(rows, near)),
                                  -rng.uniform(100, 300, size=(rows, K - near))], axis=1)  # (3, K)
        offsets = rng.permuted(offsets, axis=1)  # (3, K)
        return {"log_w": -5 + 3 * rng.normal(size=(B, K)),  # (B, K)
                "log_w_t": -5 + 3 * rng.normal(size=(K, B)),  # (K, B)
                "log_w_extreme": np.array(EXTREME)[:, None] + offsets}  # (3, K)

    def call(fn, inp, config):
        return {out: fn(inp[name], axis) for out, (name, axis) in WEIGHTS.items()}

    def value(inp, config):  # Σ of every L_K: its gradient in each input is that input's w̃
        return float(sum(np.sum(losses.log_mean_exp(inp[name], axis))
                         for name, axis in WEIGHTS.values()))

    def wrt(config):
        return {out: name for out, (name, _) in WEIGHTS.items()}

    def pattern(out, analytic):
        return weights_pattern(analytic, WEIGHTS[out][1])
    return Unit("log_mean_exp", draw, call, value, wrt, pattern, _weights_checks)


def _weights_checks(inp: dict, outputs: dict) -> list:
    """What every w̃ is: summing to 1 along its axis, non-negative, finite (far from 0 too)."""
    sums = np.concatenate([np.sum(w, axis=WEIGHTS[out][1]) for out, w in outputs.items()])
    sums = sums[np.isfinite(sums)]  # a row with NaN is the last check's
    worst = float(sums[np.argmax(np.abs(sums - 1))]) if sums.size else float("nan")
    entries = np.concatenate([w.ravel() for w in outputs.values()])
    return [row("sums to 1 along the axis: the sum furthest from 1", worst, 1.0, 1e-9),
            row("non-negative: entries below 0", np.sum(entries < 0), 0, 0),
            row("finite, at extreme log w too: entries NaN or inf", np.sum(~np.isfinite(entries)),
                0, 0)]


def _binary(rng, shape):
    return (rng.uniform(size=shape) < 0.5).astype(np.float64)


UNITS: dict[str, Unit] = {
    "dense": _dense(),
    "relu": _activation(layers.relu_forward, _away_from_zero),
    "tanh": _activation(layers.tanh_forward, lambda rng, shape: rng.normal(size=shape)),
    "softplus": _activation(layers.softplus_forward, lambda rng, shape: 2 * rng.normal(size=shape)),
    "bernoulli": _loss("bernoulli_nll", ("logits", "x"), ("dlogits",),
                       lambda rng, config: {"logits": 2 * rng.normal(size=(B, 5)),
                                            "x": _binary(rng, (B, 5))}),
    "gaussian": _loss("gaussian_nll", ("mean", "x", "std"), ("dmean",),
                      lambda rng, config: {"mean": rng.normal(size=(B, 5)),
                                           "x": rng.normal(size=(B, 5))}),
    "gaussian-learned": _loss("gaussian_nll_learned", ("mean", "log_var", "x"),
                              ("dmean", "dlog_var"),
                              lambda rng, config: {"mean": rng.normal(size=(B, 5)),
                                                   "log_var": rng.normal(size=(B, 5)),
                                                   "x": rng.normal(size=(B, 5))}),
    "kl": _loss("kl_standard_normal", ("mu", "log_var"), ("dmu", "dlog_var"),
                lambda rng, config: {"mu": rng.normal(size=(B, 2)),
                                     "log_var": rng.normal(size=(B, 2))}),
    "reparameterize": _reparameterize(),
    "encoder": _encoder(),
    "decoder": _decoder(),
    "iwae-weights": _weights(),
}
