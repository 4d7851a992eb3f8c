"""The variational autoencoder: encoder, reparameterization, decoder, loss, and backward.

    encoder  x ──MLP──> h ──┬── W_mu ─────> μ         (B, Z)   the mean of q(z|x)
                            └── W_logvar ─> log σ²    (B, Z)   its log-variance
    sample   z = μ + exp(½ log σ²) ⊙ ε,  ε ~ N(0, I)  (B, K, Z) the reparameterization, K per image
    decoder  z ──MLP──> h ──── W_out ───> logits      (B·K, D) (or the Gaussian mean,
                                                               and for a learned variance
                                                               also a per-pixel log σ²)
    loss     recon(x, logits) + β · KL(q(z|x) ‖ N(0, I)), averaged over the batch

The encoder outputs a distribution instead of a point (docs/01-autoencoder-to-vae.md);
the loss is the negative ELBO, docs/02-variational-inference.md eq. (11). The noise ε
is an argument, so `loss_and_grads` is a deterministic function that the gradient
checker can differentiate numerically; the training loop draws ε from its Generator.
With K > 1 samples per image the loss is the ELBO averaged over them, or the tighter
importance-weighted bound L_K (config.objective; `iwae_loss_and_grads`).

Parameters live in a flat dict whose keys name the layer (`encoder.W0`, `decoder.b_out`,
...); `loss_and_grads` returns a grads dict with exactly the same keys, so optimizers,
checkpoints and the gradient checker walk the keys and work on any depth.

Shapes: B batch, D data, H hidden, Z latent, K samples of z per image.

(For the classroom: the layers' and losses' functions are imported here by name and the
activations looked up in layers.ACTIVATIONS at every call; the grader puts a student's
function in the model by replacing those names for the length of a check,
tinyvae/classroom/swap.py.)
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from ._checks import check_batch, check_noise, finite_params, finite_real, nonnegative_int
from .config import Params, VAEConfig, dtype_of
from .layers import (
    ACTIVATIONS,
    dense_backward,
    dense_forward,
    reparameterize_backward,
    reparameterize_forward,
    sigmoid,
)
from .losses import (
    bernoulli_nll,
    gaussian_nll,
    gaussian_nll_learned,
    kl_standard_normal,
    log_mean_exp,
    log_posterior,
    log_prior,
    normalized_weights,
)


def mlp_forward(params: Params, h: np.ndarray, prefix: str,
                config: VAEConfig) -> tuple[np.ndarray, list]:
    """The hidden layers of the encoder or decoder: h ← act(h·W_i + b_i), i = 0..n−1."""
    act_forward = ACTIVATIONS[config.activation].forward
    caches = []
    for i in range(len(config.hidden_dims)):
        # (B, H_i): a = h·W_i + b_i
        a, dense_cache = dense_forward(h, params[f"{prefix}.W{i}"], params[f"{prefix}.b{i}"])
        h, act_cache = act_forward(a)  # (B, H_i)
        caches.append((dense_cache, act_cache))
    return h, caches


def mlp_backward(dh: np.ndarray, caches: list, prefix: str, config: VAEConfig,
                 grads: Params) -> np.ndarray:
    """The mirror of mlp_forward: walk the layers from last to first; returns d(input)."""
    act_backward = ACTIVATIONS[config.activation].backward
    for i in reversed(range(len(caches))):
        dense_cache, act_cache = caches[i]
        da = act_backward(dh, act_cache)  # (B, H_i)
        dh, grads[f"{prefix}.W{i}"], grads[f"{prefix}.b{i}"] = dense_backward(da, dense_cache)
    return dh


def encoder_forward(params: Params, x: np.ndarray,
                    config: VAEConfig) -> tuple[np.ndarray, np.ndarray, tuple]:
    """q(z|x) = N(μ, diag σ²): an MLP with two linear heads, μ and log σ².

    The log-variance rather than σ: any real number is a valid log σ², so the head
    needs no constraint, and the KL is simple in it:
    docs/02-variational-inference.md eq. (10). x (B, D) -> mu (B, Z), log_var (B, Z), cache.
    """
    h, mlp_caches = mlp_forward(params, x, "encoder", config)  # (B, H)
    mu, mu_cache = dense_forward(h, params["encoder.W_mu"], params["encoder.b_mu"])  # (B, Z)
    log_var, lv_cache = dense_forward(h, params["encoder.W_logvar"],
                                      params["encoder.b_logvar"])  # (B, Z)
    return mu, log_var, (mlp_caches, mu_cache, lv_cache)


def encoder_backward(dmu: np.ndarray, dlog_var: np.ndarray, cache: tuple,
                     config: VAEConfig) -> Params:
    """The mirror of encoder_forward; returns the encoder's gradients."""
    mlp_caches, mu_cache, lv_cache = cache
    grads = {}
    dh_mu, grads["encoder.W_mu"], grads["encoder.b_mu"] = dense_backward(dmu, mu_cache)  # (B, H)
    # (B, H): the log-variance head's share of dh
    dh_lv, grads["encoder.W_logvar"], grads["encoder.b_logvar"] = dense_backward(dlog_var, lv_cache)
    dh = dh_mu + dh_lv  # h feeds both heads, so its gradient is the sum of the two
    mlp_backward(dh, mlp_caches, "encoder", config, grads)  # d(images) is returned and not needed
    return grads


