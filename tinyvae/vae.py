"""The variational autoencoder: encoder, reparameterization, decoder, loss, and backward.

    encoder  x ──MLP──> h ──┬── W_mu ─────> μ         (B, Z)   the mean of q(z|x)
                            └── W_logvar ─> log σ²    (B, Z)   its log-variance
    sample   z = μ + exp(½ log σ²) ⊙ ε,  ε ~ N(0, I)  (B, Z)   the reparameterization
    decoder  z ──MLP──> h ──── W_out ───> logits      (B, D)   (or the Gaussian mean,
                                                               and for a learned variance
                                                               also a per-pixel log σ²)
    loss     recon(x, logits) + β · KL(q(z|x) ‖ N(0, I)), averaged over the batch

The encoder outputs a distribution instead of a point (docs/01-autoencoder-to-vae.md);
the loss is the negative ELBO, docs/02-variational-inference.md eq. (11). The noise ε
is an argument, so `loss_and_grads` is a deterministic function that the gradient
checker can differentiate numerically; the training loop draws ε from its Generator.

Parameters live in a flat dict whose keys name the layer (`encoder.W0`, `decoder.b_out`,
...); `loss_and_grads` returns a grads dict with exactly the same keys, so optimizers,
checkpoints and the gradient checker walk the keys and work on any depth.

Shapes: B batch, D data, H hidden, Z latent.
"""

from __future__ import annotations

import numpy as np

# VAEConfig, init_params and param_shapes live in config.py; they are importable from here too,
# as they were before the model's shape had a file of its own.
from ._checks import finite_params, finite_real, nonempty, nonnegative_int
from .config import VAEConfig, init_params, param_shapes  # noqa: F401
from .layers import activation, dense_backward, dense_forward, reparameterize_backward, reparameterize_forward
from .losses import LIKELIHOODS, kl_standard_normal, likelihood  # noqa: F401

Params = dict[str, np.ndarray]  # the flat dict of parameters (and of their gradients), by key


def _mlp_forward(params, h, prefix, n_layers, activation_name):
    """The hidden layers of the encoder or decoder: h ← act(h·W_i + b_i), i = 0..n−1."""
    act_forward = activation(activation_name).forward
    caches = []
    for i in range(n_layers):
        a, dense_cache = dense_forward(h, params[f"{prefix}.W{i}"], params[f"{prefix}.b{i}"])  # (B, H_i)
        h, act_cache = act_forward(a)  # (B, H_i)
        caches.append((dense_cache, act_cache))
    return h, caches


def _mlp_backward(dh, caches, prefix, activation_name, grads):
    """The mirror of _mlp_forward: walk the layers from last to first; returns d(input)."""
    act_backward = activation(activation_name).backward
    for i in reversed(range(len(caches))):
        dense_cache, act_cache = caches[i]
        da = act_backward(dh, act_cache)  # (B, H_i)
        dh, grads[f"{prefix}.W{i}"], grads[f"{prefix}.b{i}"] = dense_backward(da, dense_cache)
    return dh


def encoder_forward(params: Params, x: np.ndarray, config: VAEConfig) -> tuple[np.ndarray, np.ndarray, tuple]:
    """q(z|x) = N(μ, diag σ²): an MLP with two linear heads, μ and log σ².

    The log-variance rather than σ: any real number is a valid log σ², so the head
    needs no constraint, and the KL is simple in it:
    docs/02-variational-inference.md eq. (10). x (B, D) -> mu (B, Z), log_var (B, Z), cache.
    """
    h, mlp_caches = _mlp_forward(params, x, "encoder", len(config.hidden_dims), config.activation)  # (B, H)
    mu, mu_cache = dense_forward(h, params["encoder.W_mu"], params["encoder.b_mu"])  # (B, Z)
    log_var, lv_cache = dense_forward(h, params["encoder.W_logvar"], params["encoder.b_logvar"])  # (B, Z)
    return mu, log_var, (mlp_caches, mu_cache, lv_cache)


