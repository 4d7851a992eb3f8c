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

import dataclasses
import math
from dataclasses import dataclass

import numpy as np

from .layers import ACTIVATIONS, dense_backward, dense_forward, sigmoid
from .losses import bernoulli_nll, gaussian_nll, gaussian_nll_learned, kl_standard_normal

LIKELIHOODS = ("bernoulli", "gaussian", "gaussian-learned-variance")


@dataclass(frozen=True)
class VAEConfig:
    """Everything that fixes the model's shape and its loss.

    input_dim    D, pixels per image (784 for MNIST)
    hidden_dims  sizes of the hidden layers of the encoder; the decoder mirrors them
    latent_dim   Z, dimensions of z
    activation   "relu" or "tanh" for the hidden layers
    likelihood   p(x|z): "bernoulli" (logits), "gaussian" (fixed σ = gaussian_std), or
                 "gaussian-learned-variance" (a per-pixel log σ² from the decoder)
    beta         weight of the KL term (1 is the ELBO; β-VAE otherwise; 0 is a plain
                 autoencoder with a noisy code)
    gaussian_std σ of the fixed-variance Gaussian likelihood
    """

    input_dim: int = 784
    hidden_dims: tuple[int, ...] = (400,)
    latent_dim: int = 20
    activation: str = "relu"
    likelihood: str = "bernoulli"
    beta: float = 1.0
    gaussian_std: float = 1.0

    def __post_init__(self):
        def positive_int(name, value):
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
                raise ValueError(f"VAEConfig.{name} must be a positive integer, got {value!r}")

        positive_int("input_dim", self.input_dim)
        positive_int("latent_dim", self.latent_dim)
        if isinstance(self.hidden_dims, (str, bytes)) or not hasattr(self.hidden_dims, "__iter__"):
            raise ValueError(f"VAEConfig.hidden_dims must be a tuple of positive integers, got {self.hidden_dims!r}")
        hidden = tuple(self.hidden_dims)
        for h in hidden:
            positive_int("hidden_dims", h)
        object.__setattr__(self, "input_dim", int(self.input_dim))
        object.__setattr__(self, "latent_dim", int(self.latent_dim))
        # A frozen dataclass may still normalise its own fields while being built.
        object.__setattr__(self, "hidden_dims", tuple(int(h) for h in hidden))
        if self.activation not in ACTIVATIONS:
            raise ValueError(f"VAEConfig.activation must be one of {sorted(ACTIVATIONS)}, got {self.activation!r}")
        if self.likelihood not in LIKELIHOODS:
            raise ValueError(f"VAEConfig.likelihood must be one of {list(LIKELIHOODS)}, got {self.likelihood!r}")
        def real(name, value, minimum, strict):
            ok = isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool)
            ok = ok and math.isfinite(value) and (value > minimum if strict else value >= minimum)
            if not ok:
                relation = ">" if strict else ">="
                raise ValueError(f"VAEConfig.{name} must be a finite number {relation} {minimum}, got {value!r}")
            object.__setattr__(self, name, float(value))  # plain floats, so to_dict is JSON-able

        real("beta", self.beta, 0, strict=False)
        real("gaussian_std", self.gaussian_std, 0, strict=True)

    def to_dict(self) -> dict:
        """A JSON-able dict (tuples become lists), for checkpoints and metrics files."""
        d = dataclasses.asdict(self)
        d["hidden_dims"] = list(self.hidden_dims)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "VAEConfig":
        """The inverse of to_dict; unknown or missing fields raise ValueError naming them."""
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = set(d) - names
        if unknown:
            raise ValueError(f"VAEConfig: unknown field(s) {sorted(unknown)}; expected some of {sorted(names)}")
        d = dict(d)
        if "hidden_dims" in d and isinstance(d["hidden_dims"], list):
            d["hidden_dims"] = tuple(d["hidden_dims"])
        return cls(**d)


