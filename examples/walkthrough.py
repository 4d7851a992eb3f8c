# %% [markdown]
# # A batch of images through a VAE, cell by cell
#
# This file is a script in the "percent" format: `python examples/walkthrough.py` runs it top
# to bottom, and VS Code, Spyder, PyCharm and Jupyter (with jupytext) open it as a notebook
# whose cells are the `# %%` blocks. It trains a small VAE with the core's own training step,
# then follows a batch of four MNIST test images through everything that step does, printing
# the shape and some values of every array: the encoder, the sample, the decoder, the two terms
# of the loss and its batch mean, the ELBO three ways, and the gradient, checked by a finite
# difference. It ends by generating new images from the prior.
#
# Shapes: B batch (here 4), D = 784 pixels, H = 400 hidden units, Z = 20 latent dimensions.
# θ are the decoder's weights, φ the encoder's (docs/01-autoencoder-to-vae.md section 4).
# Equations: docs/04-gradients.md eq. (n) and docs/02-variational-inference.md eq. (n).
# Numbers that estimate an expectation from random draws are printed with their standard error,
# "± se" (the minibatch losses of the training cell are single draws, there to watch them fall).
# The tests run this file (tests/test_lessons.py), so every line of it works.

# %%
import math

import numpy as np

import tinyvae
from tinyvae import layers, losses, vae
from tinyvae.lab.datasets.binarize import binarize_dynamic, fixed_binarization
from tinyvae.lab.datasets.data import load_dataset
from tinyvae.train import shuffled_batches, train_step

np.set_printoptions(precision=3, suppress=True, linewidth=100)
rng = np.random.default_rng(0)  # every random number below comes from here
config = tinyvae.VAEConfig(hidden_dims=(400,), latent_dim=20)  # the default model, 784-400-20
ds = load_dataset("mnist")  # $TINYVAE_DATA, else ~/.cache/tinyvae (downloaded once)
x_test = fixed_binarization(ds.x_test, seed=0)  # the test set binarized once, as examples/mnist.py
B = 4
x = x_test[:B].astype(np.float64)  # (4, 784): a batch of four images
print("x:", x.shape, x.dtype, "ink pixels per image:", x.sum(axis=1).astype(int),
      "labels:", ds.y_test[:B])


def art(image, levels=" .:+#"):
    """A 28 × 28 image as 20 lines of text, one character per pixel: darker is more ink."""
    rows = np.asarray(image).reshape(28, 28)[4:24, 4:24]  # the digit sits in the middle
    index = np.minimum((rows * len(levels)).astype(int), len(levels) - 1)
    return ["".join(levels[i] for i in row) for row in index]


def show(*images):
    """Print images side by side."""
    print("\n".join("   ".join(lines) for lines in zip(*(art(image) for image in images))))


show(*x)

# %% [markdown]
# ## Training: Kingma & Welling's Algorithm 1, step by step
# A freshly initialised VAE prints numbers that mean little, so first we train it, with the
# core's own step, `tinyvae.train.train_step`, in float64 (so that the finite-difference check
# at the end is exact to many digits). Each step of the loop below is the algorithm:
# take a minibatch, draw its noise ε, compute the gradient of the loss for both sets of weights
# θ and φ, and let the optimizer move them. One pass over the 60,000 training images in
# minibatches of 100, each image binarized afresh when it is used (about ten seconds);
# `tinyvae.train.train_epochs` is the same loop for many epochs.

# %%
params = tinyvae.init_params(config, rng)  # float64
optimizer = tinyvae.Adam(lr=1e-3)
x_train = ds.x_train  # (60000, 784), gray levels in [0, 1]
for step, index in enumerate(shuffled_batches(len(x_train), 100, rng), start=1):
    x_batch = binarize_dynamic(x_train[index], rng)  # (100, 784): each pixel a coin of its gray
    eps = rng.standard_normal((len(x_batch), config.latent_dim))  # (100, 20): one ε per image
    stats = train_step(params, optimizer, x_batch, eps, config)  # g = ∇_{θ,φ} loss; Adam's step
    if step in (1, 10, 100, 300, 600):
        print(f"step {step:3d}: minibatch loss {stats['loss']:7.2f} nats per image "
              f"(reconstruction {stats['recon']:6.2f}, KL {stats['kl']:5.2f})")

# The loss on 1,000 test images, one ε each: a Monte Carlo estimate, with its standard error.
eps_test = rng.standard_normal((1000, config.latent_dim))  # (1000, 20)
test_loss, _, _ = vae.negative_elbo(params, x_test[:1000], eps_test, config)  # (1000,)
test_se = test_loss.std(ddof=1) / math.sqrt(1000)
print(f"after one pass: test loss {test_loss.mean():.2f} ± {test_se:.2f} nats per image "
      "(1,000 test images)")
print("parameters:", {key: value.shape for key, value in params.items()})