def encoder_backward(dmu: np.ndarray, dlog_var: np.ndarray, cache: tuple, config: VAEConfig) -> Params:
    """The mirror of encoder_forward; returns the encoder's gradients."""
    mlp_caches, mu_cache, lv_cache = cache
    grads = {}
    dh_mu, grads["encoder.W_mu"], grads["encoder.b_mu"] = dense_backward(dmu, mu_cache)  # (B, H)
    dh_lv, grads["encoder.W_logvar"], grads["encoder.b_logvar"] = dense_backward(dlog_var, lv_cache)  # (B, H)
    dh = dh_mu + dh_lv  # h feeds both heads, so its gradient is the sum of the two
    # The gradient with respect to the images themselves is computed and dropped here;
    # the fast training step (tinyvae/speed/step.py) skips that matrix multiply.
    _mlp_backward(dh, mlp_caches, "encoder", config.activation, grads)
    return grads


def decoder_forward(params: Params, z: np.ndarray,
                    config: VAEConfig) -> tuple[np.ndarray, np.ndarray | None, tuple]:
    """p(x|z): an MLP whose output layer gives logits (Bernoulli) or the mean (Gaussian).

    For the learned-variance Gaussian, a second linear head gives a per-pixel log σ².
    z (B, Z) -> out (B, D), out_log_var (B, D) or None, cache.
    """
    h, mlp_caches = _mlp_forward(params, z, "decoder", len(config.hidden_dims), config.activation)  # (B, H)
    out, out_cache = dense_forward(h, params["decoder.W_out"], params["decoder.b_out"])  # (B, D)
    out_log_var, lv_cache = None, None
    if likelihood(config.likelihood).learned_variance:
        out_log_var, lv_cache = dense_forward(h, params["decoder.W_logvar"], params["decoder.b_logvar"])  # (B, D)
    return out, out_log_var, (mlp_caches, out_cache, lv_cache)


def decoder_backward(dout: np.ndarray, dout_log_var: np.ndarray | None, cache: tuple,
                     config: VAEConfig) -> tuple[np.ndarray, Params]:
    """The mirror of decoder_forward; returns dz (B, Z) and the decoder's gradients."""
    mlp_caches, out_cache, lv_cache = cache
    grads = {}
    dh, grads["decoder.W_out"], grads["decoder.b_out"] = dense_backward(dout, out_cache)  # (B, H)
    if lv_cache is not None:
        dh_lv, grads["decoder.W_logvar"], grads["decoder.b_logvar"] = dense_backward(dout_log_var, lv_cache)
        dh = dh + dh_lv  # h feeds both heads
    dz = _mlp_backward(dh, mlp_caches, "decoder", config.activation, grads)  # (B, Z)
    return dz, grads


def reconstruction_nll(out: np.ndarray, out_log_var: np.ndarray | None, x: np.ndarray,
                       config: VAEConfig) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """−log p(x|z) summed over pixels, per example, with the gradients of its batch sum.

    out (B, D): logits or Gaussian mean; out_log_var (B, D) or None.
    Returns nll (B,), dout (B, D), dout_log_var (B, D) or None.
    """
    return likelihood(config.likelihood).nll(out, out_log_var, x, config.gaussian_std)


def check_batch(x: np.ndarray, config: VAEConfig, name: str = "x") -> None:
    """Refuse data the model cannot score: wrong shape, NaN or inf, or pixels outside
    [0, 1] for the Bernoulli likelihood (its log-likelihood is not a density there)."""
    x = np.asarray(x)
    if x.ndim != 2 or x.shape[1] != config.input_dim:
        raise ValueError(f"{name} must have shape (batch, {config.input_dim}) for this model, got {x.shape}")
    if not np.all(np.isfinite(x)):
        raise ValueError(f"{name} contains NaN or infinite values")
    if likelihood(config.likelihood).unit_interval and x.size and (x.min() < 0 or x.max() > 1):
        raise ValueError(f"{name} has values in [{x.min():.4g}, {x.max():.4g}]; the Bernoulli likelihood "
                         "needs pixels in [0, 1] (scale images by 1/255)")