def param_shapes(config: VAEConfig) -> dict[str, tuple[int, ...]]:
    """The shape of every parameter, by key; W is (fan_in, fan_out) since layers compute x·W + b."""
    shapes = {}
    sizes = (config.input_dim, *config.hidden_dims)
    for i, (fan_in, fan_out) in enumerate(zip(sizes[:-1], sizes[1:])):
        shapes[f"encoder.W{i}"] = (fan_in, fan_out)
        shapes[f"encoder.b{i}"] = (fan_out,)
    for head in ("mu", "logvar"):
        shapes[f"encoder.W_{head}"] = (sizes[-1], config.latent_dim)
        shapes[f"encoder.b_{head}"] = (config.latent_dim,)
    # The decoder mirrors the encoder: Z -> reversed hidden sizes -> D.
    sizes = (config.latent_dim, *reversed(config.hidden_dims))
    for i, (fan_in, fan_out) in enumerate(zip(sizes[:-1], sizes[1:])):
        shapes[f"decoder.W{i}"] = (fan_in, fan_out)
        shapes[f"decoder.b{i}"] = (fan_out,)
    shapes["decoder.W_out"] = (sizes[-1], config.input_dim)
    shapes["decoder.b_out"] = (config.input_dim,)
    if config.likelihood == "gaussian-learned-variance":
        shapes["decoder.W_logvar"] = (sizes[-1], config.input_dim)
        shapes["decoder.b_logvar"] = (config.input_dim,)
    return shapes


def init_params(config: VAEConfig, rng: np.random.Generator, dtype=np.float64) -> dict[str, np.ndarray]:
    """Random initial parameters: W and b uniform in ±1/√fan_in.

    This is the default of PyTorch's nn.Linear, so that a run compares with its VAE
    example like for like. The biases are random too: zero biases hide gradient bugs
    in the checks (a wrong `db` multiplied by zero passes).
    """
    shapes = param_shapes(config)
    params = {}
    for key, shape in shapes.items():
        # A bias takes the fan-in of its layer's weight: "decoder.b_out" -> "decoder.W_out".
        weight_shape = shapes[key.replace(".b", ".W", 1)]
        bound = 1.0 / math.sqrt(weight_shape[0])
        params[key] = rng.uniform(-bound, bound, size=shape).astype(dtype)
    return params


def _mlp_forward(params, h, prefix, n_layers, activation):
    """The hidden layers of the encoder or decoder: h ← act(h·W_i + b_i), i = 0..n−1."""
    act_forward, _ = ACTIVATIONS[activation]
    caches = []
    for i in range(n_layers):
        a, dense_cache = dense_forward(h, params[f"{prefix}.W{i}"], params[f"{prefix}.b{i}"])  # (B, H_i)
        h, act_cache = act_forward(a)  # (B, H_i)
        caches.append((dense_cache, act_cache))
    return h, caches


def _mlp_backward(dh, caches, prefix, activation, grads):
    """The mirror of _mlp_forward: walk the layers from last to first; returns d(input)."""
    _, act_backward = ACTIVATIONS[activation]
    for i in reversed(range(len(caches))):
        dense_cache, act_cache = caches[i]
        da = act_backward(dh, act_cache)  # (B, H_i)
        dh, grads[f"{prefix}.W{i}"], grads[f"{prefix}.b{i}"] = dense_backward(da, dense_cache)
    return dh


def encoder_forward(params, x, config: VAEConfig):
    """q(z|x) = N(μ, diag σ²): an MLP with two linear heads, μ and log σ².

    The log-variance rather than σ: any real number is a valid log σ², so the head
    needs no constraint, and the KL is simple in it:
    docs/02-variational-inference.md eq. (10). x (B, D) -> mu (B, Z), log_var (B, Z), cache.
    """
    h, mlp_caches = _mlp_forward(params, x, "encoder", len(config.hidden_dims), config.activation)  # (B, H)
    mu, mu_cache = dense_forward(h, params["encoder.W_mu"], params["encoder.b_mu"])  # (B, Z)
    log_var, lv_cache = dense_forward(h, params["encoder.W_logvar"], params["encoder.b_logvar"])  # (B, Z)
    return mu, log_var, (mlp_caches, mu_cache, lv_cache)


def encoder_backward(dmu, dlog_var, cache, config: VAEConfig) -> dict[str, np.ndarray]:
    """The mirror of encoder_forward; returns the encoder's gradients."""
    mlp_caches, mu_cache, lv_cache = cache
    grads = {}
    dh_mu, grads["encoder.W_mu"], grads["encoder.b_mu"] = dense_backward(dmu, mu_cache)  # (B, H)
    dh_lv, grads["encoder.W_logvar"], grads["encoder.b_logvar"] = dense_backward(dlog_var, lv_cache)  # (B, H)
    dh = dh_mu + dh_lv  # h feeds both heads, so its gradient is the sum of the two
    # The gradient with respect to the images themselves is computed and dropped here;
    # the fast training step (tinyvae/fast.py) skips that matrix multiply.
    _mlp_backward(dh, mlp_caches, "encoder", config.activation, grads)
    return grads


