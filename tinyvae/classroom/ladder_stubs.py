'''The student's side of the backprop ladder: the file `exercise start NAME` writes for each rung.

Each stub holds the function's signature and a docstring with its shapes and the equation of
docs/04-gradients.md that derives it (never the answer), the forward pass for reference, and a
body that raises NotImplementedError. The grader (grader.py) only reads the function named in
ladder.py; everything else in the file is the student's to change.
'''

from __future__ import annotations

HEADER = '''"""Exercise {name}: {title}.

Write the body of {function}() below, then run, from the folder that holds tinyvae-exercises/:

    python -m tinyvae exercise check {name}

The check puts your function into a small VAE in place of tinyvae's own, compares every
gradient of the model with central finite differences, and explains the first row that fails.
The derivation is {equation}: try it on paper first.
"""

import numpy as np
'''

STUBS = {
    "dense": '''
# For reference, the forward pass (tinyvae.layers.dense_forward):
#     out = x @ W + b          x (B, I), W (I, O), b (O,) -> out (B, O)
#     cache = (x, W)


def dense_backward(dout, cache):
    """The gradients of a dense layer out = x·W + b, docs/04-gradients.md eq. (2).

    dout (B, O) is dL/d(out); cache = (x, W) as dense_forward left it.
    Return dx (B, I), dW (I, O), db (O,): dL/dx, dL/dW, dL/db. Do not modify dout.
    """
    x, W = cache
    raise NotImplementedError("dense_backward: docs/04-gradients.md eq. (2)")
''',
    "relu": '''
# For reference, the forward pass (tinyvae.layers.relu_forward):
#     out = np.maximum(x, 0)
#     cache = x                the input, not the output


def relu_backward(dout, cache):
    """dL/dx for out = max(x, 0), docs/04-gradients.md eq. (3).

    dout (B, H) is dL/d(out); cache is x (B, H). Return dx (B, H). At x = 0 exactly, take the
    slope 0 (what most libraries do; the check keeps away from the kink).
    """
    x = cache
    raise NotImplementedError("relu_backward: docs/04-gradients.md eq. (3)")
''',
    "tanh": '''
# For reference, the forward pass (tinyvae.layers.tanh_forward):
#     out = np.tanh(x)
#     cache = out              the OUTPUT tanh(x), not the input x


def tanh_backward(dout, cache):
    """dL/dx for out = tanh(x), docs/04-gradients.md eq. (4).

    dout (B, H) is dL/d(out); cache is out = tanh(x) (B, H). Return dx (B, H).
    """
    out = cache
    raise NotImplementedError("tanh_backward: docs/04-gradients.md eq. (4)")
''',
    "softplus": '''from tinyvae.layers import sigmoid  # σ(x) = 1 / (1 + e^(−x)), safe for any x

# For reference, the forward pass (tinyvae.layers.softplus_forward):
#     out = log(1 + e^x)       computed as np.maximum(x, 0) + np.log1p(np.exp(-np.abs(x)))
#     cache = x                the INPUT, unlike tanh and sigmoid
# The check adds softplus to the activations for its own run and trains nothing.


def softplus_backward(dout, cache):
    """dL/dx for out = log(1 + e^x), docs/04-gradients.md eq. (6).

    dout (B, H) is dL/d(out); cache is x (B, H). Return dx (B, H).
    """
    x = cache
    raise NotImplementedError("softplus_backward: docs/04-gradients.md eq. (6)")
''',
    "bernoulli": '''from tinyvae.layers import sigmoid  # σ(x) = 1 / (1 + e^(−x)), safe for any x


def bernoulli_nll(logits, x):
    """−log p(x|z) for Bernoulli pixels with logits l, summed over pixels, and its gradient.

        nll = Σ_d [max(l, 0) − x·l + log(1 + e^(−|l|))]     docs/04-gradients.md eq. (7)
        dlogits = d nll / d l                               docs/04-gradients.md eq. (8)

    logits (B, D), x (B, D) in {0, 1} -> nll (B,), dlogits (B, D). The check scores your
    gradient against central differences of the forward pass above (the nll line, given).
    """
    nll = np.maximum(logits, 0) - x * logits + np.log1p(np.exp(-np.abs(logits)))  # (B, D)
    raise NotImplementedError("bernoulli_nll's gradient: docs/04-gradients.md eq. (8)")
''',
    "gaussian": '''import math


def gaussian_nll(mean, x, std):
    """−log N(x; m, σ²) with a fixed σ, summed over pixels, and its gradient with respect to m.

        nll = Σ_d ½ [(x − m)²/σ² + log σ² + log 2π]         docs/04-gradients.md eq. (9)
        dmean = d nll / d m                                 docs/04-gradients.md eq. (10)

    mean (B, D), x (B, D), std = σ > 0 (a float) -> nll (B,), dmean (B, D).
    The check runs with σ = 0.5: why not σ = 1 (docs/05-classroom.md §4)?
    """
    var = float(std) ** 2
    diff = mean - x  # (B, D)
    nll = 0.5 * (diff * diff / var + math.log(var) + math.log(2 * math.pi))  # (B, D)
    raise NotImplementedError("gaussian_nll's gradient: docs/04-gradients.md eq. (10)")
''',
    "gaussian-learned": '''import math


def gaussian_nll_learned(mean, log_var, x):
    """−log N(x; m, e^s) with a per-pixel log-variance s from the decoder, and its two gradients.

        nll = Σ_d ½ [(x − m)² e^(−s) + s + log 2π]          docs/04-gradients.md eq. (11)
        dmean = d nll / d m,  dlog_var = d nll / d s        docs/04-gradients.md eq. (12)

    mean (B, D), log_var (B, D), x (B, D) -> nll (B,), dmean (B, D), dlog_var (B, D).
    """
    diff = mean - x  # (B, D)
    inv_var = np.exp(-log_var)  # (B, D)
    nll = 0.5 * (diff * diff * inv_var + log_var + math.log(2 * math.pi))  # (B, D)
    raise NotImplementedError("gaussian_nll_learned's gradients: docs/04-gradients.md eq. (12)")
''',
    "kl": '''

def kl_standard_normal(mu, log_var):
    """KL(N(μ, diag σ²) ‖ N(0, I)) per example, summed over latent dimensions, and its gradients.

        kl = ½ Σ_j (μ_j² + σ_j² − 1 − log σ_j²)   docs/02-variational-inference.md eq. (10)
        dmu = d kl / d μ,  dlog_var = d kl / d log σ²      docs/04-gradients.md eq. (13)

    mu (B, Z), log_var (B, Z) -> kl (B,), dmu (B, Z), dlog_var (B, Z). Return new arrays
    (the caller adds to dmu in place, so do not return mu itself).
    """
    kl = 0.5 * np.sum(mu * mu + np.exp(log_var) - 1 - log_var, axis=1)  # (B,)
    raise NotImplementedError("kl_standard_normal's gradients: docs/04-gradients.md eq. (13)")
''',
    "reparameterize": '''
# For reference, the forward pass (tinyvae.layers.reparameterize_forward):
#     std = np.exp(0.5 * log_var)      σ                              (B, Z)
#     z = mu + std * eps               docs/04-gradients.md eq. (14)   (B, Z)
#     cache = (std, eps)


def reparameterize_backward(dz, cache):
    """dL/dμ and dL/d log σ² for z = μ + σ ⊙ ε, docs/04-gradients.md eq. (15).

    dz (B, Z) is dL/dz; cache = (std, eps), both (B, Z). Return dmu (B, Z), dlog_var (B, Z)
    as new arrays (the caller adds the KL's path to them in place). ε is data: no gradient.
    """
    std, eps = cache
    raise NotImplementedError("reparameterize_backward: docs/04-gradients.md eq. (15)")
''',
    "encoder": '''from tinyvae.layers import activation, dense_backward

# For reference, the forward pass (tinyvae.vae.encoder_forward), for hidden layers i = 0..n−1:
#     a_i = h_(i−1) · W_i + b_i;  h_i = act(a_i)         h_(−1) = x          (B, H_i)
#     mu = h · W_mu + b_mu;  log_var = h · W_logvar + b_logvar                (B, Z)
#     cache = (mlp_caches, mu_cache, lv_cache), mlp_caches[i] = (dense_cache, act_cache)


def encoder_backward(dmu, dlog_var, cache, config):
    """The encoder's gradients, from dL/dμ (B, Z) and dL/d log σ² (B, Z), docs/04-gradients.md eq. (2).

    Walk the forward pass backwards with dense_backward and activation(config.activation).backward.
    Return a dict with a gradient for every encoder parameter: "encoder.W0", "encoder.b0", ...,
    "encoder.W_mu", "encoder.b_mu", "encoder.W_logvar", "encoder.b_logvar", each of its shape.
    The gradient with respect to x itself is not needed.
    """
    mlp_caches, mu_cache, lv_cache = cache
    act_backward = activation(config.activation).backward
    grads = {}
    raise NotImplementedError("encoder_backward: docs/04-gradients.md eq. (2), layer by layer")
''',
    "decoder": '''from tinyvae.layers import activation, dense_backward

# For reference, the forward pass (tinyvae.vae.decoder_forward), for hidden layers i = 0..n−1:
#     a_i = h_(i−1) · W_i + b_i;  h_i = act(a_i)         h_(−1) = z          (B, H_i)
#     out = h · W_out + b_out                                                 (B, D)
#     out_log_var = h · W_logvar + b_logvar   (only for a learned variance; else None)
#     cache = (mlp_caches, out_cache, lv_cache), lv_cache None without a learned variance


def decoder_backward(dout, dout_log_var, cache, config):
    """dL/dz (B, Z) and the decoder's gradients, from dL/d(out) (B, D), docs/04-gradients.md eq. (2).

    dout_log_var (B, D) or None. Return (dz, grads), grads a dict with a gradient for every
    decoder parameter: "decoder.W0", "decoder.b0", ..., "decoder.W_out", "decoder.b_out"
    (and "decoder.W_logvar", "decoder.b_logvar" when lv_cache is not None).
    """
    mlp_caches, out_cache, lv_cache = cache
    act_backward = activation(config.activation).backward
    grads = {}
    raise NotImplementedError("decoder_backward: docs/04-gradients.md eq. (2), layer by layer")
''',
    "loss": '''from tinyvae.layers import reparameterize_backward, reparameterize_forward
from tinyvae.losses import kl_standard_normal
from tinyvae.vae import decoder_backward, decoder_forward, encoder_backward, encoder_forward, reconstruction_nll


def loss_and_grads(params, x, eps, config, *, beta=None, terms="both"):
    """The negative ELBO averaged over the batch, and its gradient for every parameter.

        loss = (1/B) Σ_i [ w_recon · recon_i + w_kl · KL_i ]     docs/02-variational-inference.md eq. (11)

    The forward pass is written out below. Write the backward: the decoder, then
        the reparameterization                   docs/04-gradients.md eq. (15)
        the two paths into μ and log σ²          docs/04-gradients.md eq. (16)
        the encoder, and the 1/B of the mean     docs/04-gradients.md eq. (17)
    params: dict of arrays, x (B, D), eps (B, Z). terms "recon" or "kl" keeps one term alone.
    Return (loss, grads, stats): grads with exactly the keys of params; stats may be {}.
    """
    beta = config.beta if beta is None else beta
    B = x.shape[0]
    w_recon = 0.0 if terms == "kl" else 1.0
    w_kl = 0.0 if terms == "recon" else beta

    mu, log_var, enc_cache = encoder_forward(params, x, config)  # (B, Z), (B, Z)
    z, rep_cache = reparameterize_forward(mu, log_var, eps)  # (B, Z)
    out, out_log_var, dec_cache = decoder_forward(params, z, config)  # (B, D)
    recon, dout, dout_log_var = reconstruction_nll(out, out_log_var, x, config)  # (B,), (B, D)
    kl, dmu_kl, dlog_var_kl = kl_standard_normal(mu, log_var)  # (B,), (B, Z), (B, Z)
    loss = float(np.mean(w_recon * recon + w_kl * kl))
    # recon's and kl's gradients above are those of their SUMS over the batch.
    raise NotImplementedError("loss_and_grads' backward: docs/04-gradients.md eqs. (15)-(17)")
''',
    "adam": '''

def adam_update(theta, g, state, t, lr, beta1, beta2, eps):
    """One Adam step for one parameter array, IN PLACE (Kingma & Ba 2015, Algorithm 1).

        m ← β1 m + (1 − β1) g;   v ← β2 v + (1 − β2) g²         (running moments; start at 0)
        m̂ = m / (1 − β1ᵗ);   v̂ = v / (1 − β2ᵗ)                  (bias correction)
        θ ← θ − lr · m̂ / (√v̂ + ε)

    theta, g: arrays of one shape; state = {"m": array, "v": array} of that shape, zero before
    the first step; t = 1 on the first step. Overwrite theta, state["m"] and state["v"]
    (e.g. theta -= ...), never rebind them: the optimizer holds those very arrays.
    """
    m, v = state["m"], state["v"]
    raise NotImplementedError("adam_update: Kingma & Ba (2015), Algorithm 1")
''',
}