def _check_eps(eps, x, config: VAEConfig) -> None:
    if eps.shape != (x.shape[0], config.latent_dim):
        raise ValueError(f"eps must have shape (batch, latent_dim) = {(x.shape[0], config.latent_dim)}, "
                         f"got {eps.shape}")


def loss_and_grads(params: Params, x: np.ndarray, eps: np.ndarray, config: VAEConfig, *, beta: float | None = None,
                   terms: str = "both") -> tuple[float, Params, dict[str, float]]:
    """The negative ELBO averaged over the batch, and its gradient for every parameter.

        loss = (1/B) Σ_i [ recon_i + β · KL_i ]     docs/02-variational-inference.md eq. (11)

    with z = μ + exp(½ log σ²) ⊙ ε for the given noise ε (docs/04-gradients.md eq. (14)).
    `beta` overrides config.beta (KL warm-up passes its own); `terms` selects the
    "recon" or the "kl" term alone, for the gradient checker.

    params: dict of arrays, x (B, D), eps (B, Z).
    Returns (loss, grads, stats): grads has exactly the keys of params; stats holds
    the batch means "loss", "recon" and "kl" (the KL unweighted by β).
    """
    if terms not in ("both", "recon", "kl"):
        raise ValueError(f"terms must be 'both', 'recon' or 'kl', got {terms!r}")
    beta = finite_real("beta", config.beta if beta is None else beta, minimum=0)
    dtype = params["encoder.W_mu"].dtype  # the parameters' dtype decides the arithmetic
    x = np.asarray(x, dtype=dtype)
    eps = np.asarray(eps, dtype=dtype)
    check_batch(x, config)
    nonempty("x", x)  # the loss is a mean over the batch
    _check_eps(eps, x, config)
    B = x.shape[0]
    w_recon = 0.0 if terms == "kl" else 1.0
    w_kl = 0.0 if terms == "recon" else beta

    # The forward pass, docs/02-variational-inference.md eq. (11):
    mu, log_var, enc_cache = encoder_forward(params, x, config)  # (B, Z), (B, Z)
    z, rep_cache = reparameterize_forward(mu, log_var, eps)  # (B, Z): docs/04-gradients.md eq. (14)
    out, out_log_var, dec_cache = decoder_forward(params, z, config)  # (B, D)
    recon, dout, dout_log_var = reconstruction_nll(out, out_log_var, x, config)  # (B,)
    kl, dmu_kl, dlog_var_kl = kl_standard_normal(mu, log_var)  # (B,)
    loss = float(np.mean(w_recon * recon + w_kl * kl))
    if not np.isfinite(loss):
        finite_params(params)  # a NaN parameter is named; finite ones that overflowed are the caller's to judge

    # The backward pass: the mirror of the forward, one step per line.
    # The loss is a batch mean, so every per-example gradient carries a 1/B: docs/04-gradients.md eq. (17).
    dout = dout * (w_recon / B)  # (B, D)
    if dout_log_var is not None:
        dout_log_var = dout_log_var * (w_recon / B)  # (B, D)
    dz, dec_grads = decoder_backward(dout, dout_log_var, dec_cache, config)  # (B, Z)
    dmu_z, dlog_var_z = reparameterize_backward(dz, rep_cache)  # (B, Z): docs/04-gradients.md eq. (15)
    # Two paths into μ and into log σ²: through z and through the KL. A value that feeds
    # two paths gets the sum of their gradients, docs/04-gradients.md eq. (16).
    dmu = dmu_z + (w_kl / B) * dmu_kl  # (B, Z)
    dlog_var = dlog_var_z + (w_kl / B) * dlog_var_kl  # (B, Z)
    enc_grads = encoder_backward(dmu, dlog_var, enc_cache, config)

    grads = {**enc_grads, **dec_grads}
    grads = {key: grads[key] for key in params}  # same keys, same order as params
    stats = {"loss": loss, "recon": float(recon.mean()), "kl": float(kl.mean())}
    return loss, grads, stats


