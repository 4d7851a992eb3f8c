"""The importance-weighted bound L_k, fast: evaluate.iw_bound's numbers at BLAS speed.

tinyvae/evaluate.py writes L_k readably, docs/02-variational-inference.md eq. (12):

    log w_i = log p(x|z_i) + log p(z_i) − log q(z_i|x),   L_k = log (1/k) Σ_i e^(log w_i)

and tests/test_evaluate.py holds this file to it (~1e−10 in float64). At k = 5000 almost
all of the cost is the decoder, run for every one of the n·k samples, so that is what is
rearranged here:

1. Bounded memory, any k: the images go through in batches and each batch's k samples
   through the decoder chunk_size at a time, every layer into a buffer allocated once
   (speed/mlp.py's mlp_forward and in-place activations, shared with the fast step).
2. The Gaussian terms through ε: since (z − μ)/σ = ε, log q(z|x) needs no division.
3. For the Bernoulli likelihood, log p(x|z) = Σ_d [x_d l_d − softplus(l_d)] with the tricks
   of BernoulliLogLikelihood below. Other likelihoods use the core's vae.log_likelihood:
   correct for every likelihood the core knows, only not faster.

An activation without an in-place form (speed/mlp.py's IN_PLACE) is refused with a
ValueError, never replaced by another; evaluate.iw_bound takes every model the core knows.

The ε of each image are drawn from rng in image order, k·Z numbers per image, exactly as
evaluate.iw_bound draws them, so the result depends on the seed alone: not on batch_size,
not on chunk_size, not on threads.

4. Two batches at once, with threads=2: the noise of two batches is drawn in turn, as one
   thread would draw it, then the second batch runs on another core (speed/halves.py's
   worker) with decoder buffers of its own while this thread runs the first. Each image's
   numbers go through the same operations as with one thread, so L_k is the same, bit for
   bit; on a machine whose OpenBLAS runs on one thread (the reproduction recipe) the
   second core is otherwise idle during an evaluation that is mostly elementwise passes.

Shapes: B batch, D data, H hidden, Z latent, K importance samples, C samples in a chunk,
R = B·C rows through the decoder.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from .. import vae
from .._checks import positive_int
from ..config import VAEConfig
from ..evaluate import check_images
from ..layers import ACTIVATIONS, softplus
from ..losses import LOG_2PI, log_mean_exp
from . import halves
from .mlp import IN_PLACE, fast_form, mlp_forward

# Memory per decoder pass of L_k: the largest temporary is the (rows, D) array of
# logits; this many bytes bounds it, and also the noise drawn for one batch of images.
# Larger chunks are not faster: 8 MB keeps the logits in the processor's cache between
# the matrix multiply and the passes over them (measured: 32 MB was ~10 % slower).
CHUNK_BYTES = 8 * 2**20

USE_READABLE = "tinyvae.evaluate.iw_bound (the readable bound)"


def iw_bound(params, x, config: VAEConfig, rng: np.random.Generator, *, k: int = 1000,
             batch_size: int = 100, chunk_size: int | None = None,
             progress: Callable[[int, int], None] | None = None, threads: int = 1) -> float:
    """L_k averaged over the images: an estimate of the mean log p(x) from below, in nats.

    docs/02-variational-inference.md eq. (12); Burda et al. report k = 5000. Negative,
    ~ −90 on binarized MNIST; compare it with minus the test loss, which it should exceed.
    Arguments as iw_bound_per_example.
    """
    per_example = iw_bound_per_example(params, x, config, rng, k=k, batch_size=batch_size,
                                       chunk_size=chunk_size, progress=progress, threads=threads)
    return float(np.mean(per_example))


def iw_bound_per_example(params, x, config: VAEConfig, rng: np.random.Generator, *, k: int = 1000,
                         batch_size: int = 100, chunk_size: int | None = None,
                         progress: Callable[[int, int], None] | None = None,
                         threads: int = 1) -> np.ndarray:
    """L_k for every image, docs/02-variational-inference.md eq. (12): (N,) float64, nats.

    Memory stays bounded whatever k: the images go through in batches of at most
    batch_size, and each batch's k samples through the decoder chunk_size at a time
    (default: as many as keep the chunk's logits within CHUNK_BYTES). Only the (B, k)
    log-weights of a batch are kept, and the noise of one batch (of two, with threads=2); at
    k = 5000, for the 784-400-20 model in float32, the evaluation needs ~35 MB beyond the data
    (about twice that with threads=2). When one
    image's k·Z numbers of noise exceed CHUNK_BYTES (k = 2·10⁹ ...), images go one at a
    time, their noise drawn chunk by chunk from the same stream and their weights summed
    as they come (_streamed_bound): the memory is then a chunk's, not k's.
    progress(done_images, total_images), if given, is called after every batch (every pair
    with threads=2)
    (tinyvae.lab.training.progress.CountProgress draws a progress line). threads: 1, or 2 to run two
    batches at once on two cores (4. above): the same numbers.
    """
    x = check_images(x, config)
    k = positive_int("k", k)
    batch_size = positive_int("batch_size", batch_size)
    if type(threads) is not int or threads not in (1, 2):
        raise ValueError(f"threads must be 1 or 2, got {threads!r}")
    dtype = params["encoder.W_mu"].dtype  # the parameters' dtype decides the arithmetic
    Z = config.latent_dim
    batch_size, chunk_size, stream = _within_budget(k, Z, config.input_dim, dtype.itemsize,
                                                    batch_size, chunk_size)
    activation = fast_form(IN_PLACE, config.activation, "activation", ACTIVATIONS, USE_READABLE)

    def new_decoder():
        if config.likelihood == "bernoulli":
            return BernoulliLogLikelihood(params, config, activation,
                                          max_rows=batch_size * chunk_size)
        return CoreLogLikelihood(params, config)

    threads = 1 if stream else threads  # a streamed image is one long sequence: nothing to pair
    decoders = [new_decoder() for _ in range(threads)]
    out = np.empty(len(x))
    waiting = []  # a batch whose noise is drawn, waiting for a second one to run beside it
    for start in range(0, len(x), batch_size):
        xb = np.asarray(x[start:start + batch_size], dtype=dtype)  # (B, D)
        mu, log_var = vae.encode(params, xb, config)  # (B, Z)
        if stream:
            decoders[0].set_images(xb)
            out[start] = _streamed_bound(decoders[0], mu, log_var, rng, k, chunk_size)
        else:
            # Drawn in one call, C-order: image b's k·Z numbers are consecutive in the stream.
            eps = rng.standard_normal((len(xb), k, Z), dtype=dtype)  # (B, K, Z)
            waiting.append((out[start:start + len(xb)], xb, mu, log_var, eps))
            if len(waiting) < threads and start + batch_size < len(x):
                continue  # draw the next batch's noise first, then run the two at once
            jobs = [lambda d=decoder, w=batch: _batch_bound(d, *w, chunk_size)
                    for decoder, batch in zip(decoders, waiting)]
            if len(jobs) == 2:
                halves.both(*jobs)
            else:
                jobs[0]()
            waiting = []
        if progress is not None:
            progress(start + len(xb), len(x))
    return out


def images_at_once(k: int, config: VAEConfig, dtype, *, batch_size: int = 100,
                   threads: int = 1) -> int:
    """How many images iw_bound_per_example takes from x at a time: a batch (fewer images than
    batch_size when k is large), or a pair of batches with threads=2. A caller that splits the
    images into parts at multiples of this, and passes the same rng from part to part, gets
    every batch as in one call over all the images: the same numbers, bit for bit
    (lab/training/kept_bound.py keeps an evaluation's finished parts so)."""
    Z, D, itemsize = config.latent_dim, config.input_dim, np.dtype(dtype).itemsize
    batch_size, _, stream = _within_budget(k, Z, D, itemsize, batch_size, None)
    return batch_size * (2 if threads == 2 and not stream else 1)


def _within_budget(k: int, Z: int, D: int, itemsize: int, batch_size: int,
                   chunk_size: int | None) -> tuple[int, int, bool]:
    """(batch_size, chunk_size, stream) that keep a batch's noise and a chunk's logits
    in CHUNK_BYTES.

    A batch's noise (B, k, Z) must fit: fewer images per batch if not, and when one image's
    k·Z numbers alone exceed it, that image streams (_streamed_bound), its samples in chunks
    whose noise fits too. The chunk's logits (B·C, D) fit by default.
    """
    batch_size = max(1, min(batch_size, CHUNK_BYTES // (k * Z * itemsize)))
    if chunk_size is None:
        chunk_size = max(1, CHUNK_BYTES // (batch_size * D * itemsize))
    chunk_size = min(positive_int("chunk_size", chunk_size), k)
    stream = k * Z * itemsize > CHUNK_BYTES
    if stream:
        chunk_size = min(chunk_size, max(1, CHUNK_BYTES // (Z * itemsize)))
    return batch_size, chunk_size, stream


def _batch_bound(decoder, out, xb, mu, log_var, eps, chunk_size: int) -> None:
    """L_k of each image of the batch xb (B, D) into out (B,): its k samples eps (B, K, Z),
    in chunks."""
    B, k = eps.shape[:2]
    decoder.set_images(xb)
    log_w = np.empty((B, k), dtype=eps.dtype)  # (B, K)
    for s in range(0, k, chunk_size):
        log_w[:, s:s + chunk_size] = _log_weights(decoder, mu, log_var, eps[:, s:s + chunk_size])
    # The mean of e^(log w) in float64: a sum of k weights wants the extra precision.
    out[...] = log_mean_exp(log_w.astype(np.float64), axis=1)


def _streamed_bound(decoder, mu, log_var, rng: np.random.Generator, k: int,
                    chunk_size: int) -> float:
    """L_k of one image (mu, log_var (1, Z)) whose k samples are too many to hold at once.

    The noise is drawn chunk by chunk, in order, which is the same stream of numbers as one
    draw of (1, k, Z); the mean of the weights is kept as a running log-sum-exp in float64:
    with M the largest log w so far and S = Σ e^(log w − M), a new chunk with maximum m moves
    M to max(M, m) and rescales S by e^(M_old − M_new). Memory: one chunk, whatever k.
    Non-finite weights follow losses.log_mean_exp: a chunk whose weights are all 0 (every
    log w = −inf) adds nothing, and a NaN or +inf makes the bound NaN or +inf.
    """
    Z = mu.shape[1]
    top, total = -np.inf, 0.0
    for s in range(0, k, chunk_size):
        eps = rng.standard_normal((1, min(chunk_size, k - s), Z), dtype=mu.dtype)  # (1, C, Z)
        log_w = _log_weights(decoder, mu, log_var, eps)[0].astype(np.float64)  # (C,)
        m = float(log_w.max())
        if m == -np.inf:
            continue  # this chunk's weights are all 0: nothing to add
        if not np.isfinite(m):
            return float(np.nan if np.isnan(log_w).any() else np.inf)
        new_top = max(top, m)
        total = total * np.exp(top - new_top) + float(np.exp(log_w - new_top).sum())
        top = new_top
    return float(np.log(total / k) + top) if total > 0 else -np.inf


def _log_weights(decoder, mu, log_var, eps) -> np.ndarray:
    """log w for one chunk of samples: mu, log_var (B, Z), eps (B, C, Z) -> (B, C).

    The Gaussian terms are written through ε rather than z: since (z − μ)/σ = ε,
        log q(z|x) = −½ Σ_j [ε_j² + log σ_j² + log 2π],   log p(z) = −½ Σ_j [z_j² + log 2π],
    losses.log_posterior and losses.log_prior, as evaluate.log_importance_weights uses them.
    """
    std = np.exp(0.5 * log_var)[:, None, :]  # (B, 1, Z)
    z = mu[:, None, :] + std * eps  # (B, C, Z)
    Z = eps.shape[-1]
    log_qz = -0.5 * (np.einsum("bcz,bcz->bc", eps, eps) + log_var.sum(axis=1)[:, None]
                     + Z * LOG_2PI)  # (B, C)
    log_pz = -0.5 * (np.einsum("bcz,bcz->bc", z, z) + Z * LOG_2PI)  # (B, C)
    return decoder.log_likelihood(z) + log_pz - log_qz


class CoreLogLikelihood:
    """log p(x|z) for many z per image through the core's vae.log_likelihood:
    any likelihood it knows."""

    def __init__(self, params, config: VAEConfig):
        self.params, self.config = params, config

    def set_images(self, x) -> None:
        """The images x (B, D) that the next calls' rows of z belong to, C rows each."""
        self.x = x

    def log_likelihood(self, z) -> np.ndarray:
        """log p(x|z): z (B, C, Z) -> (B, C), x the image each row of z belongs to."""
        B, C, Z = z.shape
        x_rows = np.repeat(self.x, C, axis=0)  # (R, D)
        z_rows = z.reshape(B * C, Z)  # (R, Z)
        return vae.log_likelihood(self.params, x_rows, z_rows, self.config).reshape(B, C)


class BernoulliLogLikelihood:
    """log p(x|z) for many z per image with as few passes as possible: the cost of L_k.

    With logits l = h·W + b (h the last hidden layer),
        log p(x|z) = Σ_d [x_d l_d − softplus(l_d)]          docs/04-gradients.md eq. (7)
    and these things make it cheap:
      * x·l = h·(W xᵀ) + b·x, so the first sum needs one (H,) vector per image rather than a
        product over all D pixels for each of the k samples;
      * the bias rides in the product: b is one more row of W, [W; b] (H+1, D), against an
        input column that is always 1, [h | 1] (R, H+1), so l = [h | 1]·[W; b] comes out
        whole and the pass over the (R, D) logits that would add b is saved;
      * softplus(l) = log(1 + e^l) directly, in place, three passes (exp, add 1, log),
        rather than the stable max(l, 0) + log(1 + e^(−|l|)): e^l can only go wrong by
        overflowing to inf (for l > 88 in float32), which makes the row's sum inf, and
        those rare rows are redone with the stable form. log of 1 + e^l rather than log1p
        of e^l, because NumPy's log1p costs several times its log (docs/06-results.md
        section 6): rounding 1 + e^l costs at most
        a relative half ulp inside the logarithm, an absolute 6e−8 nats per pixel in float32
        (1e−16 in float64), negligible in a sum of ~100 nats;
      * the sum over the D pixels is a product too, softplus(l)·1 (a matrix times a vector of
        ones), which BLAS does on every core, where NumPy's sum along rows runs on one (in
        float32 its rounding differs from NumPy's pairwise sum by a few 1e−4 nats at most);
      * the hidden layers run through speed/mlp.py's mlp_forward, each into a buffer
        allocated once, so the memory is not handed back to the operating system and
        faulted in again for every chunk.
    """

    def __init__(self, params, config: VAEConfig, activation, max_rows: int):
        self.params, self.config, self.activation = params, config, activation
        dtype = params["encoder.W_mu"].dtype
        widths = config.hidden_dims[::-1]  # the decoder mirrors the encoder
        W, b = params["decoder.W_out"], params["decoder.b_out"]
        self.W_b = np.vstack((W, b[None, :]))  # (H+1, D): [W; b]
        # (R, H+1): [h | 1], the 1s written once; the last hidden layer writes its h into the
        # first H columns (with no hidden layer, z is copied there)
        self.h_1 = np.ones((max_rows, len(W) + 1), dtype)
        self.hidden_buffers = [np.empty((max_rows, H), dtype) for H in widths[:-1]]  # (R, H_i)
        if widths:
            self.hidden_buffers.append(self.h_1)
        self.logits = np.empty((max_rows, config.input_dim), dtype)  # (R, D)
        self.ones = np.ones(config.input_dim, dtype)  # (D,)

    def set_images(self, x) -> None:
        """The images x (B, D) that the next calls' rows of z belong to, C rows each."""
        self.xW = x @ self.params["decoder.W_out"].T  # (B, H): W xᵀ for each image
        self.xb = x @ self.params["decoder.b_out"]  # (B,)

    def hidden(self, z) -> np.ndarray:
        """The decoder's hidden layers, each into its buffer: z (R, Z) -> h (R, H).

        With hidden layers, the returned h is a view of the first H columns of h_1 (whose
        last column stays 1); with none, it is z itself.
        """
        R = len(z)
        outs = [buffer[:R, :len(self.params[f"decoder.b{i}"])]
                for i, buffer in enumerate(self.hidden_buffers)]
        return mlp_forward(self.params, "decoder", z, outs, self.activation)

    def log_likelihood(self, z) -> np.ndarray:
        """log p(x|z): z (B, C, Z) -> (B, C), x the image each row of z belongs to."""
        B, C, Z = z.shape
        R = B * C
        z = z.reshape(R, Z)  # one matrix: a single large matrix multiply per layer
        W, b = self.params["decoder.W_out"], self.params["decoder.b_out"]
        h = self.hidden(z)  # (R, H): for a decoder with hidden layers, the first H columns of h_1
        if not self.hidden_buffers:
            self.h_1[:R, :Z] = z  # no hidden layer: z itself is the output layer's input
        # (B, C): Σ_d x_d l_d = h·(W xᵀ) + b·x
        x_dot_l = (h.reshape(B, C, -1) @ self.xW[:, :, None])[..., 0] + self.xb[:, None]
        # (R, D): l = [h | 1]·[W; b], then in place
        t = np.matmul(self.h_1[:R], self.W_b, out=self.logits[:R])
        with np.errstate(over="ignore"):
            np.exp(t, out=t)  # e^l
        t += 1
        np.log(t, out=t)  # softplus(l) = log(1 + e^l); log, not log1p (see above)
        # (R,): Σ_d softplus(l_d), as a product with the ones
        sum_softplus = np.matmul(t, self.ones)
        overflow = ~np.isfinite(sum_softplus)
        if overflow.any():  # recompute those rows with the stable softplus
            sum_softplus[overflow] = softplus(h[overflow] @ W + b).sum(axis=1)
        return x_dot_l - sum_softplus.reshape(B, C)