def decoder_forward(params: Params, z: np.ndarray,
                    config: VAEConfig) -> tuple[np.ndarray, np.ndarray | None, tuple]:
    """p(x|z): an MLP whose output layer gives logits (Bernoulli) or the mean (Gaussian).

    For the learned-variance Gaussian, a second linear head gives a per-pixel log σ².
    z (B, Z) -> out (B, D), out_log_var (B, D) or None, cache.
    """
    h, mlp_caches = mlp_forward(params, z, "decoder", config)  # (B, H)
    out, out_cache = dense_forward(h, params["decoder.W_out"], params["decoder.b_out"])  # (B, D)
    out_log_var, lv_cache = None, None
    if config.learned_variance:
        out_log_var, lv_cache = dense_forward(h, params["decoder.W_logvar"],
                                              params["decoder.b_logvar"])  # (B, D)
    return out, out_log_var, (mlp_caches, out_cache, lv_cache)


def decoder_backward(dout: np.ndarray, dout_log_var: np.ndarray | None, cache: tuple,
                     config: VAEConfig) -> tuple[np.ndarray, Params]:
    """The mirror of decoder_forward; returns dz (B, Z) and the decoder's gradients."""
    mlp_caches, out_cache, lv_cache = cache
    grads = {}
    dh, grads["decoder.W_out"], grads["decoder.b_out"] = dense_backward(dout, out_cache)  # (B, H)
    if lv_cache is not None:
        dh_lv, grads["decoder.W_logvar"], grads["decoder.b_logvar"] = dense_backward(
            dout_log_var, lv_cache)  # (B, H)
        dh = dh + dh_lv  # h feeds both heads
    dz = mlp_backward(dh, mlp_caches, "decoder", config, grads)  # (B, Z)
    return dz, grads


def reconstruction_nll(out: np.ndarray, out_log_var: np.ndarray | None, x: np.ndarray,
                       config: VAEConfig) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """−log p(x|z) summed over pixels, per example, with the gradients of its batch sum.

    out (B, D): logits or Gaussian mean; out_log_var (B, D) or None.
    Returns nll (B,), dout (B, D), dout_log_var (B, D) or None.
    """
    if config.likelihood == "bernoulli":
        return (*bernoulli_nll(out, x), None)
    if config.likelihood == "gaussian":
        return (*gaussian_nll(out, x, config.gaussian_std), None)
    return gaussian_nll_learned(out, out_log_var, x)