def negative_elbo(params: Params, x: np.ndarray, eps: np.ndarray, config: VAEConfig, *,
                  beta: float | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The forward pass of loss_and_grads alone, per example: (loss (B,), recon (B,), kl (B,)).

    For evaluation: no caches kept, no gradients computed.
    """
    beta = finite_real("beta", config.beta if beta is None else beta, minimum=0)
    dtype = params["encoder.W_mu"].dtype
    x = np.asarray(x, dtype=dtype)
    eps = np.asarray(eps, dtype=dtype)
    check_batch(x, config)
    _check_eps(eps, x, config)
    mu, log_var, _ = encoder_forward(params, x, config)  # (B, Z): x is already checked
    z, _ = reparameterize_forward(mu, log_var, eps)  # (B, Z)
    out, out_log_var, _ = decoder_forward(params, z, config)  # (B, D)
    recon, _, _ = reconstruction_nll(out, out_log_var, x, config)  # (B,)
    kl, _, _ = kl_standard_normal(mu, log_var)  # (B,)
    loss = recon + beta * kl  # (B,)
    if not np.all(np.isfinite(loss)):
        finite_params(params)
    return loss, recon, kl


def encode(params: Params, x: np.ndarray, config: VAEConfig) -> tuple[np.ndarray, np.ndarray]:
    """The parameters of q(z|x): mu (B, Z) and log_var (B, Z)."""
    dtype = params["encoder.W_mu"].dtype
    x = np.asarray(x, dtype=dtype)
    check_batch(x, config)
    mu, log_var, _ = encoder_forward(params, x, config)
    return mu, log_var


def decode(params: Params, z: np.ndarray, config: VAEConfig) -> np.ndarray:
    """The mean of p(x|z) for each z: σ(logits) for Bernoulli, the mean for Gaussian. (B, D)"""
    dtype = params["encoder.W_mu"].dtype
    out, _, _ = decoder_forward(params, np.asarray(z, dtype=dtype), config)
    return likelihood(config.likelihood).mean(out)


def log_likelihood(params: Params, x: np.ndarray, z: np.ndarray, config: VAEConfig) -> np.ndarray:
    """log p(x|z) summed over pixels, one value per row: x (B, D), z (B, Z) -> (B,)."""
    dtype = params["encoder.W_mu"].dtype
    x = np.asarray(x, dtype=dtype)
    check_batch(x, config)
    out, out_log_var, _ = decoder_forward(params, np.asarray(z, dtype=dtype), config)
    nll, _, _ = reconstruction_nll(out, out_log_var, x, config)
    if not np.all(np.isfinite(nll)):
        finite_params(params)
    return -nll


def sample(params: Params, n: int, rng: np.random.Generator, config: VAEConfig) -> np.ndarray:
    """Generate: z ~ N(0, I) from the prior, then the decoder's mean. (n, D)"""
    dtype = params["encoder.W_mu"].dtype
    n = nonnegative_int("n", n)
    z = rng.standard_normal((n, config.latent_dim)).astype(dtype)  # (n, Z)
    return decode(params, z, config)


def reconstruct(params: Params, x: np.ndarray, rng: np.random.Generator, config: VAEConfig) -> np.ndarray:
    """Encode, draw one z = μ + σ ⊙ ε, decode: the decoder's mean for each image. (B, D)"""
    mu, log_var = encode(params, x, config)  # (B, Z)
    eps = rng.standard_normal(mu.shape).astype(mu.dtype)  # (B, Z)
    z, _ = reparameterize_forward(mu, log_var, eps)  # (B, Z)
    return decode(params, z, config)