def decoder_forward(params, z, config: VAEConfig):
    """p(x|z): an MLP whose output layer gives logits (Bernoulli) or the mean (Gaussian).

    For the learned-variance Gaussian, a second linear head gives a per-pixel log σ².
    z (B, Z) -> out (B, D), out_log_var (B, D) or None, cache.
    """
    h, mlp_caches = _mlp_forward(params, z, "decoder", len(config.hidden_dims), config.activation)  # (B, H)
    out, out_cache = dense_forward(h, params["decoder.W_out"], params["decoder.b_out"])  # (B, D)
    out_log_var, lv_cache = None, None
    if config.likelihood == "gaussian-learned-variance":
        out_log_var, lv_cache = dense_forward(h, params["decoder.W_logvar"], params["decoder.b_logvar"])  # (B, D)
    return out, out_log_var, (mlp_caches, out_cache, lv_cache)


def decoder_backward(dout, dout_log_var, cache, config: VAEConfig):
    """The mirror of decoder_forward; returns dz (B, Z) and the decoder's gradients."""
    mlp_caches, out_cache, lv_cache = cache
    grads = {}
    dh, grads["decoder.W_out"], grads["decoder.b_out"] = dense_backward(dout, out_cache)  # (B, H)
    if lv_cache is not None:
        dh_lv, grads["decoder.W_logvar"], grads["decoder.b_logvar"] = dense_backward(dout_log_var, lv_cache)
        dh = dh + dh_lv  # h feeds both heads
    dz = _mlp_backward(dh, mlp_caches, "decoder", config.activation, grads)  # (B, Z)
    return dz, grads


def reconstruction_nll(out, out_log_var, x, config: VAEConfig):
    """−log p(x|z) summed over pixels, per example, with the gradients of its batch sum.

    out (B, D): logits or Gaussian mean; out_log_var (B, D) or None.
    Returns nll (B,), dout (B, D), dout_log_var (B, D) or None.
    """
    if config.likelihood == "bernoulli":
        nll, dout = bernoulli_nll(out, x)
        return nll, dout, None
    if config.likelihood == "gaussian":
        nll, dout = gaussian_nll(out, x, config.gaussian_std)
        return nll, dout, None
    nll, dout, dout_log_var = gaussian_nll_learned(out, out_log_var, x)
    return nll, dout, dout_log_var


def check_batch(x, config: VAEConfig, name: str = "x") -> None:
    """Refuse data the model cannot score: wrong shape, NaN or inf, or pixels outside
    [0, 1] for the Bernoulli likelihood (its log-likelihood is not a density there)."""
    x = np.asarray(x)
    if x.ndim != 2 or x.shape[1] != config.input_dim:
        raise ValueError(f"{name} must have shape (batch, {config.input_dim}) for this model, got {x.shape}")
    if not np.all(np.isfinite(x)):
        raise ValueError(f"{name} contains NaN or infinite values")
    if config.likelihood == "bernoulli" and x.size and (x.min() < 0 or x.max() > 1):
        raise ValueError(f"{name} has values in [{x.min():.4g}, {x.max():.4g}]; the Bernoulli likelihood "
                         "needs pixels in [0, 1] (scale images by 1/255)")


def _check_eps(eps, x, config: VAEConfig) -> None:
    if eps.shape != (x.shape[0], config.latent_dim):
        raise ValueError(f"eps must have shape (batch, latent_dim) = {(x.shape[0], config.latent_dim)}, "
                         f"got {eps.shape}")