# %% [markdown]
# ## 1. The encoder: q_φ(z|x) = N(μ, diag σ²)
# A hidden layer, then two linear heads, for the whole batch at once. The second head gives
# log σ², any real number (docs/02-variational-inference.md eq. (10) is written in it).

# %%
mu, log_var, enc_cache = vae.encoder_forward(params, x, config)  # (4, 20) each
sigma = np.exp(0.5 * log_var)  # (4, 20)
print("mu:", mu.shape, "first image:", mu[0, :6], "...")
print("sigma:", sigma.shape, "first image:", sigma[0, :6], "...")
print(f"the narrowest q(z_j|x) has sigma {sigma.min():.3f}, the widest {sigma.max():.3f} "
      "(1 would be the prior's)")

# %% [markdown]
# ## 2. The sample: z = μ + σ ⊙ ε (docs/04-gradients.md eq. (14))
# The noise ε is drawn here, outside the model, and handed in: for a fixed ε everything
# below is an ordinary function of the parameters.

# %%
eps = rng.standard_normal((B, config.latent_dim))  # (4, 20)
z, rep_cache = layers.reparameterize_forward(mu, log_var, eps)  # (4, 20)
print("eps:", eps.shape, eps[0, :6], "...")
print("z:  ", z.shape, z[0, :6], "...")

# %% [markdown]
# ## 3. The decoder: p_θ(x|z), a Bernoulli per pixel
# It outputs one logit per pixel; the sigmoid of the logit is the probability of ink.

# %%
logits, _, dec_cache = vae.decoder_forward(params, z, config)  # (4, 784)
probs = layers.sigmoid(logits)  # (4, 784)
print("logits:", logits.shape, f"from {logits.min():.1f} to {logits.max():.1f}")
print("pixels above probability 0.5, per image:", (probs > 0.5).sum(axis=1))
show(*probs)

# %% [markdown]
# ## 4. The loss: reconstruction + KL, averaged over the batch
# (docs/02-variational-inference.md eq. (11)).
# −log p(x|z) summed over the 784 pixels (docs/04-gradients.md eq. (7)) and the KL summed over
# the 20 latent dimensions (docs/02-variational-inference.md eq. (10)), both in nats, one number
# per image; the loss is their mean over the B images of the batch.

# %%
recon, dlogits = losses.bernoulli_nll(logits, x)  # (4,), (4, 784)
kl, dmu_kl, dlog_var_kl = losses.kl_standard_normal(mu, log_var)  # (4,), (4, 20), (4, 20)
loss = float(np.mean(recon + kl))  # (1/B) Σ_b (recon_b + KL_b)
print("reconstruction -log p(x|z) per image:", recon)
print("KL(q(z|x) || N(0, I)) per image:     ", kl)
print(f"loss = the mean over the batch = {loss:.3f} nats: one draw of the negative ELBO per image")

# %% [markdown]
# ## 5. The ELBO three ways, for the first image (docs/02-variational-inference.md section 5)
# (a) reconstruction − KL to the prior; (b) the entropy form E_q[log p(x, z)] + H[q];
# (c) E_q[log p(x, z) − log q(z|x)], the identity's form, whose one-sample value is log w.
# Only the reconstruction term needs samples; (a) and (b) take the same ones, so they agree
# to rounding, and (c) has the same expectation. Each is a mean over 2,000 draws of z, printed
# with its standard error.

# %%
S = 2000
m, s, lv, x0 = mu[0], sigma[0], log_var[0], x[:1]  # the first image's q(z|x), (20,) each; (1, 784)
eps_many = rng.standard_normal((S, config.latent_dim))  # (2000, 20)
z_many = m + s * eps_many  # (2000, 20): draws from q(z|x)
log_px_z = vae.log_likelihood(params, np.repeat(x0, S, axis=0), z_many, config)  # (2000,)
# E_q[log p(z)] and H[q] in closed form: -½ Σ (μ² + σ² + log 2π) and ½ Σ (1 + log 2π + log σ²).
expected_log_prior = -0.5 * np.sum(m**2 + s**2 + math.log(2 * math.pi))
entropy = 0.5 * np.sum(1 + math.log(2 * math.pi) + lv)
log_pz = losses.gaussian_log_density(z_many, np.zeros(20), np.zeros(20))  # (2000,)
log_qz = losses.gaussian_log_density(z_many, m, lv)  # (2000,)
log_w = log_px_z + log_pz - log_qz  # (2000,): the log importance weights


def se(values):
    """The standard error of the mean of independent draws."""
    return values.std(ddof=1) / math.sqrt(len(values))


elbo_a = log_px_z.mean() - kl[0]
elbo_b = log_px_z.mean() + expected_log_prior + entropy
print(f"(a) E[log p(x|z)] - KL            = {elbo_a:.3f} ± {se(log_px_z):.3f}")
print(f"(b) E[log p(x,z)] + H[q]          = {elbo_b:.3f} ± {se(log_px_z):.3f}")
print(f"(c) E[log p(x,z) - log q(z|x)]    = {log_w.mean():.3f} ± {se(log_w):.3f}   "
      "(2,000 draws of z)")
