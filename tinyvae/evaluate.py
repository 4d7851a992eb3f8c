"""Numbers comparable to papers: the test ELBO, the importance-weighted bound L_k, and
how much of the latent space the model uses.

    test_elbo            −ELBO per image with one ε each, split into reconstruction and KL
                         (the protocol of PyTorch's VAE example and of Kingma & Welling)
    iw_bound             L_k of Burda et al. (2016), the standard estimate of log p(x):
                         docs/02-variational-inference.md eq. (12); ELBO = L_1 ≤ L_k ≤ log p(x)
    kl_per_dimension     the KL of each latent dimension, averaged over the data
    active_units         how many dimensions the encoder actually uses (Burda et al.)

The ELBO and L_k are in nats per image. The ELBO is reported as a loss (positive, lower is
better, ~ 100 on MNIST); L_k as a log-likelihood (negative, higher is better, ~ −90),
the way each is printed in the papers.

All randomness comes from the caller's Generator, and the noise is drawn image by image
in order, so the numbers do not depend on batch sizes, only on the seed.

This is the readable evaluation, written with the model's own functions. The speed wing's
tinyvae/speed/iw.py computes the same L_k (the same ε from the same seed) with a decoder
arranged for BLAS and in bounded memory for any k, which is what L_5000 on 10,000 images
needs and what the commands run; the tests compare the two.

Shapes: B batch, D data, Z latent, K importance samples.
"""

from __future__ import annotations

import numpy as np

from . import vae
from ._checks import check_batch, finite_params, positive_int
from .config import Params, VAEConfig, dtype_of
from .layers import reparameterize_forward
from .losses import kl_terms, log_mean_exp, log_posterior, log_prior


def check_images(x, config: VAEConfig, name: str = "x") -> np.ndarray:
    """x as images (N, D) to score, one image (D,) becoming (1, D):
    refuses what the model cannot score."""
    return check_batch(x, config, name, one_image_ok=True, empty_ok=False)


# The test ELBO


def test_elbo(params: Params, x: np.ndarray, config: VAEConfig, rng: np.random.Generator, *,
              batch_size: int = 1000) -> dict:
    """The training loss on a data set, per image: {"loss", "recon", "kl"} in nats.

        loss(x) = −log p(x|z) + β · KL(q(z|x) ‖ N(0, I)),   z = μ + σ ⊙ ε, one ε per image

    docs/02-variational-inference.md eq. (11), with β = config.beta, averaged over the
    images. For β = 1 the loss is the negative ELBO; for any β the ELBO itself is
    −(recon + kl), which is what to compare with L_k (which bounds log p(x) whatever β).
    One sample of ε per image is what PyTorch's VAE example and Kingma & Welling report;
    the KL is exact (closed form), only the reconstruction term is sampled.
    The ε are drawn in image order, so the result does not depend on batch_size.
    """
    x = check_images(x, config)
    finite_params(params)  # else every number below is NaN, silently
    batch_size = positive_int("batch_size", batch_size)
    dtype = dtype_of(params)
    totals = np.zeros(3)  # sums of loss, recon, kl over the images, in float64
    for start in range(0, len(x), batch_size):
        xb = x[start:start + batch_size]
        eps = rng.standard_normal((len(xb), config.latent_dim), dtype=dtype)  # (B, Z)
        loss, recon, kl = vae.negative_elbo(params, xb, eps, config)  # (B,) each
        totals += [loss.sum(dtype=np.float64), recon.sum(dtype=np.float64),
                   kl.sum(dtype=np.float64)]
    loss, recon, kl = totals / len(x)
    return {"loss": float(loss), "recon": float(recon), "kl": float(kl)}


# The importance-weighted bound L_k
#
# One image x, k samples z_i ~ q(z|x), and the importance weights
#
#     w_i = p(x, z_i) / q(z_i|x),    log w_i = log p(x|z_i) + log p(z_i) − log q(z_i|x)
#     L_k = log (1/k) Σ_i w_i                docs/02-variational-inference.md eq. (12)
#
# Every w_i has expectation p(x); the log of their mean is a lower bound on log p(x) that
# rises with k (docs/02-variational-inference.md eq. (13)). The weights of MNIST digits
# are around e^−90, so the mean is taken in log space (losses.log_mean_exp).


def log_importance_weights(params: Params, x: np.ndarray, eps: np.ndarray,
                           config: VAEConfig) -> np.ndarray:
    """log w = log p(x|z) + log p(z) − log q(z|x) for z = μ + σ ⊙ ε:
    x (B, D), eps (B, K, Z) -> (B, K).

    The formula as written, with the model's own functions; iw_bound uses it, and
    tinyvae/speed/iw.py computes the same numbers with a faster decoder (the tests compare them).
    """
    x = check_images(x, config)  # once: the model's own functions below take it as checked
    dtype = dtype_of(params)
    x = np.asarray(x, dtype=dtype)
    eps = np.asarray(eps, dtype=dtype)
    B, K, Z = eps.shape
    mu, log_var, _ = vae.encoder_forward(params, x, config)  # (B, Z)
    mu, log_var = mu[:, None, :], log_var[:, None, :]  # (B, 1, Z): broadcast over the K samples
    z, _ = reparameterize_forward(mu, log_var, eps)  # (B, K, Z)
    out, out_log_var, _ = vae.decoder_forward(params, z.reshape(B * K, Z), config)  # (B·K, D)
    # (B·K,): each image's row repeated, once for each of its K samples
    recon, _, _ = vae.reconstruction_nll(out, out_log_var, np.repeat(x, K, axis=0), config)
    log_pz, _ = log_prior(z)  # (B, K): the prior N(0, I)
    log_qz = log_posterior(eps, log_var)  # (B, K)
    log_w = -recon.reshape(B, K) + log_pz - log_qz  # (B, K)
    if not np.all(np.isfinite(log_w)):
        finite_params(params)  # a NaN parameter is named; checked only when something is amiss
    return log_w