def loss_and_grads(params, x, eps, config: VAEConfig, *, beta: float | None = None, terms: str = "both"):
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
    beta = config.beta if beta is None else beta
    dtype = params["encoder.W_mu"].dtype  # the parameters' dtype decides the arithmetic
    x = np.asarray(x, dtype=dtype)
    eps = np.asarray(eps, dtype=dtype)
    check_batch(x, config)
    _check_eps(eps, x, config)
    B = x.shape[0]
    w_recon = 0.0 if terms == "kl" else 1.0
    w_kl = 0.0 if terms == "recon" else beta

    # ---- forward ----
    mu, log_var, enc_cache = encoder_forward(params, x, config)  # (B, Z), (B, Z)
    std = np.exp(0.5 * log_var)  # (B, Z): σ = exp(½ log σ²)
    z = mu + std * eps  # (B, Z): the reparameterization, docs/04-gradients.md eq. (14)
    out, out_log_var, dec_cache = decoder_forward(params, z, config)  # (B, D)
    recon, dout, dout_log_var = reconstruction_nll(out, out_log_var, x, config)  # (B,)
    kl, dmu_kl, dlog_var_kl = kl_standard_normal(mu, log_var)  # (B,)
    loss = float(np.mean(w_recon * recon + w_kl * kl))

    # ---- backward: the mirror of the forward, one step per line ----
    # The loss is a batch mean, so every per-example gradient carries a 1/B: docs/04-gradients.md eq. (17).
    dout = dout * (w_recon / B)  # (B, D)
    if dout_log_var is not None:
        dout_log_var = dout_log_var * (w_recon / B)  # (B, D)
    dz, dec_grads = decoder_backward(dout, dout_log_var, dec_cache, config)  # (B, Z)
    # Two paths into μ: through z (∂z/∂μ = 1, docs/04-gradients.md eq. (15)) and through the KL;
    # a value that feeds two paths gets the sum of their gradients, docs/04-gradients.md eq. (16).
    dmu = dz + (w_kl / B) * dmu_kl  # (B, Z)
    # Two paths into log σ²: through z (∂z/∂log σ² = ½ σ ε, docs/04-gradients.md eq. (15)) and the KL.
    dlog_var = dz * 0.5 * std * eps + (w_kl / B) * dlog_var_kl  # (B, Z)
    enc_grads = encoder_backward(dmu, dlog_var, enc_cache, config)

    grads = {**enc_grads, **dec_grads}
    grads = {key: grads[key] for key in params}  # same keys, same order as params
    stats = {"loss": loss, "recon": float(recon.mean()), "kl": float(kl.mean())}
    return loss, grads, stats


def negative_elbo(params, x, eps, config: VAEConfig, *, beta: float | None = None):
    """The forward pass of loss_and_grads alone, per example: (loss (B,), recon (B,), kl (B,)).

    For evaluation: no caches kept, no gradients computed.
    """
    beta = config.beta if beta is None else beta
    dtype = params["encoder.W_mu"].dtype
    x = np.asarray(x, dtype=dtype)
    eps = np.asarray(eps, dtype=dtype)
    check_batch(x, config)
    _check_eps(eps, x, config)
    mu, log_var, _ = encoder_forward(params, x, config)  # (B, Z): x is already checked
    z = mu + np.exp(0.5 * log_var) * eps  # (B, Z)
    out, out_log_var, _ = decoder_forward(params, z, config)  # (B, D)
    recon, _, _ = reconstruction_nll(out, out_log_var, x, config)  # (B,)
    kl, _, _ = kl_standard_normal(mu, log_var)  # (B,)
    return recon + beta * kl, recon, kl


def encode(params, x, config: VAEConfig):
    """The parameters of q(z|x): mu (B, Z) and log_var (B, Z)."""
    dtype = params["encoder.W_mu"].dtype
    x = np.asarray(x, dtype=dtype)
    check_batch(x, config)
    mu, log_var, _ = encoder_forward(params, x, config)
    return mu, log_var


def decode(params, z, config: VAEConfig) -> np.ndarray:
    """The mean of p(x|z) for each z: σ(logits) for Bernoulli, the mean for Gaussian. (B, D)"""
    dtype = params["encoder.W_mu"].dtype
    out, _, _ = decoder_forward(params, np.asarray(z, dtype=dtype), config)
    return sigmoid(out) if config.likelihood == "bernoulli" else out


def log_likelihood(params, x, z, config: VAEConfig) -> np.ndarray:
    """log p(x|z) summed over pixels, one value per row: x (B, D), z (B, Z) -> (B,)."""
    dtype = params["encoder.W_mu"].dtype
    x = np.asarray(x, dtype=dtype)
    check_batch(x, config)
    out, out_log_var, _ = decoder_forward(params, np.asarray(z, dtype=dtype), config)
    nll, _, _ = reconstruction_nll(out, out_log_var, x, config)
    return -nll


def sample(params, n: int, rng: np.random.Generator, config: VAEConfig) -> np.ndarray:
    """Generate: z ~ N(0, I) from the prior, then the decoder's mean. (n, D)"""
    dtype = params["encoder.W_mu"].dtype
    z = rng.standard_normal((n, config.latent_dim)).astype(dtype)  # (n, Z)
    return decode(params, z, config)


def reconstruct(params, x, rng: np.random.Generator, config: VAEConfig) -> np.ndarray:
    """Encode, draw one z = μ + σ ⊙ ε, decode: the decoder's mean for each image. (B, D)"""
    mu, log_var = encode(params, x, config)  # (B, Z)
    eps = rng.standard_normal(mu.shape).astype(mu.dtype)  # (B, Z)
    z = mu + np.exp(0.5 * log_var) * eps  # (B, Z)
    return decode(params, z, config)
