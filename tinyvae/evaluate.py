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
in order, so the numbers do not depend on batch or chunk sizes, only on the seed.

Shapes: B batch, D data, H hidden, Z latent, K importance samples, C samples in a chunk.
"""

from __future__ import annotations

import sys
import time

import numpy as np

from . import vae
from .layers import softplus
from .losses import LOG_2PI, gaussian_log_density, kl_terms, log_mean_exp
from .vae import VAEConfig

# Memory per decoder pass of L_k: the largest temporary is the (rows, D) array of
# logits; this many bytes bounds it, and also the noise drawn for one batch of images.
# Larger chunks are not faster: 8 MB keeps the logits in the processor's cache between
# the matrix multiply and the passes over them (measured: 32 MB was ~10 % slower).
CHUNK_BYTES = 8 * 2**20


def _dtype(params) -> np.dtype:
    return params["encoder.W_mu"].dtype  # the parameters' dtype decides the arithmetic


def _check_data(x, config: VAEConfig, name: str = "x") -> np.ndarray:
    x = np.asarray(x)
    if x.ndim == 1:
        x = x[None, :]
    vae.check_batch(x, config, name)
    if len(x) == 0:
        raise ValueError(f"{name} is empty; expected at least one image")
    return x


def _positive_int(name: str, value) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return int(value)


# ---------------------------------------------------------------------------------------
# The test ELBO


def test_elbo(params, x, config: VAEConfig, rng: np.random.Generator, *, batch_size: int = 1000) -> dict:
    """The negative ELBO on a data set, per image: {"loss", "recon", "kl"} in nats.

        loss(x) = −log p(x|z) + β · KL(q(z|x) ‖ N(0, I)),   z = μ + σ ⊙ ε, one ε per image

    docs/02-variational-inference.md eq. (11), with β = config.beta, averaged over the
    images. One sample of ε per image is what PyTorch's VAE example and Kingma & Welling
    report; the KL is exact (closed form), only the reconstruction term is sampled.
    The ε are drawn in image order, so the result does not depend on batch_size.
    """
    x = _check_data(x, config)
    batch_size = _positive_int("batch_size", batch_size)
    dtype = _dtype(params)
    totals = np.zeros(3)  # sums of loss, recon, kl over the images, in float64
    for start in range(0, len(x), batch_size):
        xb = x[start:start + batch_size]
        eps = rng.standard_normal((len(xb), config.latent_dim), dtype=dtype)  # (B, Z)
        loss, recon, kl = vae.negative_elbo(params, xb, eps, config)  # (B,) each
        totals += [loss.sum(dtype=np.float64), recon.sum(dtype=np.float64), kl.sum(dtype=np.float64)]
    loss, recon, kl = totals / len(x)
    return {"loss": float(loss), "recon": float(recon), "kl": float(kl)}


# ---------------------------------------------------------------------------------------
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


def log_importance_weights(params, x, eps, config: VAEConfig) -> np.ndarray:
    """log w = log p(x|z) + log p(z) − log q(z|x) for z = μ + σ ⊙ ε; the reference version.

    This is the formula as written, using the model's own functions; iw_bound computes
    the same numbers in chunks with a faster decoder, and the tests compare the two.

    x (B, D), eps (B, K, Z) -> log w (B, K).
    """
    x = _check_data(x, config)
    dtype = _dtype(params)
    x = np.asarray(x, dtype=dtype)
    eps = np.asarray(eps, dtype=dtype)
    B, K, Z = eps.shape
    mu, log_var = vae.encode(params, x, config)  # (B, Z)
    mu, log_var = mu[:, None, :], log_var[:, None, :]  # (B, 1, Z): broadcast over the K samples
    z = mu + np.exp(0.5 * log_var) * eps  # (B, K, Z)
    log_px_z = vae.log_likelihood(params, np.repeat(x, K, axis=0), z.reshape(B * K, Z), config)  # (B·K,)
    log_pz = gaussian_log_density(z, np.zeros_like(z), np.zeros_like(z))  # (B, K): the prior N(0, I)
    log_qz = gaussian_log_density(z, mu, log_var)  # (B, K)
    return log_px_z.reshape(B, K) + log_pz - log_qz


def iw_bound(params, x, config: VAEConfig, rng: np.random.Generator, *, k: int = 1000,
             batch_size: int = 100, chunk_size: int | None = None, progress: bool = False) -> float:
    """L_k averaged over the images: an estimate of the mean log p(x) from below, in nats.

    docs/02-variational-inference.md eq. (12); Burda et al. report k = 5000. Negative,
    ~ −90 on binarized MNIST; compare it with minus the test loss, which it should exceed.
    Arguments as iw_bound_per_example.
    """
    per_example = iw_bound_per_example(params, x, config, rng, k=k, batch_size=batch_size,
                                       chunk_size=chunk_size, progress=progress)
    return float(np.mean(per_example))


def iw_bound_per_example(params, x, config: VAEConfig, rng: np.random.Generator, *, k: int = 1000,
                         batch_size: int = 100, chunk_size: int | None = None,
                         progress: bool = False) -> np.ndarray:
    """L_k for every image, docs/02-variational-inference.md eq. (12): (N,) float64, nats.

    Memory stays bounded whatever k: the images go through in batches of at most
    batch_size, and each batch's k samples through the decoder chunk_size at a time
    (default: as many as keep the chunk's logits within CHUNK_BYTES). Only the (B, k)
    log-weights of a batch are kept, and the noise of one batch; at k = 5000, for the
    784-400-20 model in float32, the evaluation needs ~35 MB beyond the data.

    The ε of each image are drawn from rng in image order, k·Z numbers per image, so the
    result depends on the seed alone: not on batch_size, not on chunk_size.
    progress=True prints a progress line to stderr (in place on a terminal).
    """
    x = _check_data(x, config)
    k = _positive_int("k", k)
    batch_size = _positive_int("batch_size", batch_size)
    dtype = _dtype(params)
    Z, D = config.latent_dim, config.input_dim
    # A batch's noise (B, k, Z) must fit the budget too; fewer images per batch if not.
    batch_size = max(1, min(batch_size, CHUNK_BYTES // (k * Z * dtype.itemsize)))
    if chunk_size is None:
        chunk_size = max(1, CHUNK_BYTES // (batch_size * D * dtype.itemsize))
    chunk_size = min(_positive_int("chunk_size", chunk_size), k)

    bar = _Progress(f"L_{k}", len(x)) if progress else None
    decoder = _Decoder(params, config, max_rows=batch_size * chunk_size)
    out = np.empty(len(x))
    for start in range(0, len(x), batch_size):
        xb = np.asarray(x[start:start + batch_size], dtype=dtype)  # (B, D)
        # Drawn in one call, C-order: image b's k·Z numbers are consecutive in the stream.
        eps = rng.standard_normal((len(xb), k, Z), dtype=dtype)  # (B, K, Z)
        log_w = np.empty((len(xb), k), dtype=dtype)  # (B, K)
        mu, log_var = vae.encode(params, xb, config)  # (B, Z)
        decoder.set_images(xb)
        for s in range(0, k, chunk_size):
            log_w[:, s:s + chunk_size] = _log_weights(decoder, mu, log_var, eps[:, s:s + chunk_size])
        # The mean of e^(log w) in float64: a sum of k weights wants the extra precision.
        out[start:start + len(xb)] = log_mean_exp(log_w.astype(np.float64), axis=1)
        if bar:
            bar.update(start + len(xb))
    if bar:
        bar.close()
    return out


def _log_weights(decoder, mu, log_var, eps) -> np.ndarray:
    """log w for one chunk of samples: mu, log_var (B, Z), eps (B, C, Z) -> (B, C).

    The Gaussian terms are written through ε rather than z: since (z − μ)/σ = ε,
        log q(z|x) = −½ Σ_j [ε_j² + log σ_j² + log 2π],   log p(z) = −½ Σ_j [z_j² + log 2π],
    which is log_importance_weights' gaussian_log_density with the division done exactly.
    """
    std = np.exp(0.5 * log_var)[:, None, :]  # (B, 1, Z)
    z = mu[:, None, :] + std * eps  # (B, C, Z)
    Z = eps.shape[-1]
    log_qz = -0.5 * (np.einsum("bcz,bcz->bc", eps, eps) + log_var.sum(axis=1)[:, None] + Z * LOG_2PI)  # (B, C)
    log_pz = -0.5 * (np.einsum("bcz,bcz->bc", z, z) + Z * LOG_2PI)  # (B, C)
    return decoder.log_likelihood(z) + log_pz - log_qz


class _Decoder:
    """log p(x|z) for many z per image x, the cost of L_k, done with as few passes as possible.

    For the Bernoulli likelihood with logits l = h·W + b (h the last hidden layer),
        log p(x|z) = Σ_d [x_d l_d − softplus(l_d)]          docs/04-gradients.md eq. (7)
    and these things make it cheap:
      * x·l = h·(W xᵀ) + b·x, so the first sum needs one (H,) vector per image rather than a
        product over all D pixels for each of the k samples;
      * the bias rides in the product: b is one more row of W, [W; b] (H+1, D), against an
        input column that is always 1, [h | 1] (R, H+1), so l = [h | 1]·[W; b] comes out
        whole and the pass over the (R, D) logits that would add b is saved;
      * softplus(l) = log(1 + e^l) directly, in place, two passes, rather than the stable
        max(l, 0) + log(1 + e^(−|l|)): e^l can only go wrong by overflowing to inf (for
        l > 88 in float32), which makes the row's sum inf, and those rare rows are redone
        with the stable form. Where e^l underflows, log(1 + e^l) ≈ e^l < 1e−38 is lost:
        an absolute error, negligible in a sum of ~100 nats;
      * the sum over the D pixels is a product too, softplus(l)·1 (a matrix times a vector of
        ones), which BLAS does on every core, where NumPy's sum along rows runs on one (in
        float32 its rounding differs from NumPy's pairwise sum by a few 1e−4 nats at most);
      * every layer writes into a buffer allocated once, so the memory is not handed back
        to the operating system and faulted in again for every chunk.
    Other likelihoods go through vae.log_likelihood.
    """

    def __init__(self, params, config: VAEConfig, max_rows: int):
        self.params, self.config = params, config
        dtype = _dtype(params)
        self.act = _ACTIVATIONS_IN_PLACE[config.activation]
        widths = config.hidden_dims[::-1]  # the decoder mirrors the encoder
        self.hidden_buffers = [np.empty((max_rows, H), dtype) for H in widths[:-1]]  # (R, H_i)
        if config.likelihood == "bernoulli":
            W, b = params["decoder.W_out"], params["decoder.b_out"]
            self.W_b = np.vstack((W, b[None, :]))  # (H+1, D): [W; b]
            # (R, H+1): [h | 1], the 1s written once; the last hidden layer writes its h into
            # the first H columns (with no hidden layer, z is copied there)
            self.h_1 = np.ones((max_rows, len(W) + 1), dtype)
            self.logits = np.empty((max_rows, config.input_dim), dtype)  # (R, D)
            self.ones = np.ones(config.input_dim, dtype)  # (D,)
            last = self.h_1
        else:
            last = np.empty((max_rows, widths[-1]), dtype) if widths else None
        if widths:
            self.hidden_buffers.append(last)

    def set_images(self, x) -> None:
        """The images x (B, D) that the next calls' rows of z belong to, B·C rows each."""
        self.x = x
        if self.config.likelihood == "bernoulli":
            self.xW = x @ self.params["decoder.W_out"].T  # (B, H): W xᵀ for each image
            self.xb = x @ self.params["decoder.b_out"]  # (B,)

    def hidden(self, z):
        """The decoder's hidden layers, each into its buffer: z (R, Z) -> h (R, H).

        For the Bernoulli likelihood with hidden layers, the returned h is a view of the first
        H columns of h_1; with none, it is z itself.
        """
        h = z
        for i, buffer in enumerate(self.hidden_buffers):
            W = self.params[f"decoder.W{i}"]
            # the first H_i columns: all of a buffer but h_1, whose last column stays 1
            a = np.matmul(h, W, out=buffer[:len(z), :W.shape[1]])  # (R, H_i)
            a += self.params[f"decoder.b{i}"]
            h = self.act(a)
        return h

    def log_likelihood(self, z) -> np.ndarray:
        """log p(x|z): z (B, C, Z) -> (B, C), x the image each row of z belongs to."""
        B, C, Z = z.shape
        R = B * C
        z = z.reshape(R, Z)  # one matrix: a single large matrix multiply per layer
        if self.config.likelihood != "bernoulli":
            x_rows = np.repeat(self.x, C, axis=0)  # (R, D)
            return vae.log_likelihood(self.params, x_rows, z, self.config).reshape(B, C)
        W, b = self.params["decoder.W_out"], self.params["decoder.b_out"]
        h = self.hidden(z)  # (R, H): for a decoder with hidden layers, the first H columns of h_1
        if not self.hidden_buffers:
            self.h_1[:R, :Z] = z  # no hidden layer: z itself is the output layer's input
        x_dot_l = (h.reshape(B, C, -1) @ self.xW[:, :, None])[..., 0] + self.xb[:, None]  # (B, C): Σ_d x_d l_d
        t = np.matmul(self.h_1[:R], self.W_b, out=self.logits[:R])  # (R, D): l = [h | 1]·[W; b], then in place
        with np.errstate(over="ignore"):
            np.exp(t, out=t)  # e^l
        np.log1p(t, out=t)  # softplus(l) = log(1 + e^l)
        sum_softplus = np.matmul(t, self.ones)  # (R,): Σ_d softplus(l_d), as a product with the ones
        overflow = ~np.isfinite(sum_softplus)
        if overflow.any():  # recompute those rows with the stable softplus
            sum_softplus[overflow] = softplus(h[overflow] @ W + b).sum(axis=1)
        return x_dot_l - sum_softplus.reshape(B, C)


# The activations of layers.py, computed in place (into the buffer they are given).
_ACTIVATIONS_IN_PLACE = {
    "relu": lambda a: np.maximum(a, 0, out=a),
    "tanh": lambda a: np.tanh(a, out=a),
}


class _Progress:
    """A progress line on stderr: updated in place on a terminal, a plain line per 10 % otherwise."""

    def __init__(self, what: str, total: int):
        self.what, self.total = what, total
        self.stream = sys.stderr
        self.tty = self.stream.isatty()
        self.t0 = time.perf_counter()
        self.last_tenth = 0

    def update(self, done: int) -> None:
        elapsed = time.perf_counter() - self.t0
        eta = elapsed / done * (self.total - done)
        line = (f"{self.what}: {done:,}/{self.total:,} images ({100 * done / self.total:.0f} %), "
                f"{_clock(elapsed)} elapsed, ETA {_clock(eta)}")
        if self.tty:
            self.stream.write("\r" + line + "\033[K")  # \033[K clears what a longer line left
        elif done * 10 // self.total > self.last_tenth or done == self.total:
            self.last_tenth = done * 10 // self.total
            self.stream.write(line + "\n")
        self.stream.flush()

    def close(self) -> None:
        if self.tty:
            self.stream.write("\n")
            self.stream.flush()


def _clock(seconds: float) -> str:
    m, s = divmod(int(round(seconds)), 60)
    return f"{m}:{s:02d}"


# ---------------------------------------------------------------------------------------
# How much of the latent space is used


def kl_per_dimension(params, x, config: VAEConfig, *, batch_size: int = 1000) -> np.ndarray:
    """KL(q(z_j|x) ‖ N(0, 1)) for each latent dimension j, averaged over the images: (Z,).

        KL_j = ½ (μ_j² + σ_j² − 1 − log σ_j²)      docs/02-variational-inference.md eq. (10)

    The terms of the closed-form KL before its sum over j. A dimension whose KL is ~ 0 has
    q(z_j|x) = N(0, 1) for every x: it carries no information about the image (it has
    "collapsed" to the prior), and the decoder learns to ignore it.
    """
    x = _check_data(x, config)
    batch_size = _positive_int("batch_size", batch_size)
    total = np.zeros(config.latent_dim)
    for start in range(0, len(x), batch_size):
        mu, log_var = vae.encode(params, x[start:start + batch_size], config)  # (B, Z)
        total += kl_terms(mu, log_var).sum(axis=0, dtype=np.float64)  # (B, Z) summed over the batch
    return total / len(x)


def active_units(params, x, config: VAEConfig, *, threshold: float = 0.01,
                 batch_size: int = 1000) -> tuple[int, np.ndarray]:
    """The number of active latent dimensions, and each dimension's activity: (n, (Z,)).

        A_u = Cov_x( E_{q(z|x)}[z_u] ) = Var_x(μ_u(x)),   active if A_u > threshold

    Burda et al. (2016), section 5.2, threshold 0.01. A dimension is active when its mean
    code moves with the image; an inactive one has the same μ_u for every x (and, the
    KL pushing it there, μ_u ≈ 0 and σ_u ≈ 1). The variance is the population variance
    over the given images, computed in float64.
    """
    x = _check_data(x, config)
    batch_size = _positive_int("batch_size", batch_size)
    mus = [vae.encode(params, x[start:start + batch_size], config)[0]
           for start in range(0, len(x), batch_size)]
    variance = np.concatenate(mus).astype(np.float64).var(axis=0)  # (Z,)
    return int(np.sum(variance > threshold)), variance