# The readable bound decodes about this many (image, sample) rows at a time, so that its memory
# is a few (rows, D) arrays. Its noise (B, k, Z) it draws whole: for k in the millions, use
# tinyvae/speed/iw.py, whose memory is bounded whatever k is.
ROWS_PER_PASS = 10_000


def iw_bound(params: Params, x: np.ndarray, config: VAEConfig, rng: np.random.Generator, *,
             k: int = 1000, batch_size: int = 100) -> float:
    """L_k averaged over the images: an estimate of the mean log p(x) from below, in nats.

    docs/02-variational-inference.md eq. (12); Burda et al. report k = 5000. Negative,
    ~ −90 on binarized MNIST; compare it with the ELBO, −(recon + kl), which it should exceed.
    Arguments as iw_bound_per_example.
    """
    return float(np.mean(iw_bound_per_example(params, x, config, rng, k=k, batch_size=batch_size)))


def iw_bound_per_example(params: Params, x: np.ndarray, config: VAEConfig,
                         rng: np.random.Generator, *, k: int = 1000,
                         batch_size: int = 100) -> np.ndarray:
    """L_k for every image, docs/02-variational-inference.md eq. (12): (N,) float64, nats.

    For each batch of images: draw k ε per image, compute the (B, k) log-weights with
    log_importance_weights, a few samples at a time (ROWS_PER_PASS rows through the
    decoder), and take the log of their mean. The ε of each image are drawn from rng in
    image order, k·Z numbers per image, so the result depends on the seed alone, not on
    batch_size.
    """
    x = check_images(x, config)
    finite_params(params)  # else every number below is NaN, silently
    k = positive_int("k", k)
    batch_size = positive_int("batch_size", batch_size)
    dtype = dtype_of(params)
    out = np.empty(len(x))  # (N,)
    for start in range(0, len(x), batch_size):
        xb = x[start:start + batch_size]  # (B, D)
        # Drawn in one call, C-order: image b's k·Z numbers are consecutive in the stream.
        eps = rng.standard_normal((len(xb), k, config.latent_dim), dtype=dtype)  # (B, K, Z)
        per_pass = max(1, ROWS_PER_PASS // len(xb))  # samples per image in one pass
        log_w = np.concatenate([log_importance_weights(params, xb, eps[:, s:s + per_pass], config)
                                for s in range(0, k, per_pass)], axis=1)  # (B, K)
        # The weights are ~e^−90: their mean is taken in log space, in float64 (a sum of k terms).
        out[start:start + len(xb)] = log_mean_exp(log_w.astype(np.float64), axis=1)
    return out


# How much of the latent space is used


def kl_per_dimension(params: Params, x: np.ndarray, config: VAEConfig, *,
                     batch_size: int = 1000) -> np.ndarray:
    """KL(q(z_j|x) ‖ N(0, 1)) for each latent dimension j, averaged over the images: (Z,).

        KL_j = ½ (μ_j² + σ_j² − 1 − log σ_j²)      docs/02-variational-inference.md eq. (10)

    The terms of the closed-form KL before its sum over j. A dimension whose KL is ~ 0 has
    q(z_j|x) = N(0, 1) for every x: it carries no information about the image (it has
    "collapsed" to the prior), and the decoder learns to ignore it.
    """
    x = check_images(x, config)
    finite_params(params)  # else every number below is NaN, silently
    batch_size = positive_int("batch_size", batch_size)
    total = np.zeros(config.latent_dim)
    for start in range(0, len(x), batch_size):
        mu, log_var = vae.encode(params, x[start:start + batch_size], config)  # (B, Z)
        total += kl_terms(mu, log_var).sum(axis=0, dtype=np.float64)  # (B, Z) summed over the batch
    return total / len(x)


def active_units(params: Params, x: np.ndarray, config: VAEConfig, *, threshold: float = 0.01,
                 batch_size: int = 1000) -> tuple[int, np.ndarray]:
    """The number of active latent dimensions, and each dimension's activity: (n, (Z,)).

        A_u = Cov_x( E_{q(z|x)}[z_u] ) = Var_x(μ_u(x)),   active if A_u > threshold

    Burda et al. (2016), section 5.2, threshold 0.01. A dimension is active when its mean
    code moves with the image; an inactive one has the same μ_u for every x (and, the
    KL pushing it there, μ_u ≈ 0 and σ_u ≈ 1). The variance is the population variance
    over the given images, computed in float64.
    """
    x = check_images(x, config)
    finite_params(params)  # else every number below is NaN, silently
    batch_size = positive_int("batch_size", batch_size)
    mus = [vae.encode(params, x[start:start + batch_size], config)[0]
           for start in range(0, len(x), batch_size)]
    variance = np.concatenate(mus).astype(np.float64).var(axis=0)  # (Z,)
    return int(np.sum(variance > threshold)), variance


# Not a test, though its name starts with test_: pytest must not collect it where it is imported.
test_elbo.__test__ = False