def loss_and_grads(params: Params, x: np.ndarray, eps: np.ndarray, config: VAEConfig, *,
                   beta: float | None = None,
                   terms: str = "both") -> tuple[float, Params, dict[str, float]]:
    """The negative ELBO averaged over the batch, and its gradient for every parameter.

        loss = (1/B) Σ_b [ (1/K) Σ_i recon_bi + β · KL_b ]

    with z_bi = μ_b + exp(½ log σ_b²) ⊙ ε_bi for the given noise ε (docs/04-gradients.md eq. (14)):
    docs/02-variational-inference.md eq. (11) for one sample per image, and for K > 1 the
    reconstruction term averaged over the K samples of each image, the KL in closed form
    (docs/04-gradients.md section 7).
    For config.objective "iwae" this is iwae_loss_and_grads instead. `beta` overrides
    config.beta (KL warm-up passes its own); `terms` selects the "recon" or the "kl" term
    alone, for the gradient checker.

    params: dict of arrays, x (B, D), eps (B, K, Z), or (B, Z) when K = 1.
    Returns (loss, grads, stats): grads has exactly the keys of params; stats holds
    the batch means "loss", "recon" and "kl" (the KL unweighted by β).
    """
    # x and eps checked; eps (B, Z) becomes (B, 1, Z)
    x, eps, beta = _at_the_door(params, x, eps, config, beta, terms)
    if config.objective == "iwae":
        return iwae_loss_and_grads(params, x, eps, config)
    B, K, Z = eps.shape
    w_recon = 0.0 if terms == "kl" else 1.0
    w_kl = 0.0 if terms == "recon" else beta

    # The forward pass, docs/02-variational-inference.md eq. (11):
    mu, log_var, enc_cache = encoder_forward(params, x, config)  # (B, Z), (B, Z)
    # z = μ + σ ⊙ ε for each of the K samples of each image, docs/04-gradients.md eq. (14):
    z, rep_cache = reparameterize_forward(mu[:, None], log_var[:, None], eps)  # (B, K, Z)
    out, out_log_var, dec_cache = decoder_forward(params, z.reshape(B * K, Z), config)  # (B·K, D)
    recon, dout, dout_log_var = reconstruction_nll(out, out_log_var,
                                                   np.repeat(x, K, axis=0), config)  # (B·K,)
    kl, dmu_kl, dlog_var_kl = kl_standard_normal(mu, log_var)  # (B,)
    loss = float(np.mean(w_recon * recon.reshape(B, K).mean(axis=1) + w_kl * kl))
    if not np.isfinite(loss):
        finite_params(params)  # if a parameter is NaN or inf, say which

    # The backward pass: the mirror of the forward, one step per line.
    # The loss is a batch mean, so every per-example gradient carries a 1/B, and each sample's
    # reconstruction a further 1/K: docs/04-gradients.md eq. (17).
    dout = dout * (w_recon / (B * K))  # (B·K, D)
    if dout_log_var is not None:
        dout_log_var = dout_log_var * (w_recon / (B * K))  # (B·K, D)
    dz, dec_grads = decoder_backward(dout, dout_log_var, dec_cache, config)  # (B·K, Z)
    # Back through z = μ + σ ⊙ ε, docs/04-gradients.md eq. (15):
    dmu_z, dlog_var_z = reparameterize_backward(dz.reshape(B, K, Z), rep_cache)  # (B, K, Z)
    # μ and log σ² were broadcast over the K samples, so their gradients sum over them. And
    # two paths lead into each: through z and through the KL; a value that feeds two paths
    # gets the sum of their gradients, docs/04-gradients.md eq. (16). The z path already
    # carries its 1/B: it came in through dout. The KL's gradient is that of a per-image sum,
    # so it gets its 1/B here.
    dmu = dmu_z.sum(axis=1) + (w_kl / B) * dmu_kl  # (B, Z)
    dlog_var = dlog_var_z.sum(axis=1) + (w_kl / B) * dlog_var_kl  # (B, Z)
    enc_grads = encoder_backward(dmu, dlog_var, enc_cache, config)

    grads = {**enc_grads, **dec_grads}
    grads = {key: grads[key] for key in params}  # same keys, same order as params
    stats = {"loss": loss, "recon": float(recon.mean()), "kl": float(kl.mean())}
    return loss, grads, stats


