# %% [markdown]
# # One image through a VAE, cell by cell
#
# This file is a script in the "percent" format: `python examples/walkthrough.py` runs it top
# to bottom, and VS Code, Spyder, PyCharm and Jupyter (with jupytext) open it as a notebook
# whose cells are the `# %%` blocks. It follows one MNIST test image through everything the
# training step does, printing the shape and some values of every array:
# the encoder, the sample, the decoder, the two terms of the loss, the ELBO three ways, and the
# gradient, checked by a finite difference.
#
# Shapes: B batch (here 1), D = 784 pixels, H = 400 hidden units, Z = 20 latent dimensions.
# Equations: docs/04-gradients.md eq. (n) and docs/02-variational-inference.md eq. (n).
# The tests run this file (tests/test_lessons.py), so every line of it works.

# %%
import math

import numpy as np

import tinyvae
from tinyvae import layers, losses, vae
from tinyvae.lab.datasets.binarize import fixed_binarization
from tinyvae.lab.datasets.data import load_dataset
from tinyvae.lab.training.runner import fit
from tinyvae.speed.step import make_step

np.set_printoptions(precision=3, suppress=True, linewidth=100)
rng = np.random.default_rng(0)  # every random number below comes from here
config = tinyvae.VAEConfig(hidden_dims=(400,), latent_dim=20)  # the default model, 784-400-20
ds = load_dataset("mnist")  # $TINYVAE_DATA, else ~/.cache/tinyvae (downloaded once)
x_test = fixed_binarization(ds.x_test, seed=0)  # the test set binarized once, as examples/mnist.py
x = x_test[:1].astype(np.float64)  # (1, 784): one image, a batch of one
print("x:", x.shape, x.dtype, f"{int(x.sum())} of {x.size} pixels are ink; its label is {ds.y_test[0]}")


def show(image, threshold=0.5):
    """A 28 × 28 image as text, '#' where the pixel (or its probability) is above threshold."""
    rows = np.asarray(image).reshape(28, 28)[4:24]  # the digit sits in the middle 20 rows
    print("\n".join("".join("#" if v > threshold else "." for v in row[4:24]) for row in rows))


show(x)

# %% [markdown]
# ## A model that has seen some data
# A freshly initialised VAE prints numbers that mean little, so we first train the default
# model for one pass over 20,000 training images (a second or two on the fast path,
# tinyvae/speed/, the same mathematics as `tinyvae.train_step`), then continue in float64,
# so that the finite-difference check at the end is exact to many digits.

# %%
step = make_step("fast", config, tinyvae.init_params(config, rng, np.float32), tinyvae.Adam(lr=1e-3), 128)
history = fit(step, ds.x_train[:20_000], rng=rng, epochs=1, binarize="dynamic", stream=None)
params = {key: value.astype(np.float64) for key, value in step.params.items()}
print(f"one pass over 20,000 images: mean training loss {history[0]['train_loss']:.2f} nats per image")
print("parameters:", {key: value.shape for key, value in params.items()})

# %% [markdown]
# ## 1. The encoder: q(z|x) = N(μ, diag σ²)
# A hidden layer, then two linear heads. The second head gives log σ², any real number
# (docs/02-variational-inference.md eq. (10) is written in it).

# %%
mu, log_var, enc_cache = vae.encoder_forward(params, x, config)  # (1, 20) each
sigma = np.exp(0.5 * log_var)  # (1, 20)
print("mu:", mu.shape, mu[0, :6], "...")
print("sigma:", sigma.shape, sigma[0, :6], "...")
print(f"the narrowest q(z_j|x) has sigma {sigma.min():.3f}, the widest {sigma.max():.3f} "
      "(1 would be the prior's)")

# %% [markdown]
# ## 2. The sample: z = μ + σ ⊙ ε (docs/04-gradients.md eq. (14))
# The noise ε is drawn here, outside the model, and handed in: for a fixed ε everything
# below is an ordinary function of the parameters.

# %%
eps = rng.standard_normal((1, config.latent_dim))  # (1, 20)
z, rep_cache = layers.reparameterize_forward(mu, log_var, eps)  # (1, 20)
print("eps:", eps.shape, eps[0, :6], "...")
print("z:  ", z.shape, z[0, :6], "...")

# %% [markdown]
# ## 3. The decoder: p(x|z), a Bernoulli per pixel
# It outputs one logit per pixel; the sigmoid of the logit is the probability of ink.

