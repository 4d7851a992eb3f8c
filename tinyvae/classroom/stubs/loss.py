"""Exercise loss: the whole VAE's backward: two paths into μ and log σ², and the 1/B.

Write the body of loss_and_grads() below, then check it with either of

    python loss.py
    python -m tinyvae exercise check loss

(the second from the folder that holds tinyvae-exercises/, or with --dir FOLDER). The check
puts your function into a small VAE in place of tinyvae's own, compares every gradient of the
model with central finite differences, and explains what fails. Your function runs in a
process of its own, on inputs it must not change, where tinyvae's own version is out of reach.
The derivation is docs/04-gradients.md eqs. (15)-(17): try it on paper first.
"""

import numpy as np

from tinyvae import layers, losses, vae


def loss_and_grads(params, x, eps, config, *, beta=None, terms="both"):
    """The negative ELBO averaged over the batch, and its gradient for every parameter.

        loss = (1/B) Σ_i [ w_recon · recon_i + w_kl · KL_i ]
                                        docs/02-variational-inference.md eq. (11)

    The forward pass is written out below. Write the backward: the decoder
    (vae.decoder_backward), then
        the reparameterization (layers.reparameterize_backward)   docs/04-gradients.md eq. (15)
        the two paths into μ and log σ²                           docs/04-gradients.md eq. (16)
        the encoder (vae.encoder_backward), and the 1/B of the mean
                                                                  docs/04-gradients.md eq. (17)
    params: dict of arrays, x (B, D), eps (B, Z). terms "recon" or "kl" keeps one term alone.
    Return (loss, grads, stats): grads with exactly the keys of params; stats may be {}.
    """
    beta = config.beta if beta is None else beta
    w_recon = 0.0 if terms == "kl" else 1.0
    w_kl = 0.0 if terms == "recon" else beta

    mu, log_var, enc_cache = vae.encoder_forward(params, x, config)  # (B, Z), (B, Z)
    z, rep_cache = layers.reparameterize_forward(mu, log_var, eps)  # (B, Z)
    out, out_log_var, dec_cache = vae.decoder_forward(params, z, config)  # (B, D)
    recon, dout, dout_log_var = vae.reconstruction_nll(out, out_log_var, x, config)  # (B,), (B, D)
    kl, dmu_kl, dlog_var_kl = losses.kl_standard_normal(mu, log_var)  # (B,), (B, Z), (B, Z)
    loss = float(np.mean(w_recon * recon + w_kl * kl))
    # recon's and kl's gradients above are those of their SUMS over the batch.
    grads = {}  # write the backward: a gradient for every key of params
    if not grads:
        raise NotImplementedError("loss_and_grads' backward: docs/04-gradients.md eqs. (15)-(17)")
    return loss, grads, {}


if __name__ == "__main__":  # `python loss.py`: this file checks itself
    from tinyvae.classroom.exercises import check_file

    check_file(__file__, "loss")