def iwae_loss_and_grads(params: Params, x: np.ndarray, eps: np.ndarray,
                        config: VAEConfig) -> tuple[float, Params, dict[str, float]]:
    """−L_K averaged over the batch, and its exact gradient for the given noise.

        log w_bi = log p(x_b | z_bi) + log p(z_bi) − log q(z_bi | x_b)      (B, K)
        L_K(x_b) = log (1/K) Σ_i w_bi                      docs/04-gradients.md eq. (18)
        ∇ L_K(x_b) = Σ_i w̃_bi ∇ log w_bi,   w̃_bi = w_bi / Σ_j w_bj
                                                           docs/04-gradients.md eq. (19)

    (Burda et al. 2016, their eqs. 8 and 14.)

    Every term is sampled: inside the log of a mean there is no closed form to split off
    (docs/04-gradients.md section 7). With K = 1, w̃ = 1 and this is the ELBO with a sampled KL.
    Called by loss_and_grads (which checks the arguments) when config.objective is "iwae";
    x (B, D), eps (B, K, Z). stats: "loss" = −mean L_K, "recon" = mean −log p(x|z) over all
    samples, "kl" = mean log q(z|x) − log p(z) over all samples (the sampled KL).
    """
    B, K, Z = eps.shape

    # The forward pass:
    mu, log_var, enc_cache = encoder_forward(params, x, config)  # (B, Z), (B, Z)
    z, rep_cache = reparameterize_forward(mu[:, None], log_var[:, None], eps)  # (B, K, Z)
    out, out_log_var, dec_cache = decoder_forward(params, z.reshape(B * K, Z), config)  # (B·K, D)
    recon, dout, dout_log_var = reconstruction_nll(out, out_log_var,
                                                   np.repeat(x, K, axis=0), config)  # (B·K,)
    log_p, dlog_p_dz = log_prior(z)  # (B, K), (B, K, Z): log N(z; 0, I) and its gradient −z
    log_q = log_posterior(eps, log_var[:, None])  # (B, K): log q(z|x), written in ε
    log_w = -recon.reshape(B, K) + log_p - log_q  # (B, K): the log importance weights
    loss = -float(np.mean(log_mean_exp(log_w, axis=1)))  # −(1/B) Σ_b L_K(x_b)
    if not np.isfinite(loss):
        finite_params(params)

    # The backward pass. The loss is −(1/B) Σ_b L_K(x_b), and d L_K / d log w_bi = w̃_bi, so
    # dloss/d log w = −w̃/B. log w = −recon + log p − log q passes it on to each of its terms:
    # −recon gets −(−w̃/B) = w̃/B, log p gets −w̃/B, and −log q gets it too (so log q gets +w̃/B).
    dlog_w = -normalized_weights(log_w, axis=1) / B  # (B, K)
    drecon = -dlog_w.reshape(B * K, 1)  # (B·K, 1): each sample's reconstruction weighs w̃/B
    dout = dout * drecon  # (B·K, D)
    if dout_log_var is not None:
        dout_log_var = dout_log_var * drecon  # (B·K, D)
    dz, dec_grads = decoder_backward(dout, dout_log_var, dec_cache, config)  # (B·K, Z)
    # z feeds the decoder and log p(z): the gradients of both paths add up
    dz = dz.reshape(B, K, Z) + dlog_w[..., None] * dlog_p_dz  # (B, K, Z)
    dmu_z, dlog_var_z = reparameterize_backward(dz, rep_cache)  # (B, K, Z)
    # Two paths into log σ²: through z, and through log q directly (∂ log q/∂ log σ² = −½,
    # losses.log_posterior), whose gradient is −dlog_w · (−½). μ has the path through z only.
    dmu = dmu_z.sum(axis=1)  # (B, Z)
    # (B, Z): the log q path's (B, 1) is broadcast over Z
    dlog_var = dlog_var_z.sum(axis=1) + 0.5 * dlog_w.sum(axis=1, keepdims=True)
    enc_grads = encoder_backward(dmu, dlog_var, enc_cache, config)

    grads = {**enc_grads, **dec_grads}
    grads = {key: grads[key] for key in params}
    stats = {"loss": loss, "recon": float(recon.mean()), "kl": float(np.mean(log_q - log_p))}
    return loss, grads, stats