# %%
logits, _, dec_cache = vae.decoder_forward(params, z, config)  # (1, 784)
probs = layers.sigmoid(logits)  # (1, 784)
print("logits:", logits.shape, f"from {logits.min():.1f} to {logits.max():.1f}")
print("probabilities: mean", round(float(probs.mean()), 3), "; pixels above 0.5:", int((probs > 0.5).sum()))
show(probs)

# %% [markdown]
# ## 4. The loss: reconstruction + KL (docs/02-variational-inference.md eq. (11))
# −log p(x|z) summed over the 784 pixels (docs/04-gradients.md eq. (7)) and the KL summed
# over the 20 latent dimensions (docs/02-variational-inference.md eq. (10)), both in nats.

# %%
recon, dlogits = losses.bernoulli_nll(logits, x)  # (1,), (1, 784)
kl, dmu_kl, dlog_var_kl = losses.kl_standard_normal(mu, log_var)  # (1,), (1, 20), (1, 20)
loss = float(recon[0] + kl[0])
print(f"reconstruction -log p(x|z) = {recon[0]:.3f} nats")
print(f"KL(q(z|x) || N(0, I))      = {kl[0]:.3f} nats  (per dimension: {losses.kl_terms(mu, log_var)[0, :4]} ...)")
print(f"loss = {loss:.3f} nats: one sample of the negative ELBO")

# %% [markdown]
# ## 5. The ELBO three ways (docs/02-variational-inference.md section 5)
# (a) reconstruction − KL to the prior; (b) the entropy form E_q[log p(x, z)] + H[q];
# (c) E_q[log p(x, z) − log q(z|x)], the identity's form, whose one-sample value is log w.
# Only the reconstruction term needs samples; (a) and (b) take the same ones, so they agree
# to rounding, and (c) has the same expectation.

# %%
eps_many = rng.standard_normal((2000, config.latent_dim))  # (2000, 20)
z_many = mu + sigma * eps_many  # (2000, 20): draws from q(z|x)
log_px_z = vae.log_likelihood(params, np.repeat(x, len(z_many), axis=0), z_many, config)  # (2000,)
expected_recon = log_px_z.mean()
# E_q[log p(z)] and H[q] in closed form: -½ Σ (μ² + σ² + log 2π) and ½ Σ (1 + log 2π + log σ²).
expected_log_prior = -0.5 * np.sum(mu**2 + sigma**2 + math.log(2 * math.pi))
entropy = 0.5 * np.sum(1 + math.log(2 * math.pi) + log_var)
log_pz = losses.gaussian_log_density(z_many, np.zeros(20), np.zeros(20))  # (2000,)
log_qz = losses.gaussian_log_density(z_many, mu, log_var)  # (2000,)
elbo_a = expected_recon - kl[0]
elbo_b = expected_recon + expected_log_prior + entropy
elbo_c = np.mean(log_px_z + log_pz - log_qz)
print(f"(a) E[log p(x|z)] - KL            = {elbo_a:.3f}")
print(f"(b) E[log p(x,z)] + H[q]          = {elbo_b:.3f}")
print(f"(c) E[log p(x,z) - log q(z|x)]    = {elbo_c:.3f}   (all three: 2,000 samples of z)")
print(f"log-mean-exp of the same 2,000 log w: L_2000 = {losses.log_mean_exp(log_px_z + log_pz - log_qz):.3f} "
      "(docs/02-variational-inference.md eq. (12)), a tighter bound on log p(x)")

# %% [markdown]
# ## 6. The gradient: the backward pass, the mirror of steps 1-4
# `vae.loss_and_grads` does all of it; here it is step by step, and then checked.

# %%
dz, dec_grads = vae.decoder_backward(dlogits, None, dec_cache, config)  # (1, 20)
dmu_z, dlog_var_z = layers.reparameterize_backward(dz, rep_cache)  # (1, 20): docs/04-gradients.md eq. (15)
dmu = dmu_z + dmu_kl  # two paths into μ: through z and through the KL, docs/04-gradients.md eq. (16)
dlog_var = dlog_var_z + dlog_var_kl
enc_grads = vae.encoder_backward(dmu, dlog_var, enc_cache, config)
print("dL/dz:", dz.shape, dz[0, :6], "...")
print("dL/dmu = through z", dmu_z[0, :3], "+ through the KL", dmu_kl[0, :3], "...")
full_loss, grads, _ = vae.loss_and_grads(params, x, eps, config)  # the same ε: the same numbers
print(f"loss_and_grads: loss {full_loss:.3f}, {len(grads)} gradient arrays, the keys of params")
same = all(np.allclose(grads[key], {**enc_grads, **dec_grads}[key], rtol=1e-12, atol=1e-15) for key in grads)
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
