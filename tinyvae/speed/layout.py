"""Where the fast step's arrays live: the flat parameter buffer cut into blocks, and the
batch buffers.

Two of the fast step's tricks are memory layouts (speed/step.py lists them all):

1. One flat parameter buffer. Every parameter lives in one contiguous (P,) array and the
   usual keys of param_shapes are views into it, so an optimizer updates all ~650,000
   numbers of the default model with a handful of whole-array operations instead of a dozen
   small ones per key. The gradients and the optimizer's moments have the same layout.
2. Fused heads. W_mu and W_logvar are the two column halves of one (H, 2Z) block, so μ and
   log σ² come out of one matrix multiply (and their gradients go back through one); the
   decoder's mean and log-variance heads are fused the same way.

Shapes: B batch, D data, H hidden, Z latent; P the number of parameters.
"""

from __future__ import annotations

import math

import numpy as np

from ..config import VAEConfig


def blocks(config: VAEConfig) -> list[tuple[str, tuple[int, ...], dict]]:
    """The arrays of the flat buffer, in order: (block name, shape, {parameter key: index}).

    A block is a whole matrix the step multiplies by; the parameter keys of param_shapes
    are views of the blocks. Only the fused heads hold two keys each.
    """
    D, Z = config.input_dim, config.latent_dim
    out = []
    sizes = (D, *config.hidden_dims)
    for i, (fan_in, fan_out) in enumerate(zip(sizes[:-1], sizes[1:])):
        out.append((f"encoder.W{i}", (fan_in, fan_out), {f"encoder.W{i}": ...}))
        out.append((f"encoder.b{i}", (fan_out,), {f"encoder.b{i}": ...}))
    # μ and log σ² side by side: columns [0, Z) and [Z, 2Z) of one (H, 2Z) matrix
    out.append(("encoder.W_head", (sizes[-1], 2 * Z),
                {"encoder.W_mu": np.s_[:, :Z], "encoder.W_logvar": np.s_[:, Z:]}))
    out.append(("encoder.b_head", (2 * Z,),
                {"encoder.b_mu": np.s_[:Z], "encoder.b_logvar": np.s_[Z:]}))
    sizes = (Z, *reversed(config.hidden_dims))
    for i, (fan_in, fan_out) in enumerate(zip(sizes[:-1], sizes[1:])):
        out.append((f"decoder.W{i}", (fan_in, fan_out), {f"decoder.W{i}": ...}))
        out.append((f"decoder.b{i}", (fan_out,), {f"decoder.b{i}": ...}))
    if config.learned_variance:
        # the mean and the per-pixel log-variance side by side: (H, 2D)
        out.append(("decoder.W_head", (sizes[-1], 2 * D),
                    {"decoder.W_out": np.s_[:, :D], "decoder.W_logvar": np.s_[:, D:]}))
        out.append(("decoder.b_head", (2 * D,),
                    {"decoder.b_out": np.s_[:D], "decoder.b_logvar": np.s_[D:]}))
    else:
        out.append(("decoder.W_head", (sizes[-1], D), {"decoder.W_out": ...}))
        out.append(("decoder.b_head", (D,), {"decoder.b_out": ...}))
    return out


def views(flat: np.ndarray, layout, key_order) -> tuple[dict, dict]:
    """Cut `flat` into the blocks of `layout`;
    returns ({block name: array}, {parameter key: view})."""
    arrays, by_key, offset = {}, {}, 0
    for name, shape, keys in layout:
        size = math.prod(shape)
        arrays[name] = flat[offset:offset + size].reshape(shape)
        offset += size
        for key, index in keys.items():
            by_key[key] = arrays[name][index]
    return arrays, {key: by_key[key] for key in key_order}


class Buffers:
    """The preallocated arrays of one step, for `rows` images; `.first(B)` gives views of B images.

    Names follow vae.py: enc[i] / dec[i] hold a hidden layer's activation, *_mask[i] its
    ReLU mask 1[a > 0] (or, for tanh, scratch for 1 − h²), *_d and d_* the gradients. The
    encoder's arrays have a row per image; from z on, a row per sample, K = config.k per image
    (R = B·K rows). Each likelihood has scratch arrays of its own, named for what they hold.
    """

    def __init__(self, config: VAEConfig, rows: int, dtype, n_out: int):
        H, Z, D, K = config.hidden_dims, config.latent_dim, config.input_dim, config.k
        new = lambda *shape: np.zeros((rows, *shape), dtype=dtype)  # noqa: E731
        new_r = lambda *shape: np.zeros((rows * K, *shape), dtype=dtype)  # noqa: E731
        self.enc = [new(h) for h in H]  # (B, H_i) encoder activations
        self.enc_mask = [new(h) for h in H]
        self.enc_d = [new(h) for h in H]  # (B, H_i) their gradients
        self.head = new(2 * Z)  # (B, 2Z) [μ | log σ²]
        self.d_head = new(2 * Z)  # (B, 2Z) [dμ | d log σ²]
        self.std = new(Z)  # (B, Z) σ
        self.kl = new(Z)  # (B, Z) the KL's terms
        self.mu_sq = new(Z)  # (B, Z) μ²
        self.var_m1 = new(Z)  # (B, Z) σ² − 1
        self.z = new_r(Z)  # (R, Z)
        self.dz = new_r(Z)  # (R, Z)
        self.dlog_var_z = new_r(Z)  # (R, Z) each sample's path into log σ², before the sum over K
        self.x_rows = new_r(D) if K > 1 else None  # (R, D) each image repeated for its K samples
        self.dec = [new_r(h) for h in reversed(H)]  # (R, H_i) decoder activations
        self.dec_mask = [new_r(h) for h in reversed(H)]
        self.dec_d = [new_r(h) for h in reversed(H)]
        self.out = new_r(n_out)  # (R, D) logits or mean, or (R, 2D) [mean | log σ²]
        self.d_out = new_r(n_out)  # (R, D) or (R, 2D)
        if config.likelihood == "bernoulli":  # speed/losses.bernoulli_nll's scratch
            self.exp_neg_abs = new_r(D)  # (R, D) e = exp(−|l|)
            self.one_plus_exp = new_r(D)  # (R, D) 1 + e
            self.terms = new_r(D)  # (R, D) the terms of the sum over pixels
            self.nonneg = new_r(D)  # (R, D) 1[l ≥ 0]
        elif config.learned_variance:  # speed/losses.gaussian_nll_learned's scratch
            self.diff = new_r(D)  # (R, D) m − x
            self.inv_var = new_r(D)  # (R, D) e^(−s)
            self.sq_err = new_r(D)  # (R, D) (x − m)² e^(−s)
        self.rows, self.k = rows, K

    def first(self, B: int) -> Buffers:
        """The same arrays cut to their first B images, B·K samples (views: nothing is copied)."""
        if B == self.rows:
            return self
        view = object.__new__(Buffers)
        per_image = {"enc", "enc_mask", "enc_d", "head", "d_head", "std", "kl", "mu_sq", "var_m1"}
        for name, value in vars(self).items():
            n = B if name in per_image else B * self.k
            if isinstance(value, list):
                setattr(view, name, [a[:n] for a in value])
            elif isinstance(value, np.ndarray):
                setattr(view, name, value[:n])
            else:
                setattr(view, name, value)
        view.rows = B
        return view