# The tighter bound L_k of docs/02-variational-inference.md eq. (12), from the same 2,000 log w and
# from nine more sets of 2,000: ten estimates, whose spread gives the standard error.
L = np.array([losses.log_mean_exp(log_w)] + [
    losses.log_mean_exp(vae.log_likelihood(params, np.repeat(x0, S, axis=0), zs, config)
                        + losses.gaussian_log_density(zs, np.zeros(20), np.zeros(20))
                        - losses.gaussian_log_density(zs, m, lv))
    for zs in (m + s * rng.standard_normal((S, config.latent_dim)) for _ in range(9))])
gap_se = math.hypot(se(L), se(log_w))  # the two estimates' errors, as if independent
print(f"L_2000 = {L.mean():.3f} ± {se(L):.3f} (ten estimates), a tighter bound on log p(x): "
      f"{L.mean() - log_w.mean():.2f} ± {gap_se:.2f} nats above the ELBO (c)")

# %% [markdown]
# ## 6. The gradient: the backward pass, the mirror of steps 1-4
# `vae.loss_and_grads` does all of it; here it is step by step, and then checked. The loss is a
# mean over the batch, so every per-image gradient carries a factor 1/B (docs/04-gradients.md
# eq. (17)); without it the gradients would be B = 4 times too large.

# %%
dlogits_mean = dlogits / B  # (4, 784): d loss / d logits = (σ(logits) − x) / B
dz, dec_grads = vae.decoder_backward(dlogits_mean, None, dec_cache, config)  # (4, 20); θ's
# Back through z = μ + σ ⊙ ε, docs/04-gradients.md eq. (15):
dmu_z, dlog_var_z = layers.reparameterize_backward(dz, rep_cache)  # (4, 20)
# Two paths into μ: through z and through the KL, docs/04-gradients.md eq. (16):
dmu = dmu_z + dmu_kl / B
dlog_var = dlog_var_z + dlog_var_kl / B
enc_grads = vae.encoder_backward(dmu, dlog_var, enc_cache, config)  # the φ gradients
print("dL/dlogits, first image:", dlogits_mean[0, 200:206], "... = (sigmoid(logits) - x) / 4")
print("dL/dz:", dz.shape, dz[0, :6], "...")
print("dL/dmu = through z", dmu_z[0, :3], "+ through the KL", dmu_kl[0, :3] / B, "...")
full_loss, grads, _ = vae.loss_and_grads(params, x, eps, config)  # the same ε: the same numbers
print(f"loss_and_grads: loss {full_loss:.3f}, {len(grads)} gradient arrays, the keys of params")
by_hand = {**enc_grads, **dec_grads}
same = all(np.allclose(grads[key], by_hand[key], rtol=1e-12, atol=1e-15) for key in grads)
print("step by step == loss_and_grads:", same)

# %% [markdown]
# ## 7. Check one entry by a central difference (docs/05-classroom.md)
# Nudge one weight of the μ head up and down by h, with the same ε, and compare the slope
# of the loss with the analytic gradient.

# %%
key, index, h = "encoder.W_mu", (int(np.argmax(np.abs(grads["encoder.W_mu"][:, 0]))), 0), 1e-5
original = params[key][index]
params[key][index] = original + h
loss_plus, _, _ = vae.loss_and_grads(params, x, eps, config)
params[key][index] = original - h
loss_minus, _, _ = vae.loss_and_grads(params, x, eps, config)
params[key][index] = original
numeric = (loss_plus - loss_minus) / (2 * h)
analytic = grads[key][index]
rel = abs(numeric - analytic) / max(abs(numeric), abs(analytic))
print(f"d loss / d {key}{list(index)}: analytic {analytic:.8f}, central difference {numeric:.8f}, "
      f"relative error {rel:.1e}")

# %% [markdown]
# ## 8. Generating from the prior
# Draw z ~ N(0, I) and decode it. What the decoder gives is the mean E[x|z], a probability of
# ink for every pixel: that is what `vae.sample` returns and what figures of "samples" show.
# A draw from the model goes one step further: each pixel is a coin, 1 with its probability.
# Left of each pair the mean, right of it one draw x ~ p(x|z).

# %%
z_new = rng.standard_normal((2, config.latent_dim))  # (2, 20): codes from the prior
means = vae.decode(params, z_new, config)  # (2, 784): E[x|z], the decoder's mean
draws = (rng.random(means.shape) < means).astype(np.float64)  # (2, 784): x ~ p(x|z), binary
show(*(image for pair in zip(means, draws) for image in pair))
print("ink expected per image:", means.sum(axis=1).round(1), "; ink drawn:", draws.sum(axis=1))