def negative_elbo(params: Params, x: np.ndarray, eps: np.ndarray, config: VAEConfig, *,
                  beta: float | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The ELBO's forward pass alone, one sample per image: (loss (B,), recon (B,), kl (B,)).

    For evaluation (evaluate.test_elbo), whatever the objective the model trained with:
    eps (B, Z), the KL in closed form, no caches kept, no gradients computed.
    """
    x, eps, beta = _at_the_door(params, x, eps, replace(config, k=1), beta, "both", empty_ok=True)
    mu, log_var, _ = encoder_forward(params, x, config)  # (B, Z)
    z, _ = reparameterize_forward(mu, log_var, eps[:, 0])  # (B, Z)
    out, out_log_var, _ = decoder_forward(params, z, config)  # (B, D)
    recon, _, _ = reconstruction_nll(out, out_log_var, x, config)  # (B,)
    kl, _, _ = kl_standard_normal(mu, log_var)  # (B,)
    loss = recon + beta * kl  # (B,)
    if not np.all(np.isfinite(loss)):
        finite_params(params)
    return loss, recon, kl


def encode(params: Params, x: np.ndarray, config: VAEConfig) -> tuple[np.ndarray, np.ndarray]:
    """The parameters of q(z|x): mu (B, Z) and log_var (B, Z)."""
    x = check_batch(np.asarray(x, dtype=dtype_of(params)), config)
    mu, log_var, _ = encoder_forward(params, x, config)
    return mu, log_var


def decoder_mean(out: np.ndarray, config: VAEConfig) -> np.ndarray:
    """E[x|z] from the decoder's output: σ(logits) for Bernoulli, the mean itself for Gaussian."""
    return sigmoid(out) if config.likelihood == "bernoulli" else out


def decode(params: Params, z: np.ndarray, config: VAEConfig) -> np.ndarray:
    """The mean of p(x|z) for each z: σ(logits) for Bernoulli, the mean for Gaussian. (B, D)"""
    out, _, _ = decoder_forward(params, np.asarray(z, dtype=dtype_of(params)), config)
    return decoder_mean(out, config)


def log_likelihood(params: Params, x: np.ndarray, z: np.ndarray, config: VAEConfig) -> np.ndarray:
    """log p(x|z) summed over pixels, one value per row: x (B, D), z (B, Z) -> (B,)."""
    dtype = dtype_of(params)
    x = check_batch(np.asarray(x, dtype=dtype), config)
    out, out_log_var, _ = decoder_forward(params, np.asarray(z, dtype=dtype), config)
    nll, _, _ = reconstruction_nll(out, out_log_var, x, config)
    if not np.all(np.isfinite(nll)):
        finite_params(params)
    return -nll


def sample(params: Params, n: int, rng: np.random.Generator, config: VAEConfig) -> np.ndarray:
    """Generate: z ~ N(0, I) from the prior, then the decoder's mean. (n, D)"""
    n = nonnegative_int("n", n)
    z = rng.standard_normal((n, config.latent_dim)).astype(dtype_of(params))  # (n, Z)
    return decode(params, z, config)


def reconstruct(params: Params, x: np.ndarray, rng: np.random.Generator,
                config: VAEConfig) -> np.ndarray:
    """Encode, draw one z = μ + σ ⊙ ε, decode: the decoder's mean for each image. (B, D)"""
    mu, log_var = encode(params, x, config)  # (B, Z)
    eps = rng.standard_normal(mu.shape).astype(mu.dtype)  # (B, Z)
    z, _ = reparameterize_forward(mu, log_var, eps)  # (B, Z)
    return decode(params, z, config)


def _at_the_door(params: Params, x, eps, config: VAEConfig, beta, terms: str, *,
                 empty_ok: bool = False) -> tuple[np.ndarray, np.ndarray, float]:
    """The loss's preconditions, checked once: x (B, D) and eps (B, K, Z) in the parameters'
    dtype, and β a finite number >= 0; one ValueError naming the argument otherwise."""
    if terms not in ("both", "recon", "kl"):
        raise ValueError(f"terms must be 'both', 'recon' or 'kl', got {terms!r}")
    beta = finite_real("beta", config.beta if beta is None else beta, minimum=0)
    if config.objective == "iwae" and (beta != 1 or terms != "both"):
        raise ValueError("the 'iwae' objective L_K is one term at weight 1: it takes no beta "
                         f"and no terms='recon'/'kl' (got beta={beta!r}, terms={terms!r})")
    dtype = dtype_of(params)  # the parameters' dtype decides the arithmetic
    # the loss is a mean over the batch
    x = check_batch(np.asarray(x, dtype=dtype), config, empty_ok=empty_ok)
    eps = check_noise(np.asarray(eps, dtype=dtype), len(x), config)
    return x, eps, beta
